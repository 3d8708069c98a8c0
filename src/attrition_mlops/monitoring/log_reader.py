"""The inference log read as columns: fast, streaming, with the schema's own verdicts.

:func:`inference_log.parse_line` (pydantic) is the definition of a valid line, and it stays the
judge here. Reading a million records through it one line at a time costs minutes, so lines are
read in chunks of ~16 MB and parsed by Arrow's JSON reader against the schema's types. The checks
the pydantic model makes (required fields, ranges, categories, the pseudonym pattern, list
lengths, an aware timestamp inside the file's ``date=`` partition day, a finite latency) are
then made on whole columns. Only a line that fails any of them, or that Arrow cannot read as one
clean object (wrong JSON types, an unknown field, a duplicate key, two objects on one line,
invalid UTF-8), is handed to ``parse_line``. That line is accepted or
rejected exactly as the line-by-line reader would (lax coercions such as ``41.0`` for an integer
included), and its rejection names the file, line and first problem. The fast checks are
stricter than the model, never looser, so the verdicts are the same: ``tests/test_log_reader.py``
holds the two readers to identical frames and rejections on a corpus of broken lines.

A replayed line (a ``request_id`` an earlier valid line had) is dropped at the end, over the whole
window's columns at once (:func:`replayed_rows`), as :func:`inference_log.unique_requests` drops it
for the line reader: the first occurrence wins.

Lines are separated by ``\\n`` (JSON Lines; ``\\r\\n`` works too); a line holding only whitespace is
skipped. Memory: one chunk of text plus the selected columns of the records read so far.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import re
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
import pyarrow.json as pa_json
from pydantic import AwareDatetime, TypeAdapter, ValidationError

from attrition_mlops.data import contract, inference_log

CHUNK_BYTES = 16 << 20
#: A run of lines Arrow cannot parse is halved until runs this short, then read line by line.
SMALL_RUN = 8
#: Output columns: as :func:`inference_log.records_to_frame` makes them.
COLUMNS = (*contract.INPUT_COLUMNS, *inference_log.EXTRA_COLUMNS)
_TIMESTAMPS = TypeAdapter(list[AwareDatetime])
_ISO_AWARE = (
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?"
    r"(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$"
)
#: Batches parsed at once, each by one thread: better on 2 cores than Arrow's threads in one batch.
PARSE_THREADS = max(1, min(4, os.cpu_count() or 1))
_READ_OPTIONS = pa_json.ReadOptions(use_threads=False, block_size=CHUNK_BYTES * 2)
#: String fields that no category or pattern check would catch invalid UTF-8 in.
_FREE_TEXT = ("event", "timestamp", "request_id", "model_name", "model_version")


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
    return _Parsed(batch, n_lines, _arrow(batch.data, n_lines) if plain else None)


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
            table = _arrow(b"\n".join(texts), len(texts))
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
        lines = _Lines.of(table)
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
        table = _arrow(canonical, 1)
        if table is None:  # pragma: no cover - the model's own output is always readable
            raise RuntimeError(f"cannot read back an accepted record: {canonical[:200]!r}")
        self._emit(_Lines.of(table).records(None, ordinal))

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


@functools.cache
def arrow_schema() -> pa.Schema:
    """The log line's JSON types, from the contract (as :class:`InferenceRecord` declares them)."""
    employee = pa.struct(
        [
            (
                f.name,
                pa.int64() if f.is_integer and f.name != contract.ID_COLUMN else pa.large_string(),
            )
            for f in contract.FEATURES
        ]
    )
    prediction = pa.struct(
        [("probability", pa.float64()), ("label", pa.large_string()), ("is_outlier", pa.bool_())]
    )
    return pa.schema(
        [
            ("schema_version", pa.int64()),
            ("event", pa.large_string()),
            ("timestamp", pa.large_string()),
            ("request_id", pa.large_string()),
            ("model_name", pa.large_string()),
            ("model_version", pa.large_string()),
            ("inputs", pa.list_(employee)),
            ("outputs", pa.list_(prediction)),
            ("latency_ms", pa.float64()),
            ("n_records", pa.int64()),
            ("simulated", pa.bool_()),
        ]
    )


