"""What the performance DAG announces: degraded performance as an incident (one page, then at
most a daily digest), a drop of the label-free estimate as info, and a retraining request.

Batch and online predictions are judged apart (docs/performance.md), so their alerts are too:
the source is in each alert's title and details, and in its incident (signal ``performance``
for batch, ``online_performance`` for the API's logged predictions), so a batch and an online
incident of one model version never fold into one.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowSkipException

from attrition_mlops.orchestration.events import _notify  # one way a task sends an alert

#: The words for each source in alert titles and summaries.
SOURCES = {"batch": "batch predictions", "online": "online API predictions"}


def record_performance(
    summary: dict[str, Any], retrain_event: Any, links: dict[str, str], ti: Any = None
) -> dict[str, Any]:
    """Track each version's verdict, per source, as an incident; page when one opens or
    changes, and update the retraining Asset then; skip otherwise (the reason in the log)."""
    from attrition_mlops.orchestration import incidents

    verdicts = incidents.performance_verdicts(summary)
    source_of = {signal: source for source, signal in incidents.PERFORMANCE_SIGNALS.items()}
    # A new labelled snapshot since the last request re-requests retraining, as for drift.
    observations = incidents.performance_observations(summary, incidents.latest_labelled_data())
    steps = incidents.track(observations)
    incidents.announce_quiet_steps(steps, lambda **fields: _notify(ti, **fields), links)
    for source, versions in verdicts.items():
        for version, verdict in sorted(versions.items()):
            if verdict.get("estimate_dropped"):
                _notify_estimate_drop(summary, source, version, verdict, links, ti)
    for obs, st in steps:
        if st.notice in ("opened", "changed") and st.incident is not None:
            source = source_of[obs.signal]
            verdict = verdicts[source][obs.model_version]
            _notify_degraded(summary, source, obs.model_version, verdict, st, links, ti)
    requested = [(obs, st) for obs, st in steps if st.retrain and st.incident is not None]
    if not requested:
        told = "; ".join(f"{_label(obs)}: {st.reason}" for obs, st in steps) or "-"
        status = _status_line(summary)
        degraded = "degraded" in (summary.get("status"), _online(summary).get("status"))
        raise AirflowSkipException(
            f"{status}: retraining not requested again ({told})"
            if degraded
            else f"{status}: nothing to announce ({told})"
        )
    versions = [obs.model_version for obs, _ in requested]
    ids = [st.incident.incident_id for _, st in requested]
    sources = [source_of[obs.signal] for obs, _ in requested]
    retrain_event.extra = {
        "as_of": summary.get("as_of"),
        "versions": versions,
        "sources": sources,
        "incidents": ids,
    }
    return {"versions": versions, "sources": sources, "incidents": ids}


def _online(summary: dict[str, Any]) -> dict[str, Any]:
    return summary.get("online") or {}


def _label(obs: Any) -> str:
    return f"v{obs.model_version} {'online' if obs.signal == 'online_performance' else 'batch'}"


def _status_line(summary: dict[str, Any]) -> str:
    """``performance <batch status>; online <status or why not judged>``: the task log's line."""
    online = _online(summary)
    said = online.get("status", "not_judged")
    if online.get("reason"):
        said += f" ({online['reason']})"
    for warning in online.get("warnings") or []:
        said += f"; warning: {warning}"
    return f"performance {summary.get('status')}; online {said}"


def _simulated(summary: dict[str, Any], source: str) -> str:
    made = ["outcomes"] if int(summary.get("n_simulated_outcomes") or 0) else []
    if source == "online" and int(_online(summary).get("n_simulated_records") or 0):
        made.append("traffic")
    return f"[SIMULATED {' and '.join(made)}] " if made else ""


def _notify_degraded(
    summary: dict[str, Any],
    source: str,
    version: str,
    verdict: dict[str, Any],
    st: Any,
    links: dict[str, str],
    ti: Any,
) -> None:
    incident = st.incident
    what = " and ".join(incident.features)
    _notify(
        ti,
        event="performance_degraded",
        severity="warning",
        title=(
            f"{_simulated(summary, source)}Model v{version} degraded on {what} "
            f"({SOURCES[source]}, cohort {verdict.get('judged_cohort')})"
            + ("" if st.notice == "opened" else f": incident {incident.incident_id} changed")
        ),
        summary=(
            f"On the {verdict.get('judged_cohort')} cohort of its {SOURCES[source]} "
            f"({verdict.get('n_labelled')} matured outcomes, {verdict.get('n_positive')} "
            f"leavers) v{version} has realized AUC {_fmt(verdict.get('realized_auc'))} (95 % CI "
            f"{_fmt(verdict.get('auc_low'))}–{_fmt(verdict.get('auc_high'))}) and calibration "
            f"error ECE {_fmt(verdict.get('ece'))}. Incident {incident.incident_id}: "
            "attrition_training was scheduled to retrain; later nights update the incident "
            "without paging."
        ),
        details={"incident_id": incident.incident_id, "version": version, "source": source}
        | verdict,
        links=links,
        dedup_key=incident.incident_id,
    )


def _notify_estimate_drop(
    summary: dict[str, Any],
    source: str,
    version: str,
    verdict: dict[str, Any],
    links: dict[str, str],
    ti: Any,
) -> None:
    estimate = verdict["estimate"]
    # The batch key is the one receivers already fold on; the online one names its source.
    scope = f"v{version}" if source == "batch" else f"{source}/v{version}"
    _notify(
        ti,
        event="performance_estimate_dropped",
        title=(
            f"{_simulated(summary, source)}Estimated AUC of v{version} dropped to "
            f"{_fmt(estimate['estimated_auc'])} ({SOURCES[source]}, cohort {estimate['cohort']})"
        ),
        summary=(
            f"The label-free estimate for cohort {estimate['cohort']} of the "
            f"{SOURCES[source]} is {_fmt(estimate['estimated_auc'])} ({_fmt(estimate['low'])}–"
            f"{_fmt(estimate['high'])}), below the previous cohort's "
            f"{_fmt(estimate.get('previous_estimated_auc'))} by more than its interval. It "
            "assumes calibrated probabilities: check the drift report; outcomes will confirm it."
        ),
        details={"version": version, "source": source, "estimate": estimate},
        links={k: v for k, v in links.items() if not k.startswith("retraining")},
        dedup_key=f"performance_estimate/{scope}/{estimate['cohort']}",
    )


def _fmt(value: Any) -> str:
    return "–" if value is None else f"{float(value):.3f}"
