"""The outlier detector: calibrated to its stated false-positive rate, and able to fire."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from attrition_mlops.data import contract
from attrition_mlops.model.outliers import calibrate_outlier_detector


def test_false_positive_rate_holds_on_unseen_reference_records(snapshot):
    X = snapshot.frame[list(contract.INPUT_COLUMNS)]
    rates = []
    for seed in range(8):
        fit, fresh = train_test_split(X, test_size=0.3, random_state=seed)
        detector = calibrate_outlier_detector(fit, fpr=0.05, seed=seed)
        rates.append(detector.is_outlier(fresh).mean())
    # 8 x 441 fresh records: the mean rate's standard error is about 0.4 points.
    assert np.mean(rates) == pytest.approx(0.05, abs=0.02)


def test_an_implausible_record_is_flagged(snapshot):
    X = snapshot.frame[list(contract.INPUT_COLUMNS)]
    detector = calibrate_outlier_detector(X, fpr=0.01)
    odd = X.head(1).copy()
    odd[["Age", "TotalWorkingYears", "YearsAtCompany", "MonthlyIncome"]] = [19, 40, 38, 400_000]
    assert detector.is_outlier(odd)[0]
    assert detector.score(odd)[0] > detector.threshold > np.median(detector.score(X))


def test_invalid_rate_is_rejected(snapshot):
    with pytest.raises(ValueError, match="false-positive rate"):
        calibrate_outlier_detector(snapshot.frame[list(contract.INPUT_COLUMNS)], fpr=0)
