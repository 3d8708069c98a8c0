"""Smoke test of a running attrition API over real HTTP: is it the expected model, and does it work?

Every check runs even when an earlier one failed, so one run names every problem:

* ``health_ready``: ``GET /health/ready`` is 200 and reports the expected version;
* ``model_info``: ``GET /model`` reports the expected version;
* ``predict_example``: the original request (``data.example.EXAMPLE_REQUEST``) gets one
  prediction with a probability in [0, 1], the label the model's threshold implies, the
  expected version and the response's request id in the ``X-Request-ID`` header;
* ``predict_records``: real records from the bundled data set, one request each;
* ``predict_batch``: the same records as one batch give the same probabilities, in order;
* ``rejects_malformed``: a malformed record is refused with 422 and field-level errors, not 5xx;
* ``requires_api_key`` (when a key is given): a request without it gets 401.
"""

from __future__ import annotations

import json
import math
import time
from functools import cache
from typing import Any

import httpx

from attrition_mlops.data import contract
from attrition_mlops.data.dataset import load_snapshot
from attrition_mlops.data.example import EXAMPLE_REQUEST
from attrition_mlops.model.labels import labels

SMOKE_RECORDS = 3  # the first rows of the bundled data set (both labels occur among them)
PROBABILITY_TOLERANCE = 1e-9  # one record alone vs. in a batch: the same arithmetic
MALFORMED_REQUEST = [{**EXAMPLE_REQUEST[0], "Age": "thirty-six", "NotAField": 1}]


class SmokeTestFailed(RuntimeError):
    """One or more checks failed; ``report`` has all of them, ``failures`` the failed ones."""

    def __init__(self, report: dict[str, Any]) -> None:
        self.report = report
        self.failures = [c for c in report["checks"] if not c["ok"]]
        lines = "\n".join(f"  - {c['name']}: {c['detail']}" for c in self.failures)
        super().__init__(
            f"smoke test of {report['base_url']} (expecting model version "
            f"{report['expected_version']}) failed {len(self.failures)} of "
            f"{len(report['checks'])} checks:\n{lines}"
        )


class _CheckFailed(Exception):
    pass


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise _CheckFailed(message)


@cache
def smoke_records(n: int = SMOKE_RECORDS) -> tuple[dict[str, Any], ...]:
    """The first ``n`` records of the bundled data set as API request records (JSON types)."""
    frame = load_snapshot().frame[list(contract.INPUT_COLUMNS)].head(n)
    return tuple(json.loads(frame.to_json(orient="records")))


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as err:
        raise _CheckFailed(f"{what}: body is not JSON ({response.text[:120]!r})") from err
    _expect(isinstance(body, dict), f"{what}: body is not a JSON object ({response.text[:120]!r})")
    return body


def _predict(http: httpx.Client, records: list[dict], expected: str, what: str) -> list[dict]:
    """POST /predict and check status, count, version, probabilities and request id."""
    response = http.post("/predict", json=records)
    _expect(response.status_code == 200, f"{what}: {response.status_code} {response.text[:200]}")
    body = _json(response, what)
    predictions = body.get("predictions") or []
    _expect(
        len(predictions) == len(records),
        f"{what}: {len(predictions)} predictions for {len(records)} records",
    )
    _expect(
        body.get("model_version") == expected,
        f"{what}: answered by model version {body.get('model_version')}, expected {expected}",
    )
    for prediction in predictions:
        p = prediction.get("probability")
        valid = isinstance(p, int | float) and math.isfinite(p) and 0.0 <= p <= 1.0
        _expect(valid, f"{what}: probability {p!r} is not in [0, 1]")
    request_id = body.get("request_id")
    _expect(
        request_id is not None and response.headers.get("X-Request-ID") == request_id,
        f"{what}: X-Request-ID header does not match the body's request_id {request_id!r}",
    )
    return predictions


