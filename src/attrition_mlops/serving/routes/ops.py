"""Operational endpoints, always open: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from attrition_mlops.serving.deps import StateDep
from attrition_mlops.serving.schemas import Health

router = APIRouter(tags=["operations"])


@router.get("/health/live", response_model=Health)
async def live() -> Health:
    """The process is up and serving HTTP (restart it if this fails)."""
    return Health(status="ok")


@router.get(
    "/health/ready",
    response_model=Health,
    responses={503: {"model": Health, "description": "no model loaded yet"}},
)
async def ready(state: StateDep) -> Health | JSONResponse:
    """A model is loaded and warmed: send traffic."""
    model = state.runtime.model
    if model is None:
        return JSONResponse(Health(status="loading").model_dump(), status_code=503)
    return Health(status="ok", model_version=model.card.version)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
)
async def metrics(state: StateDep) -> Response:
    """Prometheus exposition: requests, latency, predictions, outliers, model info."""
    state.metrics.log_pending.set(state.writer.pending())
    state.metrics.log_failed.set(state.writer.failed)
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
