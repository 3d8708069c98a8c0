"""A batch of log lines as Arrow columns, and the column checks that stand in for the model.

Arrow's JSON reader parses a batch against :func:`log_schema.arrow_schema`; :class:`Lines` then
holds its line-level columns and its flattened records and predictions, and :meth:`Lines.good`
tells which lines pass every check the pydantic model makes. The per-field checks come from
:mod:`log_schema` (derived from the model); the two rules across fields (list lengths equal to
``n_records``, a timestamp inside the partition day) are the model's validators, made here.
See :mod:`log_reader` for how lines that fail are handed to the model itself.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
from pydantic import AwareDatetime, TypeAdapter, ValidationError

from attrition_mlops.data import contract, inference_log
from attrition_mlops.monitoring import log_schema

CHUNK_BYTES = 16 << 20
_READ_OPTIONS = pa_json.ReadOptions(use_threads=False, block_size=CHUNK_BYTES * 2)
_TIMESTAMPS = TypeAdapter(list[AwareDatetime])
_ISO_AWARE = (
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?"
    r"(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$"
)
_RULES = {rule.name: rule for rule in log_schema.field_rules()}
#: The list fields, flattened to one row per element: inputs (records), outputs (predictions).
_LISTS = tuple(rule for rule in _RULES.values() if rule.items is not None)
#: Fields the model fills in when a line omits them (``simulated`` on lines older than it).
_DEFAULTS = {rule.name: rule.default for rule in _RULES.values() if not rule.required}
_FREE_TEXT = tuple(rule.name for rule in _RULES.values() if rule.free_text)
#: The timestamp (parsed and checked by :func:`_aware_timestamps`, not by a column check).
(_STAMP,) = (rule.name for rule in _RULES.values() if rule.timestamp)
_COUNT = "n_records"  # the model's validator: every list holds this many elements
#: Fields checked per line; list elements are checked once flattened.
_LINE_RULES = tuple(rule for rule in _RULES.values() if not (rule.timestamp or rule.items))
#: The columns a prediction adds to the frame (probability, label, is_outlier).
PREDICTION_COLUMNS = tuple(rule.name for rule in _RULES["outputs"].items or ())


@functools.cache
def _parse_options() -> pa_json.ParseOptions:
    return pa_json.ParseOptions(
        explicit_schema=log_schema.arrow_schema(), unexpected_field_behavior="error"
    )


def read_lines(data: bytes | memoryview, n_lines: int) -> pa.Table | None:
    """Arrow's reading of the lines, or None unless each line is exactly one typed object."""
    try:
        table = pa_json.read_json(pa.py_buffer(data), _READ_OPTIONS, _parse_options())
        if table.num_rows != n_lines:
            return None  # "{…}{…}" on one line is 2 rows
        for name in _FREE_TEXT:
            table[name].validate(full=True)  # Arrow passes invalid UTF-8 on; the model replaces it
    except pa.ArrowInvalid:
        return None
    for name, default in _DEFAULTS.items():
        if table[name].null_count and not re.search(re.escape(f'"{name}"').encode(), data):
            # No line writes the key (lines from before it existed): absent means the model's
            # default. Where the key is written, a null is an explicit null, which the model judges.
            index = table.schema.get_field_index(name)
            table = table.set_column(index, name, pc.fill_null(table[name], default))
    return table


@dataclass(frozen=True)
class Lines:
    """A parsed batch: the line-level columns and each list field flattened.

    ``flat[name]`` is a list field's elements (records for ``inputs``, predictions for
    ``outputs``) and the line each came from.
    """

    table: pa.Table
    flat: dict[str, tuple[pa.StructArray, np.ndarray]]
    stamps: pa.Array  # per line, UTC (null where invalid)
    aware: np.ndarray  # per line: a valid aware timestamp?

    @classmethod
    def of(cls, table: pa.Table) -> Lines:
        table = table.combine_chunks()
        stamps, aware = _aware_timestamps(table[_STAMP])

        def flat(name: str) -> tuple[pa.StructArray, np.ndarray]:
            column = table[name].chunk(0) if table.num_rows else pa.array([], table[name].type)
            return column.flatten(), pc.list_parent_indices(column).to_numpy()

        return cls(table, {rule.name: flat(rule.name) for rule in _LISTS}, stamps, aware)

    def good(self, day: date | None = None) -> np.ndarray:
        """Per line: does it pass every check the pydantic model makes (never fewer)?

        ``day``: the lines' partition day; a timestamp outside it fails, as in the model.
        """
        table, aware = self.table, self.aware
        if day is not None:
            start, stop = (
                pa.scalar(t, pa.timestamp("us", tz="UTC")) for t in inference_log.day_bounds(day)
            )
            aware = aware & _all(pc.greater_equal(self.stamps, start), pc.less(self.stamps, stop))
        good = aware & _all(
            *_checks(table.column, _LINE_RULES),
            # The model's validator: each list holds n_records elements.
            *(pc.equal(pc.list_value_length(table[rule.name]), table[_COUNT]) for rule in _LISTS),
        )
        for rule in _LISTS:
            items, line = self.flat[rule.name]
            ok = _all(pc.is_valid(items), *_checks(items.field, rule.items or ()))
            good[np.unique(line[~ok])] = False
        return good

    def records(self, good: np.ndarray | None, first_ordinal: int) -> pa.Table:
        """Output columns of the records of the good lines (all if None), plus ``_line``."""
        (inputs, line), (outputs, output_line) = self.flat["inputs"], self.flat["outputs"]
        if good is not None:
            inputs, outputs = (
                inputs.filter(pa.array(good[line])),
                outputs.filter(pa.array(good[output_line])),
            )
            line = line[good[line]]
        taken = pa.array(line)
        columns = {name: inputs.field(name) for name in contract.INPUT_COLUMNS}
        for name in inference_log.EXTRA_COLUMNS:
            if name == _STAMP:
                columns[name] = self.stamps.take(taken)
            elif name in PREDICTION_COLUMNS:
                columns[name] = outputs.field(name)
            else:
                columns[name] = self.table[name].take(taken)
        columns["_line"] = pa.array(line + first_ordinal, type=pa.int64())
        return pa.table(columns)


def _checks(
    column: Callable[[str], pa.Array | pa.ChunkedArray], rules: Iterable[log_schema.FieldRule]
) -> Iterator[pa.Array | pa.ChunkedArray | np.ndarray]:
    """Every derived check of these fields, ``column(name)`` giving a field's values."""
    for rule in rules:
        yield from log_schema.column_checks(column(rule.name), rule)


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
        parsed = [
            _TIMESTAMPS.validate_python([t])[0] if keep else None
            for t, keep in zip(texts, ok, strict=True)
        ]
    else:
        parsed = [value if keep else None for value, keep in zip(parsed, ok, strict=True)]
    return pa.array(parsed, type=pa.timestamp("us", tz="UTC")), ok
