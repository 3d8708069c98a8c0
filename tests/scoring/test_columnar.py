"""The batch scorer's columnar path: same verdicts as validation, same numbers as sklearn."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from sklearn.feature_selection import VarianceThreshold
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from attrition_mlops.data import contract
from attrition_mlops.data.validation import DataValidationError, split_valid_rows
from attrition_mlops.model.features import build_classifier, build_preprocessor
from attrition_mlops.model.outliers import calibrate_outlier_detector
from attrition_mlops.model.predictor import AttritionPredictor
from attrition_mlops.scoring import columns
from attrition_mlops.scoring.columns import BatchModel, check_batch, split_batch

FAMILIES = ["hist_gradient_boosting", "logistic_regression"]
HGB_PARAMS = {"max_iter": 60, "max_leaf_nodes": 15, "learning_rate": 0.1}
#: Cells a person, a spreadsheet or a buggy upstream job might put in a CSV.
HOSTILE_NUMBERS = [
    " 41 ",
    "+7",
    "41.0",
    "41.",
    "41.00",
    "4e1",
    "0x10",
    "",
    "  ",
    None,
    "nan",
    "NaN",
    "inf",
    "-0",
    "1_000",
    "\x1c41",
    "41\u00a0",
    "\u200b41",
    "00041",
    "-5",
    "99999999999",
    "3.5",
    "1e3",
    "4 1",
    "41\n",
    "\t41",
    "--4",
    "+-4",
    ".5",
    "2147483648",
    "2147483647",
]
HOSTILE_TEXT = ["Male", " Male", "male", "", None, "nan", "Yes", "Y", "Sales ", "N/A", "Single"]


@pytest.fixture(scope="module")
def predictors(snapshot, predictor) -> dict[str, AttritionPredictor]:
    """A tiny real model per family: the shared logistic regression, and a small HGB beside it."""
    X = snapshot.frame[list(contract.INPUT_COLUMNS)]
    y = (snapshot.frame[contract.LABEL] == "Yes").astype(int)
    hgb = build_classifier("hist_gradient_boosting", HGB_PARAMS, seed=0).fit(X, y)
    return {
        "logistic_regression": predictor,
        "hist_gradient_boosting": AttritionPredictor(hgb, predictor.detector, 0.5),
    }


def _typed_batch(snapshot) -> pa.RecordBatch:
    inputs = snapshot.frame[list(contract.INPUT_COLUMNS)]
    return pa.RecordBatch.from_pandas(inputs, preserve_index=False)


def _text_batch(frame: pd.DataFrame, dictionary: bool = False) -> pa.RecordBatch:
    """Every column as text; categories as Arrow dictionaries if asked (as CSV is read)."""
    arrays = []
    for name in frame.columns:
        array = pa.array(frame[name].astype(object).tolist(), pa.string())
        categorical = not contract.FEATURES_BY_NAME[name].is_integer
        arrays.append(array.dictionary_encode() if dictionary and categorical else array)
    return pa.RecordBatch.from_arrays(arrays, names=list(frame.columns))


def _reference_mask(frame: pd.DataFrame) -> np.ndarray:
    _, rejects = split_valid_rows(frame.reset_index(drop=True))
    return np.isin(np.arange(len(frame)), rejects.index)


@pytest.mark.parametrize("family", FAMILIES)
def test_compiled_scores_equal_the_sklearn_pipeline_on_the_whole_data_set(
    snapshot, predictors, family
):
    predictor = predictors[family]
    inputs = snapshot.frame[list(contract.INPUT_COLUMNS)]
    model = BatchModel(predictor)
    (columns,), rejects = split_batch(_typed_batch(snapshot))
    probability, is_outlier = model.predict(columns)
    assert model.path == "compiled" and rejects.empty and columns.n == 1470
    # Same encoded matrix into the pipeline's own estimator: equal to the last bit (0.0 here).
    gap = float(np.max(np.abs(probability - predictor.predict_proba(inputs))))
    assert gap <= 1e-12, f"{family}: max |Δp| = {gap:.3g}"
    assert np.array_equal(is_outlier, predictor.detector.is_outlier(inputs))
    assert np.array_equal(columns.ids, inputs[contract.ID_COLUMN].to_numpy())


def test_logistic_regression_encodes_once_for_classifier_and_detector(predictors):
    shared = BatchModel(predictors["logistic_regression"])._compiled
    separate = BatchModel(predictors["hist_gradient_boosting"])._compiled
    assert shared.shared and not separate.shared  # HGB's numbers are not scaled; the detector's are


@pytest.mark.parametrize("dictionary", [False, True], ids=["text", "dictionary"])
def test_text_columns_check_like_validation_on_hostile_cells(snapshot, dictionary):
    rng = np.random.default_rng(7)
    frame = snapshot.frame[list(contract.INPUT_COLUMNS)].astype(str).astype(object)
    for feature in contract.FEATURES:
        pool = HOSTILE_NUMBERS if feature.is_integer else HOSTILE_TEXT
        rows = rng.choice(len(frame), size=40, replace=False)
        frame.iloc[rows, frame.columns.get_loc(feature.name)] = rng.choice(
            np.array(pool, dtype=object), size=40
        )
    bad, columns = check_batch(_text_batch(frame, dictionary))
    expected = _reference_mask(frame)
    assert 0.3 < expected.mean() < 0.9  # many rows broken, many intact
    assert np.array_equal(bad, expected)
    valid, _ = split_valid_rows(frame)
    ours = columns.filter(~bad).to_frame()
    pd.testing.assert_frame_equal(ours, valid.reset_index(drop=True), check_dtype=False)


def test_typed_columns_check_like_validation(snapshot):
    frame = snapshot.frame[list(contract.INPUT_COLUMNS)].copy()
    n = len(frame)
    frame["Age"] = frame["Age"].astype("Int64")
    frame.loc[[0, 1], "Age"] = [pd.NA, 150]  # null; outside [18, 100]
    frame["DailyRate"] = frame["DailyRate"].astype("float64")
    frame.loc[[2, 3, 4, 5], "DailyRate"] = [np.nan, 800.5, np.inf, 800.0]  # only 800.0 is fine
    frame["MonthlyIncome"] = frame["MonthlyIncome"].astype("uint32")
    frame["Education"] = frame["Education"].astype("int8")
    frame["Gender"] = frame["Gender"].astype(object)
    frame.loc[[6, 7, 8], "Gender"] = [None, "male", " Male"]
    frame.loc[9, "Over18"] = "Yes"  # an alias: accepted, normalised to "Y"
    frame["JobRole"] = frame["JobRole"].astype("category")  # Arrow dictionary
    batch = pa.RecordBatch.from_pandas(frame, preserve_index=False)
    assert pa.types.is_dictionary(batch.schema.field("JobRole").type)
    bad, columns = check_batch(batch)
    assert np.array_equal(bad, _reference_mask(batch.to_pandas()))
    assert np.flatnonzero(bad).tolist() == [0, 1, 2, 3, 4, 6, 7, 8]
    assert columns.filter(~bad).to_frame()["Over18"].eq("Y").all() and n - bad.sum() == 1462


def test_arrow_trims_exactly_the_characters_python_strips():
    # The text check relies on utf8_trim_whitespace agreeing with str.strip, character by
    # character, over all of Unicode.
    chars = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    padded = [f"{c}4{c}" for c in chars]
    trimmed = pc.utf8_trim_whitespace(pa.array(padded)).to_pylist()
    assert trimmed == [text.strip() for text in padded]


def test_rows_the_fast_check_flags_but_validation_accepts_are_scored(snapshot, monkeypatch):
    monkeypatch.setattr(columns, "_WHOLE_NUMBER", r"^\d+$")  # a stricter check than validation
    frame = snapshot.frame[list(contract.INPUT_COLUMNS)].astype(str).astype(object)
    frame.loc[[5, 9], "Age"] = ["41.0", "+33"]
    frame.loc[7, "Age"] = "forty"
    parts, rejects = split_batch(_text_batch(frame))
    assert len(parts) == 2 and parts[1].n == 2  # rescued rows come after the others
    assert sum(part.n for part in parts) == 1469 and rejects["Age"].tolist() == ["forty"]
    assert rejects.reason.tolist() == ["Age: not a whole number"]
    rescued = parts[1].to_frame()
    assert rescued["Age"].tolist() == [41, 33]


def test_column_types_without_a_vectorised_check_go_to_validation(snapshot):
    batch = _typed_batch(snapshot)
    booleans = pa.array(np.arange(batch.num_rows) % 2 == 0)  # OverTime as True/False
    batch = batch.set_column(batch.schema.get_field_index("OverTime"), "OverTime", booleans)
    assert check_batch(batch) is None
    parts, rejects = split_batch(batch)
    assert parts == [] and len(rejects) == batch.num_rows
    assert rejects.reason.str.fullmatch("OverTime: unknown category").all()


def test_column_problems_raise_like_validation(snapshot):
    batch = _typed_batch(snapshot)
    extra = batch.append_column("Salary", pa.array(np.ones(batch.num_rows)))
    with pytest.raises(DataValidationError, match="unexpected columns.*'Salary'"):
        split_batch(extra)
    with pytest.raises(DataValidationError, match="missing required columns: Age"):
        split_batch(batch.drop_columns(["Age"]))


def test_a_label_column_is_ignored(snapshot):
    with_label = pa.RecordBatch.from_pandas(snapshot.frame, preserve_index=False)
    (columns,), rejects = split_batch(with_label)
    assert columns.n == 1470 and rejects.empty


def test_uncompilable_pipeline_is_scored_by_sklearn(snapshot, caplog):
    X = snapshot.frame[list(contract.INPUT_COLUMNS)]
    y = (snapshot.frame[contract.LABEL] == "Yes").astype(int)
    three_steps = Pipeline(
        [
            ("preprocess", build_preprocessor(scale=True)),
            ("select", VarianceThreshold()),
            ("model", LogisticRegression(max_iter=5000)),
        ]
    ).fit(X, y)
    predictor = AttritionPredictor(three_steps, calibrate_outlier_detector(X, fpr=0.01), 0.5)
    with caplog.at_level(logging.WARNING, logger="attrition_mlops.scoring.columns"):
        model = BatchModel(predictor)
    assert model.path == "sklearn" and "compiled path unavailable" in caplog.text
    (columns,), _ = split_batch(_typed_batch(snapshot))
    probability, is_outlier = model.predict(columns)
    assert np.array_equal(probability, predictor.predict_proba(X))
    assert np.array_equal(is_outlier, predictor.detector.is_outlier(X))


def test_a_compiled_model_that_disagrees_with_sklearn_is_dropped(
    snapshot, predictor, monkeypatch, caplog
):
    model = BatchModel(predictor)
    compiled_predict = model._compiled.predict

    def off_by_a_little(columns):
        probability, score = compiled_predict(columns)
        return probability + 1e-6, score

    monkeypatch.setattr(model._compiled, "predict", off_by_a_little)
    (columns,), _ = split_batch(_typed_batch(snapshot))
    with caplog.at_level(logging.WARNING, logger="attrition_mlops.scoring.columns"):
        probability, _ = model.predict(columns)
    assert model.path == "sklearn" and "disagrees with sklearn" in caplog.text
    X = snapshot.frame[list(contract.INPUT_COLUMNS)]
    assert np.array_equal(probability, predictor.predict_proba(X))
