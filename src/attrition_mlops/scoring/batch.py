"""Batch scoring: stream a snapshot through the model into one partition per run date.

Memory stays bounded whatever the input size: the input (a CSV/Parquet file or a partitioned
folder) is read as a pyarrow dataset in record batches, and each batch is validated, scored and
written as its own Parquet part before the next is read; invalid rows are staged per batch too.
Validation and scoring work on Arrow columns (:mod:`attrition_mlops.scoring.columns`): vectorised
contract checks, then the serving fast path's compiled encoders, self-checked against the sklearn
pipeline, with the sklearn pipeline as the fallback.

Layout under ``output_root``::

    run_date=YYYY-MM-DD/part-00000.parquet …   the published predictions (what consumers read)
    run_date=YYYY-MM-DD/_SUCCESS.json            manifest: counts, model, input fingerprint
    _rejects/run_date=YYYY-MM-DD/rejects.parquet  invalid rows, raw values + reason
    _staging/run_date=YYYY-MM-DD/                 work in progress (parts, staged rejects, state)
    _staging/run_date=YYYY-MM-DD.lock             the partition lock, while a run holds it

**Idempotent:** a rerun for the same date replaces the partition, so every row appears once.
**Atomic:** readers never see a half-written partition; it is published by renames only after
every part is written. **Resumable:** each part is written write-then-rename, and a killed run
restarted with the same input and model skips the parts it already wrote. Batch boundaries are
deterministic for a given input, so no row is duplicated or lost. **One writer:** a run holds
the partition's lock (:mod:`attrition_mlops.scoring.partition_lock`) from start to publish; a second
run for the same partition fails at once, changing nothing. **Traceable:** every part and the
manifest carry the input's SHA-256, checked before publishing (:mod:`.score_manifest`).
"""

from __future__ import annotations

import contextlib
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from threadpoolctl import threadpool_limits

from attrition_mlops.data import contract
from attrition_mlops.data.files import write_parquet_atomic as _write_atomic
from attrition_mlops.data.validation import DataValidationError, Problem
from attrition_mlops.model.labels import label_index
from attrition_mlops.model.predictor import AttritionPredictor
from attrition_mlops.scoring.columns import BatchModel, Columns, split_batch
from attrition_mlops.scoring.csv_input import (
    MalformedRow,
    malformed_frame,
)
from attrition_mlops.scoring.manifest import input_digest, tag_part
from attrition_mlops.scoring.partition_lock import partition_lock
from attrition_mlops.scoring.source import InputSource, fingerprint, open_input
from attrition_mlops.scoring.staging import (
    STAGED_REJECTS,
    prepare_staging,
    publish,
    stage_rejects,
    write_rejects,
)

#: Bumped when the staging layout changes, so a run never resumes another layout's parts.
STAGING_LAYOUT = 4  # 3: parts carry the input digest; 4: rejects name their source row
_TEXT = pa.large_string()
OUTPUT_SCHEMA = pa.schema(
    [
        (contract.ID_COLUMN, pa.int64()),
        ("probability", pa.float64()),
        ("label", _TEXT),
        ("is_outlier", pa.bool_()),
        ("model_name", _TEXT),
        ("model_version", _TEXT),
        ("scored_at", _TEXT),
        ("run_date", _TEXT),
    ]
)
OUTPUT_COLUMNS = tuple(OUTPUT_SCHEMA.names)
_LABELS = pa.array(contract.LABEL_VALUES, _TEXT)  # indexed by model.labels.label_index
#: Dictionary-encode only the few-valued text columns: identifiers and probabilities are all
#: distinct, and building a dictionary for them first costs time and space for nothing.
_PART_OPTIONS = {
    "use_dictionary": [
        name
        for name in OUTPUT_COLUMNS
        if name in ("label", "model_name", "model_version", "scored_at", "run_date")
    ]
}


class TooManyRejectsError(DataValidationError):
    """More invalid rows than the configured fraction: the partition is not published."""


