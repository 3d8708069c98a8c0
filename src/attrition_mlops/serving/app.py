"""The app factory. Serve it with ``python -m attrition_mlops.serving.server`` (docs/serving.md).

Start-up (lifespan): start the log writer, load and warm the model (a baked model directory
that cannot load fails the start; a registry alias with nothing deployed yet starts unready and
keeps polling), then follow the source. Shutdown (lifespan exit, which uvicorn reaches after
SIGTERM has drained in-flight requests): stop following, then flush every log entry.
"""

from __future__ import annotations

import logging
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import TextIO

import anyio.to_thread
from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute

from attrition_mlops.data.inference_log import Pseudonymiser
from attrition_mlops.serving.deps import ServingState
from attrition_mlops.serving.docs_ui import install_docs
from attrition_mlops.serving.errors import install_error_handlers
from attrition_mlops.serving.log_writer import InferenceLogWriter
from attrition_mlops.serving.metrics import ServingMetrics
from attrition_mlops.serving.middleware import ServingMiddleware
from attrition_mlops.serving.routes import model_info, ops, predict
from attrition_mlops.serving.runtime import ModelRuntime
from attrition_mlops.serving.security import ApiKeyCheck, api_key_guard
from attrition_mlops.serving.settings import ServingSettings, get_serving_settings
from attrition_mlops.serving.sources import DirectorySource, ModelSource, source_from_settings
from attrition_mlops.settings import PipelineSettings, get_settings

log = logging.getLogger(__name__)

DESCRIPTION = """\
Employee attrition predictions for IBM HR records.

`POST /predict` takes a JSON array of employee records (all 34 input fields, strictly typed)
and returns, per record, the attrition probability, the label at the model's threshold and an
outlier flag, with the model name/version and a request id. Errors are 4xx with one entry per
problem (`record` index, `field`, `problem`). When an API key is configured, send it as
`X-API-Key` or as a bearer token. See docs/serving.md.
"""


def _configure_logging() -> None:
    """Make the package's INFO lines visible when nothing else configured logging.

    uvicorn configures only its own loggers; without this, model loads and swaps would be
    silent in a container. A logging config passed to uvicorn (root handlers) takes precedence.
    """
    package = logging.getLogger("attrition_mlops")
    if not logging.getLogger().handlers and not package.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
        package.addHandler(handler)
        package.setLevel(logging.INFO)


def _pseudonymiser(settings: ServingSettings, pipeline: PipelineSettings) -> Pseudonymiser:
    if settings.pseudonym_key is not None:
        return Pseudonymiser(settings.pseudonym_key.get_secret_value().encode())
    if pipeline.target != "local":
        raise RuntimeError(
            "ATTRITION_SERVING_PSEUDONYM_KEY is required outside the local target: without a "
            "shared key, replicas would pseudonymise the same employee differently"
        )
    log.warning(
        "ATTRITION_SERVING_PSEUDONYM_KEY is not set: using a random key for this process, so "
        "pseudonyms in the inference log change on every restart"
    )
    return Pseudonymiser(secrets.token_bytes(32))


def _check_auth(settings: ServingSettings, pipeline: PipelineSettings) -> None:
    """Refuse to start unauthenticated outside the local target (an empty key is refused by
    :class:`ServingSettings` itself, whatever the target)."""
    if settings.api_key is None and pipeline.target != "local":
        raise RuntimeError(
            f"ATTRITION_SERVING_API_KEY is required on the {pipeline.target!r} target: refusing "
            "to serve predictions without authentication"
        )


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: ServingState = app.state.serving
    _configure_logging()
    state.writer.start()
    try:
        fail_fast = isinstance(state.runtime.source, DirectorySource)
        await anyio.to_thread.run_sync(partial(state.runtime.load_initial, fail_fast=fail_fast))
        state.runtime.start_following()
        yield
    finally:
        await anyio.to_thread.run_sync(state.runtime.stop)
        await anyio.to_thread.run_sync(state.writer.close)
        log.info("inference log closed: %d entries written", state.writer.written)


def create_app(
    settings: ServingSettings | None = None,
    model_source: ModelSource | None = None,
    *,
    pipeline: PipelineSettings | None = None,
    log_stream: TextIO | None = None,
    predict_route: type[APIRoute] = predict.PredictRoute,
) -> FastAPI:
    """Build the API. Defaults come from the environment; tests pass their own pieces.

    ``predict_route``: :class:`~.errors.JSONBodyRoute` serves ``/predict`` through FastAPI's
    generic request handling, the reference the tests compare the lean default against.
    """
    settings = settings or get_serving_settings()
    pipeline = pipeline or get_settings()
    source = model_source or source_from_settings(settings, pipeline)
    metrics = ServingMetrics()
    writer = InferenceLogWriter(
        pseudonymise=_pseudonymiser(settings, pipeline),
        export_dir=settings.export_dir(pipeline),
        stream=(log_stream or sys.stdout) if settings.log_stdout else None,
        flush_seconds=settings.log_flush_seconds,
    )
    _check_auth(settings, pipeline)
    runtime = ModelRuntime(
        source, poll_seconds=settings.poll_seconds, on_swap=metrics.model_swapped
    )
    app = FastAPI(
        title="Employee attrition API",
        version="1",
        description=DESCRIPTION,
        lifespan=_lifespan,
        # No trailing-slash redirects: Starlette builds them from the client's Host header,
        # so `POST /predict/` with a foreign Host would be sent to that host. 404 instead.
        redirect_slashes=False,
        docs_url=None,  # install_docs: the same page with Swagger UI served locally, not a CDN
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.serving = ServingState(settings, runtime, metrics, writer)
    install_error_handlers(app)
    app.add_middleware(ServingMiddleware, metrics=metrics, max_body_bytes=settings.max_body_bytes)
    key = settings.api_key
    auth = [Depends(api_key_guard(ApiKeyCheck(key)))] if key is not None else []
    install_docs(app)
    app.include_router(ops.router)
    app.include_router(
        predict.build_router(settings.max_records, route_class=predict_route), dependencies=auth
    )
    app.include_router(model_info.router, dependencies=auth)
    return app
