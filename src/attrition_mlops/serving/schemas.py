"""Request and response models. The request model is generated from the feature contract.

Every field is required and strictly typed: integer fields take whole numbers only (36 or 36.0,
not 3.5, not "3", not true, not NaN), categorical fields take exactly the contract's categories
(plus its aliases, normalised on the way in: Over18 "Yes" becomes "Y"), numbers must lie in the
contract's validity ranges, and unknown fields are rejected.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model

from attrition_mlops.data import contract, record_fields
from attrition_mlops.data.example import EXAMPLE_RECORD


def _describe(feature: contract.Feature) -> str:
    role = {
        "identifier": " Identifier: pseudonymised in logs, not used by the model.",
        "constant": " Constant in the data set: not used by the model.",
    }
    text = f"{feature.kind.capitalize()}."
    if feature.levels:
        text += " " + ", ".join(f"{code} = {label}" for code, label in feature.levels.items())
    if feature.aliases:
        text += " Also accepted: " + ", ".join(
            f"{a!r} (= {c!r})" for a, c in feature.aliases.items()
        )
    return text + role.get(feature.role, "")


def _normaliser(aliases: dict[str, str]):
    def normalise(value: str) -> str:
        return aliases.get(value, value)

    return normalise


def _field(feature: contract.Feature) -> tuple[Any, Any]:
    info = Field(description=_describe(feature), examples=[EXAMPLE_RECORD[feature.name]])
    if feature.is_integer:
        kind: Any = record_fields.strict_integer(feature)
    else:
        kind = Literal[feature.allowed_values]  # type: ignore[valid-type]
        if feature.aliases:
            kind = Annotated[kind, AfterValidator(_normaliser(feature.aliases))]
    return kind, info


def employee_model(features: tuple[contract.Feature, ...] | None = None) -> type[BaseModel]:
    """The request record model compiled from ``features`` (default: the contract's, as read
    now): one required, strict field per feature, its range or categories from the feature."""
    features = contract.FEATURES if features is None else features
    return create_model(
        "EmployeeRecord",
        __config__=ConfigDict(
            extra="forbid", strict=True, json_schema_extra={"examples": [EXAMPLE_RECORD]}
        ),
        __doc__="One employee: the IBM HR data set's input columns (all required).",
        __validators__=record_fields.whole_numbers_validator(features),
        **{feature.name: _field(feature) for feature in features},
    )


#: One employee record: the contract's 34 input fields.
EmployeeRecord = employee_model()


class Prediction(BaseModel):
    probability: float = Field(description="P(Attrition = Yes)", ge=0.0, le=1.0)
    label: Literal[contract.LABEL_VALUES] = Field(  # type: ignore[valid-type]
        description="'Yes' when probability >= the threshold"
    )
    is_outlier: bool = Field(description="outside the training distribution (calibrated FPR)")


#: A ``/predict`` answer to the documented example request, shown in ``/docs``. The probability
#: is what a logistic regression fitted on the bundled data (the tests' tiny model) gives this
#: employee; another model version gives another number.
EXAMPLE_RESPONSE: dict[str, Any] = {
    "request_id": "4f9c2d7e8a1b4c3d9e0f1a2b3c4d5e6f",
    "model_name": "employee_attrition",
    "model_version": "3",
    "predictions": [
        {"probability": 0.0067, "label": contract.LABEL_VALUES[0], "is_outlier": False}
    ],
}


class PredictResponse(BaseModel):
    model_config = ConfigDict(
        protected_namespaces=(), json_schema_extra={"examples": [EXAMPLE_RESPONSE]}
    )

    request_id: str
    model_name: str
    model_version: str
    predictions: list[Prediction] = Field(description="one per input record, in input order")


class FieldError(BaseModel):
    record: int | None = Field(None, description="0-based index of the record in the array")
    field: str | None = Field(None, description="the offending field, if one")
    problem: str
    type: str = Field(description="machine-readable problem type")


class ErrorResponse(BaseModel):
    detail: str
    errors: list[FieldError] = Field(default_factory=list)
    request_id: str | None = None


class ModelInfo(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    name: str
    version: str
    alias: str | None = None
    source: str = Field(description="where it was loaded from (model dir or registry URI)")
    trained_at: str | None = None
    holdout_auc: float | None = None
    family: str | None = None
    run_id: str | None = None
    threshold: float
    outlier_fpr: float
    fast_path: bool = Field(description="compiled numpy inference in use")
    loaded_at: str


class Health(BaseModel):
    status: Literal["ok", "loading"]
    model_version: str | None = None