@dataclass(frozen=True)
class ScoreResult:
    run_date: str
    model_name: str
    model_version: str
    rows_in: int
    rows_scored: int
    rows_rejected: int
    partition: str
    rejects: str | None
    resumed_parts: int
    seconds: float
    scoring_path: str  # "compiled" (the fast path) or "sklearn" (its fallback)
    run_id: str
    input_sha256: str  # the input file's SHA-256 (a folder's: see score_manifest.input_digest)
    input_files: list[dict]  # path, bytes, sha256 of each input file
    threshold: float  # label = positive_label when probability >= threshold (the model's own)
    positive_label: str

    def to_dict(self) -> dict:
        return asdict(self)


def _score_batch(
    batch: pa.RecordBatch, model: BatchModel, meta: dict
) -> tuple[pa.Table, pd.DataFrame]:
    """(predictions, rejected rows as received plus ``reason``) of one input batch."""
    valid, rejects = split_batch(batch)
    tables = [_predictions(columns, model, meta) for columns in valid if columns.n]
    return (pa.concat_tables(tables) if tables else OUTPUT_SCHEMA.empty_table()), rejects


def _predictions(columns: Columns, model: BatchModel, meta: dict) -> pa.Table:
    probability, is_outlier = model.predict(columns)
    label = _LABELS.take(pa.array(label_index(probability, model.threshold)))
    constant = [pa.repeat(pa.scalar(meta[name], _TEXT), columns.n) for name in OUTPUT_COLUMNS[4:]]
    return pa.Table.from_arrays(
        [pa.array(columns.ids), pa.array(probability), label, pa.array(is_outlier), *constant],
        schema=OUTPUT_SCHEMA,
    )


def _progress(total: int | None, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="rows", desc="scoring", file=sys.stderr)


@dataclass(frozen=True)
class _Run:
    """What one run writes with: where it stages, the constant columns, the input digest."""

    staging: Path
    meta: dict
    digest: str
    batch_rows: int


def _score_batches(source: InputSource, run: _Run, model: BatchModel, bar) -> dict[str, int]:
    """Score and stage every batch, skipping parts an interrupted run already wrote.

    Rows the CSV parser skipped are staged as rejects with the batch read after them (batch
    boundaries, and so these, are deterministic); any left after the last batch get an index of
    their own, with rejects and no part.
    """
    counts = {"in": 0, "scored": 0}
    malformed: list[MalformedRow] = []
    columns = source.reject_columns()
    index = -1
    for index, (batch, origin) in enumerate(source.located_batches(run.batch_rows, malformed)):
        skipped = _drain(malformed, columns)
        counts["in"] += batch.num_rows + len(skipped)
        part = run.staging / f"part-{index:05d}.parquet"
        if part.exists():  # written by an interrupted run with this same input and model
            counts["scored"] += pq.read_metadata(part).num_rows
        else:
            table, rejects = _score_batch(batch, model, run.meta)
            stage_rejects(run.staging, index, _joined(origin.locate(rejects), skipped))
            _write_atomic(tag_part(table, run.digest), part, **_PART_OPTIONS)
            counts["scored"] += table.num_rows
        if bar is not None:
            bar.update(batch.num_rows)
    skipped = _drain(malformed, columns)
    counts["in"] += len(skipped)
    stage_rejects(run.staging, index + 1, skipped)
    return counts


def _joined(rejects: pd.DataFrame, skipped: pd.DataFrame) -> pd.DataFrame:
    parts = [frame for frame in (rejects, skipped) if not frame.empty]
    return pd.concat(parts) if len(parts) > 1 else (parts[0] if parts else rejects)


def _drain(malformed: list[MalformedRow], columns: list[str] | None) -> pd.DataFrame:
    if not malformed or columns is None:
        return pd.DataFrame()
    frame = malformed_frame(malformed, columns)
    malformed.clear()
    return frame


