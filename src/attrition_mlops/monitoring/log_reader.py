"""The inference log read as columns: fast, streaming, with the schema's own verdicts.

:func:`inference_log.parse_line` (pydantic) is the definition of a valid line, and it stays the
judge here. Reading a million records through it one line at a time costs minutes, so lines are
read in chunks of ~16 MB and parsed by Arrow's JSON reader against the schema's types. The checks
the pydantic model makes (required fields, ranges, categories, the pseudonym pattern, list
lengths, an aware timestamp inside the file's ``date=`` partition day, a finite latency) are
then made on whole columns. Only a line that fails any of them, or that Arrow cannot read as one
clean object (wrong JSON types, an unknown field, a duplicate key, two objects on one line,
invalid UTF-8), is handed to ``parse_line``. That line is accepted or rejected exactly as the
line-by-line reader would (its coercions, such as a whole ``41.0`` for an integer, included;
``"41"`` and ``true`` are refused, as the API refuses them), and its rejection names the file,
line and first problem. The fast checks are stricter than the model, never looser, so the
verdicts are the same:
``tests/monitoring/test_log_reader.py`` holds the two readers to identical frames and
rejections on a corpus of broken lines.

A replayed line (a ``request_id`` an earlier valid line had) is dropped at the end, over the whole
window's columns at once (:func:`replayed_rows`), as :func:`inference_log.unique_requests` drops it
for the line reader: the first occurrence wins.

Lines are separated by ``\\n`` (JSON Lines; ``\\r\\n`` works too); a line holding only whitespace is
skipped. Memory: one chunk of text plus the selected columns of the records read so far.

The Arrow schema and the per-field checks are derived from the model in :mod:`log_schema`;
:mod:`log_columns` parses a batch and applies them. This module batches, dispatches and collects.
"""

from __future__ import annotations

import gc
import json
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import ValidationError

from attrition_mlops.data import contract, inference_log
from attrition_mlops.monitoring.log_columns import CHUNK_BYTES, Lines, read_lines
from attrition_mlops.monitoring.log_columns import _aware_timestamps as _aware_timestamps
from attrition_mlops.monitoring.log_schema import arrow_schema as arrow_schema

#: A run of lines Arrow cannot parse is halved until runs this short, then read line by line.
SMALL_RUN = 8
#: Output columns: as :func:`inference_log.records_to_frame` makes them.
COLUMNS = (*contract.INPUT_COLUMNS, *inference_log.EXTRA_COLUMNS)
#: Batches parsed at once, each by one thread: better on 2 cores than Arrow's threads in one batch.
PARSE_THREADS = max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class LineBatch:
    """Lines of one source: ``data`` is the lines joined by ``\\n`` (or see ``lines``).

    Batches of one source come in order; lines are numbered from 1 across them, unless
    ``numbers`` gives each line's number (lines picked out of a Log Analytics export).
    """

    source: str
    data: bytes | memoryview = b""
    numbers: list[int] | None = None
    #: The lines themselves, when they may hold a raw newline (then ``data`` is unused).
    lines: list[bytes] | None = None
    #: The ``date=`` partition the lines come from: each must be stamped on that UTC day.
    day: date | None = None


def export_batches(paths: Iterable[Path], chunk_bytes: int = CHUNK_BYTES) -> Iterator[LineBatch]:
    """The local export's files as batches of whole lines, ~``chunk_bytes`` at a time."""
    for path in paths:
        day = inference_log.partition_day(path)
        with open(path, "rb", buffering=0) as handle:
            tail = b""
            while True:  # read straight into the batch's buffer: no concatenation, no slice copy
                buffer = bytearray(len(tail) + chunk_bytes)
                buffer[: len(tail)] = tail
                got = handle.readinto(memoryview(buffer)[len(tail) :])
                if not got:
                    break
                end = len(tail) + got
                cut = buffer.rfind(b"\n", 0, end)
                if cut < 0:
                    tail = bytes(buffer[:end])
                    continue
                yield LineBatch(str(path), memoryview(buffer)[:cut], day=day)
                tail = bytes(buffer[cut + 1 : end])
            if tail:
                yield LineBatch(str(path), tail, day=day)


