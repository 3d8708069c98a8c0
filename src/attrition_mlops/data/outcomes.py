"""Realized outcomes: the input format, its row validation, and partitions by arrival date.

An outcome row says what was observed about one employee on one day, for one prediction horizon:

====================  =============================================================================
``EmployeeNumber``    the contract's identifier (a whole number in its bounds)
``observed_on``       ``YYYY-MM-DD``: the day the employee left (``left`` = Yes), or a day on which
                      they were seen still employed (``left`` = No)
``left``              the contract's label values, ``Yes`` / ``No`` (case and surrounding blanks
                      are forgiven: ``yes`` → ``Yes``)
``horizon``           the prediction horizon the outcome answers, ``<n>m`` (months) or ``<n>d``
                      (days): ``12m`` = "left within 12 months of the prediction"
====================  =============================================================================

How a row labels a prediction is the join's business (:mod:`attrition_mlops.monitoring.outcomes`).

Validation follows the batch scorer: a column-level problem (missing or unexpected columns) breaks
every row and raises :class:`DataValidationError`; a bad cell rejects only its row, which is kept
as received with a ``reason``. A row repeating an earlier row's employee, day and horizon is
rejected too (``repeats row N``), and rows that disagree on ``left`` for the same key are all
rejected (``conflicting``): nothing is dropped without a written reason.

Layout under ``root`` (one partition per arrival day, one part per delivered file)::

    arrived=YYYY-MM-DD/part-<sha256[:16]>.parquet        the valid rows
    _rejects/arrived=YYYY-MM-DD/rejects-<sha256[:16]>.parquet   rejected rows, as received + reason

Parts are named by the SHA-256 of the delivery's content and written temp-file-then-rename, so a
rerun of the same delivery rewrites the same file (no duplicates), a reader never sees half a
part, and two deliveries on one day sit side by side. Because a part's name is its content, two
writers of the same delivery write identical bytes; no lock is needed (the batch scorer needs
one because it replaces a whole partition).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from attrition_mlops.data import contract
from attrition_mlops.data.files import write_parquet_atomic
from attrition_mlops.data.validation import DataValidationError, Problem, check_cells

OBSERVED_ON = "observed_on"
LEFT = "left"
HORIZON = "horizon"
COLUMNS = (contract.ID_COLUMN, OBSERVED_ON, LEFT, HORIZON)
#: Added by the writer: every row of a SIMULATED delivery says so.
SIMULATED_COLUMN = "simulated"
ARRIVED = "arrived"
HORIZON_PATTERN = r"[1-9][0-9]{0,3}[md]"
DIGEST_KEY = b"attrition.outcomes_sha256"
SIMULATED_KEY = b"attrition.simulated"
SCHEMA = pa.schema(
    [
        (contract.ID_COLUMN, pa.int64()),
        (OBSERVED_ON, pa.date32()),
        (LEFT, pa.large_string()),
        (HORIZON, pa.large_string()),
        (SIMULATED_COLUMN, pa.bool_()),
    ]
)


def horizon_offset(horizon: str) -> pd.DateOffset:
    """The calendar offset of ``12m`` (12 months) or ``90d`` (90 days)."""
    if not re.fullmatch(HORIZON_PATTERN, horizon):
        raise ValueError(f"horizon {horizon!r}: expected <n>m (months) or <n>d (days), e.g. 12m")
    n, unit = int(horizon[:-1]), horizon[-1]
    return pd.DateOffset(months=n) if unit == "m" else pd.DateOffset(days=n)


def read_outcome_file(path: Path) -> pd.DataFrame:
    """A delivered file as received: CSV cells as text (nothing coerced), or a Parquet file."""
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pandas()
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def split_valid_outcomes(
    raw: pd.DataFrame, *, arrived: date | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(typed valid rows, rejected rows as received plus ``reason``); see the module docstring.

    With ``arrived``, an outcome observed after its own arrival day is rejected (a typo in the
    date, or a file delivered with the wrong arrival day).
    """
    _check_columns(raw)
    ids, id_reasons = check_cells(raw[contract.ID_COLUMN], contract.ID_COLUMN)
    # The identifier's reasons come per row; prefixed with the column only for rejected rows.
    named = np.asarray(id_reasons, dtype=object)
    checks: list[_Check] = [(named != "", _Prefixed(named))]
    observed = pd.to_datetime(_text(raw[OBSERVED_ON]), format="%Y-%m-%d", errors="coerce")
    bad_date = observed.isna().to_numpy()
    checks.append((bad_date, f"{OBSERVED_ON}: not a YYYY-MM-DD date"))
    if arrived is not None:
        late = ~bad_date & (observed > pd.Timestamp(arrived)).to_numpy()
        checks.append((late, f"{OBSERVED_ON}: after its arrival day {arrived}"))
    left = _text(raw[LEFT]).str.strip().str.capitalize()
    values = ", ".join(contract.LABEL_VALUES)
    checks.append((~left.isin(contract.LABEL_VALUES).to_numpy(), f"{LEFT}: not one of {values}"))
    horizon = _text(raw[HORIZON]).str.strip()
    bad_horizon = ~horizon.str.fullmatch(HORIZON_PATTERN).fillna(False).to_numpy(dtype=bool)
    checks.append((bad_horizon, f"{HORIZON}: expected <n>m or <n>d, e.g. 12m"))
    typed = pd.DataFrame(
        {
            contract.ID_COLUMN: ids.to_numpy(dtype="float64"),
            OBSERVED_ON: observed.dt.date.values,
            LEFT: left.to_numpy(),
            HORIZON: horizon.to_numpy(),
        }
    )
    bad = np.logical_or.reduce([mask for mask, _ in checks])
    checks.extend(_repeat_checks(typed, ~bad))
    bad = np.logical_or.reduce([mask for mask, _ in checks])
    valid = typed[~bad].astype({contract.ID_COLUMN: "int64", LEFT: "str", HORIZON: "str"})
    valid.index = raw.index[~bad]
    rejects = raw[bad].copy()
    rejects["reason"] = _reasons(checks, np.flatnonzero(bad))
    return valid, rejects


