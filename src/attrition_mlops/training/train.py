"""Training: hyperparameter search on the train part only, then register a challenger.

Model selection (Optuna TPE over several model families, stratified k-fold CV) never sees the
frozen holdout; the holdout AUC is computed once for the final model and only reported. Each
trial is a nested MLflow run under the training run. A ``run_key`` (the Airflow run, or any
caller-chosen id) makes the job idempotent: a retry of the same key returns the version the
first attempt registered, or registers the model the first attempt logged, never a duplicate.
The run records its snapshot as its input, and a snapshot the champion was trained on is not
trained again (``lineage``).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import optuna
import pandas as pd
from mlflow.models import infer_signature
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from threadpoolctl import threadpool_limits

from attrition_mlops import registry
from attrition_mlops.data import contract
from attrition_mlops.data.dataset import Snapshot, labels
from attrition_mlops.data.evidence import split_window
from attrition_mlops.data.snapshots import BUNDLED_AS_OF, SnapshotManifest
from attrition_mlops.data.split import split_snapshot
from attrition_mlops.model.features import build_classifier, suggest_params
from attrition_mlops.model.outliers import calibrate_outlier_detector
from attrition_mlops.model.predictor import AttritionPredictor, AttritionPyfunc, write_artifacts
from attrition_mlops.model.profile import build_reference_profile
from attrition_mlops.registry.tracking import actor, configure_mlflow, git_commit
from attrition_mlops.settings import PipelineSettings, TrainingSettings
from attrition_mlops.training.lineage import (
    SNAPSHOT_TAGS,
    TrainingSkipped,
    log_snapshot_input,
    snapshot_tags,
    unchanged_snapshot,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    model_name: str
    version: str
    run_id: str
    run_key: str
    reused: bool
    family: str
    cv_auc: float
    holdout_auc: float
    holdout_sha256: str
    data_sha256: str
    snapshot_as_of: str | None = None
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def search_hyperparameters(train: pd.DataFrame, cfg: TrainingSettings) -> optuna.Study:
    """TPE search over model families; every trial is a nested MLflow run."""
    X, y = train[list(contract.INPUT_COLUMNS)], labels(train)
    folds = StratifiedKFold(cfg.cv_folds, shuffle=True, random_state=cfg.seed)

    def objective(trial: optuna.Trial) -> float:
        family = trial.suggest_categorical("family", list(cfg.families))
        params = suggest_params(trial, family)
        with mlflow.start_run(run_name=f"trial-{trial.number}-{family}", nested=True):
            scores = cross_val_score(
                build_classifier(family, params, cfg.seed), X, y, cv=folds, scoring="roc_auc"
            )
            mlflow.log_params({"family": family, **params})
            mlflow.log_metrics({"cv_auc": scores.mean(), "cv_auc_std": scores.std()})
        return float(scores.mean())

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=cfg.seed)
    )
    study.optimize(objective, n_trials=cfg.n_trials)
    return study


def _fit_final(train: pd.DataFrame, study: optuna.Study, cfg: TrainingSettings):
    params = dict(study.best_params)
    family = params.pop("family")
    X = train[list(contract.INPUT_COLUMNS)]
    classifier = build_classifier(family, params, cfg.seed).fit(X, labels(train))
    detector = calibrate_outlier_detector(X, fpr=cfg.outlier_fpr, seed=cfg.seed)
    return family, params, AttritionPredictor(classifier, detector, cfg.decision_threshold)


def _log_model(predictor: AttritionPredictor, profile: dict, example: pd.DataFrame) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = write_artifacts(Path(tmp), predictor, profile)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=AttritionPyfunc(),
            artifacts=artifacts,
            signature=infer_signature(example, predictor.predict(example)),
            input_example=example,
            # Explicit requirements: inference would load the model in a subprocess.
            pip_requirements=_requirements(),
        )
    return info.model_uri


def _requirements() -> list[str]:
    from importlib.metadata import version

    packages = ("attrition-mlops", "mlflow", "scikit-learn", "pandas", "numpy", "scipy", "joblib")
    return [f"{name}=={version(name)}" for name in packages]


def _finished_run_with_model(run_key: str) -> mlflow.entities.Run | None:
    runs = mlflow.search_runs(
        filter_string=(
            f"tags.{registry.RUN_KEY_TAG} = '{run_key}' and attributes.status = 'FINISHED'"
        ),
        output_format="list",
    )
    runs = [r for r in runs if "model_uri" in r.data.tags]
    return runs[0] if runs else None


def _result_from_version(version, run_key: str, reused: bool) -> TrainResult:
    t = version.tags
    return TrainResult(
        model_name=version.name,
        version=str(version.version),
        run_id=t["run_id"],
        run_key=run_key,
        reused=reused,
        family=t["family"],
        cv_auc=float(t["cv_auc"]),
        holdout_auc=float(t["holdout_auc"]),
        holdout_sha256=t["holdout_sha256"],
        data_sha256=t["data_sha256"],
        snapshot_as_of=t.get("snapshot_as_of"),
    )


def train_model(
    snapshot: Snapshot,
    *,
    run_key: str,
    settings: PipelineSettings,
    cfg: TrainingSettings,
    manifest: SnapshotManifest | None = None,
    force: bool = False,
) -> TrainResult | TrainingSkipped:
    """Train, log and register a challenger for ``snapshot`` (idempotent per ``run_key``).

    ``manifest`` names the labelled snapshot partition the rows came from (lineage). Unless
    ``force``, a snapshot the champion was trained on is skipped (a TrainingSkipped result).
    """
    configure_mlflow(settings)
    name = settings.model_name
    version = registry.find_version_by_run_key(name, run_key)
    reused = version is not None
    if version is None:
        run = _finished_run_with_model(run_key)
        if run is None:
            skipped = None if force else unchanged_snapshot(name, snapshot, manifest)
            if skipped is not None:
                return skipped
            run = _train_run(snapshot, run_key, settings, cfg, manifest)
        tags = {k: run.data.tags[k] for k in _VERSION_TAGS}
        tags |= {k: run.data.tags[k] for k in SNAPSHOT_TAGS if k in run.data.tags}  # --data: none
        tags |= {k: run.data.tags[k] for k in WINDOW_TAGS if k in run.data.tags}
        version, _ = registry.register_version(
            run.data.tags["model_uri"],
            name,
            run_key=run_key,
            tags=tags | {"run_id": run.info.run_id},
        )
    else:
        log.info("run key %s already registered version %s: reusing it", run_key, version.version)
    # A retry also finishes what its first attempt may have left undone: the alias move.
    if not registry.was_moved_to(name, str(version.version), registry.CHALLENGER):
        registry.move_alias(
            name,
            registry.CHALLENGER,
            str(version.version),
            expected=registry.get_alias_version(name, registry.CHALLENGER),
            actor=actor(),
            reason=f"trained by run {version.tags['run_id']}",
        )
    return _result_from_version(version, run_key, reused=reused)


WINDOW_TAGS = ("window_as_of", "window_sha256")
_VERSION_TAGS = (
    "family",
    "cv_auc",
    "holdout_auc",
    "holdout_sha256",
    "data_sha256",
    "git_commit",
    "trained_at",
)


def _train_run(snapshot: Snapshot, run_key: str, settings: PipelineSettings, cfg, manifest):
    train, holdout, meta = split_snapshot(
        snapshot.frame,
        settings.holdout_dir,
        fraction=cfg.holdout_fraction,
        seed=cfg.seed,
        source_sha256=snapshot.sha256,
    )
    tags = {
        registry.RUN_KEY_TAG: run_key,
        **snapshot_tags(snapshot, manifest),
        "holdout_sha256": meta.sha256,
        "git_commit": git_commit(),
    }
    if manifest is not None and manifest.as_of != BUNDLED_AS_OF.isoformat():
        # A new snapshot: hold out the gate's recent evidence window before anything trains.
        train, window, window_meta = split_window(
            train,
            settings.evidence_dir,
            as_of=manifest.as_of,
            snapshot_sha256=manifest.sha256,
            fraction=cfg.window_fraction,
            seed=cfg.seed,
        )
        tags |= {"window_as_of": window_meta.as_of, "window_sha256": window_meta.sha256}
        log.info("evidence window as_of=%s: %d rows held out", manifest.as_of, len(window))
    with (
        mlflow.start_run(run_name=f"train-{run_key}", tags=tags) as run,
        threadpool_limits(cfg.threads),
    ):
        log_snapshot_input(snapshot, manifest)
        mlflow.log_params({"n_train": len(train), "n_holdout": len(holdout), **_cfg_params(cfg)})
        study = search_hyperparameters(train, cfg)
        family, params, predictor = _fit_final(train, study, cfg)
        X_hold = holdout[list(contract.INPUT_COLUMNS)]
        holdout_auc = float(roc_auc_score(labels(holdout), predictor.predict_proba(X_hold)))
        outlier_rate = float(predictor.detector.is_outlier(X_hold).mean())
        mlflow.log_params({f"best.{k}": v for k, v in {"family": family, **params}.items()})
        mlflow.log_metrics(
            {
                "cv_auc": study.best_value,
                "holdout_auc": holdout_auc,
                "outlier_threshold": predictor.detector.threshold,
                "outlier_rate_holdout": outlier_rate,
            },
        )
        profile = build_reference_profile(
            train[list(contract.INPUT_COLUMNS)], source_sha256=snapshot.sha256, seed=cfg.seed
        )
        example = train[list(contract.INPUT_COLUMNS)].head(1)
        model_uri = _log_model(predictor, profile, example)
        mlflow.set_tags(
            {
                "family": family,
                "cv_auc": f"{study.best_value:.6f}",
                "holdout_auc": f"{holdout_auc:.6f}",
                "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "model_uri": model_uri,
            },
        )
    return mlflow.get_run(run.info.run_id)


def _cfg_params(cfg: TrainingSettings) -> dict[str, Any]:
    return {
        "seed": cfg.seed,
        "cv_folds": cfg.cv_folds,
        "n_trials": cfg.n_trials,
        "families": ",".join(cfg.families),
        "outlier_fpr": cfg.outlier_fpr,
        "decision_threshold": cfg.decision_threshold,
        "threads": cfg.threads,
    }
