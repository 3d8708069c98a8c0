"""What the performance DAG announces: degraded performance as an incident (one page, then at
most a daily digest), a drop of the label-free estimate as info, and a retraining request."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowSkipException

from attrition_mlops.orchestration.events import _notify  # one way a task sends an alert


def record_performance(
    summary: dict[str, Any], retrain_event: Any, links: dict[str, str], ti: Any = None
) -> dict[str, Any]:
    """Track each version's verdict as a ``performance`` incident; page when one opens or
    changes, and update the retraining Asset then; skip otherwise (the reason in the log)."""
    from attrition_mlops.orchestration import incidents

    # A new labelled snapshot since the last request re-requests retraining, as for drift.
    observations = incidents.performance_observations(summary, incidents.latest_labelled_data())
    steps = incidents.track(observations)
    incidents.announce_quiet_steps(steps, lambda **fields: _notify(ti, **fields), links)
    for version, verdict in sorted(summary.get("versions", {}).items()):
        if verdict.get("estimate_dropped"):
            _notify_estimate_drop(summary, version, verdict, links, ti)
    for obs, st in steps:
        if st.notice in ("opened", "changed") and st.incident is not None:
            _notify_degraded(summary, obs.model_version, st, links, ti)
    requested = [(obs, st) for obs, st in steps if st.retrain and st.incident is not None]
    if not requested:
        told = "; ".join(f"v{obs.model_version}: {st.reason}" for obs, st in steps) or "-"
        raise AirflowSkipException(
            f"performance {summary.get('status')}: retraining not requested again ({told})"
            if summary.get("status") == "degraded"
            else f"performance {summary.get('status')}: nothing to announce ({told})"
        )
    versions = [obs.model_version for obs, _ in requested]
    ids = [st.incident.incident_id for _, st in requested]
    retrain_event.extra = {"as_of": summary.get("as_of"), "versions": versions, "incidents": ids}
    return {"versions": versions, "incidents": ids}


def _simulated(summary: dict[str, Any]) -> str:
    n = int(summary.get("n_simulated_outcomes") or 0)
    return "[SIMULATED outcomes] " if n else ""


def _notify_degraded(
    summary: dict[str, Any], version: str, st: Any, links: dict[str, str], ti: Any
) -> None:
    verdict = summary["versions"][version]
    incident = st.incident
    what = " and ".join(incident.features)
    _notify(
        ti,
        event="performance_degraded",
        severity="warning",
        title=(
            f"{_simulated(summary)}Model v{version} degraded on {what} "
            f"(cohort {verdict.get('judged_cohort')})"
            + ("" if st.notice == "opened" else f": incident {incident.incident_id} changed")
        ),
        summary=(
            f"On the {verdict.get('judged_cohort')} cohort ({verdict.get('n_labelled')} matured "
            f"outcomes, {verdict.get('n_positive')} leavers) v{version} has realized AUC "
            f"{_fmt(verdict.get('realized_auc'))} (95 % CI {_fmt(verdict.get('auc_low'))}–"
            f"{_fmt(verdict.get('auc_high'))}) and calibration error ECE "
            f"{_fmt(verdict.get('ece'))}. Incident {incident.incident_id}: attrition_training "
            "was scheduled to retrain; later nights update the incident without paging."
        ),
        details={"incident_id": incident.incident_id, "version": version, **verdict},
        links=links,
        dedup_key=incident.incident_id,
    )


def _notify_estimate_drop(
    summary: dict[str, Any], version: str, verdict: dict[str, Any], links: dict[str, str], ti: Any
) -> None:
    estimate = verdict["estimate"]
    _notify(
        ti,
        event="performance_estimate_dropped",
        title=(
            f"{_simulated(summary)}Estimated AUC of v{version} dropped to "
            f"{_fmt(estimate['estimated_auc'])} (cohort {estimate['cohort']})"
        ),
        summary=(
            f"The label-free estimate for cohort {estimate['cohort']} is "
            f"{_fmt(estimate['estimated_auc'])} ({_fmt(estimate['low'])}–"
            f"{_fmt(estimate['high'])}), below the previous cohort's "
            f"{_fmt(estimate.get('previous_estimated_auc'))} by more than its interval. It "
            "assumes calibrated probabilities: check the drift report; outcomes will confirm it."
        ),
        details={"version": version, "estimate": estimate},
        links={k: v for k, v in links.items() if not k.startswith("retraining")},
        dedup_key=f"performance_estimate/v{version}/{estimate['cohort']}",
    )


def _fmt(value: Any) -> str:
    return "–" if value is None else f"{float(value):.3f}"
