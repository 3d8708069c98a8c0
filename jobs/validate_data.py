"""Validate a data snapshot against the feature contract (Databricks spark_python_task or local).

Checks a CSV/Parquet file (``--data``), or a stored labelled snapshot: the one named by
``--snapshot-as-of``, else the latest (the bundled data on first use), its data file verified
against its manifest's sha256. Exit 0 and one JSON line (path, sha256, rows, label_counts, and
the snapshot's as_of) on stdout when the data is good; exit 2 with every problem found on stderr
when it is not.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

from attrition_mlops.data.dataset import load_snapshot
from attrition_mlops.data.snapshots import SnapshotError, select_snapshot
from attrition_mlops.data.validation import DataValidationError
from attrition_mlops.settings import get_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = parser.add_mutually_exclusive_group()
    data.add_argument("--data", type=Path, help="CSV or Parquet file (default: latest snapshot)")
    data.add_argument(
        "--snapshot-as-of",
        type=date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="a stored labelled snapshot",
    )
    parser.add_argument("--output-json", type=Path, help="also write the summary JSON here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.data:
            summary = load_snapshot(args.data).summary()
        else:
            chosen = select_snapshot(get_settings().snapshot_dir, args.snapshot_as_of)
            summary = chosen.snapshot.summary() | {"snapshot_as_of": chosen.manifest.as_of}
    except DataValidationError as err:
        print(f"data validation failed:\n{err}", file=sys.stderr)
        return 2
    except SnapshotError as err:
        print(f"{type(err).__name__}: {err}", file=sys.stderr)
        return 2
    line = json.dumps(summary)
    print(line)
    if args.output_json:
        args.output_json.parent.mkdir(parents=True, exist_ok=True)
        args.output_json.write_text(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
