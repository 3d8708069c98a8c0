"""Typed settings, one small class per surface, each with its own environment prefix.

Nothing here touches the file system or MLflow at import time: paths are computed, never created.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class PipelineSettings(BaseSettings):
    """Where state lives and which backend each external system uses (ATTRITION_*)."""

    model_config = SettingsConfigDict(env_prefix="ATTRITION_", extra="ignore")

    target: Literal["local", "azure"] = "local"
    state_dir: Path = Path(".state")
    tracking_uri: str | None = Field(
        default=None, description="MLflow tracking URI; default: SQLite under state_dir"
    )
    registry_uri: str | None = None
    # The lock that makes alias compare-and-set atomic (registry_lock.py). Needed for an MLflow
    # server or Databricks; a sqlite:/// store locks a file beside the database by itself.
    registry_lock_url: SecretStr | None = Field(
        default=None, description="postgresql:// URL for the alias-move lock, or 'none'"
    )
    registry_lock_timeout_s: float = Field(60, gt=0, description="wait at most this for the lock")
    experiment_name: str = "employee_attrition"
    model_name: str = "employee_attrition"
    mlflow_ui_url: str = Field("http://127.0.0.1:5000", description="for links in the Airflow UI")

    @property
    def resolved_tracking_uri(self) -> str:
        if self.tracking_uri:
            return self.tracking_uri
        return f"sqlite:///{(self.state_dir / 'mlflow.db').resolve()}"

    @property
    def artifact_root(self) -> Path:
        return (self.state_dir / "mlartifacts").resolve()

    @property
    def holdout_dir(self) -> Path:
        return self.state_dir / "holdout"

    @property
    def evidence_dir(self) -> Path:
        """Recent evidence windows held out of new snapshots (data/evidence.py)."""
        return self.state_dir / "evidence"

    @property
    def snapshot_dir(self) -> Path:
        """Labelled snapshots, one ``as_of=YYYY-MM-DD`` partition each (data/snapshots.py)."""
        return self.state_dir / "snapshots"


class TrainingSettings(BaseSettings):
    """Training search budget and the frozen split (ATTRITION_TRAIN_*)."""

    model_config = SettingsConfigDict(env_prefix="ATTRITION_TRAIN_", extra="ignore")

    seed: int = 42
    holdout_fraction: float = Field(0.2, gt=0.05, lt=0.5)
    # Share of a new (not the first) labelled snapshot held out as the gate's recent evidence
    # window: the challenger never trains on it (data/evidence.py).
    window_fraction: float = Field(0.3, gt=0.05, lt=0.6)
    cv_folds: int = Field(5, ge=2)
    n_trials: int = Field(24, ge=2, description="Optuna trials, shared by all model families")
    families: tuple[str, ...] = ("logistic_regression", "hist_gradient_boosting")
    outlier_fpr: float = Field(0.01, gt=0, lt=0.5, description="target false-positive rate")
    decision_threshold: float = Field(0.5, gt=0, lt=1)
    # Native (OpenMP/BLAS) threads while training. 1 keeps a shared worker predictable: with
    # oversubscribed cores OpenMP spin-waiting made one CV run 10x slower here. Raise it on a
    # dedicated Databricks node.
    threads: int = Field(1, ge=1)


class GateSettings(BaseSettings):
    """Champion/challenger decision rule (ATTRITION_GATE_*). Thresholds are data, not code."""

    model_config = SettingsConfigDict(env_prefix="ATTRITION_GATE_", extra="ignore")

    n_boot: int = Field(2000, ge=100)
    seed: int = 20240607
    min_win_rate: float = Field(0.90, gt=0.5, lt=1.0)
    # |ΔAUC| at or below this counts as a tie, and ties never count as wins: the incumbent keeps
    # the title unless the challenger is better, not merely as good.
    tie_tolerance: float = Field(1e-9, ge=0)
    # Cold start (no champion yet) and an absolute floor for every promotion.
    min_auc: float = Field(0.75, gt=0.5, lt=1.0)
    # The recent evidence window (docs/gate.md): below these it is too small to judge on, and
    # the frozen holdout decides. On the frozen holdout the challenger may lose by at most
    # holdout_margin AUC (with the win's confidence) before it is refused as a regression.
    min_window_rows: int = Field(200, ge=20)
    min_window_positives: int = Field(30, ge=5)
    holdout_margin: float = Field(0.20, ge=0.0, lt=0.5)
    # On the window a win is a gain of more than window_min_gain AUC in window_min_win_rate of
    # the paired resamples: chosen with bench/gate_decisions.py (docs/benchmarks.md) so that a
    # challenger of equal quality is promoted in under 5 % of simulated worlds.
    window_min_gain: float = Field(0.005, ge=0.0, lt=0.2)
    window_min_win_rate: float = Field(0.95, gt=0.5, lt=1.0)


class ScoringSettings(BaseSettings):
    """Batch scoring (ATTRITION_SCORE_*)."""

    model_config = SettingsConfigDict(env_prefix="ATTRITION_SCORE_", extra="ignore")

    model_alias: str = "champion"
    output_root: Path | None = Field(None, description="default: <state_dir>/predictions")
    batch_rows: int = Field(100_000, ge=1, description="rows per record batch (memory bound)")
    max_reject_fraction: float = Field(0.01, ge=0, le=1)


Correction = Literal["bh", "bonferroni"]


class DriftSettings(BaseSettings):
    """The drift decision rule (ATTRITION_DRIFT_*). Thresholds are data, not code."""

    model_config = SettingsConfigDict(env_prefix="ATTRITION_DRIFT_", extra="ignore")

    alpha: float = Field(0.05, gt=0, lt=1, description="family-level error rate")
    correction: Correction = "bh"
    min_records: int = Field(200, ge=10, description="smaller windows are insufficient_data")
    min_psi: float = Field(0.1, gt=0, description="effect gate: PSI at or above this")
    min_wasserstein_sd: float = Field(
        0.1, gt=0, description="effect gate (numeric): Wasserstein distance in reference SDs"
    )
    psi_bins: int = Field(10, ge=2, description="reference-quantile bins for numeric PSI")
    psi_epsilon: float = Field(1e-4, gt=0, lt=0.01, description="share floor for empty bins")
    min_expected: float = Field(5.0, gt=0, description="χ² cells below this are pooled")
    ks_method: Literal["auto", "exact", "asymp"] = "auto"
    monte_carlo_tables: int = Field(2000, ge=100, description="χ² Monte Carlo fallback size")
    seed: int = 0


#: Days the prediction ledger is kept beyond what the performance job needs (a late job, a rerun).
LEDGER_MARGIN_DAYS = 31


class PerformanceSettings(BaseSettings):
    """Model performance from outcomes (ATTRITION_PERFORMANCE_*): docs/performance.md."""

    model_config = SettingsConfigDict(env_prefix="ATTRITION_PERFORMANCE_", extra="ignore")

    outcomes_dir: Path | None = Field(None, description="default: <state_dir>/outcomes")
    horizon: str = Field("12m", pattern=r"^[1-9][0-9]{0,3}[md]$")
    # performance_degraded: the realized AUC's upper CI bound below this floor ...
    min_auc: float = Field(0.70, gt=0.5, lt=1.0)
    # ... or the expected calibration error above this limit.
    max_ece: float = Field(0.10, gt=0, lt=1)
    # A cohort is judged only with this many matured labels (and leavers) behind it.
    min_labelled: int = Field(200, ge=20)
    min_positives: int = Field(20, ge=5)
    n_boot: int = Field(1000, ge=100)
    estimate_samples: int = Field(500, ge=100)
    seed: int = 0
    # The slim prediction ledger that outlives the full inference logs (monitoring/ledger.py).
    ledger_dir: Path | None = Field(None, description="default: <state_dir>/prediction-ledger")
    ledger_retention_days: int | None = Field(
        None,
        ge=1,
        description="ledger partitions older are deleted; default: what the horizon needs "
        f"plus {LEDGER_MARGIN_DAYS} days; shorter than what the horizon needs is refused",
    )

    @property
    def ledger_days_needed(self) -> int:
        """How far back the performance job reads: one horizon, then back to the first day of
        the month before (monitoring.online_performance.log_window), at its longest."""
        n, unit = int(self.horizon[:-1]), self.horizon[-1]
        horizon_days = n if unit == "d" else 366 * (n // 12) + 31 * (n % 12)
        return horizon_days + 61  # that month (≤ 31 days) and the days into the next (≤ 30)

    def resolved_ledger_dir(self, state_dir: Path) -> Path:
        return self.ledger_dir or state_dir / "prediction-ledger"

    @property
    def resolved_ledger_retention_days(self) -> int:
        return self.ledger_retention_days or self.ledger_days_needed + LEDGER_MARGIN_DAYS

    @model_validator(mode="after")
    def _ledger_outlives_the_horizon(self) -> PerformanceSettings:
        days, needed = self.ledger_retention_days, self.ledger_days_needed
        if days is not None and days < needed:
            raise ValueError(
                f"ATTRITION_PERFORMANCE_LEDGER_RETENTION_DAYS={days} is shorter than the "
                f"{needed} days the performance job reads back with horizon {self.horizon}: "
                "online predictions would be deleted before their outcomes mature"
            )
        return self


class WorkflowSettings(BaseSettings):
    """What the Airflow DAGs read and write, on either target (ATTRITION_WORKFLOW_*)."""

    model_config = SettingsConfigDict(env_prefix="ATTRITION_WORKFLOW_", extra="ignore")

    snapshot: str | None = Field(
        None,
        description="a CSV/Parquet file to train on; default: the latest labelled snapshot",
    )
    batch_input: str | None = Field(
        None,
        description="the day's scoring input; `{ds}` becomes the run date; default: bundled data",
    )
    inference_logs: str | None = Field(
        None, description="exported inference logs; default: <ATTRITION_STATE_DIR>/inference-logs"
    )
    log_format: Literal["local", "log-analytics"] = "local"
    retention_days: int = Field(30, ge=1, description="inference-log partitions older are deleted")
    n_trials: int | None = Field(None, ge=2, description="override the training search budget")
    demo_mode: bool = Field(False, description="grant the production approval automatically")
    retry_delay_seconds: float = Field(
        60, gt=0, description="first retry delay of a failed task (doubles, up to 15 minutes)"
    )
    approval_timeout_hours: float = Field(
        24, gt=0, description="then the approval fails; fractions work (0.5 = 30 minutes)"
    )
    approvers: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Airflow user ids allowed to answer the production approval "
        "(comma-separated); empty: anyone who may edit the DAG's HITL details",
    )
    image_repository: str = Field(
        "attrition-serving", description="azure: <acr>.azurecr.io/attrition-serving"
    )
    acr_name: str | None = Field(None, description="azure: build with `az acr build` in this ACR")

    @field_validator("approvers", mode="before")
    @classmethod
    def _split_ids(cls, value: Any) -> Any:
        # Comma-separated in the environment ("alice, bob"), a list when given in code.
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value


class DatabricksSettings(BaseSettings):
    """Where the ``azure`` target runs the jobs/ entrypoints (ATTRITION_DATABRICKS_*)."""

    model_config = SettingsConfigDict(env_prefix="ATTRITION_DATABRICKS_", extra="ignore")

    conn_id: str = "databricks_default"
    jobs_path: str = Field(
        "/Workspace/Shared/attrition-mlops/jobs", description="folder holding jobs/*.py"
    )
    wheel: str = Field(
        "/Volumes/main/attrition/artifacts/attrition_mlops-0.1.0-py3-none-any.whl",
        description="the project wheel the job cluster installs",
    )
    existing_cluster_id: str | None = None
    spark_version: str = "16.4.x-cpu-ml-scala2.12"
    node_type_id: str = "Standard_D4ds_v5"
    num_workers: int = Field(1, ge=0)
    timeout_seconds: int = Field(3 * 3600, ge=60)
    polling_period_seconds: int = Field(30, ge=5)
    # The serving API's pseudonym key for the performance job, as a Databricks secret
    # ("scope/key"): the job cluster gets ATTRITION_SERVING_PSEUDONYM_KEY from it, so the job can
    # match the API's logged predictions to outcomes (docs/performance.md). Only that job gets it.
    pseudonym_key_secret: str | None = Field(
        None,
        pattern=r"^[\w.-]+/[\w.-]+$",
        description="Databricks secret scope/key holding the API's pseudonym key",
    )


@lru_cache
def get_settings() -> PipelineSettings:
    return PipelineSettings()


@lru_cache
def get_training_settings() -> TrainingSettings:
    return TrainingSettings()


@lru_cache
def get_gate_settings() -> GateSettings:
    return GateSettings()


@lru_cache
def get_scoring_settings() -> ScoringSettings:
    return ScoringSettings()


@lru_cache
def get_drift_settings() -> DriftSettings:
    return DriftSettings()


@lru_cache
def get_workflow_settings() -> WorkflowSettings:
    return WorkflowSettings()


@lru_cache
def get_databricks_settings() -> DatabricksSettings:
    return DatabricksSettings()


@lru_cache
def get_performance_settings() -> PerformanceSettings:
    return PerformanceSettings()
