"""What the DAGs announce: promotions, confirmed drift and rollbacks become Asset events and
alerts. Each function takes the job's result and the task's outlet event accessor."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowSkipException

from attrition_mlops.orchestration import plan


def _notify(ti: Any = None, **fields: Any) -> None:
    """Send an alert; with the task instance ``ti`` it names the DAG run and links to it."""
    from attrition_mlops.orchestration.notifier import alert_from_context, notify

    notify(alert_from_context({"ti": ti}, **fields))


def record_promotion(
    evaluation: dict[str, Any],
    champion_event: Any,
    links: dict[str, str] | None = None,
    ti: Any = None,
) -> dict[str, Any]:
    """Update the champion Asset and announce it, or skip (no Asset event) when nothing changed.

    With the task instance ``ti`` the alert names the training run and links to it; ``links``
    add the evaluation's MLflow run and the new version (empty ones are dropped).
    """
    promoted = plan.promotion(evaluation)
    if promoted is None:
        raise AirflowSkipException(
            f"champion kept ({evaluation.get('decision')}): {evaluation.get('reason')}"
        )
    champion_event.extra = {"version": promoted["version"], "previous": promoted["previous"]}
    _notify(
        ti,
        event="champion_promoted",
        severity="info",
        title=f"New champion: version {promoted['version']}",
        summary=(
            f"Version {promoted['version']} replaced {promoted['previous'] or 'no champion'}: "
            f"{promoted['reason']}. attrition_deployment starts from the champion Asset."
        ),
        details=promoted,
        links=links,
    )
    return promoted


def record_snapshot(added: dict[str, Any], snapshot_event: Any) -> dict[str, Any]:
    """Update the labelled-snapshot Asset (which schedules retraining) for a stored snapshot."""
    snapshot_event.extra = {k: added[k] for k in ("as_of", "sha256", "rows", "positives", "source")}
    print(
        f"labelled snapshot as_of={added['as_of']} stored ({added['rows']} rows, "
        f"{added['positives']} positives, source {added['source']!r}): retraining is scheduled"
    )
    return dict(snapshot_event.extra)


def record_drift(
    summary: dict[str, Any],
    drift_event: Any,
    links: dict[str, str],
    ti: Any = None,
    labelled_data: str | None = None,
) -> dict:
    """Count the night in the drift incidents; page and schedule retraining only when one opens
    or changes (or new labelled data arrived for it); skip otherwise.

    Each model version's result is an observation (:mod:`attrition_mlops.orchestration.incidents`):
    a new incident sends ``drift_confirmed`` (paging), an open one at most a daily
    ``incident_digest`` (info), a cleared one ``incident_resolved``. The ``attrition_drift``
    Asset, which schedules retraining, is updated only when a step requests retraining. A window
    too small to test is not drift and not clear either: it skips, after telling on-call that
    monitoring saw nothing (``drift_insufficient_data``, info).
    """
    from attrition_mlops.orchestration import incidents

    steps = incidents.track(incidents.drift_observations(summary, labelled_data))
    incidents.announce_quiet_steps(steps, lambda **fields: _notify(ti, **fields), links)
    if summary.get("status") == "insufficient_data":
        _notify_insufficient_data(summary, links, ti)
    paging = [(obs, st) for obs, st in steps if st.notice in ("opened", "changed")]
    for obs, st in paging:
        _notify_drift_incident(summary, obs.model_version, st, links, ti)
    requested = [st.incident for _, st in steps if st.retrain and st.incident is not None]
    if not requested:
        told = "; ".join(f"v{obs.model_version}: {st.reason}" for obs, st in steps)
        raise AirflowSkipException(
            f"no drift confirmed ({summary.get('status')}, {summary.get('n_records')} records)"
            if not summary.get("drift_confirmed")
            else f"drift confirmed, retraining not requested again: {told}"
        )
    names = ", ".join(sorted({f for incident in requested for f in incident.features}))
    ids = [incident.incident_id for incident in requested]
    drift_event.extra = {"window": summary.get("window"), "features": names, "incidents": ids}
    return {"features": names, "window": summary.get("window"), "incidents": ids}


def _notify_drift_incident(
    summary: dict[str, Any], version: str, st: Any, links: dict[str, str], ti: Any
) -> None:
    from attrition_mlops.monitoring.report import describe_check

    incident = st.incident
    result = summary["versions"][version]
    drifted = [{"model_version": version, **feature} for feature in result.get("drifted", [])]
    names = ", ".join(incident.features) or "see report"
    n_simulated = int(summary.get("n_simulated") or 0)
    simulated = (
        f" {n_simulated} of the {summary['n_records']} records were SIMULATED traffic (marked so "
        "in the inference log): check whether a simulation, not real traffic, moved them."
        if n_simulated
        else ""
    )
    opened = st.notice == "opened"
    window = summary.get("window")
    about = describe_check(
        summary.get("model_name") or "",
        version,
        (window[0], window[-1]) if window else None,
        summary.get("checked_at") or "",
    )
    # Each feature with the measure(s) that crossed their minimum, as the report's headline.
    why = "; ".join(
        f"{feature['feature']} ({feature['reason']})"
        for feature in drifted
        if feature.get("reason")
    )
    _notify(
        ti,
        event="drift_confirmed",
        severity="warning",
        title=(
            f"{'[SIMULATED traffic] ' if n_simulated else ''}Input drift confirmed: "
            f"{about}: {names}" + ("" if opened else f" (incident {incident.incident_id} changed)")
        ),
        summary=(
            f"{len(drifted)} feature(s) drifted on v{version} over {summary['n_records']} logged "
            + (
                f"records: {why}. "
                if why
                else "records (corrected p-value and effect size both past their thresholds). "
            )
            + (
                f"Incident {incident.incident_id} opened; "
                if opened
                else f"Incident {incident.incident_id} (open since "
                f"{incident.opened_on.isoformat()}) now covers other features; "
            )
            + "attrition_training was scheduled to retrain; its gate decides promotion. Later "
            f"nights update the incident without paging.{simulated}"
        ),
        details={
            "incident_id": incident.incident_id,
            "drifted": drifted,
            # What the model's own probabilities say its AUC on these inputs should be.
            "estimated_performance": result.get("estimated_performance"),
            "window": summary.get("window"),
            "n_simulated": n_simulated,
        },
        links=links,
        dedup_key=incident.incident_id,
    )


def _notify_insufficient_data(summary: dict[str, Any], links: dict[str, str], ti: Any) -> None:
    from attrition_mlops.monitoring.report import describe_check

    window = summary.get("window")
    # Which model's traffic, which days and when, as the drift_confirmed title says it; with
    # nothing logged no version is known, and the title says that instead of guessing one.
    versions = sorted(summary.get("versions", {}), key=lambda v: (len(v), v))
    about = describe_check(
        summary.get("model_name") or "",
        ", v".join(versions),
        (window[0], window[-1]) if window else None,
        summary.get("checked_at") or "",
    )
    n = summary.get("n_records", 0)
    rejected = summary.get("rejected_lines") or []
    per_version = {
        version: {"n_current": result.get("n_current"), "message": result.get("message")}
        for version, result in summary.get("versions", {}).items()
    }
    if n:
        what = f"only {n} logged record(s), below ATTRITION_DRIFT_MIN_RECORDS"
    else:
        what = "no logged records at all"
    unreadable = f" {len(rejected)} log line(s) were unreadable." if rejected else ""
    first, last = (window[0], window[-1]) if window else ("?", "?")
    day = last if first == last else f"{first}..{last}"
    details = {"window": summary.get("window"), "n_records": n, "versions": per_version}
    if rejected:
        details |= {"rejected_lines": len(rejected), "first_rejected": rejected[:5]}
    _notify(
        ti,
        event="drift_insufficient_data",
        title=f"No drift check: {about}: {what}",
        summary=(
            f"The drift window {day} held {what}, so nothing was tested: drift monitoring is "
            f"blind for that window.{unreadable} One quiet day is normal; if it repeats, check "
            "that the API receives traffic and that the inference-log export is writing."
        ),
        details=details,
        # The retraining link is for confirmed drift; nothing is scheduled here.
        links={k: v for k, v in links.items() if not k.startswith("retraining")},
    )


def drift_links(summary: dict[str, Any], mlflow_run_url: str | None) -> dict[str, str]:
    """Where on-call looks: the reports, the MLflow run holding them, the retraining DAG."""
    from attrition_mlops.alerts import safe_alert_settings

    links: dict[str, str] = {}
    for version, result in summary.get("versions", {}).items():
        for kind, path in result.get("reports", {}).items():
            links[f"report v{version} ({kind})"] = path
    if mlflow_run_url:
        links["MLflow drift run"] = mlflow_run_url
    base = safe_alert_settings().airflow_base_url.rstrip("/")
    links["retraining (attrition_training runs)"] = f"{base}/dags/attrition_training/runs"
    return links


def purge_inference_logs(today: Any) -> dict[str, Any]:
    """Compact the complete days of the inference logs into the prediction ledger, then delete
    expired log partitions (only those the ledger holds) and expired ledger partitions (local
    export; Azure storage uses its lifecycle policy, which this reports rather than duplicates).

    A day that could not be compacted keeps its log, and the task fails after the rest is done
    so on-call hears of it (runbook: prediction ledger compaction failed).
    """
    from pathlib import Path

    from attrition_mlops.monitoring.ledger import retain_logs
    from attrition_mlops.settings import (
        get_performance_settings,
        get_settings,
        get_workflow_settings,
    )

    settings, workflow = get_settings(), get_workflow_settings()
    if workflow.log_format != "local":
        print("retention of the Log Analytics export is the storage lifecycle policy's job")
        return {}
    perf = get_performance_settings()
    ledger = perf.resolved_ledger_dir(settings.state_dir)
    kept = perf.resolved_ledger_retention_days
    done = retain_logs(
        Path(plan.inference_log_dir(workflow, settings)),
        ledger,
        today=today,
        log_days_kept=workflow.retention_days,
        ledger_days_kept=kept,
    )
    print(
        f"compacted {len(done['compacted'])} day(s) into the prediction ledger {ledger}: "
        f"{done['compacted']}; deleted {len(done['deleted_logs'])} log partition(s) older than "
        f"{workflow.retention_days} days: {done['deleted_logs']}; deleted "
        f"{len(done['deleted_ledger'])} ledger partition(s) older than {kept} days: "
        f"{done['deleted_ledger']}"
    )
    if done["failed"] or done["kept_uncompacted"]:
        raise RuntimeError(
            f"prediction ledger: {len(done['failed'])} day(s) could not be compacted "
            f"({done['failed']}); expired inference logs kept because the ledger does not hold "
            f"them: {done['kept_uncompacted']}. Nothing was lost; see the runbook "
            "(prediction ledger compaction failed)"
        )
    return done


def notify_rollback(env: str, *, failed_version: str, restored: str | None, ti: Any) -> None:
    from attrition_mlops.orchestration.notifier import alert_from_context, notify

    notify(
        alert_from_context(
            {"ti": ti},
            event="deployment_rolled_back",
            severity="critical" if env == "production" else "warning",
            title=f"{env} rolled back: version {failed_version} failed its rollout",
            summary=(
                f"Version {failed_version} failed in {env} (rollout, wait or smoke test); {env} "
                f"is back on version {restored or 'nothing (stopped)'}. "
                + (
                    "Production served the failed version briefly: check its traffic."
                    if env == "production"
                    else "Production was not touched."
                )
            ),
            details={"environment": env, "failed_version": failed_version, "restored": restored},
        )
    )


def notify_deployed(version: str, ti: Any) -> None:
    from attrition_mlops.orchestration.notifier import alert_from_context, notify

    notify(
        alert_from_context(
            {"ti": ti},
            event="model_deployed",
            title=f"Version {version} serves staging and production",
            summary=(
                f"Version {version} passed staging and production smoke tests and now serves "
                "production: watch latency and error rates for the next hour."
            ),
            details={"version": version},
        )
    )
