"""The compiled encoder: a fitted ColumnTransformer read into plain numpy arithmetic.

At load time the *fitted* preprocessor (StandardScaler ``mean_``/``scale_`` or passthrough for
numbers, OneHotEncoder ``categories_`` for categories, unknown → all-zero columns as with
``handle_unknown="ignore"``) becomes an encoder that turns validated records (serving) or whole
columns (batch scoring) straight into the float64 matrix the final estimator was fitted on, in
its column order, with the same arithmetic in the same order.

Anything the compiler does not recognise raises :class:`UnsupportedPipelineError`; the caller
then keeps the sklearn path and logs a warning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from attrition_mlops.data import contract

Records = Sequence[Mapping[str, Any]]


class UnsupportedPipelineError(ValueError):
    """The fitted pipeline holds a step this compiler does not know how to reproduce."""


_INTEGER_COLUMNS = tuple(f.name for f in contract.FEATURES if f.is_integer)
_INTEGER_INDEX = {name: i for i, name in enumerate(_INTEGER_COLUMNS)}
_TEXT_COLUMNS = tuple(f.name for f in contract.FEATURES if not f.is_integer)


class RecordBatch:
    """Validated records unpacked once per request, shared by the classifier and detector.

    Integer fields become one float64 matrix (exact: contract integers are far below 2**53),
    categorical fields one list per column.
    """

    def __init__(self, records: Records) -> None:
        self.n = len(records)
        self.integers = np.array(
            [[record[name] for name in _INTEGER_COLUMNS] for record in records], dtype=np.float64
        ).reshape(self.n, len(_INTEGER_COLUMNS))
        self.text = {name: [record[name] for record in records] for name in _TEXT_COLUMNS}


@dataclass(frozen=True)
class _NumericBlock:
    start: int
    stop: int
    index: np.ndarray  # columns of RecordBatch.integers, in the transformer's order
    mean: np.ndarray | None
    scale: np.ndarray | None


@dataclass(frozen=True)
class _OneHotBlock:
    column: str
    slots: dict[str, int]  # category -> output column


class CompiledEncoder:
    """Records → the fitted ColumnTransformer's float64 output, without pandas.

    The blocks are merged at compile time, so a request costs one numpy gather for all numeric
    columns and one scatter for all one-hot indicators, whatever the number of transformer
    blocks (per-block numpy calls dominated a one-record request). Passthrough columns get
    mean 0 and scale 1: ``x - 0.0`` and ``x / 1.0`` are exact in IEEE arithmetic, so the result
    stays bit-identical to the transformer's.

    Two entry points, one matrix: :meth:`encode` for a request's records (latency-bound: a
    handful of numpy calls whatever the batch size) and :meth:`encode_columns` for whole columns
    (throughput-bound: contiguous passes per column, for batch scoring).
    """

    def __init__(self, numeric: list[_NumericBlock], one_hot: list[_OneHotBlock], width: int):
        self.width = width
        # Blocks sorted by output position: two encoders with the same fitted transformers
        # compare equal (see ``same_as``) however their blocks were listed.
        self._numeric = sorted(numeric, key=lambda block: block.start)
        self._one_hot = sorted(one_hot, key=lambda block: min(block.slots.values(), default=0))
        blocks = self._numeric
        self._numeric_out = _join([np.arange(b.start, b.stop) for b in blocks], np.intp)
        self._numeric_in = _join([b.index for b in blocks], np.intp)
        self._mean = _join([_or_fill(b.mean, b, 0.0) for b in blocks])
        self._scale = _join([_or_fill(b.scale, b, 1.0) for b in blocks])
        self._slots = [(block.column, block.slots) for block in self._one_hot]
        #: Per one-hot encoded column, its fitted categories in indicator-column order: the
        #: meaning of the codes :meth:`encode_columns` takes.
        self.categories: Mapping[str, tuple[str, ...]] = MappingProxyType(
            {block.column: tuple(block.slots) for block in self._one_hot}
        )
        self._numeric_names = [_INTEGER_COLUMNS[i] for i in self._numeric_in]
        self._numeric_span = _span(self._numeric_out)
        self._arithmetic = bool(np.any(self._mean != 0.0) or np.any(self._scale != 1.0))
        self._one_hot_starts = [
            (block.column, min(block.slots.values(), default=0), len(block.slots))
            for block in self._one_hot
        ]

    def same_as(self, other: CompiledEncoder) -> bool:
        """True when both encoders produce the same matrix for every input (same fit)."""
        arrays = ("_numeric_out", "_numeric_in", "_mean", "_scale")
        return (
            self.width == other.width
            and all(np.array_equal(getattr(self, a), getattr(other, a)) for a in arrays)
            and self._slots == other._slots
        )

    def encode(self, batch: RecordBatch) -> np.ndarray:
        """A request's records → the transformer's output (``batch.n`` × ``width``, float64)."""
        out = np.zeros((batch.n, self.width), dtype=np.float64)
        # Same operations, same order as StandardScaler.transform: subtract, then divide.
        out[:, self._numeric_out] = (batch.integers[:, self._numeric_in] - self._mean) / self._scale
        if self._slots and batch.n:
            # output column of every categorical value, column by column; -1: unknown category
            slots = np.array(
                [
                    lookup.get(value, -1)
                    for column, lookup in self._slots
                    for value in batch.text[column]
                ],
                dtype=np.intp,
            )
            rows = np.arange(slots.size) % batch.n
            known = slots >= 0  # an unknown category leaves its indicator columns at 0
            out[rows[known], slots[known]] = 1.0
        return out

    def encode_columns(
        self, numeric: Mapping[str, np.ndarray], codes: Mapping[str, np.ndarray]
    ) -> np.ndarray:
        """The transformer's output for whole columns, bit-identical to :meth:`encode`.

        ``numeric`` maps each integer contract field the encoder reads to its values (any
        numeric dtype; converted to float64, exact for contract integers). ``codes`` maps each
        column of :attr:`categories` to, per row, the index of its value in that column's
        categories, or -1 for a value outside them (its indicator columns stay 0, as with
        ``handle_unknown="ignore"``). Extra keys are ignored; the arrays are not modified.
        Raises KeyError for a missing column, ValueError for arrays that are not 1-D, of
        different lengths, or codes that are not signed integers in range.
        """
        needed = [np.asarray(numeric[name]) for name in self._numeric_names]
        needed_codes = [np.asarray(codes[column]) for column, _, _ in self._one_hot_starts]
        if any(values.ndim != 1 for values in needed + needed_codes):
            raise ValueError("encode_columns: every column must be a one-dimensional array")
        lengths = {len(values) for values in needed + needed_codes}
        if len(lengths) > 1:
            raise ValueError(f"encode_columns: columns of different lengths {sorted(lengths)}")
        n = lengths.pop() if lengths else 0
        out = np.zeros((n, self.width), dtype=np.float64)
        if needed:
            # Column-major: each column is copied and scaled in one contiguous pass.
            values = np.empty((n, len(needed)), dtype=np.float64, order="F")
            for j, column in enumerate(needed):
                values[:, j] = column
            if self._arithmetic:  # same operations, same order as StandardScaler.transform
                values -= self._mean
                values /= self._scale
            out[:, self._numeric_span] = values
        flat = out.reshape(-1)  # a view: one scatter per column into the row-major matrix
        row_starts = np.arange(n) * self.width
        for (column, start, size), column_codes in zip(
            self._one_hot_starts, needed_codes, strict=True
        ):
            known = _checked_codes(column, column_codes, size) >= 0
            slot = row_starts + column_codes
            # flat[start:] is the matrix seen from the column's first indicator: code = offset.
            # An unknown category (code -1) leaves its indicator columns at 0.
            flat[start:][slot if known.all() else slot[known]] = 1.0
        return out


def _checked_codes(column: str, codes: np.ndarray, size: int) -> np.ndarray:
    if codes.dtype.kind != "i" or codes.dtype.itemsize > np.dtype(np.intp).itemsize:
        raise ValueError(f"encode_columns: codes of {column} are {codes.dtype}, not signed ints")
    if codes.size and not (codes.min() >= -1 and codes.max() < size):
        raise ValueError(f"encode_columns: codes of {column} outside [-1, {size})")
    return codes


def _span(positions: np.ndarray) -> slice | np.ndarray:
    """A slice when the positions are consecutive (a cheaper assignment), else the positions."""
    if positions.size and np.array_equal(positions, np.arange(positions[0], positions[-1] + 1)):
        return slice(int(positions[0]), int(positions[-1]) + 1)
    return positions


def _join(parts: list[np.ndarray], dtype: Any = np.float64) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.empty(0, dtype)


def _or_fill(values: np.ndarray | None, block: _NumericBlock, fill: float) -> np.ndarray:
    return values if values is not None else np.full(block.stop - block.start, fill)


def compile_encoder(preprocessor: Any) -> CompiledEncoder:
    if not isinstance(preprocessor, ColumnTransformer) or not hasattr(
        preprocessor, "transformers_"
    ):
        raise UnsupportedPipelineError(f"not a fitted ColumnTransformer: {preprocessor!r}")
    numeric: list[_NumericBlock] = []
    one_hot: list[_OneHotBlock] = []
    width = 0
    for name, transformer, columns in preprocessor.transformers_:
        if isinstance(transformer, str) and transformer == "drop":
            continue
        if not all(isinstance(c, str) and c in contract.FEATURES_BY_NAME for c in columns):
            raise UnsupportedPipelineError(f"{name}: columns are not contract names: {columns}")
        block_slice = preprocessor.output_indices_[name]
        if block_slice.start != width:
            raise UnsupportedPipelineError(f"{name}: output columns are not contiguous")
        if _is_identity(transformer) or isinstance(transformer, StandardScaler):
            numeric.append(_numeric_block(name, transformer, list(columns), width))
            width += len(columns)
        elif isinstance(transformer, OneHotEncoder):
            blocks = _one_hot_blocks(name, transformer, list(columns), width)
            one_hot += blocks
            width += sum(len(block.slots) for block in blocks)
        else:
            raise UnsupportedPipelineError(f"{name}: no compiled form of {transformer!r}")
        if width != block_slice.stop:
            raise UnsupportedPipelineError(f"{name}: expected output up to {block_slice.stop}")
    if width != len(preprocessor.get_feature_names_out()):
        raise UnsupportedPipelineError("compiled width differs from the transformer's output")
    encoded = [block.column for block in one_hot]
    if len(set(encoded)) != len(encoded):  # codes per column (encode_columns) would be ambiguous
        raise UnsupportedPipelineError(f"a column is one-hot encoded twice: {encoded}")
    return CompiledEncoder(numeric, one_hot, width)


def _is_identity(transformer: Any) -> bool:
    # A fitted ColumnTransformer stores "passthrough" as a FunctionTransformer without a func.
    if isinstance(transformer, str):
        return transformer == "passthrough"
    return isinstance(transformer, FunctionTransformer) and transformer.func is None


def _numeric_block(name: str, transformer: Any, columns: list[str], start: int) -> _NumericBlock:
    if any(column not in _INTEGER_INDEX for column in columns):
        raise UnsupportedPipelineError(f"{name}: numeric step over non-numeric columns")
    index = np.array([_INTEGER_INDEX[column] for column in columns], dtype=np.intp)
    stop = start + len(columns)
    if _is_identity(transformer):
        return _NumericBlock(start, stop, index, None, None)
    mean = np.asarray(transformer.mean_, np.float64) if transformer.with_mean else None
    scale = np.asarray(transformer.scale_, np.float64) if transformer.with_std else None
    return _NumericBlock(start, stop, index, mean, scale)


def _one_hot_blocks(
    name: str, encoder: OneHotEncoder, columns: list[str], start: int
) -> list[_OneHotBlock]:
    if encoder.drop_idx_ is not None or getattr(encoder, "_infrequent_enabled", False):
        raise UnsupportedPipelineError(f"{name}: dropped or infrequent categories")
    if encoder.handle_unknown != "ignore" or encoder.sparse_output:
        raise UnsupportedPipelineError(f"{name}: needs handle_unknown='ignore', dense output")
    blocks = []
    for column, categories in zip(columns, encoder.categories_, strict=True):
        if column not in _TEXT_COLUMNS:
            raise UnsupportedPipelineError(f"{name}: one-hot encoding of a numeric column")
        slots = {str(category): start + i for i, category in enumerate(categories)}
        if len(slots) != len(categories):
            raise UnsupportedPipelineError(f"{name}.{column}: categories are not distinct text")
        blocks.append(_OneHotBlock(column, slots))
        start += len(categories)
    return blocks
