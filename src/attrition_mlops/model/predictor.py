"""The registered model: classifier + calibrated outlier detector + reference profile.

``AttritionPredictor`` is the plain-Python object everything scores with (evaluation, batch
scoring, the API's model interface). ``AttritionPyfunc`` wraps it as an MLflow pyfunc so the
same artifact works with ``mlflow.pyfunc.load_model``, ``mlflow models serve`` and
``mlflow.pyfunc.spark_udf`` on Databricks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import mlflow.pyfunc
import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from attrition_mlops.data import contract
from attrition_mlops.model.labels import labels
from attrition_mlops.model.outliers import OutlierDetector

PREDICTOR_FILE = "predictor.joblib"
PROFILE_FILE = "reference_profile.json"
OUTPUT_COLUMNS = ("probability", "label", "is_outlier", "outlier_score")


@dataclass
class AttritionPredictor:
    classifier: Pipeline
    detector: OutlierDetector
    threshold: float

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """P(Attrition = Yes) per record."""
        return self.classifier.predict_proba(frame)[:, 1]

    def scores(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(P(Attrition = Yes), outlier score) per record: the sklearn reference path."""
        return self.predict_proba(frame), self.detector.score(frame)

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        probability, score = self.scores(frame)
        return pd.DataFrame(
            {
                "probability": probability,
                "label": labels(probability, self.threshold),
                "is_outlier": self.detector.flags(score),
                "outlier_score": score,
            },
            index=frame.index,
        )


class AttritionPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow wrapper: loads the predictor and profile from the model's artifacts."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.predictor: AttritionPredictor = joblib.load(context.artifacts["predictor"])
        self.profile = json.loads(Path(context.artifacts["profile"]).read_text())

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None):
        return self.predictor.predict(model_input[list(contract.INPUT_COLUMNS)])


def write_artifacts(
    directory: Path, predictor: AttritionPredictor, profile: dict[str, Any]
) -> dict[str, str]:
    """Serialise the parts of a model into ``directory``; returns the pyfunc artifacts map."""
    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(predictor, directory / PREDICTOR_FILE)
    (directory / PROFILE_FILE).write_text(json.dumps(profile))
    return {
        "predictor": str(directory / PREDICTOR_FILE),
        "profile": str(directory / PROFILE_FILE),
    }


def load_predictor(model_uri: str) -> AttritionPredictor:
    """The plain predictor behind a registered pyfunc (skips pyfunc schema enforcement)."""
    return mlflow.pyfunc.load_model(model_uri).unwrap_python_model().predictor
