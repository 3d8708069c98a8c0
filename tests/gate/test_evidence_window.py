"""The gate's recent evidence window end to end on a real MLflow store: a new SIMULATED snapshot
with a concept shift, the window held out of its training, both models judged on it, the frozen
holdout as the guard; and the refusals (a modified window, a champion that saw the rows)."""

from __future__ import annotations

from datetime import date

import pytest

from attrition_mlops import registry
from attrition_mlops.data.dataset import load_snapshot
from attrition_mlops.data.evidence import WINDOW_FILE, load_window, window_dir
from attrition_mlops.data.snapshots import add_snapshot, select_snapshot
from attrition_mlops.data.split import HoldoutError
from attrition_mlops.gate.evaluate import EvaluationError, evaluate_challenger
from attrition_mlops.settings import GateSettings, get_training_settings
from attrition_mlops.simulate.generate import simulate_labelled_snapshot
from attrition_mlops.training.train import train_model

NAME = "employee_attrition"
NEW = date(2026, 11, 30)

pytestmark = pytest.mark.integration  # trains three models against a real MLflow store


@pytest.fixture
def fast(mlflow_store, monkeypatch):
    monkeypatch.setenv("ATTRITION_TRAIN_N_TRIALS", "2")
    monkeypatch.setenv("ATTRITION_TRAIN_CV_FOLDS", "3")
    monkeypatch.setenv("ATTRITION_TRAIN_FAMILIES", '["logistic_regression"]')
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    get_training_settings.cache_clear()
    yield mlflow_store
    get_training_settings.cache_clear()


def _train(settings, chosen, key, force=False):
    return train_model(
        chosen.snapshot,
        run_key=key,
        settings=settings,
        cfg=get_training_settings(),
        manifest=chosen.manifest,
        force=force,
    )


def _evaluate(settings, version):
    return evaluate_challenger(settings, GateSettings(), get_training_settings(), version)


def test_an_adapted_challenger_is_judged_on_the_window_of_its_new_snapshot(fast, tmp_path):
    settings = fast
    first = _train(settings, select_snapshot(settings.snapshot_dir), "run-1")
    cold = _evaluate(settings, first.version)
    assert cold["decision"] == "promoted" and cold["rule"] == "cold_start"
    assert cold["evidence_window"]["usable"] is False  # the first snapshot holds no window

    # The world changed: a SIMULATED snapshot where long-tenured employees now leave.
    shifted = simulate_labelled_snapshot(
        load_snapshot().frame, 1500, scenario="senior_exodus", seed=7
    )
    file = tmp_path / "new.csv"
    shifted.to_csv(file, index=False)
    add_snapshot(file, NEW, source="SIMULATED senior_exodus", root=settings.snapshot_dir)
    second = _train(settings, select_snapshot(settings.snapshot_dir), "run-2")
    window, meta = load_window(settings.evidence_dir, NEW.isoformat())
    tags = registry.get_version(NAME, second.version).tags
    assert (tags["window_as_of"], tags["window_sha256"]) == (NEW.isoformat(), meta.sha256)
    assert meta.n_rows == round(1500 * get_training_settings().window_fraction)

    report = _evaluate(settings, second.version)
    evidence = report["evidence_window"]
    assert evidence["usable"] and evidence["n"] == meta.n_rows
    assert evidence["last"] == NEW.isoformat() and evidence["first"] == "2017-03-31"
    assert evidence["delta_auc"] > 0.02  # the adapted model ranks the new leavers
    assert report["decision"] == "promoted" and report["rule"] == "window_bootstrap"
    assert f"{NEW.isoformat()}" in report["reason"] and f"n={meta.n_rows}" in report["reason"]
    assert report["holdout"]["n"] > 0  # the frozen holdout was scored too (the guard)

    # A forced retrain on the same snapshot reuses the same frozen window, never a new draw.
    again = _train(settings, select_snapshot(settings.snapshot_dir), "run-3", force=True)
    assert registry.get_version(NAME, again.version).tags["window_sha256"] == meta.sha256
    # The champion (now v2) trained on the window's snapshot: it cannot be judged on those rows.
    assert registry.get_alias_version(NAME, registry.CHAMPION) == second.version
    report = _evaluate(settings, again.version)
    assert report["evidence_window"]["usable"] is False
    assert "champion trained on snapshot as_of=2026-11-30" in report["evidence_window"]["note"]
    assert report["rule"] == "bootstrap"  # no window: the frozen-holdout gate, as always

    # A modified window fails loudly instead of silently changing what "better" means.
    path = window_dir(settings.evidence_dir, NEW.isoformat()) / WINDOW_FILE
    path.write_text(path.read_text().replace(",Yes,", ",No,", 1))
    with pytest.raises(HoldoutError, match="evidence window .* was modified"):
        _evaluate(settings, again.version)
    assert len(window) == meta.n_rows


def test_a_window_missing_from_the_state_folder_is_refused(fast, tmp_path):
    settings = fast
    first = _train(settings, select_snapshot(settings.snapshot_dir), "run-1")
    _evaluate(settings, first.version)
    shifted = simulate_labelled_snapshot(
        load_snapshot().frame, 900, scenario="senior_exodus", seed=3
    )
    file = tmp_path / "new.csv"
    shifted.to_csv(file, index=False)
    add_snapshot(file, NEW, source="SIMULATED", root=settings.snapshot_dir)
    second = _train(settings, select_snapshot(settings.snapshot_dir), "run-2")
    for name in ("window.json", WINDOW_FILE):
        (window_dir(settings.evidence_dir, NEW.isoformat()) / name).unlink()
    with pytest.raises(EvaluationError, match="retrain it"):
        _evaluate(settings, second.version)
