"""The performance job's logic: join outcomes to predictions, judge each model version, report.

``jobs/performance.py`` calls :func:`check_performance` and, with ``--log-to-mlflow``,
:func:`log_performance_run`. The verdict per model version (:func:`assess`, pure):

- its cohorts are those of :func:`~attrition_mlops.monitoring.performance.realized_performance`;
  a cohort is **judged** when it has at least ``min_labelled`` matured labels and
  ``min_positives`` leavers (fewer would make any verdict noise);
- on the latest judged cohort, ``degraded`` when the realized AUC's *upper* CI bound is below
  ``min_auc`` (even the optimistic end of the interval is too low) and/or the expected
  calibration error exceeds ``max_ece``; ``ok`` otherwise; ``insufficient_data`` with no judged
  cohort;
- the label-free estimate of the latest cohort, and ``estimate_dropped`` when the previous
  cohort's estimate lies above the latest one's upper bound (the drop is larger than its CI).
"""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from attrition_mlops.data import outcomes as feed
from attrition_mlops.monitoring import performance
from attrition_mlops.monitoring.outcomes import join_batch_predictions
from attrition_mlops.monitoring.predictions import read_batch_predictions
from attrition_mlops.settings import PerformanceSettings

SUMMARY_FILE = "performance_summary.json"
COHORTS_FILE = "performance_cohorts.csv"


def _clean(value: Any) -> Any:
    """JSON-safe: NaN → None, numpy scalars → Python."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def cohort_table(realized: pd.DataFrame, estimated: pd.DataFrame) -> pd.DataFrame:
    """Realized and estimated figures side by side, one row per (model_version, cohort)."""
    keys = ["model_version", "cohort"]
    est = estimated.rename(
        columns={"low": "estimate_low", "high": "estimate_high", "n": "n_estimated"}
    ).drop(columns=["sampled_mean"], errors="ignore")
    if realized.empty:
        return est
    return realized.merge(est, on=keys, how="outer").sort_values(keys).reset_index(drop=True)


def assess(cohorts: pd.DataFrame, settings: PerformanceSettings) -> dict[str, dict[str, Any]]:
    """The verdict per model version (module docstring); pure."""
    verdicts: dict[str, dict[str, Any]] = {}
    for version, rows in cohorts.groupby("model_version", sort=True):
        rows = rows.sort_values("cohort")
        judged = rows[
            (rows.get("n_labelled", 0) >= settings.min_labelled)
            & (rows.get("n_positive", 0) >= settings.min_positives)
            & rows.get("auc", pd.Series(np.nan, index=rows.index)).notna()
        ]
        verdict: dict[str, Any] = {"status": "insufficient_data", "reasons": []}
        if len(judged):
            last = judged.iloc[-1]
            reasons = []
            if last["auc_high"] < settings.min_auc:
                reasons.append("auc")
            if last["ece"] > settings.max_ece:
                reasons.append("calibration")
            verdict = {
                "status": "degraded" if reasons else "ok",
                "reasons": reasons,
                "judged_cohort": last["cohort"],
                "realized_auc": last["auc"],
                "auc_low": last["auc_low"],
                "auc_high": last["auc_high"],
                "ece": last["ece"],
                "observed_rate": last["observed_rate"],
                "mean_predicted": last["mean_predicted"],
                "n_labelled": int(last["n_labelled"]),
                "n_positive": int(last["n_positive"]),
            }
        estimates = rows[rows.get("estimated_auc", pd.Series(np.nan, index=rows.index)).notna()]
        if len(estimates):
            latest = estimates.iloc[-1]
            verdict["estimate"] = {
                "cohort": latest["cohort"],
                "estimated_auc": latest["estimated_auc"],
                "low": latest["estimate_low"],
                "high": latest["estimate_high"],
                "n": int(latest["n_estimated"]),
            }
            previous = estimates.iloc[-2] if len(estimates) > 1 else None
            dropped = previous is not None and previous["estimated_auc"] > latest["estimate_high"]
            verdict["estimate_dropped"] = bool(dropped)
            if previous is not None:
                verdict["estimate"]["previous_cohort"] = previous["cohort"]
                verdict["estimate"]["previous_estimated_auc"] = previous["estimated_auc"]
        verdicts[str(version)] = _clean(verdict)
    return verdicts


def check_performance(
    predictions_root: Path,
    outcomes_root: Path,
    as_of: date,
    settings: PerformanceSettings,
    out_dir: Path,
) -> dict[str, Any]:
    """Join, measure, judge; write the summary, the cohort table and the HTML report."""
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
    cohorts = pd.DataFrame()
    calibration: dict[str, list[dict[str, Any]]] = {}
    if len(predictions):
        joined = join_batch_predictions(
            predictions, outcomes, horizon=settings.horizon, as_of=as_of
        )
        realized = performance.realized_performance(
            joined, n_boot=settings.n_boot, seed=settings.seed
        )
        estimated = performance.estimated_performance(
            joined, n_samples=settings.estimate_samples, seed=settings.seed
        )
        cohorts = cohort_table(realized, estimated)
        summary["versions"] = assess(cohorts, settings)
        summary["comparison"] = _clean(
            performance.compare_estimates(estimated, realized).to_dict("records")
        )
        summary["status_counts"] = _clean(joined["status"].value_counts().to_dict())
        calibration = _calibration(joined, summary["versions"])
    statuses = {v["status"] for v in summary["versions"].values()}
    for status in ("degraded", "ok"):
        if status in statuses:
            summary["status"] = status
            break
    out_dir.mkdir(parents=True, exist_ok=True)
    cohorts.to_csv(out_dir / COHORTS_FILE, index=False)
    (out_dir / SUMMARY_FILE).write_text(json.dumps(_clean(summary), indent=2, sort_keys=True))
    summary["reports"] = {
        kind: str(path)
        for kind, path in write_report(summary, cohorts, calibration, out_dir).items()
    }
    return _clean(summary)


def _calibration(
    joined: pd.DataFrame, verdicts: dict[str, dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """The reliability table of each version's judged cohort, for the report."""
    tables = {}
    for version, verdict in verdicts.items():
        cohort = verdict.get("judged_cohort")
        if cohort is None:
            continue
        rows = joined[
            (joined["model_version"] == version)
            & (joined["cohort"] == cohort)
            & joined["label"].notna()
        ]
        table = performance.calibration_table(
            rows["label"].to_numpy(dtype=np.float64), rows["probability"].to_numpy()
        )
        tables[version] = _clean(table.to_dict("records"))
    return tables


