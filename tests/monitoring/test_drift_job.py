"""jobs/drift.py end to end: a real MLflow registry, real export files, the job as a process.

The registered version holds the reference profile of the real data; the traffic is SIMULATED.
"""

from __future__ import annotations

import re
import runpy
from datetime import date
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from support import REPO

from attrition_mlops import registry
from attrition_mlops.data import inference_log
from attrition_mlops.model.predictor import PROFILE_FILE
from attrition_mlops.model.profile import build_reference_profile
from attrition_mlops.runner.local import run_job
from attrition_mlops.simulate import simulate_traffic, simulated_log_lines

DAY = date(2026, 5, 1)
JOB = REPO / "jobs" / "drift.py"
KEY = inference_log.Pseudonymiser(b"drift-job-tests-0123456789")


@pytest.fixture
def registered(mlflow_store, snapshot):
    """Version 1 of the configured model, holding the real data's reference profile."""
    profile = build_reference_profile(snapshot.frame, source_sha256=snapshot.sha256)
    client = MlflowClient()
    client.create_registered_model(mlflow_store.model_name)
    with mlflow.start_run() as run:
        mlflow.log_dict(profile, f"model/artifacts/{PROFILE_FILE}")
    client.create_model_version(
        mlflow_store.model_name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id
    )
    return mlflow_store.model_name


def _lines(snapshot, n, version, prefix, seed=1):
    traffic = simulate_traffic(snapshot.frame, n, scenario="none", seed=seed)
    return list(
        simulated_log_lines(
            traffic,
            model_name="m",
            model_version=version,
            day=DAY,
            pseudonymise=KEY,
            request_id_prefix=prefix,
        )
    )


def test_find_reference_profile_tells_unknown_versions_from_a_missing_model(registered):
    assert registry.find_reference_profile(registered, "1")["n_rows"] == 1470
    for version in ("2", "Production", "abc", ""):
        assert registry.find_reference_profile(registered, version) is None, version
    with pytest.raises(registry.UnknownModelError, match="no registered model 'nope'"):
        registry.find_reference_profile("nope", "1")


@pytest.mark.integration
def test_unknown_version_replays_and_misfiled_lines_are_counted_not_fatal(
    tmp_path, registered, snapshot
):
    known = _lines(snapshot, 1000, "1", "known")
    misfiled = known[0].replace('"timestamp":"2026-05-01T', '"timestamp":"2026-04-12T', 1)
    infinite = known[1].replace('"latency_ms":0.0', '"latency_ms":Infinity', 1)
    partition = tmp_path / "logs" / "date=2026-05-01"
    partition.mkdir(parents=True)
    (partition / "1-a.jsonl").write_text(
        "\n".join([misfiled, infinite, *known[2:], *_lines(snapshot, 40, "9", "stray", 2)]) + "\n"
    )
    (partition / "2-b.jsonl").write_text("\n".join(known[2:6]) + "\n")  # replayed lines
    summary = run_job(
        "drift",
        [
            "--logs",
            str(tmp_path / "logs"),
            "--date",
            "2026-05-01",
            "--output",
            str(tmp_path / "report"),
        ],
        echo=False,
    )
    assert summary["status"] == "no_drift" and list(summary["versions"]) == ["1"]
    assert summary["n_records"] == 990  # 200 lines of 5, less the two rejected
    assert summary["unknown_versions"] == {"9": {"lines": 8, "records": 40}}
    assert summary["n_unknown_version_lines"] == 8 and summary["n_duplicate_lines"] == 4
    assert summary["n_rejected_lines"] == 2
    assert "outside its partition date=2026-05-01" in summary["rejected_lines"][0]
    assert "finite number" in summary["rejected_lines"][1]
    page = (tmp_path / "report" / "model_version=1" / "drift_report.html").read_text()
    assert "2 rejected (invalid), 4 duplicate (request_id read before), 8 from model" in page


@pytest.mark.parametrize(
    ("days", "message"),
    [
        ("0", "the window needs at least 1 day, got 0"),
        ("-3", "the window needs at least 1 day, got -3"),
        ("two", "expected a whole number of days, got 'two'"),
    ],
)
def test_days_below_one_is_a_usage_error(state_dir, capsys, days, message):
    main = runpy.run_path(str(JOB))["main"]
    with pytest.raises(SystemExit) as exited:
        main(["--days", days, "--date", "2026-05-01", "--logs", str(state_dir / "none")])
    assert exited.value.code == 2
    assert f"argument --days: {message}" in capsys.readouterr().err
    assert not (state_dir / "drift").exists()  # nothing ran


@pytest.mark.integration
def test_drift_runs_are_titled_linked_and_distinctly_named(tmp_path, registered, snapshot):
    """Two checks of one drifted night: each report's title names the model version, the
    window and the check time; it links the runbook's drift entry, the Airflow run and the
    MLflow run that stores it; the two MLflow runs have distinct names naming version and day."""
    drifted = simulate_traffic(snapshot.frame, 600, scenario="salary_inflation", seed=3)
    lines = simulated_log_lines(
        drifted, model_name="m", model_version="1", day=DAY, pseudonymise=KEY, request_id_prefix="d"
    )
    partition = tmp_path / "logs" / f"date={DAY.isoformat()}"
    partition.mkdir(parents=True)
    (partition / "1.jsonl").write_text("\n".join(lines) + "\n")
    airflow_run = "http://airflow.test/dags/attrition_drift_monitoring/runs/scheduled__x"
    args = ["--logs", str(tmp_path / "logs"), "--date", DAY.isoformat(), "--log-to-mlflow"]
    args += ["--airflow-run-url", airflow_run]
    summaries = [run_job("drift", args, echo=False) for _ in range(2)]  # default report folders
    names, pages = [], []
    for summary in summaries:
        assert summary["status"] == "drift" and summary["window"] == [DAY.isoformat()] * 2
        checked = summary["checked_at"][:16].replace("T", " ")
        title = f"Drift report: {registered} v1, window {DAY.isoformat()}, checked {checked} UTC"
        assert summary["versions"]["1"]["title"] == title
        html = Path(summary["versions"]["1"]["reports"]["html"])
        assert html.parent.parent.name.startswith("checked-")  # one folder per check
        pages.append(html)
        page = html.read_text()
        assert f"<title>{title}</title>" in page and f"<h1>{title}</h1>" in page
        run = MlflowClient().get_run(summary["mlflow_run_id"])
        mlflow_link = f"#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
        hrefs = dict(re.findall(r'<li>([^:<]+): <a href="([^"]+)">', page))
        assert hrefs["runbook"].endswith("runbook.md#alert-drift-confirmed")
        assert hrefs["Airflow run"] == airflow_run
        assert hrefs["MLflow drift run"].endswith(mlflow_link)
        # The copy logged to the MLflow run carries the same links.
        logged = Path(run.info.artifact_uri.removeprefix("file://"))
        assert mlflow_link in (logged / "report/model_version=1/drift_report.html").read_text()
        names.append(run.info.run_name)
        assert run.info.run_name.startswith(f"drift-v1-{DAY.isoformat()}-checked-")
        assert run.data.tags["model_versions"] == "1"
    assert names[0] != names[1]
    assert pages[0] != pages[1] and pages[0].is_file()  # the second check kept the first report
