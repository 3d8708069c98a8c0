"""``attrition``: operator commands (status, demo, snapshot); the jobs, rollback too, live in
``jobs/``."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

from attrition_mlops.registry.connection import TrackingServerUnreachableError
from attrition_mlops.registry.status import alias_status


def status(history_limit: int = 10) -> dict:
    """Which version holds each alias, with its audit tags and its latest history entries."""
    return alias_status(history_limit)


def snapshot(args: argparse.Namespace) -> int:
    """``snapshot add`` stores a labelled snapshot; ``snapshot list`` shows them, oldest first."""
    from attrition_mlops.data import snapshots
    from attrition_mlops.data.validation import DataValidationError
    from attrition_mlops.settings import get_settings

    root = get_settings().snapshot_dir
    try:
        if args.action == "add":
            source = args.source or str(args.file.resolve())
            added = snapshots.add_snapshot(args.file, args.as_of, source=source, root=root)
            print(json.dumps(added.to_dict(), indent=2))
            if not added.added:
                print(f"as_of={args.as_of} already holds these rows: nothing written")
            return 0
        snapshots.ensure_bundled_snapshot(root)
        print(json.dumps([m.to_dict() for m in snapshots.list_snapshots(root)], indent=2))
        return 0
    except (DataValidationError, snapshots.SnapshotError) as err:
        print(f"attrition snapshot {args.action}: {err}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="attrition", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    status_cmd = sub.add_parser("status", help="show which version holds each alias")
    status_cmd.add_argument(
        "--history", type=int, default=10, metavar="N",
        help="latest N history entries per alias, newest first (0: all)",
    )  # fmt: skip
    sub.add_parser(
        "demo",
        help="the jobs demo without Airflow, as make jobs-demo (make demo: the Airflow lifecycle)",
    )
    snap = sub.add_parser("snapshot", help="labelled snapshots (dated, immutable partitions)")
    actions = snap.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="validate a CSV/Parquet file and store it as as_of")
    add.add_argument("file", type=Path, help="labelled rows (the 35 contract columns)")
    add.add_argument("--as-of", type=date.fromisoformat, required=True, metavar="YYYY-MM-DD")
    add.add_argument("--source", help="where the rows come from (default: the file's path)")
    actions.add_parser("list", help="the stored snapshots' manifests, oldest first")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "status":
        try:
            print(json.dumps(status(args.history), indent=2))
        except TrackingServerUnreachableError as err:
            print(f"attrition status: {err}", file=sys.stderr)
            return 2
        return 0
    if args.command == "snapshot":
        return snapshot(args)
    from attrition_mlops.runner.demo import main as demo_main

    return demo_main([])


if __name__ == "__main__":
    raise SystemExit(main())
