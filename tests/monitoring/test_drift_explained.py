"""What the drift check says about itself: the headline names the statistic that crossed its
threshold (never a sub-threshold one), the report's title names version, window and date, and
its links lead to the runbook and the run."""

from __future__ import annotations

import math

import pytest

from attrition_mlops.monitoring.drift import FeatureDrift, decide_drift, effects_past_minimum
from attrition_mlops.settings import DriftSettings


def feature(name="MonthlyIncome", *, psi, wasserstein_sd=None, kind="numeric", p=1e-6):
    settings = DriftSettings()
    ratios = [psi / settings.min_psi]
    if wasserstein_sd is not None:
        ratios.append(wasserstein_sd / settings.min_wasserstein_sd)
    return FeatureDrift(
        name=name,
        kind=kind,
        test="ks" if kind == "numeric" else "chi2",
        statistic=0.1,
        p_value=p,
        psi=psi,
        effect_ratio=max(ratios),
        reference={"mean": 5000.0, "std": 4000.0, "median": 4900.0},
        current={"mean": 5600.0, "std": 4100.0, "median": 5500.0},
        wasserstein=None if wasserstein_sd is None else wasserstein_sd * 4000,
        wasserstein_sd=wasserstein_sd,
    )


def quiet(name):
    return feature(name, psi=0.001, wasserstein_sd=0.002, p=0.9)


def test_the_issue_case_quotes_wasserstein_not_the_sub_threshold_psi():
    # Issue 15: "MonthlyIncome (PSI 0.052)" beside min_psi = 0.1, while W/SD 0.153 triggered it.
    settings = DriftSettings()
    features = [feature(psi=0.052, wasserstein_sd=0.153), quiet("Age"), quiet("DailyRate")]
    result = decide_drift(features, n_current=1000, n_reference=1176, settings=settings)
    assert result.drifted_features == ("MonthlyIncome",)
    assert "MonthlyIncome (W/SD 0.153 ≥ 0.1; adjusted p " in result.message
    assert "PSI" not in result.message  # 0.052 < 0.1 is not why it alarmed
    drifted = result.features[0]
    p_text = f"{drifted.p_adjusted:.2g}"
    assert f"adjusted p {p_text} < 0.05)" in result.message


def test_psi_is_quoted_when_psi_crossed_and_both_when_both_did():
    settings = DriftSettings()
    only_psi = feature("OverTime", psi=0.31, kind="categorical")
    both = feature("Age", psi=0.25, wasserstein_sd=0.4)
    result = decide_drift(
        [only_psi, both, quiet("DailyRate")], n_current=900, n_reference=1176, settings=settings
    )
    assert "OverTime (PSI 0.310 ≥ 0.1; adjusted p" in result.message
    assert "Age (PSI 0.250 ≥ 0.1, W/SD 0.400 ≥ 0.1; adjusted p" in result.message
    assert "W/SD" not in result.message.split("OverTime")[1].split(")")[0]


def test_effects_past_minimum_follows_the_configured_minimums():
    settings = DriftSettings(min_psi=0.05, min_wasserstein_sd=0.2)
    crossed = effects_past_minimum(
        feature(psi=0.052, wasserstein_sd=0.153), settings.min_psi, settings.min_wasserstein_sd
    )
    assert [(c.measure, c.value, c.minimum) for c in crossed] == [("PSI", 0.052, 0.05)]
    none = effects_past_minimum(feature(psi=0.01, wasserstein_sd=0.01), 0.1, 0.1)
    assert none == ()
    constant = effects_past_minimum(feature(psi=0.0, wasserstein_sd=math.inf), 0.1, 0.1)
    assert [c.measure for c in constant] == ["W/SD"]


@pytest.mark.parametrize(
    ("psi", "wsd", "quoted", "absent"),
    [(0.052, 0.153, "W/SD 0.153", "PSI 0.052"), (0.2, 0.05, "PSI 0.200", "W/SD 0.050")],
)
def test_the_drifted_details_carry_the_reason(psi, wsd, quoted, absent):
    from attrition_mlops.monitoring.window import _drifted_details

    settings = DriftSettings()
    result = decide_drift(
        [feature(psi=psi, wasserstein_sd=wsd), quiet("Age")],
        n_current=1000,
        n_reference=1176,
        settings=settings,
    )
    (details,) = _drifted_details(result)
    assert quoted in details["reason"] and absent not in details["reason"]
    assert details["effects_past_minimum"][0]["value"] == pytest.approx(
        float(quoted.split()[-1]), abs=1e-3
    )


def test_the_runbook_anchors_the_report_links_exist():
    from support import REPO

    from attrition_mlops.monitoring.report import RUNBOOK_ANCHORS

    runbook = (REPO / "docs" / "runbook.md").read_text(encoding="utf-8")
    for status, anchor in RUNBOOK_ANCHORS.items():
        assert f'<a id="{anchor}"></a>' in runbook, status


def test_the_report_is_titled_and_links_the_runbook_and_the_run(tmp_path):
    import json

    import pandas as pd

    from attrition_mlops.monitoring.report import ReportContext, add_links, write_report

    settings = DriftSettings()
    result = decide_drift(
        [feature(psi=0.052, wasserstein_sd=0.153), quiet("Age")],
        n_current=1000,
        n_reference=1176,
        settings=settings,
    )
    context = ReportContext(
        model_name="employee_attrition",
        model_version="3",
        window=("2026-12-05", "2026-12-06"),
        checked_at="2026-12-07T01:31:07+00:00",
        runbook_url="https://example.org/runbook.md",
        links={"Airflow run": "http://af/dags/d/runs/r1"},
    )
    profile = {"features": {"MonthlyIncome": {"values": [1.0, 2.0, 3.0]}}}
    current = pd.DataFrame({"MonthlyIncome": [2.0, 3.0, 4.0]})
    paths = write_report(result, profile, current, tmp_path / "v3", context=context)
    title = (
        "Drift report: employee_attrition v3, window 2026-12-05..2026-12-06, "
        "checked 2026-12-07 01:31 UTC"
    )
    page = paths["html"].read_text()
    assert f"<title>{title}</title>" in page and f"<h1>{title}</h1>" in page
    runbook = "https://example.org/runbook.md#alert-drift-confirmed"
    assert f'<li>runbook: <a href="{runbook}">' in page
    assert '<li>Airflow run: <a href="http://af/dags/d/runs/r1">' in page
    assert add_links(tmp_path, {"MLflow drift run": "http://ml/#/runs/1"}) == [paths["html"]]
    assert '<li>MLflow drift run: <a href="http://ml/#/runs/1">' in paths["html"].read_text()
    summary = json.loads(paths["summary"].read_text())
    assert summary["title"] == title
    assert summary["links"] == {
        "runbook": runbook,
        "Airflow run": "http://af/dags/d/runs/r1",
        "MLflow drift run": "http://ml/#/runs/1",
    }
