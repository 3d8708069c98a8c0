"""Batch scoring on Arrow columns: vectorised contract checks and the compiled model.

The batch scorer's hot path. A record batch is checked column by column with Arrow and NumPy
kernels (typed Parquet columns are compared as numbers, never turned into text), and the valid
rows go through the compiled model runtime that serving uses too
(:mod:`attrition_mlops.model.compiled`), fed whole columns through the encoders' public
``encode_columns``: one-hot indicators set by one scatter per column instead of a Python loop
per row.

Two references keep it honest:

- **Validation.** :func:`attrition_mlops.data.validation.split_valid_rows` stays the definition of a
  valid row. Rows the vectorised check flags are handed to it: it writes the reasons, and a row
  it accepts is scored after all. A column type with no vectorised check here (booleans, dates,
  decimals) sends the whole batch through it. Tests hold both checks to the same verdicts on
  hostile input.
- **The sklearn pipeline.** The compiled model is compared with it on the first rows it scores,
  by the runtime's one agreement rule (``model.compiled.check``); if they disagree, or the
  pipeline holds a step the compiler does not know, scoring stays on sklearn for the whole run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from attrition_mlops.data import contract
from attrition_mlops.data.validation import WHOLE_NUMBER, split_valid_rows
from attrition_mlops.model.compiled import (
    CompiledEncoder,
    CompiledModel,
    UnsupportedPipelineError,
    agrees,
    disagreement,
)
from attrition_mlops.model.predictor import AttritionPredictor

log = logging.getLogger(__name__)

#: Integer fields in contract order: the column order of ``Columns.integers``.
INTEGER_COLUMNS = tuple(f.name for f in contract.FEATURES if f.is_integer)
_INTEGER_INDEX = {name: i for i, name in enumerate(INTEGER_COLUMNS)}
_ID_INDEX = _INTEGER_INDEX[contract.ID_COLUMN]
#: ``validation.WHOLE_NUMBER``, anchored for RE2's search (Python's ``fullmatch`` anchors there).
_WHOLE_NUMBER = f"^(?:{WHOLE_NUMBER})$"
#: The first rows of a run, scored both ways and held to ``model.compiled``'s tolerance.
SELF_CHECK_ROWS = 1_000


@dataclass(frozen=True)
class Columns:
    """Rows that passed the contract: integers as one float64 matrix (``INTEGER_COLUMNS``
    order; exact, contract integers are far below 2**53), categories as Arrow text."""

    integers: np.ndarray
    text: dict[str, pa.Array]

    @property
    def n(self) -> int:
        return len(self.integers)

    @property
    def ids(self) -> np.ndarray:
        return self.integers[:, _ID_INDEX].astype(np.int64)

    def filter(self, rows: np.ndarray) -> Columns:
        mask = pa.array(rows, type=pa.bool_())
        return Columns(self.integers[rows], {k: v.filter(mask) for k, v in self.text.items()})

    def head(self, n: int) -> Columns:
        return Columns(self.integers[:n], {k: v.slice(0, n) for k, v in self.text.items()})

    def to_frame(self) -> pd.DataFrame:
        """The typed frame ``split_valid_rows`` would return (aliases normalised)."""
        data: dict[str, object] = {}
        for feature in contract.FEATURES:
            if feature.is_integer:
                data[feature.name] = self.integers[:, _INTEGER_INDEX[feature.name]].astype("int64")
            else:
                text = _decoded(self.text[feature.name])
                for alias, canonical in feature.aliases.items():
                    text = pc.if_else(pc.equal(text, alias), canonical, text)
                data[feature.name] = pd.Series(text.to_numpy(zero_copy_only=False), dtype="str")
        return pd.DataFrame(data)


def split_batch(batch: pa.RecordBatch) -> tuple[list[Columns], pd.DataFrame]:
    """(valid rows, rejected rows as received plus ``reason``) of one batch of input rows.

    A label column is ignored. Column-level problems raise DataValidationError, as in
    ``split_valid_rows``. Rows the reference check rescues come after the others. The rejects
    are indexed by their position in ``batch`` (where they came from, for the rejects file).
    """
    if contract.LABEL in batch.schema.names:
        batch = batch.drop_columns([contract.LABEL])
    _check_header(tuple(batch.schema.names))
    checked = check_batch(batch)
    if checked is None:  # a column type without a vectorised check
        return _reference(batch)
    bad, columns = checked
    if not bad.any():
        return [columns], pd.DataFrame()
    rescued, rejects = _reference(batch.filter(pa.array(bad)))
    rejects.index = np.flatnonzero(bad)[rejects.index.to_numpy()]  # positions in ``batch``
    return [columns.filter(~bad), *rescued], rejects


@lru_cache(maxsize=64)
def _check_header(names: tuple[str, ...]) -> None:
    # The reference check on zero rows: same errors, same wording as for a pandas batch.
    split_valid_rows(pd.DataFrame(columns=list(names)))


def _reference(batch: pa.RecordBatch) -> tuple[list[Columns], pd.DataFrame]:
    valid, rejects = split_valid_rows(batch.to_pandas())
    if valid.empty:
        return [], rejects
    typed = pa.RecordBatch.from_pandas(valid[list(contract.INPUT_COLUMNS)], preserve_index=False)
    checked = check_batch(typed)
    if checked is None:
        raise TypeError(f"typed frame has a column type without a vectorised check: {typed.schema}")
    return [checked[1]], rejects  # the reference's verdict stands


def check_batch(batch: pa.RecordBatch) -> tuple[np.ndarray, Columns] | None:
    """(invalid-row mask, columns) of a batch holding every contract input column, or None
    when some column's Arrow type has no vectorised check."""
    n = batch.num_rows
    bad = np.zeros(n, dtype=bool)
    # Column-major, so each integer column is written in one contiguous pass.
    integers = np.empty((n, len(INTEGER_COLUMNS)), dtype=np.float64, order="F")
    text: dict[str, pa.Array] = {}
    for feature in contract.FEATURES:
        array = batch.column(feature.name)
        if pa.types.is_string_view(array.type):
            array = array.cast(pa.large_string())
        if feature.is_integer:
            array = _decoded(array)
            invalid = _check_integers(array, feature, integers[:, _INTEGER_INDEX[feature.name]])
        elif _is_text(array.type):
            invalid = positions(array, pa.array(feature.allowed_values)) < 0  # null: not found
            invalid = invalid if invalid.any() else False
            text[feature.name] = array
        else:
            invalid = None
        if invalid is None:
            return None
        bad |= invalid
    return bad, Columns(integers, text)


