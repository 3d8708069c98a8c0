"""The nightly drift job's logic: read a window of inference logs, check each model's traffic.

Two log formats, one schema (:mod:`attrition_mlops.data.inference_log`):
- ``local``: the API's date-partitioned export folder (``date=YYYY-MM-DD/*.jsonl``);
- ``log-analytics``: Azure Log Analytics data export of ``ContainerLogV2``
  (:mod:`attrition_mlops.monitoring.log_analytics`). Container lines that are not inference
  lines are skipped.
Both are read as columns and validated by :mod:`attrition_mlops.monitoring.log_reader`.

Traffic served by different model versions is checked separately, each against the reference
profile of the version that served it; drift is confirmed when any version's check confirms it.
Lines that cannot be checked are counted, never fatal: a line that fails the schema is rejected
(with its file, line and reason), a replayed ``request_id`` is read once, and traffic of a
version the registry does not hold is left out of the check.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from attrition_mlops.data import inference_log
from attrition_mlops.monitoring import log_analytics, log_reader
from attrition_mlops.monitoring.drift import DriftResult, check_drift
from attrition_mlops.monitoring.report import ReportContext, add_links, report_title, write_report
from attrition_mlops.settings import DriftSettings

LogFormat = Literal["local", "log-analytics"]
#: A version's reference profile, or None when the registry holds no such version.
ProfileLoader = Callable[[str], dict[str, Any] | None]
#: The summary's counts of lines left out of the check (also MLflow metrics).
LINE_COUNTS = (
    "n_rejected_lines",
    "n_duplicate_lines",
    "n_unknown_version_lines",
    "n_unknown_version_records",
)
#: How many duplicate request ids the summary lists (all are counted).
SHOWN_DUPLICATES = 20
log = logging.getLogger(__name__)


def read_window(
    source: Path,
    first: date,
    last: date,
    log_format: LogFormat,
    rejected: list[str],
    duplicates: list[str] | None = None,
    skip_days: Collection[date] = (),
) -> pd.DataFrame:
    """One row per logged employee record whose request falls in [first, last] (UTC days).

    ``skip_days`` (local export): partitions not read, e.g. days the prediction ledger holds.

    Every line is validated against the log schema
    (:mod:`attrition_mlops.monitoring.log_reader`); a bad line (in the local export, also one
    stamped outside its ``date=`` partition) is described in ``rejected``
    ("<file>:<line>: <problem>") and left out. A line repeating an earlier
    ``request_id`` is left out and its id appended to ``duplicates``.
    """
    if log_format == "local":
        files = inference_log.export_files(source, first, last)
        if skip_days:
            files = [f for f in files if inference_log.partition_day(f) not in skip_days]
        batches = log_reader.export_batches(files)
    else:
        batches = log_analytics.batches(source, rejected)
    frame = log_reader.read_frame(batches, rejected, duplicates)
    start = pd.Timestamp(first.isoformat(), tz="UTC")
    stop = pd.Timestamp((last + timedelta(days=1)).isoformat(), tz="UTC")
    inside = (frame["timestamp"] >= start) & (frame["timestamp"] < stop)
    return frame if inside.all() else frame[inside].reset_index(drop=True)


def check_window(
    frame: pd.DataFrame,
    load_profile: ProfileLoader,
    settings: DriftSettings,
    out_dir: Path,
    *,
    rejected: Sequence[str] = (),
    duplicates: Sequence[str] = (),
    context: ReportContext | None = None,
) -> dict[str, Any]:
    """Check each known serving version's slice; write its report; return the JSON-able summary.

    ``rejected``/``duplicates``: what :func:`read_window` left out, counted in the summary and
    in every report. A version ``load_profile`` does not know is counted, not checked.
    ``context``: the model, window, check time and links each report's title and links name
    (the version is filled in per report).
    """
    context = context or ReportContext()
    per_version: dict[str, DriftResult] = {}
    simulated: dict[str, int] = {}
    parts: dict[str, tuple[pd.DataFrame, dict[str, Any]]] = {}
    unknown: dict[str, dict[str, int]] = {}
    for version, part in frame.groupby("model_version", sort=True):
        profile = load_profile(str(version))
        if profile is None:
            unknown[str(version)] = {"lines": part["request_id"].nunique(), "records": len(part)}
            continue
        per_version[str(version)] = check_drift(profile, part, settings)
        simulated[str(version)] = inference_log.count_simulated(part)
        parts[str(version)] = part, profile
    lines = line_counts(rejected, duplicates, unknown)
    _log_left_out(lines, unknown)
    reports: dict[str, dict[str, str]] = {}
    titles: dict[str, str] = {}
    for version, (part, profile) in parts.items():
        result, folder = per_version[version], out_dir / f"model_version={version}"
        about = replace(context, model_version=version)
        paths = write_report(result, profile, part, folder, lines=lines, context=about)
        reports[version] = {kind: str(path) for kind, path in paths.items()}
        titles[version] = report_title(about)
    described = {
        "model_name": context.model_name or None,
        "window": list(context.window) if context.window else None,
        "checked_at": context.checked_at or None,
    }
    return {
        **{key: value for key, value in described.items() if value},
        "status": _window_status(per_version),
        "drift_confirmed": any(r.drift_confirmed for r in per_version.values()),
        "n_records": sum(r.n_current for r in per_version.values()),
        "n_simulated": sum(simulated.values()),
        **lines,
        "rejected_lines": list(rejected),
        "duplicate_request_ids": list(dict.fromkeys(duplicates))[:SHOWN_DUPLICATES],
        "unknown_versions": unknown,
        "versions": {
            version: {
                "title": titles[version],
                "status": r.status,
                "drift_confirmed": r.drift_confirmed,
                "n_current": r.n_current,
                "n_simulated": simulated[version],
                "drifted_features": list(r.drifted_features),
                "drifted": _drifted_details(r),
                "message": r.message,
                "estimated_performance": label_free_estimate(parts[version][0])
                if version in parts
                else None,
                "reports": reports[version],
            }
            for version, r in per_version.items()
        },
    }


#: The label-free estimate beside the drift result uses at most this many of the window's
#: predictions (a seeded sample): its interval then describes that sample, and the drift job
#: stays fast on a million records.
ESTIMATE_MAX_RECORDS = 20_000


def label_free_estimate(part: pd.DataFrame, seed: int = 0) -> dict[str, Any] | None:
    """The CBPE-style AUC estimate of the window's predictions (monitoring.performance), with its
    interval: what the model's own probabilities say its AUC on these inputs should be."""
    import numpy as np

    from attrition_mlops.monitoring.performance import estimate_auc

    p = part["probability"].to_numpy(dtype="float64")
    if p.size > ESTIMATE_MAX_RECORDS:
        p = np.random.default_rng(seed).choice(p, ESTIMATE_MAX_RECORDS, replace=False)
    if p.size < 2:
        return None
    estimate = estimate_auc(p, n_samples=200, seed=seed).to_dict()
    return {key: estimate[key] for key in ("estimated_auc", "low", "high", "n")}


