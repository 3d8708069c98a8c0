"""Judge each model version on the outcomes that have arrived: realized AUC and calibration per
monthly prediction cohort, and the label-free estimate for cohorts still waiting for outcomes.

Runs unchanged as a Databricks ``spark_python_task`` and as a local process. Prints a JSON
summary whose per-version ``status`` (``ok``, ``degraded``, ``insufficient_data``) and
``estimate_dropped`` are the signals for the caller (the performance DAG alerts on them and
tracks them as incidents): the batch scorer's predictions under ``versions``, the online API's
logged predictions, judged apart, under ``online`` (with the API's pseudonym key,
ATTRITION_SERVING_PSEUDONYM_KEY; without it ``online.reason`` says why they were not judged).
docs/performance.md explains the rules and the report.
"""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from pathlib import Path

from attrition_mlops.monitoring.online_performance import OnlineSource
from attrition_mlops.monitoring.performance_check import check_performance, log_performance_run
from attrition_mlops.registry.tracking import configure_mlflow
from attrition_mlops.runner.entrypoint import run_job
from attrition_mlops.serving.settings import get_serving_settings
from attrition_mlops.settings import get_performance_settings, get_scoring_settings, get_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--as-of",
        type=date.fromisoformat,
        help="judge with what was known that day (default: today)",
    )
    parser.add_argument("--predictions", type=Path, help="default: <state>/predictions")
    parser.add_argument("--outcomes", type=Path, help="default: <state>/outcomes")
    parser.add_argument(
        "--logs",
        type=Path,
        help="the online API's exported inference logs, as the drift job reads them "
        "(default: <state>/inference-logs)",
    )
    parser.add_argument(
        "--log-format",
        choices=("local", "log-analytics"),
        default="local",
        help="export layout of --logs, as the drift job's --format (default: %(default)s)",
    )
    parser.add_argument(
        "--ledger",
        type=Path,
        help="the prediction ledger: the slim copy of the logs kept for the outcomes' horizon "
        "(default: ATTRITION_PERFORMANCE_LEDGER_DIR or <state>/prediction-ledger)",
    )
    parser.add_argument(
        "--output", type=Path, help="report folder (default: <state>/performance/<as-of>)"
    )
    parser.add_argument(
        "--log-to-mlflow", action="store_true", help="log the summary and report as an MLflow run"
    )
    parser.add_argument("--output-json", type=Path, help="also write the JSON summary here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def work() -> dict:
        settings, perf = get_settings(), get_performance_settings()
        as_of = args.as_of or datetime.now(UTC).date()
        predictions = args.predictions or (
            get_scoring_settings().output_root or settings.state_dir / "predictions"
        )
        outcomes = args.outcomes or perf.outcomes_dir or settings.state_dir / "outcomes"
        out = args.output or settings.state_dir / "performance" / as_of.isoformat()
        online = OnlineSource(
            logs=args.logs or settings.state_dir / "inference-logs",
            log_format=args.log_format,
            key=get_serving_settings().pseudonym_key,  # the API's key: a SecretStr, never shown
            ledger=args.ledger or perf.resolved_ledger_dir(settings.state_dir),
        )
        summary = check_performance(Path(predictions), Path(outcomes), as_of, perf, out, online)
        if args.log_to_mlflow:
            configure_mlflow(settings)
            summary.update(
                log_performance_run(summary, out, settings.experiment_name + "-monitoring")
            )
        return summary

    return run_job(work, args.output_json)


if __name__ == "__main__":
    raise SystemExit(main())
