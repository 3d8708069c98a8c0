"""Helpers shared by the tests (imported by conftest.py and by test modules as ``support``).

Fixtures live in conftest.py; what a fixture cannot express (a helper called inside a
module-scoped fixture, or a model a test is about to break on purpose) lives here.
"""

from __future__ import annotations

import socket

from attrition_mlops import settings as settings_module
from attrition_mlops.data import contract
from attrition_mlops.data.dataset import Snapshot
from attrition_mlops.model.features import build_classifier
from attrition_mlops.model.outliers import calibrate_outlier_detector
from attrition_mlops.model.predictor import AttritionPredictor

#: The tiny model every test serves or scores: fast to fit, and no test depends on its exact C.
TINY_PARAMS = {"C": 0.3}


def fit_tiny_predictor(snapshot: Snapshot) -> AttritionPredictor:
    """A logistic regression + calibrated outlier detector on the bundled rows (~1 s).

    A fresh object: tests that mutate their model call this, the rest share the session-scoped
    ``predictor`` fixture.
    """
    X = snapshot.frame[list(contract.INPUT_COLUMNS)]
    y = (snapshot.frame[contract.LABEL] == contract.POSITIVE_LABEL).to_numpy(dtype=int)
    classifier = build_classifier("logistic_regression", TINY_PARAMS, seed=0).fit(X, y)
    return AttritionPredictor(classifier, calibrate_outlier_detector(X, fpr=0.01, seed=0), 0.5)


def free_port() -> int:
    """A loopback port nothing listens on right now (the OS picks it: bind to port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clear_settings_caches() -> None:
    """Forget every cached settings getter, so the next call reads the environment again."""
    # Every cached getter in settings.py, so a new settings class cannot be forgotten here.
    for name in dir(settings_module):
        getter = getattr(settings_module, name)
        if name.startswith("get_") and hasattr(getter, "cache_clear"):
            getter.cache_clear()
