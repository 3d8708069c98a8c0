"""``attrition``: operator commands (status, demo); the jobs, rollback too, live in ``jobs/``."""

from __future__ import annotations

import argparse
import json
import sys

from attrition_mlops.registry.connection import TrackingServerUnreachableError
from attrition_mlops.registry.status import alias_status


def status(history_limit: int = 10) -> dict:
    """Which version holds each alias, with its audit tags and its latest history entries."""
    return alias_status(history_limit)


def main(argv: list[str] | None = None) -> int:
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
    args = parser.parse_args(argv)
    if args.command == "status":
        try:
            print(json.dumps(status(args.history), indent=2))
        except TrackingServerUnreachableError as err:
            print(f"attrition status: {err}", file=sys.stderr)
            return 2
        return 0
    from attrition_mlops.runner.demo import main as demo_main

    return demo_main([])


if __name__ == "__main__":
    raise SystemExit(main())
