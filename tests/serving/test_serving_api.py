"""The API over real HTTP: predictions, health, model card, metrics, auth, docs, the log."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from datetime import UTC, datetime

import anyio
import numpy as np
import pytest
from fastapi import Depends, FastAPI
from serving_support import (
    MODEL_NAME,
    TEST_PSEUDONYM_KEY,
    NothingDeployed,
    inputs,
    pipeline_settings,
    serve_in_thread,
    serving_settings,
)

from attrition_mlops.data import contract
from attrition_mlops.data.example import EXAMPLE_REQUEST
from attrition_mlops.data.inference_log import (
    SIMULATED_HEADER,
    Pseudonymiser,
    export_files,
    read_records,
)
from attrition_mlops.serving.app import create_app
from attrition_mlops.serving.routes.predict import build_router
from attrition_mlops.serving.schemas import PredictResponse

pytestmark = pytest.mark.integration


def test_original_example_request(client):
    response = client.post("/predict", json=EXAMPLE_REQUEST)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    # the hand-serialised body is exactly the documented response model
    assert PredictResponse.model_validate_json(response.content).model_dump() == body
    assert body["model_name"] == MODEL_NAME and body["model_version"] == "1"
    assert body["request_id"] == response.headers["x-request-id"]
    [prediction] = body["predictions"]
    assert 0.0 <= prediction["probability"] <= 1.0
    assert prediction["label"] == ("Yes" if prediction["probability"] >= 0.5 else "No")
    assert isinstance(prediction["is_outlier"], bool)


def test_batch_matches_the_sklearn_pipeline_end_to_end(client, predictor, snapshot):
    frame = inputs(snapshot).iloc[100:150]
    records = frame.to_dict(orient="records")
    response = client.post("/predict", json=records)
    assert response.status_code == 200, response.text
    got = np.array([p["probability"] for p in response.json()["predictions"]])
    expected = predictor.predict_proba(frame)
    assert float(np.max(np.abs(got - expected))) < 1e-9
    flags = [p["is_outlier"] for p in response.json()["predictions"]]
    assert flags == list(predictor.detector.is_outlier(frame))


@pytest.mark.parametrize("over18", ["Y", "Yes"])
def test_over18_accepts_data_set_and_request_spelling(client, over18):
    response = client.post("/predict", json=[dict(EXAMPLE_REQUEST[0], Over18=over18)])
    assert response.status_code == 200, response.text


def test_health(client):
    assert client.get("/health/live").json() == {"status": "ok", "model_version": None}
    assert client.get("/health/ready").json() == {"status": "ok", "model_version": "1"}


def test_model_card(client):
    info = client.get("/model").json()
    assert info["name"] == MODEL_NAME and info["version"] == "1"
    assert info["alias"] == "production" and info["holdout_auc"] == pytest.approx(0.8123)
    assert info["trained_at"] == "2026-01-01T00:00:00+00:00"
    assert info["family"] == "logistic_regression" and info["fast_path"] is True
    assert info["threshold"] == 0.5 and info["outlier_fpr"] == 0.01


def _metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_move(client, snapshot):
    before = client.get("/metrics").text
    records = inputs(snapshot).head(7).to_dict(orient="records")
    assert client.post("/predict", json=records).status_code == 200
    assert client.post("/predict", json=[{"Age": 1}]).status_code == 422
    after = client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    ok, bad = {"route": "/predict", "status": "200"}, {"route": "/predict", "status": "422"}
    requests = "attrition_http_requests_total"
    assert _metric(after.text, requests, **ok) == _metric(before, requests, **ok) + 1
    assert _metric(after.text, requests, **bad) == _metric(before, requests, **bad) + 1
    predictions = "attrition_predictions_total"
    assert _metric(after.text, predictions, model_version="1") == (
        _metric(before, predictions, model_version="1") + 7
    )
    count = "attrition_http_request_duration_seconds_count"
    route = {"route": "/predict", "method": "POST"}
    assert _metric(after.text, count, **route) == _metric(before, count, **route) + 2
    assert _metric(after.text, "attrition_model_info", model_version="1", fast_path="true") == 1
    assert "attrition_outliers_total" in after.text


def test_outliers_are_counted(client):
    extreme = dict(EXAMPLE_REQUEST[0], Age=99, MonthlyIncome=999_999, TotalWorkingYears=70)
    before = _metric(client.get("/metrics").text, "attrition_outliers_total", model_version="1")
    response = client.post("/predict", json=[extreme])
    assert response.json()["predictions"][0]["is_outlier"] is True
    after = _metric(client.get("/metrics").text, "attrition_outliers_total", model_version="1")
    assert after == before + 1


def test_openapi_documents_the_contract_and_the_original_example(client):
    schema = client.get("/openapi.json").json()
    record = schema["components"]["schemas"]["EmployeeRecord"]
    assert set(record["required"]) == set(contract.INPUT_COLUMNS)
    assert record["additionalProperties"] is False
    assert record["properties"]["Age"]["minimum"] == 18
    assert set(record["properties"]["Over18"]["enum"]) == {"Y", "Yes"}
    assert "Research & Development" in record["properties"]["Department"]["enum"]
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert body["examples"]["original"]["value"] == EXAMPLE_REQUEST
    assert body["schema"]["maxItems"] == 50 and body["schema"]["minItems"] == 1
    # The documented 200 answers the documented request, and is a valid response.
    [example] = schema["components"]["schemas"]["PredictResponse"]["examples"]
    assert len(PredictResponse.model_validate(example).predictions) == len(EXAMPLE_REQUEST)


def test_docs_page_loads_nothing_from_outside_the_api(client):
    """Offline or air-gapped clusters: /docs must not need a CDN (it was blank without one)."""
    page = client.get("/docs")
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(
        r"url: '([^']+)'", page.text
    )
    assert sources and all(s.startswith("/") for s in sources), sources
    assert "http" not in "".join(sources) and "cdn" not in page.text
    for path in sources:
        asset = client.get(path)
        assert asset.status_code == 200, path
        assert asset.headers["content-type"].split(";")[0] in {
            "text/javascript",
            "text/css",
            "image/png",
            "application/json",
        }
    assert "swagger-ui" in client.get("/docs/assets/swagger-ui-bundle.js").text[:5000].lower()
    assert client.get("/docs/assets/..%2Fpyproject.toml").status_code == 404
    assert client.get("/docs/assets/other.js").status_code == 404


def test_inference_log_lines(server, client):
    response = client.post("/predict", json=EXAMPLE_REQUEST)
    request_id = response.json()["request_id"]
    found = _wait_for_log_line(server.export_dir, request_id)
    assert found.model_version == "1" and found.n_records == 1
    [employee] = found.inputs
    assert employee.EmployeeNumber == Pseudonymiser(TEST_PSEUDONYM_KEY.encode())(253)
    assert employee.Over18 == "Y"  # normalised before logging
    assert found.outputs[0].probability == response.json()["predictions"][0]["probability"]
    assert found.simulated is False


def test_simulated_requests_are_marked_in_the_log(server, client):
    response = client.post("/predict", json=EXAMPLE_REQUEST, headers={SIMULATED_HEADER: "true"})
    found = _wait_for_log_line(server.export_dir, response.json()["request_id"])
    assert found.simulated is True


def _wait_for_log_line(export_dir, request_id, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        day = datetime.now(UTC).date()
        for record in read_records(export_files(export_dir, day, day)):
            if record.request_id == request_id:
                return record
        time.sleep(0.1)
    raise AssertionError(f"no log line for request {request_id}")


def test_not_ready_until_a_model_is_loaded(tmp_path):
    app = create_app(
        serving_settings(tmp_path), NothingDeployed(), pipeline=pipeline_settings(tmp_path)
    )
    with serve_in_thread(app) as served, served.client() as http:
        assert http.get("/health/live").status_code == 200
        assert http.get("/health/ready").status_code == 503
        response = http.post("/predict", json=EXAMPLE_REQUEST)
        assert response.status_code == 503 and response.headers["retry-after"] == "5"
        assert http.get("/model").status_code == 503


@pytest.fixture(scope="module")
def secured(tmp_path_factory, model_dirs):
    tmp = tmp_path_factory.mktemp("secured")
    settings = serving_settings(tmp, model_dir=model_dirs["1"], api_key="s3cret-key")
    with serve_in_thread(create_app(settings, pipeline=pipeline_settings(tmp))) as served:
        with served.client() as http:
            yield http


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}],
)
def test_auth_rejects(secured, headers):
    for method, path in (("post", "/predict"), ("get", "/model")):
        kwargs = {"json": EXAMPLE_REQUEST} if method == "post" else {}
        response = getattr(secured, method)(path, headers=headers, **kwargs)
        assert response.status_code == 401, (path, headers)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "API key" in response.json()["detail"]


@pytest.mark.parametrize(
    "headers", [{"X-API-Key": "s3cret-key"}, {"Authorization": "Bearer s3cret-key"}]
)
def test_auth_accepts_key_or_bearer(secured, headers):
    assert secured.post("/predict", json=EXAMPLE_REQUEST, headers=headers).status_code == 200
    assert secured.get("/model", headers=headers).status_code == 200


def test_auth_is_checked_before_the_body_is_read(secured):
    response = secured.post("/predict", content=b"\xff not json", headers={"X-API-Key": "x"})
    assert response.status_code == 401


def test_predict_route_refuses_dependencies_it_would_not_run():
    with pytest.raises(TypeError, match="cannot run"):
        FastAPI().include_router(build_router(10), dependencies=[Depends(lambda: None)])


def test_auth_leaves_probes_and_metrics_open(secured):
    for path in ("/health/live", "/health/ready", "/metrics"):
        assert secured.get(path).status_code == 200, path


def test_auth_off_without_a_key(client):
    assert client.post("/predict", json=EXAMPLE_REQUEST).status_code == 200
    schemes = client.get("/openapi.json").json().get("components", {}).get("securitySchemes")
    assert not schemes


class _RecordingWriter:
    """Stands in for the log writer: notes what had been sent when each entry arrived."""

    def __init__(self, sent: list[dict]) -> None:
        self.sent = sent
        self.seen_at_submit: list[list[str]] = []

    def submit(self, entry) -> None:
        self.seen_at_submit.append([message["type"] for message in self.sent])


def test_log_entry_is_handed_over_after_the_response_is_sent(tmp_path, model_dirs):
    settings = serving_settings(tmp_path, model_dir=model_dirs["1"])
    app = create_app(settings, pipeline=pipeline_settings(tmp_path))
    sent: list[dict] = []
    body = json.dumps(EXAMPLE_REQUEST).encode()
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    async def scenario():
        async with app.router.lifespan_context(app):
            writer = _RecordingWriter(sent)
            app.state.serving = dataclasses.replace(app.state.serving, writer=writer)
            await app(scope, receive, send)
            return writer

    writer = anyio.run(scenario)
    assert sent[0]["status"] == 200
    assert writer.seen_at_submit == [["http.response.start", "http.response.body"]]
