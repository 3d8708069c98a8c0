"""Roll an alias (default ``champion``) back to the version it held before the last move."""

from __future__ import annotations

import argparse
from pathlib import Path

from attrition_mlops import registry
from attrition_mlops.registry.tracking import actor, configure_mlflow
from attrition_mlops.runner.entrypoint import run_job
from attrition_mlops.settings import get_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--alias",
        default=registry.CHAMPION,
        help="the alias to roll back: champion, staging or production (default: %(default)s)",
    )
    parser.add_argument(
        "--reason",
        default="manual rollback",
        help="why, kept in the alias history and audit tags (default: %(default)r)",
    )
    parser.add_argument("--output-json", type=Path, help="also write the JSON result here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def work() -> dict:
        settings = get_settings()
        configure_mlflow(settings)
        move = registry.rollback_alias(
            settings.model_name, args.alias, actor=actor(), reason=args.reason
        )
        return {"model_name": settings.model_name, **move.__dict__}

    return run_job(work, args.output_json)


if __name__ == "__main__":
    raise SystemExit(main())
