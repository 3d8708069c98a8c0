"""End to end in real Airflow (dag.test: the real task runner, metadata DB, XComs, Asset
events) against a real MLflow store, real serving processes over HTTP and the real data set.

One module runs ``make demo``'s driver once (train → deploy → SIMULATED traffic → batch
scoring → quiet drift check → SIMULATED drift → alarm → retraining), then checks a rerun of
batch scoring and a deployment whose staging smoke test fails.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from support import REPO, fit_tiny_predictor, free_port

from attrition_mlops import registry
from attrition_mlops.data import contract
from attrition_mlops.data.dataset import load_snapshot
from attrition_mlops.model.predictor import AttritionPyfunc, write_artifacts
from attrition_mlops.model.profile import build_reference_profile

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Environment of an isolated local stack: its own state, Airflow home, ports."""
    state = tmp_path_factory.mktemp("lifecycle") / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ATTRITION_"))}
    env |= {
        "ATTRITION_STATE_DIR": str(state),
        "ATTRITION_JOBS_DIR": str(REPO / "jobs"),
        "ATTRITION_WORKFLOW_N_TRIALS": "2",
        "ATTRITION_LOCAL_SERVING_STAGING_PORT": str(free_port()),
        "ATTRITION_LOCAL_SERVING_PRODUCTION_PORT": str(free_port()),
        "ATTRITION_LOCAL_SERVING_POLL_SECONDS": "0.5",
    }
    yield {"state": state, "env": env}
    for pid_file in (state / "serving").glob("*.pid"):  # anything a failed test left running
        try:
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)
        except (ProcessLookupError, ValueError):
            pass


