"""The DAG tasks' small rules, without Airflow running: job arguments per run, which day a run
is about, what counts as a promotion or confirmed drift, and the retention purge."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowSkipException
from support import load_script

from attrition_mlops.monitoring.window import purge_expired_partitions
from attrition_mlops.orchestration import events, plan
from attrition_mlops.orchestration.assets import CHAMPION, DRIFT
from attrition_mlops.orchestration.links import MLFLOW_RUN_KEY, MODEL_VERSION_KEY
from attrition_mlops.orchestration.operators import JOB_RESULT_KEY, _skip_if_nothing_done
from attrition_mlops.settings import PipelineSettings, WorkflowSettings


def test_training_args_carry_the_run_key_and_optional_snapshot_and_budget():
    key = plan.run_key("attrition_training", "manual__1")
    assert plan.training_args(WorkflowSettings(), key=key) == {
        "validate": [],
        "train": ["--run-key", "attrition_training__manual__1"],
    }
    args = plan.training_args(WorkflowSettings(n_trials=4), key=key, snapshot="s3://x.csv")
    assert args["validate"] == ["--data", "s3://x.csv"]
    assert args["train"] == ["--data", "s3://x.csv", "--run-key", key, "--n-trials", "4"]


def test_a_named_labelled_snapshot_wins_over_a_file_and_bad_dates_fail_early():
    key = plan.run_key("attrition_training", "manual__1")
    workflow = WorkflowSettings(snapshot="/data/x.csv")
    args = plan.training_args(workflow, key=key, snapshot_as_of="2026-11-30")
    assert args["validate"] == ["--snapshot-as-of", "2026-11-30"]
    assert args["train"] == ["--snapshot-as-of", "2026-11-30", "--run-key", key]
    assert plan.training_args(workflow, key=key)["validate"] == ["--data", "/data/x.csv"]
    with pytest.raises(ValueError):
        plan.training_args(workflow, key=key, snapshot_as_of="30/11/2026")
    assert plan.snapshot_args("/in/labels.csv", "2026-11-30") == [
        "/in/labels.csv",
        "--as-of",
        "2026-11-30",
    ]
    assert plan.snapshot_args("f.csv", "2026-11-30", "HR export")[-2:] == ["--source", "HR export"]
    with pytest.raises(ValueError):
        plan.snapshot_args("f.csv", "yesterday")


class _TI:
    def __init__(self) -> None:
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value


def test_a_job_with_nothing_to_do_ends_its_task_skipped_with_the_reason():
    trained = {"version": "3", "skipped": False}
    assert _skip_if_nothing_done({"ti": _TI()}, "train", trained) is trained
    ti = _TI()
    result = {"skipped": True, "reason": "unchanged snapshot: as_of=2017-03-31 (sha256 7d77…)"}
    with pytest.raises(AirflowSkipException, match=r"^train: unchanged snapshot: as_of=2017"):
        _skip_if_nothing_done({"ti": ti}, "train", result)
    assert ti.pushed == {JOB_RESULT_KEY: result}  # still readable in the UI's XCom tab


def test_a_stored_snapshot_updates_the_labelled_snapshot_asset(capsys):
    event = _Event()
    added = {
        "added": True,
        "as_of": "2026-11-30",
        "sha256": "ab" * 32,
        "rows": 400,
        "positives": 61,
        "source": "HR export",
        "path": "/s/as_of=2026-11-30",
    }
    announced = events.record_snapshot(added, event)
    assert (
        event.extra
        == announced
        == {
            "as_of": "2026-11-30",
            "sha256": "ab" * 32,
            "rows": 400,
            "positives": 61,
            "source": "HR export",
        }
    )
    assert "retraining is scheduled" in capsys.readouterr().out


def test_days_scheduled_runs_check_yesterday_and_params_win():
    at = datetime(2026, 11, 22, 1, 30, tzinfo=UTC)
    assert plan.monitored_day(None, at, at) == date(2026, 11, 21)
    assert plan.monitored_day("2026-01-02", at, at) == date(2026, 1, 2)
    assert plan.run_day(None, None, at) == date(2026, 11, 22)  # a manual run without logical date
    with pytest.raises(ValueError):
        plan.run_day("22/11/2026", at, at)


def test_scoring_and_drift_args_follow_settings(tmp_path):
    pipeline = PipelineSettings(state_dir=tmp_path)
    workflow = WorkflowSettings(batch_input="/data/in/ds={ds}/", log_format="log-analytics")
    args = plan.scoring_args(workflow, pipeline, date(2026, 3, 4), model_alias="production")
    assert args == [
        "--run-date",
        "2026-03-04",
        "--model-uri",
        "models:/employee_attrition@production",
        "--input",
        "/data/in/ds=2026-03-04/",
    ]
    run = "http://127.0.0.1:8080/dags/attrition_drift_monitoring/runs/manual__1"
    drift = plan.drift_args(workflow, pipeline, date(2026, 3, 4), run)
    assert drift[-2:] == ["--airflow-run-url", run]  # the reports link the run
    assert "--airflow-run-url" not in plan.drift_args(workflow, pipeline, date(2026, 3, 4))
    assert drift[:6] == [
        "--date",
        "2026-03-04",
        "--logs",
        str(tmp_path / "inference-logs"),
        "--format",
        "log-analytics",
    ]


def test_the_performance_job_reads_the_logs_the_drift_job_reads(tmp_path):
    pipeline = PipelineSettings(state_dir=tmp_path)
    for workflow in (
        WorkflowSettings(log_format="log-analytics"),
        WorkflowSettings(inference_logs="/mnt/exports/inference"),
    ):
        drift = plan.drift_args(workflow, pipeline, date(2026, 3, 4))
        args = plan.performance_args(workflow, pipeline, date(2026, 3, 5))
        assert args[:2] == ["--as-of", "2026-03-05"] and args[-1] == "--log-to-mlflow"
        assert args[args.index("--logs") + 1] == drift[drift.index("--logs") + 1]
        assert args[args.index("--log-format") + 1] == drift[drift.index("--format") + 1]


class _Event(SimpleNamespace):
    extra: dict | None = None


def test_only_a_promotion_updates_the_champion_asset(monkeypatch):
    sent = []
    monkeypatch.setattr(events, "_notify", lambda ti=None, **alert: sent.append((ti, alert)))
    event, ti = _Event(), SimpleNamespace(task_id="promote_champion")
    with pytest.raises(AirflowSkipException, match="champion kept"):
        events.record_promotion({"decision": "rejected", "reason": "ties"}, event, ti=ti)
    assert event.extra is None and sent == []
    evaluation = {
        "decision": "promoted",
        "challenger_version": "2",
        "champion_version": "1",
        "reason": "won 97% of resamples",
        "delta_auc": 0.03,
    }
    links = {"MLflow evaluation run": "http://mlflow/#/runs/e1"}
    assert events.record_promotion(evaluation, event, links, ti=ti)["version"] == "2"
    assert event.extra == {"version": "2", "previous": "1"}
    [(sent_ti, alert)] = sent
    assert sent_ti is ti  # the alert names the training run and links to it
    assert alert["event"] == "champion_promoted" and alert["links"] == links


def test_a_promotion_on_the_recent_window_reports_the_window_figures():
    evaluation = {
        "decision": "promoted",
        "rule": "window_bootstrap",
        "challenger_version": "2",
        "champion_version": "1",
        "delta_auc": -0.115,  # the frozen holdout: the old world, where the adapted model loses
        "win_rate": 0.013,
        "auc_challenger": 0.70,
        "evidence_window": {"delta_auc": 0.204, "win_rate": 1.0, "auc_challenger": 0.83},
        "reason": "challenger gains more than 0.010 AUC ... on the recent window ...",
    }
    promoted = plan.promotion(evaluation)
    assert promoted["evidence"] == "recent window"
    assert (promoted["delta_auc"], promoted["win_rate"], promoted["auc"]) == (0.204, 1.0, 0.83)
    frozen = plan.promotion(evaluation | {"rule": "bootstrap_frozen_holdout"})
    assert (frozen["evidence"], frozen["delta_auc"]) == ("frozen holdout", -0.115)


def test_only_confirmed_drift_alerts_and_updates_the_drift_asset(monkeypatch, state_dir):
    sent = []
    monkeypatch.setattr(events, "_notify", lambda ti=None, **alert: sent.append((ti, alert)))
    event, ti = _Event(), SimpleNamespace(task_id="signal_drift")
    quiet = {"drift_confirmed": False, "status": "no_drift", "n_records": 900, "versions": {}}
    with pytest.raises(AirflowSkipException, match="no_drift"):
        events.record_drift(quiet, event, {})
    assert event.extra is None and sent == []
    drifted = {"feature": "MonthlyIncome", "psi": 0.4, "p_adjusted": 1e-9}
    summary = {
        "drift_confirmed": True,
        "status": "drift",
        "n_records": 2400,
        "window": ["2026-11-22", "2026-11-22"],
        "versions": {"1": {"drifted": [drifted]}},
    }
    events.record_drift(summary, event, {"report": "/r.html"}, ti=ti)
    assert event.extra["features"] == "MonthlyIncome"
    [(sent_ti, alert)] = sent
    assert sent_ti is ti  # the alert names the drift run and links to it
    assert alert["event"] == "drift_confirmed" and "MonthlyIncome" in alert["title"]
    assert alert["details"]["drifted"][0]["model_version"] == "1"
    assert alert["links"] == {"report": "/r.html"}
    assert "SIMULATED" not in alert["title"] + alert["summary"]
    # Drift found in SIMULATED traffic says so up front, so on-call checks for a simulation.
    sent.clear()
    events.record_drift({**summary, "n_simulated": 2000}, event, {}, ti=ti)
    [(_, alert)] = sent
    assert alert["title"].startswith("[SIMULATED traffic] Input drift confirmed")
    assert "2000 of the 2400 records were SIMULATED" in alert["summary"]
    assert alert["details"]["n_simulated"] == 2000


def test_the_drift_alert_names_version_window_date_and_the_crossing_statistic(
    monkeypatch, state_dir
):
    sent = []
    monkeypatch.setattr(events, "_notify", lambda ti=None, **alert: sent.append((ti, alert)))
    drifted = {
        "feature": "MonthlyIncome",
        "reason": "W/SD 0.153 ≥ 0.1; adjusted p 3.2e-05 < 0.05",
        "psi": 0.052,
        "wasserstein_sd": 0.153,
        "p_adjusted": 3.2e-05,
    }
    summary = {
        "model_name": "employee_attrition",
        "drift_confirmed": True,
        "status": "drift",
        "n_records": 2400,
        "window": ["2026-11-21", "2026-11-22"],
        "checked_at": "2026-11-23T01:31:07+00:00",
        "versions": {"4": {"drifted": [drifted]}},
    }
    events.record_drift(summary, _Event(), {}, ti=SimpleNamespace(task_id="signal_drift"))
    [(_, alert)] = sent
    assert alert["title"] == (
        "Input drift confirmed: employee_attrition v4, window 2026-11-21..2026-11-22, "
        "checked 2026-11-23 01:31 UTC: MonthlyIncome"
    )
    assert "MonthlyIncome (W/SD 0.153 ≥ 0.1; adjusted p 3.2e-05 < 0.05)" in alert["summary"]
    assert "PSI 0.052" not in alert["summary"]  # below its minimum: not why it alarmed


def test_too_little_data_skips_but_tells_on_call_monitoring_is_blind(monkeypatch, state_dir):
    sent = []
    monkeypatch.setattr(events, "_notify", lambda ti=None, **alert: sent.append((ti, alert)))
    event, ti = _Event(), SimpleNamespace(task_id="signal_drift")
    links = {"MLflow drift run": "http://mlflow/#/runs/1", "retraining (runs)": "http://af/x"}
    summary = {
        "status": "insufficient_data",
        "drift_confirmed": False,
        "n_records": 12,
        "window": ["2026-11-22", "2026-11-22"],
        "rejected_lines": ["a.jsonl:3: not JSON"],
        "versions": {
            "3": {
                "status": "insufficient_data",
                "n_current": 12,
                "message": "insufficient data: 12 records < minimum 200",
            }
        },
    }
    with pytest.raises(AirflowSkipException, match="insufficient_data, 12 records"):
        events.record_drift(summary, event, links, ti=ti)
    assert event.extra is None  # not drift: retraining is not scheduled
    [(sent_ti, alert)] = sent
    assert sent_ti is ti and alert["event"] == "drift_insufficient_data"
    assert alert["title"] == (
        "No drift check: v3, window 2026-11-22: only 12 logged record(s), below "
        "ATTRITION_DRIFT_MIN_RECORDS"
    )
    assert "1 log line(s) were unreadable" in alert["summary"]
    assert alert["details"]["versions"]["3"]["message"].endswith("< minimum 200")
    assert alert["links"] == {"MLflow drift run": "http://mlflow/#/runs/1"}
    # Nothing logged at all (no version served): said so, the likelier sign of a broken export.
    sent.clear()
    empty = {
        "model_name": "employee_attrition",
        "checked_at": "2026-11-23T01:30:12+00:00",
        "status": "insufficient_data",
        "drift_confirmed": False,
        "n_records": 0,
        "window": ["2026-11-20", "2026-11-22"],
        "versions": {},
    }
    with pytest.raises(AirflowSkipException):
        events.record_drift(empty, event, {})
    [(_, alert)] = sent
    # The model, window and check time, as the drift_confirmed title; no version was seen.
    assert alert["title"] == (
        "No drift check: employee_attrition, window 2026-11-20..2026-11-22, "
        "checked 2026-11-23 01:30 UTC: no logged records at all"
    )
    assert "The drift window 2026-11-20..2026-11-22 held no logged records" in alert["summary"]


def _dag(name: str):
    """The DAG a file in dags/ defines, built in-process (no scheduler, no database)."""
    return getattr(load_script(f"dags/{name}.py", f"_dag_{name}"), name)()


class _TaskInstance(SimpleNamespace):
    def xcom_pull(self, task_ids: str, key: str = "return_value") -> str | None:
        return self.xcoms.get((task_ids, key))


@pytest.mark.parametrize(
    ("dag_id", "task_id", "upstream", "asset"),
    [
        ("attrition_training", "promote_champion", "evaluate_challenger", CHAMPION),
        ("attrition_drift_monitoring", "signal_drift", "check_drift", DRIFT),
    ],
)
def test_the_dags_give_their_alerts_the_task_instance_and_mlflow_links(
    monkeypatch, dag_id, task_id, upstream, asset
):
    sent = []
    monkeypatch.setattr(events, "_notify", lambda ti=None, **alert: sent.append((ti, alert)))
    run_url = "http://127.0.0.1:5000/#/experiments/1/runs/r1"
    version = "http://127.0.0.1:5000/#/models/employee_attrition/versions/5"
    ti = _TaskInstance(
        dag_id=dag_id,
        task_id=task_id,
        xcoms={
            (upstream, MLFLOW_RUN_KEY): run_url,
            (upstream, MODEL_VERSION_KEY): version,
        },
    )
    result = {  # what jobs/evaluate.py, or jobs/drift.py, returned
        "attrition_training": {
            "decision": "promoted",
            "challenger_version": "5",
            "champion_version": "4",
            "reason": "won 97% of resamples",
        },
        "attrition_drift_monitoring": {
            "drift_confirmed": True,
            "status": "drift",
            "n_records": 2400,
            "window": ["2026-11-22", "2026-11-22"],
            "versions": {"5": {"drifted": [{"feature": "MonthlyIncome", "psi": 0.4}]}},
        },
    }[dag_id]
    event = _Event()
    callable_ = _dag(dag_id).get_task(task_id).python_callable
    callable_(result, outlet_events={asset: event}, ti=ti)
    assert event.extra is not None
    [(sent_ti, alert)] = sent
    assert sent_ti is ti  # so the alert names this run and links to its log
    if dag_id == "attrition_training":
        assert alert["event"] == "champion_promoted"
        assert alert["links"] == {"MLflow evaluation run": run_url, "MLflow model version": version}
    else:
        assert alert["event"] == "drift_confirmed"
        assert alert["links"]["MLflow drift run"] == run_url


def test_retention_purges_only_expired_partitions(tmp_path):
    for name in ("date=2026-10-01", "date=2026-11-01", "date=2026-11-21", "date=bogus"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.jsonl").write_text("{}\n")
    deleted = purge_expired_partitions(tmp_path, keep_days=30, today=date(2026, 11, 22))
    assert deleted == ["date=2026-10-01"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "date=2026-11-01",
        "date=2026-11-21",
        "date=bogus",
    ]


def test_the_trigger_note_names_the_asset_event_and_its_source_run():
    from attrition_mlops.orchestration.asset_runs import trigger_note

    event = {
        "id": 7,
        "asset": "attrition_drift",
        "source_dag_id": "attrition_drift_monitoring",
        "source_run_id": "manual__2026-12-07T01:00:00+00:00",
        "source_task_id": "signal_drift",
    }
    first, how = trigger_note([event]).split("\n\n")
    assert first == (
        "Triggered by the `attrition_drift` asset event from `attrition_drift_monitoring` run "
        "`manual__2026-12-07T01:00:00+00:00` (task `signal_drift`)."
    )
    assert "dag.test()" in how and "scheduler" in how


class _PullTI(_TI):
    """Pulls read this run's pushes: roll_out's flag, read_deployed's record."""

    def __init__(self, before: dict) -> None:
        super().__init__()
        self.before = before

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> object:
        return self.before if key == "return_value" else self.pushed.get(key)


