"""Every Asset the DAGs exchange, declared once. URIs are logical names, not storage paths:
the same DAGs run on both targets, and an Asset's identity must not change with configuration."""

from __future__ import annotations

from airflow.sdk import Asset

CHAMPION = Asset(
    name="attrition_champion",
    uri="attrition://registry/employee_attrition/champion",
    group="model",
)
"""Updated by attrition_training only when a challenger was promoted; schedules deployment."""

LABELLED_SNAPSHOT = Asset(
    name="attrition_labelled_snapshot",
    uri="attrition://data/employee_attrition/labelled_snapshot",
    group="data",
)
"""Updated by attrition_snapshot_intake when a new labelled snapshot was stored; schedules
retraining (an identical re-delivery stores nothing and updates nothing)."""

PREDICTIONS = Asset(
    name="attrition_predictions",
    uri="attrition://predictions/employee_attrition",
    group="predictions",
)
"""Updated by attrition_batch_scoring when a day's partition is complete (consumers wait on it)."""

DRIFT = Asset(
    name="attrition_drift",
    uri="attrition://monitoring/employee_attrition/drift",
    group="monitoring",
)
"""Updated by attrition_drift_monitoring when drift is confirmed; schedules retraining."""

OUTCOMES = Asset(
    name="attrition_outcomes",
    uri="attrition://data/employee_attrition/outcomes",
    group="data",
)
"""Updated by attrition_outcomes_intake when a delivery of realized outcomes was stored;
schedules attrition_performance_monitoring."""

PERFORMANCE = Asset(
    name="attrition_performance",
    uri="attrition://monitoring/employee_attrition/performance",
    group="monitoring",
)
"""Updated by attrition_performance_monitoring when degraded performance opens (or changes) an
incident; schedules retraining."""
