"""The compiled fast path reproduces the sklearn pipelines on the whole data set (1,470 rows)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from serving_support import inputs, labels
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from threadpoolctl import threadpool_limits

from attrition_mlops.data import contract
from attrition_mlops.model.compiled import (
    CompiledClassifier,
    CompiledModel,
    CompiledScorer,
    RecordBatch,
    UnsupportedPipelineError,
    compile_encoder,
)
from attrition_mlops.model.features import build_classifier
from attrition_mlops.model.outliers import calibrate_outlier_detector
from attrition_mlops.model.predictor import AttritionPredictor
from attrition_mlops.serving.loaded import ModelCard, prepare_model

TOLERANCE = 1e-9
FAMILIES = {
    "logistic_regression": {"C": 0.3, "class_weight": "balanced"},
    "hist_gradient_boosting": {"max_iter": 60, "max_leaf_nodes": 15, "learning_rate": 0.1},
}


def _records(snapshot) -> list[dict]:
    return inputs(snapshot).to_dict(orient="records")


@pytest.fixture(scope="module")
def records(snapshot):
    return _records(snapshot)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_classifier_parity_on_the_whole_data_set(snapshot, records, family):
    X = inputs(snapshot)
    with threadpool_limits(1):
        pipeline = build_classifier(family, FAMILIES[family], seed=0).fit(X, labels(snapshot))
        reference = pipeline.predict_proba(X)[:, 1]
        compiled = CompiledClassifier(pipeline).predict_proba(RecordBatch(records))
    assert len(records) == 1470
    gap = float(np.max(np.abs(compiled - reference)))
    assert gap < TOLERANCE, f"{family}: max |Δp| = {gap:.3g}"


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_encoder_reproduces_the_fitted_column_transformer(snapshot, records, family):
    X = inputs(snapshot)
    pipeline = build_classifier(family, FAMILIES[family], seed=0)
    preprocessor = pipeline.named_steps["preprocess"].fit(X)
    expected = preprocessor.transform(X)
    encoded = compile_encoder(preprocessor).encode(RecordBatch(records))
    assert encoded.shape == expected.shape
    assert float(np.max(np.abs(encoded - expected))) < 1e-12


def test_outlier_score_parity(predictor, records, snapshot):
    reference = predictor.detector.score(inputs(snapshot))
    compiled = CompiledScorer(predictor.detector.pipeline).score(RecordBatch(records))
    relative = np.abs(compiled - reference) / np.maximum(1.0, np.abs(reference))
    assert float(relative.max()) < TOLERANCE
    flags = compiled > predictor.detector.threshold
    assert np.array_equal(flags, reference > predictor.detector.threshold)


def test_unknown_category_encodes_as_all_zero_like_sklearn(predictor, records):
    record = dict(records[0], JobRole="Astronaut")  # bypasses request validation on purpose
    frame_like = [records[1], record, records[2]]
    import pandas as pd

    frame = pd.DataFrame(frame_like, columns=list(contract.INPUT_COLUMNS))
    expected = predictor.classifier.predict_proba(frame)[:, 1]
    compiled = CompiledClassifier(predictor.classifier).predict_proba(RecordBatch(frame_like))
    assert float(np.max(np.abs(compiled - expected))) < TOLERANCE
    preprocess = predictor.classifier.named_steps["preprocess"]
    encoded = compile_encoder(preprocess).encode(RecordBatch(frame_like))
    assert np.array_equal(encoded, preprocess.transform(frame))  # the unknown row's zeros too


def test_encoding_is_shared_only_between_equal_encoders(predictor, snapshot, records):
    # The fixture's classifier and detector: same preprocessing fitted on the same rows.
    assert CompiledModel(predictor.classifier, predictor.detector.pipeline).shared_encoding
    X = inputs(snapshot)
    family = "hist_gradient_boosting"
    with threadpool_limits(1):
        hgb = build_classifier(family, FAMILIES[family], seed=0).fit(X, labels(snapshot))
    half = calibrate_outlier_detector(X.head(700), fpr=0.01, seed=0)  # other scaler means
    for classifier, detector in ((hgb, predictor.detector), (predictor.classifier, half)):
        model = CompiledModel(classifier, detector.pipeline)
        assert not model.shared_encoding
        with threadpool_limits(1):
            probability, score = model.predict(RecordBatch(records))
            expected = classifier.predict_proba(X)[:, 1]
        assert float(np.max(np.abs(probability - expected))) < TOLERANCE
        reference = detector.score(X)
        relative = np.abs(score - reference) / np.maximum(1.0, np.abs(reference))
        assert float(relative.max()) < TOLERANCE


def test_loaded_model_fast_and_sklearn_paths_agree(predictor, records):
    model = prepare_model(predictor, ModelCard(name="m", version="1"), "test")
    assert model.fast_path
    fast = model.predict(records[:300])
    probability, score = model.predict_sklearn(records[:300])
    assert float(np.max(np.abs(fast.probability - probability))) < TOLERANCE
    assert np.array_equal(fast.is_outlier, score > predictor.detector.threshold)
    assert [o["label"] for o in fast.outputs()] == [
        "Yes" if p >= predictor.threshold else "No" for p in probability
    ]


def test_unknown_step_falls_back_to_sklearn_with_a_warning(predictor, snapshot, records, caplog):
    preprocess, model = predictor.classifier.steps
    extra = Pipeline([preprocess, ("identity", FunctionTransformer()), model])
    extra.fit(inputs(snapshot), labels(snapshot))
    with pytest.raises(UnsupportedPipelineError):
        CompiledClassifier(extra)
    odd = AttritionPredictor(extra, predictor.detector, predictor.threshold)
    with caplog.at_level(logging.WARNING, logger="attrition_mlops.serving.loaded"):
        loaded = prepare_model(odd, ModelCard(name="m", version="1"), "test")
    assert not loaded.fast_path
    assert "fast path unavailable" in caplog.text
    expected = extra.predict_proba(inputs(snapshot).head(20))[:, 1]
    assert np.allclose(loaded.predict(records[:20]).probability, expected, rtol=0, atol=1e-12)
