"""The verdict rules of the performance job, pure: the same for batch and online predictions.

The verdict per model version (:func:`assess`):

- its cohorts are those of :func:`~attrition_mlops.monitoring.performance.realized_performance`;
  a cohort is **judged** when it has at least ``min_labelled`` matured labels and
  ``min_positives`` leavers (fewer would make any verdict noise);
- on the latest judged cohort, ``degraded`` when the realized AUC's *upper* CI bound is below
  ``min_auc`` (even the optimistic end of the interval is too low) and/or the expected
  calibration error exceeds ``max_ece``; ``ok`` otherwise; ``insufficient_data`` with no judged
  cohort;
- the label-free estimate of the latest cohort, and ``estimate_dropped`` when the previous
  cohort's estimate lies above the latest one's upper bound (the drop is larger than its CI).

:func:`judge` measures one population's joined predictions (:mod:`monitoring.outcomes`) and
applies :func:`assess`; the job (:mod:`performance_check`) calls it for the batch scorer's
predictions and, separately, for the online API's (:mod:`online_performance`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from attrition_mlops.monitoring import performance
from attrition_mlops.settings import PerformanceSettings

#: A population's overall status: the worst version's, in this order.
STATUS_ORDER = ("degraded", "ok")


def clean(value: Any) -> Any:
    """JSON-safe: NaN → None, numpy scalars → Python."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
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
        verdicts[str(version)] = clean(verdict)
    return verdicts


@dataclass(frozen=True)
class Judged:
    """One population's predictions measured and judged: the summary's part and the report's."""

    verdicts: dict[str, dict[str, Any]]
    cohorts: pd.DataFrame
    calibration: dict[str, list[dict[str, Any]]]
    comparison: list[dict[str, Any]]
    status_counts: dict[str, int]

    @property
    def status(self) -> str:
        """``degraded`` if any version is, else ``ok`` if any is, else ``insufficient_data``."""
        return overall_status(self.verdicts)


def overall_status(verdicts: dict[str, dict[str, Any]]) -> str:
    statuses = {v["status"] for v in verdicts.values()}
    return next((s for s in STATUS_ORDER if s in statuses), "insufficient_data")


def judge(joined: pd.DataFrame, settings: PerformanceSettings) -> Judged:
    """Realized and estimated performance of a joined frame (:mod:`monitoring.outcomes`), each
    version judged by :func:`assess`."""
    realized = performance.realized_performance(joined, n_boot=settings.n_boot, seed=settings.seed)
    estimated = performance.estimated_performance(
        joined, n_samples=settings.estimate_samples, seed=settings.seed
    )
    cohorts = cohort_table(realized, estimated)
    verdicts = assess(cohorts, settings)
    return Judged(
        verdicts=verdicts,
        cohorts=cohorts,
        calibration=calibration_tables(joined, verdicts),
        comparison=clean(performance.compare_estimates(estimated, realized).to_dict("records")),
        status_counts=clean(joined["status"].value_counts().to_dict()),
    )


def calibration_tables(
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
        tables[version] = clean(table.to_dict("records"))
    return tables
