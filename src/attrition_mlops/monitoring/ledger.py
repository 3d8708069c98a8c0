"""The prediction ledger: the online API's predictions, slim, kept as long as outcomes need them.

The full inference log holds every feature of every employee asked about (personal data) and is
deleted after ``ATTRITION_WORKFLOW_RETENTION_DAYS`` (30). Judging those predictions on outcomes
needs them for one horizon (12 months) and more, but only who (the pseudonym), which model
version, when, and the probability. So before a day's log is deleted, the drift DAG's nightly
``purge_expired_logs`` compacts it into the ledger (:func:`retain_logs`), and the performance job
reads the ledger for the days it holds and the full logs for the others
(:mod:`~attrition_mlops.monitoring.online_performance`).

Layout: ``<ledger>/date=YYYY-MM-DD/predictions.parquet``, one file per UTC day, holding only
:data:`LEDGER_COLUMNS`; its schema metadata counts what the day's full log held (records,
SIMULATED records, rejected and replayed lines), so the job's counts do not change when the log
goes. A day keeps only its FIRST prediction per (model version, employee): the join keeps only the
first of each (model version, month, employee) (:func:`monitoring.outcomes.first_in_cohort`), so
nothing it uses is lost. (``times_scored`` of a month read from the ledger is 1: the job reads
it reduced to the month's first, :func:`read_monthly_firsts`; nothing uses that count.)

A day is compacted once it is complete (before the run's day, and ended :data:`SETTLE` ago),
once: the file's presence is what says "compacted", and it is written atomically
(:func:`data.files.write_parquet_atomic`), so a crash leaves no file a reader would take as
whole, and the log stays until a later night compacts it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from attrition_mlops.data import contract, inference_log
from attrition_mlops.data.files import write_parquet_atomic
from attrition_mlops.monitoring.window import purge_expired_partitions, read_window

KEY = contract.ID_COLUMN
FILE_NAME = "predictions.parquet"
#: The only columns the ledger holds: no feature of the employee.
LEDGER_COLUMNS = (KEY, "model_version", "timestamp", "probability", "simulated", "request_id")
#: What each day's file says its full log held (schema metadata; summed when read).
COUNTS = ("logged_records", "simulated_records", "rejected_lines", "duplicate_lines")
METADATA_KEY = b"attrition.ledger"
#: How long after a UTC day ends before it counts as complete: the API flushes its log every few
#: seconds, and a run just after midnight must not freeze a day whose last lines are in flight
#: (a compacted day is never compacted again).
SETTLE = timedelta(hours=1)


def slim(frame: pd.DataFrame) -> pd.DataFrame:
    """A log frame (:func:`monitoring.log_reader.read_frame`) reduced to :data:`LEDGER_COLUMNS`
    and to the earliest prediction per (model version, employee, UTC day). Pure."""
    stamps = pd.to_datetime(frame["timestamp"], utc=True)
    ordered = frame.assign(timestamp=stamps, _day=stamps.dt.floor("D"))
    ordered = ordered.sort_values("timestamp", kind="stable")
    first = ~ordered.duplicated(["model_version", KEY, "_day"], keep="first")
    kept = ordered.loc[first, list(LEDGER_COLUMNS)].reset_index(drop=True)
    return kept.assign(
        **{
            KEY: kept[KEY].astype(str),
            "model_version": kept["model_version"].astype(str),
            "probability": kept["probability"].astype("float64"),
            "simulated": kept["simulated"].fillna(False).astype(bool),
            "request_id": kept["request_id"].astype(str),
        }
    )


def to_table(frame: pd.DataFrame) -> pa.Table:
    """A :func:`slim` frame as Arrow, in the ledger's fixed schema (UTC microseconds)."""
    utc = frame["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[us]")
    columns = {
        KEY: pa.array(frame[KEY].to_numpy(object), pa.string()),
        "model_version": pa.array(frame["model_version"].to_numpy(object), pa.string()),
        "timestamp": pa.array(utc, pa.timestamp("us", tz="UTC")),
        "probability": pa.array(frame["probability"].to_numpy("float64"), pa.float64()),
        "simulated": pa.array(frame["simulated"].to_numpy(bool), pa.bool_()),
        "request_id": pa.array(frame["request_id"].to_numpy(object), pa.string()),
    }
    return pa.table(columns)


def ledger_file(ledger_dir: Path, day: date) -> Path:
    return inference_log.partition_dir(ledger_dir, day) / FILE_NAME


def compacted_days(ledger_dir: Path | None, first: date, last: date) -> set[date]:
    """The days in [first, last] whose ledger file is complete (written whole, then renamed)."""
    if ledger_dir is None:
        return set()
    days = set()
    for path in Path(ledger_dir).glob(f"date=*/{FILE_NAME}"):
        day = inference_log.partition_day(path)
        if day is not None and first <= day <= last:
            days.add(day)
    return days


def compact_day(export_dir: Path, ledger_dir: Path, day: date) -> dict[str, Any]:
    """Write ``day``'s ledger file from its full log (local export); rerunning rewrites the same
    file. Malformed and replayed lines are left out, as the performance job leaves them out, and
    counted in the file's metadata. Returns the counts and the rows written."""
    rejected: list[str] = []
    duplicates: list[str] = []
    frame = read_window(export_dir, day, day, "local", rejected, duplicates)
    counts = {
        "logged_records": len(frame),
        "simulated_records": inference_log.count_simulated(frame),
        "rejected_lines": len(rejected),
        "duplicate_lines": len(duplicates),
    }
    table = to_table(slim(frame)).replace_schema_metadata(
        {METADATA_KEY: json.dumps(counts).encode()}
    )
    target = ledger_file(ledger_dir, day)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target.parent, now=datetime.now(UTC))
    write_parquet_atomic(table, target)
    return counts | {"rows": table.num_rows}


