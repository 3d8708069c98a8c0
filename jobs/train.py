"""Train a challenger for employee_attrition and register it (alias ``challenger``).

Runs unchanged as a Databricks ``spark_python_task`` and as a local process.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from attrition_mlops.data.dataset import load_snapshot
from attrition_mlops.runner.entrypoint import new_run_key, run_job
from attrition_mlops.settings import get_settings, get_training_settings
from attrition_mlops.training.train import train_model


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="snapshot CSV/Parquet (default: bundled data)")
    parser.add_argument("--run-key", help="idempotency key; a retry with the same key reuses it")
    parser.add_argument("--n-trials", type=int, help="override ATTRITION_TRAIN_N_TRIALS")
    parser.add_argument("--output-json", type=Path, help="also write the JSON result here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def work() -> dict:
        cfg = get_training_settings()
        if args.n_trials:
            cfg = cfg.model_copy(update={"n_trials": args.n_trials})
        snapshot = load_snapshot(args.data)
        run_key = args.run_key or new_run_key()
        return train_model(snapshot, run_key=run_key, settings=get_settings(), cfg=cfg).to_dict()

    return run_job(work, args.output_json)


if __name__ == "__main__":
    raise SystemExit(main())
