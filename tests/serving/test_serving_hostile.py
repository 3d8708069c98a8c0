"""Hostile clients (issue 11, defect 4): the API and its server hold up against what they send.

Server-level limits are tested over raw sockets against real uvicorn: the production launcher
(``python -m attrition_mlops.serving.server``) in a subprocess, its limits set through the
environment, and the guarded protocol in a thread where a test needs its own limits. Speed
under hostile load is measured by ``bench/hostile_clients.py``, not here.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from serving_support import (
    TEST_PSEUDONYM_KEY,
    NothingDeployed,
    ServerProcess,
    pipeline_settings,
    serving_settings,
)
from support import free_port, serve_in_thread

from attrition_mlops.data.example import EXAMPLE_RECORD
from attrition_mlops.data.inference_log import read_records
from attrition_mlops.serving.app import create_app
from attrition_mlops.serving.settings import ServingSettings
from attrition_mlops.settings import PipelineSettings

pytestmark = pytest.mark.integration

JSON = {"content-type": "application/json"}
WAIT = 20.0  # socket timeout: how long a test waits for the server before it fails


# --- helpers ------------------------------------------------------------------------------------
def _connect(base_url: str) -> socket.socket:
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=WAIT)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _statuses(raw: bytes) -> list[int]:
    # a response follows the previous body directly: no line break between them
    return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)]


def _predict_request(body: bytes, host: str = "test") -> bytes:
    head = f"POST /predict HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
    return head.encode() + f"content-length: {len(body)}\r\n\r\n".encode() + body


@contextlib.contextmanager
def _launched(env: dict[str, str], workdir: Path) -> Iterator[ServerProcess]:
    """The production launcher on a free loopback port."""
    port = free_port()
    env = {**os.environ, **env, "ATTRITION_SERVING_PORT": str(port)}
    out, err = workdir / "server.stdout", workdir / "server.stderr"
    with open(out, "wb") as o, open(err, "wb") as e:
        command = [sys.executable, "-m", "attrition_mlops.serving.server"]
        process = subprocess.Popen(command, env=env, stdout=o, stderr=e, cwd=workdir)
    handle = ServerProcess(process, f"http://127.0.0.1:{port}", out, err)
    try:
        handle.wait_ready()
        yield handle
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)


@contextlib.contextmanager
def _guarded(app, limits) -> Iterator[str]:
    """uvicorn with the guarded protocol and these limits, in a thread."""
    from attrition_mlops.serving.protocol import GuardedHttpToolsProtocol

    protocol = type("Limited", (GuardedHttpToolsProtocol,), {"limits": limits})
    with serve_in_thread(app, http=protocol) as url:
        yield url


@pytest.fixture(scope="module")
def launched(tmp_path_factory, model_dirs) -> Iterator[ServerProcess]:
    """The launcher with small limits: 8 KiB of headers, 1 s to send headers, 1 s for a body."""
    tmp = tmp_path_factory.mktemp("launched")
    env = {
        "ATTRITION_TARGET": "local",
        "ATTRITION_STATE_DIR": str(tmp / "state"),
        "ATTRITION_SERVING_MODEL_DIR": str(model_dirs["1"]),
        "ATTRITION_SERVING_PSEUDONYM_KEY": TEST_PSEUDONYM_KEY,
        "ATTRITION_SERVING_LOG_STDOUT": "false",
        "ATTRITION_SERVING_MAX_HEADER_BYTES": "8192",
        "ATTRITION_SERVING_HEADER_TIMEOUT_SECONDS": "1",
        "ATTRITION_SERVING_BODY_TIMEOUT_SECONDS": "1",
    }
    with _launched(env, tmp) as server:
        yield server


# --- authentication: no silent "auth off" -------------------------------------------------------
def test_an_empty_api_key_is_refused(tmp_path):
    with pytest.raises(ValidationError, match="set but empty"):
        serving_settings(tmp_path, api_key="")
    with pytest.raises(ValidationError, match="set but empty"):
        serving_settings(tmp_path, api_key="  ")


def test_the_azure_target_refuses_to_start_without_a_key(tmp_path):
    azure = PipelineSettings(state_dir=tmp_path, target="azure")
    with pytest.raises(RuntimeError, match="ATTRITION_SERVING_API_KEY is required"):
        create_app(serving_settings(tmp_path), NothingDeployed(), pipeline=azure)
    create_app(serving_settings(tmp_path, api_key="k"), NothingDeployed(), pipeline=azure)


def test_the_launcher_exits_with_a_clear_error_on_an_empty_key(tmp_path, model_dirs):
    env = {
        **os.environ,
        "ATTRITION_STATE_DIR": str(tmp_path / "state"),
        "ATTRITION_SERVING_MODEL_DIR": str(model_dirs["1"]),
        "ATTRITION_SERVING_API_KEY": "",
        "ATTRITION_SERVING_PORT": str(free_port()),
    }
    command = [sys.executable, "-m", "attrition_mlops.serving.server"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "ATTRITION_SERVING_API_KEY is set but empty" in done.stderr


# --- request bodies -----------------------------------------------------------------------------
def test_a_record_with_thousands_of_keys_is_refused_before_validation(client):
    record = {f"k{i}": 0 for i in range(1000)}
    response = client.post("/predict", json=[EXAMPLE_RECORD, record])
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert (error["record"], error["type"]) == (1, "too_many_fields")
    assert "1000 fields" in error["problem"]


def test_many_unknown_fields_are_counted_without_validating_the_records(client):
    records = [{f"unknown_{i}": 0 for i in range(20)} for _ in range(3)]  # 60 unknown fields
    response = client.post("/predict", json=records)
    assert response.status_code == 422
    body = response.json()
    assert body["detail"] == "invalid request: 60 problems (first 50 listed)"
    assert {e["type"] for e in body["errors"]} == {"extra_forbidden"}  # no "missing" noise
    assert (body["errors"][0]["record"], body["errors"][-1]["record"]) == (0, 2)


def test_a_body_of_countless_tiny_values_is_refused_before_parsing(client):
    body = b"[" + b",".join([b"[]"] * 20000) + b"]"  # 40 KB, 20,000 JSON values
    response = client.post("/predict", content=body, headers=JSON)
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["type"] == "too_complex"


def test_error_bodies_stay_small_whatever_the_request_holds(client):
    key = "x" * 60_000  # one unknown field whose name is most of the 64 KiB body
    response = client.post("/predict", json=[EXAMPLE_RECORD | {key: 1}])
    assert response.status_code == 422
    assert len(response.content) < 2_000, len(response.content)
    [error] = [e for e in response.json()["errors"] if e["type"] == "extra_forbidden"]
    assert error["field"].startswith("x" * 100) and error["field"].endswith("more characters)")


def test_a_trailing_slash_is_not_redirected_to_the_client_host(client):
    response = client.post("/predict/", json=[EXAMPLE_RECORD], headers={"host": "attacker.example"})
    assert response.status_code == 404
    assert "location" not in response.headers


# --- server limits (production launcher) --------------------------------------------------------
def test_oversized_headers_get_431(launched):
    response = httpx.get(
        f"{launched.base_url}/health/live", headers={"x-filler": "a" * 64 * 1024}, timeout=WAIT
    )
    assert response.status_code == 431
    assert "at most 8192 bytes" in response.json()["detail"]
    ok = httpx.get(f"{launched.base_url}/health/live", headers={"x-filler": "a" * 4000})
    assert ok.status_code == 200


def test_a_half_sent_huge_header_is_cut_off_at_the_limit(launched):
    sock = _connect(launched.base_url)
    sock.sendall(b"GET /health/live HTTP/1.1\r\nhost: t\r\nx-filler: ")
    sent = 0
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        for _ in range(256):  # up to 16 MB, never the end of the header
            sock.sendall(b"a" * 65536)
            sent += 65536
    raw = _read_until_closed(sock)
    sock.close()
    assert _statuses(raw) == [431], raw[:200]
    assert sent < 16 * 1024 * 1024  # the server stopped reading long before the end


def test_headers_sent_too_slowly_get_408(launched):
    sock = _connect(launched.base_url)
    sock.sendall(b"GET /health/live HTTP/1.1\r\nhost: t\r\n")  # never finished
    raw = _read_until_closed(sock)
    sock.close()
    assert _statuses(raw) == [408] and b"headers not received within 1 s" in raw


def test_a_silent_connection_is_closed(launched):
    sock = _connect(launched.base_url)
    raw = _read_until_closed(sock)  # the server closes it: recv returns b""
    sock.close()
    assert _statuses(raw) == [408]


def test_a_body_sent_too_slowly_gets_408(launched):
    sock = _connect(launched.base_url)
    body = json.dumps([EXAMPLE_RECORD]).encode()
    sock.sendall(_predict_request(body)[:-100])  # the last 100 bytes never come
    raw = _read_until_closed(sock)
    sock.close()
    assert _statuses(raw) == [408] and b"body not received within 1 s" in raw


# --- connection cap and pipelining (guarded protocol in a thread) -------------------------------
@pytest.fixture
def small_app(tmp_path, model_dirs):
    """A fresh app per test: an app's lifespan (log writer, model) runs once."""
    tmp = tmp_path
    settings = serving_settings(tmp, model_dir=model_dirs["1"])
    return create_app(settings, pipeline=pipeline_settings(tmp)), settings.log_export_dir