def remove_stale_temporaries(folder: Path, *, now: datetime) -> list[str]:
    """Delete the hidden temporary files a crashed compaction left in ``folder``: only those
    older than :data:`SETTLE`, since a younger one may be another run's write in progress (a
    manual run of the drift DAG beside the scheduled one); deleting it made that run fail."""
    removed = []
    for temporary in folder.glob(f".{FILE_NAME}.*.tmp"):
        try:
            written = datetime.fromtimestamp(temporary.stat().st_mtime, UTC)
            if now - written > SETTLE:
                temporary.unlink()
                removed.append(temporary.name)
        except FileNotFoundError:  # renamed or removed by that other run meanwhile
            continue
    return removed


def read_ledger(ledger_dir: Path, days: Iterable[date]) -> tuple[pd.DataFrame, dict[str, int]]:
    """The ledger rows of ``days`` (:data:`LEDGER_COLUMNS`), and the summed :data:`COUNTS`."""
    parts, counts = [], dict.fromkeys(COUNTS, 0)
    for day in sorted(days):
        table = pq.read_table(ledger_file(ledger_dir, day))
        held = json.loads((table.schema.metadata or {}).get(METADATA_KEY, b"{}"))
        counts = {name: counts[name] + int(held.get(name, 0)) for name in COUNTS}
        parts.append(table.to_pandas())
    frame = pd.concat(parts, ignore_index=True) if parts else empty_ledger()
    return frame, counts


def read_monthly_firsts(
    ledger_dir: Path, days: Iterable[date]
) -> tuple[pd.DataFrame, dict[str, int]]:
    """As :func:`read_ledger`, reduced month by month as it reads to the first prediction per
    (model version, calendar month, employee): the only row of each the join keeps
    (:func:`monitoring.outcomes.first_in_cohort`), so no verdict changes. Memory then grows with
    employees × months, not × days (``bench/ledger_read.py``). The counts add ``rows``: the
    ledger rows read before the reduction."""
    by_month: dict[tuple[int, int], list[date]] = {}
    for day in sorted(days):
        by_month.setdefault((day.year, day.month), []).append(day)
    parts, counts = [], dict.fromkeys((*COUNTS, "rows"), 0)
    for month_days in by_month.values():
        frame, held = read_ledger(ledger_dir, month_days)
        counts = {name: counts[name] + held.get(name, len(frame)) for name in counts}
        frame = frame.sort_values("timestamp", kind="stable")
        parts.append(frame[~frame.duplicated(["model_version", KEY], keep="first")])
    frame = pd.concat(parts, ignore_index=True) if parts else empty_ledger()
    return frame, counts


def empty_ledger() -> pd.DataFrame:
    return slim(inference_log.records_to_frame([]))


def log_days(export_dir: Path) -> list[date]:
    """The days of the ``date=`` partitions under ``export_dir``, oldest first."""
    if not Path(export_dir).is_dir():
        return []
    partitions = (p / FILE_NAME for p in Path(export_dir).glob("date=*") if p.is_dir())
    return sorted(day for day in map(inference_log.partition_day, partitions) if day is not None)


def retain_logs(
    export_dir: Path,
    ledger_dir: Path,
    *,
    today: date,
    log_days_kept: int,
    ledger_days_kept: int,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The nightly step: compact each complete day not in the ledger yet, then delete full logs
    older than ``log_days_kept`` that the ledger holds, and ledger days older than
    ``ledger_days_kept``.

    A day is complete once it ended :data:`SETTLE` before ``now`` (the wall clock by default)
    and is before ``today``. A day whose compaction fails keeps its full log (``failed``: day →
    error; the caller fails the task so on-call hears of it); every other day is still handled.
    A log older than the ledger's own retention is not compacted: the ledger would delete it the
    same night.
    """
    export_dir, ledger_dir = Path(export_dir), Path(ledger_dir)
    ledger_cutoff = today - timedelta(days=ledger_days_kept)
    done = compacted_days(ledger_dir, date.min, date.max)
    now = now or datetime.now(UTC)
    compacted, failed = [], {}
    for day in log_days(export_dir):
        ended = datetime.combine(day + timedelta(days=1), time(), UTC)
        if day >= today or ended + SETTLE > now or day in done or day < ledger_cutoff:
            continue
        try:
            compact_day(export_dir, ledger_dir, day)
        except Exception as err:  # keep the log; report every failed day, not just the first
            failed[day.isoformat()] = f"{type(err).__name__}: {err}"
            continue
        compacted.append(day.isoformat())
        done.add(day)
    log_cutoff = today - timedelta(days=log_days_kept)
    kept = [d for d in log_days(export_dir) if ledger_cutoff <= d < log_cutoff and d not in done]
    deleted_logs = purge_expired_partitions(
        export_dir,
        keep_days=log_days_kept,
        today=today,
        may_delete=lambda day: day in done or day < ledger_cutoff,
    )
    deleted_ledger = purge_expired_partitions(ledger_dir, keep_days=ledger_days_kept, today=today)
    return {
        "compacted": compacted,
        "failed": failed,
        "kept_uncompacted": [d.isoformat() for d in kept],
        "deleted_logs": deleted_logs,
        "deleted_ledger": deleted_ledger,
    }
