"""Champion vs challenger on the frozen holdout (paired bootstrap ΔAUC); promote or not.

Runs unchanged as a Databricks ``spark_python_task`` and as a local process.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from attrition_mlops.gate.evaluate import evaluate_challenger
from attrition_mlops.gate.report import format_decision
from attrition_mlops.runner.entrypoint import run_job
from attrition_mlops.settings import get_gate_settings, get_settings, get_training_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--challenger-version", help="default: the 'challenger' alias")
    parser.add_argument("--output-json", type=Path, help="also write the decision report here")
    parser.add_argument("--quiet", action="store_true", help="print only the JSON report")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def work() -> dict:
        report = evaluate_challenger(
            get_settings(), get_gate_settings(), get_training_settings(), args.challenger_version
        )
        if not args.quiet:
            print(format_decision(report))
        return report

    return run_job(work, args.output_json)


if __name__ == "__main__":
    raise SystemExit(main())
