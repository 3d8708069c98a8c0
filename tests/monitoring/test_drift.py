"""The drift check against scipy, the decision rule, edge cases and the report artifacts."""

from __future__ import annotations

import base64
import copy
import html
import json
import re
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.model_selection import train_test_split

from attrition_mlops.data import contract
from attrition_mlops.model.profile import build_reference_profile
from attrition_mlops.monitoring.drift import (
    DriftResult,
    DriftSettings,
    adjust_p_values,
    check_drift,
    uncorrected_drift,
)
from attrition_mlops.monitoring.report import write_report


@pytest.fixture(scope="module")
def real(snapshot) -> pd.DataFrame:
    return snapshot.frame


@pytest.fixture(scope="module")
def profile(real) -> dict:
    """The reference profile of the 80 % training part (stratified, seed 42), 1,176 rows."""
    train, _ = train_test_split(real, test_size=0.2, random_state=42, stratify=real["Attrition"])
    return build_reference_profile(train, source_sha256="test")


@pytest.fixture
def settings() -> DriftSettings:
    return DriftSettings()


def window(frame: pd.DataFrame, n: int = 1000, seed: int = 7) -> pd.DataFrame:
    """Resampled real records: a quiet window drawn from the reference population."""
    return frame.sample(n, replace=True, random_state=seed).reset_index(drop=True)


def by_name(result: DriftResult) -> dict:
    return {f.name: f for f in result.features}


def test_ks_statistics_and_p_values_equal_scipy(real, profile, settings):
    current = window(real)
    current["Age"] += 2  # one shifted feature too, so not every p-value is near 1
    features = by_name(check_drift(profile, current, settings))
    for name in (f.name for f in contract.FEATURES if f.kind == "numeric" and f.role == "model"):
        expected = stats.ks_2samp(profile["features"][name]["values"], current[name])
        assert features[name].test == "ks"
        assert features[name].statistic == pytest.approx(expected.statistic, rel=1e-12)
        assert features[name].p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
        wasserstein = stats.wasserstein_distance(profile["features"][name]["values"], current[name])
        assert features[name].wasserstein == pytest.approx(wasserstein)
        sd = profile["features"][name]["std"]
        assert features[name].wasserstein_sd == pytest.approx(wasserstein / sd)


def test_chi2_statistics_and_p_values_equal_scipy(real, profile, settings):
    current = window(real)
    features = by_name(check_drift(profile, current, settings))
    compared = 0
    for feature in contract.FEATURES:
        if feature.role != "model" or feature.kind == "numeric":
            continue
        counts = profile["features"][feature.name]["counts"]
        observed = current[feature.name].astype(str).value_counts()
        table = np.array([list(counts.values()), [observed.get(lv, 0) for lv in counts]])
        table = table[:, table.sum(axis=0) > 0]
        statistic, p_value, _, _ = stats.chi2_contingency(table, correction=False)
        assert features[feature.name].test == "chi2"
        assert features[feature.name].statistic == pytest.approx(statistic, rel=1e-12)
        assert features[feature.name].p_value == pytest.approx(p_value, rel=1e-9)
        compared += 1
    assert compared == 16  # 9 ordinal + 7 categorical model features


@pytest.mark.parametrize("correction", ["bh", "bonferroni"])
def test_correction_is_applied(real, profile, correction):
    current = window(real)
    current["MonthlyIncome"] += 300
    current.loc[:80, "OverTime"] = "Yes"
    result = check_drift(profile, current, DriftSettings(correction=correction))
    raw = np.array([f.p_value for f in result.features])
    adjusted = np.array([f.p_adjusted for f in result.features])
    if correction == "bh":
        expected = stats.false_discovery_control(raw, method="bh")
    else:
        expected = np.minimum(1.0, raw * raw.size)
    np.testing.assert_allclose(adjusted, expected, rtol=1e-12)
    np.testing.assert_allclose(adjust_p_values(raw, correction), expected, rtol=1e-12)
    assert result.correction == correction and raw.size == 30
    assert (adjusted >= raw).all() and (adjusted > raw).any()


def test_small_window_is_insufficient_data_not_an_alarm(real, profile, settings):
    current = window(real, n=settings.min_records - 1)
    current["MonthlyIncome"] *= 3  # even an enormous shift is not judged on too few records
    result = check_drift(profile, current, settings)
    assert result.status == "insufficient_data"
    assert not result.drift_confirmed
    assert result.features == () and result.drifted_features == ()
    assert "insufficient data" in result.message