def _check_columns(raw: pd.DataFrame) -> None:
    problems = []
    missing = [name for name in COLUMNS if name not in raw.columns]
    if missing:
        problems.append(Problem(None, f"missing required outcome columns: {', '.join(missing)}"))
    extra = [str(name) for name in raw.columns if name not in COLUMNS]
    if extra:
        problems.append(Problem(None, f"unexpected columns: {', '.join(map(repr, extra))}"))
    duplicated = sorted({str(name) for name in raw.columns[raw.columns.duplicated()]})
    if duplicated:
        problems.append(Problem(None, f"duplicated column names: {', '.join(duplicated)}"))
    if problems:
        raise DataValidationError(problems)


def _text(column: pd.Series) -> pd.Series:
    return column.reset_index(drop=True).astype("str")


class _Prefixed:
    """Per-row reasons of the identifier column, read with the column's name in front."""

    def __init__(self, reasons: np.ndarray) -> None:
        self.reasons = reasons

    def __getitem__(self, row: int) -> str:
        return f"{contract.ID_COLUMN}: {self.reasons[row]}"


#: (rows failing a check, its message: one text, or one per row)
_Check = tuple[np.ndarray, "str | np.ndarray | _Prefixed"]


def _reasons(checks: list[_Check], rows: np.ndarray) -> list[str]:
    """Messages of the failed checks joined by "; ", for the rejected ``rows`` only."""
    parts: list[list[str]] = [[] for _ in rows]
    for mask, message in checks:
        for k in np.flatnonzero(mask[rows]):
            parts[k].append(message if isinstance(message, str) else str(message[rows[k]]))
    return ["; ".join(p) for p in parts]


def _repeat_checks(typed: pd.DataFrame, ok: np.ndarray) -> list[_Check]:
    """Among the otherwise valid rows: repeats of an earlier row, and conflicting rows."""
    key = [contract.ID_COLUMN, OBSERVED_ON, HORIZON]
    shared = np.zeros(len(typed), dtype=bool)
    shared[ok] = typed[ok].duplicated(key, keep=False).to_numpy()
    conflicting = np.zeros(len(typed), dtype=bool)
    repeated = np.zeros(len(typed), dtype=bool)
    messages = np.full(len(typed), "", dtype=object)
    if shared.any():
        rows = typed[shared].assign(_row=np.flatnonzero(shared) + 1)
        many = rows.groupby(key)[LEFT].transform("nunique").to_numpy() > 1
        first = rows.groupby(key)["_row"].transform("min").to_numpy()
        positions = rows["_row"].to_numpy() - 1
        conflicting[positions[many]] = True
        again = ~many & (first != rows["_row"].to_numpy())
        repeated[positions[again]] = True
        messages[positions[again]] = [f"repeats row {r}" for r in first[again]]
    conflict = (
        f"conflicting: another row says the opposite for this {contract.ID_COLUMN}, "
        f"{OBSERVED_ON} and {HORIZON}"
    )
    return [(conflicting, conflict), (repeated, messages)]


