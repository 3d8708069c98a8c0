"""Model families and their preprocessing, built from the feature contract.

Encoding never fails on a category it has not seen: one-hot columns ignore unknown values (the
record is scored with that feature's indicator columns all zero). Validation upstream already
rejects values outside the contract, so this only matters when a model trained on an older
snapshot meets a category that appeared later.
"""

from __future__ import annotations

from typing import Any

import optuna
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from attrition_mlops.data import contract

FAMILIES = ("logistic_regression", "hist_gradient_boosting")


def build_preprocessor(*, scale: bool) -> ColumnTransformer:
    numeric = StandardScaler() if scale else "passthrough"
    categorical = OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=float)
    return ColumnTransformer(
        [
            ("numeric", numeric, list(contract.NUMERIC_MODEL_FEATURES)),
            ("categorical", categorical, list(contract.CATEGORICAL_MODEL_FEATURES)),
        ],
        remainder="drop",  # identifier and constant columns never reach the model
        verbose_feature_names_out=False,
    )


def build_classifier(family: str, params: dict[str, Any], seed: int) -> Pipeline:
    """A fresh, unfitted pipeline for one model family and its hyperparameters."""
    if family == "logistic_regression":
        model = LogisticRegression(max_iter=5000, random_state=seed, **params)
        return Pipeline([("preprocess", build_preprocessor(scale=True)), ("model", model)])
    if family == "hist_gradient_boosting":
        model = HistGradientBoostingClassifier(random_state=seed, early_stopping=False, **params)
        return Pipeline([("preprocess", build_preprocessor(scale=False)), ("model", model)])
    raise ValueError(f"unknown model family {family!r}; choose from {FAMILIES}")


def suggest_params(trial: optuna.Trial, family: str) -> dict[str, Any]:
    """The search space of each family (define-by-run, so spaces stay independent)."""
    if family == "logistic_regression":
        return {
            "C": trial.suggest_float("C", 1e-3, 10.0, log=True),
            "class_weight": trial.suggest_categorical("class_weight", [None, "balanced"]),
        }
    if family == "hist_gradient_boosting":
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "max_iter": trial.suggest_int("max_iter", 50, 300, step=25),
            "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 4, 31),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 10, 80),
            "l2_regularization": trial.suggest_float("l2_regularization", 1e-4, 10.0, log=True),
        }
    raise ValueError(f"unknown model family {family!r}; choose from {FAMILIES}")