def test_connections_over_the_cap_get_503(small_app):
    from attrition_mlops.serving.protocol import ConnectionLimits

    app, _ = small_app
    limits = ConnectionLimits(8192, header_timeout=60, body_timeout=60, max_connections=5)
    with _guarded(app, limits) as url:
        held = [_connect(url) for _ in range(5)]
        time.sleep(0.2)  # let the server accept them all (not a timing assertion)
        extra = _connect(url)
        raw = _read_until_closed(extra)
        assert _statuses(raw) == [503] and b"retry-after: 1" in raw
        for sock in held[:2]:
            sock.close()
        time.sleep(0.2)
        assert httpx.get(f"{url}/health/live", timeout=WAIT).status_code == 200
        for sock in [*held[2:], extra]:
            sock.close()


def test_garbage_pipelined_behind_a_request_is_answered_after_it(small_app):
    """The 200 is written before the 400, and its inference-log line is for a sent response."""
    from attrition_mlops.serving.protocol import ConnectionLimits

    app, export_dir = small_app
    limits = ConnectionLimits(8192, header_timeout=60, body_timeout=60, max_connections=50)
    with _guarded(app, limits) as url:
        sock = _connect(url)
        body = json.dumps([EXAMPLE_RECORD]).encode()
        sock.sendall(_predict_request(body) + b"NOT HTTP AT ALL\r\n\r\n")
        raw = _read_until_closed(sock)
        sock.close()
    assert _statuses(raw) == [200, 400], raw[:300]
    rid = json.loads(raw.split(b"\r\n\r\n")[1].split(b"HTTP/1.1")[0])["request_id"]
    logged = [r.request_id for r in read_records(sorted(export_dir.rglob("*.jsonl")))]
    assert logged.count(rid) == 1


def test_settings_reject_an_empty_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("ATTRITION_SERVING_API_KEY", "")
    with pytest.raises(ValidationError, match="set but empty"):
        ServingSettings()
