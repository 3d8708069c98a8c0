"""Every way production starts the API runs the one launcher, so its limits cannot disagree.

The image (Dockerfile CMD and ENV), docker compose (its serving stage), ``make serve`` and
``serving/app.py`` must each run ``attrition_mlops.serving.server``; the launcher is then run
with ``uvicorn.run`` replaced by a recorder, so the options checked are the ones uvicorn gets.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess

import pytest
from support import REPO, load_script

from attrition_mlops.serving import server
from attrition_mlops.serving.protocol import GuardedHttpToolsProtocol

LAUNCHER = ["python", "-m", "attrition_mlops.serving.server"]


@pytest.fixture
def recorded(monkeypatch) -> dict:
    calls: dict = {}

    def record(app, **options):
        calls.update(options, app=app)

    monkeypatch.setattr(server.uvicorn, "run", record)
    for name in ("HOST", "PORT", "MAX_HEADER_BYTES", "MAX_CONNECTIONS"):
        monkeypatch.delenv(f"ATTRITION_SERVING_{name}", raising=False)
    server.get_server_settings.cache_clear()
    yield calls
    server.get_server_settings.cache_clear()


def _dockerfile_stage(text: str) -> tuple[list[str], dict[str, str]]:
    """The last stage's CMD and ENV of a Dockerfile."""
    joined = re.sub(r"\\\n\s*", " ", text)
    lines = [line.strip() for line in joined.splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    last_from = max(i for i, line in enumerate(instructions) if line.startswith("FROM "))
    stage = instructions[last_from:]
    env = dict(
        pair.partition("=")[::2]
        for line in stage
        if line.startswith("ENV ")
        for pair in shlex.split(line[4:])
    )
    [cmd] = [json.loads(line[4:]) for line in stage if line.startswith("CMD ")]
    return cmd, env


def _launch(monkeypatch, env: dict[str, str], argv: list[str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    server.get_server_settings.cache_clear()
    assert server.main(argv) == 0


def _assert_production(options: dict, host: str) -> None:
    assert options["app"] == server.FACTORY and options["factory"] is True
    assert options["loop"] == "uvloop" and options["access_log"] is False
    assert options["http"] == server.PROTOCOL
    assert options["host"] == host and options["port"] == 8000
    assert options["timeout_graceful_shutdown"] == 20 and options["timeout_keep_alive"] == 5


def test_image_runs_the_launcher(recorded, monkeypatch):
    cmd, env = _dockerfile_stage((REPO / "serving" / "Dockerfile").read_text())
    assert cmd == LAUNCHER
    assert not [name for name in env if name.startswith("UVICORN_")]
    _launch(monkeypatch, {k: v for k, v in env.items() if k.startswith("ATTRITION_")}, [])
    _assert_production(recorded, host="0.0.0.0")


def test_compose_runs_the_launcher(recorded, monkeypatch):
    text = (REPO / "docker-compose.yaml").read_text()
    stage = text[text.index("AS serving") :]
    cmd = json.loads(re.search(r"^\s*CMD (\[.*\])$", stage, re.MULTILINE).group(1))
    assert cmd == LAUNCHER
    assert "ATTRITION_SERVING_HOST=0.0.0.0" in stage.split("CMD")[0]
    _launch(monkeypatch, {"ATTRITION_SERVING_HOST": "0.0.0.0"}, [])
    _assert_production(recorded, host="0.0.0.0")


def test_make_serve_runs_the_launcher(recorded, monkeypatch):
    makefile = (REPO / "Makefile").read_text()
    recipe = re.search(r"^serve:.*\n\t(.+)$", makefile, re.MULTILINE).group(1)
    words = shlex.split(recipe)
    assert words[words.index("python") :] == LAUNCHER
    _launch(monkeypatch, {}, [])
    _assert_production(recorded, host="127.0.0.1")


def _make_serve(*variables: str) -> list[str]:
    """The command ``make serve`` runs with ``variables`` (dry run: nothing starts)."""
    # Under `make test` this is a sub-make (MAKELEVEL set), which would add "Entering/Leaving
    # directory" lines: run it as a top-level make, and take the serve recipe's own line.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "serve", *variables],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=env,
    )
    [line] = [s for s in done.stdout.splitlines() if "attrition_mlops.serving.server" in s]
    return shlex.split(line)


@pytest.mark.integration  # runs make
def test_make_serve_port_and_host_reach_uvicorn(recorded, monkeypatch):
    words = _make_serve("PORT=9123", "HOST=0.0.0.0")
    assert words[words.index("python") :] == LAUNCHER
    env = dict(word.split("=", 1) for word in words[: words.index("python")] if "=" in word)
    assert env == {"ATTRITION_SERVING_PORT": "9123", "ATTRITION_SERVING_HOST": "0.0.0.0"}
    _launch(monkeypatch, env, [])
    assert (recorded["host"], recorded["port"]) == ("0.0.0.0", 9123)
    plain = _make_serve()  # without them: the settings' defaults (or ATTRITION_SERVING_*)
    assert not [word for word in plain[: plain.index("python")] if "=" in word]


def test_serving_app_entrypoint(recorded):
    module = load_script("serving/app.py", "serving_entry")
    assert module.main(["--port", "8123"]) == 0
    assert recorded["port"] == 8123 and recorded["http"] == server.PROTOCOL


def test_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("ATTRITION_SERVING_MAX_HEADER_BYTES", "4096")
    monkeypatch.setenv("ATTRITION_SERVING_MAX_CONNECTIONS", "7")
    limits = server.ServerSettings().connection_limits()
    assert (limits.max_header_bytes, limits.max_connections) == (4096, 7)
    resolved = importlib.import_module("uvicorn.importer").import_from_string(server.PROTOCOL)
    assert resolved is GuardedHttpToolsProtocol
