"""The decision rules at their boundaries, with the production settings.

Each test here pins one edge a one-character bug would move: the drift rule reading raw p-values
instead of corrected ones, the gate's win-rate comparison, the batch reject limit, and the
documented production defaults (docs/drift.md, docs/model-lifecycle.md, docs/batch-scoring.md).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split
from support import bootstrap_of_deltas

from attrition_mlops.data import contract
from attrition_mlops.data.dataset import bundled_dataset_path
from attrition_mlops.data.validation import DataValidationError
from attrition_mlops.gate.bootstrap import PairedBootstrap
from attrition_mlops.gate.rules import decide
from attrition_mlops.model.features import build_classifier
from attrition_mlops.model.outliers import calibrate_outlier_detector
from attrition_mlops.model.predictor import AttritionPredictor
from attrition_mlops.model.profile import build_reference_profile
from attrition_mlops.monitoring.drift import check_drift
from attrition_mlops.scoring.batch import TooManyRejectsError, score_snapshot
from attrition_mlops.settings import DriftSettings, GateSettings, ScoringSettings

DAY = date(2026, 11, 20)


# --- production defaults, as documented -------------------------------------------------------


def test_documented_production_defaults():
    gate, drift, scoring = GateSettings(), DriftSettings(), ScoringSettings()
    assert (gate.min_win_rate, gate.n_boot, gate.min_auc) == (0.90, 2000, 0.75)
    assert gate.tie_tolerance == 1e-9
    assert (drift.alpha, drift.correction, drift.min_records) == (0.05, "bh", 200)
    assert (drift.min_psi, drift.min_wasserstein_sd, drift.psi_bins) == (0.1, 0.1, 10)
    assert scoring.max_reject_fraction == 0.01


# --- drift: only corrected p-values count -----------------------------------------------------


@pytest.fixture(scope="module")
def reference(snapshot) -> pd.DataFrame:
    """The 80 % training part (stratified, seed 42) the reference profile is built from."""
    frame = snapshot.frame
    train, _ = train_test_split(
        frame, test_size=0.2, random_state=42, stratify=frame[contract.LABEL]
    )
    return train.reset_index(drop=True)


def test_feature_significant_only_before_correction_does_not_alarm(reference):
    settings = DriftSettings()  # production: BH at alpha 0.05, 200 records minimum
    profile = build_reference_profile(reference, source_sha256="test")
    # Every 5th training row: a quiet window of exactly the minimum size; then 24 of its 200
    # incomes set to the reference maximum, a large effect that KS at n=200 only just detects.
    current = reference.iloc[::5].head(settings.min_records).reset_index(drop=True)
    current.loc[:23, "MonthlyIncome"] = reference["MonthlyIncome"].max()
    result = check_drift(profile, current, settings)

    features = {f.name: f for f in result.features}
    income = features["MonthlyIncome"]
    # The premise: significant before correction, not after, with an effect above the minimum.
    assert income.p_value < settings.alpha <= income.p_adjusted
    assert income.effect_ratio >= 1.0 and income.wasserstein_sd >= settings.min_wasserstein_sd
    assert all(f.p_value >= settings.alpha for n, f in features.items() if n != "MonthlyIncome")
    # The decision: no alarm, and the report says why.
    assert result.status == "no_drift" and not result.drift_confirmed
    assert result.drifted_features == ()
    assert not income.significant and not income.drifted
    assert "no feature significant after bh correction" in result.message


# --- gate: a win rate exactly at the threshold promotes ---------------------------------------


def _boot(delta: list[float]) -> PairedBootstrap:
    """A bootstrap outcome with the given per-resample ΔAUC (champion AUC 0.80 throughout)."""
    return bootstrap_of_deltas(delta, n=300, n_pos=50)


def _decide(boot: PairedBootstrap, gate: GateSettings):
    return decide(
        challenger_version="2", champion_version="1", challenger_auc=0.82, boot=boot, gate=gate
    )


@pytest.mark.parametrize("n_boot", [10, 100, GateSettings().n_boot])
def test_win_rate_exactly_at_threshold_promotes(n_boot):
    gate = GateSettings()  # production: min_win_rate 0.90
    wins = round(gate.min_win_rate * n_boot)
    # The rest are ties (Δ exactly at the tolerance is a tie, not a win) and one loss.
    rest = [gate.tie_tolerance] * (n_boot - wins - 1) + [-0.01]
    boot = _boot([0.01] * wins + rest)
    assert boot.win_rate(gate.tie_tolerance) == gate.min_win_rate  # exactly, not nearly
    decision = _decide(boot, gate)
    assert decision.promote and decision.rule == "bootstrap"


@pytest.mark.parametrize("n_boot", [10, 100, GateSettings().n_boot])
def test_one_win_fewer_than_the_threshold_keeps_the_champion(n_boot):
    gate = GateSettings()
    wins = round(gate.min_win_rate * n_boot) - 1
    boot = _boot([0.01] * wins + [gate.tie_tolerance] * (n_boot - wins))
    assert boot.win_rate(gate.tie_tolerance) < gate.min_win_rate
    decision = _decide(boot, gate)
    assert not decision.promote and decision.rule == "bootstrap"


def test_gate_uses_the_settings_threshold_not_a_constant():
    boot = _boot([0.01] * 95 + [-0.01] * 5)  # wins 95 %
    assert _decide(boot, GateSettings(min_win_rate=0.95)).promote
    assert not _decide(boot, GateSettings(min_win_rate=0.96)).promote


# --- batch scoring: a reject count exactly at the limit publishes -----------------------------


@pytest.fixture(scope="module")
def predictor(snapshot):
    X = snapshot.frame[list(contract.INPUT_COLUMNS)]
    y = (snapshot.frame[contract.LABEL] == contract.POSITIVE_LABEL).astype(int)
    classifier = build_classifier("logistic_regression", {"C": 0.5}, seed=0).fit(X, y)
    return AttritionPredictor(classifier, calibrate_outlier_detector(X, fpr=0.01), 0.5)


def _input_with_rejects(tmp_path, n_rows: int, n_bad: int):
    """The first ``n_rows`` real rows, ``n_bad`` of them (spread out) with an unknown JobRole."""
    raw = pd.read_csv(bundled_dataset_path(), dtype=str).head(n_rows)
    bad = np.linspace(0, n_rows - 1, n_bad).astype(int)
    raw.loc[bad, "JobRole"] = "Astronaut"
    path = tmp_path / "in.csv"
    raw.to_csv(path, index=False)
    return path


def _score(path, out, predictor):
    cfg = ScoringSettings()  # as jobs/score.py calls it: the limit comes from the settings
    return score_snapshot(
        path,
        out,
        DAY,
        predictor,
        model_name="employee_attrition",
        model_version="1",
        batch_rows=cfg.batch_rows,
        max_reject_fraction=cfg.max_reject_fraction,
        progress=False,
    )


def test_reject_count_exactly_at_the_limit_publishes(tmp_path, predictor):
    limit = ScoringSettings().max_reject_fraction * 1000
    assert limit == 10  # 1 % of 1,000 rows: an exact count, so "at the limit" is well defined
    result = _score(_input_with_rejects(tmp_path, 1000, 10), tmp_path / "out", predictor)
    assert (result.rows_in, result.rows_scored, result.rows_rejected) == (1000, 990, 10)
    assert (tmp_path / "out" / f"run_date={DAY.isoformat()}" / "_SUCCESS.json").exists()


def test_one_reject_over_the_limit_fails_without_publishing(tmp_path, predictor):
    with pytest.raises(TooManyRejectsError, match="11 of 1000 rows invalid"):
        _score(_input_with_rejects(tmp_path, 1000, 11), tmp_path / "out", predictor)
    assert not (tmp_path / "out" / f"run_date={DAY.isoformat()}").exists()


# --- batch scoring: the published result, as a whole (pinned for the mutation run) ------------


def test_the_function_defaults_match_the_production_settings():
    import inspect

    defaults = inspect.signature(score_snapshot).parameters
    cfg = ScoringSettings()
    assert defaults["max_reject_fraction"].default == cfg.max_reject_fraction
    assert defaults["batch_rows"].default == cfg.batch_rows


def test_without_a_limit_the_function_refuses_at_the_production_limit(tmp_path, predictor):
    with pytest.raises(TooManyRejectsError, match="11 of 1000 rows invalid"):
        score_snapshot(
            _input_with_rejects(tmp_path, 1000, 11),
            tmp_path / "out",
            DAY,
            predictor,
            model_name="employee_attrition",
            model_version="1",
            progress=False,
        )


def test_a_published_run_reports_itself_and_leaves_only_the_partition_and_rejects(
    tmp_path, predictor
):
    out = tmp_path / "out"
    path = _input_with_rejects(tmp_path, 200, 2)
    result = score_snapshot(
        path,
        out,
        DAY,
        predictor,
        model_name="employee_attrition",
        model_version=7,  # an int, as a registry client may hand it over: reported as text
        max_reject_fraction=0.01,
        progress=False,
        run_id="run-given",
    )
    partition = out / f"run_date={DAY.isoformat()}"
    assert (result.run_date, result.model_name, result.model_version) == (
        DAY.isoformat(),
        "employee_attrition",
        "7",
    )
    assert (result.rows_in, result.rows_scored, result.rows_rejected) == (200, 198, 2)
    assert result.partition == str(partition)
    assert result.rejects == str(out / "_rejects" / partition.name / "rejects.parquet")
    assert result.resumed_parts == 0 and result.run_id == "run-given"
    assert isinstance(result.seconds, float) and 0 <= result.seconds < 600
    assert result.seconds == round(result.seconds, 3)
    assert result.scoring_path in ("compiled", "sklearn")
    assert result.input_files and result.input_files[0]["sha256"] == result.input_sha256
    assert (result.threshold, result.positive_label) == (0.5, contract.POSITIVE_LABEL)
    # No lock, staging folder or anything else is left beside what consumers read.
    assert sorted(p.name for p in out.iterdir()) == ["_rejects", partition.name]


def test_a_run_without_a_run_id_gets_one(tmp_path, predictor):
    result = _score(_input_with_rejects(tmp_path, 50, 0), tmp_path / "out", predictor)
    assert result.run_id.startswith("run-") and len(result.run_id) == 16
    assert result.rejects is None


def test_an_input_without_rows_is_refused_and_one_row_is_scored(tmp_path, predictor):
    header_only = tmp_path / "empty.csv"
    pd.read_csv(bundled_dataset_path(), dtype=str).head(0).to_csv(header_only, index=False)
    with pytest.raises(DataValidationError, match="empty.csv: no data rows"):
        _score(header_only, tmp_path / "out", predictor)
    assert _score(_input_with_rejects(tmp_path, 1, 0), tmp_path / "out1", predictor).rows_in == 1


def test_the_refusal_states_the_share_and_the_limit(tmp_path, predictor):
    with pytest.raises(TooManyRejectsError, match=r"11 of 1000 rows invalid \(1\.10% > 1\.00%"):
        _score(_input_with_rejects(tmp_path, 1000, 11), tmp_path / "out", predictor)
