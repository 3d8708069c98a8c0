"""Validate a data snapshot against the feature contract (Databricks spark_python_task or local).

Exit 0 and one JSON line (path, sha256, rows, label_counts) on stdout when the data is good;
exit 2 with every problem found on stderr when it is not.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from attrition_mlops.data.dataset import load_snapshot
from attrition_mlops.data.validation import DataValidationError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="CSV or Parquet file (default: bundled data)")
    parser.add_argument("--output-json", type=Path, help="also write the summary JSON here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        snapshot = load_snapshot(args.data)
    except DataValidationError as err:
        print(f"data validation failed:\n{err}", file=sys.stderr)
        return 2
    line = json.dumps(snapshot.summary())
    print(line)
    if args.output_json:
        args.output_json.parent.mkdir(parents=True, exist_ok=True)
        args.output_json.write_text(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
