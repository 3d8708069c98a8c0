"""Reading a CSV input for batch scoring: text columns, malformed rows named, never a traceback.

A **ragged row** (more or fewer fields than the header) is skipped by the parser and handed to
the caller as a :class:`MalformedRow` with its line number and text, to be rejected with a
reason like any invalid row. Faults after which the parser cannot tell where rows begin, an
**unterminated quote** or **bytes that are not UTF-8**, stop the run with a
DataValidationError naming the file and line: nothing is published.

The parser runs single-threaded: only then does it know each bad row's line number (and on the
2-core machine it measured no slower, docs/batch-scoring.md).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from attrition_mlops.data import contract
from attrition_mlops.data.validation import DataValidationError, Problem

_CATEGORY = pa.dictionary(pa.int32(), pa.string())
_CATEGORICAL = frozenset(f.name for f in contract.FEATURES if not f.is_integer)
_SHOWN = 200  # characters of a malformed line quoted in its reason


@dataclass(frozen=True)
class MalformedRow:
    """A row the parser skipped because its field count differs from the header's."""

    path: Path
    line: int | None  # the record's line in the file, 1 = the header (blank lines not counted)
    fields: int
    expected: int
    text: str

    def reason(self) -> str:
        where = f"line {self.line}" if self.line is not None else "a line"
        text = self.text if len(self.text) <= _SHOWN else self.text[:_SHOWN] + "…"
        return (
            f"{self.path.name} {where}: malformed CSV row, {self.fields} fields where the header "
            f"has {self.expected} (the line as read: {text!r})"
        )


def read_csv(path: Path, malformed: list[MalformedRow] | None = None) -> Iterator[pa.RecordBatch]:
    """Batches of ``path`` as text (categories as dictionaries); ragged rows go to ``malformed``.

    ``malformed`` fills as the file is read: after each batch it holds the ragged rows read so
    far. Without a list, ragged rows are only counted out (for a row count).
    """
    header = _header(path)
    types = {name: _CATEGORY if name in _CATEGORICAL else pa.string() for name in header}

    def on_invalid(row: pacsv.InvalidRow) -> str:
        if "\n" in row.text or "\r" in row.text:
            return "error"  # a quote ran over line ends: rows can no longer be told apart
        if malformed is not None:
            malformed.append(
                MalformedRow(path, row.number, row.actual_columns, row.expected_columns, row.text)
            )
        return "skip"

    try:
        with pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(column_types=types),
        ) as reader:
            yield from reader
    except pa.ArrowInvalid as err:
        raise DataValidationError([Problem(None, locate_fault(path, str(err)))]) from err


def malformed_frame(rows: list[MalformedRow], columns: list[str]) -> pd.DataFrame:
    """Rejects for ragged rows, shaped like the other rejects: ``source_file``, ``source_row``
    (the line), the input columns (left empty: fields that do not line up with the header
    cannot be assigned to them) plus ``reason``."""
    frame = pd.DataFrame({name: [None] * len(rows) for name in columns}, dtype=object)
    frame.insert(0, "source_row", pd.array([row.line for row in rows], dtype="Int64"))
    frame.insert(0, "source_file", [str(row.path) for row in rows])
    frame["reason"] = [row.reason() for row in rows]
    return frame


def reject_columns(path: Path) -> list[str]:
    """The columns rejected rows of ``path`` carry (its header without the label)."""
    return [name for name in _header(path) if name != contract.LABEL]


def _header(path: Path) -> list[str]:
    with path.open("rb") as handle:
        first = handle.readline()
    try:
        text = first.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataValidationError([Problem(None, _not_utf8(path, 1, first, err))]) from None
    header = next(csv.reader([text]), None)
    if not header:
        raise DataValidationError([Problem(None, f"{path}: empty file, no header row")])
    return header


def locate_fault(path: Path, parser_message: str) -> str:
    """Name the first line that breaks the CSV format, scanning the file (on failure only)."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as err:
                return _not_utf8(path, number, line, err)
            if line.count(b'"') % 2:
                return (
                    f"{path} line {number}: unterminated quote, a quoted value is not closed on "
                    f"its line; fix the quoting and run again (nothing was published)"
                )
    return f"{path}: not a readable CSV file ({parser_message}); nothing was published"


def _not_utf8(path: Path, number: int, line: bytes, err: UnicodeDecodeError) -> str:
    bad = line[err.start : err.start + 1].hex()
    return (
        f"{path} line {number}: not valid UTF-8 (byte 0x{bad} at byte {err.start + 1} of the "
        f"line); save the file as UTF-8 and run again (nothing was published)"
    )
