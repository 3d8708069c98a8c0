"""The drift decision rule on hand-made per-feature results: exact boundaries, ranking, message.

Added for the mutation run (docs/testing.md#mutation-testing). ``decide_drift`` takes measured
features, so its rule is pinned here without the statistics: a corrected p-value exactly at
``alpha`` is not significant, an effect ratio of exactly 1 clears the effect gate, drifted
features rank largest effect first, and the result carries its counts and thresholds. Pure.
"""

from __future__ import annotations

import pandas as pd
import pytest

from attrition_mlops.model.profile import build_reference_profile
from attrition_mlops.monitoring.drift import (
    DriftResult,
    FeatureDrift,
    adjust_p_values,
    check_drift,
    decide_drift,
    uncorrected_drift,
)
from attrition_mlops.settings import DriftSettings

SETTINGS = DriftSettings()  # production: BH at alpha 0.05


def _feature(name: str, p_value: float, effect_ratio: float, psi: float = 0.2) -> FeatureDrift:
    return FeatureDrift(
        name=name,
        kind="numeric",
        test="ks",
        statistic=0.1,
        p_value=p_value,
        psi=psi,
        effect_ratio=effect_ratio,
        reference={},
        current={},
    )


def _decide(*features: FeatureDrift, settings: DriftSettings = SETTINGS) -> DriftResult:
    return decide_drift(features, n_current=300, n_reference=1176, settings=settings)


def test_a_corrected_p_value_exactly_at_alpha_is_not_significant():
    # One feature: its BH-adjusted p-value equals its raw one.
    result = _decide(_feature("Age", SETTINGS.alpha, 5.0))
    (age,) = result.features
    assert age.p_adjusted == SETTINGS.alpha and not age.significant and not age.drifted
    assert result.status == "no_drift" and result.drifted_features == ()
    assert result.message == "no drift: no feature significant after bh correction"


def test_an_effect_ratio_of_exactly_one_clears_the_effect_gate():
    at = _decide(_feature("Age", 1e-6, 1.0))
    assert at.status == "drift" and at.drift_confirmed and at.drifted_features == ("Age",)
    above = _decide(_feature("Age", 1e-6, 1.5))
    assert above.drifted_features == ("Age",)
    below = _decide(_feature("Age", 1e-6, 0.99))
    assert below.status == "no_drift"
    assert below.message == "no drift: 1 features significant, none with a material effect"


def test_drifted_features_rank_largest_effect_first_and_the_message_names_the_top_three():
    result = _decide(
        _feature("A", 1e-6, 2.0, psi=0.2),
        _feature("B", 1e-6, 8.0, psi=0.8),
        _feature("C", 1e-6, 4.0, psi=0.4),
        _feature("D", 1e-6, 1.0, psi=0.1),
        _feature("E", 0.9, 9.0, psi=0.9),  # a large effect, but not significant
    )
    assert result.drifted_features == ("B", "C", "A", "D")
    assert result.message == (
        "drift confirmed in 4 of 5 features: "
        "B (PSI 0.800 ≥ 0.1; adjusted p 1.2e-06 < 0.05), "
        "C (PSI 0.400 ≥ 0.1; adjusted p 1.2e-06 < 0.05), "
        "A (PSI 0.200 ≥ 0.1; adjusted p 1.2e-06 < 0.05)"
    )


def test_the_result_carries_its_sizes_and_thresholds():
    result = _decide(_feature("Age", 0.5, 0.1))
    assert (result.n_current, result.n_reference) == (300, 1176)
    assert result.thresholds == {"min_records": 200, "min_psi": 0.1, "min_wasserstein_sd": 0.1}
    assert (result.correction, result.alpha) == ("bh", 0.05)


def test_an_insufficient_window_carries_its_sizes():
    profile = {"n_rows": 1176, "features": {}}
    result = check_drift(profile, pd.DataFrame({"Age": [30] * 199}), SETTINGS)
    assert result.status == "insufficient_data" and not result.drift_confirmed
    assert (result.n_current, result.n_reference) == (199, 1176)
    assert result.message == "insufficient data: 199 records < minimum 200"
    assert result.thresholds["min_records"] == 200


def test_an_unknown_correction_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown correction 'holm'; use 'bh' or 'bonferroni'"):
        adjust_p_values([0.01, 0.2], "holm")  # type: ignore[arg-type]


def test_the_uncorrected_rule_uses_a_strict_005_by_default():
    at = _decide(_feature("Age", 0.05, 5.0))
    assert not uncorrected_drift(at)  # p exactly 0.05 is not below 0.05
    assert uncorrected_drift(_decide(_feature("Age", 0.049, 5.0)))
    assert not uncorrected_drift(_decide(_feature("Age", 0.5, 5.0)))


def test_a_checked_window_carries_its_sizes(snapshot):
    frame = snapshot.frame
    profile = build_reference_profile(frame, source_sha256="test")
    result = check_drift(profile, frame.head(250), SETTINGS)
    assert result.status in ("drift", "no_drift")
    assert (result.n_current, result.n_reference) == (250, len(frame))