class _Smoke:
    """The checks, in order; each returns a short detail or raises _CheckFailed."""

    def __init__(self, http: httpx.Client, expected: str) -> None:
        self.http, self.expected = http, expected
        self.model: dict[str, Any] = {}
        self.singles: list[float] | None = None

    def health_ready(self) -> str:
        response = self.http.get("/health/ready")
        _expect(response.status_code == 200, f"not ready: {response.status_code}")
        version = _json(response, "health").get("model_version")
        _expect(
            version == self.expected, f"ready with model version {version}, not {self.expected}"
        )
        return f"ready, model version {version}"

    def model_info(self) -> str:
        response = self.http.get("/model")
        _expect(response.status_code == 200, f"{response.status_code} {response.text[:200]}")
        self.model = info = _json(response, "/model")
        version = info.get("version")
        _expect(version == self.expected, f"reports model version {version}, not {self.expected}")
        return f"{info.get('name')} version {version} from {info.get('source')}"

    def predict_example(self) -> str:
        (prediction,) = _predict(self.http, EXAMPLE_REQUEST, self.expected, "example request")
        probability, label = prediction["probability"], prediction.get("label")
        threshold = self.model.get("threshold")
        if threshold is not None:  # known only when /model answered
            implied = str(labels(probability, threshold))
            _expect(
                label == implied, f"label {label!r}, but threshold {threshold} implies {implied}"
            )
        return f"probability {probability:.4f}, label {label}"

    def predict_records(self) -> str:
        self.singles = [
            _predict(self.http, [record], self.expected, f"data set record {i}")[0]["probability"]
            for i, record in enumerate(smoke_records())
        ]
        return "probabilities " + ", ".join(f"{p:.4f}" for p in self.singles)

    def predict_batch(self) -> str:
        records = list(smoke_records())
        batch = [p["probability"] for p in _predict(self.http, records, self.expected, "batch")]
        if self.singles is not None:
            worst = max(abs(a - b) for a, b in zip(batch, self.singles, strict=True))
            _expect(
                worst <= PROBABILITY_TOLERANCE,
                f"batch probabilities differ from single-record ones by up to {worst:.3g}",
            )
        return f"{len(batch)} predictions in one request, equal to the single-record ones"

    def rejects_malformed(self) -> str:
        response = self.http.post("/predict", json=MALFORMED_REQUEST)
        _expect(response.status_code == 422, f"answered {response.status_code}, not 422")
        fields = {e.get("field") for e in _json(response, "422").get("errors") or []}
        _expect({"Age", "NotAField"} <= fields, f"the errors name fields {sorted(fields)}")
        return "422 naming Age and NotAField"

    def requires_api_key(self) -> str:
        url = f"{self.http.base_url}".rstrip("/") + "/predict"
        response = httpx.post(url, json=EXAMPLE_REQUEST, timeout=self.http.timeout)  # no key
        _expect(response.status_code == 401, f"without a key: {response.status_code}, not 401")
        return "401 without a key"


CHECKS = (
    "health_ready",
    "model_info",
    "predict_example",
    "predict_records",
    "predict_batch",
    "rejects_malformed",
)


def smoke_test(
    base_url: str, *, expected_version: str, api_key: str | None = None, timeout_s: float = 30.0
) -> dict[str, Any]:
    """Run every check against ``base_url``; a JSON-able report, or SmokeTestFailed."""
    started, checks = time.monotonic(), []
    headers = {"X-API-Key": api_key} if api_key else {}
    names = CHECKS + (("requires_api_key",) if api_key else ())
    with httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s, headers=headers) as http:
        smoke = _Smoke(http, str(expected_version))
        for name in names:
            try:
                checks.append({"name": name, "ok": True, "detail": getattr(smoke, name)()})
            except _CheckFailed as err:
                checks.append({"name": name, "ok": False, "detail": str(err)})
            except httpx.HTTPError as err:
                detail = f"no HTTP answer: {type(err).__name__}: {err}"
                checks.append({"name": name, "ok": False, "detail": detail})
            except (KeyError, TypeError, ValueError) as err:  # a body of an unexpected shape
                detail = f"unexpected response: {type(err).__name__}: {err}"
                checks.append({"name": name, "ok": False, "detail": detail})
    report = {
        "base_url": base_url,
        "expected_version": str(expected_version),
        "passed": all(c["ok"] for c in checks),
        "checks": checks,
        "duration_s": round(time.monotonic() - started, 3),
    }
    if not report["passed"]:
        raise SmokeTestFailed(report)
    return report