def _check_integers(array: pa.Array, feature: contract.Feature, out: np.ndarray):
    """Write the float64 values into ``out``; return the invalid mask (``validation``'s
    verdicts), False when every row is valid, or None for a type without a check here."""
    lo, hi = feature.minimum, feature.maximum
    kind = array.type
    if pa.types.is_integer(kind):
        if len(array) == 0:
            return False
        # A null gets a placeholder value and is flagged below.
        values = (array.fill_null(lo) if array.null_count else array).to_numpy()
        out[:] = values
        low, high = pc.min_max(array).values()  # one pass; per-row masks only if needed
        if array.null_count == 0 and low.as_py() >= lo and high.as_py() <= hi:
            return False
        return array.is_null().to_numpy(zero_copy_only=False) | (values < lo) | (values > hi)
    if pa.types.is_floating(kind):
        out[:] = array.to_numpy(zero_copy_only=False)  # null -> NaN
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(out) & (out == np.floor(out))
        return ~whole | (out < lo) | (out > hi)
    if _is_text(kind):
        trimmed = pc.utf8_trim_whitespace(array)  # same characters as str.strip (tested)
        whole = pc.match_substring_regex(trimmed, _WHOLE_NUMBER).fill_null(False)
        numbers = pc.cast(pc.if_else(whole, trimmed, pa.scalar(None, kind)), pa.float64())
        out[:] = numbers.to_numpy(zero_copy_only=False)  # NaN where not a whole number
        with np.errstate(invalid="ignore"):
            return ~((out >= lo) & (out <= hi))
    return None


def positions(array: pa.Array, values: pa.Array) -> np.ndarray:
    """Per row, the index of its value in ``values``; -1 if absent or null. A dictionary
    array is looked up once per distinct value, then indexed by its codes."""
    if pa.types.is_dictionary(array.type):
        codes = array.indices
        if len(array.dictionary) == 0:
            return np.full(len(array), -1, dtype=np.intp)
        found = positions(array.dictionary, values)[codes.fill_null(0).to_numpy()]
        if codes.null_count:
            found[codes.is_null().to_numpy(zero_copy_only=False)] = -1
        return found
    hits = pc.index_in(array, value_set=values.cast(array.type))
    return hits.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.intp, copy=False)


