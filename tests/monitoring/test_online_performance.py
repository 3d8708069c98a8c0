"""The performance job judges the online API's logged predictions too, apart from batch ones.

The logs are written by the API's own writer (``serving.log_writer.InferenceLogWriter``, which
pseudonymises with the API's key) from real IBM HR rows scored by the tiny real model: SIMULATED
traffic (the bundled rows replayed as requests on a day a year back, so outcomes can mature),
marked so in the log. The outcomes are SIMULATED from the rows' real labels.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from pydantic import SecretStr
from sklearn.metrics import roc_auc_score
from support import REPO, load_script

from attrition_mlops import alerts
from attrition_mlops.data import contract
from attrition_mlops.data.inference_log import Pseudonymiser
from attrition_mlops.data.outcomes import write_outcomes
from attrition_mlops.monitoring import online_performance as online
from attrition_mlops.serving.log_writer import InferenceLogWriter, PendingEntry
from attrition_mlops.simulate.outcomes import simulate_outcomes

PREDICTED = date(2025, 6, 2)
MATURED = date(2026, 6, 10)  # past the 12-month horizon: every outcome has arrived
API_KEY = "the-api-pseudonym-key-0123456789abcdef"
OTHER_KEY = "another-pseudonym-key-0123456789abcdef"
ONLINE_ROWS = 900  # who called the API: a part of the workforce, not all of it
PER_REQUEST = 10


def _job():
    return load_script("jobs/performance.py", "performance_job")


def write_api_logs(export_dir, snapshot, predictor, *, key=API_KEY, day=PREDICTED, version="1"):
    """SIMULATED API traffic: ONLINE_ROWS real rows scored by the real model and written by the
    API's own log writer, spread over ``day``. Returns the logged rows."""
    rows = snapshot.frame.sample(n=ONLINE_ROWS, random_state=7)
    inputs = rows[list(contract.INPUT_COLUMNS)]
    scored = predictor.predict(inputs)
    writer = InferenceLogWriter(
        pseudonymise=Pseudonymiser(key.encode()), export_dir=export_dir, stream=None
    )
    writer.start()
    start = datetime(day.year, day.month, day.day, 8, tzinfo=UTC)
    records = inputs.to_dict(orient="records")
    outputs = scored[["probability", "label", "is_outlier"]].to_dict(orient="records")
    for n, i in enumerate(range(0, len(records), PER_REQUEST)):
        writer.submit(
            PendingEntry(
                timestamp=start + timedelta(seconds=30 * n),
                request_id=f"simulated-replay-{n}",
                model_name="employee_attrition",
                model_version=version,
                inputs=records[i : i + PER_REQUEST],
                outputs=outputs[i : i + PER_REQUEST],
                latency_ms=1.0,
                simulated=True,
            )
        )
    writer.close(timeout=30)
    assert writer.written == -(-ONLINE_ROWS // PER_REQUEST) and writer.failed == 0
    return rows.assign(probability=scored["probability"].to_numpy())


def deliver(snapshot, root, arrived, *, flip=False):
    employees = snapshot.frame[[contract.ID_COLUMN, contract.LABEL]]
    if flip:  # a world where the model is wrong about everyone
        swapped = np.where(employees[contract.LABEL] == "Yes", "No", "Yes")
        employees = employees.assign(**{contract.LABEL: swapped})
    outcomes = simulate_outcomes(employees, PREDICTED, arrived, seed=1)
    write_outcomes(outcomes, root, arrived, simulated=True)


@pytest.fixture
def files(tmp_path, snapshot, predictor, state_dir):
    """Inference logs of the API, outcomes, and an empty batch predictions folder."""
    logs = tmp_path / "inference-logs"
    logged = write_api_logs(logs, snapshot, predictor)
    outcomes = tmp_path / "outcomes"
    return SimpleNamespace(
        logs=logs, outcomes=outcomes, logged=logged, predictions=tmp_path / "predictions"
    )


def run_job(tmp_path, files, *extra: str) -> dict:
    out = tmp_path / "summary.json"
    args = ["--predictions", str(files.predictions), "--outcomes", str(files.outcomes)]
    args += ["--logs", str(files.logs), "--as-of", MATURED.isoformat()]
    args += ["--output", str(tmp_path / "report"), "--output-json", str(out), *extra]
    assert _job().main(args) == 0
    return json.loads(out.read_text())


# -- the pure parts ---------------------------------------------------------------------------


def test_the_log_window_reaches_back_one_horizon_and_one_whole_cohort():
    # 2026-06-10 − 12 months = 2025-06-10: June 2025 has matured only up to the 10th, so May
    # 2025 is the newest cohort whose every prediction has; the window starts there.
    assert online.log_window(date(2026, 6, 10), "12m") == (date(2025, 5, 1), date(2026, 6, 10))
    assert online.log_window(date(2026, 3, 1), "12m") == (date(2025, 2, 1), date(2026, 3, 1))
    assert online.log_window(date(2026, 6, 10), "30d") == (date(2026, 4, 1), date(2026, 6, 10))


def test_the_pseudonymiser_is_the_apis_or_the_reason_in_words():
    made, reason = online.pseudonymiser(SecretStr(API_KEY))
    assert reason is None and made(1) == Pseudonymiser(API_KEY.encode())(1)
    assert online.pseudonymiser(None) == (None, online.NO_KEY)
    assert "ATTRITION_SERVING_PSEUDONYM_KEY is not set" in online.NO_KEY
    assert online.pseudonymiser(SecretStr("short")) == (None, online.SHORT_KEY)
    assert API_KEY not in repr(online.OnlineSource(logs=REPO, key=SecretStr(API_KEY)))


def test_key_check_tells_a_wrong_key_from_nothing_to_match():
    mine, other = Pseudonymiser(API_KEY.encode()), Pseudonymiser(OTHER_KEY.encode())
    outcomes = pd.DataFrame(
        {
            contract.ID_COLUMN: [1, 2, 3],
            "observed_on": pd.to_datetime(["2025-01-05", "2025-07-01", "2025-08-01"]),
        }
    )
    logged = pd.Series([mine(2), mine(9)])
    since = date(2025, 6, 1)
    with_key = {i: mine(i) for i in (1, 2, 3)}
    assert online.key_check(logged, outcomes, with_key, since) == {
        "key_check": "matched",
        "n_logged_employees": 2,
        "n_matched_employees": 1,
        "n_outcome_employees_since_first_log": 2,
    }
    wrong = {i: other(i) for i in (1, 2, 3)}
    assert online.key_check(logged, outcomes, wrong, since)["key_check"] == "no_match"
    # Outcomes only from before the first logged prediction: no evidence against the key.
    quiet = online.key_check(logged, outcomes, wrong, date(2025, 9, 1))
    assert quiet["key_check"] == "nothing_to_match"


# -- the job, end to end on files ---------------------------------------------------------------


def test_with_the_apis_key_the_job_judges_the_online_predictions_apart(
    tmp_path, files, snapshot, predictor, serving_key
):
    from attrition_mlops.data.dataset import bundled_dataset_path
    from attrition_mlops.scoring.batch import score_snapshot

    serving_key(API_KEY)
    score_snapshot(  # the batch scorer scores the whole workforce the same day
        bundled_dataset_path(),
        files.predictions,
        PREDICTED,
        predictor,
        model_name="employee_attrition",
        model_version="1",
        progress=False,
    )
    deliver(snapshot, files.outcomes, MATURED)
    summary = run_job(tmp_path, files)
    part = summary["online"]
    assert part["reason"] is None and part["warnings"] == []
    assert part["key_check"] == "matched" and part["n_matched_employees"] == ONLINE_ROWS
    assert part["n_records"] == ONLINE_ROWS and part["n_simulated_records"] == ONLINE_ROWS
    assert part["window"] == ["2025-05-01", MATURED.isoformat()]
    verdict = part["versions"]["1"]
    assert part["status"] == verdict["status"] == "ok"
    # The realized AUC of the API's population: its employees' real labels against the
    # probabilities the API logged, not the batch cohort's figure.
    y = (files.logged[contract.LABEL] == "Yes").to_numpy(int)
    assert verdict["realized_auc"] == pytest.approx(
        roc_auc_score(y, files.logged["probability"]), abs=1e-9
    )
    assert verdict["n_labelled"] == ONLINE_ROWS and verdict["judged_cohort"] == "2025-06"
    batch = summary["versions"]["1"]  # the batch part as before
    assert summary["status"] == "ok" and batch["n_labelled"] == len(snapshot.frame)
    assert batch["realized_auc"] != verdict["realized_auc"]
    report = (tmp_path / "report" / "performance_report.html").read_text()
    assert "Batch predictions" in report and "Online predictions" in report
    assert "Model version 1 (online)" in report and "SIMULATED traffic" in report
    table = pd.read_csv(tmp_path / "report" / "performance_cohorts_online.csv")
    assert table["n_labelled"].tolist() == [ONLINE_ROWS]


def test_without_the_key_the_online_part_is_not_judged_and_says_why(
    tmp_path, files, snapshot, serving_key
):
    serving_key(None)
    deliver(snapshot, files.outcomes, MATURED)
    summary = run_job(tmp_path, files)
    assert summary["online"]["status"] == "not_judged"
    assert summary["online"]["reason"] == (
        "ATTRITION_SERVING_PSEUDONYM_KEY is not set, so logged pseudonyms cannot be matched to "
        "outcomes"
    )
    assert summary["online"]["versions"] == {}
    report = (tmp_path / "report" / "performance_report.html").read_text()
    assert "Not judged</b>: ATTRITION_SERVING_PSEUDONYM_KEY is not set" in report


def test_a_wrong_key_is_named_as_the_likely_cause_not_a_feed_gap(
    tmp_path, files, snapshot, serving_key
):
    serving_key(OTHER_KEY)  # the API logged with API_KEY
    deliver(snapshot, files.outcomes, MATURED)
    part = run_job(tmp_path, files)["online"]
    assert part["key_check"] == "no_match" and part["n_matched_employees"] == 0
    [warning] = part["warnings"]
    assert "ATTRITION_SERVING_PSEUDONYM_KEY is likely not the key the API logged with" in warning
    # What the numbers alone would say: every prediction missing, nothing labelled.
    assert part["status_counts"] == {"missing": ONLINE_ROWS}
    assert part["status"] == part["versions"]["1"]["status"] == "insufficient_data"


def test_malformed_lines_are_counted_and_listed_and_no_logs_are_said(
    tmp_path, files, snapshot, serving_key
):
    serving_key(API_KEY)
    deliver(snapshot, files.outcomes, MATURED)
    [log_file] = files.logs.glob("date=*/*.jsonl")
    with open(log_file, "a", encoding="utf-8") as handle:
        handle.write('{"not": "a log line"}\nnot json at all\n')
    part = run_job(tmp_path, files)["online"]
    assert part["n_rejected_lines"] == 2 and len(part["rejected"]) == 2
    assert all(line.startswith(f"{log_file}:") for line in part["rejected"])
    assert "2 malformed log line(s) left out" in part["warnings"][0]
    assert part["status"] == "ok" and part["n_records"] == ONLINE_ROWS  # the rest still judged

    files.logs = tmp_path / "nowhere"
    part = run_job(tmp_path, files)["online"]
    assert part["status"] == "not_judged"
    assert part["reason"] == f"no inference logs: {files.logs} does not exist"
    files.logs.mkdir()
    part = run_job(tmp_path, files)["online"]
    assert part["reason"] == f"no logged predictions in {files.logs} from 2025-05-01 to 2026-06-10"


def test_logs_younger_than_the_horizon_say_nothing_can_have_matured(
    tmp_path, snapshot, predictor, state_dir, serving_key
):
    serving_key(API_KEY)
    recent = SimpleNamespace(
        logs=tmp_path / "logs", outcomes=tmp_path / "outcomes", predictions=tmp_path / "p"
    )
    write_api_logs(recent.logs, snapshot, predictor, day=MATURED - timedelta(days=20))
    deliver(snapshot, recent.outcomes, MATURED)
    part = run_job(tmp_path, recent)["online"]
    assert part["status"] == "insufficient_data" and part["key_check"] == "matched"
    assert any("no online prediction can have matured by 2026-06-10" in w for w in part["warnings"])
    assert part["versions"]["1"]["estimate"]["estimated_auc"] > 0.5  # the estimate still runs


def test_the_key_never_leaves_the_job(tmp_path, files, snapshot, serving_key, mlflow_store, capsys):
    import mlflow

    serving_key(API_KEY)
    deliver(snapshot, files.outcomes, MATURED)
    summary = run_job(tmp_path, files, "--log-to-mlflow")
    assert summary["online"]["status"] == "ok"
    run = mlflow.get_run(summary["mlflow_run_id"])
    assert (
        run.data.metrics["online_v1_realized_auc"]
        == summary["online"]["versions"]["1"]["realized_auc"]
    )
    assert run.data.tags["performance.online_status"] == "ok"
    said = capsys.readouterr()
    written = [
        json.dumps(summary),
        said.out,
        said.err,
        json.dumps([run.data.tags, run.data.params, run.data.metrics]),
    ]
    written += [p.read_text() for p in (tmp_path / "report").iterdir()]
    artifacts = mlflow_store.artifact_root
    written += [p.read_text() for p in artifacts.rglob("*") if p.is_file()]
    assert all(API_KEY not in text for text in written)


# -- the DAG step: one version degraded in both populations is two incidents --------------------


def test_batch_and_online_degradation_of_one_version_are_two_incidents(
    tmp_path, files, snapshot, predictor, serving_key, monkeypatch
):
    from airflow.sdk.exceptions import AirflowSkipException

    from attrition_mlops.data.dataset import bundled_dataset_path
    from attrition_mlops.orchestration import performance_events as events
    from attrition_mlops.scoring.batch import score_snapshot

    for name in ("ATTRITION_ALERT_WEBHOOK_URL", "ATTRITION_ALERT_INCIDENT_DB_URL"):
        monkeypatch.delenv(name, raising=False)
    alerts.get_alert_settings.cache_clear()
    serving_key(API_KEY)
    score_snapshot(
        bundled_dataset_path(),
        files.predictions,
        PREDICTED,
        predictor,
        model_name="employee_attrition",
        model_version="1",
        progress=False,
    )
    deliver(snapshot, files.outcomes, MATURED, flip=True)
    summary = run_job(tmp_path, files)
    assert summary["versions"]["1"]["status"] == summary["online"]["versions"]["1"]["status"]
    assert summary["online"]["status"] == "degraded"
    event = SimpleNamespace(extra=None)
    result = events.record_performance(summary, event, {})
    batch_id, online_id = result["incidents"]
    assert batch_id.startswith("performance/v1/") and online_id.startswith("online_performance/v1/")
    assert result["sources"] == ["batch", "online"] == event.extra["sources"]
    log = alerts.read_alert_log(alerts.get_alert_settings().resolved_log_path)
    pages = [entry for entry in log if entry.get("event") == "performance_degraded"]
    assert [page["dedup_key"] for page in pages] == [batch_id, online_id]
    assert [page["details"]["source"] for page in pages] == ["batch", "online"]
    assert "(batch predictions, cohort 2025-06)" in pages[0]["title"]
    assert "(online API predictions, cohort 2025-06)" in pages[1]["title"]
    assert pages[1]["title"].startswith("[SIMULATED outcomes and traffic] ")
    # The next night, both still degraded: digests, no page, no second request; the task log
    # names both populations.
    later = summary | {"as_of": (MATURED + timedelta(days=1)).isoformat()}
    with pytest.raises(AirflowSkipException, match="v1 online: night 2") as skipped:
        events.record_performance(later, SimpleNamespace(extra=None), {})
    assert "performance degraded; online degraded" in str(skipped.value)
    alerts.get_alert_settings.cache_clear()
