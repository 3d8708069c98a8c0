"""A generated corpus of malformed requests: every one gets a 4xx with a precise message.

For each field of the contract: missing, null, nested garbage, wrong types (strings for
integers, fractional floats such as 3.5, booleans), NaN/Infinity, out-of-range values, unknown
categories; unknown extra fields; then whole-body problems: not an array, empty, too many
records, oversized (declared and chunked), wrong or missing content type, invalid UTF-8, broken
or pathologically nested JSON. Field problems must be reported with record index and field.

``/predict`` is served by a lean route class (``PredictRoute``); a second server runs the same
endpoint through FastAPI's generic request handling, and every case, valid requests too, must
get the same answer from both.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import pytest
from serving_support import pipeline_settings, serve_in_thread, serving_settings

from attrition_mlops.data import contract
from attrition_mlops.data.example import EXAMPLE_RECORD
from attrition_mlops.serving.app import create_app
from attrition_mlops.serving.errors import JSONBodyRoute

pytestmark = pytest.mark.integration

MAX_RECORDS = 50  # the shared test server's settings (serving_support.serving_settings)
MAX_BODY = 64 * 1024
JSON = {"content-type": "application/json"}


@dataclass
class Case:
    id: str
    body: bytes | object
    status: int = 422
    where: tuple[int | None, str | None] | None = None  # (record, field) that must be named
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))
    chunked: bool = False

    def content(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()  # allow_nan: NaN/Infinity go out as JSON tokens


def _record(**changes) -> dict:
    record = dict(EXAMPLE_RECORD)
    for name, value in changes.items():
        if value is _MISSING:
            del record[name]
        else:
            record[name] = value
    return record


_MISSING = object()


def _field_cases(feature: contract.Feature) -> list[Case]:
    name = feature.name
    values: dict[str, object] = {
        "missing": _MISSING,
        "null": None,
        "object": {"value": 1},
        "array": [1, 2],
    }
    if feature.is_integer:
        values |= {
            "string": "36",
            "float": 3.5,
            "float-tiny-fraction": 36.000001,
            "bool": True,
            "nan": float("nan"),
            "inf": float("inf"),
            "-inf": float("-inf"),
            "below": feature.minimum - 1,
            "above": feature.maximum + 1,
            "huge": 10**30,
        }
    else:
        first = feature.categories[0]
        values |= {
            "number": 1,
            "bool": False,
            "empty": "",
            "unknown": "Astronaut",
            "case": first.lower() if first.lower() != first else first.upper(),
            "padded": f" {first} ",
        }
    cases = []
    for label, value in values.items():
        # put the bad record in the middle of a batch: the index must point at it
        body = [EXAMPLE_RECORD, EXAMPLE_RECORD, _record(**{name: value}), EXAMPLE_RECORD]
        cases.append(Case(f"{name}-{label}", body, where=(2, name)))
    return cases


def _extra_field_cases() -> list[Case]:
    extras = {"Attrition": "Yes", "Foo": 1, "age": 36, "": 0, "EmployeeNumber ": 253}
    return [
        Case(f"extra-{key or 'empty-name'}", [_record(**{key: value})], where=(0, key))
        for key, value in extras.items()
    ]


def _body_cases() -> list[Case]:
    record = EXAMPLE_RECORD
    over = json.dumps([record] * 100).encode()  # > 64 KiB
    assert len(over) > MAX_BODY
    return [
        Case("body-object", {"records": [record]}, where=(None, None)),
        Case("body-record-not-in-array", record, where=(None, None)),
        Case("body-string", "hello", where=(None, None)),
        Case("body-number", 42, where=(None, None)),
        Case("body-null", None, where=(None, None)),
        Case("body-true", True, where=(None, None)),
        Case("body-empty-array", [], where=(None, None)),
        Case("body-empty", b"", where=(None, None)),
        Case("body-whitespace", b"  \n ", where=(None, None)),
        Case("body-array-of-arrays", [[record]], where=(0, None)),
        Case("body-array-of-numbers", [1, 2, 3], where=(0, None)),
        Case("body-array-of-nulls", [None], where=(0, None)),
        Case("body-array-of-strings", ["x"], where=(0, None)),
        Case("body-empty-record", [{}], where=(0, "Age")),
        Case("too-many-records", [record] * (MAX_RECORDS + 1), where=(None, None)),
        Case("oversized-declared", over, status=413),
        Case("oversized-chunked", over, status=413, chunked=True),
        Case("content-type-text", [record], status=415, headers={"content-type": "text/plain"}),
        Case(
            "content-type-form",
            b"a=1",
            status=415,
            headers={"content-type": "application/x-www-form-urlencoded"},
        ),
        Case(
            "content-type-multipart",
            b"--x--",
            status=415,
            headers={"content-type": "multipart/form-data; boundary=x"},
        ),
        Case("content-type-missing", [record], status=415, headers={}),
        Case("content-type-garbage", [record], status=415, headers={"content-type": "?;;"}),
        Case("utf8-invalid-byte", b'[{"Gender": "\xff"}]', where=(None, None)),
        Case("utf8-latin1", '[{"Gender": "Mal\xe9"}]'.encode("latin-1"), where=(None, None)),
        Case("utf8-overlong", b'[{"Gender": "\xc0\xaf"}]', where=(None, None)),
        Case("utf8-surrogate", b'[{"Gender": "\xed\xa0\x80"}]', where=(None, None)),
        # another Unicode encoding is refused as such (415), with or without a BOM: the contract
        # says UTF-8, and json.loads(bytes) would otherwise decode them silently
        Case("utf16", json.dumps([record]).encode("utf-16"), status=415),
        Case("utf16-le-no-bom", json.dumps([record]).encode("utf-16-le"), status=415),
        Case("utf16-be-no-bom", json.dumps([record]).encode("utf-16-be"), status=415),
        Case("utf32-le-no-bom", json.dumps([record]).encode("utf-32-le"), status=415),
        Case(
            "charset-utf16",
            [record],
            status=415,
            headers={"content-type": "application/json; charset=utf-16"},
        ),
        Case("json-truncated", b'[{"Age": 36', where=(None, None)),
        Case("json-trailing-comma", b"[1,]", where=(None, None)),
        Case("json-single-quotes", b"[{'Age': 36}]", where=(None, None)),
        Case("json-comment", b"[ /* x */ ]", where=(None, None)),
        Case("json-trailing-garbage", json.dumps([record]).encode() + b"]]", where=(None, None)),
        Case("json-bare-nan", b"NaN", where=(None, None)),
        Case("json-deep-nesting", b"[" * 30000 + b"]" * 30000, where=(None, None)),
        Case("json-huge-integer", b'[{"Age": ' + b"9" * 5000 + b"}]", where=(None, None)),
        Case("json-nul-bytes", b"\x00" * 100, where=(None, None)),
    ]


CASES = [c for f in contract.FEATURES for c in _field_cases(f)] + _extra_field_cases()
CASES += _body_cases()


def test_corpus_is_large_and_varied():
    counts = Counter(case.status for case in CASES)
    print(f"malformed corpus: {len(CASES)} cases, expected statuses {dict(counts)}")
    assert len(CASES) >= 200 and set(counts) == {413, 415, 422}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_malformed_request_gets_a_precise_4xx(client, case):
    data = case.content()
    # a generator makes httpx send Transfer-Encoding: chunked, with no Content-Length
    chunks = (data[i : i + 4096] for i in range(0, len(data), 4096))
    content = chunks if case.chunked else data
    response = client.post("/predict", content=content, headers=case.headers)
    if case.chunked:
        assert "content-length" not in response.request.headers
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.status_code == case.status, response.text
    body = response.json()
    assert body["detail"] and body["request_id"] == response.headers["x-request-id"]
    if case.where is not None:
        named = {(e["record"], e["field"]) for e in body["errors"]}
        assert case.where in named, body
        assert all(e["problem"] for e in body["errors"])


def _whole_floats(record: dict) -> dict:
    """The record with every integer field written as a JSON float (36 -> 36.0)."""
    return {k: float(v) if isinstance(v, int) else v for k, v in record.items()}


VALID = [
    Case("valid-one", [EXAMPLE_RECORD], status=200),
    Case("valid-over18-y", [_record(Over18="Y")], status=200),
    Case("valid-max-records", [EXAMPLE_RECORD] * MAX_RECORDS, status=200),
    Case(
        "valid-json-suffix-type",
        [EXAMPLE_RECORD],
        status=200,
        headers={"content-type": "application/vnd.api+json; charset=utf-8"},
    ),
    Case("valid-whole-floats", [_whole_floats(EXAMPLE_RECORD)], status=200),
    Case("valid-utf8-bom", b"\xef\xbb\xbf" + json.dumps([EXAMPLE_RECORD]).encode(), status=200),
]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, model_dirs):
    """The same app and settings, /predict served by FastAPI's own request handling."""
    tmp = tmp_path_factory.mktemp("reference")
    settings = serving_settings(tmp, model_dir=model_dirs["1"])
    app = create_app(settings, pipeline=pipeline_settings(tmp), predict_route=JSONBodyRoute)
    with serve_in_thread(app) as served, served.client() as http:
        yield http


