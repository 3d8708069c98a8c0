"""Baseline for bench/serving.py: the proof of concept's serving path, kept naive on purpose.

FastAPI → ``pd.DataFrame(records)`` → the full sklearn pipeline's ``predict_proba`` on every
request, which is what most first services do. Run with
``ATTRITION_BENCH_MODEL_URI=models:/employee_attrition/1 uvicorn --factory
naive_serving_app:create_app`` (``--app-dir bench``). Not part of the product.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import pandas as pd
from fastapi import Body, FastAPI

from attrition_mlops.data import contract
from attrition_mlops.model.predictor import load_predictor


def create_app() -> FastAPI:
    predictor = load_predictor(os.environ["ATTRITION_BENCH_MODEL_URI"])
    app = FastAPI(title="naive baseline")

    @app.post("/predict")
    def predict(records: Annotated[list[dict[str, Any]], Body()]) -> list[dict[str, Any]]:
        frame = pd.DataFrame(records)[list(contract.INPUT_COLUMNS)]
        out = predictor.predict(frame)
        return out[["probability", "label", "is_outlier"]].to_dict(orient="records")

    return app
