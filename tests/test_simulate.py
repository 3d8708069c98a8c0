"""The simulator: deterministic, contract-valid, labelled simulated, and each scenario does what
its description says."""

from __future__ import annotations

import pandas as pd
import pytest

from attrition_mlops import contract
from attrition_mlops.simulate import (
    REAL_MAX_EMPLOYEE_NUMBER,
    SCENARIOS,
    simulate_labelled_snapshot,
    simulate_traffic,
)
from attrition_mlops.validation import validate_frame

N = 5000


@pytest.fixture(scope="module")
def real(snapshot) -> pd.DataFrame:
    return snapshot.frame


@pytest.fixture(scope="module")
def quiet(real) -> pd.DataFrame:
    return simulate_traffic(real, N, seed=5)


def test_registry_has_the_named_scenarios_with_one_line_descriptions():
    names = {"none", "salary_inflation", "overtime_surge", "young_hiring_wave", "mean_shift"}
    assert set(SCENARIOS) == names
    for name, scenario in SCENARIOS.items():
        assert scenario.name == name and scenario.description and "\n" not in scenario.description


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_same_seed_same_frame_other_seed_other_frame(real, scenario):
    first = simulate_traffic(real, 300, scenario=scenario, seed=1)
    pd.testing.assert_frame_equal(first, simulate_traffic(real, 300, scenario=scenario, seed=1))
    assert not first.equals(simulate_traffic(real, 300, scenario=scenario, seed=2))
    labelled = simulate_labelled_snapshot(real, 300, scenario=scenario, seed=1)
    again = simulate_labelled_snapshot(real, 300, scenario=scenario, seed=1)
    pd.testing.assert_frame_equal(labelled, again)


@pytest.mark.parametrize("intensity", [0.5, 1.0, 3.0])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_simulated_frame_passes_the_contract(real, scenario, intensity):
    traffic = simulate_traffic(real, 2000, scenario=scenario, seed=3, intensity=intensity)
    assert list(traffic.columns) == list(contract.INPUT_COLUMNS)
    pd.testing.assert_frame_equal(validate_frame(traffic, require_label=False), traffic)
    labelled = simulate_labelled_snapshot(
        real, 2000, scenario=scenario, seed=3, intensity=intensity
    )
    assert list(labelled.columns) == list(contract.DATASET_COLUMNS)
    pd.testing.assert_frame_equal(validate_frame(labelled), labelled)
    for frame in (traffic, labelled):
        assert (frame["TotalWorkingYears"] <= frame["Age"] - 18).all()
        assert (frame["YearsAtCompany"] <= frame["TotalWorkingYears"]).all()
        for name in ("YearsInCurrentRole", "YearsSinceLastPromotion", "YearsWithCurrManager"):
            assert (frame[name] <= frame["YearsAtCompany"]).all()


def test_real_rows_already_satisfy_the_consistency_rules(real):
    # So the repair step is a no-op on quiet traffic: with noise off, every simulated record is
    # an exact copy of a real one (apart from its fresh ID).
    traffic = simulate_traffic(real, 1000, seed=9, noise=0.0)
    columns = [c for c in contract.INPUT_COLUMNS if c != contract.ID_COLUMN]
    matched = traffic[columns].merge(real[columns].drop_duplicates(), how="left", indicator=True)
    assert (matched["_merge"] == "both").all()


@pytest.mark.parametrize("labelled", [False, True])
def test_simulated_records_are_labelled_and_never_reuse_real_ids(real, labelled):
    make = simulate_labelled_snapshot if labelled else simulate_traffic
    frame = make(real, 1000, scenario="none", seed=4)
    assert frame.attrs["is_simulated"] is True
    assert frame.attrs["simulation"] == {
        "scenario": "none",
        "seed": 4,
        "intensity": 1.0,
        "noise": 0.02,
    }
    ids = frame[contract.ID_COLUMN]
    assert ids.min() == REAL_MAX_EMPLOYEE_NUMBER + 1 and ids.is_unique
    assert not ids.isin(real[contract.ID_COLUMN]).any()
    # Simulating from simulated rows continues above those IDs too.
    follow_up = simulate_traffic(frame, 10, seed=1)
    assert follow_up[contract.ID_COLUMN].min() == ids.max() + 1


