"""Entrypoint of the online API: ``python serving/app.py [--host H] [--port P]``.

The image runs the same app with uvicorn's factory mode:

    uvicorn --factory attrition_mlops.serving.app:create_app --host 0.0.0.0 --port 8000 \\
        --timeout-graceful-shutdown 20 --loop uvloop --http httptools --no-access-log

(the image passes the last four as UVICORN_* environment variables).

All configuration is environment (ATTRITION_SERVING_*, see docs/serving.md); this file only
chooses where to listen. ``uvicorn serving.app:app`` also works: ``app`` is built on first access.
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn

from attrition_mlops.serving.app import UVICORN_OPTIONS  # imports only: builds no app

FACTORY = "attrition_mlops.serving.app:create_app"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="default: loopback only")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--timeout-graceful-shutdown",
        type=int,
        default=20,
        help="seconds to finish in-flight requests after SIGTERM (keep it below the "
        "orchestrator's kill deadline so the inference log is flushed)",
    )
    args = parser.parse_args(argv)
    uvicorn.run(
        FACTORY,
        factory=True,
        host=args.host,
        port=args.port,
        timeout_graceful_shutdown=args.timeout_graceful_shutdown,
        **UVICORN_OPTIONS,
    )
    return 0


def __getattr__(name: str) -> Any:
    # Lazy so that importing this module (e.g. to read FACTORY) loads no model.
    if name == "app":
        from attrition_mlops.serving.app import create_app

        globals()["app"] = created = create_app()
        return created
    raise AttributeError(name)


if __name__ == "__main__":
    raise SystemExit(main())