def line_counts(
    rejected: Sequence[str], duplicates: Sequence[str], unknown: dict[str, dict[str, int]]
) -> dict[str, int]:
    """The window's lines left out of the check, by reason (the summary's and report's counts)."""
    counts = (
        len(rejected),
        len(duplicates),
        sum(u["lines"] for u in unknown.values()),
        sum(u["records"] for u in unknown.values()),
    )
    return dict(zip(LINE_COUNTS, counts, strict=True))


def _log_left_out(lines: dict[str, int], unknown: dict[str, dict[str, int]]) -> None:
    if lines["n_rejected_lines"]:
        log.warning("%d log line(s) rejected (see rejected_lines)", lines["n_rejected_lines"])
    if lines["n_duplicate_lines"]:
        log.warning(
            "%d replayed log line(s) left out: their request_id was read before",
            lines["n_duplicate_lines"],
        )
    for version, counts in unknown.items():
        log.warning(
            "model version %r is not in the registry: %d line(s), %d record(s) not checked",
            version,
            counts["lines"],
            counts["records"],
        )


def _window_status(per_version: dict[str, DriftResult]) -> str:
    if any(r.drift_confirmed for r in per_version.values()):
        return "drift"
    if all(r.status == "insufficient_data" for r in per_version.values()):
        return "insufficient_data"  # also when no version could be checked at all
    return "no_drift"


