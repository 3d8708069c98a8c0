"""attrition_snapshot_intake in real Airflow (dag.test: the real task runner, metadata DB,
XComs, Asset events): a new labelled snapshot is stored and updates the labelled_snapshot
Asset, which queues attrition_training; the same delivery again is a skipped no-op."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest
from support import REPO

from attrition_mlops.data.snapshots import list_snapshots

pytestmark = pytest.mark.integration

QUEUED = """
SELECT q.target_dag_id FROM asset_dag_run_queue q JOIN asset a ON a.id = q.asset_id
WHERE a.name = 'attrition_labelled_snapshot'
"""
EVENTS = """
SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id
WHERE a.name = 'attrition_labelled_snapshot'
"""


def _run(env: dict[str, str], state, conf: dict) -> dict:
    out = state / "result.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "attrition_mlops.orchestration.local_airflow",
            "run",
            "attrition_snapshot_intake",
            "--conf",
            json.dumps(conf),
            "--result-json",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text())


def _query(state, sql: str) -> list[tuple]:
    with sqlite3.connect(state / "airflow" / "airflow.db") as db:
        return db.execute(sql).fetchall()


def test_a_new_snapshot_updates_the_asset_and_a_re_delivery_is_skipped(tmp_path, snapshot):
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ATTRITION_"))}
    env |= {"ATTRITION_STATE_DIR": str(state), "ATTRITION_JOBS_DIR": str(REPO / "jobs")}
    delivery = tmp_path / "labels-2026-11.csv"
    snapshot.frame.iloc[:500].to_csv(delivery, index=False)
    conf = {"file": str(delivery), "as_of": "2026-11-30", "source": "HR export 2026-11"}

    first = _run(env, state, conf)
    assert first["state"] == "success", first
    assert first["tasks"] == {
        "plan_snapshot": "success",
        "add_snapshot": "success",
        "announce_snapshot": "success",
    }
    [stored] = [m for m in list_snapshots(state / "snapshots") if m.as_of == "2026-11-30"]
    assert (stored.rows, stored.source) == (500, "HR export 2026-11")
    [(extra,)] = _query(state, EVENTS)
    assert json.loads(extra) == {
        "as_of": "2026-11-30",
        "sha256": stored.sha256,
        "rows": 500,
        "positives": stored.positives,
        "source": "HR export 2026-11",
    }
    assert _query(state, QUEUED) == [("attrition_training",)]  # retraining is scheduled

    again = _run(env, state, conf)
    assert again["state"] == "success", again
    assert again["tasks"]["add_snapshot"] == "skipped"  # identical rows: nothing written
    assert again["tasks"]["announce_snapshot"] == "skipped"
    assert len(_query(state, EVENTS)) == 1  # no second Asset event
