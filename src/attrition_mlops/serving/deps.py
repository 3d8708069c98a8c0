"""Request dependencies: the app's serving state and the model a request is answered by."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from attrition_mlops.serving.loaded import LoadedModel
from attrition_mlops.serving.log_writer import InferenceLogWriter
from attrition_mlops.serving.metrics import ServingMetrics
from attrition_mlops.serving.runtime import ModelRuntime
from attrition_mlops.serving.settings import ServingSettings


@dataclass(frozen=True)
class ServingState:
    settings: ServingSettings
    runtime: ModelRuntime
    metrics: ServingMetrics
    writer: InferenceLogWriter


async def get_state(request: Request) -> ServingState:
    return request.app.state.serving


StateDep = Annotated[ServingState, Depends(get_state)]


def current_model(state: ServingState) -> LoadedModel:
    """The model for this request, read once: a concurrent swap cannot change it mid-request."""
    model = state.runtime.model
    if model is None:
        raise HTTPException(
            503, "no model loaded yet: see /health/ready", headers={"Retry-After": "5"}
        )
    return model


async def get_model(state: StateDep) -> LoadedModel:
    return current_model(state)


ModelDep = Annotated[LoadedModel, Depends(get_model)]
