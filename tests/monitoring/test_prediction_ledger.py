"""The prediction ledger: the slim copy of the online API's predictions that outlives the logs.

Logs are written by the API's own writer (``serving.log_writer.InferenceLogWriter``, with the
API's pseudonym key) from real IBM HR rows scored by the tiny real model: SIMULATED traffic,
marked so in the log. Outcomes are SIMULATED from the rows' real labels
(``test_online_performance``'s helpers).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score
from test_online_performance import (
    API_KEY,
    MATURED,
    ONLINE_ROWS,
    PREDICTED,
    deliver,
    run_job,
    write_api_logs,
)

from attrition_mlops.data import contract
from attrition_mlops.data.inference_log import Pseudonymiser, partition_dir
from attrition_mlops.monitoring import ledger
from attrition_mlops.monitoring.online_performance import log_window
from attrition_mlops.monitoring.outcomes import first_in_cohort
from attrition_mlops.serving.log_writer import InferenceLogWriter, PendingEntry
from attrition_mlops.settings import LEDGER_MARGIN_DAYS, PerformanceSettings

KEY = contract.ID_COLUMN
DAY = date(2025, 6, 2)


def log_traffic(export_dir, rows, predictor, bursts, day=DAY):
    """SIMULATED API traffic on ``day``: each burst ``(hour, version, prefix, n_rows)`` scores the
    first ``n_rows`` of ``rows``, one record per request; bursts are written in the given order,
    whatever their hour."""
    writer = InferenceLogWriter(
        pseudonymise=Pseudonymiser(API_KEY.encode()), export_dir=export_dir, stream=None
    )
    writer.start()
    for hour, version, prefix, n_rows in bursts:
        part = rows.iloc[:n_rows]
        inputs = part[list(contract.INPUT_COLUMNS)]
        outputs = predictor.predict(inputs)[["probability", "label", "is_outlier"]]
        start = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
        for n, (record, output) in enumerate(
            zip(inputs.to_dict("records"), outputs.to_dict("records"), strict=True)
        ):
            writer.submit(
                PendingEntry(
                    timestamp=start + timedelta(seconds=n),
                    request_id=f"{prefix}-{n}",
                    model_name="employee_attrition",
                    model_version=version,
                    inputs=[record],
                    outputs=[output],
                    latency_ms=1.0,
                    simulated=True,
                )
            )
    writer.close(timeout=30)
    assert writer.failed == 0


@pytest.fixture
def day_of_logs(tmp_path, snapshot, predictor):
    """DAY's logs: version 1 scores 300 employees at 14:00 and the same 300 at 08:00 (written
    afternoon first), version 2 scores 100 of them at 10:00; one request is replayed."""
    logs = tmp_path / "inference-logs"
    rows = snapshot.frame.sample(n=300, random_state=3)
    bursts = [(14, "1", "afternoon", 300), (8, "1", "morning", 300), (10, "2", "v2", 100)]
    log_traffic(logs, rows, predictor, bursts)
    [log_file] = partition_dir(logs, DAY).glob("*.jsonl")
    with open(log_file, "a", encoding="utf-8") as handle:  # a replayed request
        handle.write(log_file.read_text().splitlines()[0] + "\n")
    return SimpleNamespace(logs=logs, ledger=tmp_path / "prediction-ledger", rows=rows)


def test_compaction_keeps_the_first_prediction_per_version_and_employee_and_no_feature(
    day_of_logs,
):
    counts = ledger.compact_day(day_of_logs.logs, day_of_logs.ledger, DAY)
    assert counts == {
        "logged_records": 700,
        "simulated_records": 700,
        "rejected_lines": 0,
        "duplicate_lines": 1,
        "rows": 400,
    }
    frame, held = ledger.read_ledger(day_of_logs.ledger, [DAY])
    assert tuple(frame.columns) == ledger.LEDGER_COLUMNS  # no feature of the employee
    assert not set(contract.INPUT_COLUMNS) - {KEY} & set(frame.columns)
    assert held == {k: counts[k] for k in ledger.COUNTS}
    v1, v2 = frame[frame["model_version"] == "1"], frame[frame["model_version"] == "2"]
    assert len(v1) == 300 and v1[KEY].is_unique and len(v2) == 100
    # The earliest of the day, although the afternoon's lines come first in the file.
    assert v1["request_id"].str.startswith("morning-").all()
    assert (v1["timestamp"].dt.hour == 8).all() and frame["simulated"].all()
    pseudonymise = Pseudonymiser(API_KEY.encode())
    expected = {pseudonymise(int(i)) for i in day_of_logs.rows[KEY]}
    assert set(v1[KEY]) == expected  # the pseudonym as logged, never the number


def test_compacting_a_day_again_gives_the_same_single_file(day_of_logs):
    ledger.compact_day(day_of_logs.logs, day_of_logs.ledger, DAY)
    first = pq.read_table(ledger.ledger_file(day_of_logs.ledger, DAY))
    ledger.compact_day(day_of_logs.logs, day_of_logs.ledger, DAY)
    again = pq.read_table(ledger.ledger_file(day_of_logs.ledger, DAY))
    assert again.equals(first) and again.schema.metadata == first.schema.metadata
    assert [p.name for p in partition_dir(day_of_logs.ledger, DAY).iterdir()] == [ledger.FILE_NAME]


@pytest.fixture
def files(tmp_path, snapshot, predictor, state_dir):
    """The API's logs of a year back (PREDICTED) and the outcomes matured since (MATURED)."""
    logs, outcomes = tmp_path / "inference-logs", tmp_path / "outcomes"
    logged = write_api_logs(logs, snapshot, predictor)
    deliver(snapshot, outcomes, MATURED)
    return SimpleNamespace(
        logs=logs, outcomes=outcomes, logged=logged, predictions=tmp_path / "predictions"
    )