def test_identifier_and_constant_columns_are_never_tested(real, profile, settings):
    current = window(real)
    current["EmployeeNumber"] = np.arange(900_000, 901_000)
    current["StandardHours"] = 65
    result = check_drift(profile, current, settings)
    names = {f.name for f in result.features}
    assert names == set(contract.MODEL_FEATURES)
    assert names.isdisjoint({"EmployeeNumber", "EmployeeCount", "Over18", "StandardHours"})
    assert result.status == "no_drift"


@pytest.mark.parametrize("feature", ["MonthlyIncome", "OverTime", "JobLevel"])
def test_clear_shift_is_confirmed_and_named_first(real, profile, settings, feature):
    current = window(real)
    if feature == "MonthlyIncome":
        current[feature] += int(profile["features"][feature]["std"])  # +1 SD
    elif feature == "OverTime":
        current.loc[: len(current) // 2, feature] = "Yes"
    else:
        current.loc[: len(current) // 3, feature] = 5
    result = check_drift(profile, current, settings)
    assert result.status == "drift" and result.drift_confirmed
    assert result.drifted_features[0] == feature
    assert by_name(result)[feature].drifted
    assert feature in result.message


@pytest.mark.parametrize("seed", [3, 11])
def test_quiet_window_from_reference_population_is_not_confirmed(real, profile, settings, seed):
    result = check_drift(profile, window(real, seed=seed), settings)
    assert result.status == "no_drift"
    assert not result.drift_confirmed and result.drifted_features == ()


def test_unseen_level_is_drift_evidence_not_a_crash(real, profile, settings):
    reduced = copy.deepcopy(profile)
    del reduced["features"]["Department"]["counts"]["Human Resources"]  # never seen in training
    reduced["features"]["PerformanceRating"]["counts"]["4"] = 0
    current = window(real)
    current.loc[:149, "Department"] = "Human Resources"
    result = check_drift(reduced, current, settings)
    features = by_name(result)
    for name, level in (("Department", "Human Resources"), ("PerformanceRating", "4")):
        assert features[name].drifted, features[name]
        assert f"unseen in reference: {level}" in features[name].note
        assert features[name].reference[level] == 0.0
        assert features[name].current[level] > 0
    assert np.isfinite(features["Department"].psi)


def test_rare_levels_are_pooled_into_other(real, profile, settings):
    rare = ("Human Resources", "Research Director")
    reduced = copy.deepcopy(profile)
    for level in rare:
        reduced["features"]["JobRole"]["counts"][level] = 3
    current = window(real)
    current = pd.concat(
        [current[~current["JobRole"].isin(rare)]]
        + [current[current["JobRole"] == level].iloc[:3] for level in rare]
    )
    feature = by_name(check_drift(reduced, current, settings))["JobRole"]
    counts = reduced["features"]["JobRole"]["counts"]
    observed = current["JobRole"].value_counts()
    common = [lv for lv in counts if lv not in rare]
    table = np.array(
        [
            [counts[lv] for lv in common] + [sum(counts[lv] for lv in rare)],
            [observed[lv] for lv in common] + [sum(observed[lv] for lv in rare)],
        ]
    )
    statistic, p_value, _, expected = stats.chi2_contingency(table, correction=False)
    assert expected.min() >= 5
    assert feature.test == "chi2_pooled" and "pooled 2 levels" in feature.note
    assert feature.statistic == pytest.approx(statistic, rel=1e-12)
    assert feature.p_value == pytest.approx(p_value, rel=1e-9)


def test_monte_carlo_p_value_when_pooling_cannot_help(real, profile, settings):
    # Gender with a level that is rare in both samples: pooling leaves one bin too small, so
    # the p-value comes from tables drawn with fixed margins. For 2×2 the exact answer is a
    # hypergeometric sum, which the Monte Carlo estimate must match within its sampling error.
    reduced = copy.deepcopy(profile)
    reduced["features"]["Gender"]["counts"] = {"Female": 1, "Male": 1175}
    current = window(real)
    current["Gender"] = "Male"
    current.loc[:2, "Gender"] = "Female"
    feature = by_name(check_drift(reduced, current, settings))["Gender"]
    assert feature.test == "chi2_monte_carlo"
    table = np.array([[1, 1175], [3, len(current) - 3]])
    exact_stat = stats.chi2_contingency(table, correction=False)[0]
    assert feature.statistic == pytest.approx(exact_stat, rel=1e-12)
    n_ref, n_cur, females = 1176, len(current), 4
    dist = stats.hypergeom(n_ref + n_cur, females, n_cur)
    support = np.arange(females + 1)
    tables = [np.array([[females - x, n_ref - females + x], [x, n_cur - x]]) for x in support]
    stat = np.array([stats.chi2_contingency(t, correction=False)[0] for t in tables])
    exact_p = dist.pmf(support)[stat >= exact_stat * (1 - 1e-12)].sum()
    assert feature.p_value == pytest.approx(exact_p, abs=0.03)
    again = by_name(check_drift(reduced, current, settings))["Gender"]
    assert again.p_value == feature.p_value  # seeded


def test_effect_gate_blocks_trivial_shift_on_huge_window(real, settings):
    # A 0.04-SD income shift on 20,000 vs 20,000 records is highly significant but immaterial.
    big = window(real, n=20_000, seed=1)
    reference = build_reference_profile(big, source_sha256="big", max_values=20_000)
    current = window(real, n=20_000, seed=2)
    shift = 0.04 * reference["features"]["MonthlyIncome"]["std"]
    current["MonthlyIncome"] = current["MonthlyIncome"] + round(shift)
    result = check_drift(reference, current, settings)
    income = by_name(result)["MonthlyIncome"]
    assert income.significant and income.p_adjusted < 1e-6
    assert income.wasserstein_sd < settings.min_wasserstein_sd and income.psi < settings.min_psi
    assert not income.drifted
    assert result.status == "no_drift" and not result.drift_confirmed
    loose = DriftSettings(min_wasserstein_sd=0.02, min_psi=0.001)
    assert check_drift(reference, current, loose).drifted_features[0] == "MonthlyIncome"


def test_report_files_are_written(real, profile, settings, tmp_path):
    current = window(real)
    current["MonthlyIncome"] += int(profile["features"]["MonthlyIncome"]["std"])
    current.loc[:499, "OverTime"] = "Yes"
    current["Department"] = current["Department"].astype(object)
    current.loc[:149, "Department"] = "<b>R&D</b>"  # unvalidated text must come out escaped
    result = check_drift(profile, current, settings)
    assert set(result.drifted_features) >= {"MonthlyIncome", "OverTime", "Department"}
    paths = write_report(result, profile, current, tmp_path / "report")
    summary = json.loads(paths["summary"].read_text())
    assert summary == {"title": summary["title"], **result.to_dict(), "links": {}}
    page = paths["html"].read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<img") == len(result.drifted_features)
    by_name = {f.name: f for f in result.features}
    for name in result.drifted_features:
        caption = html.escape(f"{name}: {result.why(by_name[name])}")
        assert f"<figcaption>{caption}</figcaption>" in page
    charts = re.findall(r'<img src="data:image/svg\+xml;base64,([^"]+)"', page)
    assert len(charts) == len(result.drifted_features)
    for name, encoded in zip(result.drifted_features, charts, strict=True):
        svg = ElementTree.fromstring(base64.b64decode(encoded))  # well-formed SVG
        assert svg.tag == "{http://www.w3.org/2000/svg}svg"
        texts = " ".join(svg.itertext())
        assert name in texts and "reference" in texts and "current" in texts
        links = [v for e in svg.iter() for k, v in e.attrib.items() if k.endswith(("href", "src"))]
        assert not [v for v in links if not v.startswith("#")]  # self-contained: opens offline
        if name == "Department":  # the level is text in the SVG, not markup
            assert "<b>R&D</b>" in texts
    assert "&lt;b&gt;R&amp;D&lt;/b&gt;" in page and "<b>R&D" not in page
    drifted_rows = page.index("MonthlyIncome</td>") < page.index("<td>Age</td>")
    assert drifted_rows  # drifted features are listed first


def test_report_of_an_insufficient_window_has_no_figures(real, profile, settings, tmp_path):
    current = window(real, n=50)
    result = check_drift(profile, current, settings)
    paths = write_report(result, profile, current, tmp_path)
    page = paths["html"].read_text()
    assert "insufficient_data" in page and "<img" not in page
    assert json.loads(paths["summary"].read_text())["status"] == "insufficient_data"


def test_to_dict_is_strict_json(real, profile, settings):
    for current in (window(real), window(real, n=10)):
        result = check_drift(profile, current, settings)
        data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
        assert data["status"] == result.status
        assert len(data["features"]) == len(result.features)


def test_uncorrected_rule_is_the_proof_of_concepts(real, profile, settings):
    current = window(real)
    current["Age"] += 1
    result = check_drift(profile, current, settings)
    assert uncorrected_drift(result) == any(f.p_value < 0.05 for f in result.features)
    assert not uncorrected_drift(result, threshold=0.0)


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("ATTRITION_DRIFT_CORRECTION", "bonferroni")
    monkeypatch.setenv("ATTRITION_DRIFT_MIN_RECORDS", "500")
    settings = DriftSettings()
    assert settings.correction == "bonferroni" and settings.min_records == 500
    assert DriftSettings(correction="bh").alpha == 0.05


def test_missing_column_is_a_clear_error(real, profile, settings):
    with pytest.raises(ValueError, match="OverTime"):
        check_drift(profile, window(real).drop(columns="OverTime"), settings)