def _drifted_details(result: DriftResult) -> list[dict[str, Any]]:
    """How much each drifted feature moved, largest effect first (for the on-call alert)."""
    by_name = {f.name: f for f in result.features}
    details = []
    for name in result.drifted_features:
        f = by_name[name]
        details.append(
            {
                "feature": name,
                "test": f.test,
                # The measures that crossed their minimum, and the sentence the alert quotes.
                "reason": result.why(f),
                "effects_past_minimum": [
                    asdict(c) | {"value": _finite(c.value)} for c in result.crossings(f)
                ],
                "p_adjusted": _finite(f.p_adjusted),
                "psi": _finite(f.psi),
                "wasserstein_sd": _finite(f.wasserstein_sd),
                "reference_mean": _finite(f.reference.get("mean")),
                "current_mean": _finite(f.current.get("mean")),
            }
        )
    return details


def _finite(value: float | None) -> float | None:
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return None
    return round(float(value), 6)


def drift_run_name(summary: dict[str, Any]) -> str:
    """``drift-v3-2026-12-06-checked-20261207T013112Z``: the model version(s) checked, the
    window's last day and the check time, so two checks of one night never share a name."""
    versions = "+".join(sorted(summary.get("versions", {}))) or "none"
    last = (summary.get("window") or ["unknown"])[-1]
    return f"drift-v{versions}-{last}-checked-{check_stamp(summary.get('checked_at'))}"


def check_stamp(checked_at: str | None) -> str:
    """``20261207T013107Z`` for ``2026-12-07T01:31:07+00:00`` (a UTC time): names a check's
    MLflow run and its default report folder."""
    if not checked_at:
        return "unknown"
    return str(checked_at)[:19].replace("-", "").replace(":", "") + "Z"


def log_drift_run(
    summary: dict[str, Any],
    report_dir: Path,
    experiment: str,
    run_url: Callable[[str, str], str] | None = None,
) -> dict[str, str]:
    """Log one window's check to MLflow: summary, metrics and the HTML/JSON reports.

    ``run_url(run_id, experiment_id)``: the run's page, added to the reports' links before they
    are logged (the run does not exist when they are written)."""
    import mlflow

    from attrition_mlops.registry.tracking import use_experiment
    from attrition_mlops.settings import get_settings

    use_experiment(experiment, get_settings())  # not set_experiment: it makes ./mlruns
    window = "_".join(summary.get("window", []))
    with mlflow.start_run(run_name=drift_run_name(summary)) as run:
        mlflow.set_tags({"job": "drift", "drift.status": summary["status"], "window": window})
        mlflow.set_tags(
            {
                "model_versions": ",".join(sorted(summary.get("versions", {}))) or "none",
                "checked_at": str(summary.get("checked_at", "")),
            }
        )
        mlflow.log_metrics(
            {
                "n_records": summary["n_records"],
                **{key: summary.get(key, 0) for key in LINE_COUNTS},
                "drift_confirmed": int(summary["drift_confirmed"]),
                "n_drifted_features": sum(
                    len(v["drifted_features"]) for v in summary["versions"].values()
                ),
            }
        )
        if run_url is not None:
            link = run_url(run.info.run_id, run.info.experiment_id)
            summary.setdefault("links", {})["MLflow drift run"] = link
            add_links(report_dir, {"MLflow drift run": link})
        mlflow.log_dict(summary, "drift_summary.json")
        if report_dir.is_dir():
            mlflow.log_artifacts(str(report_dir), "report")
        return {"mlflow_run_id": run.info.run_id, "experiment_id": run.info.experiment_id}


def purge_expired_partitions(
    export_dir: Path,
    *,
    keep_days: int,
    today: date,
    may_delete: Callable[[date], bool] | None = None,
) -> list[str]:
    """Delete ``date=YYYY-MM-DD`` partitions older than ``keep_days`` (they hold personal data).

    Only folders named like partitions are touched; a partition whose name does not parse as a
    date is left alone, and so is one whose day ``may_delete`` refuses (a log not yet in the
    prediction ledger). Returns the deleted partition names.
    """
    import shutil

    cutoff = today - timedelta(days=keep_days)
    deleted = []
    for partition in sorted(Path(export_dir).glob("date=*")):
        try:
            day = date.fromisoformat(partition.name.removeprefix("date="))
        except ValueError:
            continue
        if partition.is_dir() and day < cutoff and (may_delete is None or may_delete(day)):
            try:
                shutil.rmtree(partition)
            except FileNotFoundError:  # another run (a manual one beside the nightly) got there
                continue
            deleted.append(partition.name)
    return deleted
