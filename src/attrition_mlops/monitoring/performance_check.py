"""The performance job's logic: join outcomes to predictions, judge each model version, report.

``jobs/performance.py`` calls :func:`check_performance` and, with ``--log-to-mlflow``,
:func:`log_performance_run`. The verdict rules are :mod:`~attrition_mlops.monitoring.verdicts`
(pure, shared by both populations): the batch scorer's predictions are judged here, the online
API's logged predictions separately by :mod:`~attrition_mlops.monitoring.online_performance`.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from attrition_mlops.data import outcomes as feed
from attrition_mlops.monitoring.online_performance import OnlineSource, check_online
from attrition_mlops.monitoring.outcomes import join_batch_predictions
from attrition_mlops.monitoring.predictions import read_batch_predictions
from attrition_mlops.monitoring.verdicts import Judged, judge
from attrition_mlops.monitoring.verdicts import assess as assess  # the rules' public name here
from attrition_mlops.monitoring.verdicts import clean as _clean
from attrition_mlops.monitoring.verdicts import cohort_table as cohort_table
from attrition_mlops.settings import PerformanceSettings

SUMMARY_FILE = "performance_summary.json"
COHORTS_FILE = "performance_cohorts.csv"
ONLINE_COHORTS_FILE = "performance_cohorts_online.csv"


def check_performance(
    predictions_root: Path,
    outcomes_root: Path,
    as_of: date,
    settings: PerformanceSettings,
    out_dir: Path,
    online: OnlineSource | None = None,
) -> dict[str, Any]:
    """Join, measure, judge; write the summary, the cohort tables and the HTML report.

    The batch scorer's predictions are judged at the top level of the summary (``versions``,
    ``status``); the online API's logged predictions, a different population, separately under
    ``online`` (:mod:`~attrition_mlops.monitoring.online_performance`), or its ``reason`` says
    why they were not judged.
    """
    from attrition_mlops.monitoring.performance_report import write_report

    predictions = read_batch_predictions(predictions_root, until=as_of)
    outcomes = feed.read_outcomes(outcomes_root, arrived_until=as_of)
    n_simulated = int(outcomes[feed.SIMULATED_COLUMN].fillna(False).astype(bool).sum())
    summary: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "horizon": settings.horizon,
        "n_predictions": len(predictions),
        "n_outcomes": len(outcomes),
        "n_simulated_outcomes": n_simulated,
        "versions": {},
        "status": "insufficient_data",
    }
    batch: Judged | None = None
    if len(predictions):
        joined = join_batch_predictions(
            predictions, outcomes, horizon=settings.horizon, as_of=as_of
        )
        batch = judge(joined, settings)
        summary["versions"] = batch.verdicts
        summary["comparison"] = batch.comparison
        summary["status_counts"] = batch.status_counts
        summary["status"] = batch.status
    summary["online"], online_judged = check_online(online, outcomes, as_of, settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    cohorts = batch.cohorts if batch else pd.DataFrame()
    cohorts.to_csv(out_dir / COHORTS_FILE, index=False)
    online_cohorts = online_judged.cohorts if online_judged else pd.DataFrame()
    online_cohorts.to_csv(out_dir / ONLINE_COHORTS_FILE, index=False)
    (out_dir / SUMMARY_FILE).write_text(json.dumps(_clean(summary), indent=2, sort_keys=True))
    pages = write_report(
        summary,
        cohorts,
        batch.calibration if batch else {},
        out_dir,
        online=(online_cohorts, online_judged.calibration if online_judged else {}),
    )
    summary["reports"] = {kind: str(path) for kind, path in pages.items()}
    return _clean(summary)


def log_performance_run(summary: dict[str, Any], out_dir: Path, experiment: str) -> dict[str, str]:
    """One MLflow run per check: tags, the judged figures as metrics, the report as artifacts.

    Batch metrics keep their names (``v<version>_realized_auc`` …); the online ones are
    ``online_v<version>_…`` and ``online_n_…``; the online status and, when it was not judged,
    the reason are tags.
    """
    import mlflow

    from attrition_mlops.registry.tracking import use_experiment
    from attrition_mlops.settings import get_settings

    use_experiment(experiment, get_settings())  # not set_experiment: it makes ./mlruns
    online = summary.get("online") or {}
    with mlflow.start_run(run_name=f"performance-{summary['as_of']}") as run:
        tags = {
            "job": "performance",
            "performance.status": summary["status"],
            "performance.online_status": str(online.get("status", "not_judged")),
            "as_of": summary["as_of"],
            "simulated_outcomes": str(summary["n_simulated_outcomes"] > 0).lower(),
        }
        if online.get("reason"):
            tags["performance.online_reason"] = str(online["reason"])[:4000]
        if online.get("key_check"):
            tags["performance.online_key_check"] = str(online["key_check"])
        mlflow.set_tags(tags)
        metrics: dict[str, float] = {
            "n_predictions": summary["n_predictions"],
            "n_outcomes": summary["n_outcomes"],
            **version_metrics(summary["versions"], prefix=""),
            **version_metrics(online.get("versions") or {}, prefix="online_"),
        }
        for count in ONLINE_COUNTS:
            if online.get(count) is not None:
                metrics[f"online_{count}"] = online[count]
        mlflow.log_metrics(metrics)
        mlflow.log_artifacts(str(out_dir), "report")
        return {"mlflow_run_id": run.info.run_id, "experiment_id": run.info.experiment_id}


#: The online part's counts logged as MLflow metrics (``online_<name>``).
ONLINE_COUNTS = (
    "n_records",
    "n_rejected_lines",
    "n_duplicate_lines",
    "n_logged_employees",
    "n_matched_employees",
)


def version_metrics(versions: dict[str, dict[str, Any]], prefix: str) -> dict[str, float]:
    """``<prefix>v<version>_<figure>`` for each version's judged figures and its estimate."""
    metrics: dict[str, float] = {}
    for version, verdict in versions.items():
        for key in ("realized_auc", "auc_low", "auc_high", "ece"):
            if verdict.get(key) is not None:
                metrics[f"{prefix}v{version}_{key}"] = verdict[key]
        estimate = verdict.get("estimate") or {}
        if estimate.get("estimated_auc") is not None:
            metrics[f"{prefix}v{version}_estimated_auc"] = estimate["estimated_auc"]
    return metrics
