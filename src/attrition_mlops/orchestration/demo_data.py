"""What ``make demo`` (:mod:`attrition_mlops.orchestration.lifecycle`) feeds in and reads back:
the SIMULATED labelled snapshot and outcomes it delivers, the champion's gate verdict, and the
performance summary it prints."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

SNAPSHOT_SCENARIO = "senior_exodus"
SNAPSHOT_ROWS = 1000  # of the ~1,176 real employees outside the frozen holdout
#: A strong shift, stated: 70 % of the long-tenured employees who stayed now leave. A 300-row
#: window (30 % of the snapshot) detects it reliably; bench/gate_decisions.py gives the power
#: at smaller shifts.
SNAPSHOT_INTENSITY = 2.0


def champion() -> dict[str, Any]:
    from attrition_mlops import registry
    from attrition_mlops.settings import get_settings

    name = get_settings().model_name
    version = registry.get_alias_version(name, registry.CHAMPION)
    if version is None:
        return {}
    return {"version": str(version), **registry.get_version(name, version).tags}


def simulated_snapshot() -> tuple[Path, int]:
    """The SIMULATED labelled snapshot's CSV under ``<state>/incoming``, and its row count."""
    from attrition_mlops.data import contract
    from attrition_mlops.data.dataset import load_snapshot
    from attrition_mlops.data.split import load_holdout
    from attrition_mlops.settings import get_settings
    from attrition_mlops.simulate import simulate_labelled_snapshot

    # Real employees the frozen holdout does not hold, each drawn once: no copy of a holdout
    # row trains the challenger, and the evidence window held out of this snapshot shares no
    # real employee with the rows the challenger trains on.
    base = load_snapshot().frame
    holdout = load_holdout(get_settings().holdout_dir)
    if holdout is not None:
        base = base[~base[contract.ID_COLUMN].isin(holdout[0][contract.ID_COLUMN])]
    frame = simulate_labelled_snapshot(
        base,
        min(SNAPSHOT_ROWS, len(base)),
        scenario=SNAPSHOT_SCENARIO,
        seed=3,
        replace=False,
        intensity=SNAPSHOT_INTENSITY,
    )
    path = get_settings().state_dir / "incoming" / f"snapshot-{SNAPSHOT_SCENARIO}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path, len(frame)


def simulated_outcomes(cohort_day: date, today: date) -> tuple[Path, int]:
    """SIMULATED outcomes of the cohort scored on ``cohort_day``: the CSV and its row count."""
    from attrition_mlops.data import contract
    from attrition_mlops.data.dataset import load_snapshot
    from attrition_mlops.settings import get_settings
    from attrition_mlops.simulate.outcomes import simulate_outcomes

    employees = load_snapshot().frame[[contract.ID_COLUMN, contract.LABEL]]
    frame = simulate_outcomes(employees, cohort_day, today, seed=4)
    path = get_settings().state_dir / "incoming" / f"outcomes-{today.isoformat()}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path, len(frame)


def performance(today: date) -> dict[str, Any]:
    from attrition_mlops.settings import get_settings

    path = get_settings().state_dir / "performance" / today.isoformat() / "performance_summary.json"
    if not path.exists():
        return {}
    summary = json.loads(path.read_text())
    return {"status": summary.get("status"), "versions": summary.get("versions", {})}


def performance_lines(performance: dict[str, Any]) -> str:
    lines = []
    for version, verdict in sorted(performance.get("versions", {}).items()):
        estimate = verdict.get("estimate") or {}
        realized = (
            f"realized AUC {verdict['realized_auc']:.3f} (95 % CI {verdict['auc_low']:.3f}–"
            f"{verdict['auc_high']:.3f}, cohort {verdict['judged_cohort']})"
            if verdict.get("realized_auc") is not None
            else "no matured cohort"
        )
        guess = (
            f"estimated AUC {estimate['estimated_auc']:.3f} (cohort {estimate['cohort']})"
            if estimate
            else "no estimate"
        )
        lines.append(f"      v{version}: {realized}; {guess}")
    return "\n".join(lines) or "      (no predictions judged)"
