"""Add a labelled snapshot: validate a CSV/Parquet file and store it as the partition ``as_of``.

Exit 0 and one JSON line (the manifest, ``added``) when it is stored; when the date already
holds exactly these rows nothing is written and the result says ``"skipped": true``. Exit 2 with
every problem on stderr when the rows break the contract or the date holds different rows.
Runs unchanged as a Databricks ``spark_python_task`` and as a local process.
"""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from attrition_mlops.data.snapshots import add_snapshot
from attrition_mlops.runner.entrypoint import run_job
from attrition_mlops.settings import get_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, help="labelled rows (the 35 contract columns)")
    parser.add_argument(
        "--as-of",
        type=date.fromisoformat,
        required=True,
        metavar="YYYY-MM-DD",
        help="the snapshot's date: its partition as_of=YYYY-MM-DD",
    )
    parser.add_argument("--source", help="where the rows come from (default: the file's path)")
    parser.add_argument("--output-json", type=Path, help="also write the JSON result here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def work() -> dict:
        source = args.source or str(args.file.resolve())
        result = add_snapshot(
            args.file, args.as_of, source=source, root=get_settings().snapshot_dir
        )
        out = result.to_dict()
        if not result.added:
            out |= {"skipped": True, "reason": f"as_of={args.as_of} already holds these rows"}
        return out

    return run_job(work, args.output_json)


if __name__ == "__main__":
    raise SystemExit(main())
