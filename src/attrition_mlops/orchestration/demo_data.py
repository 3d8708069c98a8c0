"""What ``make demo`` (:mod:`attrition_mlops.orchestration.lifecycle`) feeds in and reads back:
the SIMULATED labelled snapshot and outcomes it delivers, the champion's gate verdict, the
performance summary it prints, and the demo's own pseudonym key."""

from __future__ import annotations

import json
import os
import secrets
from datetime import date
from pathlib import Path
from typing import Any

SNAPSHOT_SCENARIO = "senior_exodus"
SNAPSHOT_ROWS = 1000  # of the ~1,176 real employees outside the frozen holdout
#: A strong shift, stated: 70 % of the long-tenured employees who stayed now leave. A 300-row
#: window (30 % of the snapshot) detects it reliably; bench/gate_decisions.py gives the power
#: at smaller shifts.
SNAPSHOT_INTENSITY = 2.0


#: Where the API's pseudonym key comes from (serving settings); the performance job reads it too.
PSEUDONYM_KEY_ENV = "ATTRITION_SERVING_PSEUDONYM_KEY"


def pseudonym_key(state_dir: Path) -> str:
    """The demo's pseudonym key: made once in ``<state>/demo/pseudonym-key`` (owner-only),
    then reused, so the demo's API processes and its performance job share it as production's
    replicas and job share theirs. It lives in the state folder, never in the repository."""
    path = state_dir / "demo" / "pseudonym-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another demo made it first: use theirs
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
    return path.read_text().strip()


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
    online = summary.get("online") or {}
    shown = ("status", "reason", "warnings", "versions", "status_counts", "n_records")
    return {
        "status": summary.get("status"),
        "versions": summary.get("versions", {}),
        "online": {key: online[key] for key in (*shown, "n_matched_employees") if key in online},
    }


def _why_degraded(verdict: dict[str, Any]) -> str:
    """``degraded: calibration ECE 0.142 > 0.10``: each reason with its figure and threshold."""
    from attrition_mlops.settings import get_performance_settings

    limits = get_performance_settings()
    said = {
        "auc": f"AUC upper bound {verdict.get('auc_high', float('nan')):.3f} < {limits.min_auc}",
        "calibration": f"calibration ECE {verdict.get('ece', float('nan')):.3f} > {limits.max_ece}",
    }
    reasons = verdict.get("reasons") or []
    return "degraded: " + "; ".join(said.get(reason, reason) for reason in reasons)


def _version_line(version: str, verdict: dict[str, Any], source: str) -> str:
    estimate = verdict.get("estimate") or {}
    status = verdict.get("status")
    # The verdict first: a good AUC next to "degraded" needs its reason (often calibration).
    said = _why_degraded(verdict) if status == "degraded" else status or "not judged"
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
    return f"      {source} v{version} ({said}): {realized}; {guess}"


def online_lines(online: dict[str, Any]) -> list[str]:
    """The online part in words: why it was not judged, or what was read, matched and judged."""
    if not online:
        return []
    if online.get("reason"):
        return [f"      online: not judged: {online['reason']}"]
    counts = online.get("status_counts") or {}
    lines = [
        f"      online ({online.get('status')}): {online.get('n_records', 0):,} logged "
        f"predictions, {online.get('n_matched_employees', 0):,} of their employees matched to "
        f"outcomes by pseudonym, {counts.get('pending', 0):,} pending"
    ]
    versions = online.get("versions") or {}
    if not any(v.get("realized_auc") is not None for v in versions.values()):
        lines.append(
            "      (the demo's SIMULATED traffic was sent today, mostly for made-up employee "
            "numbers that no outcome names: only the label-free estimate applies)"
        )
    lines += [f"      online warning: {warning}" for warning in online.get("warnings") or []]
    for version, verdict in sorted(versions.items()):
        lines.append(_version_line(version, verdict, "online"))
    return lines


def performance_lines(performance: dict[str, Any]) -> str:
    lines = [
        _version_line(version, verdict, "batch")
        for version, verdict in sorted(performance.get("versions", {}).items())
    ] or ["      (no batch predictions judged)"]
    return "\n".join(lines + online_lines(performance.get("online") or {}))
