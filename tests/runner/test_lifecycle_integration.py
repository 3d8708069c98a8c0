"""The model lifecycle end to end: the real jobs as processes against a real MLflow store.

train → cold-start promotion → retry is idempotent → a second challenger is gated against the
champion → bad data fails cleanly with the registry untouched → rollback.
"""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from attrition_mlops import registry
from attrition_mlops.data import contract
from attrition_mlops.data.dataset import bundled_dataset_path
from attrition_mlops.data.example import EXAMPLE_REQUEST
from attrition_mlops.model.predictor import PROFILE_FILE, AttritionPyfunc
from attrition_mlops.runner.local import JobFailedError, run_job

pytestmark = pytest.mark.integration

NAME = "employee_attrition"


@pytest.fixture
def fast_training(state_dir, monkeypatch):
    monkeypatch.setenv("ATTRITION_TRAIN_N_TRIALS", "4")
    monkeypatch.setenv("ATTRITION_GATE_N_BOOT", "500")
    return state_dir


def _versions():
    return sorted(int(v.version) for v in MlflowClient().search_model_versions(f"name = '{NAME}'"))


def _connect(state_dir):
    uri = f"sqlite:///{(state_dir / 'mlflow.db').resolve()}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


def test_model_lifecycle(fast_training, tmp_path):
    first = run_job("train", ["--run-key", "run-a"], echo=False)
    _connect(fast_training)
    assert first["version"] == "1" and not first["reused"]
    assert registry.get_alias_version(NAME, registry.CHALLENGER) == "1"
    assert first["holdout_auc"] > 0.75

    decision = run_job("evaluate", ["--quiet"], echo=False)
    assert decision["decision"] == "promoted" and decision["rule"] == "cold_start"
    assert registry.get_alias_version(NAME, registry.CHAMPION) == "1"
    assert decision["holdout"] == {"sha256": first["holdout_sha256"], "n": 294, "positives": 47}
    assert {row["attribute"] for row in decision["slices"]} == {
        "Gender",
        "AgeBand",
        "MaritalStatus",
    }

    retry = run_job("train", ["--run-key", "run-a"], echo=False)
    assert retry["reused"] and retry["version"] == "1" and _versions() == [1]

    unchanged = run_job("train", ["--run-key", "run-b"], echo=False)
    assert unchanged["skipped"] is True and unchanged["champion_version"] == "1"
    assert unchanged["reason"].startswith("unchanged snapshot: as_of=2017-03-31")
    assert _versions() == [1]  # the champion's own snapshot: nothing new, nothing trained
    second = run_job("train", ["--run-key", "run-b", "--force"], echo=False)
    assert second["version"] == "2" and _versions() == [1, 2]
    gated = run_job("evaluate", ["--quiet", "--challenger-version", "2"], echo=False)
    # Same data, same seed: an equivalent model, so the incumbent keeps the title.
    assert gated["decision"] == "rejected" and gated["rule"] == "bootstrap"
    assert gated["champion_version"] == "1" and gated["win_rate"] < 0.9
    assert registry.get_alias_version(NAME, registry.CHAMPION) == "1"
    assert registry.get_version(NAME, "2").tags["gate.decision"] == "rejected"
    _check_evaluation_artifacts(gated["evaluation_run_id"])
    _check_registered_model("1", first)

    _batch_scoring_is_idempotent(tmp_path)
    _drift_job_against_the_registered_profile(tmp_path)
    _bad_data_leaves_registry_untouched(tmp_path)
    _rollback(fast_training)


def _batch_scoring_is_idempotent(tmp_path):
    args = [
        "--input",
        str(bundled_dataset_path()),
        "--output",
        str(tmp_path / "predictions"),
        "--run-date",
        "2026-11-21",
        "--no-progress",
    ]
    results = [run_job("score", args, echo=False) for _ in range(2)]
    assert results[1]["model_version"] == "1"  # the champion, via models:/…@champion
    table = pd.read_parquet(tmp_path / "predictions" / "run_date=2026-11-21")
    assert len(table) == 1470 and table[contract.ID_COLUMN].is_unique


def _check_evaluation_artifacts(run_id):
    artifacts = {a.path for a in MlflowClient().list_artifacts(run_id)}
    assert {"decision_report.json", "decision.png"} <= artifacts
    report = mlflow.artifacts.load_dict(f"runs:/{run_id}/decision_report.json")
    assert report["delta_auc_ci95"][0] <= report["delta_auc"] <= report["delta_auc_ci95"][1]
    power = report["power"]
    assert "47 leavers" in power["statement"]
    assert power["min_detectable_delta_auc_at_80pct_power"] > 0


