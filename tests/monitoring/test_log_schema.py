"""The columnar reader's Arrow schema and checks come from the pydantic model, and only from it.

Adding a field to the model (here: models built on ``InferenceRecord`` with ``create_model``)
must reach the Arrow schema and the column checks without another edit, and the checks derived
for a field must accept exactly what the model accepts, or be stricter (a value they fail goes
to the model, which then decides).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pydantic import Field, TypeAdapter, ValidationError, create_model

from attrition_mlops.data import contract, inference_log
from attrition_mlops.monitoring import log_columns, log_reader, log_schema

Shard = Annotated[int, Field(ge=0, le=7)]


def _extended(**fields: Any) -> type[inference_log.InferenceRecord]:
    return create_model("ExtendedRecord", __base__=inference_log.InferenceRecord, **fields)


def _passes(values: list[Any], rule: log_schema.FieldRule) -> list[bool]:
    array = pa.array(values, type=rule.type)
    result = np.ones(len(values), dtype=bool)
    for check in log_schema.column_checks(array, rule):
        if not isinstance(check, np.ndarray):
            check = pc.fill_null(check, False).to_numpy(zero_copy_only=False)
        result &= check
    return result.tolist()


def _model_accepts(values: list[Any], annotation: Any) -> list[bool]:
    adapter = TypeAdapter(annotation)
    accepted = []
    for value in values:
        try:
            adapter.validate_python(value, strict=True)
        except ValidationError:
            accepted.append(False)
        else:
            accepted.append(True)
    return accepted


def test_the_reader_parses_with_the_derived_schema():
    derived = log_schema.arrow_schema(inference_log.InferenceRecord)
    assert log_columns._parse_options().explicit_schema.equals(derived)
    assert log_reader.arrow_schema().equals(derived)


def test_a_field_added_to_the_model_reaches_the_arrow_schema():
    model = _extended(
        shard=(Shard, ...), region=(Literal["eu", "us"], "eu"), note=(str | None, None)
    )
    schema = log_schema.arrow_schema(model)
    base = log_schema.arrow_schema(inference_log.InferenceRecord)
    assert schema.names == [*base.names, "shard", "region", "note"]
    assert schema.field("shard").type == pa.int64()
    assert schema.field("region").type == pa.large_string()
    rules = {rule.name: rule for rule in log_schema.field_rules(model)}
    assert (rules["shard"].ge, rules["shard"].le, rules["shard"].required) == (0, 7, True)
    assert (rules["region"].allowed, rules["region"].default) == (("eu", "us"), "eu")
    assert rules["note"].nullable and not rules["note"].required


def test_a_field_added_to_a_prediction_reaches_the_list_type():
    prediction = create_model(
        "Prediction", __base__=inference_log.LoggedPrediction, rank=(Shard, ...)
    )
    model = _extended(outputs=(list[prediction], ...))  # type: ignore[valid-type]
    item = log_schema.arrow_schema(model).field("outputs").type.value_type
    assert item.field("rank").type == pa.int64()
    assert [item.field(i).name for i in range(item.num_fields)] == [
        "probability",
        "label",
        "is_outlier",
        "rank",
    ]


@pytest.mark.parametrize(
    ("annotation", "values"),
    [
        (Shard, [0, 7, 8, -1, None, 3]),
        (Literal["eu", "us"], ["eu", "us", "EU", "", None]),
        (
            Annotated[float, Field(ge=0.0, allow_inf_nan=False)],
            [0.0, 1.5, -0.1, float("inf"), float("nan"), None],
        ),
        (Annotated[float, Field(gt=0.0, lt=1.0)], [0.0, 0.5, 1.0, float("nan"), None]),
        (
            Annotated[str, Field(pattern=inference_log.PSEUDONYM_PATTERN)],
            ["a" * 64, "A" * 64, "a" * 63, "", None],
        ),
        (bool, [True, False, None]),
        (str | None, ["x", "", None]),
    ],
)
def test_derived_checks_accept_what_the_model_accepts(annotation, values):
    rule = log_schema.field_rules(_extended(extra=(annotation, ...)))[-1]
    assert _passes(values, rule) == _model_accepts(values, annotation)


def test_labels_version_and_event_come_from_their_one_home():
    rules = {rule.name: rule for rule in log_schema.field_rules()}
    assert rules["schema_version"].allowed == (inference_log.SCHEMA_VERSION,)
    assert rules["event"].allowed == (inference_log.EVENT,)
    outputs = {rule.name: rule for rule in rules["outputs"].items or ()}
    assert outputs["label"].allowed == contract.LABEL_VALUES
    inputs = {rule.name: rule for rule in rules["inputs"].items or ()}
    assert tuple(inputs) == contract.INPUT_COLUMNS
    for feature in contract.FEATURES:
        rule = inputs[feature.name]
        if feature.name == contract.ID_COLUMN:
            assert rule.pattern == inference_log.PSEUDONYM_PATTERN
        elif feature.is_integer:
            assert (rule.ge, rule.le) == (feature.minimum, feature.maximum)
        else:
            assert rule.allowed == feature.categories


def test_every_validator_of_the_model_is_mirrored_by_the_reader():
    """A validator is a rule across fields: the reader must make it itself, so none may be new
    (except the whole-float one, which only sees lines Arrow cannot read, see the next test)."""
    expected = log_schema.MIRRORED_VALIDATORS | log_schema.PASSED_ON_VALIDATORS
    assert log_schema.validators() == expected


def test_lines_the_whole_float_validator_changes_are_never_read_by_arrow():
    """41.0 in an integer field is 41 for the model; Arrow cannot read it, so the model judges."""
    assert log_columns.read_lines(b'{"n_records":1.0}', 1) is None
    assert log_columns.read_lines(b'{"n_records":1}', 1) is not None


def test_a_field_the_reader_cannot_check_is_refused():
    with pytest.raises(TypeError, match="no Arrow column"):
        log_schema.field_rules(_extended(tags=(dict[str, int], ...)))
