"""The nightly drift job's logic: read a window of inference logs, check each model's traffic.

Two log formats, one schema (:mod:`attrition_mlops.inference_log`):
- ``local``: the API's date-partitioned export folder (``date=YYYY-MM-DD/*.jsonl``);
- ``log-analytics``: Azure Log Analytics data export of ``ContainerLogV2``
  (:mod:`attrition_mlops.log_analytics`). Container lines that are not inference lines are
  skipped.
Both are read as columns and validated by :mod:`attrition_mlops.log_reader`.

Traffic served by different model versions is checked separately, each against the reference
profile of the version that served it; drift is confirmed when any version's check confirms it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from attrition_mlops import inference_log, log_analytics, log_reader
from attrition_mlops.drift import DriftResult, check_drift
from attrition_mlops.drift_report import write_report
from attrition_mlops.settings import DriftSettings

LogFormat = Literal["local", "log-analytics"]
ProfileLoader = Callable[[str], dict[str, Any]]


def read_window(
    source: Path, first: date, last: date, log_format: LogFormat, rejected: list[str]
) -> pd.DataFrame:
    """One row per logged employee record whose request falls in [first, last] (UTC days).

    Every line is validated against the log schema (:mod:`attrition_mlops.log_reader`); a bad
    line is described in ``rejected`` ("<file>:<line>: <problem>") and left out.
    """
    if log_format == "local":
        batches = log_reader.export_batches(inference_log.export_files(source, first, last))
    else:
        batches = log_analytics.batches(source, rejected)
    frame = log_reader.read_frame(batches, rejected)
    start = pd.Timestamp(first.isoformat(), tz="UTC")
    stop = pd.Timestamp((last + timedelta(days=1)).isoformat(), tz="UTC")
    inside = (frame["timestamp"] >= start) & (frame["timestamp"] < stop)
    return frame if inside.all() else frame[inside].reset_index(drop=True)


def check_window(
    frame: pd.DataFrame,
    load_profile: ProfileLoader,
    settings: DriftSettings,
    out_dir: Path,
) -> dict[str, Any]:
    """Check each serving version's slice; write its report; return the JSON-able summary."""
    per_version: dict[str, DriftResult] = {}
    reports: dict[str, dict[str, str]] = {}
    simulated: dict[str, int] = {}
    for version, part in frame.groupby("model_version", sort=True):
        profile = load_profile(str(version))
        result = check_drift(profile, part, settings)
        per_version[str(version)] = result
        simulated[str(version)] = inference_log.count_simulated(part)
        paths = write_report(result, profile, part, out_dir / f"model_version={version}")
        reports[str(version)] = {kind: str(path) for kind, path in paths.items()}
    confirmed = any(r.drift_confirmed for r in per_version.values())
    if not per_version:
        status = "insufficient_data"
    elif confirmed:
        status = "drift"
    elif all(r.status == "insufficient_data" for r in per_version.values()):
        status = "insufficient_data"
    else:
        status = "no_drift"
    return {
        "status": status,
        "drift_confirmed": confirmed,
        "n_records": len(frame),
        "n_simulated": sum(simulated.values()),
        "versions": {
            version: {
                "status": r.status,
                "drift_confirmed": r.drift_confirmed,
                "n_current": r.n_current,
                "n_simulated": simulated[version],
                "drifted_features": list(r.drifted_features),
                "drifted": _drifted_details(r),
                "message": r.message,
                "reports": reports[version],
            }
            for version, r in per_version.items()
        },
    }


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


def log_drift_run(summary: dict[str, Any], report_dir: Path, experiment: str) -> dict[str, str]:
    """Log one window's check to MLflow: summary, metrics and the HTML/JSON reports."""
    import mlflow

    mlflow.set_experiment(experiment)
    window = "_".join(summary.get("window", []))
    with mlflow.start_run(run_name=f"drift-{window}") as run:
        mlflow.set_tags({"job": "drift", "drift.status": summary["status"], "window": window})
        mlflow.log_metrics(
            {
                "n_records": summary["n_records"],
                "drift_confirmed": int(summary["drift_confirmed"]),
                "n_drifted_features": sum(
                    len(v["drifted_features"]) for v in summary["versions"].values()
                ),
            }
        )
        mlflow.log_dict(summary, "drift_summary.json")
        if report_dir.is_dir():
            mlflow.log_artifacts(str(report_dir), "report")
        return {"mlflow_run_id": run.info.run_id, "experiment_id": run.info.experiment_id}


def purge_expired_partitions(export_dir: Path, *, keep_days: int, today: date) -> list[str]:
    """Delete ``date=YYYY-MM-DD`` partitions older than ``keep_days`` (they hold personal data).

    Only folders named like partitions are touched; a partition whose name does not parse as a
    date is left alone. Returns the deleted partition names.
    """
    import shutil

    cutoff = today - timedelta(days=keep_days)
    deleted = []
    for partition in sorted(Path(export_dir).glob("date=*")):
        try:
            day = date.fromisoformat(partition.name.removeprefix("date="))
        except ValueError:
            continue
        if partition.is_dir() and day < cutoff:
            shutil.rmtree(partition)
            deleted.append(partition.name)
    return deleted
