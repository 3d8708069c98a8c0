"""The smoke test over real HTTP: it passes against the real API, and names every failed check.

Passing and wrong-version/wrong-key cases run against the real serving app (uvicorn on loopback,
a tiny real model baked into a model directory). The failure cases run against a small stand-in
API on loopback that behaves correctly until told to break one thing at a time; it first has to
pass the smoke test unbroken, so each failure below is caused by exactly its fault.
"""

from __future__ import annotations

import json
import socket
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import mlflow.pyfunc
import pytest
from support import serve_in_thread

from attrition_mlops.data import contract
from attrition_mlops.deploy.smoke import CHECKS, SmokeTestFailed, smoke_records, smoke_test
from attrition_mlops.model.predictor import AttritionPyfunc, write_artifacts
from attrition_mlops.model.profile import build_reference_profile
from attrition_mlops.serving.app import create_app
from attrition_mlops.serving.settings import ServingSettings
from attrition_mlops.settings import PipelineSettings

API_KEY = "smoke-test-key-0123456789"
ALL_CHECKS = (*CHECKS, "requires_api_key")
PREDICTING = {"predict_example", "predict_records", "predict_batch"}


# -- the real API ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_api(tmp_path_factory, snapshot, predictor) -> Iterator[str]:
    """The real app serving version "4" of a tiny real model, auth on."""
    root = tmp_path_factory.mktemp("smoke")
    X = snapshot.frame[list(contract.INPUT_COLUMNS)]
    model_dir = root / "model"
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = write_artifacts(
            Path(tmp), predictor, build_reference_profile(X, source_sha256=snapshot.sha256)
        )
        mlflow.pyfunc.save_model(
            str(model_dir),
            python_model=AttritionPyfunc(),
            artifacts=artifacts,
            pip_requirements=[],
        )
    (model_dir / "model_card.json").write_text(
        json.dumps({"name": "employee_attrition", "version": "4"})
    )
    settings = ServingSettings(
        model_dir=model_dir,
        api_key=API_KEY,
        poll_seconds=0,
        log_export=False,
        log_stdout=False,
        pseudonym_key="smoke-test-pseudonym-key-0123",
    )
    app = create_app(settings, pipeline=PipelineSettings(state_dir=root / "state"))
    with serve_in_thread(app, timeout=120) as url:
        yield url


def test_passes_against_the_real_api(real_api):
    report = smoke_test(real_api, expected_version="4", api_key=API_KEY, timeout_s=30)
    assert report["passed"] and report["expected_version"] == "4"
    assert [c["name"] for c in report["checks"]] == list(ALL_CHECKS)
    assert all(c["ok"] for c in report["checks"]), report
    json.dumps(report)  # small and JSON-able: fit for XCom
    details = {c["name"]: c["detail"] for c in report["checks"]}
    assert details["model_info"].startswith("employee_attrition version 4")
    assert details["rejects_malformed"] == "422 naming Age and NotAField"


def test_the_wrong_version_fails_every_version_check(real_api):
    with pytest.raises(SmokeTestFailed) as failed:
        smoke_test(real_api, expected_version="5", api_key=API_KEY)
    failures = {c["name"]: c["detail"] for c in failed.value.failures}
    assert set(failures) == {"health_ready", "model_info"} | PREDICTING
    assert failures["model_info"] == "reports model version 4, not 5"
    assert failures["predict_example"] == (
        "example request: answered by model version 4, expected 5"
    )
    message = str(failed.value)
    assert message.startswith(
        f"smoke test of {real_api} (expecting model version 5) failed 5 of 7 checks:"
    )
    assert all(f"  - {name}: {detail}" in message for name, detail in failures.items())


def test_a_wrong_api_key_is_reported(real_api):
    with pytest.raises(SmokeTestFailed) as failed:
        smoke_test(real_api, expected_version="4", api_key="not-the-key")
    failures = {c["name"]: c["detail"] for c in failed.value.failures}
    # only health is open; even the malformed request is refused by auth before validation
    assert set(failures) == {"model_info", "rejects_malformed"} | PREDICTING
    assert failures["model_info"].startswith("401")
    assert failures["rejects_malformed"] == "answered 401, not 422"


# -- a stand-in API that breaks on request ----------------------------------------------------


