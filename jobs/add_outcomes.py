"""Add a delivery of realized outcomes: validate a CSV/Parquet file and store its valid rows as a
part of the partition ``arrived=YYYY-MM-DD`` (rejected rows beside it, with their reasons).

Exit 0 and one JSON line (rows accepted and rejected, the part written) when at least one row is
valid; re-adding the same file on the same day rewrites the same part (no duplicates). Exit 2
with the problems on stderr when the columns are wrong or no row is valid. The format and rules:
docs/performance.md. Runs unchanged as a Databricks ``spark_python_task`` and locally.
"""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from pathlib import Path

from attrition_mlops.data.outcomes import read_outcome_file, write_outcomes
from attrition_mlops.runner.entrypoint import run_job
from attrition_mlops.settings import get_performance_settings, get_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "file", type=Path, help="outcome rows: EmployeeNumber, observed_on, left, horizon"
    )
    parser.add_argument(
        "--arrived", type=date.fromisoformat, help="the delivery's day (default: today, UTC)"
    )
    parser.add_argument(
        "--outcomes", type=Path, help="the outcomes root (default: <state>/outcomes)"
    )
    parser.add_argument(
        "--simulated", action="store_true", help="mark every row SIMULATED (the simulator's files)"
    )
    parser.add_argument("--output-json", type=Path, help="also write the JSON result here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def work() -> dict:
        root = args.outcomes or get_performance_settings().outcomes_dir
        root = root or get_settings().state_dir / "outcomes"
        arrived = args.arrived or datetime.now(UTC).date()
        delivery = write_outcomes(
            read_outcome_file(args.file), Path(root), arrived, simulated=args.simulated
        )
        return {"file": str(args.file), **delivery.to_dict()}

    return run_job(work, args.output_json)


if __name__ == "__main__":
    raise SystemExit(main())