def test_a_crash_mid_write_leaves_no_partition_and_keeps_the_log(day_of_logs, monkeypatch):
    import attrition_mlops.data.files as files

    def crash(src, dst):
        raise OSError("disk full (simulated crash before the rename)")

    monkeypatch.setattr(files.os, "replace", crash)
    today = DAY + timedelta(days=40)  # the log is past its 30 days
    done = ledger.retain_logs(
        day_of_logs.logs, day_of_logs.ledger, today=today, log_days_kept=30, ledger_days_kept=458
    )
    assert list(done["failed"]) == [DAY.isoformat()] and "disk full" in done["failed"]["2025-06-02"]
    assert done["kept_uncompacted"] == [DAY.isoformat()] and done["deleted_logs"] == []
    assert partition_dir(day_of_logs.logs, DAY).is_dir()  # the log is kept
    assert not ledger.ledger_file(day_of_logs.ledger, DAY).exists()
    assert ledger.compacted_days(day_of_logs.ledger, date.min, date.max) == set()
    # The failed write took its temporary file with it (a hard kill would leave it for a later
    # night, older than SETTLE, to remove).
    assert list(partition_dir(day_of_logs.ledger, DAY).iterdir()) == []

    monkeypatch.undo()  # the next night the disk has room again
    done = ledger.retain_logs(
        day_of_logs.logs, day_of_logs.ledger, today=today, log_days_kept=30, ledger_days_kept=458
    )
    assert done["compacted"] == [DAY.isoformat()] and done["deleted_logs"] == ["date=2025-06-02"]
    assert [p.name for p in partition_dir(day_of_logs.ledger, DAY).iterdir()] == [ledger.FILE_NAME]


def test_logs_go_only_once_in_the_ledger_and_the_ledger_after_its_own_retention(
    tmp_path, snapshot, predictor
):
    today = date(2026, 6, 10)
    logs, book = tmp_path / "logs", tmp_path / "ledger"
    rows = snapshot.frame.sample(n=20, random_state=5)
    for day in (today - timedelta(days=40), today - timedelta(days=1), today):
        log_traffic(logs, rows, predictor, [(9, "1", f"req-{day}", len(rows))], day=day)
    for day in (today - timedelta(days=500), today - timedelta(days=400)):
        partition_dir(book, day).mkdir(parents=True)  # old ledger days (contents do not matter)
        ledger.ledger_file(book, day).write_bytes(b"")
    done = ledger.retain_logs(logs, book, today=today, log_days_kept=30, ledger_days_kept=458)
    assert done["compacted"] == ["2026-05-01", "2026-06-09"]  # complete days only, not today
    assert done["deleted_logs"] == ["date=2026-05-01"] and done["failed"] == {}
    assert sorted(p.name for p in logs.iterdir()) == ["date=2026-06-09", "date=2026-06-10"]
    assert done["deleted_ledger"] == ["date=2025-01-26"]
    held = ledger.compacted_days(book, date.min, date.max)
    assert held == {date(2025, 5, 6), date(2026, 5, 1), date(2026, 6, 9)}


