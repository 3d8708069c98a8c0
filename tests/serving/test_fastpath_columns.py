"""The compiled encoder's column-wise entry point (batch scoring) on the whole data set."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from serving_support import inputs
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder

from attrition_mlops.data import contract
from attrition_mlops.model.compiled import (
    RecordBatch,
    UnsupportedPipelineError,
    compile_encoder,
)
from attrition_mlops.model.features import build_preprocessor

INTEGERS = [f.name for f in contract.FEATURES if f.is_integer]


def _columns(frame: pd.DataFrame, categories) -> tuple[dict, dict]:
    """(numbers as int64 arrays, category codes with -1 for unknown) of a frame's columns."""
    numeric = {name: frame[name].to_numpy() for name in INTEGERS}
    codes = {
        column: pd.Index(values).get_indexer(frame[column])  # -1: not among the values
        for column, values in categories.items()
    }
    return numeric, codes


@pytest.fixture(scope="module", params=[True, False], ids=["scaled", "passthrough"])
def fitted(request, snapshot):
    """A fitted ColumnTransformer like each model family's, and its compiled encoder."""
    preprocessor = build_preprocessor(scale=request.param).fit(inputs(snapshot))
    return preprocessor, compile_encoder(preprocessor)


def test_encode_columns_equals_the_column_transformer_on_the_whole_data_set(snapshot, fitted):
    preprocessor, encoder = fitted
    X = inputs(snapshot)
    assert dict(encoder.categories) == {
        column: tuple(values)
        for column, values in zip(
            contract.CATEGORICAL_MODEL_FEATURES,
            preprocessor.named_transformers_["categorical"].categories_,
            strict=True,
        )
    }
    numeric, codes = _columns(X, encoder.categories)
    before = {name: values.copy() for name, values in {**numeric, **codes}.items()}
    encoded = encoder.encode_columns(numeric, codes)
    assert len(X) == 1470 and encoded.dtype == np.float64
    assert np.array_equal(encoded, preprocessor.transform(X))  # bit-identical
    assert np.array_equal(encoded, encoder.encode(RecordBatch(X.to_dict(orient="records"))))
    assert all(np.array_equal(values, before[name]) for name, values in numeric.items())
    assert all(np.array_equal(values, before[name]) for name, values in codes.items())


def test_unknown_categories_give_all_zero_indicator_columns(snapshot, fitted):
    preprocessor, encoder = fitted
    X = inputs(snapshot).head(50).copy()
    X.loc[[3, 7], "JobRole"] = "Astronaut"
    X.loc[7, "Department"] = "Space"
    X.loc[8, "OverTime"] = "Sometimes"
    numeric, codes = _columns(X, encoder.categories)
    assert codes["JobRole"][[3, 7]].tolist() == [-1, -1] and codes["OverTime"][8] == -1
    encoded = encoder.encode_columns(numeric, codes)
    assert np.array_equal(encoded, preprocessor.transform(X))
    names = list(preprocessor.get_feature_names_out())
    job_role = [i for i, name in enumerate(names) if name.startswith("JobRole_")]
    assert not encoded[[3, 7]][:, job_role].any()
    assert (encoded[[0, 1, 2, 4]][:, job_role].sum(axis=1) == 1).all()
    assert encoded[8, names.index("OverTime_No")] == encoded[8, names.index("OverTime_Yes")] == 0


def test_encode_columns_of_zero_rows_and_extra_keys(snapshot, fitted):
    _, encoder = fitted
    numeric, codes = _columns(inputs(snapshot).head(0), encoder.categories)
    numeric["Salary"] = np.ones(3)  # not read by the encoder: ignored
    assert encoder.encode_columns(numeric, codes).shape == (0, encoder.width)


def test_encode_columns_rejects_inconsistent_input(snapshot, fitted):
    _, encoder = fitted
    numeric, codes = _columns(inputs(snapshot).head(10), encoder.categories)
    with pytest.raises(ValueError, match="different lengths"):
        encoder.encode_columns({**numeric, "Age": numeric["Age"][:9]}, codes)
    size = len(encoder.categories["Gender"])
    for bad in (np.full(10, size), np.full(10, -2)):
        with pytest.raises(ValueError, match=r"codes of Gender outside \[-1, 2\)"):
            encoder.encode_columns(numeric, {**codes, "Gender": bad})
    with pytest.raises(ValueError, match="one-dimensional"):
        encoder.encode_columns(numeric, {**codes, "Gender": codes["Gender"].reshape(-1, 1)})
    with pytest.raises(ValueError, match="not signed ints"):
        encoder.encode_columns(numeric, {**codes, "Gender": np.zeros(10)})
    with pytest.raises(KeyError, match="JobRole"):
        encoder.encode_columns(numeric, {k: v for k, v in codes.items() if k != "JobRole"})


def test_a_column_one_hot_encoded_twice_is_not_compiled(snapshot):
    twice = ColumnTransformer(
        [
            ("a", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["JobRole"]),
            ("b", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["JobRole"]),
        ]
    ).fit(inputs(snapshot))
    with pytest.raises(UnsupportedPipelineError, match="one-hot encoded twice"):
        compile_encoder(twice)
