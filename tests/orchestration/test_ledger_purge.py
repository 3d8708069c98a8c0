"""The drift DAG's ``purge_expired_logs`` task: it compacts the inference logs into the prediction
ledger, then purges; a day it cannot compact keeps its log and fails the task.

The task's own body is called (from the parsed DAG file), with the settings from the
environment as in a worker. The logs are SIMULATED API traffic: real IBM HR rows scored by the
tiny real model, written by the API's own log writer.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from support import REPO

from attrition_mlops.data import contract
from attrition_mlops.data.inference_log import Pseudonymiser, partition_dir
from attrition_mlops.monitoring import ledger
from attrition_mlops.serving.log_writer import InferenceLogWriter, PendingEntry

TODAY = date(2026, 6, 10)
OLD, RECENT = TODAY - timedelta(days=45), TODAY - timedelta(days=1)


@pytest.fixture(scope="module")
def purge_task(airflow_env):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "attrition_drift_monitoring.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags["attrition_drift_monitoring"].get_task("purge_expired_logs").python_callable


@pytest.fixture
def logs(state_dir, snapshot, predictor):
    """SIMULATED traffic of 50 real rows on OLD (past the 30 days) and on RECENT."""
    export = state_dir / "inference-logs"
    rows = snapshot.frame.head(50)
    inputs = rows[list(contract.INPUT_COLUMNS)]
    outputs = predictor.predict(inputs)[["probability", "label", "is_outlier"]]
    writer = InferenceLogWriter(
        pseudonymise=Pseudonymiser(b"k" * 32), export_dir=export, stream=None
    )
    writer.start()
    for day in (OLD, RECENT):
        writer.submit(
            PendingEntry(
                timestamp=datetime(day.year, day.month, day.day, 9, tzinfo=UTC),
                request_id=f"simulated-{day}",
                model_name="employee_attrition",
                model_version="1",
                inputs=inputs.to_dict("records"),
                outputs=outputs.to_dict("records"),
                latency_ms=1.0,
                simulated=True,
            )
        )
    writer.close(timeout=30)
    return export


def test_the_task_compacts_then_purges(purge_task, logs, state_dir, capsys):
    done = purge_task(logical_date=datetime(2026, 6, 10, 1, 30, tzinfo=UTC))
    assert done["compacted"] == [OLD.isoformat(), RECENT.isoformat()]
    assert done["deleted_logs"] == [f"date={OLD}"] and done["failed"] == {}
    assert [p.name for p in logs.iterdir()] == [f"date={RECENT}"]
    book = state_dir / "prediction-ledger"  # the default place
    frame, held = ledger.read_ledger(book, [OLD, RECENT])
    assert len(frame) == 100 and held["logged_records"] == 100
    assert "compacted 2 day(s) into the prediction ledger" in capsys.readouterr().out


def test_a_day_that_cannot_be_compacted_keeps_its_log_and_fails_the_task(
    purge_task, logs, state_dir, monkeypatch
):
    real = ledger.compact_day

    def failing(export_dir, ledger_dir, day):
        if day == OLD:
            raise OSError("disk full (simulated)")
        return real(export_dir, ledger_dir, day)

    monkeypatch.setattr(ledger, "compact_day", failing)
    with pytest.raises(RuntimeError, match="1 day\\(s\\) could not be compacted") as failed:
        purge_task(logical_date=datetime(2026, 6, 10, 1, 30, tzinfo=UTC))
    assert "disk full (simulated)" in str(failed.value)
    assert f"inference logs kept because the ledger does not hold them: ['{OLD}']" in str(
        failed.value
    )
    assert sorted(p.name for p in logs.iterdir()) == [f"date={OLD}", f"date={RECENT}"]
    assert ledger.compacted_days(state_dir / "prediction-ledger", date.min, date.max) == {RECENT}
    assert not partition_dir(state_dir / "prediction-ledger", OLD).exists()