def _generated_in_repo() -> set[str]:
    """Untracked and ignored paths in the checkout (folders collapsed), .venv aside."""
    status = subprocess.run(
        ["git", "status", "--porcelain", "--ignored", "--untracked-files=normal"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {line[3:] for line in status.splitlines() if line[:2] in ("??", "!!")} - {".venv/"}


@pytest.fixture(scope="module")
def demo(stack):
    before = _generated_in_repo()
    proc = subprocess.run(
        [sys.executable, "-m", "attrition_mlops.orchestration.lifecycle"],
        env=stack["env"],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    (stack["state"] / "demo" / "terminal.txt").write_text(proc.stdout)  # to read after a failure
    outcome = json.loads((stack["state"] / "demo" / "outcome.json").read_text())
    wrote = _generated_in_repo() - before  # outside its state folder
    return {"stdout": proc.stdout, "stderr": proc.stderr, "outcome": outcome, "wrote": wrote}


def _airflow_run(stack, dag_id: str, conf: dict) -> dict:
    out = stack["state"] / f"result-{dag_id}.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "attrition_mlops.orchestration.local_airflow",
            "run",
            dag_id,
            "--conf",
            json.dumps(conf),
            "--result-json",
            str(out),
        ],
        env=stack["env"],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text())


def _mlflow(stack) -> str:
    uri = f"sqlite:///{stack['state'].resolve() / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return "employee_attrition"


def _alerts(stack, event: str) -> list[dict]:
    path = stack["state"] / "alerts" / "alerts.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if r.get("record") == "alert" and r.get("event") == event]


def test_demo_runs_the_whole_loop(demo, stack):
    outcome = demo["outcome"]
    assert outcome["promoted_first"] is True
    assert outcome["quiet_signal"] == "skipped"  # normal traffic: no alarm
    assert outcome["drift_signal"] == "success"  # drifted traffic: alarm
    assert outcome["training_queued_by"] == ["attrition_drift"]  # retraining scheduled
    # No new labelled snapshot arrived: the champion's data is not retrained, nothing to gate.
    assert outcome["retrain_training"] == "skipped" and outcome["retrain_promoted"] is False
    assert "DEMO MODE" in demo["stdout"] and "Summary" in demo["stdout"]
    assert outcome["drift_incident"].startswith(f"drift/v{outcome['champion_before']}/")
    # A new SIMULATED labelled snapshot (a concept shift) schedules training; the adapted
    # challenger is judged on the snapshot's recent window and promoted, then deployed.
    assert outcome["snapshot_queued_training"] == ["attrition_labelled_snapshot"]
    assert outcome["adapted_promoted"] is True
    assert outcome["champion_after"] != outcome["champion_before"]
    assert "recent window" in outcome["adapted_reason"]
    # The year-old cohort's SIMULATED outcomes give the first champion a realized AUC; the
    # latest cohort an estimate.
    first = outcome["performance"]["versions"][outcome["champion_before"]]
    assert first["status"] in ("ok", "degraded") and first["auc_low"] < first["auc_high"]
    assert 0.5 < first["estimate"]["estimated_auc"] < 1.0
    assert "realized AUC" in demo["stdout"] and "estimated AUC" in demo["stdout"]
    # The API's logged predictions are judged apart, with the demo's own pseudonym key (made in
    # its state folder): today's SIMULATED traffic has no matured outcome, so only estimates.
    online = outcome["performance"]["online"]
    assert online["reason"] is None and online["status"] == "insufficient_data"
    # Made-up employee numbers: only the smoke test's example records name real employees.
    assert online["n_records"] > 0 and online["n_matched_employees"] < 10
    assert set(online["status_counts"]) <= {"pending", "left_before_prediction"}
    assert online["versions"][outcome["champion_before"]]["estimate"]["estimated_auc"] > 0.5
    assert "      online (insufficient_data): " in demo["stdout"]
    assert "only the label-free estimate applies" in demo["stdout"]
    assert (stack["state"] / "demo" / "pseudonym-key").stat().st_mode & 0o777 == 0o600

    name = _mlflow(stack)
    champion = registry.get_alias_version(name, "champion")
    assert registry.get_alias_version(name, "staging") == champion
    assert registry.get_alias_version(name, "production") == champion

    [alert] = _alerts(stack, "drift_confirmed")  # one page: later nights update the incident
    features = {d["feature"] for d in alert["details"]["drifted"]}
    assert "MonthlyIncome" in features  # the SIMULATED scenario inflates salaries
    # The simulator's requests are marked in the inference log, so the alarm says so.
    assert alert["title"].startswith("[SIMULATED traffic]") and alert["details"]["n_simulated"] > 0
    report = next(v for k, v in alert["links"].items() if k.startswith("report") and "html" in k)
    assert Path(report).is_file()
    assert any("attrition_training" in v for v in alert["links"].values())
    # The title names the model version, the window and when it was checked; the report links
    # the run that made it (the alert's own Airflow run) and the runbook's drift entry.
    about = f"Input drift confirmed: {name} v{outcome['champion_before']}, window "
    assert about in alert["title"] and " checked " in alert["title"]
    page = Path(report).read_text()
    assert f'<li>Airflow run: <a href="{alert["links"]["Airflow run"]}">' in page
    assert "runbook.md#alert-drift-confirmed" in page and "<li>MLflow drift run: " in page
    assert _alerts(stack, "champion_promoted")
    # The quiet and the drifted check of the same night: distinct MLflow runs, by name.
    runs = mlflow.search_runs(
        search_all_experiments=True, filter_string="tags.job = 'drift'", output_format="list"
    )
    names = [r.info.run_name for r in runs]
    assert len(names) >= 2 and len(set(names)) == len(names)
    assert sum(n.startswith(f"drift-v{outcome['champion_before']}-") for n in names) >= 2


def test_the_terminal_tells_the_story_and_airflow_logs_go_to_the_file_it_names(demo, stack):
    """About 85 % of the demo's lines were Airflow's own logs; now the terminal has the story
    (steps, each task as it finishes, durations, decisions) and a file has the rest."""
    out, lines = demo["stdout"], demo["stdout"].splitlines()
    steps = [int(m[1]) for line in lines if (m := re.match(r"\[(\d+)/14\] .+ so far\)$", line))]
    assert steps == list(range(1, 15))
    assert "      ✓ train_challenger success" in out  # progress: each task as it finishes
    assert re.search(r"attrition_training success in \d+ (s|min)", out)  # durations
    assert "decision: v1 promoted to champion" in out
    assert "decision: no drift confirmed" in out and "decision: drift confirmed (" in out
    assert "Airflow queued attrition_training on the `attrition_drift` Asset event" in out
    assert "600 SIMULATED records (scenario none) in 12 requests: all 600 accepted" in out
    # No Airflow log line, progress bar, job output or dict on the terminal ...
    airflow_line = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d.*\[(debug|info|warning|error)")
    assert not [line for line in lines if airflow_line.match(line)]
    for noise in ("[DAG TEST]", "Downloading artifacts", "slices (challenger AUC", "{'200'"):
        assert noise not in out, noise
    assert demo["stderr"] == ""
    assert len(lines) < 200, len(lines)
    # ... they are in the file named at the start and at the end.
    named = re.search(r"Airflow's own logs and the jobs' output: (\S+)$", lines[-1])
    log = Path(named[1])
    assert log.parent == stack["state"].resolve() / "demo" and str(log) in lines[1]
    logged = log.read_text()
    assert "[DAG TEST] starting task_id=train_challenger" in logged
    assert "slices (challenger AUC" in logged  # the gate's table, from the job's output
    airflow_lines = [line for line in logged.splitlines() if airflow_line.match(line)]
    assert len(airflow_lines) > 2 * len(lines)  # most of what the terminal used to show


def test_make_clean_removes_everything_the_demo_wrote(demo, stack, tmp_path):
    """What the demo writes, by default in ``.state/`` and anywhere else in the checkout, laid
    out in a scratch folder beside the Makefile: ``make clean`` leaves only the Makefile."""
    state = stack["state"]
    written = sorted(p.relative_to(state) for p in state.rglob("*") if p.is_file())
    tops = {p.parts[0] for p in written}
    # Its state: MLflow, Airflow (metadata DB, task logs), serving logs, its own log, ...
    assert {"mlflow.db", "mlartifacts", "airflow", "serving", "demo", "drift"} <= tops, tops
    assert any(p.parts[:2] == ("airflow", "logs") for p in written)
    scratch = tmp_path / "checkout"
    for path in [Path(".state") / p for p in written] + [Path(p) for p in demo["wrote"]]:
        target = scratch / path
        if str(path).endswith("/") or (REPO / path).is_dir():
            target.mkdir(parents=True, exist_ok=True)
            (target / "generated").touch()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
    (scratch / "Makefile").write_bytes((REPO / "Makefile").read_bytes())
    subprocess.run(["make", "-s", "clean"], cwd=scratch, check=True, capture_output=True)
    left = sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*"))
    assert left == ["Makefile"], (left, sorted(demo["wrote"]))


def _airflow_db(stack, sql: str) -> list[tuple]:
    with sqlite3.connect(stack["state"] / "airflow" / "airflow.db") as db:
        return db.execute(sql).fetchall()


def test_every_task_the_demo_ran_has_its_log_where_the_ui_reads_it(demo, stack):
    ran = _airflow_db(
        stack,
        "SELECT dag_id, run_id, task_id, map_index, try_number FROM task_instance"
        " WHERE state IN ('success', 'failed')",
    )
    assert {row[0] for row in ran} == {
        "attrition_training",
        "attrition_deployment",
        "attrition_batch_scoring",
        "attrition_drift_monitoring",
        "attrition_snapshot_intake",
        "attrition_outcomes_intake",
        "attrition_performance_monitoring",
    }
    logs = stack["state"] / "airflow" / "logs"
    for dag_id, run_id, task_id, map_index, try_number in ran:
        mapped = f"map_index={map_index}/" if map_index >= 0 else ""
        path = logs / f"dag_id={dag_id}/run_id={run_id}/task_id={task_id}/{mapped}"
        path = path / f"attempt={try_number}.log"
        assert path.is_file(), path
        events = [json.loads(line) for line in path.read_text().splitlines()]
        # The task's own lines, as JSON the UI renders (timestamp, level, event, logger).
        assert any(e.get("logger") != "task" for e in events), (path, events)
        assert all({"timestamp", "level", "event"} <= e.keys() for e in events), path


def test_the_retraining_run_shows_the_drift_asset_event_that_triggered_it(demo, stack):
    runs = _airflow_db(
        stack,
        "SELECT r.dag_id, r.run_id, r.run_type, r.triggered_by, n.content, e.source_run_id"
        " FROM dag_run r LEFT JOIN dag_run_note n ON n.dag_run_id = r.id"
        " LEFT JOIN dagrun_asset_event c ON c.dag_run_id = r.id"
        " LEFT JOIN asset_event e ON e.id = c.event_id ORDER BY r.start_date",
    )
    drift_runs = [r[1] for r in runs if r[0] == "attrition_drift_monitoring"]
    training = [r for r in runs if r[0] == "attrition_training"]
    # triggered_by is stored as the enum's name
    assert [r[2:4] for r in training] == [("manual", "TEST")] + [("asset_triggered", "ASSET")] * 2
    retrain = training[1]
    assert retrain[5] == drift_runs[-1]  # it consumed the alarm run's attrition_drift event
    assert "`attrition_drift` asset event from `attrition_drift_monitoring`" in retrain[4]
    assert drift_runs[-1] in retrain[4]
    # The adapted retraining consumed the new labelled snapshot's event.
    [intake] = [r[1] for r in runs if r[0] == "attrition_snapshot_intake"]
    assert training[2][5] == intake and "`attrition_labelled_snapshot`" in training[2][4]
    first, adapted = [r for r in runs if r[0] == "attrition_deployment"]
    assert first[2:4] == adapted[2:4] == ("asset_triggered", "ASSET")
    assert first[5] == training[0][1] and "`attrition_champion`" in first[4]
    assert adapted[5] == training[2][1]
    [check] = [r for r in runs if r[0] == "attrition_performance_monitoring"]
    [outcomes] = [r[1] for r in runs if r[0] == "attrition_outcomes_intake"]
    assert check[2:4] == ("asset_triggered", "ASSET") and check[5] == outcomes


def _predictions(stack) -> pd.DataFrame:
    day = datetime.now(UTC).date().isoformat()
    folders = list((stack["state"] / "predictions").rglob(f"*{day}*"))
    assert folders, list((stack["state"] / "predictions").rglob("*"))
    return pd.concat(pd.read_parquet(p) for p in folders if p.is_dir())


def test_batch_scoring_rerun_leaves_one_copy_of_each_row(demo, stack):
    before = _predictions(stack)
    assert len(before) == 1470 and before["EmployeeNumber"].is_unique
    day = datetime.now(UTC).date().isoformat()
    result = _airflow_run(stack, "attrition_batch_scoring", {"date": day})
    assert result["state"] == "success", result
    after = _predictions(stack)
    assert len(after) == 1470 and after["EmployeeNumber"].is_unique


def _register_nan_model(name: str, state: Path) -> str:
    """A model that loads and warms up but answers NaN probabilities: a bad build."""
    snapshot = load_snapshot()
    X = snapshot.frame[list(contract.INPUT_COLUMNS)]
    predictor = fit_tiny_predictor(snapshot)  # a fresh one: the shared fixture is read-only
    predictor.classifier[-1].coef_[:] = float("nan")
    profile = build_reference_profile(X, source_sha256=snapshot.sha256)
    # The demo's experiment: MLflow's Default one keeps artifacts in ./mlruns of the folder the
    # store was made in (the repository: this test left mlruns/ there).
    mlflow.set_experiment("employee_attrition")  # exists: the demo made it
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run() as run:
        assert run.info.artifact_uri.startswith(state.resolve().as_uri() + "/")
        artifacts = write_artifacts(Path(tmp), predictor, profile)
        uri = mlflow.pyfunc.log_model(
            name="nan", python_model=AttritionPyfunc(), artifacts=artifacts, pip_requirements=[]
        ).model_uri
    tags = {  # what the image build requires of every version it bakes in
        "trained_at": "2026-01-01T00:00:00+00:00",
        "holdout_auc": "0.5",
        "data_sha256": snapshot.sha256,
        "git_commit": "test-broken-build",
    }
    version, _ = registry.register_version(uri, name, run_key="broken-build", tags=tags)
    return str(version.version)


def test_a_failing_staging_smoke_test_rolls_back_and_never_reaches_production(demo, stack):
    name = _mlflow(stack)
    good = registry.get_alias_version(name, "production")
    bad = _register_nan_model(name, stack["state"])
    result = _airflow_run(stack, "attrition_deployment", {"version": bad})
    tasks = result["tasks"]
    assert result["state"] == "failed"
    assert tasks["smoke_test_staging"] == "failed"
    assert tasks["roll_back_staging"] == "success"
    assert tasks["roll_out_production"] == "upstream_failed"
    assert tasks["roll_back_production"] in {"skipped", "upstream_failed"}
    assert registry.get_alias_version(name, "staging") == good  # staging is back
    assert registry.get_alias_version(name, "production") == good  # never touched
    [rolled] = _alerts(stack, "deployment_rolled_back")
    assert rolled["details"]["failed_version"] == bad and rolled["details"]["restored"] == good
