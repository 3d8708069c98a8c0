"""The contract's integer rule in pydantic's terms, shared by the request and the log models.

Both models of an employee record (the API's request, ``serving.schemas.employee_model``, and
the logged record, ``inference_log.logged_employee_model``) are compiled from the contract, and
both must judge an integer field alike: a whole number only (36 or 36.0), never ``"36"``,
``true``, 3.5 or NaN, inside the field's range. That rule lives here once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Field, model_validator

from attrition_mlops.data import contract

#: The name the whole-number validator has on a compiled model (``log_schema`` looks for it).
WHOLE_NUMBERS = "whole_numbers"


def strict_integer(feature: contract.Feature) -> Any:
    """A strict integer inside ``feature``'s range: no text, no boolean, no float."""
    return Annotated[int, Field(strict=True, ge=feature.minimum, le=feature.maximum)]


def _whole_floats_as_integers(integer_fields: tuple[str, ...]) -> Callable[[Any], Any]:
    """A before-validator of ``integer_fields``: 36.0 becomes 36 before the strict checks; 3.5,
    "36", true and NaN stay rejected.

    The OpenAPI document says ``"type": "integer"``, and in JSON Schema (as in JSON itself)
    36.0 *is* that integer: clients that serialise whole numbers from float columns (pandas,
    Java doubles) must not get a 422 for what the schema promises is valid. It is also the batch
    validation's rule ("a whole number"). One call per record, not per field: ~1 µs a record.
    """

    def whole_numbers(data: Any) -> Any:
        if isinstance(data, dict):
            whole = {
                name: int(value)
                for name in integer_fields
                if type(value := data.get(name)) is float and value.is_integer()
            }
            if whole:
                return {**data, **whole}  # a copy: the caller's payload is left as it was
        return data

    return whole_numbers


def whole_numbers_validator(features: tuple[contract.Feature, ...]) -> dict[str, Any]:
    """``__validators__`` for ``create_model``: whole floats of the integer fields as integers."""
    integer_fields = tuple(feature.name for feature in features if feature.is_integer)
    validator = model_validator(mode="before")(_whole_floats_as_integers(integer_fields))
    return {WHOLE_NUMBERS: validator}
