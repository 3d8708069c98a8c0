"""A night's monitoring results as incident observations, and the alerts their steps send.

The lifecycle itself is :mod:`attrition_mlops.alerts.incidents` (pure) and its table is
:mod:`attrition_mlops.alerts.incident_store`; this module only translates: a drift summary
(``jobs/drift.py``) into one observation per model version, and each step's notice into an alert
whose ``dedup_key`` is the incident id.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from attrition_mlops.alerts.incidents import Observation, Signal, Status, Step

_DRIFT_STATUS: dict[str, Status] = {
    "drift": "confirmed",
    "no_drift": "clear",
    "insufficient_data": "unknown",
}


def window_day(summary: dict[str, Any]) -> date:
    """The night an observation counts for: the last day of the checked window.

    No fallback to today: a summary that cannot be placed in time would count every re-run as
    a new night (or every night as the same one)."""
    window = summary.get("window") or []
    if not window:
        raise ValueError(
            "the drift summary names no window (jobs/drift.py adds it): cannot tell which night "
            "it is"
        )
    return date.fromisoformat(str(window[-1]))


def latest_labelled_data() -> str | None:
    """The newest stored labelled snapshot's sha256: what "new labelled data arrived" compares.

    None when no snapshot is stored yet, or the store cannot be read (then the incident simply
    does not re-request retraining on data; the drift signal itself is unaffected)."""
    from attrition_mlops.data.snapshots import list_snapshots
    from attrition_mlops.settings import get_settings

    try:
        manifests = list_snapshots(get_settings().snapshot_dir)
    except (OSError, ValueError):
        return None
    return manifests[-1].sha256 if manifests else None


def drift_observations(
    summary: dict[str, Any], labelled_data: str | None = None
) -> list[Observation]:
    """One observation per model version the drift job checked (unknown statuses: none)."""
    versions = summary.get("versions", {})
    if not versions:
        return []
    day = window_day(summary)
    found = []
    for version, result in sorted(versions.items()):
        features = [d["feature"] for d in result.get("drifted", [])]
        status = _DRIFT_STATUS.get(str(result.get("status")))
        if status is None:  # an older summary without per-version status
            status = "confirmed" if features else "unknown"
        found.append(
            Observation(
                model_version=str(version),
                signal="drift",
                status=status,
                day=day,
                features=tuple(features),
                labelled_data=labelled_data,
            )
        )
    return found


#: Where a performance verdict's predictions came from → the incident signal it is tracked as.
#: Batch and online are different populations: one version degraded on both is two incidents.
PERFORMANCE_SIGNALS: dict[str, Signal] = {"batch": "performance", "online": "online_performance"}


def performance_verdicts(summary: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """The summary's verdicts by source: ``batch`` (top level) and ``online`` (under ``online``,
    absent from summaries made before the online part existed, or when it was not judged)."""
    online = summary.get("online") or {}
    return {"batch": summary.get("versions") or {}, "online": online.get("versions") or {}}


def performance_observations(
    summary: dict[str, Any], labelled_data: str | None = None
) -> list[Observation]:
    """One observation per model version and source the performance job judged (signal
    ``performance`` for batch predictions, ``online_performance`` for the API's; the "features"
    of its incident are the failed rules: ``auc``, ``calibration``)."""
    day = date.fromisoformat(str(summary["as_of"]))
    statuses: dict[str, Status] = {"degraded": "confirmed", "ok": "clear"}
    return [
        Observation(
            model_version=str(version),
            signal=PERFORMANCE_SIGNALS[source],
            status=statuses.get(str(verdict.get("status")), "unknown"),
            day=day,
            features=tuple(verdict.get("reasons") or ()),
            labelled_data=labelled_data,
        )
        for source, verdicts in performance_verdicts(summary).items()
        for version, verdict in sorted(verdicts.items())
    ]


def track(observations: list[Observation]) -> list[tuple[Observation, Step]]:
    """Record each observation in the incidents table (``ATTRITION_ALERT_INCIDENT_DB_URL``)."""
    from attrition_mlops.alerts import safe_alert_settings
    from attrition_mlops.alerts.incident_store import incident_store

    settings = safe_alert_settings()
    store = incident_store(settings.resolved_incident_db_url)
    resolve_after = settings.incident_resolve_after_nights
    return [(obs, store.record(obs, resolve_after=resolve_after)) for obs in observations]


def announce_quiet_steps(
    steps: list[tuple[Observation, Step]], notify: Callable[..., None], links: dict[str, str]
) -> None:
    """The notices that never page: a daily digest of an open incident, and its resolution."""
    for obs, st in steps:
        incident = st.incident
        if incident is None or st.notice not in ("digest", "resolved"):
            continue
        what = f"{incident.signal} on v{incident.model_version}"
        details = {
            "incident_id": incident.incident_id,
            "model_version": incident.model_version,
            "signal": incident.signal,
            "features": list(incident.features),
            "opened_on": incident.opened_on.isoformat(),
            "nights_confirmed": incident.nights_confirmed,
            "retraining_requested_on": incident.retraining_requested_on.isoformat(),
        }
        if st.notice == "digest":
            notify(
                event="incident_digest",
                title=f"Incident {incident.incident_id} still open: {what}",
                summary=(
                    f"{what} confirmed again on {obs.day.isoformat()} (night "
                    f"{incident.nights_confirmed} since {incident.opened_on.isoformat()}), "
                    f"features {', '.join(incident.features) or '-'}. {st.reason}. No page: "
                    "on-call was paged when it opened."
                ),
                details=details,
                links=links,
                dedup_key=incident.incident_id,
            )
        else:
            notify(
                event="incident_resolved",
                title=f"Incident {incident.incident_id} resolved: {what} clear",
                summary=(
                    f"{what} has been clear for {incident.clear_nights} nights in a row "
                    f"(through {obs.day.isoformat()}); the incident opened on "
                    f"{incident.opened_on.isoformat()} is closed."
                ),
                details=details | {"resolved_on": obs.day.isoformat()},
                links={k: v for k, v in links.items() if not k.startswith("retraining")},
                dedup_key=incident.incident_id,
            )
