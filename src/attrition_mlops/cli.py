"""``attrition``: operator commands (status, demo). The jobs, rollback included, are in ``jobs/``.

Imports stay inside the commands: MLflow alone takes seconds to import, and ``attrition --help``
or a mistyped flag should answer at once.
"""

from __future__ import annotations

import argparse
import json
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attrition",
        description="Operator commands of the attrition MLOps pipeline. The jobs (validate_data, "
        "train, evaluate, score, drift, rollback) are the scripts in jobs/: "
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
        "--history", type=int, default=10, metavar="N",
        help="latest N history entries per alias, newest first; 0: all (default: %(default)s)",
    )  # fmt: skip
    status_cmd.add_argument(
        "--json", action="store_true",
        help="print the status as JSON (every audit tag, nothing truncated) instead of tables",
    )  # fmt: skip
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
    from attrition_mlops.runner.demo import main as demo_main

    return demo_main(["--n-trials", str(args.n_trials)] if args.n_trials else [])


if __name__ == "__main__":
    raise SystemExit(main())
