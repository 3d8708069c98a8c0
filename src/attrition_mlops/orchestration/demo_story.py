"""What ``make demo`` shows on the terminal: the story, and nothing else.

The story is the steps, each task as it finishes, durations, and the decisions (promoted or
not, drift or not, what Airflow queued). Everything else the process and its children write
(Airflow's own logs, the jobs' output, progress bars, warnings) goes to a log file under the
state folder, named when the demo starts and when it ends: :func:`terminal_to_log` points file
descriptors 1 and 2 at that file and keeps a copy of the terminal for :func:`tell`.

The wording lives in the pure functions below (``*_line``, :func:`duration`), so a test can read
what a newcomer reads without running Airflow.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from airflow.listeners import hookimpl

_terminal: IO[str] | None = None  # the terminal while terminal_to_log is active


def tell(text: str = "") -> None:
    """One line of the story, on the terminal (stdout when nothing is redirected)."""
    stream = _terminal or sys.stdout
    stream.write(text + "\n")
    stream.flush()


@contextlib.contextmanager
def terminal_to_log(log_file: Path) -> Iterator[Path]:
    """While active, stdout and stderr of this process and of every child it starts go to
    ``log_file`` (appended); :func:`tell` still writes to the terminal."""
    global _terminal
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(1), "w", encoding="utf-8", errors="replace")
    with open(log_file, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    _terminal = terminal
    try:
        yield log_file
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        _terminal = None
        terminal.close()


class TaskProgress:
    """An Airflow listener: tells each task of the running DAG as it finishes, with its time."""

    def __init__(self) -> None:
        self._started: dict[tuple[str, int], float] = {}

    @hookimpl
    def on_task_instance_running(self, previous_state: Any, task_instance: Any) -> None:
        self._started[(task_instance.task_id, task_instance.map_index)] = time.monotonic()

    @hookimpl
    def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
        self._finished(task_instance, "success")

    @hookimpl
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
        self._finished(task_instance, "failed")

    @hookimpl
    def on_task_instance_skipped(self, previous_state: Any, task_instance: Any) -> None:
        self._finished(task_instance, "skipped")

    def _finished(self, task_instance: Any, state: str) -> None:
        key = (task_instance.task_id, task_instance.map_index)
        started = self._started.pop(key, None)
        seconds = None if started is None else time.monotonic() - started
        name = key[0] if key[1] < 0 else f"{key[0]}[{key[1]}]"
        tell(task_line(name, state, seconds))


@contextlib.contextmanager
def task_progress() -> Iterator[None]:
    """While active, every task ``dag.test()`` runs in this process is told as it finishes."""
    from airflow.sdk.listener import get_listener_manager

    listener = TaskProgress()
    manager = get_listener_manager()
    manager.add_listener(listener)
    try:
        yield
    finally:
        manager.pm.unregister(listener)


# -- wording ---------------------------------------------------------------------------------------

_MARKS = {"success": "✓", "failed": "✗", "skipped": "–"}


def duration(seconds: float) -> str:
    """``7 s``, ``2 min 05 s``, ``1 h 02 min``: what a person reads at a glance."""
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    if total < 3600:
        return f"{total // 60} min {total % 60:02d} s"
    return f"{total // 3600} h {total % 3600 // 60:02d} min"


def step_line(number: int, total: int, title: str, elapsed: float) -> str:
    return f"\n[{number}/{total}] {title}   ({duration(elapsed)} so far)"


def task_line(task: str, state: str, seconds: float | None) -> str:
    took = "" if seconds is None or state == "skipped" else f"  {duration(seconds)}"
    return f"      {_MARKS.get(state, '?')} {task} {state}{took}"


def dag_line(dag_id: str, state: str, tasks: Mapping[str, str], seconds: float) -> str:
    """The run's outcome in words: how many tasks did what, naming the ones that did not run."""
    by_state: dict[str, list[str]] = {}
    for task, task_state in sorted(tasks.items()):
        by_state.setdefault(task_state, []).append(task)
    ran = len(by_state.get("success", []))
    parts = [f"{ran} of {_count(len(tasks), 'task')} succeeded"]
    for task_state, names in sorted(by_state.items()):
        if task_state != "success":
            parts.append(f"{task_state}: {', '.join(names)}")
    return f"    {dag_id} {state} in {duration(seconds)} ({'; '.join(parts)})"