@pytest.mark.parametrize("horizon", ["12m", "1m", "18m", "90d"])
def test_the_default_ledger_retention_covers_every_window_the_job_reads(horizon):
    settings = PerformanceSettings(horizon=horizon)
    needed = settings.ledger_days_needed
    days = pd.date_range("2024-01-01", "2028-12-31").date
    longest = max((as_of - log_window(as_of, horizon)[0]).days for as_of in days)
    assert longest <= needed < longest + 40
    assert settings.resolved_ledger_retention_days == needed + LEDGER_MARGIN_DAYS
    with pytest.raises(ValueError, match="shorter than the"):
        PerformanceSettings(horizon=horizon, ledger_retention_days=needed - 1)


# -- the user-facing guarantee: the performance job, on files ---------------------------------


def test_online_predictions_are_judged_after_their_logs_were_purged(
    tmp_path, files, snapshot, predictor, serving_key
):
    serving_key(API_KEY)
    logged = files.logged  # the API's logs on PREDICTED, a year back
    book = tmp_path / "prediction-ledger"
    from_logs = run_job(tmp_path, files)["online"]  # before: from the full logs

    # The nightly task a month after the traffic: compacted, and the log deleted; a year later
    # the ledger still holds it.
    kept = PerformanceSettings().resolved_ledger_retention_days
    for today in (PREDICTED + timedelta(days=31), MATURED):
        done = ledger.retain_logs(
            files.logs, book, today=today, log_days_kept=30, ledger_days_kept=kept
        )
        assert done["failed"] == {} and done["deleted_ledger"] == []
        if today < MATURED:
            assert done["deleted_logs"] == [f"date={PREDICTED}"]
    assert list(files.logs.glob("date=*")) == []
    # Today's traffic, still being written, is not compacted: read from the full logs.
    write_api_logs(files.logs, snapshot, predictor, day=MATURED)
    part = run_job(tmp_path, files, "--ledger", str(book))["online"]
    assert part["n_ledger_days"] == 1 and part["n_ledger_records"] == ONLINE_ROWS
    assert part["n_log_records"] == ONLINE_ROWS and part["n_records"] == 2 * ONLINE_ROWS
    assert part["n_simulated_records"] == 2 * ONLINE_ROWS
    assert part["status"] == "ok" and part["key_check"] == "matched"
    page = (tmp_path / "report" / "performance_report.html").read_text()
    assert (
        f"Of these, {ONLINE_ROWS:,} predictions on 1 day(s) were read from the prediction" in (page)
        and f"and {ONLINE_ROWS:,} from the full logs" in page
    )
    verdict = part["versions"]["1"]
    y = (logged[contract.LABEL] == "Yes").to_numpy(int)
    assert verdict["realized_auc"] == pytest.approx(roc_auc_score(y, logged["probability"]), 1e-9)
    assert verdict["judged_cohort"] == "2025-06" and verdict["n_labelled"] == ONLINE_ROWS
    assert verdict["realized_auc"] == from_logs["versions"]["1"]["realized_auc"]
    # Without the ledger the job has only the recent logs: nothing has matured.
    empty = tmp_path / "no-ledger"
    gone = run_job(tmp_path, files, "--ledger", str(empty))["online"]
    assert gone["status"] == "insufficient_data" and gone["n_ledger_days"] == 0


def test_a_day_in_both_the_ledger_and_the_logs_is_read_once(tmp_path, files, serving_key):
    serving_key(API_KEY)
    book = tmp_path / "prediction-ledger"
    ledger.compact_day(files.logs, book, PREDICTED)  # compacted, the log not purged yet
    part = run_job(tmp_path, files, "--ledger", str(book))["online"]
    assert part["n_records"] == ONLINE_ROWS and part["n_ledger_days"] == 1
    assert part["n_log_records"] == 0 and part["versions"]["1"]["n_labelled"] == ONLINE_ROWS


def test_a_purge_between_listing_the_ledger_and_reading_the_logs_loses_no_day(
    tmp_path, files, serving_key, monkeypatch
):
    """The performance job lists the ledger's days, then reads the logs of the others; if the
    nightly purge compacts a day and deletes its log in between, that day was in neither."""
    from attrition_mlops.monitoring import online_performance

    serving_key(API_KEY)
    book = tmp_path / "prediction-ledger"
    real_read = online_performance.read_window
    purged = []

    def purge_first(*args, **kwargs):
        if not purged:  # the purge task runs right now, once
            purged.append(
                ledger.retain_logs(
                    files.logs, book, today=MATURED, log_days_kept=30, ledger_days_kept=458
                )
            )
        return real_read(*args, **kwargs)

    monkeypatch.setattr(online_performance, "read_window", purge_first)
    part = run_job(tmp_path, files, "--ledger", str(book))["online"]
    assert purged[0]["deleted_logs"] == [f"date={PREDICTED}"]  # the race did happen
    assert part["n_records"] == ONLINE_ROWS and part["n_ledger_days"] == 1
    assert part["status"] == "ok" and part["versions"]["1"]["n_labelled"] == ONLINE_ROWS