def log_performance_run(summary: dict[str, Any], out_dir: Path, experiment: str) -> dict[str, str]:
    """One MLflow run per check: tags, the judged figures as metrics, the report as artifacts."""
    import mlflow

    from attrition_mlops.registry.tracking import use_experiment
    from attrition_mlops.settings import get_settings

    use_experiment(experiment, get_settings())  # not set_experiment: it makes ./mlruns
    with mlflow.start_run(run_name=f"performance-{summary['as_of']}") as run:
        mlflow.set_tags(
            {
                "job": "performance",
                "performance.status": summary["status"],
                "as_of": summary["as_of"],
                "simulated_outcomes": str(summary["n_simulated_outcomes"] > 0).lower(),
            }
        )
        metrics: dict[str, float] = {
            "n_predictions": summary["n_predictions"],
            "n_outcomes": summary["n_outcomes"],
        }
        for version, verdict in summary["versions"].items():
            for key in ("realized_auc", "auc_low", "auc_high", "ece"):
                if verdict.get(key) is not None:
                    metrics[f"v{version}_{key}"] = verdict[key]
            estimate = verdict.get("estimate") or {}
            if estimate.get("estimated_auc") is not None:
                metrics[f"v{version}_estimated_auc"] = estimate["estimated_auc"]
        mlflow.log_metrics(metrics)
        mlflow.log_artifacts(str(out_dir), "report")
        return {"mlflow_run_id": run.info.run_id, "experiment_id": run.info.experiment_id}