def queued_line(dag_id: str, assets: Iterable[str]) -> str:
    assets = list(assets)
    if not assets:
        return f"    Airflow queued no {dag_id} run"
    events = " and ".join(f"`{a}`" for a in assets)
    noun = "event" if len(assets) == 1 else "events"
    return f"    Airflow queued {dag_id} on the {events} Asset {noun}; the demo runs it now"


def traffic_line(sent: Mapping[str, Any], scenario: str) -> str:
    """``600 SIMULATED records (scenario none) in 12 requests: all 600 accepted``."""
    from attrition_mlops.simulate.send import describe_sent

    return f"    {describe_sent(sent, scenario)}"


def drift_line(signal: str, drifted: list[str], incident: str | None) -> str:
    if signal != "success":
        return "    decision: no drift confirmed, so no alert and no retraining"
    features = ", ".join(drifted) or "no feature named"
    return f"    decision: drift confirmed ({features}): one alert, incident {incident}"


def alerts_line(records: Iterable[Mapping[str, Any]]) -> str:
    """``5 alerts: champion_promoted ×2 (info), drift_confirmed (warning), …``, in order."""
    counts = Counter((r["event"], r["severity"]) for r in records)
    if not counts:
        return "    no alerts"
    parts = [f"{e}{f' ×{n}' if n > 1 else ''} ({severity})" for (e, severity), n in counts.items()]
    return f"    {_count(sum(counts.values()), 'alert')}: {', '.join(parts)}"


def promotion_line(promoted: bool, champion: Mapping[str, Any]) -> str:
    reason = champion.get("gate.reason") or "no gate reason recorded"
    if promoted:
        return f"    decision: v{champion.get('version')} promoted to champion: {reason}"
    return "    decision: nothing promoted; the champion stays"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def summary_text(
    outcome: Mapping[str, Any],
    *,
    snapshot_scenario: str,
    performance: str,
    state: Path,
    alerts_log: Path,
    apis: tuple[str, str],
) -> str:
    """The demo's closing summary: what happened, then where to look."""
    before, after = outcome["champion_before"], outcome["champion_after"]
    first = (
        f"v{before} became champion and was deployed to staging and production"
        if outcome["promoted_first"]
        else "nothing promoted"
    )
    quiet = _drift_words(outcome["quiet_signal"])
    online = (outcome["performance"].get("online") or {}).get("status", "not_judged")
    drifted = _drift_words(outcome["drift_signal"])
    if outcome["drift_signal"] == "success":
        drifted += (
            f", {_count(outcome['drift_alerts'], 'alert')}, incident {outcome['drift_incident']}"
        )
    retrain = (
        "skipped (no new labelled data)"
        if outcome["retrain_training"] == "skipped"
        else f"trained; promoted: {_yes(outcome['retrain_promoted'])}"
    )
    return f"""
Summary
    first training: {first}
    quiet night: {quiet}
    drifted traffic: {drifted}
    the retraining the alarm scheduled: {retrain}
    new SIMULATED labelled snapshot ({snapshot_scenario}): champion v{before} → v{after} \
(promoted: {_yes(outcome["adapted_promoted"])})
      gate: {outcome["adapted_reason"]}
    performance (batch {outcome["performance"].get("status")}, online {online}; SIMULATED \
outcomes of the bundled rows, most of which v{before} trained on, so optimistic): \
signal_performance {outcome["performance_signal"]}
{performance}

Where to look
    alerts:          {alerts_log}
    drift reports:   {state / "drift"}
    performance:     {state / "performance"} (performance_report.html)
    predictions:     {state / "predictions"}
    inference logs (SIMULATED traffic): {state / "inference-logs"}
    staging and production API (local processes, now stopped): {apis[0]}, {apis[1]}
    MLflow UI:       make mlflow-ui  → http://127.0.0.1:5000
    Airflow UI:      make up         → http://127.0.0.1:8080 (these runs and their task logs)
    registry:        make status"""


def _drift_words(signal: str) -> str:
    return "drift confirmed" if signal == "success" else "no drift confirmed, no alarm"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