def read_frame(
    batches: Iterable[LineBatch],
    rejected: list[str] | None = None,
    duplicates: list[str] | None = None,
) -> pd.DataFrame:
    """One row per logged record, as ``records_to_frame(unique_requests(read_records(...)))``.

    A malformed line raises pydantic's ``ValidationError`` unless ``rejected`` is given: then
    ``"<source>:<line>: <problem> at <location>"`` is appended there and reading goes on. A line
    repeating an earlier line's ``request_id`` (a replay) is left out; its ``request_id`` is
    appended to ``duplicates`` when given.
    """
    reader = _Reader(rejected, duplicates)
    collecting = gc.isenabled()
    gc.disable()  # the read makes many short-lived objects and no cycles: no collector passes
    try:
        for parsed in _parse_ahead(batches):
            reader.read(parsed)
        return reader.frame()
    finally:
        if collecting:
            gc.enable()


@dataclass(frozen=True)
class _Parsed:
    batch: LineBatch
    n_lines: int
    table: pa.Table | None  # Arrow's reading of the whole batch, when it is plain


def _parse(batch: LineBatch) -> _Parsed:
    """Count the lines; parse the batch in one Arrow call if every line starts with "{"."""
    if batch.lines is not None:
        return _Parsed(batch, len(batch.lines), None)
    n_lines, plain = line_layout(batch.data)
    return _Parsed(batch, n_lines, read_lines(batch.data, n_lines) if plain else None)


def line_layout(data: bytes | memoryview) -> tuple[int, bool]:
    """(number of ``\\n``-separated lines, whether every one starts with "{").

    "Plain" rules out blank lines and a byte-order mark, which Arrow would skip but a line
    reader would not. numpy releases the GIL, so this runs well in the parse threads.
    """
    codes = np.frombuffer(data, dtype=np.uint8)
    starts = np.concatenate(([0], np.flatnonzero(codes == ord("\n")) + 1))
    plain = starts[-1] < codes.size and bool((codes[starts] == ord("{")).all())
    return starts.size, plain