def _comparable(response) -> tuple:
    body = response.json()
    body.pop("request_id")
    headers = {k: response.headers.get(k) for k in ("content-type", "retry-after")}
    return response.status_code, body, headers


@pytest.mark.parametrize("case", CASES + VALID, ids=[case.id for case in CASES + VALID])
def test_lean_route_answers_like_fastapi_itself(client, reference, case):
    data = case.content()
    answers = []
    for http in (client, reference):
        chunks = (data[i : i + 4096] for i in range(0, len(data), 4096))
        content = chunks if case.chunked else data
        answers.append(_comparable(http.post("/predict", content=content, headers=case.headers)))
    lean, generic = answers
    assert lean[0] == case.status
    assert lean == generic


def test_whole_floats_are_the_same_integers(client):
    """36.0 is the JSON Schema integer 36: scored exactly like 36 (docs/serving.md)."""
    floats = client.post("/predict", json=[_whole_floats(EXAMPLE_RECORD)])
    integers = client.post("/predict", json=[EXAMPLE_RECORD])
    assert b'"Age":36.0' in floats.request.content
    assert floats.status_code == integers.status_code == 200, floats.text
    assert floats.json()["predictions"] == integers.json()["predictions"]


def test_whole_float_outside_the_range_is_a_range_error(client):
    response = client.post("/predict", json=[_record(JobLevel=-0.0)])  # the integer 0
    assert response.status_code == 422
    assert [(e["record"], e["field"], e["type"]) for e in response.json()["errors"]] == [
        (0, "JobLevel", "greater_than_equal")
    ]
