"""``attrition``: operator commands (status, demo, snapshot). The jobs, rollback included, are in
``jobs/``.

Imports stay inside the commands: MLflow alone takes seconds to import, and ``attrition --help``
or a mistyped flag should answer at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attrition",
        description="Operator commands of the attrition MLOps pipeline. The jobs (validate_data, "
        "train, evaluate, score, drift, rollback, add_snapshot, add_outcomes, performance) are "
        "the scripts in jobs/: "
        "uv run python jobs/<job>.py --help; make help lists the make targets.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    status_cmd = sub.add_parser(
        "status",
        help="which model version holds each alias, who moved it, and the alias history",
        description="Which version holds each registry alias (champion, challenger, staging, "
        "production and their previous-* rollback targets), its training time and holdout AUC, "
        "who moved it, when and why, then each alias's latest history entries, newest first. "
        "Reads ATTRITION_TRACKING_URI / ATTRITION_REGISTRY_URI (default: the local store in "
        "ATTRITION_STATE_DIR); exit code 2 if the tracking server cannot be reached.",
    )
    status_cmd.add_argument(
        "--history",
        type=int,
        default=10,
        metavar="N",
        help="latest N history entries per alias, newest first; 0: all (default: %(default)s)",
    )
    status_cmd.add_argument(
        "--json",
        action="store_true",
        help="print the status as JSON (every audit tag, nothing truncated) instead of tables",
    )
    demo_cmd = sub.add_parser(
        "demo",
        help="the jobs demo without Airflow, as make jobs-demo (make demo: the Airflow lifecycle)",
        description="Validate the bundled data, train a challenger, run the champion/challenger "
        "gate and batch-score, each as the real job process against the local MLflow store in "
        "ATTRITION_STATE_DIR (default .state/), without Airflow (make jobs-demo). The Airflow "
        "lifecycle is make demo.",
    )
    demo_cmd.add_argument(
        "--n-trials", type=int, metavar="N", help="training search budget (default: the setting)"
    )
    snap = sub.add_parser(
        "snapshot",
        help="labelled snapshots (dated, immutable partitions)",
        description="Labelled snapshots: rows with their Attrition outcome, stored as dated, "
        "immutable partitions as_of=YYYY-MM-DD under ATTRITION_STATE_DIR/snapshots "
        "(docs/data.md). Training takes the latest.",
    )
    actions = snap.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add",
        help="validate a CSV/Parquet file and store it as as_of",
        description="Validate the file against the feature contract and store it as the "
        "partition as_of; identical rows again are a no-op, different rows under a stored date "
        "are refused (exit 2).",
    )
    add.add_argument("file", type=Path, help="labelled rows (the 35 contract columns)")
    add.add_argument(
        "--as-of",
        type=date.fromisoformat,
        required=True,
        metavar="YYYY-MM-DD",
        help="the snapshot's date: its partition as_of=YYYY-MM-DD",
    )
    add.add_argument("--source", help="where the rows come from (default: the file's path)")
    actions.add_parser(
        "list",
        help="the stored snapshots' manifests, oldest first",
        description="Print every stored snapshot's manifest (as_of, sha256, rows, positives, "
        "source) as JSON, oldest first; the bundled data set is the first.",
    )
    return parser


def status(history_limit: int = 10, as_json: bool = False) -> str:
    """The text ``attrition status`` prints (tables, or JSON with ``as_json``)."""
    from attrition_mlops.registry.connection import display_uri
    from attrition_mlops.registry.status import alias_status, format_status
    from attrition_mlops.settings import get_settings

    shown = alias_status(history_limit)
    if as_json:
        return json.dumps(shown, indent=2)
    settings = get_settings()
    where = display_uri(settings.registry_uri or settings.resolved_tracking_uri)
    return format_status(shown, settings.model_name, where)


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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "status":
        from attrition_mlops.registry.connection import TrackingServerUnreachableError

        try:
            print(status(args.history, args.json))
        except TrackingServerUnreachableError as err:
            print(f"attrition status: {err}", file=sys.stderr)
            return 2
        return 0
    if args.command == "snapshot":
        return snapshot(args)
    from attrition_mlops.runner.demo import main as demo_main

    return demo_main(["--n-trials", str(args.n_trials)] if args.n_trials else [])


if __name__ == "__main__":
    raise SystemExit(main())
