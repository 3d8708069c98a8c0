"""Score a data snapshot with a registered model into a dated, partitioned Parquet output.

Runs unchanged as a Databricks ``spark_python_task`` and as a local process. See
``attrition_mlops.scoring.batch`` for the layout and the idempotency, atomicity and resume
guarantees.
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, date, datetime
from pathlib import Path

from attrition_mlops import registry
from attrition_mlops.model.predictor import load_predictor
from attrition_mlops.registry.tracking import configure_mlflow
from attrition_mlops.runner.entrypoint import new_run_key, run_job
from attrition_mlops.scoring.batch import score_snapshot
from attrition_mlops.settings import get_scoring_settings, get_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--input", type=Path, required=True, help="CSV/Parquet file or folder to score"
    )
    parser.add_argument("--output", type=Path, help="output root (default: <state>/predictions)")
    parser.add_argument(
        "--run-date",
        type=date.fromisoformat,
        help="the run_date= partition to write, YYYY-MM-DD (default: today, UTC)",
    )
    parser.add_argument(
        "--model-uri",
        help="model to score with (default: models:/<name>@<ATTRITION_SCORE_MODEL_ALIAS>)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: only when stderr is a terminal)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="native (BLAS/OpenMP) threads while scoring; 0: no cap (default: %(default)s)",
    )
    parser.add_argument("--output-json", type=Path, help="also write the JSON result here")
    parser.add_argument(
        "--run-id", help="named in the manifest and the partition lock (default: Airflow's run id)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def work() -> dict:
        settings, cfg = get_settings(), get_scoring_settings()
        configure_mlflow(settings)
        uri = args.model_uri or f"models:/{settings.model_name}@{cfg.model_alias}"
        name, version = registry.resolve_model_uri(uri)
        return score_snapshot(
            args.input,
            args.output or cfg.output_root or settings.state_dir / "predictions",
            args.run_date or datetime.now(UTC).date(),
            load_predictor(f"models:/{name}/{version}"),
            model_name=name,
            model_version=version,
            batch_rows=cfg.batch_rows,
            max_reject_fraction=cfg.max_reject_fraction,
            progress=args.progress,
            threads=args.threads or None,
            run_id=args.run_id or os.environ.get("AIRFLOW_CTX_DAG_RUN_ID") or new_run_key(),
        ).to_dict()

    return run_job(work, args.output_json)


if __name__ == "__main__":
    raise SystemExit(main())
