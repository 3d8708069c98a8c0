"""``attrition``: small operator commands (status, rollback); the jobs live in ``jobs/``."""

from __future__ import annotations

import argparse
import json
import sys

from attrition_mlops import registry
from attrition_mlops.mlflow_connection import TrackingServerUnreachableError, reaching
from attrition_mlops.settings import get_settings

ALIASES = (
    registry.CHAMPION,
    registry.previous_alias(registry.CHAMPION),
    registry.CHALLENGER,
    registry.STAGING,
    registry.PRODUCTION,
)


def status(history_limit: int = 10) -> dict:
    """Which version holds each alias, with its audit tags and its latest history entries."""
    from attrition_mlops.tracking import configure_mlflow

    settings = get_settings()
    configure_mlflow(settings)
    uri = settings.registry_uri or settings.resolved_tracking_uri
    out = {}
    with reaching(uri):
        histories = registry.alias_histories(settings.model_name)
        for alias in dict.fromkeys([*ALIASES, *histories]):
            version = registry.get_alias_version(settings.model_name, alias)
            history = histories.get(alias, [])
            if version is None and not history:
                continue
            out[alias] = {"version": version}
            if version is not None:
                tags = registry.get_version(settings.model_name, version).tags
                out[alias] |= {
                    "holdout_auc": tags.get("holdout_auc"),
                    **{k: v for k, v in tags.items() if k.startswith(f"audit.{alias}.")},
                }
            if history:
                shown = history[-history_limit:] if history_limit > 0 else history
                out[alias]["history"] = [entry.to_dict() for entry in reversed(shown)]
                out[alias]["history_entries"] = len(history)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="attrition", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    status_cmd = sub.add_parser("status", help="show which version holds each alias")
    status_cmd.add_argument(
        "--history", type=int, default=10, metavar="N",
        help="latest N history entries per alias, newest first (0: all)",
    )  # fmt: skip
    sub.add_parser("demo", help="run the local lifecycle demo")
    args = parser.parse_args(argv)
    if args.command == "status":
        try:
            print(json.dumps(status(args.history), indent=2))
        except TrackingServerUnreachableError as err:
            print(f"attrition status: {err}", file=sys.stderr)
            return 2
        return 0
    from attrition_mlops.demo import main as demo_main

    return demo_main([])


if __name__ == "__main__":
    raise SystemExit(main())