def test_quiet_traffic_keeps_the_real_distribution(real, quiet):
    for feature in contract.FEATURES:
        if feature.role != "model":
            continue
        if feature.kind == "categorical":
            gap = (quiet[feature.name].value_counts(normalize=True)).sub(
                real[feature.name].value_counts(normalize=True), fill_value=0
            )
            assert gap.abs().max() < 0.03, feature.name
        else:
            sd = real[feature.name].std()
            assert abs(quiet[feature.name].mean() - real[feature.name].mean()) < 0.06 * sd


@pytest.mark.parametrize("intensity", [1.0, 0.5])
def test_salary_inflation_raises_mean_income_by_15_percent_times_intensity(real, quiet, intensity):
    frame = simulate_traffic(real, N, scenario="salary_inflation", seed=5, intensity=intensity)
    ratio = frame["MonthlyIncome"].mean() / quiet["MonthlyIncome"].mean()
    assert ratio == pytest.approx(1 + 0.15 * intensity, abs=0.002)
    assert frame["Age"].equals(quiet["Age"])  # same seed, same resampled rows


@pytest.mark.parametrize(("intensity", "target"), [(1.0, 0.60), (0.5, None)])
def test_overtime_surge_moves_the_overtime_share(real, intensity, target):
    frame = simulate_traffic(real, N, scenario="overtime_surge", seed=6, intensity=intensity)
    base = real["OverTime"].eq("Yes").mean()
    expected = target if target is not None else base + (0.60 - base) * intensity
    assert frame["OverTime"].eq("Yes").mean() == pytest.approx(expected, abs=0.025)


def test_young_hiring_wave_adds_young_entry_level_records(real, quiet):
    frame = simulate_traffic(real, N, scenario="young_hiring_wave", seed=5)
    young_share = (real["Age"] <= 25).mean()
    assert (frame["Age"] <= 25).mean() == pytest.approx(0.30 + 0.70 * young_share, abs=0.025)
    assert frame["Age"].mean() < quiet["Age"].mean() - 3
    new = frame[(frame["Age"] <= 25) & (frame["YearsAtCompany"] <= 1)]
    assert (new["JobLevel"] == 1).mean() > 0.9
    assert frame["JobLevel"].eq(1).mean() > quiet["JobLevel"].eq(1).mean() + 0.15


@pytest.mark.parametrize("feature", ["MonthlyIncome", "Age", "DistanceFromHome"])
def test_mean_shift_moves_one_feature_by_k_reference_sds(real, quiet, feature):
    sd = float(real[feature].std())
    shifted = simulate_traffic(
        real, N, scenario="mean_shift", seed=5, intensity=0.25, feature=feature
    )
    assert shifted[feature].mean() - quiet[feature].mean() == pytest.approx(0.25 * sd, rel=0.05)
    others = [c for c in ("JobLevel", "OverTime", "Gender") if c != feature]
    pd.testing.assert_frame_equal(shifted[others], quiet[others])
    explicit = simulate_traffic(
        real, N, scenario="mean_shift", seed=5, intensity=1.0, feature=feature, reference_sd=2.0
    )
    assert explicit[feature].mean() - quiet[feature].mean() == pytest.approx(2.0, abs=0.15)


def test_labelled_snapshot_labels_move_in_the_scenarios_direction(real):
    rates = {
        name: simulate_labelled_snapshot(real, N, scenario=name, seed=8)["Attrition"]
        .eq("Yes")
        .mean()
        for name in SCENARIOS
    }
    base = real["Attrition"].eq("Yes").mean()
    assert rates["none"] == pytest.approx(base, abs=0.02)
    assert rates["mean_shift"] == rates["none"]  # a pure covariate shift
    assert rates["salary_inflation"] < rates["none"] - 0.015
    assert rates["overtime_surge"] > rates["none"] + 0.03
    assert rates["young_hiring_wave"] > rates["none"] + 0.02


def test_bad_requests_are_clear_errors(real):
    with pytest.raises(ValueError, match="unknown scenario"):
        simulate_traffic(real, 10, scenario="tsunami", seed=1)
    with pytest.raises(ValueError, match="numeric model feature"):
        simulate_traffic(real, 10, scenario="mean_shift", seed=1, feature="EmployeeNumber")
    with pytest.raises(ValueError, match="Attrition"):
        simulate_labelled_snapshot(real.drop(columns="Attrition"), 10, scenario="none", seed=1)
    with pytest.raises(ValueError, match="n >= 1"):
        simulate_traffic(real, 0, seed=1)
