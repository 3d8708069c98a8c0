"""The batch job's input: a file or folder of CSV or Parquet, read as fixed-size record batches.

CSV is read as text by :mod:`attrition_mlops.scoring.csv_input` (rows the parser must skip are
reported, not fatal); Parquet keeps its column types, categories as Arrow dictionaries.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from attrition_mlops.data import contract
from attrition_mlops.data.validation import DataValidationError, Problem
from attrition_mlops.scoring.csv_input import MalformedRow, read_csv, reject_columns

_CATEGORICAL = [f.name for f in contract.FEATURES if not f.is_integer]


@dataclass(frozen=True)
class InputSource:
    """The data files of one input, read as a stream of fixed-size record batches.

    Parquet keeps its column types (categories come as Arrow dictionaries, so checking and
    encoding them costs a look-up per distinct value, not per row). CSV is read as text, so
    validation can name bad cells instead of Arrow guessing types.
    """

    files: tuple[Path, ...]
    parquet: bool

    def count_rows(self) -> int:
        if self.parquet:
            return sum(pq.read_metadata(f).num_rows for f in self.files)
        return sum(batch.num_rows for f in self.files for batch in read_csv(f))

    def batches(
        self, rows: int, malformed: list[MalformedRow] | None = None
    ) -> Iterator[pa.RecordBatch]:
        """Batches of exactly ``rows`` rows, except each file's last: parts and resume points
        then depend on the data and ``rows`` alone, not on row groups or CSV block sizes.
        CSV rows the parser had to skip are appended to ``malformed`` as they are read."""
        for batch, _ in self.located_batches(rows, malformed):
            yield batch

    def located_batches(
        self, rows: int, malformed: list[MalformedRow] | None = None
    ) -> Iterator[tuple[pa.RecordBatch, RowOrigin]]:
        """:meth:`batches`, each with where its rows come from (:class:`RowOrigin`)."""
        for f in self.files:
            skipped: list[MalformedRow] = []
            read = _read_parquet(f, rows) if self.parquet else read_csv(f, skipped)
            first, handed = 0, 0
            for batch in _rebatch(read, rows):
                if malformed is not None:
                    malformed.extend(skipped[handed:])
                handed = len(skipped)
                lines = None if self.parquet else tuple(m.line for m in skipped if m.line)
                yield batch, RowOrigin(f, first, lines)
                first += batch.num_rows

    def reject_columns(self) -> list[str] | None:
        """The columns of the rejects file for rows the parser skipped (CSV only)."""
        return None if self.parquet else reject_columns(self.files[0])


@dataclass(frozen=True)
class RowOrigin:
    """Where a batch's rows come from: the file, and each row's number as the file numbers it.

    ``source_row`` is, for CSV, the row's line in the file with the header as line 1 (the
    record number the CSV parser reports, which is also what a ragged row's reason quotes;
    blank lines, which the parser skips, are not counted), and for Parquet the row's position
    in the file, the first row being 1. ``first``: how many rows of the file the reader handed
    over before this batch. ``skipped_lines``: (CSV) the lines of the file's ragged rows read so
    far, which the parser left out of the batches but which keep their line numbers.
    """

    file: Path
    first: int
    skipped_lines: tuple[int, ...] | None = None

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """``source_row`` of the batch rows at ``positions`` (0-based within the batch)."""
        handed = self.first + np.asarray(positions, dtype=np.int64)
        if self.skipped_lines is None:
            return handed + 1
        # The i-th skipped line (sorted) comes after (line - 2 - i) handed-over rows: a row
        # follows every skipped line whose count is at most its own index.
        skipped = np.sort(np.asarray(self.skipped_lines, dtype=np.int64))
        before = skipped - 2 - np.arange(skipped.size)
        return handed + 2 + np.searchsorted(before, handed, side="right")

    def locate(self, rejects: pd.DataFrame) -> pd.DataFrame:
        """``rejects`` (indexed by position in the batch) with ``source_file`` and
        ``source_row`` in front."""
        located = rejects.reset_index(drop=True)
        located.insert(0, "source_row", self.rows(rejects.index.to_numpy()))
        located.insert(0, "source_file", str(self.file))
        return located


def open_input(path: Path) -> InputSource:
    """A file or a (hive-partitioned) folder of CSV files, or of Parquet files."""
    path = Path(path)
    if not path.exists():
        raise DataValidationError([Problem(None, f"{path}: no such file or folder")])
    files = _input_files(path)
    if not files:
        raise DataValidationError([Problem(None, f"{path}: no input files")])
    return InputSource(tuple(files), all(f.suffix in (".parquet", ".pq") for f in files))


def _read_parquet(path: Path, rows: int) -> Iterator[pa.RecordBatch]:
    try:
        # A buffered stream without pre-buffering decodes a batch at a time, not a whole row
        # group: memory follows ``batch_rows`` rather than how the writer grouped rows.
        reader = pq.ParquetFile(
            path, buffer_size=1 << 20, pre_buffer=False, read_dictionary=_CATEGORICAL
        )
    except (pa.ArrowException, OSError) as err:
        problem = Problem(None, f"{path}: not a readable Parquet file: {err}")
        raise DataValidationError([problem]) from err
    with reader:
        yield from reader.iter_batches(batch_size=rows, use_threads=False)


def _rebatch(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        pending.append(batch)
        held += batch.num_rows
        while held >= rows:
            table = pa.Table.from_batches(pending)
            yield _single_batch(table.slice(0, rows))
            rest = table.slice(rows)
            pending, held = rest.to_batches(), rest.num_rows
    if held:
        yield _single_batch(pa.Table.from_batches(pending))


def _single_batch(table: pa.Table) -> pa.RecordBatch:
    # One chunk per column (dictionaries unified), so the batch can be scored as one.
    return table.combine_chunks().to_batches()[0]


def fingerprint(path: Path) -> list[list]:
    """Identifies the input cheaply (path, size, mtime of each file) for resume decisions."""
    return [[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in _input_files(Path(path))]


def _input_files(path: Path) -> list[Path]:
    # Like Spark and pyarrow, names starting with "_" or "." (markers, temp files) are not data.
    if path.is_file():
        return [path]
    hidden = ("_", ".")
    return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(hidden))
