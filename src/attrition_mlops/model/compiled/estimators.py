"""The compiled classifier, outlier scorer and model: encoder + final step on a float64 matrix.

A fitted ``Pipeline(preprocess, estimator)`` splits into a compiled encoder
(:mod:`attrition_mlops.model.compiled.encoder`) and its final step, which then runs on the
encoded ndarray: the logistic regression as its own linear arithmetic (``predict_proba`` minus
sklearn's input validation), any other binary classifier through its own ``predict_proba``, the
outlier detector through :func:`attrition_mlops.model.outliers.mahalanobis`, the one definition
of its distance. Serving feeds records, batch scoring feeds Arrow columns; both meet at
:meth:`CompiledModel.predict_encoded`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from attrition_mlops.model.compiled.encoder import (
    CompiledEncoder,
    RecordBatch,
    UnsupportedPipelineError,
    compile_encoder,
)
from attrition_mlops.model.outliers import MahalanobisScorer, mahalanobis


def _split(pipeline: Any) -> tuple[CompiledEncoder, Any]:
    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        raise UnsupportedPipelineError(f"expected Pipeline(preprocess, estimator): {pipeline!r}")
    (_, preprocessor), (_, estimator) = pipeline.steps
    if hasattr(estimator, "feature_names_in_"):
        raise UnsupportedPipelineError("estimator was fitted on a DataFrame, not an array")
    return compile_encoder(preprocessor), estimator


class CompiledClassifier:
    """P(positive class) from records: compiled encoder + the final estimator on an ndarray."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.encoder, estimator = _split(pipeline)
        classes = list(getattr(estimator, "classes_", []))
        if len(classes) != 2 or not hasattr(estimator, "predict_proba"):
            raise UnsupportedPipelineError("not a fitted binary classifier")
        self._column = 1  # AttritionPredictor reads predict_proba(...)[:, 1]
        self._estimator = estimator
        self._linear = None
        if type(estimator) is LogisticRegression and estimator.coef_.shape[0] == 1:
            self._linear = (estimator.coef_.T.copy(), estimator.intercept_.copy())

    def predict_proba(self, batch: RecordBatch) -> np.ndarray:
        return self.classify(self.encoder.encode(batch))

    def classify(self, X: np.ndarray) -> np.ndarray:
        """P(positive class) from an encoded matrix (not modified)."""
        if self._linear is not None:  # LogisticRegression.predict_proba, minus its validation
            coef_t, intercept = self._linear
            return expit((X @ coef_t + intercept).reshape(-1))
        return self._estimator.predict_proba(X)[:, self._column]


class CompiledScorer:
    """Outlier scores from records: compiled encoder + the fitted Mahalanobis scorer."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.encoder, scorer = _split(pipeline)
        if type(scorer) is not MahalanobisScorer:
            raise UnsupportedPipelineError(f"no compiled form of {scorer!r}")
        self._location = np.asarray(scorer.location_, dtype=np.float64)
        self._precision = np.asarray(scorer.precision_, dtype=np.float64)

    def score(self, batch: RecordBatch) -> np.ndarray:
        return self.score_encoded(self.encoder.encode(batch), overwrite=True)

    def score_encoded(self, X: np.ndarray, *, overwrite: bool = False) -> np.ndarray:
        """Outlier scores from an encoded matrix; ``overwrite``: ``X`` may serve as scratch."""
        return mahalanobis(X, self._location, self._precision, overwrite=overwrite)


class CompiledModel:
    """The classifier and the outlier scorer, compiled together.

    When both pipelines were fitted with the same preprocessing on the same data (logistic
    regression: scaled numbers + one-hot categories, for the classifier and for the detector),
    their encoders are equal and each request is encoded once for both.
    """

    def __init__(self, classifier: Pipeline, detector: Pipeline) -> None:
        self.classifier = CompiledClassifier(classifier)
        self.scorer = CompiledScorer(detector)
        self.shared_encoding = self.classifier.encoder.same_as(self.scorer.encoder)

    def predict(self, batch: RecordBatch) -> tuple[np.ndarray, np.ndarray]:
        """(P(positive class), outlier score) per record."""
        X = self.classifier.encoder.encode(batch)
        X_detector = None if self.shared_encoding else self.scorer.encoder.encode(batch)
        return self.predict_encoded(X, X_detector)

    def predict_encoded(
        self, X: np.ndarray, X_detector: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(P(positive class), outlier score) from the encoders' matrices.

        ``X`` is the classifier encoder's output, ``X_detector`` the scorer encoder's (None when
        the encoding is shared). Both are used as scratch space: the classifier reads ``X``
        first, then the outlier score centres its matrix in place.
        """
        if X_detector is None and not self.shared_encoding:
            raise ValueError("the encodings differ: pass the scorer encoder's matrix too")
        probability = self.classifier.classify(X)
        detector_input = X if X_detector is None else X_detector
        return probability, self.scorer.score_encoded(detector_input, overwrite=True)
