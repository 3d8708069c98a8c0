"""Every way production starts the API gives uvicorn the same options (``UVICORN_OPTIONS``).

The image (CMD + ENV), ``make serve`` and ``serving/app.py`` are each run through uvicorn's
own entry point with ``uvicorn.run`` replaced by a recorder, so the options are the ones
uvicorn's command line really resolves, environment variables (``UVICORN_*``) included.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import shlex
from pathlib import Path

import pytest
import uvicorn

from attrition_mlops.serving.app import UVICORN_OPTIONS

# the module: the package attribute ``uvicorn.main`` is the click command of the same name
UVICORN_MAIN = importlib.import_module("uvicorn.main")
REPO = Path(__file__).resolve().parents[2]
FACTORY = "attrition_mlops.serving.app:create_app"


@pytest.fixture
def recorded(monkeypatch) -> dict:
    calls: dict = {}

    def record(app, **options):
        calls.update(options, app=app)

    monkeypatch.setattr(UVICORN_MAIN, "run", record)
    monkeypatch.setattr(uvicorn, "run", record)
    for name in [n for n in os.environ if n.startswith("UVICORN_")]:
        monkeypatch.delenv(name)
    return calls


def _uvicorn_cli(args: list[str]) -> None:
    UVICORN_MAIN.main.main(args, standalone_mode=False)


def _assert_production_options(options: dict) -> None:
    assert options["app"] == FACTORY and options["factory"] is True
    for name, value in UVICORN_OPTIONS.items():
        assert options[name] == value, name


def _runtime_stage(text: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", text)
    lines = [line.strip() for line in joined.splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    last_from = max(i for i, line in enumerate(instructions) if line.startswith("FROM "))
    return instructions[last_from:]


def test_image_command_and_environment(recorded, monkeypatch):
    runtime = _runtime_stage((REPO / "serving" / "Dockerfile").read_text())
    for line in runtime:
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                name, _, value = pair.partition("=")
                if name.startswith("UVICORN_"):
                    monkeypatch.setenv(name, value)
    [cmd] = [json.loads(line[4:]) for line in runtime if line.startswith("CMD ")]
    assert cmd[0] == "uvicorn"
    _uvicorn_cli(cmd[1:])
    _assert_production_options(recorded)
    assert recorded["timeout_graceful_shutdown"] == 20 and recorded["host"] == "0.0.0.0"


def test_make_serve(recorded):
    makefile = (REPO / "Makefile").read_text()
    recipe = re.search(r"^serve:.*\n\t(.+)$", makefile, re.MULTILINE).group(1)
    words = shlex.split(recipe)
    _uvicorn_cli(words[words.index("uvicorn") + 1 :])
    _assert_production_options(recorded)


def test_serving_app_entrypoint(recorded):
    spec = importlib.util.spec_from_file_location("serving_entry", REPO / "serving" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--port", "8123"]) == 0
    _assert_production_options(recorded)
    assert recorded["port"] == 8123 and recorded["timeout_graceful_shutdown"] == 20