class _Backend:
    def __init__(self, error: Exception) -> None:
        self.error = error
        self.rolled_back: list[tuple[str, str | None]] = []

    def roll_out(self, env: str, **_: object) -> object:
        raise self.error

    def roll_back(self, env: str, previous) -> None:
        self.rolled_back.append((env, previous.model_version))


@pytest.mark.parametrize("refused", [True, False])
def test_only_a_rollout_that_may_have_changed_something_is_rolled_back(monkeypatch, refused):
    """Regression: after an RBAC refusal (nothing patched) the rollback still ran and sent
    deployment_rolled_back, telling on-call a version had been rolled back when nothing changed.
    Any other rollout failure may have changed the environment, so that one is rolled back."""
    from attrition_mlops.deploy import rollout
    from attrition_mlops.deploy.rollout.common import RolloutFailed
    from attrition_mlops.deploy.rollout.kubernetes import RolloutForbidden
    from attrition_mlops.orchestration import deploy

    error = (
        RolloutForbidden("staging", "img:7", "403 Forbidden")
        if refused
        else RolloutFailed("staging", "img:7", "pods crash-looping")
    )
    backend = _Backend(error)
    alerts: list[str] = []
    monkeypatch.setattr(rollout, "get_backend", lambda: backend)
    monkeypatch.setattr(events, "notify_rollback", lambda env, **_: alerts.append(env))
    ti = _PullTI({"staging": {"environment": "staging", "model_version": "5", "image": "img:5"}})
    with pytest.raises(RolloutFailed):
        deploy.roll_out("staging", "7", "img:7", ti)
    if refused:
        with pytest.raises(AirflowSkipException, match="never changed"):
            deploy.roll_back("staging", "7", ti)
        assert backend.rolled_back == [] and alerts == []
    else:
        deploy.roll_back("staging", "7", ti)
        assert backend.rolled_back == [("staging", "5")] and alerts == ["staging"]
