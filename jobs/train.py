"""Train a challenger for employee_attrition and register it (alias ``challenger``).

Trains on the latest labelled snapshot (the bundled data on first use), the one named by
``--snapshot-as-of``, or any CSV/Parquet file given with ``--data``. A snapshot the champion was
trained on is skipped (exit 0, ``"skipped": true`` and the reason) unless ``--force``.
Runs unchanged as a Databricks ``spark_python_task`` and as a local process.
"""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from attrition_mlops.data.dataset import load_snapshot
from attrition_mlops.data.snapshots import select_snapshot
from attrition_mlops.runner.entrypoint import new_run_key, run_job
from attrition_mlops.settings import get_settings, get_training_settings
from attrition_mlops.training.train import train_model


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = parser.add_mutually_exclusive_group()
    data.add_argument("--data", type=Path, help="a CSV/Parquet file instead of a stored snapshot")
    data.add_argument(
        "--snapshot-as-of",
        type=date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="the labelled snapshot to train on (default: the latest)",
    )
    parser.add_argument("--force", action="store_true", help="train even on unchanged data")
    parser.add_argument("--run-key", help="idempotency key; a retry with the same key reuses it")
    parser.add_argument("--n-trials", type=int, help="override ATTRITION_TRAIN_N_TRIALS")
    parser.add_argument("--output-json", type=Path, help="also write the JSON result here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def work() -> dict:
        settings, cfg = get_settings(), get_training_settings()
        if args.n_trials:
            cfg = cfg.model_copy(update={"n_trials": args.n_trials})
        if args.data:
            snapshot, manifest = load_snapshot(args.data), None
        else:
            chosen = select_snapshot(settings.snapshot_dir, args.snapshot_as_of)
            snapshot, manifest = chosen.snapshot, chosen.manifest
        result = train_model(
            snapshot,
            run_key=args.run_key or new_run_key(),
            settings=settings,
            cfg=cfg,
            manifest=manifest,
            force=args.force,
        )
        return result.to_dict()

    return run_job(work, args.output_json)


if __name__ == "__main__":
    raise SystemExit(main())
