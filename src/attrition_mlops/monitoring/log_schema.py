"""The inference log's Arrow schema and column checks, derived from the pydantic model.

:class:`inference_log.InferenceRecord` is the one declaration of a log line. The columnar reader
needs the same rules in Arrow's terms: the JSON type of every field (for Arrow's JSON reader) and
the checks to make on whole columns. Both are read off the model here, field by field (its
annotation and its ``Field`` constraints), so nothing is typed twice: the schema version, the
event name, the labels and the contract's categories and bounds reach the reader through the
model, and a field added to the model is parsed and checked without another edit.

Only what a field declares is derived. The model's two validators (a timestamp inside its
partition day, list lengths equal to ``n_records``) are rules across fields and stay written out
in the reader; :data:`MIRRORED_VALIDATORS` names them, :data:`PASSED_ON_VALIDATORS` names the one
the reader leaves to the model (a logged record's whole floats), and a test holds the model to
those lists, so a new validator cannot slip past the column checks unnoticed.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import annotated_types as at
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import AwareDatetime, BaseModel
from pydantic.fields import FieldInfo

from attrition_mlops.data import inference_log, record_fields

#: Validators of the model the reader makes itself (they are not field constraints).
MIRRORED_VALIDATORS = frozenset({"_inside_partition", "_counts_agree"})
#: Validators that only ever see lines Arrow cannot read as typed, so the model judges them:
#: a whole float (41.0) becomes an integer, and Arrow's JSON reader refuses any float in an
#: int64 column.
PASSED_ON_VALIDATORS = frozenset({record_fields.WHOLE_NUMBERS})

_SCALARS: dict[type, pa.DataType] = {
    bool: pa.bool_(),  # before int: bool is an int subclass
    int: pa.int64(),
    float: pa.float64(),
    str: pa.large_string(),  # large: pandas reads it as "str" without a copy
}


@dataclass(frozen=True)
class FieldRule:
    """One field of a log line as the columnar reader sees it.

    ``type`` is the JSON value's Arrow type (a timestamp is read as text: pydantic's parser is the
    judge of its form). ``items`` are the rules of a list's elements (a list of models).
    """

    name: str
    type: pa.DataType
    nullable: bool = False  # the model accepts an explicit null
    required: bool = True  # False: an absent field takes ``default``
    default: Any = None
    allowed: tuple[Any, ...] | None = None  # a Literal's values
    ge: float | None = None
    le: float | None = None
    gt: float | None = None
    lt: float | None = None
    finite: bool = False
    pattern: str | None = None
    timestamp: bool = False
    items: tuple[FieldRule, ...] | None = None

    @property
    def free_text(self) -> bool:
        """A string no value check pins byte for byte (Arrow passes invalid UTF-8 on)."""
        return pa.types.is_large_string(self.type) and not (self.allowed or self.pattern)


@functools.cache
def field_rules(model: type[BaseModel] = inference_log.InferenceRecord) -> tuple[FieldRule, ...]:
    """The rules of every field of ``model``, in its order."""
    return tuple(_rule(name, info) for name, info in model.model_fields.items())


@functools.cache
def arrow_schema(model: type[BaseModel] = inference_log.InferenceRecord) -> pa.Schema:
    """The JSON types of a log line, for Arrow's JSON reader.

    Every field is nullable in Arrow whatever the model says: a line that omits a field or
    writes null must still be read, so that the checks (or the model) can judge it.
    """
    return pa.schema([(rule.name, rule.type) for rule in field_rules(model)])


def validators(model: type[BaseModel] = inference_log.InferenceRecord) -> frozenset[str]:
    """Names of the validators of ``model`` and of the models its lists hold."""
    decorators = model.__pydantic_decorators__
    found = {
        *decorators.field_validators,
        *decorators.model_validators,
        *decorators.validators,
        *decorators.root_validators,
    }
    for info in model.model_fields.values():
        if typing.get_origin(info.annotation) is list:
            (item,) = typing.get_args(info.annotation)
            if isinstance(item, type) and issubclass(item, BaseModel):
                found |= validators(item)
    return frozenset(found)


def _rule(name: str, info: FieldInfo) -> FieldRule:
    annotation, nullable = _strip_optional(info.annotation)
    required = info.is_required()
    default = None if required else info.get_default(call_default_factory=True)
    rule = dict(name=name, nullable=nullable, required=required, default=default)
    for meta in info.metadata:
        for bound in ("ge", "le", "gt", "lt"):
            if isinstance(meta, getattr(at, bound.capitalize())):
                rule[bound] = getattr(meta, bound)
        if getattr(meta, "allow_inf_nan", True) is False:
            rule["finite"] = True
        if getattr(meta, "pattern", None) is not None:
            rule["pattern"] = meta.pattern
    return FieldRule(**_typed(name, annotation), **rule)


def _typed(name: str, annotation: Any) -> dict[str, Any]:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        values = typing.get_args(annotation)
        kinds = {type(value) for value in values}
        if len(kinds) != 1 or (kind := kinds.pop()) not in _SCALARS:
            raise TypeError(f"{name}: a Literal of one scalar type is needed, not {annotation}")
        return {"type": _SCALARS[kind], "allowed": values}
    if origin is list:
        (item,) = typing.get_args(annotation)
        if not (isinstance(item, type) and issubclass(item, BaseModel)):
            raise TypeError(f"{name}: only lists of models are read as columns, not {annotation}")
        items = field_rules(item)
        return {"type": pa.list_(pa.struct([(r.name, r.type) for r in items])), "items": items}
    if annotation is AwareDatetime:
        return {"type": pa.large_string(), "timestamp": True}
    if annotation is datetime:  # a naive one would be accepted: the aware check is too strict
        raise TypeError(f"{name}: log timestamps are AwareDatetime")
    for kind, arrow_type in _SCALARS.items():
        if annotation is kind:
            return {"type": arrow_type}
    raise TypeError(f"{name}: no Arrow column for {annotation!r}")


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(args) == 1 and len(args) < len(typing.get_args(annotation)):
            return args[0], True
        raise TypeError(f"no Arrow column for the union {annotation!r}")
    return annotation, False


def column_checks(values: pa.Array | pa.ChunkedArray, rule: FieldRule) -> Iterator[Any]:
    """Boolean columns, one per check; a value passes if every one is true (null: false).

    As strict as the model or stricter, never looser: a value that fails goes to the model.
    Timestamps and list elements are checked by the reader (parsed and flattened there).
    """
    if not (rule.nullable or _fails_null(rule)):
        yield pc.is_valid(values)
    if rule.allowed is not None:
        yield pc.is_in(values, value_set=pa.array(rule.allowed, type=rule.type))
    if rule.pattern is not None:
        yield pc.match_substring_regex(values, rule.pattern)
    if rule.finite:
        yield pc.is_finite(values)
    bounds = [
        (bound, limit)
        for bound in ("ge", "le", "gt", "lt")
        if (limit := getattr(rule, bound)) is not None
    ]
    if not bounds:
        return
    if pa.types.is_integer(rule.type):  # numpy: the fastest compare for the many int fields
        numbers = values.fill_null(0).to_numpy()  # a null failed is_valid, or is allowed
        for bound, limit in bounds:
            yield _COMPARE_NP[bound](numbers, limit)
    else:  # floats: Arrow's compare, where NaN and null fail every bound
        for bound, limit in bounds:
            yield _COMPARE_PC[bound](values, limit)


def _fails_null(rule: FieldRule) -> bool:
    """Does another of the rule's checks already fail a null (so is_valid would be redundant)?"""
    float_bound = not pa.types.is_integer(rule.type) and any(
        getattr(rule, bound) is not None for bound in ("ge", "le", "gt", "lt")
    )
    return rule.allowed is not None or rule.pattern is not None or rule.finite or float_bound


_COMPARE_NP = {"ge": np.greater_equal, "le": np.less_equal, "gt": np.greater, "lt": np.less}
_COMPARE_PC = {"ge": pc.greater_equal, "le": pc.less_equal, "gt": pc.greater, "lt": pc.less}
