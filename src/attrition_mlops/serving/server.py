"""The one way to start the API: ``python -m attrition_mlops.serving.server``.

The image, the Kubernetes Deployment (the image's command), docker compose and ``make serve`` all
run this module, so the server's limits are set in one place: :class:`ServerSettings`, read from
``ATTRITION_SERVING_*`` environment variables (docs/serving.md lists them and says why each
default). uvicorn gets the app factory, the guarded HTTP protocol
(:mod:`attrition_mlops.serving.protocol`) and the options below.
"""

from __future__ import annotations

import argparse
from functools import lru_cache
from typing import Any

import uvicorn
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from attrition_mlops.serving.protocol import ConnectionLimits

FACTORY = "attrition_mlops.serving.app:create_app"
PROTOCOL = "attrition_mlops.serving.protocol:GuardedHttpToolsProtocol"

#: uvloop named, so a missing one fails the start instead of silently costing ~0.3 ms per
#: request. The access log is off: ~0.3 ms per request at low load, and every /predict is
#: already in the inference log, every request in /metrics.
UVICORN_OPTIONS: dict[str, Any] = {"loop": "uvloop", "http": PROTOCOL, "access_log": False}


class ServerSettings(BaseSettings):
    """Where the server listens and the limits it puts on each connection."""

    model_config = SettingsConfigDict(env_prefix="ATTRITION_SERVING_", extra="ignore")

    host: str = Field("127.0.0.1", description="listen address (0.0.0.0 in containers)")
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1, description="uvicorn worker processes (1 in Kubernetes)")
    max_header_bytes: int = Field(
        16 * 1024, ge=1024, description="request line + headers; more gets 431"
    )
    header_timeout_seconds: float = Field(
        10.0, gt=0, description="from a request's first byte (or the connect) to its last header"
    )
    body_timeout_seconds: float = Field(
        30.0, gt=0, description="from the last header to the last body byte"
    )
    keep_alive_seconds: int = Field(5, ge=1, description="idle keep-alive connections close")
    max_connections: int = Field(
        256, ge=1, description="open connections; one more gets 503 and is closed"
    )
    graceful_shutdown_seconds: int = Field(
        20, ge=1, description="drain time after SIGTERM (below the orchestrator's kill deadline)"
    )

    def connection_limits(self) -> ConnectionLimits:
        return ConnectionLimits(
            max_header_bytes=self.max_header_bytes,
            header_timeout=self.header_timeout_seconds,
            body_timeout=self.body_timeout_seconds,
            max_connections=self.max_connections,
        )

    def uvicorn_options(self) -> dict[str, Any]:
        """Everything ``uvicorn.run`` gets besides the app."""
        return {
            **UVICORN_OPTIONS,
            "factory": True,
            "host": self.host,
            "port": self.port,
            "workers": self.workers,
            "timeout_keep_alive": self.keep_alive_seconds,
            "timeout_graceful_shutdown": self.graceful_shutdown_seconds,
        }


@lru_cache
def get_server_settings() -> ServerSettings:
    return ServerSettings()


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