def _decoded(array: pa.Array) -> pa.Array:
    return array.dictionary_decode() if pa.types.is_dictionary(array.type) else array


def _is_text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


class ColumnEncoder:
    """A compiled ``CompiledEncoder`` fed with :class:`Columns`.

    Turns each categorical Arrow column into the encoder's category codes (an alias finds its
    category's code; a dictionary array is looked up once per distinct value), then calls the
    encoder's public ``encode_columns``: the matrix is the transformer's, to the last bit.
    """

    def __init__(self, encoder: CompiledEncoder) -> None:
        self.encoder = encoder
        self._lookups = [_lookup(column, values) for column, values in encoder.categories.items()]

    def encode(self, columns: Columns) -> np.ndarray:
        numeric = {name: columns.integers[:, i] for name, i in _INTEGER_INDEX.items()}
        codes = {column: _codes(columns.text[column], *lookup) for column, *lookup in self._lookups}
        return self.encoder.encode_columns(numeric, codes)


def _codes(text: pa.Array, keys: pa.Array, codes: np.ndarray) -> np.ndarray:
    """Category code of each row (``codes`` of its value in ``keys``), -1 when unknown."""
    if pa.types.is_dictionary(text.type) and len(text.dictionary):
        # Codes of the distinct values, then one gather by the dictionary indices.
        per_value = _codes(text.dictionary, keys, codes)
        indices = text.indices
        code = per_value[indices.fill_null(0).to_numpy()]
        if indices.null_count:
            code[indices.is_null().to_numpy(zero_copy_only=False)] = -1
        return code
    found = positions(text, keys)
    return np.where(found >= 0, codes[found], -1)


def _lookup(column: str, categories: tuple[str, ...]) -> tuple[str, pa.Array, np.ndarray]:
    """(column, values to look up, category code of each); aliases map to their category."""
    table = {category: code for code, category in enumerate(categories)}
    aliases = contract.FEATURES_BY_NAME[column].aliases
    table |= {alias: table[canonical] for alias, canonical in aliases.items() if canonical in table}
    return column, pa.array(list(table), pa.large_string()), np.fromiter(table.values(), np.intp)


class BatchModel:
    """The registered predictor scoring :class:`Columns`: compiled when it can, else sklearn."""

    def __init__(self, predictor: AttritionPredictor) -> None:
        self.predictor = predictor
        self.threshold = predictor.threshold
        self._compiled: _CompiledModel | None = None
        try:
            self._compiled = _CompiledModel(predictor)
        except UnsupportedPipelineError as err:
            log.warning("compiled path unavailable, scoring through sklearn: %s", err)
        self._checked = False

    @property
    def path(self) -> str:
        return "compiled" if self._compiled is not None else "sklearn"

    def predict(self, columns: Columns) -> tuple[np.ndarray, np.ndarray]:
        """(P(Attrition = Yes), is outlier) per row."""
        if self._compiled is not None and not self._checked and columns.n:
            self._self_check(columns.head(SELF_CHECK_ROWS))
        if self._compiled is None:
            probability, score = self.predictor.scores(columns.to_frame())
        else:
            probability, score = self._compiled.predict(columns)
        return probability, self.predictor.detector.flags(score)

    def _self_check(self, sample: Columns) -> None:
        reference = self.predictor.scores(sample.to_frame())
        gap = disagreement(self._compiled.predict(sample), reference)
        self._checked = True
        if not agrees(gap):
            log.warning("compiled path disagrees with sklearn by %.3g: using sklearn", gap)
            self._compiled = None


class _CompiledModel:
    """The model core's :class:`CompiledModel` fed with :class:`Columns` (one encoding when
    both pipelines share it)."""

    def __init__(self, predictor: AttritionPredictor) -> None:
        # The compilers check the pipelines' shape and raise on anything unknown.
        self.model = CompiledModel(predictor.classifier, predictor.detector.pipeline)
        self.shared = self.model.shared_encoding
        self._encoder = ColumnEncoder(self.model.classifier.encoder)
        self._detector_encoder = None if self.shared else ColumnEncoder(self.model.scorer.encoder)

    def predict(self, columns: Columns) -> tuple[np.ndarray, np.ndarray]:
        """(P(Attrition = Yes), outlier score) per row."""
        detector = self._detector_encoder
        X_detector = None if detector is None else detector.encode(columns)
        return self.model.predict_encoded(self._encoder.encode(columns), X_detector)
