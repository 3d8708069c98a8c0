"""Check a window of exported inference logs for drift against the serving model's profile.

Runs unchanged as a Databricks ``spark_python_task`` and as a local process. Prints a JSON
summary whose ``drift_confirmed`` is the signal for the caller (the drift DAG updates the
retraining Asset on it); ``--fail-on-drift`` also makes confirmed drift exit 3. Lines left out
of the check (rejected, replayed, or from a version the registry lacks) are counted in the
summary, never fatal (docs/drift.md).
"""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path

from attrition_mlops import registry
from attrition_mlops.alerts import mlflow_run_url, safe_alert_settings
from attrition_mlops.monitoring.report import ReportContext
from attrition_mlops.monitoring.window import (
    check_stamp,
    check_window,
    log_drift_run,
    read_window,
)
from attrition_mlops.registry.tracking import configure_mlflow
from attrition_mlops.runner.entrypoint import run_job
from attrition_mlops.settings import get_drift_settings, get_settings

EXIT_DRIFT = 3


def window_days(text: str) -> int:
    """``--days``: a whole number of days, at least 1 (0 would be an empty window)."""
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of days, got {text!r}") from None
    if days < 1:
        raise argparse.ArgumentTypeError(f"the window needs at least 1 day, got {days}")
    return days


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--logs",
        type=Path,
        help="folder of exported inference logs (default: <state>/inference-logs)",
    )
    parser.add_argument(
        "--format",
        choices=("local", "log-analytics"),
        default="local",
        help="export layout: local (the API's date=YYYY-MM-DD/*.jsonl) or log-analytics (an "
        "Azure Log Analytics data export of ContainerLogV2) (default: %(default)s)",
    )
    parser.add_argument(
        "--date",
        type=date.fromisoformat,
        help="last day of the window, YYYY-MM-DD (default: yesterday, UTC)",
    )
    parser.add_argument(
        "--days",
        type=window_days,
        default=1,
        help="window length in days, ending on --date (>= 1; default: %(default)s)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="report folder (default: <state>/drift/<date>/checked-<UTC time>, one per check)",
    )
    parser.add_argument(
        "--fail-on-drift",
        action="store_true",
        help=f"exit {EXIT_DRIFT} when drift is confirmed (the summary is printed first)",
    )
    parser.add_argument(
        "--log-to-mlflow", action="store_true", help="log the summary and reports as an MLflow run"
    )
    parser.add_argument(
        "--airflow-run-url",
        help="the Airflow run that started this check, linked from the reports (the drift DAG "
        "passes it)",
    )
    parser.add_argument("--output-json", type=Path, help="also write the JSON summary here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    summary: dict = {}

    def work() -> dict:
        settings = get_settings()
        configure_mlflow(settings)
        last = args.date or datetime.now(UTC).date() - timedelta(days=1)
        first = last - timedelta(days=args.days - 1)
        rejected: list[str] = []
        duplicates: list[str] = []
        logs = args.logs or settings.state_dir / "inference-logs"
        frame = read_window(logs, first, last, args.format, rejected, duplicates)
        checked_at = datetime.now(UTC).isoformat(timespec="seconds")
        # One folder per check: a second check of the night keeps the first one's report,
        # which its alert links to.
        default = (
            settings.state_dir / "drift" / last.isoformat() / f"checked-{check_stamp(checked_at)}"
        )
        out = args.output or default
        loader = partial(registry.find_reference_profile, settings.model_name)
        context = ReportContext(
            model_name=settings.model_name,
            window=(first.isoformat(), last.isoformat()),
            checked_at=checked_at,
            runbook_url=safe_alert_settings().runbook_url,
            links={"Airflow run": args.airflow_run_url} if args.airflow_run_url else {},
        )
        summary.update(
            check_window(
                frame,
                loader,
                get_drift_settings(),
                out,
                rejected=rejected,
                duplicates=duplicates,
                context=context,
            )
        )
        summary["report_dir"] = str(out)
        if args.log_to_mlflow:
            experiment = settings.experiment_name + "-monitoring"
            summary.update(log_drift_run(summary, out, experiment, mlflow_run_url))
        return summary

    code = run_job(work, args.output_json)
    if code == 0 and args.fail_on_drift and summary.get("drift_confirmed"):
        return EXIT_DRIFT
    return code


if __name__ == "__main__":
    raise SystemExit(main())