@functools.cache
def _parse_options() -> pa_json.ParseOptions:
    return pa_json.ParseOptions(explicit_schema=arrow_schema(), unexpected_field_behavior="error")


def _arrow(data: bytes | memoryview, n_lines: int) -> pa.Table | None:
    """Arrow's reading of the lines, or None unless each line is exactly one typed object."""
    try:
        table = pa_json.read_json(pa.py_buffer(data), _READ_OPTIONS, _parse_options())
        if table.num_rows != n_lines:
            return None  # "{…}{…}" on one line is 2 rows
        for name in _FREE_TEXT:
            table[name].validate(full=True)  # Arrow passes invalid UTF-8 on; the model replaces it
    except pa.ArrowInvalid:
        return None
    if table["simulated"].null_count and not re.search(rb'"simulated"', data):
        # Lines from before the field existed: absent means the model's default, False. (Where
        # the key is written, a null is an explicit null, which the model judges.)
        index = table.schema.get_field_index("simulated")
        table = table.set_column(index, "simulated", pc.fill_null(table["simulated"], False))
    return table


@dataclass(frozen=True)
class _Lines:
    """A parsed batch: the line-level columns and the flattened records and predictions."""

    table: pa.Table
    inputs: pa.StructArray
    outputs: pa.StructArray
    input_line: np.ndarray  # the line of each record
    output_line: np.ndarray
    stamps: pa.Array  # per line, UTC (null where invalid)
    aware: np.ndarray  # per line: a valid aware timestamp?

    @classmethod
    def of(cls, table: pa.Table) -> _Lines:
        table = table.combine_chunks()
        stamps, aware = _aware_timestamps(table["timestamp"])

        def flat(name: str) -> tuple[pa.StructArray, np.ndarray]:
            column = table[name].chunk(0) if table.num_rows else pa.array([], table[name].type)
            return column.flatten(), pc.list_parent_indices(column).to_numpy()

        (inputs, input_line), (outputs, output_line) = flat("inputs"), flat("outputs")
        return cls(table, inputs, outputs, input_line, output_line, stamps, aware)

    def good(self, day: date | None = None) -> np.ndarray:
        """Per line: does it pass every check the pydantic model makes (never fewer)?

        ``day``: the lines' partition day; a timestamp outside it fails, as in the model.
        """
        table, aware = self.table, self.aware
        if day is not None:
            start, stop = (pa.scalar(t, pa.timestamp("us", tz="UTC"))
                           for t in inference_log.day_bounds(day))  # fmt: skip
            aware = aware & _all(pc.greater_equal(self.stamps, start), pc.less(self.stamps, stop))
        good = aware & _all(
            pc.equal(table["schema_version"], 1),
            pc.equal(table["event"], inference_log.EVENT),
            pc.is_valid(table["request_id"]),
            pc.is_valid(table["model_name"]),
            pc.is_valid(table["model_version"]),
            pc.is_valid(table["simulated"]),  # absent (older lines) or null: the model decides
            pc.greater_equal(table["latency_ms"], 0.0),
            pc.is_finite(table["latency_ms"]),
            pc.greater_equal(table["n_records"], 1),
            pc.equal(pc.list_value_length(table["inputs"]), table["n_records"]),
            pc.equal(pc.list_value_length(table["outputs"]), table["n_records"]),
        )
        for items, line, checks in (
            (self.inputs, self.input_line, _employee_checks),
            (self.outputs, self.output_line, _prediction_checks),
        ):
            ok = _all(pc.is_valid(items), *checks(items))
            good[np.unique(line[~ok])] = False
        return good

    def records(self, good: np.ndarray | None, first_ordinal: int) -> pa.Table:
        """Output columns of the records of the good lines (all if None), plus ``_line``."""
        inputs, outputs, line = self.inputs, self.outputs, self.input_line
        if good is not None:
            inputs = inputs.filter(pa.array(good[self.input_line]))
            outputs = outputs.filter(pa.array(good[self.output_line]))
            line = line[good[self.input_line]]
        taken = pa.array(line)
        columns = {name: inputs.field(name) for name in contract.INPUT_COLUMNS}
        columns |= {
            "model_version": self.table["model_version"].take(taken),
            "timestamp": self.stamps.take(taken),
            "request_id": self.table["request_id"].take(taken),
            **{name: outputs.field(name) for name in ("probability", "label", "is_outlier")},
            "simulated": self.table["simulated"].take(taken),
            "_line": pa.array(line + first_ordinal, type=pa.int64()),
        }
        return pa.table(columns)


