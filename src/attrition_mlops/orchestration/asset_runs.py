"""Asset-triggered runs without a scheduler: what ``make demo`` does where the scheduler would.

Airflow queues a DAG scheduled on an Asset when the Asset gets an event (``AssetDagRunQueue``);
the scheduler then creates an asset-triggered run that consumed those events. ``make demo`` has
no scheduler: it reads the queue, clears it (as the scheduler does), runs the DAG with
``dag.test()`` and then records on that run what triggered it, as the scheduler would have:
run type ``asset_triggered``, triggered by ``asset``, the consumed Asset events (the UI's
"Source Asset events"), and a note naming the event's source run. ``dag.test()`` itself can
only create a manual run "triggered" by ``dag_test``, which is what the UI showed before.
"""

from __future__ import annotations

from typing import Any


def queued_by_assets(dag_id: str) -> list[str]:
    """Assets whose events Airflow queued for ``dag_id`` (what the scheduler would act on)."""
    return sorted({event["asset"] for event in queued_events(dag_id)})


def queued_events(dag_id: str) -> list[dict[str, Any]]:
    """For each Asset queued for ``dag_id``, its latest event: the one that queued it."""
    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    events = []
    with create_session() as session:
        queued = session.execute(
            select(AssetModel.id, AssetModel.name)
            .join(AssetDagRunQueue, AssetDagRunQueue.asset_id == AssetModel.id)
            .where(AssetDagRunQueue.target_dag_id == dag_id)
        ).all()
        for asset_id, name in queued:
            event = session.scalars(
                select(AssetEvent)
                .where(AssetEvent.asset_id == asset_id)
                .order_by(AssetEvent.timestamp.desc(), AssetEvent.id.desc())
                .limit(1)
            ).first()
            if event is not None:
                events.append(
                    {
                        "id": event.id,
                        "asset": name,
                        "source_dag_id": event.source_dag_id,
                        "source_run_id": event.source_run_id,
                        "source_task_id": event.source_task_id,
                    }
                )
    return sorted(events, key=lambda e: e["asset"])


def clear_queue(dag_id: str) -> None:
    """What the scheduler does when it creates the queued run (we run it ourselves)."""
    from airflow.models.asset import AssetDagRunQueue
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(AssetDagRunQueue).filter(AssetDagRunQueue.target_dag_id == dag_id).delete()


def trigger_note(events: list[dict[str, Any]]) -> str:
    """The run note: which Asset event started this run, from which run (Markdown)."""
    lines = [
        f"Triggered by the `{e['asset']}` asset event from `{e['source_dag_id']}` run "
        f"`{e['source_run_id']}` (task `{e['source_task_id']}`)."
        for e in events
    ]
    lines.append(
        "`make demo` started this run with `dag.test()` where the scheduler would have: "
        "no scheduler runs during the demo."
    )
    return "\n\n".join(lines)


def record_asset_trigger(dag_id: str, run_id: str, events: list[dict[str, Any]]) -> str:
    """Record on a finished ``dag.test()`` run that ``events`` triggered it; returns the note."""
    from airflow.models.asset import AssetEvent
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunTriggeredByType, DagRunType
    from sqlalchemy import select

    if not events:
        raise ValueError(f"{dag_id} run {run_id}: no Asset event to record as its trigger")
    note = trigger_note(events)
    with create_session() as session:
        run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if run is None:
            raise LookupError(f"no run {run_id} of {dag_id}")
        consumed = session.scalars(
            select(AssetEvent).where(AssetEvent.id.in_([e["id"] for e in events]))
        ).all()
        run.run_type = DagRunType.ASSET_TRIGGERED
        run.triggered_by = DagRunTriggeredByType.ASSET
        run.triggering_user_name = None
        run.consumed_asset_events.extend(e for e in consumed if e not in run.consumed_asset_events)
        run.note = note
    return note
