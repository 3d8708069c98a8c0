"""Property-based API testing from the app's own OpenAPI schema (schemathesis, real HTTP).

Hypothesis generates valid and invalid requests for every documented operation and schemathesis
runs ALL its checks on each answer: no 5xx, documented status codes, content types, headers and
response schemas, invalid data rejected, and schema-valid data accepted with a 2xx (not merely
"anything but 4xx": a 503 "no model" would hide every disagreement about ``/predict``). The
shared server has a model loaded, and every case first checks that it still has one, so
``POST /predict`` really is scored. Bounded and seeded (``derandomize``): short and repeatable.

The schema document comes from an app built with the shared server's settings (it does not
depend on the model); the requests go over HTTP to the running server. schemathesis' lazy
``from_fixture`` loader does not work with pytest 9.2 (it sets ``node._nodeid``, gone in 9.x).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from schemathesis.config import SchemathesisConfig
from serving_support import NothingDeployed, pipeline_settings, serve_in_thread, serving_settings

from attrition_mlops.serving.app import create_app

pytestmark = pytest.mark.integration

#: Every check on (schemathesis enables all built-in checks unless told otherwise); only
#: ``max_response_time`` stays off: timing is for bench/. Two expectations are ours:
#: schema-valid requests must succeed (2xx), and 413 is a rejection of invalid data too: a body
#: with more than ``max_records`` records is usually also larger than ``max_body_bytes``, and the
#: size limit answers first, before anything is read (docs/serving.md, "Errors").
CONFIG_DICT = {
    "checks": {
        "positive_data_acceptance": {"expected-statuses": ["2xx"]},
        "negative_data_rejection": {
            # schemathesis' default list, plus 413
            "expected-statuses": [
                *("400", "401", "403", "404", "405", "406", "409", "413", "415", "422"),
                *("428", "429", "5xx"),
            ]
        },
    }
}
CONFIG = SchemathesisConfig.from_dict(CONFIG_DICT)

_tmp = Path(tempfile.gettempdir()) / "attrition-schemathesis"
_app = create_app(serving_settings(_tmp), NothingDeployed(), pipeline=pipeline_settings(_tmp))
schema = schemathesis.openapi.from_dict(_app.openapi(), config=CONFIG)


@pytest.fixture(scope="module")
def loaded_server(server):
    """The shared server, checked to be serving a model: /predict answers 200, not 503."""
    ready = httpx.get(f"{server.base_url}/health/ready", timeout=10)
    assert ready.status_code == 200 and ready.json()["model_version"] == "1", ready.text
    return server


@schema.parametrize()
@settings(
    max_examples=100,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_openapi_document(case, loaded_server):
    response = case.call_and_validate(base_url=loaded_server.base_url)
    assert response.status_code != 503, "no model loaded: /predict was not exercised"


# --- With an API key: the production configuration (the key is required outside `local`) ---

#: Not a real secret: this test's own key, 32 characters as production requires.
TEST_API_KEY = "schemathesis-test-key-0123456789"

#: The same checks, with the key sent the documented way (the ``X-API-Key`` scheme), so every
#: generated request is authenticated; schemathesis' ``ignored_auth`` check (on by default) also
#: sends each secured operation's request without it, and with a wrong key, and fails unless
#: the API refuses those with 401.
AUTH_CONFIG = SchemathesisConfig.from_dict(
    CONFIG_DICT | {"auth": {"openapi": {"APIKeyHeader": {"api_key": TEST_API_KEY}}}}
)
_authed_app = create_app(
    serving_settings(_tmp, api_key=SecretStr(TEST_API_KEY)),
    NothingDeployed(),
    pipeline=pipeline_settings(_tmp),
)
authed_schema = schemathesis.openapi.from_dict(_authed_app.openapi(), config=AUTH_CONFIG)


@pytest.fixture(scope="module")
def authed_server(tmp_path_factory, model_dirs):
    """A server like the shared one (model dir v1) with the API key required."""
    tmp = tmp_path_factory.mktemp("served-authed")
    settings = serving_settings(tmp, model_dir=model_dirs["1"], api_key=SecretStr(TEST_API_KEY))
    with serve_in_thread(create_app(settings, pipeline=pipeline_settings(tmp))) as served:
        ready = httpx.get(f"{served.base_url}/health/ready", timeout=10)
        assert ready.status_code == 200 and ready.json()["model_version"] == "1", ready.text
        yield served


def test_the_authed_schema_declares_the_key_on_every_secured_operation():
    """What the fuzzing below relies on: /predict and /model are documented as secured (and
    401 as a documented answer), so schemathesis authenticates them and probes them without."""
    paths = _authed_app.openapi()["paths"]
    for path, method in (("/predict", "post"), ("/model", "get")):
        operation = paths[path][method]
        assert {"APIKeyHeader": []} in operation["security"], (path, operation.get("security"))
        assert "401" in operation["responses"], path


@authed_schema.parametrize()
@settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_with_a_key_conforms_and_refuses_requests_without_it(case, authed_server):
    response = case.call_and_validate(base_url=authed_server.base_url)
    assert response.status_code != 503, "no model loaded: /predict was not exercised"
