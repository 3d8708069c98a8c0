"""How many pages a persistent drift sends: a SIMULATED week of drifted traffic, then quiet nights.

Each night is the real path minus Airflow: SIMULATED requests drawn from the real IBM HR rows
(``salary_inflation`` for the drifted nights, ``none`` for the quiet ones) are written as the
API's local inference-log export, read back and checked by the drift check against the real
data's reference profile, and the summary goes through ``signal_drift``'s function
(``events.record_drift``) with the real incident table and alert log in a throwaway state folder.

    uv run python bench/incident_week.py --drift-nights 7 --quiet-nights 4 --json-out incidents.json

Printed: per night, the drift verdict, the alert sent (if any), its severity and whether
retraining was scheduled; then the totals beside what the pre-incident behaviour (one page and
one retraining per confirmed night) would have sent.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drift-nights", type=int, default=7)
    parser.add_argument("--quiet-nights", type=int, default=4)
    parser.add_argument("--records", type=int, default=1500, help="records per night")
    parser.add_argument("--intensity", type=float, default=1.0)
    parser.add_argument("--start", default="2026-11-01")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)

    state = Path(tempfile.mkdtemp(prefix="attrition-incident-week-"))
    os.environ["ATTRITION_STATE_DIR"] = str(state)
    for name in list(os.environ):
        if name.startswith("ATTRITION_ALERT_") or name.startswith("AIRFLOW_CONN_"):
            del os.environ[name]

    from airflow.sdk.exceptions import AirflowSkipException

    from attrition_mlops import alerts
    from attrition_mlops.data.dataset import load_snapshot
    from attrition_mlops.model.profile import build_reference_profile
    from attrition_mlops.monitoring.window import check_window, read_window
    from attrition_mlops.orchestration import events
    from attrition_mlops.settings import DriftSettings
    from attrition_mlops.simulate.export import write_export_logs
    from attrition_mlops.simulate.generate import simulate_traffic

    snapshot = load_snapshot()
    profile = build_reference_profile(snapshot.frame, source_sha256=snapshot.sha256)
    export, reports = state / "inference-logs", state / "drift"
    start = date.fromisoformat(args.start)
    nights = ["salary_inflation"] * args.drift_nights + ["none"] * args.quiet_nights
    rows = []
    for i, scenario in enumerate(nights):
        day = start + timedelta(days=i)
        traffic = simulate_traffic(
            snapshot.frame, args.records, scenario=scenario, seed=i, intensity=args.intensity
        )
        write_export_logs(traffic, export, day, model_name="employee_attrition", model_version="1")
        rejected: list[str] = []
        frame = read_window(export, day, day, "local", rejected)
        summary = check_window(
            frame, lambda _version: profile, DriftSettings(), reports / day.isoformat()
        )
        summary["window"] = [day.isoformat(), day.isoformat()]  # as jobs/drift.py adds it
        before = len(_sent(alerts))
        event = SimpleNamespace(extra=None)
        try:
            events.record_drift(summary, event, {})
            outcome = "retraining scheduled"
        except AirflowSkipException as skip:
            outcome = f"skipped: {skip}"
        new = _sent(alerts)[before:]
        rows.append(
            {
                "night": day.isoformat(),
                "traffic": f"SIMULATED {scenario}",
                "drift_status": summary["status"],
                "alerts": [f"{a['event']} ({a['severity']})" for a in new],
                "retraining_scheduled": event.extra is not None,
                "outcome": outcome,
            }
        )
        print(json.dumps(rows[-1]), flush=True)

    sent = _sent(alerts)
    confirmed = sum(r["drift_status"] == "drift" for r in rows)
    result = {
        "nights": len(rows),
        "drift_confirmed_nights": confirmed,
        "pages": sum(a["severity"] in ("warning", "critical") for a in sent),
        "digests": sum(a["event"] == "incident_digest" for a in sent),
        "resolved": sum(a["event"] == "incident_resolved" for a in sent),
        "retraining_scheduled": sum(r["retraining_scheduled"] for r in rows),
        "incident_ids": sorted({a["dedup_key"] for a in sent if a["event"] != "dag_failed"}),
        "before_incidents": {"pages": confirmed, "retraining_scheduled": confirmed},
        "state_dir": str(state),
    }
    print(json.dumps(result, indent=2))
    if args.json_out:
        args.json_out.write_text(json.dumps({"nights": rows, "result": result}, indent=2))
    return 0


def _sent(alerts) -> list[dict]:
    path = alerts.get_alert_settings().resolved_log_path
    return [entry for entry in alerts.read_alert_log(path) if "event" in entry]


if __name__ == "__main__":
    sys.exit(main())
