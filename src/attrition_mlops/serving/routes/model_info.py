"""GET /model: which model answers, where it came from, how good it was on the holdout."""

from __future__ import annotations

from fastapi import APIRouter

from attrition_mlops.serving.deps import ModelDep
from attrition_mlops.serving.schemas import ErrorResponse, ModelInfo

router = APIRouter(tags=["model"])


@router.get(
    "/model",
    response_model=ModelInfo,
    responses={
        401: {"model": ErrorResponse, "description": "missing or wrong API key"},
        503: {"model": ErrorResponse, "description": "no model loaded yet"},
    },
)
async def model_info(model: ModelDep) -> ModelInfo:
    card = model.card
    return ModelInfo(
        **card.model_dump(),
        source=model.source,
        threshold=model.predictor.threshold,
        outlier_fpr=model.predictor.detector.fpr,
        fast_path=model.fast_path,
        loaded_at=model.loaded_at,
    )
