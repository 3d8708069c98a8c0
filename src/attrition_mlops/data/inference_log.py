"""The inference log: one JSON line per online prediction request, and how to read it back.

This module is the single definition of the log format. The serving API writes it (to stdout for
container log collection, and locally to a date-partitioned export folder); the drift job reads
the export with :func:`parse_line` and :func:`records_to_frame`. Both sides import this module, so
a change of format is a change of ``SCHEMA_VERSION`` here and nowhere else. The columnar
reader (``monitoring.log_schema``) derives its Arrow schema and column checks from
:class:`InferenceRecord`, so a field added here is read there without another edit.

Identifiers never reach the log: ``EmployeeNumber`` is replaced by a keyed hash (HMAC-SHA256), so
records of one employee can still be grouped, but the number cannot be recovered or guessed by
hashing candidate numbers without the key.

Export layout: ``<export_dir>/date=YYYY-MM-DD/<process-id>-<start>.jsonl``, one file per serving
process per UTC day, where ``<start>`` is the process's start time (``YYYYMMDDTHHMMSSZ``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from attrition_mlops.data import contract, record_fields

SCHEMA_VERSION = 1
#: Marks our lines among everything else a container writes to stdout.
EVENT = "attrition.inference"
#: How EVENT appears in a line as :func:`dump_line` writes it.
EVENT_MARKER = f'"event":"{EVENT}"'
PSEUDONYM_PATTERN = r"^[0-9a-f]{64}$"
#: Columns :func:`records_to_frame` adds after the contract's input columns.
EXTRA_COLUMNS = (
    "model_version",
    "timestamp",
    "request_id",
    "probability",
    "label",
    "is_outlier",
    "simulated",
)
#: A request carrying this header (value "true") is SIMULATED traffic; its log line says so.
SIMULATED_HEADER = "X-Attrition-Simulated"
#: Validation-context key: the partition day a line was read from (see :func:`parse_line`).
PARTITION_DAY = "partition_day"


class Pseudonymiser:
    """Keyed hash of an identifier: stable for one key, irreversible without it."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a pseudonymisation key needs at least 16 bytes")
        self._key = key

    def __call__(self, identifier: int) -> str:
        return hmac.new(self._key, str(identifier).encode(), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:  # never show the key
        return "Pseudonymiser(key=***)"


def _logged_field(feature: contract.Feature) -> tuple[Any, Any]:
    if feature.name == contract.ID_COLUMN:
        return str, Field(pattern=PSEUDONYM_PATTERN)
    if feature.is_integer:  # as strict as the request model: no "41", no true
        return record_fields.strict_integer(feature), ...
    # Logged values are already normalised (aliases replaced), so only categories are valid.
    return Literal[feature.categories], ...  # type: ignore[valid-type]


def logged_employee_model(features: tuple[contract.Feature, ...] | None = None) -> type[BaseModel]:
    """The logged record model compiled from ``features`` (default: the contract's, as read now).

    Integer fields follow the request model's rule (``record_fields``): a whole number (41 or
    41.0), never ``"41"`` or ``true``, so a line is judged as the API judged its request.

    The Arrow schema and column checks of the log (``monitoring.log_schema``) are derived in
    turn from this model, so a contract change reaches them through here.
    """
    features = contract.FEATURES if features is None else features
    integers = tuple(f for f in features if f.name != contract.ID_COLUMN)  # a pseudonym is text
    return create_model(
        "LoggedEmployee",
        __config__=ConfigDict(extra="forbid", frozen=True),
        __validators__=record_fields.whole_numbers_validator(integers),
        **{feature.name: _logged_field(feature) for feature in features},
    )


#: One employee record as logged: the contract's input fields, identifier pseudonymised.
LoggedEmployee = logged_employee_model()


class LoggedPrediction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    probability: Annotated[float, Field(ge=0.0, le=1.0)]
    label: Literal[contract.LABEL_VALUES]  # type: ignore[valid-type]
    is_outlier: bool


class InferenceRecord(BaseModel):
    """One request: what came in, what went out, which model answered, how fast."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    schema_version: Literal[SCHEMA_VERSION]
    event: Literal[EVENT] = EVENT
    timestamp: AwareDatetime
    request_id: str
    model_name: str
    model_version: str
    inputs: list[LoggedEmployee]  # type: ignore[valid-type]
    outputs: list[LoggedPrediction]
    latency_ms: Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
    n_records: Annotated[int, Field(ge=1)]
    #: SIMULATED traffic (the simulator's requests and export files), never real employees.
    #: Written on every line; lines from before it existed read as False.
    simulated: bool = False

    @field_validator("timestamp")
    @classmethod
    def _inside_partition(cls, value: datetime, info: ValidationInfo) -> datetime:
        """A line read from a ``date=`` partition must be stamped on that UTC day."""
        day = (info.context or {}).get(PARTITION_DAY)
        if day is not None:
            start, stop = day_bounds(day)
            if not start <= value < stop:
                raise PydanticCustomError(
                    "outside_partition",
                    "timestamp {stamp} is outside its partition date={day}",
                    {"stamp": value.astimezone(UTC).isoformat(), "day": day.isoformat()},
                )
        return value

    @model_validator(mode="after")
    def _counts_agree(self) -> InferenceRecord:
        if not len(self.inputs) == len(self.outputs) == self.n_records:
            raise ValueError(
                f"n_records={self.n_records} but {len(self.inputs)} inputs and "
                f"{len(self.outputs)} outputs"
            )
        return self


def build_record(
    *,
    timestamp: datetime,
    request_id: str,
    model_name: str,
    model_version: str,
    inputs: Sequence[Mapping[str, Any]],
    outputs: Sequence[Mapping[str, Any]],
    latency_ms: float,
    pseudonymise: Pseudonymiser,
    simulated: bool = False,
) -> dict[str, Any]:
    """The JSON-able log entry for one request (``inputs`` are validated, normalised records)."""
    logged = []
    for record in inputs:
        row = {name: record[name] for name in contract.INPUT_COLUMNS}
        row[contract.ID_COLUMN] = pseudonymise(record[contract.ID_COLUMN])
        logged.append(row)
    return {
        "schema_version": SCHEMA_VERSION,
        "event": EVENT,
        "timestamp": timestamp.astimezone(UTC).isoformat(timespec="milliseconds"),
        "request_id": request_id,
        "model_name": model_name,
        "model_version": model_version,
        "inputs": logged,
        "outputs": [dict(output) for output in outputs],
        "latency_ms": round(latency_ms, 3),
        "n_records": len(logged),
        "simulated": simulated,
    }


def dump_line(record: Mapping[str, Any]) -> str:
    """One compact JSON line (no trailing newline); NaN/Infinity are refused, not written."""
    return json.dumps(record, separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def parse_line(text: str | bytes, partition_day: date | None = None) -> InferenceRecord:
    """Validate one log line; raises pydantic.ValidationError on anything malformed.

    ``partition_day``: the day of the ``date=`` partition the line was read from; a timestamp
    outside that UTC day is then an error too (a misfiled or forged line).
    """
    context = {PARTITION_DAY: partition_day} if partition_day is not None else None
    return InferenceRecord.model_validate_json(text, context=context)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, stop) of a UTC day: the timestamps its export partition may hold."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def partition_day(path: Path | str) -> date | None:
    """The day of the ``date=YYYY-MM-DD`` folder holding an export file, if it is in one."""
    name = Path(path).parent.name
    if not name.startswith("date="):
        return None
    try:
        return date.fromisoformat(name.removeprefix("date="))
    except ValueError:
        return None


def is_inference_line(text: str) -> bool:
    """Cheap pre-filter for mixed container logs (confirm with :func:`parse_line`)."""
    return text.startswith("{") and EVENT_MARKER in text


def records_to_frame(records: Iterable[InferenceRecord]) -> pd.DataFrame:
    """One row per employee record: contract input columns, then :data:`EXTRA_COLUMNS`.

    Integer fields are int64, categorical fields strings, ``timestamp`` is tz-aware UTC;
    ``EmployeeNumber`` holds the pseudonym.
    """
    rows: list[dict[str, Any]] = []
    for record in records:
        for employee, output in zip(record.inputs, record.outputs, strict=True):
            rows.append(
                {
                    **employee.model_dump(),
                    "model_version": record.model_version,
                    "timestamp": record.timestamp,
                    "request_id": record.request_id,
                    **output.model_dump(),
                    "simulated": record.simulated,
                }
            )
    columns = [*contract.INPUT_COLUMNS, *EXTRA_COLUMNS]
    frame = pd.DataFrame(rows, columns=columns)
    for feature in contract.FEATURES:
        if feature.is_integer and feature.name != contract.ID_COLUMN:
            frame[feature.name] = frame[feature.name].astype("int64")
        else:
            frame[feature.name] = frame[feature.name].astype("str")
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame["probability"] = frame["probability"].astype("float64")
    frame["is_outlier"] = frame["is_outlier"].astype("bool")
    frame["simulated"] = frame["simulated"].astype("bool")
    return frame


def count_simulated(frame: pd.DataFrame) -> int:
    """Records of a log frame marked SIMULATED (the simulator's traffic), not real employees."""
    return int(frame["simulated"].sum()) if "simulated" in frame else 0


def partition_dir(export_dir: Path, day: date) -> Path:
    return Path(export_dir) / f"date={day.isoformat()}"


def export_file(export_dir: Path, day: date, pid: int, started: datetime) -> Path:
    stamp = started.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return partition_dir(export_dir, day) / f"{pid}-{stamp}.jsonl"


def export_files(export_dir: Path, first: date, last: date) -> list[Path]:
    """Every export file in the partitions ``first`` … ``last`` (inclusive), sorted."""
    found: list[Path] = []
    for partition in sorted(Path(export_dir).glob("date=*")):
        try:
            day = date.fromisoformat(partition.name.removeprefix("date="))
        except ValueError:
            continue  # not one of ours
        if first <= day <= last:
            found += sorted(partition.glob("*.jsonl"))
    return found


def read_records(
    paths: Iterable[Path], *, rejected: list[str] | None = None
) -> Iterator[InferenceRecord]:
    """Parse every line of the given export files (blank lines are skipped).

    A file in a ``date=`` partition may only hold lines stamped on that day. A malformed line
    raises, unless ``rejected`` is given: then a description of it (file, line number, first
    problem) is appended there and reading goes on.
    """
    for path in paths:
        day = partition_day(path)
        with open(path, "rb") as handle:  # JSON Lines: split on "\n" only
            for number, raw in enumerate(handle, start=1):
                line = raw.removesuffix(b"\n").decode("utf-8", errors="replace")
                if not line.strip():
                    continue
                try:
                    yield parse_line(line, day)
                except ValidationError as err:
                    if rejected is None:
                        raise
                    problem = err.errors()[0]
                    rejected.append(f"{path}:{number}: {problem['msg']} at {problem['loc']}")


def unique_requests(
    records: Iterable[InferenceRecord], duplicates: list[str]
) -> Iterator[InferenceRecord]:
    """Each request once: the first line with a ``request_id`` wins, a replay is left out.

    The ``request_id`` of every line left out is appended to ``duplicates``.
    """
    seen: set[str] = set()
    for record in records:
        if record.request_id in seen:
            duplicates.append(record.request_id)
            continue
        seen.add(record.request_id)
        yield record
