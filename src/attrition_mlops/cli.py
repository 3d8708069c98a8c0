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


def status() -> dict:
    """Which version holds each alias, with its audit tags."""
    from attrition_mlops.tracking import configure_mlflow

    settings = get_settings()
    configure_mlflow(settings)
    out = {}
    for alias in ALIASES:
        with reaching(settings.registry_uri or settings.resolved_tracking_uri):
            version = registry.get_alias_version(settings.model_name, alias)
            if version is None:
                continue
            tags = registry.get_version(settings.model_name, version).tags
        out[alias] = {
            "version": version,
            "holdout_auc": tags.get("holdout_auc"),
            **{k: v for k, v in tags.items() if k.startswith(f"audit.{alias}.")},
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="attrition", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("status", help="show which version holds each alias")
    sub.add_parser("demo", help="run the local lifecycle demo")
    args = parser.parse_args(argv)
    if args.command == "status":
        try:
            print(json.dumps(status(), indent=2))
        except TrackingServerUnreachableError as err:
            print(f"attrition status: {err}", file=sys.stderr)
            return 2
        return 0
    from attrition_mlops.demo import main as demo_main

    return demo_main([])


if __name__ == "__main__":
    raise SystemExit(main())