@dataclass(frozen=True)
class OutcomeDelivery:
    """What :func:`write_outcomes` did; JSON-able for a job's one-line result."""

    arrived: str
    sha256: str
    rows_in: int
    rows_valid: int
    rows_rejected: int
    positives: int
    part: str | None
    rejects: str | None
    simulated: bool

    def to_dict(self) -> dict:
        return asdict(self)


def delivery_digest(raw: pd.DataFrame) -> str:
    """SHA-256 of a delivery's content (its cells as text, in order): the part's name."""
    text = raw.astype("str").to_csv(index=False, lineterminator="\n")
    return hashlib.sha256(text.encode()).hexdigest()


def write_outcomes(
    raw: pd.DataFrame, root: Path, arrived: date, *, simulated: bool = False
) -> OutcomeDelivery:
    """Validate one delivery and write its partition part (and rejects) under ``root``.

    Idempotent: the same delivery for the same day rewrites the same files. Raises
    DataValidationError (nothing written) when the columns are wrong or no row is valid.
    """
    valid, rejects = split_valid_outcomes(raw, arrived=arrived)
    digest = delivery_digest(raw)
    if valid.empty:
        first = "; ".join(rejects["reason"].iloc[:3]) if len(rejects) else "no data rows"
        raise DataValidationError([Problem(None, f"no valid outcome rows ({first})")])
    name = f"{ARRIVED}={arrived.isoformat()}"
    part = root / name / f"part-{digest[:16]}.parquet"
    part.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(
        valid.assign(**{SIMULATED_COLUMN: simulated}), schema=SCHEMA, preserve_index=False
    )
    meta = {DIGEST_KEY: digest.encode(), SIMULATED_KEY: str(simulated).lower().encode()}
    write_parquet_atomic(table.replace_schema_metadata(meta), part)
    rejects_path = None
    if len(rejects):
        rejects_path = root / "_rejects" / name / f"rejects-{digest[:16]}.parquet"
        rejects_path.parent.mkdir(parents=True, exist_ok=True)
        as_text = rejects.astype("str")
        write_parquet_atomic(pa.Table.from_pandas(as_text, preserve_index=False), rejects_path)
    return OutcomeDelivery(
        arrived.isoformat(),
        digest,
        len(raw),
        len(valid),
        len(rejects),
        int(valid[LEFT].eq(contract.POSITIVE_LABEL).sum()),
        str(part),
        str(rejects_path) if rejects_path else None,
        simulated,
    )


def read_outcomes(root: Path, *, arrived_until: date | None = None) -> pd.DataFrame:
    """Every valid outcome under ``root`` (to ``arrived_until`` inclusive), one row per fact.

    Columns: the four of the format (``observed_on`` as datetime64), ``simulated``, and
    ``arrived`` (datetime64). A fact delivered twice (same employee, day, horizon and ``left``,
    e.g. in a corrected re-delivery) is kept once, from its first arrival.
    """
    frames = []
    for folder in sorted(root.glob(f"{ARRIVED}=*")):
        day = date.fromisoformat(folder.name.removeprefix(f"{ARRIVED}="))
        if arrived_until is not None and day > arrived_until:
            continue
        for part in sorted(folder.glob("part-*.parquet")):
            frame = pq.read_table(part, schema=SCHEMA).to_pandas()
            frames.append(frame.assign(**{ARRIVED: pd.Timestamp(day)}))
    if not frames:
        empty = SCHEMA.empty_table().to_pandas().assign(**{ARRIVED: pd.Series(dtype="M8[ns]")})
        frames = [empty]
    out = pd.concat(frames, ignore_index=True)
    out[OBSERVED_ON] = pd.to_datetime(out[OBSERVED_ON])
    out[ARRIVED] = pd.to_datetime(out[ARRIVED])
    out = out.sort_values(ARRIVED, kind="stable")
    return out.drop_duplicates(list(COLUMNS), keep="first").reset_index(drop=True)
