"""Ingest validation against the feature contract: a raw frame in, a typed frame out.

Pure: no I/O. Every problem in the frame is collected before anything is raised, so one run of a
failed job tells the on-call engineer everything that is wrong with the file. Checks are
vectorised per column; a 100k-row batch costs a few column scans, never a Python loop over rows.

Row numbers in messages count data rows from 1 (in a CSV with a header, line = row + 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from attrition_mlops.data import contract

_MAX_EXAMPLES = 5
#: How a whole number is written in a text cell: optional sign, digits, and at most a zero
#: fraction ("41", "+7", "41.0"). No exponents, no "inf"/"NaN": a value that needs those is not a
#: whole number a person typed. ASCII digits only ("٤١" is not a number here). The one
#: declaration of the rule: the Arrow check (``scoring.columns``) anchors this same pattern.
WHOLE_NUMBER = r"[+-]?[0-9]+(?:\.0*)?"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the data; ``column`` is None for file-level problems."""

    column: str | None
    message: str
    rows: tuple[int, ...] = ()
    n_rows: int = 0
    examples: tuple[object, ...] = ()

    def __str__(self) -> str:
        text = f"{_plural(self.n_rows, 'row')} {self.message}" if self.n_rows else self.message
        details = []
        if self.rows:
            details.append(_rows_text(self.rows, self.n_rows))
        if self.examples:
            label = "value" if len(self.examples) == 1 else "values"
            details.append(f"{label} {', '.join(_display(v) for v in self.examples)}")
        where = f"{self.column}: " if self.column is not None else ""
        return where + text + (f" ({'; '.join(details)})" if details else "")