def _employee_checks(items: pa.StructArray) -> Iterator[pa.Array | np.ndarray]:
    for feature in contract.FEATURES:
        values = items.field(feature.name)
        if feature.name == contract.ID_COLUMN:
            yield pc.match_substring_regex(values, inference_log.PSEUDONYM_PATTERN)
        elif feature.is_integer:
            yield pc.is_valid(values)
            numbers = values.fill_null(0).to_numpy()
            if feature.minimum is not None:
                yield numbers >= feature.minimum
            if feature.maximum is not None:
                yield numbers <= feature.maximum
        else:
            yield pc.is_in(values, value_set=pa.array(feature.categories))


def _prediction_checks(items: pa.StructArray) -> Iterator[pa.Array]:
    probability = items.field("probability")
    yield pc.greater_equal(probability, 0.0)  # NaN and null fail both
    yield pc.less_equal(probability, 1.0)
    yield pc.is_in(items.field("label"), value_set=pa.array(["No", "Yes"]))
    yield pc.is_valid(items.field("is_outlier"))


def _all(*conditions: pa.Array | pa.ChunkedArray | np.ndarray) -> np.ndarray:
    """AND of boolean columns (Arrow or numpy), an Arrow null counting as False."""
    result: np.ndarray | None = None
    for condition in conditions:
        if not isinstance(condition, np.ndarray):
            condition = pc.fill_null(condition, False).to_numpy(zero_copy_only=False)
        result = condition if result is None else result & condition
    assert result is not None
    return np.asarray(result, dtype=bool)


def _aware_timestamps(column: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """The timestamps as pydantic parses them (UTC instants), and which lines have a valid one.

    Strict ISO 8601 with an offset, as the API writes it, is parsed by Arrow; when any value is
    not of that form, or not a real date, pydantic parses them all, as ``parse_line`` would.
    """
    if pc.all(pc.match_substring_regex(column, _ISO_AWARE)).as_py():  # null: False
        try:
            stamps = pc.cast(column, pa.timestamp("us", tz="UTC"))
            return pa.concat_arrays(stamps.chunks), np.ones(len(column), dtype=bool)
        except pa.ArrowInvalid:  # e.g. 30 February
            pass
    texts = column.to_pylist()
    ok = np.array([text is not None for text in texts], dtype=bool)
    try:
        parsed = _TIMESTAMPS.validate_python([text or "" for text in texts])
    except ValidationError as err:
        for problem in err.errors():
            ok[problem["loc"][0]] = False
        parsed = [_TIMESTAMPS.validate_python([t])[0] if keep else None
                  for t, keep in zip(texts, ok, strict=True)]  # fmt: skip
    else:
        parsed = [value if keep else None for value, keep in zip(parsed, ok, strict=True)]
    return pa.array(parsed, type=pa.timestamp("us", tz="UTC")), ok


def _to_frame(table: pa.Table) -> pd.DataFrame:
    return table.select(list(COLUMNS)).to_pandas()  # large_string: pandas "str", no copy


def _empty_frame() -> pd.DataFrame:
    return inference_log.records_to_frame([])