class StandIn:
    """Answers like the real API for the smoke test's requests, minus the faults it is given."""

    version, threshold = "7", 0.5

    def __init__(self, faults: set[str]) -> None:
        self.faults = faults

    def probability(self, record: dict, batch: bool) -> float:
        p = (record["EmployeeNumber"] % 97) / 97  # deterministic per record
        if "bad_probability" in self.faults:
            return 1.7
        return p + (0.01 if batch and "batch_differs" in self.faults else 0.0)

    def answer(self, method: str, path: str, headers, body: bytes) -> tuple[int, object]:
        authorised = headers.get("X-API-Key") == API_KEY or "auth_off" in self.faults
        if path == "/health/ready":
            if "not_ready" in self.faults:
                return 503, {"status": "loading", "model_version": None}
            return 200, {"status": "ok", "model_version": self.version}
        if not authorised:
            return 401, {"detail": "missing or wrong API key"}
        if path == "/model":
            if "model_not_json" in self.faults:
                return 200, b"<html>oops</html>"
            return 200, {
                "name": "employee_attrition",
                "version": self.version,
                "threshold": self.threshold,
            }
        records = json.loads(body)
        bad = {field for r in records for field in r if field not in contract.INPUT_COLUMNS}
        bad |= {"Age" for r in records if not isinstance(r.get("Age"), int)}
        if bad:
            if "malformed_500" in self.faults:
                return 500, {"detail": "internal error"}
            return 422, {"detail": "invalid", "errors": [{"field": f} for f in sorted(bad)]}
        predictions = []
        for record in records:
            p = self.probability(record, batch=len(records) > 1)
            label = "Yes" if p >= self.threshold else "No"
            if "wrong_label" in self.faults:
                label = "No" if label == "Yes" else "Yes"
            predictions.append({"probability": p, "label": label, "is_outlier": False})
        return 200, {
            "request_id": "r-1",
            "model_name": "employee_attrition",
            "model_version": self.version,
            "predictions": predictions,
        }


@pytest.fixture
def stand_in() -> Iterator[tuple[StandIn, str]]:
    api = StandIn(set())

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def _handle(self, method: str) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, payload = api.answer(method, self.path, self.headers, body)
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if method == "POST" and status == 200 and "no_request_id" not in api.faults:
                self.send_header("X-Request-ID", "r-1")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield api, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_the_stand_in_passes_when_nothing_is_broken(stand_in):
    _, url = stand_in
    assert smoke_test(url, expected_version="7", api_key=API_KEY)["passed"]


@pytest.mark.parametrize(
    ("fault", "failing", "says"),
    [
        ("not_ready", {"health_ready"}, "not ready: 503"),
        ("model_not_json", {"model_info"}, "/model: body is not JSON"),
        ("wrong_label", {"predict_example"}, "label 'No', but threshold 0.5 implies Yes"),
        ("bad_probability", PREDICTING, "probability 1.7 is not in [0, 1]"),
        ("batch_differs", {"predict_batch"}, "differ from single-record ones by up to 0.01"),
        ("no_request_id", PREDICTING, "X-Request-ID header does not match"),
        ("malformed_500", {"rejects_malformed"}, "answered 500, not 422"),
        ("auth_off", {"requires_api_key"}, "without a key: 200, not 401"),
    ],
)
def test_each_broken_behaviour_fails_exactly_its_checks(stand_in, fault, failing, says):
    api, url = stand_in
    api.faults = {fault}
    if fault == "wrong_label":  # the example record must score above the threshold here
        api.threshold = 0.0
        says = "label 'No', but threshold 0.0 implies Yes"
    with pytest.raises(SmokeTestFailed) as failed:
        smoke_test(url, expected_version="7", api_key=API_KEY)
    assert {c["name"] for c in failed.value.failures} == failing
    assert all(says in c["detail"] for c in failed.value.failures), failed.value.failures
    assert len(failed.value.report["checks"]) == len(ALL_CHECKS)  # the others still ran


def test_everything_broken_lists_every_check(stand_in):
    api, url = stand_in
    api.faults = {"not_ready", "model_not_json", "bad_probability", "malformed_500", "auth_off"}
    with pytest.raises(SmokeTestFailed) as failed:
        smoke_test(url, expected_version="7", api_key=API_KEY)
    assert [c["name"] for c in failed.value.failures] == list(ALL_CHECKS)
    assert str(failed.value).count("\n  - ") == len(ALL_CHECKS)


def test_no_server_at_all_fails_every_check_without_raising_anything_else():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, never listening: refused
        with pytest.raises(SmokeTestFailed) as failed:
            smoke_test(url, expected_version="1", timeout_s=2)
    assert [c["name"] for c in failed.value.failures] == list(CHECKS)
    assert all(
        c["detail"].startswith("no HTTP answer: ConnectError") for c in failed.value.failures
    )


def test_smoke_records_are_real_contract_records():
    records = smoke_records()
    assert len(records) == 3
    assert all(set(r) == set(contract.INPUT_COLUMNS) for r in records)
    assert all(isinstance(r["Age"], int) and isinstance(r["Department"], str) for r in records)
