"""Evaluation job logic: challenger vs champion on the frozen holdout, then promote or not.

The decision report (JSON) and a plot (ΔAUC bootstrap histogram, both ROC curves) are logged to
an MLflow evaluation run; the decision is tagged on the challenger version; a promotion moves
``champion`` through :func:`registry.move_alias` (compare-and-set, audited).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import mlflow
import numpy as np

from attrition_mlops import registry
from attrition_mlops.data import contract
from attrition_mlops.data.dataset import labels
from attrition_mlops.data.split import HoldoutError, load_holdout
from attrition_mlops.gate.bootstrap import paired_bootstrap_auc
from attrition_mlops.gate.evidence import (  # EvaluationError: re-exported, jobs catch it here
    EvaluationError,
    find_window,
    window_bootstrap,
    window_report,
)
from attrition_mlops.gate.report import plot_decision
from attrition_mlops.gate.rules import decide_on_window, power_statement, slice_metrics
from attrition_mlops.model.predictor import load_predictor
from attrition_mlops.registry.tracking import actor, configure_mlflow
from attrition_mlops.settings import GateSettings, PipelineSettings, TrainingSettings

log = logging.getLogger(__name__)


def _versions(settings: PipelineSettings, challenger: str | None) -> tuple[str, str | None]:
    name = settings.model_name
    challenger = str(challenger or registry.get_alias_version(name, registry.CHALLENGER) or "")
    if not challenger:
        raise EvaluationError(f"{name} has no '{registry.CHALLENGER}' alias: train one first")
    return challenger, registry.get_alias_version(name, registry.CHAMPION)


def evaluate_challenger(
    settings: PipelineSettings,
    gate: GateSettings,
    training: TrainingSettings,
    challenger_version: str | None = None,
) -> dict[str, Any]:
    """Run the gate; returns the decision report (also logged to MLflow)."""
    configure_mlflow(settings)
    loaded = load_holdout(settings.holdout_dir)
    if loaded is None:
        raise HoldoutError(f"no frozen holdout in {settings.holdout_dir}: run training first")
    holdout, meta = loaded
    name = settings.model_name
    challenger, champion = _versions(settings, challenger_version)
    trained_on = registry.get_version(name, challenger).tags.get("holdout_sha256")
    if trained_on != meta.sha256:
        raise EvaluationError(
            f"challenger v{challenger} was split against holdout {trained_on}, not the frozen "
            f"{meta.sha256}: it may have trained on these rows; retrain it first"
        )
    y = labels(holdout)
    X = holdout[list(contract.INPUT_COLUMNS)]
    predictors = {"challenger": load_predictor(f"models:/{name}/{challenger}")}
    if champion is not None and champion != challenger:
        predictors["champion"] = load_predictor(f"models:/{name}/{champion}")
    scores = {role: p.predict_proba(X) for role, p in predictors.items()}
    # Cold start: pair the challenger with itself, which still yields its own AUC interval.
    boot = paired_bootstrap_auc(
        y,
        scores.get("champion", scores["challenger"]),
        scores["challenger"],
        n_boot=gate.n_boot,
        seed=gate.seed,
    )
    evidence = find_window(settings, challenger, champion)
    recent = window_bootstrap(evidence, predictors, gate)
    decision = decide_on_window(
        challenger_version=challenger,
        champion_version=champion,
        window=evidence.window,
        window_boot=recent,
        holdout_boot=boot if "champion" in scores else None,
        holdout_challenger_auc=boot.auc_challenger,
        gate=gate,
    )
    report = _report(settings, gate, meta, challenger, champion, boot, decision, scores, y)
    report["evidence_window"] = window_report(evidence, recent, gate)
    report["slices"] = slice_metrics(holdout, y, scores, training.decision_threshold)
    return _log_and_apply(settings, report, boot, y, scores)


def _report(settings, gate, meta, challenger, champion, boot, decision, scores, y) -> dict:
    paired = "champion" in scores
    return {
        "model_name": settings.model_name,
        "challenger_version": challenger,
        "champion_version": champion,
        "decision": "promoted" if decision.promote else "rejected",
        "rule": decision.rule,
        "reason": decision.reason,
        "holdout": {"sha256": meta.sha256, "n": boot.n, "positives": boot.n_pos},
        "auc_challenger": boot.auc_challenger,
        "auc_champion": boot.auc_champion if paired else None,
        "delta_auc": boot.delta_point if paired else None,
        "delta_auc_ci95": list(boot.delta_ci(0.95)) if paired else None,
        "challenger_auc_ci95": [
            float(v) for v in np.percentile(boot.auc_challenger_boot, [2.5, 97.5])
        ],
        "win_rate": boot.win_rate(gate.tie_tolerance) if paired else None,
        "tie_rate": boot.tie_rate(gate.tie_tolerance) if paired else None,
        "gate": gate.model_dump(),
        "n_boot": boot.n_boot,
        "power": power_statement(boot, gate),
        "evaluated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _log_and_apply(settings, report, boot, y, scores) -> dict[str, Any]:
    name, challenger = settings.model_name, report["challenger_version"]
    with mlflow.start_run(run_name=f"evaluate-v{challenger}") as run:
        mlflow.set_tags(
            {
                "challenger_version": challenger,
                "champion_version": report["champion_version"] or "none",
                "decision": report["decision"],
                "holdout_sha256": report["holdout"]["sha256"],
            }
        )
        window = report.get("evidence_window") or {}
        mlflow.log_metrics(
            {
                k: report[k]
                for k in ("auc_challenger", "auc_champion", "delta_auc", "win_rate")
                if report[k] is not None
            }
            | {
                f"window_{k}": window[k]
                for k in ("auc_challenger", "auc_champion", "delta_auc", "win_rate")
                if window.get(k) is not None
            }
        )
        report["evaluation_run_id"] = run.info.run_id
        mlflow.log_figure(plot_decision(boot, y, scores, report), "decision.png")
        if report["decision"] == "promoted":
            try:
                move = registry.move_alias(
                    name,
                    registry.CHAMPION,
                    challenger,
                    expected=report["champion_version"],
                    actor=actor(),
                    reason=report["reason"],
                    evaluation_run_id=run.info.run_id,
                )
            except registry.ConcurrentAliasMoveError as exc:
                # Keep the evidence of the lost race, then fail the job with the clear message.
                report |= {"decision": "aborted", "reason": str(exc)}
                mlflow.set_tag("decision", "aborted")
                mlflow.log_dict(report, "decision_report.json")
                raise
            report["alias_move"] = move.__dict__
        mlflow.log_dict(report, "decision_report.json")
    registry.set_version_tags(
        name,
        challenger,
        {
            "gate.decision": report["decision"],
            "gate.reason": report["reason"],
            "gate.evaluation_run_id": run.info.run_id,
            "gate.evaluated_at": report["evaluated_at"],
        },
    )
    return report