def test_a_day_just_ended_is_left_until_its_last_lines_have_settled(tmp_path, snapshot, predictor):
    """A run just after midnight would freeze yesterday while the API still flushes its last
    lines (a day is compacted once); an hour later it is complete."""
    today = date(2026, 6, 10)
    logs, book = tmp_path / "logs", tmp_path / "ledger"
    rows = snapshot.frame.sample(n=10, random_state=6)
    log_traffic(logs, rows, predictor, [(9, "1", "req-y", len(rows))], day=today - timedelta(1))
    early = datetime(2026, 6, 10, 0, 10, tzinfo=UTC)
    kwargs = {"today": today, "log_days_kept": 30, "ledger_days_kept": 458}
    assert ledger.retain_logs(logs, book, now=early, **kwargs)["compacted"] == []
    later = datetime(2026, 6, 10, 1, 30, tzinfo=UTC)
    assert ledger.retain_logs(logs, book, now=later, **kwargs)["compacted"] == ["2026-06-09"]


def test_the_job_reads_the_ledger_reduced_to_each_months_first_prediction(
    tmp_path, snapshot, predictor
):
    """Read month by month and reduced as it goes to what the join keeps (the first of each
    version, month and employee), so memory grows with months, not days; nothing else is lost."""
    logs, book = tmp_path / "logs", tmp_path / "ledger"
    rows = snapshot.frame.sample(n=30, random_state=8)
    days = [date(2025, 6, 2), date(2025, 6, 20), date(2025, 7, 1)]
    for n, day in enumerate(days):
        log_traffic(logs, rows, predictor, [(9 + n, "1", f"req-{day}", len(rows))], day=day)
        ledger.compact_day(logs, book, day)
    whole, _ = ledger.read_ledger(book, days)
    firsts, counts = ledger.read_monthly_firsts(book, days)
    assert len(whole) == 90 and counts["rows"] == 90 and counts["logged_records"] == 90
    # June's second day adds no row (the same 30 employees); July is another cohort.
    assert len(firsts) == 60 and firsts.groupby("model_version")[KEY].nunique()["1"] == 30
    june = firsts[firsts["timestamp"].dt.month == 6]
    assert (june["timestamp"].dt.date == days[0]).all()  # the month's first, not the 20th's
    # What the join keeps is the same from either read.
    kept = first_in_cohort(whole.rename(columns={"timestamp": "predicted_on"}))
    again = first_in_cohort(firsts.rename(columns={"timestamp": "predicted_on"}))
    columns = ["model_version", "cohort", KEY, "probability"]
    pd.testing.assert_frame_equal(
        kept[columns].sort_values(columns).reset_index(drop=True),
        again[columns].sort_values(columns).reset_index(drop=True),
    )


def test_a_second_run_beside_the_first_neither_breaks_its_write_nor_fails_on_its_deletions(
    day_of_logs,
):
    """A manual drift-DAG run beside the nightly one: the second compaction took the first's
    temporary file (younger than SETTLE) for a crash's leftover and deleted it, so the first
    run's rename failed; and a partition the other run had just deleted failed the purge."""
    import os

    from attrition_mlops.monitoring.window import purge_expired_partitions

    folder = partition_dir(day_of_logs.ledger, DAY)
    folder.mkdir(parents=True)
    in_progress = folder / f".{ledger.FILE_NAME}.other-run.tmp"
    in_progress.write_bytes(b"being written")
    ledger.compact_day(day_of_logs.logs, day_of_logs.ledger, DAY)
    assert in_progress.exists()  # another run's write in progress: left alone
    two_hours_ago = (datetime.now(UTC) - timedelta(hours=2)).timestamp()
    os.utime(in_progress, (two_hours_ago, two_hours_ago))
    ledger.compact_day(day_of_logs.logs, day_of_logs.ledger, DAY)
    assert not in_progress.exists()  # a crash's leftover: removed
    assert [p.name for p in folder.iterdir()] == [ledger.FILE_NAME]

    import shutil

    def other_run_deletes_it_first(day):
        shutil.rmtree(partition_dir(day_of_logs.logs, day))
        return True

    deleted = purge_expired_partitions(
        day_of_logs.logs,
        keep_days=30,
        today=DAY + timedelta(days=40),
        may_delete=other_run_deletes_it_first,
    )
    assert deleted == [] and not partition_dir(day_of_logs.logs, DAY).exists()
