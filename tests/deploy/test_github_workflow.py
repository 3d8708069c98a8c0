""".github/workflows/ci.yml, the CI that forks get on GitHub, checked so that it cannot rot.

The workflow is validated against the GitHub workflow JSON schema that check-jsonschema ships
(``vendor.github-workflows``), then against the project's rules: it runs ``bash .ci/run`` (the
project's one CI entrypoint) after a checkout, on the Python that pyproject.toml requires, with
the uv that the Makefile and .ci/run pin, next to the PostgreSQL and Redis services the tests
expect, with actions pinned and least privilege. Each rule is also run against a broken copy.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import REPO

WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"
CI_COMMAND = "bash .ci/run"
PINNED_ACTION = re.compile(r"^[\w.-]+/[\w./-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$")
CI_BUDGET_MINUTES = 90


def load_workflow(path: Path = WORKFLOW) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    if True in doc:  # YAML 1.1 reads the key `on` as a boolean
        doc["on"] = doc.pop(True)
    return json.loads(json.dumps(doc))


def check_workflow_schema(path: Path) -> subprocess.CompletedProcess[str]:
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    tool = shutil.which("check-jsonschema", path=search)
    if tool is None:
        pytest.fail("check-jsonschema is not installed: run `uv sync` (dev dependency)")
    return subprocess.run(
        [tool, "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def steps(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(job, step) for job, spec in doc["jobs"].items() for step in spec.get("steps", [])]


def uv_pins() -> set[str]:
    makefile = re.search(r"^UV_VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    ci_run = re.search(r'"uv==([\d.]+)"', (REPO / ".ci" / "run").read_text())
    assert makefile and ci_run, "the uv pin moved in the Makefile or .ci/run"
    return {makefile[1], ci_run[1]}


def minimum_python() -> str:
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    return re.search(r">=\s*(\d+\.\d+)", requires)[1]


# --------------------------------------------------------------------------------------------------
# Rules: each returns a list of problems


def rule_runs_ci_entrypoint(doc: dict[str, Any]) -> list[str]:
    for job, step in steps(doc):
        if CI_COMMAND in str(step.get("run", "")).splitlines():
            job_steps = doc["jobs"][job]["steps"]
            before = job_steps[: job_steps.index(step)]
            if not any(str(s.get("uses", "")).startswith("actions/checkout@") for s in before):
                return [f"{job}: `{CI_COMMAND}` runs before the repository is checked out"]
            return []
    return [f"no step runs `{CI_COMMAND}`"]


def rule_toolchain(doc: dict[str, Any]) -> list[str]:
    problems = []
    pythons = [
        str(step.get("with", {}).get("python-version"))
        for _job, step in steps(doc)
        if str(step.get("uses", "")).startswith("actions/setup-python@")
    ]
    if pythons != [minimum_python()]:
        problems.append(f"setup-python must install {minimum_python()} once, got {pythons}")
    for job, spec in doc["jobs"].items():
        pinned = {str(spec.get("env", {}).get("UV_VERSION", ""))}
        installs = [s for j, s in steps(doc) if j == job and "uv==" in str(s.get("run", ""))]
        if pinned != uv_pins() or not any("uv==${UV_VERSION}" in s["run"] for s in installs):
            problems.append(f"{job}: must install uv=={'/'.join(sorted(uv_pins()))}")
    return problems


def rule_services(doc: dict[str, Any]) -> list[str]:
    problems = []
    for job, spec in doc["jobs"].items():
        services = spec.get("services", {})
        postgres, redis = services.get("postgres", {}), services.get("redis", {})
        env = postgres.get("env", {})
        if env.get("POSTGRES_DB") != "test" or env.get("POSTGRES_HOST_AUTH_METHOD") != "trust":
            problems.append(f"{job}: postgres must be trust-auth with database `test`")
        if "5432:5432" not in postgres.get("ports", []) or "6379:6379" not in redis.get(
            "ports", []
        ):
            problems.append(f"{job}: postgres and redis must listen on 5432 and 6379")
        for name, service in (("postgres", postgres), ("redis", redis)):
            if "--health-cmd" not in service.get("options", ""):
                problems.append(f"{job}: {name} needs a health check so steps wait for it")
    return problems


def rule_pinned_actions(doc: dict[str, Any]) -> list[str]:
    return [
        f"{job}: {step['uses']} is not pinned to a major version or a commit"
        for job, step in steps(doc)
        if "uses" in step and not PINNED_ACTION.match(step["uses"])
    ]


def rule_triggers_and_limits(doc: dict[str, Any]) -> list[str]:
    problems = []
    triggers = doc.get("on", {})
    if not {"push", "pull_request"} <= set(triggers if isinstance(triggers, dict) else [triggers]):
        problems.append("must run on push and pull_request")
    if doc.get("permissions") != {"contents": "read"}:
        problems.append("permissions must be read-only (contents: read)")
    for job, spec in doc["jobs"].items():
        if not 0 < spec.get("timeout-minutes", 0) <= CI_BUDGET_MINUTES:
            problems.append(f"{job}: timeout-minutes must be set, at most {CI_BUDGET_MINUTES}")
    return problems


RULES = [
    rule_runs_ci_entrypoint,
    rule_toolchain,
    rule_services,
    rule_pinned_actions,
    rule_triggers_and_limits,
]


def _job(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["jobs"]["test"]


BREAKAGES: dict[str, tuple[Callable, Callable[[dict[str, Any]], None]]] = {
    "make test instead of .ci/run": (
        rule_runs_ci_entrypoint,
        lambda d: _job(d)["steps"][-1].update(run="make test"),
    ),
    "no checkout": (rule_runs_ci_entrypoint, lambda d: _job(d)["steps"].pop(0)),
    "other python": (
        rule_toolchain,
        lambda d: _job(d)["steps"][1]["with"].update({"python-version": "3.13"}),
    ),
    "unpinned uv": (
        rule_toolchain,
        lambda d: _job(d)["steps"][2].update(run="python -m pip install uv"),
    ),
    "other uv": (rule_toolchain, lambda d: _job(d)["env"].update(UV_VERSION="0.1.0")),
    "password auth": (
        rule_services,
        lambda d: _job(d)["services"]["postgres"]["env"].pop("POSTGRES_HOST_AUTH_METHOD"),
    ),
    "no redis": (rule_services, lambda d: _job(d)["services"].pop("redis")),
    "unhealthy wait": (
        rule_services,
        lambda d: _job(d)["services"]["postgres"].update(options=""),
    ),
    "action on a branch": (
        rule_pinned_actions,
        lambda d: _job(d)["steps"][0].update(uses="actions/checkout@main"),
    ),
    "action without ref": (
        rule_pinned_actions,
        lambda d: _job(d)["steps"][1].update(uses="actions/setup-python"),
    ),
    "no pull requests": (rule_triggers_and_limits, lambda d: d["on"].pop("pull_request")),
    "write permissions": (
        rule_triggers_and_limits,
        lambda d: d.update(permissions={"contents": "write"}),
    ),
    "no timeout": (rule_triggers_and_limits, lambda d: _job(d).pop("timeout-minutes")),
}


# --------------------------------------------------------------------------------------------------
# Tests


@pytest.mark.integration  # starts a subprocess
def test_workflow_matches_the_github_workflow_schema():
    proc = check_workflow_schema(WORKFLOW)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.integration  # starts a subprocess
def test_schema_check_rejects_a_misspelt_key(tmp_path):
    broken = tmp_path / "ci.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on:", "runs_on:", 1))
    proc = check_workflow_schema(broken)
    assert proc.returncode != 0
    assert "runs_on" in proc.stdout


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.__name__)
def test_workflow_follows_rule(rule):
    assert rule(load_workflow()) == []


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_rule_catches_breakage(breakage):
    rule, mutate = BREAKAGES[breakage]
    doc = load_workflow()
    mutate(doc)
    assert rule(doc), f"{rule.__name__} did not notice: {breakage}"


def test_every_rule_is_exercised_by_a_breakage():
    assert {rule for rule, _ in BREAKAGES.values()} == set(RULES)