def _check_registered_model(version, trained):
    tags = registry.get_version(NAME, version).tags
    assert tags["data_sha256"] == trained["data_sha256"]
    assert tags["holdout_sha256"] == trained["holdout_sha256"]
    assert len(tags["git_commit"]) >= 7 and tags["run_key"] == "run-a"
    uri = f"models:/{NAME}/{version}"
    info = mlflow.models.get_model_info(uri)
    assert [c.name for c in info.signature.inputs.inputs] == list(contract.INPUT_COLUMNS)
    model = mlflow.pyfunc.load_model(uri)
    assert isinstance(model.unwrap_python_model(), AttritionPyfunc)
    out = model.predict(pd.DataFrame(EXAMPLE_REQUEST))
    assert list(out.columns) == ["probability", "label", "is_outlier", "outlier_score"]
    assert 0.0 <= out.probability[0] <= 1.0
    profile_path = mlflow.artifacts.download_artifacts(f"{uri}/artifacts/{PROFILE_FILE}")
    profile = json.loads(open(profile_path).read())
    assert set(profile["features"]) == set(contract.MODEL_FEATURES)
    detector = model.unwrap_python_model().predictor.detector
    assert detector.fpr == 0.01 and detector.threshold > 0


def _drift_job_against_the_registered_profile(tmp_path):
    from datetime import date

    from attrition_mlops.data.dataset import load_snapshot
    from attrition_mlops.data.inference_log import Pseudonymiser
    from attrition_mlops.simulate import simulate_traffic, simulated_log_lines

    base, key = load_snapshot().frame, Pseudonymiser(b"k" * 16)
    for scenario, folder in (("none", "quiet"), ("salary_inflation", "drifted")):
        partition = tmp_path / folder / "date=2026-11-20"
        partition.mkdir(parents=True)
        traffic = simulate_traffic(base, 800, scenario=scenario, seed=5)
        lines = simulated_log_lines(
            traffic, model_name=NAME, model_version="1", day=date(2026, 11, 20), pseudonymise=key
        )
        (partition / "a.jsonl").write_text("".join(line + "\n" for line in lines))
    args = ["--date", "2026-11-20", "--fail-on-drift"]
    quiet = run_job("drift", ["--logs", str(tmp_path / "quiet"), *args], echo=False)
    assert quiet["status"] == "no_drift" and quiet["n_records"] == 800
    with pytest.raises(JobFailedError) as drifted:
        run_job("drift", ["--logs", str(tmp_path / "drifted"), *args], echo=False)
    assert drifted.value.returncode == 3  # --fail-on-drift: confirmed drift is the signal


def _bad_data_leaves_registry_untouched(tmp_path):
    frame = pd.read_csv(bundled_dataset_path(), dtype=str)
    frame.loc[4, "JobRole"] = "Astronaut"
    bad = tmp_path / "bad.csv"
    frame.drop(columns=["OverTime"]).to_csv(bad, index=False)
    before = (_versions(), registry.get_alias_version(NAME, registry.CHAMPION))
    runs_before = len(mlflow.search_runs(search_all_experiments=True))
    with pytest.raises(JobFailedError) as failed:
        run_job("train", ["--data", str(bad), "--run-key", "run-bad"], echo=False)
    assert failed.value.returncode == 2
    assert "OverTime" in failed.value.stderr and "Astronaut" in failed.value.stderr
    assert "row 5" in failed.value.stderr
    assert (_versions(), registry.get_alias_version(NAME, registry.CHAMPION)) == before
    assert len(mlflow.search_runs(search_all_experiments=True)) == runs_before


def _rollback(state_dir):
    with pytest.raises(JobFailedError, match="no previous-champion"):
        run_job("rollback", echo=False)
    # Promote v2 by hand (as an operator override would), then undo it with the job.
    registry.move_alias(NAME, registry.CHAMPION, "2", expected="1", actor="test", reason="manual")
    moved = run_job("rollback", ["--reason", "bad canary"], echo=False)
    assert (moved["version"], moved["previous"]) == ("1", "2")
    assert registry.get_alias_version(NAME, registry.CHAMPION) == "1"
    assert registry.get_version(NAME, "1").tags["audit.champion.reason"] == "bad canary"
