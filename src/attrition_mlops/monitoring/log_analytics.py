"""Azure Log Analytics data export of ``ContainerLogV2``: the service's log lines inside it.

The export holds one JSON record per line, under any folder layout. A record's ``LogMessage`` is
what the container wrote to stdout: for the API, one inference-log line, as a string or already
parsed into an object. Other container output (access logs, warnings) is skipped, and a line
that is not a JSON record is listed in ``rejected``.

The records are read in batches with Arrow (``LogMessage`` as text, every other field ignored),
and the inference lines are handed on, with their line numbers in the export file, to
:mod:`attrition_mlops.monitoring.log_reader`, which validates them. A batch Arrow cannot read
that way (a
``LogMessage`` that is an object, a line that is not an object, invalid UTF-8, a message with a
raw newline) is read record by record with ``json`` instead, with the same outcome.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from attrition_mlops.data import inference_log
from attrition_mlops.monitoring.log_reader import (
    CHUNK_BYTES,
    LineBatch,
    export_batches,
    line_layout,
)

_SCHEMA = pa.schema([("LogMessage", pa.large_string())])
_OPTIONS = pa_json.ParseOptions(explicit_schema=_SCHEMA, unexpected_field_behavior="ignore")


def batches(
    folder: Path, rejected: list[str], chunk_bytes: int = CHUNK_BYTES
) -> Iterator[LineBatch]:
    """The inference lines of every export file under ``folder``, numbered by export line."""
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        first = 1
        for chunk in export_batches([path], chunk_bytes):
            data = chunk.data
            n_lines, plain = line_layout(data)
            found = _messages(data, n_lines) if plain else None  # else json judges line by line
            if found is None:
                yield from _record_by_record(str(path), bytes(data), first, rejected)
            elif found[0].size:
                indexes, joined = found
                yield LineBatch(str(path), joined, numbers=(first + indexes).tolist())
            first += n_lines


def _messages(data: bytes | memoryview, n_lines: int) -> tuple[np.ndarray, memoryview] | None:
    """(indexes of the inference lines, those messages joined by newlines), or None."""
    try:
        table = pa_json.read_json(pa.py_buffer(data), parse_options=_OPTIONS)
        messages = table["LogMessage"].combine_chunks()
        messages.validate(full=True)  # Arrow passes invalid UTF-8 on
    except pa.ArrowInvalid:
        return None
    if table.num_rows != n_lines:
        return None  # "{…}{…}" on one line
    ours = pc.and_(
        pc.starts_with(messages, "{"), pc.match_substring(messages, inference_log.EVENT_MARKER)
    )  # as inference_log.is_inference_line decides
    wanted = pc.fill_null(ours, False)
    kept = messages.filter(wanted)
    if pc.any(pc.match_substring(kept, "\n")).as_py():
        return None  # a raw newline would split a message into two lines
    indexes = np.flatnonzero(wanted.to_numpy(zero_copy_only=False))
    one_list = pa.LargeListArray.from_arrays(pa.array([0, len(kept)], pa.int64()), kept)
    joined = pc.binary_join(one_list, pa.scalar("\n", pa.large_string()))[0]
    return indexes, memoryview(joined.as_buffer()) if indexes.size else memoryview(b"")


def _record_by_record(
    source: str, data: bytes, first: int, rejected: list[str]
) -> Iterator[LineBatch]:
    numbers: list[int] = []
    texts: list[bytes] = []
    for number, raw in enumerate(data.split(b"\n"), start=first):
        line = raw.decode("utf-8", errors="replace")
        if not line.strip():
            continue
        try:
            message = json.loads(line).get("LogMessage")
        except (json.JSONDecodeError, AttributeError):
            rejected.append(f"{source}:{number}: not a JSON record")
            continue
        if not isinstance(message, str):  # the export may hold it already parsed
            message = json.dumps(message or {}, separators=(",", ":"))
        if inference_log.is_inference_line(message):
            numbers.append(number)
            texts.append(message.encode("utf-8", errors="replace"))
    if texts:
        yield LineBatch(source, numbers=numbers, lines=texts)
