"""The one way to start the API: ``python -m attrition_mlops.serving.server``.

The image, the Kubernetes Deployment (the image's command), docker compose and ``make serve`` all
run this module, so the server's limits are set in one place: :class:`ServerSettings`, read from
``ATTRITION_SERVING_*`` environment variables (docs/serving.md lists them and says why each
default). uvicorn gets the app factory, the guarded HTTP protocol
(:mod:`attrition_mlops.serving.protocol`) and the options below.
"""

from __future__ import annotations

import argparse

import uvicorn

from attrition_mlops.serving.settings import (  # noqa: F401 (the launcher's public names)
    FACTORY,
    PROTOCOL,
    UVICORN_OPTIONS,
    ServerSettings,
    get_server_settings,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the attrition API (docs/serving.md).")
    parser.add_argument("--host", help="overrides ATTRITION_SERVING_HOST")
    parser.add_argument("--port", type=int, help="overrides ATTRITION_SERVING_PORT")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if v is not None}
    settings = get_server_settings().model_copy(update=overrides)
    uvicorn.run(FACTORY, **settings.uvicorn_options())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
