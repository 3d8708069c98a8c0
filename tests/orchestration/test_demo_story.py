"""What ``make demo`` prints, read as a newcomer reads it: the wording of each story line, and
the split between the terminal (the story) and the log file (everything else)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from attrition_mlops.orchestration import demo_story as story
from attrition_mlops.simulate import describe_sent


def test_durations_read_at_a_glance():
    assert [story.duration(s) for s in (0.4, 7.6, 59.4, 60, 125, 3599, 3725)] == [
        "0 s",
        "8 s",
        "59 s",
        "1 min 00 s",
        "2 min 05 s",
        "59 min 59 s",
        "1 h 02 min",
    ]


def test_a_step_says_where_the_demo_is_and_how_long_it_has_run():
    assert story.step_line(3, 14, "SIMULATED normal traffic", 125.2) == (
        "\n[3/14] SIMULATED normal traffic   (2 min 05 s so far)"
    )


def test_each_finished_task_is_one_line_with_its_time():
    assert story.task_line("train_challenger", "success", 31.2) == (
        "      ✓ train_challenger success  31 s"
    )
    assert story.task_line("smoke_test_staging", "failed", 3) == (
        "      ✗ smoke_test_staging failed  3 s"
    )
    assert story.task_line("signal_drift", "skipped", 0.1) == "      – signal_drift skipped"
    assert story.task_line("score[2]", "success", None) == "      ✓ score[2] success"


def test_a_dag_run_is_counted_in_words_naming_what_did_not_succeed():
    tasks = {
        "plan_deployment": "success",
        "roll_out_staging": "success",
        "roll_back_staging": "skipped",
        "roll_back_production": "skipped",
    }
    assert story.dag_line("attrition_deployment", "success", tasks, 18.4) == (
        "    attrition_deployment success in 18 s (2 of 4 tasks succeeded; "
        "skipped: roll_back_production, roll_back_staging)"
    )
    failed = {"smoke_test_staging": "failed", "roll_out_production": "upstream_failed"}
    assert story.dag_line("attrition_deployment", "failed", failed, 61) == (
        "    attrition_deployment failed in 1 min 01 s (0 of 2 tasks succeeded; "
        "failed: smoke_test_staging; upstream_failed: roll_out_production)"
    )
    assert "1 of 1 task succeeded)" in story.dag_line("d", "success", {"t": "success"}, 1)


def test_what_airflow_queued_is_a_sentence_not_a_list():
    assert story.queued_line("attrition_training", ["attrition_drift"]) == (
        "    Airflow queued attrition_training on the `attrition_drift` Asset event; "
        "the demo runs it now"
    )
    nothing = story.queued_line("attrition_training", [])
    assert nothing == "    Airflow queued no attrition_training run"


def test_decisions_are_stated():
    champion = {"version": "1", "gate.reason": "cold start: no champion yet"}
    assert story.promotion_line(True, champion) == (
        "    decision: v1 promoted to champion: cold start: no champion yet"
    )
    assert story.promotion_line(False, champion) == (
        "    decision: nothing promoted; the champion stays"
    )
    assert story.drift_line("skipped", [], None) == (
        "    decision: no drift confirmed, so no alert and no retraining"
    )
    assert story.drift_line("success", ["MonthlyIncome", "HourlyRate"], "drift/v1/x") == (
        "    decision: drift confirmed (MonthlyIncome, HourlyRate): one alert, incident drift/v1/x"
    )


def test_alerts_are_counted_by_event_in_order():
    sent = [
        {"event": "champion_promoted", "severity": "info"},
        {"event": "model_deployed", "severity": "info"},
        {"event": "drift_confirmed", "severity": "warning"},
        {"event": "champion_promoted", "severity": "info"},
    ]
    assert story.alerts_line(sent) == (
        "    4 alerts: champion_promoted ×2 (info), model_deployed (info), "
        "drift_confirmed (warning)"
    )
    assert story.alerts_line([]) == "    no alerts"


def test_traffic_counts_are_records_and_requests_not_a_status_dict():
    ok = {"records_sent": 600, "records_accepted": 600, "requests": 12}
    ok["status_counts"] = {"200": 12}
    assert story.traffic_line(ok, "none") == (
        "    600 SIMULATED records (scenario none) in 12 requests: all 600 accepted"
    )
    mixed = {
        "records_sent": 1800,
        "records_accepted": 1750,
        "requests": 36,
        "status_counts": {"200": 35, "413": 1},
        "simulation": {"scenario": "salary_inflation"},
    }
    assert describe_sent(mixed) == (
        "1,800 SIMULATED records (scenario salary_inflation) in 36 requests: 1,750 accepted; "
        "1 request refused (1 × HTTP 413)"
    )
    assert "{" not in story.traffic_line(mixed, "salary_inflation")


def test_the_summary_says_what_happened_and_where_to_look(tmp_path):
    outcome = {
        "promoted_first": True,
        "quiet_signal": "skipped",
        "drift_signal": "success",
        "drift_incident": "drift/v1/2026-12-07/94fe93",
        "drift_alerts": 1,
        "retrain_training": "skipped",
        "retrain_promoted": False,
        "champion_before": "1",
        "champion_after": "2",
        "adapted_promoted": True,
        "adapted_reason": "challenger gains more than 0.005 AUC in 100.0% of 2000 resamples",
        "performance_signal": "skipped",
        "performance": {"status": "ok"},
    }
    text = story.summary_text(
        outcome,
        snapshot_scenario="senior_exodus",
        performance="      v1: realized AUC 0.859",
        state=tmp_path,
        alerts_log=tmp_path / "alerts" / "alerts.jsonl",
        apis=("http://127.0.0.1:8001", "http://127.0.0.1:8002"),
    )
    lines = text.splitlines()
    assert lines[2:6] == [
        "    first training: v1 became champion and was deployed to staging and production",
        "    quiet night: no drift confirmed, no alarm",
        "    drifted traffic: drift confirmed, 1 alert, incident drift/v1/2026-12-07/94fe93",
        "    the retraining the alarm scheduled: skipped (no new labelled data)",
    ]
    assert "champion v1 → v2 (promoted: yes)" in text
    assert "performance (batch ok, online not_judged; SIMULATED outcomes" in text
    assert f"drift reports:   {tmp_path / 'drift'}" in text
    assert "True" not in text and "False" not in text and "['" not in text
    # Other outcomes are told as they happened, never as the script expects them.
    other = outcome | {"drift_signal": "skipped", "retrain_training": "success"}
    text = story.summary_text(
        other,
        snapshot_scenario="senior_exodus",
        performance="",
        state=tmp_path,
        alerts_log=tmp_path,
        apis=("a", "b"),
    )
    assert "    drifted traffic: no drift confirmed, no alarm" in text
    assert "    the retraining the alarm scheduled: trained; promoted: no" in text


def test_only_the_story_reaches_the_terminal_everything_else_goes_to_the_log(tmp_path, capfd):
    log = tmp_path / "demo" / "demo.log"
    child = "import sys; print('a child job says hi'); print('child warning', file=sys.stderr)"
    with story.terminal_to_log(log) as named:
        # What Airflow's loggers and warnings come down to: writes to file descriptors 1 and 2
        # (pytest's capfd replaces sys.stdout itself, so print() would bypass them here).
        os.write(1, b"an Airflow log line\n")
        os.write(2, b"a warning\n")
        subprocess.run([sys.executable, "-c", child], check=True)
        story.tell("[1/14] the story")
    story.tell("after: back to normal")
    print("plain print after", flush=True)
    seen = capfd.readouterr()
    assert named == log
    assert seen.out == "[1/14] the story\nafter: back to normal\nplain print after\n"
    assert seen.err == ""
    assert Path(log).read_text().splitlines() == [
        "an Airflow log line",
        "a warning",
        "a child job says hi",
        "child warning",
    ]


def test_the_demo_makes_its_pseudonym_key_once_owner_only_in_its_state(tmp_path):
    from attrition_mlops.orchestration import demo_data

    key = demo_data.pseudonym_key(tmp_path)
    path = tmp_path / "demo" / "pseudonym-key"
    assert len(key) == 64 and path.read_text().strip() == key
    assert path.stat().st_mode & 0o777 == 0o600
    assert demo_data.pseudonym_key(tmp_path) == key  # the API processes and the job share it
    assert demo_data.pseudonym_key(tmp_path / "other") != key


def test_the_demo_prints_the_online_line_or_why_there_is_none():
    from attrition_mlops.orchestration import demo_data

    verdict = {"status": "insufficient_data", "estimate": {"estimated_auc": 0.81, "cohort": "x"}}
    judged = {
        "status": "insufficient_data",
        "n_records": 2400,
        "n_matched_employees": 0,
        "status_counts": {"pending": 2400},
        "versions": {"2": verdict},
    }
    text = demo_data.performance_lines({"versions": {}, "online": judged})
    assert "(no batch predictions judged)" in text
    assert "online (insufficient_data): 2,400 logged predictions, 0 of their employees" in text
    assert "made-up employee numbers" in text  # no realized figure: the line says why
    assert (
        "online v2 (insufficient_data): no matured cohort; estimated AUC 0.810 (cohort x)" in text
    )
    unset = {"status": "not_judged", "reason": "ATTRITION_SERVING_PSEUDONYM_KEY is not set, so"}
    assert demo_data.online_lines(unset) == [
        "      online: not judged: ATTRITION_SERVING_PSEUDONYM_KEY is not set, so"
    ]


def test_a_degraded_version_says_why_next_to_its_auc():
    """A good AUC printed beside a 'degraded' summary read as a contradiction: the line names
    the failed rule with its figure and threshold (here calibration under the demo's shift)."""
    from attrition_mlops.orchestration import demo_data

    degraded = {
        "status": "degraded",
        "reasons": ["calibration"],
        "realized_auc": 0.861,
        "auc_low": 0.83,
        "auc_high": 0.89,
        "ece": 0.1423,
        "judged_cohort": "2025-12",
    }
    ok = degraded | {"status": "ok", "reasons": [], "ece": 0.04}
    text = demo_data.performance_lines({"versions": {"1": degraded, "2": ok}})
    assert (
        "batch v1 (degraded: calibration ECE 0.142 > 0.1): realized AUC 0.861 "
        "(95 % CI 0.830–0.890, cohort 2025-12); no estimate"
    ) in text
    assert "batch v2 (ok): realized AUC 0.861" in text
    both = degraded | {"reasons": ["auc", "calibration"], "auc_high": 0.65}
    assert "(degraded: AUC upper bound 0.650 < 0.7; calibration ECE 0.142 > 0.1)" in (
        demo_data.performance_lines({"versions": {"1": both}})
    )
