"""A model ready to serve: the predictor, its metadata, and its compiled fast path.

:func:`prepare_model` is where a freshly loaded predictor becomes servable: compile the fast
path (or fall back to the sklearn path with a warning), check the two agree on the example
record, and run one prediction so the first real request pays no warm-up cost. Only a model that
passed all of this is ever swapped in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from attrition_mlops.data import contract
from attrition_mlops.data.example import EXAMPLE_RECORD
from attrition_mlops.model.compiled import (
    CompiledModel,
    RecordBatch,
    Records,
    UnsupportedPipelineError,
    agrees,
    disagreement,
    pin_native_threads,
)
from attrition_mlops.model.labels import labels
from attrition_mlops.model.predictor import AttritionPredictor
from attrition_mlops.serving.schemas import EmployeeRecord

log = logging.getLogger(__name__)


class ModelCard(BaseModel):
    """What a model is: registry version tags, or ``model_card.json`` next to a baked model."""

    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)

    name: str
    version: str
    alias: str | None = None
    trained_at: str | None = None
    holdout_auc: float | None = None
    family: str | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class Scored:
    probability: np.ndarray
    is_outlier: np.ndarray
    threshold: float

    def outputs(self) -> list[dict[str, Any]]:
        label = labels(self.probability, self.threshold).tolist()
        return [
            {"probability": p, "label": lab, "is_outlier": o}
            for p, lab, o in zip(
                self.probability.tolist(), label, self.is_outlier.tolist(), strict=True
            )
        ]


@dataclass(frozen=True)
class LoadedModel:
    card: ModelCard
    source: str
    predictor: AttritionPredictor
    compiled: CompiledModel | None = None
    threads: int = 1
    loaded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def fast_path(self) -> bool:
        return self.compiled is not None

    def predict(self, records: Records) -> Scored:
        """Score validated, normalised records (mappings with every contract input field)."""
        pin_native_threads(self.threads)
        if self.compiled is not None:
            probability, score = self.compiled.predict(RecordBatch(records))
        else:
            probability, score = self.predict_sklearn(records)
        is_outlier = self.predictor.detector.flags(score)
        return Scored(probability, is_outlier, self.predictor.threshold)

    def predict_sklearn(self, records: Records) -> tuple[np.ndarray, np.ndarray]:
        frame = pd.DataFrame.from_records(list(records), columns=list(contract.INPUT_COLUMNS))
        return self.predictor.scores(frame)


def _compile(predictor: AttritionPredictor) -> CompiledModel | None:
    try:
        return CompiledModel(predictor.classifier, predictor.detector.pipeline)
    except UnsupportedPipelineError as err:
        log.warning("fast path unavailable, serving through the sklearn pipeline: %s", err)
        return None


def prepare_model(
    predictor: AttritionPredictor,
    card: ModelCard,
    source: str,
    *,
    fast_path: bool = True,
    threads: int = 1,
) -> LoadedModel:
    """Compile, self-check and warm a predictor; the result is ready for requests."""
    compiled = _compile(predictor) if fast_path else None
    model = LoadedModel(card, source, predictor, compiled, threads=threads)
    example = [EmployeeRecord.model_validate(EXAMPLE_RECORD).__dict__]
    model.predict(example)  # warm-up: the first request pays no first-call costs
    if model.fast_path:
        gap = disagreement(
            model.compiled.predict(RecordBatch(example)), model.predict_sklearn(example)
        )
        if not agrees(gap):
            log.warning("fast path disagrees with sklearn by %.3g: using the sklearn path", gap)
            model = LoadedModel(card, source, predictor, threads=threads)
            model.predict(example)
    path = "sklearn"
    if model.compiled is not None:
        path = "fast, shared encoding" if model.compiled.shared_encoding else "fast"
    log.info("model %s version %s ready (%s path) from %s", card.name, card.version, path, source)
    return model