def _parse_ahead(batches: Iterable[LineBatch]) -> Iterator[_Parsed]:
    """Parse the next batches in threads (Arrow releases the GIL) while the caller checks one."""
    with ThreadPoolExecutor(PARSE_THREADS, thread_name_prefix="log-reader") as pool:
        pending: deque[Future[_Parsed]] = deque()
        for batch in batches:
            pending.append(pool.submit(_parse, batch))
            if len(pending) > PARSE_THREADS:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class _Reader:
    def __init__(self, rejected: list[str] | None, duplicates: list[str] | None) -> None:
        self.rejected = rejected
        self.duplicates = duplicates
        self.parts: list[pa.Table] = []  # record columns plus "_line", the line's ordinal
        self.lines_seen = 0
        self.in_order = True
        self.source, self.first = "", 1

    def number(self, batch: LineBatch, index: int) -> int:
        return batch.numbers[index] if batch.numbers is not None else self.first + index

    def read(self, parsed: _Parsed) -> None:
        """A plain batch in one go; otherwise non-blank lines in runs (see :meth:`run`)."""
        batch = parsed.batch
        if batch.source != self.source:
            self.source, self.first = batch.source, 1
        if parsed.table is not None:
            self._accept(batch, parsed.table, list(range(parsed.n_lines)), None)
        else:
            lines = batch.lines if batch.lines is not None else bytes(batch.data).split(b"\n")
            kept = [i for i, line in enumerate(lines) if line and not line.isspace()]
            self.run(batch, kept, [lines[i] for i in kept])
        self.first += parsed.n_lines

    def run(self, batch: LineBatch, indexes: list[int], texts: list[bytes]) -> None:
        """Read these non-blank lines: Arrow first, halving the run where it cannot."""
        table = None
        if all(text[:1] == b"{" for text in texts):  # Arrow skips a byte-order mark; the model not
            table = read_lines(b"\n".join(texts), len(texts))
        if table is not None:
            self._accept(batch, table, indexes, texts)
        elif len(texts) <= SMALL_RUN:
            for index, text in zip(indexes, texts, strict=True):
                self._line(batch, index, text, self.lines_seen)
                self.lines_seen += 1
        else:
            middle = len(texts) // 2
            self.run(batch, indexes[:middle], texts[:middle])
            self.run(batch, indexes[middle:], texts[middle:])

    def _accept(
        self, batch: LineBatch, table: pa.Table, indexes: list[int], texts: list[bytes] | None
    ) -> None:
        """Keep the lines that pass the column checks; send the others to the model."""
        ordinal = self.lines_seen
        lines = Lines.of(table)
        good = lines.good(batch.day)
        if good.all():
            self._emit(lines.records(None, ordinal))
        else:
            self._emit(lines.records(good, ordinal))
            texts = texts if texts is not None else bytes(batch.data).split(b"\n")
            for i in (~good).nonzero()[0]:
                self._line(batch, indexes[i], texts[i], ordinal + int(i))
            self.in_order = False
        self.lines_seen += len(good)

    def _line(self, batch: LineBatch, index: int, raw: bytes, ordinal: int) -> None:
        """One line through the pydantic model, the reference: accept it or reject it."""
        text = raw.decode("utf-8", errors="replace")
        if not text.strip():
            return  # whitespace beyond ASCII: a blank line, as for the line reader
        try:
            record = inference_log.parse_line(text, batch.day)
        except ValidationError as err:
            if self.rejected is None:
                raise
            problem = err.errors()[0]
            where = f"{batch.source}:{self.number(batch, index)}"
            self.rejected.append(f"{where}: {problem['msg']} at {problem['loc']}")
            return
        # Re-serialised, the accepted record is canonical JSON that Arrow reads as-is.
        canonical = json.dumps(record.model_dump(mode="json"), separators=(",", ":")).encode()
        table = read_lines(canonical, 1)
        if table is None:  # pragma: no cover - the model's own output is always readable
            raise RuntimeError(f"cannot read back an accepted record: {canonical[:200]!r}")
        self._emit(Lines.of(table).records(None, ordinal))

    def _emit(self, records: pa.Table) -> None:
        if records.num_rows:
            self.parts.append(records)

    def frame(self) -> pd.DataFrame:
        if not self.parts:
            return _empty_frame()
        table = pa.concat_tables(self.parts)
        self.parts = []
        if not self.in_order:
            table = table.take(pc.sort_indices(table["_line"]))  # stable: records keep order
        replay = replayed_rows(table["_line"], table["request_id"])
        if replay.any():
            if self.duplicates is not None:
                first_rows = np.flatnonzero(replay & _line_starts(table["_line"]))
                self.duplicates += table["request_id"].take(first_rows).to_pylist()
            table = table.filter(pa.array(~replay))
        return _to_frame(table.drop_columns(["_line"]))


def _line_starts(lines: pa.ChunkedArray) -> np.ndarray:
    """Per row (rows ordered by line): is it the first record of its line?"""
    line = lines.to_numpy()
    return np.concatenate(([True], line[1:] != line[:-1])) if line.size else line.astype(bool)


def replayed_rows(lines: pa.ChunkedArray, request_ids: pa.ChunkedArray) -> np.ndarray:
    """Per row: does it belong to a line whose ``request_id`` an earlier line already had?

    Rows are ordered by line and a line's records are adjacent, so each line is its first row;
    the first line of each ``request_id`` wins (vectorised: no loop over lines).
    """
    starts = _line_starts(lines)
    first_rows = np.flatnonzero(starts)
    ids = request_ids.take(pa.array(first_rows)).combine_chunks()
    codes = ids.dictionary_encode().indices.to_numpy(zero_copy_only=False)
    replayed = np.ones(first_rows.size, dtype=bool)
    replayed[np.unique(codes, return_index=True)[1]] = False  # first occurrence of each id
    rows_per_line = np.diff(np.append(first_rows, starts.size))
    return np.repeat(replayed, rows_per_line)


def _to_frame(table: pa.Table) -> pd.DataFrame:
    return table.select(list(COLUMNS)).to_pandas()  # large_string: pandas "str", no copy


def _empty_frame() -> pd.DataFrame:
    return inference_log.records_to_frame([])
