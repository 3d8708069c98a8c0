"""Helpers shared by the tests (imported by conftest.py and by test modules as ``support``).

Fixtures live in conftest.py; what a fixture cannot express (a helper called inside a
module-scoped fixture, or a model a test is about to break on purpose) lives here.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from attrition_mlops import settings as settings_module
from attrition_mlops.data import contract
from attrition_mlops.data.dataset import Snapshot
from attrition_mlops.gate.bootstrap import PairedBootstrap
from attrition_mlops.model.features import build_classifier
from attrition_mlops.model.outliers import calibrate_outlier_detector
from attrition_mlops.model.predictor import AttritionPredictor

REPO = Path(__file__).resolve().parents[1]  # the repository root, for tests that read its files


def load_script(relative: str, name: str | None = None):
    """A script of the repository (``jobs/performance.py``, ``serving/app.py``: files, not a
    package) loaded as a module, the way the job runner loads it."""
    path = REPO / relative
    spec = importlib.util.spec_from_file_location(name or f"_{path.stem}_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


@contextlib.contextmanager
def serve_in_thread(app, timeout: float = 60, **config) -> Iterator[str]:
    """``app`` under uvicorn in a thread on a free loopback port; yields its base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


#: Debian's Chromium (.ci/run installs it); ATTRITION_TEST_CHROMIUM names another Chromium-family
#: browser (GitHub's runner: Google Chrome).
CHROMIUM = Path(os.environ.get("ATTRITION_TEST_CHROMIUM") or "/usr/bin/chromium")


@contextlib.contextmanager
def headless_chromium() -> Iterator[object]:
    """A playwright Browser on Debian's Chromium. Missing Chromium fails the test, never skips
    it: browser tests are part of ``make test`` (``apt-get install chromium``, as .ci/run does)."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.is_file():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install chromium (see .ci/run)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def bootstrap_of_deltas(
    delta, champion_auc: float = 0.80, n: int = 400, n_pos: int = 60
) -> PairedBootstrap:
    """A paired-bootstrap outcome with the given per-resample ΔAUC (champion AUC fixed), for the
    gate rules' tests."""
    d = np.asarray(delta, dtype=float)
    champion = np.full(d.size, champion_auc)
    return PairedBootstrap(
        n=n,
        n_pos=n_pos,
        n_boot=d.size,
        seed=0,
        auc_champion=champion_auc,
        auc_challenger=champion_auc + float(d.mean()),
        delta_point=float(d.mean()),
        delta=d,
        auc_champion_boot=champion,
        auc_challenger_boot=champion + d,
    )