def score_snapshot(
    input_path: Path,
    output_root: Path,
    run_date: date,
    predictor: AttritionPredictor,
    *,
    model_name: str,
    model_version: str,
    batch_rows: int = 100_000,
    max_reject_fraction: float = 0.01,
    progress: bool | None = None,
    threads: int | None = 1,
    run_id: str | None = None,
) -> ScoreResult:
    """Score ``input_path`` into ``output_root/run_date=…``; see the module docstring.

    ``threads`` caps the native (BLAS/OpenMP) threads used while scoring; None leaves the
    libraries' defaults. One is the default: the scorer is one Python process, and on a busy
    machine a second BLAS thread spin-waited for more CPU than it saved (docs/batch-scoring.md).
    Raises PartitionBusyError, before touching anything, while another run holds the partition.
    """
    part_name = f"run_date={run_date.isoformat()}"
    run_id = run_id or f"run-{uuid.uuid4().hex[:12]}"
    lock = output_root / "_staging" / f"{part_name}.lock"
    try:
        with partition_lock(lock, str(output_root / part_name), run_id):
            return _score_locked(
                input_path,
                output_root,
                run_date,
                predictor,
                model_name=model_name,
                model_version=str(model_version),
                batch_rows=batch_rows,
                max_reject_fraction=max_reject_fraction,
                progress=progress,
                threads=threads,
                run_id=run_id,
            )
    finally:
        # Nothing in flight (no staged run, no lock) leaves no empty _staging/ behind; a
        # folder another run is using is not empty, and rmdir leaves it alone.
        with contextlib.suppress(OSError):
            (output_root / "_staging").rmdir()


def _score_locked(
    input_path,
    output_root,
    run_date,
    predictor,
    *,
    model_name,
    model_version,
    batch_rows,
    max_reject_fraction,
    progress,
    threads,
    run_id,
) -> ScoreResult:
    started = time.perf_counter()
    source = open_input(input_path)
    model = BatchModel(predictor)
    part_name = f"run_date={run_date.isoformat()}"
    digest, files = input_digest(source.files, Path(input_path))
    key = {
        "input": fingerprint(input_path),
        "sha256": digest,
        "model": f"{model_name}/{model_version}",
        "batch_rows": batch_rows,
        "run_date": run_date.isoformat(),
        "layout": STAGING_LAYOUT,
    }
    staging = output_root / "_staging" / part_name
    reused, scored_at = prepare_staging(staging, key)
    meta = {
        "model_name": model_name,
        "model_version": model_version,
        "scored_at": scored_at,
        "run_date": run_date.isoformat(),
    }
    show = sys.stderr.isatty() if progress is None else progress
    bar = _progress(source.count_rows() if show else None, show)
    limits = threadpool_limits(limits=threads) if threads else contextlib.nullcontext()
    with limits:
        counts = _score_batches(source, _Run(staging, meta, digest, batch_rows), model, bar)
    if bar is not None:
        bar.close()
    rejects_path = write_rejects(output_root, part_name, staging / STAGED_REJECTS)
    n_rejected = counts["in"] - counts["scored"]
    if counts["in"] == 0:
        raise DataValidationError([Problem(None, f"{input_path}: no data rows")])
    if n_rejected > max_reject_fraction * counts["in"]:
        share = n_rejected / counts["in"]
        message = (
            f"{n_rejected} of {counts['in']} rows invalid ({share:.2%} > "
            f"{max_reject_fraction:.2%} allowed); partition not published. Reasons per row: "
            f"{rejects_path}"
        )
        raise TooManyRejectsError([Problem(None, message)])
    result = ScoreResult(
        run_date.isoformat(),
        model_name,
        model_version,
        counts["in"],
        counts["scored"],
        n_rejected,
        str(output_root / part_name),
        str(rejects_path) if rejects_path else None,
        reused,
        round(time.perf_counter() - started, 3),
        model.path,
        run_id,
        digest,
        files,
        float(model.threshold),
        contract.POSITIVE_LABEL,
    )
    publish(staging, output_root / part_name, result)
    return result
