"""An outlier detector whose threshold is calibrated to a stated false-positive rate.

Score: squared Mahalanobis distance of a record's standardised, one-hot encoded model features
from the training distribution, with a Ledoit–Wolf shrunk covariance (the one-hot blocks make the
plain covariance singular). Scoring one record is a small matrix–vector product, cheap enough for
the online path.

Calibration is split-conformal style: the threshold is the (1 − fpr) quantile of *out-of-fold*
scores (each record scored by a detector that did not see it), so the stated rate holds for new
records from the reference distribution rather than being optimistic on the data it was fit on.
The original service's threshold sat above the detector's maximum score and could never fire.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.covariance import LedoitWolf
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline

from attrition_mlops.model.features import build_preprocessor


def mahalanobis(
    X: np.ndarray, location: np.ndarray, precision: np.ndarray, *, overwrite: bool = False
) -> np.ndarray:
    """Squared Mahalanobis distance of each row of ``X`` to ``location`` under ``precision``.

    The one definition: the sklearn detector, the serving fast path and batch scoring all call
    it. A matrix product (BLAS) and a row-wise dot product rather than a three-operand einsum:
    ~6x faster at 100k rows, the same value up to rounding (~1e-13 relative). ``overwrite``
    lets the centring reuse ``X`` (a float64 matrix the caller is done with) instead of a copy.
    """
    centred = np.subtract(X, location, out=X if overwrite else None)
    return np.einsum("ij,ij->i", centred @ precision, centred)


class MahalanobisScorer(BaseEstimator):
    """Squared Mahalanobis distance to the fitted mean under a shrunk covariance."""

    def fit(self, X: np.ndarray, y=None) -> MahalanobisScorer:
        cov = LedoitWolf().fit(X)
        self.location_ = cov.location_
        self.precision_ = cov.precision_
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        return mahalanobis(np.asarray(X, dtype=float), self.location_, self.precision_)


def _detector() -> Pipeline:
    return Pipeline(
        [("preprocess", build_preprocessor(scale=True)), ("score", MahalanobisScorer())]
    )


class OutlierDetector:
    """A fitted scoring pipeline plus the threshold that yields ``fpr`` on reference data."""

    def __init__(self, pipeline: Pipeline, threshold: float, fpr: float) -> None:
        self.pipeline = pipeline
        self.threshold = threshold
        self.fpr = fpr

    def score(self, frame: pd.DataFrame) -> np.ndarray:
        return self.pipeline.score_samples(frame)

    def is_outlier(self, frame: pd.DataFrame) -> np.ndarray:
        return self.flags(self.score(frame))

    def flags(self, score: np.ndarray) -> np.ndarray:
        """Outlier flag per score (from any path: sklearn or compiled): above the threshold."""
        return score > self.threshold


def calibrate_outlier_detector(
    frame: pd.DataFrame, *, fpr: float, folds: int = 5, seed: int = 0
) -> OutlierDetector:
    """Fit on all of ``frame``; set the threshold from out-of-fold reference scores."""
    if not 0 < fpr < 1:
        raise ValueError(f"false-positive rate must be in (0, 1), got {fpr}")
    oof = np.empty(len(frame))
    for fit_idx, score_idx in KFold(folds, shuffle=True, random_state=seed).split(frame):
        fold = _detector().fit(frame.iloc[fit_idx])
        oof[score_idx] = fold.score_samples(frame.iloc[score_idx])
    threshold = float(np.quantile(oof, 1.0 - fpr, method="higher"))
    return OutlierDetector(_detector().fit(frame), threshold, fpr)