class DataValidationError(ValueError):
    """The data breaks the contract; ``problems`` lists every violation found."""

    def __init__(self, problems: Sequence[Problem], *, source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        where = f" in {self.source}" if self.source else ""
        lines = [f"{_plural(len(self.problems), 'problem')}{where}:"]
        lines += [f"  - {problem}" for problem in self.problems]
        if any(problem.rows for problem in self.problems):
            lines.append("(rows are 1-based data rows; in a CSV with a header, line = row + 1)")
        return "\n".join(lines)


def validate_frame(
    raw: pd.DataFrame, *, require_label: bool = True, max_rows_reported: int = 10
) -> pd.DataFrame:
    """Check ``raw`` against the contract and return a new, typed frame in contract order.

    Cells may be raw text (as read with ``dtype=str``) or already typed. Integer columns come
    back as int64, text as pandas' string dtype with aliases normalised; the index is kept.
    Raises DataValidationError listing every problem found. ``raw`` is never modified.
    """
    problems = _check_columns(raw, require_label)
    if len(raw) == 0:
        problems.append(Problem(None, "no data rows"))
    duplicated = set(raw.columns[raw.columns.duplicated()])
    checked: dict[str, _Checked] = {}
    for name in contract.DATASET_COLUMNS:
        if name in raw.columns and name not in duplicated:
            column = raw[name].reset_index(drop=True)
            checked[name] = _check_column(column, name, max_rows_reported)
            problems += checked[name].problems
    if contract.ID_COLUMN in checked:
        problems += _check_unique(checked[contract.ID_COLUMN].values, max_rows_reported)
    if problems:
        raise DataValidationError(problems)
    order = contract.DATASET_COLUMNS if contract.LABEL in checked else contract.INPUT_COLUMNS
    out = pd.DataFrame({name: checked[name].typed() for name in order})
    out.index = raw.index
    return out


def split_valid_rows(
    raw: pd.DataFrame, *, require_label: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Row-level triage for batch scoring: (typed valid rows, rejected raw rows + ``reason``).

    Column-level problems (missing, unexpected or duplicated columns) still raise
    DataValidationError: they break every row. Duplicate identifiers are not checked here;
    scoring the same employee twice is the caller's business, not a malformed row.
    """
    problems = _check_columns(raw, require_label)
    if problems:
        raise DataValidationError(problems)
    order = contract.DATASET_COLUMNS if contract.LABEL in raw.columns else contract.INPUT_COLUMNS
    checked = {
        name: _check_column(raw[name].reset_index(drop=True), name, max_rows=0) for name in order
    }
    bad = np.zeros(len(raw), dtype=bool)
    for result in checked.values():
        bad |= result.reasons != ""
    valid = pd.DataFrame(
        {name: _typed(checked[name].values[~bad], checked[name].integer) for name in order}
    )
    valid.index = raw.index[~bad]
    rejects = raw[bad].copy()
    rejects["reason"] = [
        "; ".join(
            f"{name}: {checked[name].reasons[i]}" for name in order if checked[name].reasons[i]
        )
        for i in np.flatnonzero(bad)
    ]
    return valid, rejects


def check_cells(column: pd.Series, name: str) -> tuple[pd.Series, np.ndarray]:
    """One contract column checked cell by cell, for other row formats that carry it (outcomes).

    Returns (values: float64 with NaN where invalid for integer columns, normalised text
    otherwise; reasons: "" where the cell is valid, else what is wrong with it). The index is reset.
    """
    checked = _check_column(column.reset_index(drop=True), name, max_rows=0)
    return checked.values, checked.reasons


class _Checked(NamedTuple):
    values: pd.Series  # float64 (NaN where invalid) for integers, normalised text otherwise
    problems: list[Problem]
    integer: bool
    reasons: np.ndarray  # per row: "" when valid, else what is wrong with this cell

    def typed(self) -> pd.Series:
        return _typed(self.values, self.integer)


def _typed(values: pd.Series, integer: bool) -> pd.Series:
    return values.astype("int64") if integer else values.astype("str")


def _check_columns(raw: pd.DataFrame, require_label: bool) -> list[Problem]:
    required = list(contract.INPUT_COLUMNS) + ([contract.LABEL] if require_label else [])
    known = set(contract.DATASET_COLUMNS)
    problems = []
    missing = [name for name in required if name not in raw.columns]
    if len(missing) == len(required):  # wrong file, or no header row: listing 35 names is noise
        problems.append(Problem(None, f"missing all {len(required)} required columns"))
    elif missing:
        problems.append(Problem(None, f"missing required columns: {', '.join(missing)}"))
    extra = [str(name) for name in raw.columns if name not in known]
    if extra:
        names = ", ".join(repr(name) for name in extra)
        problems.append(Problem(None, f"unexpected columns not in the feature contract: {names}"))
    duplicated = sorted({str(name) for name in raw.columns[raw.columns.duplicated()]})
    if duplicated:
        problems.append(Problem(None, f"duplicated column names: {', '.join(duplicated)}"))
    return problems


def _check_column(column: pd.Series, name: str, max_rows: int) -> _Checked:
    if name == contract.LABEL:
        return _check_text(column, name, contract.LABEL_VALUES, {}, max_rows)
    feature = contract.FEATURES_BY_NAME[name]
    if feature.is_integer:
        return _check_integer(column, feature, max_rows)
    return _check_text(column, name, feature.categories, feature.aliases, max_rows)


def _check_integer(column: pd.Series, feature: contract.Feature, max_rows: int) -> _Checked:
    missing = _missing(column)
    values, whole = _parse_whole_numbers(column)
    not_whole = ~missing & ~whole
    outside = whole & ((values < feature.minimum) | (values > feature.maximum))
    bounds = f"outside [{feature.minimum}, {feature.maximum}]"
    found = [
        _problem(feature.name, "blank or missing", missing, None, max_rows),
        _problem(feature.name, "not a whole number", not_whole, column, max_rows),
        _problem(feature.name, bounds, outside, values, max_rows, numbers=True),
    ]
    valid = pd.Series(np.where(whole & ~outside, values, np.nan), index=column.index)
    reasons = np.select(
        [missing.to_numpy(dtype=bool), not_whole, outside],
        ["blank or missing", "not a whole number", bounds],
        "",
    )
    return _Checked(valid, [p for p in found if p], True, reasons)


def _check_text(
    column: pd.Series, name: str, allowed: tuple[str, ...], aliases: dict[str, str], max_rows: int
) -> _Checked:
    text = column.astype("str")
    missing = _missing(text)
    unknown = ~missing & ~text.isin(allowed + tuple(aliases))
    expected = ", ".join(repr(value) for value in allowed)
    if aliases:
        expected += f" (or {', '.join(repr(alias) for alias in aliases)})"
    found = [
        _problem(name, "blank or missing", missing, None, max_rows),
        _problem(name, f"not one of {expected}", unknown, text, max_rows),
    ]
    normalised = text.replace(aliases) if aliases else text
    reasons = np.select(
        [missing.to_numpy(dtype=bool), unknown.to_numpy(dtype=bool)],
        ["blank or missing", "unknown category"],
        "",
    )
    return _Checked(normalised, [p for p in found if p], False, reasons)


def _check_unique(ids: pd.Series, max_rows: int) -> list[Problem]:
    duplicated = ids.notna() & ids.duplicated(keep=False)
    message = "share an identifier with another row"
    problem = _problem(contract.ID_COLUMN, message, duplicated, ids, max_rows, numbers=True)
    return [problem] if problem else []


def _missing(column: pd.Series) -> pd.Series:
    if _is_number_column(column):
        return column.isna()
    text = column.astype("str")
    return text.isna() | text.str.strip().eq("")


def _parse_whole_numbers(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Float64 values and a mask of cells holding a whole number (exact below 2**53)."""
    if _is_number_column(column):
        values = column.to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(values) & (values == np.floor(values))
        return values, whole
    text = column.astype("str").str.strip()
    whole = text.str.fullmatch(WHOLE_NUMBER).fillna(False).to_numpy(dtype=bool)
    # Arrow's string-to-float cast is ~10x faster than numpy's on object arrays.
    numbers = text.where(whole).astype("float64[pyarrow]")
    return numbers.to_numpy(dtype="float64", na_value=np.nan), whole


def _is_number_column(column: pd.Series) -> bool:
    # Booleans are numbers to numpy but not to a person filling in an age.
    dtype = column.dtype
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def _problem(
    column: str,
    message: str,
    mask: pd.Series | np.ndarray,
    values: pd.Series | np.ndarray | None,
    limit: int,
    *,
    numbers: bool = False,
) -> Problem | None:
    """A Problem for the cells flagged in ``mask`` (None if none), quoting a few ``values``."""
    positions = np.flatnonzero(np.asarray(mask, dtype=bool))
    if positions.size == 0:
        return None
    examples: list[object] = []
    if values is not None:
        offending = pd.Series(values).iloc[positions].drop_duplicates()
        examples = offending.iloc[:_MAX_EXAMPLES].tolist()
    if numbers:  # parsed as float64: show 150, not 150.0
        examples = [int(v) if np.isfinite(v) else v for v in examples]
    rows = tuple(int(p) + 1 for p in positions[:limit])
    return Problem(column, message, rows, int(positions.size), tuple(examples))


def _display(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _rows_text(rows: tuple[int, ...], n_rows: int) -> str:
    listed = ", ".join(str(row) for row in rows)
    more = f" and {n_rows - len(rows)} more" if n_rows > len(rows) else ""
    return f"{'row' if n_rows == 1 else 'rows'} {listed}{more}"
