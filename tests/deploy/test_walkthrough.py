"""The "Going to production" walkthrough (docs/deployment.md) names exactly what the code reads.

The code's side is derived, not copied: the settings are the fields of every pydantic-settings
class in the package (found by importing each module that defines one) under its env prefix,
plus the ``ATTRITION_*`` variables read directly; the connections are the defaults of the
settings fields that name one (``*conn_id``), and every connection id written as a literal in
the code must be one of them. The walkthrough's side is parsed: every ``ATTRITION_*`` name it
mentions (``PREFIX_*`` stands for a whole settings surface), and every ``AIRFLOW_CONN_<ID>``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest
import yaml
from pydantic_settings import BaseSettings
from support import REPO

from attrition_mlops.deploy.rollout import DeploySettings

PACKAGE = REPO / "src" / "attrition_mlops"
DOC = REPO / "docs" / "deployment.md"
SECTION = "## Going to production"
NAME = re.compile(r"\bATTRITION_[A-Z0-9_]*[A-Z0-9](?:_\*)?|\bATTRITION_[A-Z0-9_]+_\*")
CONNECTION = re.compile(r"\bAIRFLOW_CONN_([A-Z0-9_]+)\b")
ENV_NAME = re.compile(r"^ATTRITION_[A-Z0-9_]*[A-Z0-9]$")

# What only the local target reads: the azure target must not be told to set it. Each entry is
# checked below to be read by the code, so this list cannot outlive what it excuses.
LOCAL_ONLY = {
    "ATTRITION_LOCAL_SERVING_": "the local target's serving processes (LocalServingSettings)",
    "ATTRITION_JOBS_DIR": "the local runner's jobs/ (azure: ATTRITION_DATABRICKS_JOBS_PATH)",
    "ATTRITION_AIRFLOW_DB_URL": "the local Airflow of `make up` / `make demo`",
    "ATTRITION_MLFLOW_UI_PORT": "the local MLflow UI of `make up`",
}


def walkthrough() -> str:
    text = DOC.read_text()
    assert text.count(SECTION) == 1, f"docs/deployment.md has no single {SECTION!r} section"
    start = text.index(SECTION) + len(SECTION)
    end = text.find("\n## ", start)
    return text[start : end if end != -1 else len(text)]


def settings_classes() -> list[type[BaseSettings]]:
    """Every pydantic-settings class the package defines (each module that mentions one)."""
    found: dict[str, type[BaseSettings]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "BaseSettings" not in path.read_text():
            continue
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        module = importlib.import_module(".".join(p for p in parts if p != "__init__"))
        for obj in vars(module).values():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseSettings)
                and obj.__module__ == module.__name__
            ):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return list(found.values())


def env_names(cls: type[BaseSettings]) -> dict[str, str]:
    """Environment variable -> field of one settings class."""
    prefix = cls.model_config.get("env_prefix", "")
    return {f"{prefix}{field}".upper(): field for field in cls.model_fields}


def direct_env_reads(root: Path = PACKAGE) -> set[str]:
    """``ATTRITION_*`` names the code holds as string constants (read with os.environ)."""
    names = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if ENV_NAME.match(node.value):
                    names.add(node.value)
    return names


def literal_connection_ids(root: Path = PACKAGE) -> set[str]:
    """Connection ids written as literals: ``*conn_id=...`` arguments and parameter defaults."""
    ids = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and (node.arg or "").endswith("conn_id"):
                values = [node.value]
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                args = node.args.args + node.args.kwonlyargs
                defaults = [None] * (len(node.args.args) - len(node.args.defaults))
                defaults += node.args.defaults + node.args.kw_defaults
                pairs = zip(args, defaults, strict=True)
                values = [d for a, d in pairs if a.arg.endswith("conn_id")]
            else:
                continue
            for value in values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    ids.add(value.value)
    return ids


@pytest.fixture(scope="module")
def code() -> dict:
    classes = settings_classes()
    prefixes: dict[str, set[str]] = {}
    names: set[str] = set()
    connections: set[str] = set()
    for cls in classes:
        prefix = cls.model_config.get("env_prefix", "").upper()
        if prefix in LOCAL_ONLY:
            continue
        fields = env_names(cls)
        prefixes.setdefault(prefix, set()).update(fields)
        names.update(fields)
        for field in fields.values():
            if field.endswith("conn_id"):
                connections.add(cls.model_fields[field].default)
    direct = direct_env_reads() - set(LOCAL_ONLY)
    return {
        "classes": classes,
        "prefixes": prefixes,
        "names": names | direct,
        "connections": connections,
    }


@pytest.fixture(scope="module")
def named() -> dict:
    text = walkthrough()
    mentions = set(NAME.findall(text))
    return {
        "names": {m for m in mentions if not m.endswith("*")},
        "surfaces": {m[:-1] for m in mentions if m.endswith("*")},
        "connections": {c.lower() for c in CONNECTION.findall(text)},
        "text": text,
    }


def test_the_code_side_is_found(code):
    # The derivation itself: it sees the surfaces the azure target is configured through.
    assert {"ATTRITION_", "ATTRITION_DEPLOY_", "ATTRITION_DATABRICKS_", "ATTRITION_ALERT_"} <= set(
        code["prefixes"]
    )
    assert "ATTRITION_DEPLOY_KUBERNETES_CONN_ID" in code["names"]
    assert {"kubernetes_default", "databricks_default"} <= code["connections"]


def test_the_walkthrough_names_nothing_the_code_does_not_read(code, named):
    unknown = sorted(named["names"] - code["names"])
    assert not unknown, f"the walkthrough names settings no code reads: {unknown}"
    surfaces = sorted(named["surfaces"] - set(code["prefixes"]))
    assert not surfaces, f"the walkthrough names surfaces no settings class has: {surfaces}"
    assert named["connections"] <= code["connections"], named["connections"] - code["connections"]


def test_the_walkthrough_leaves_out_nothing_the_azure_target_reads(code, named):
    covered = set(named["names"])
    for prefix in named["surfaces"]:
        covered |= code["prefixes"][prefix]
    missing = sorted(code["names"] - covered)
    assert not missing, f"the walkthrough does not name: {missing}"
    assert code["connections"] <= named["connections"], code["connections"] - named["connections"]


def test_no_connection_id_is_hard_coded_outside_a_setting(code):
    # A literal connection id elsewhere (a default argument, a hook call) would be a connection
    # the settings, and so the walkthrough, do not know about.
    assert literal_connection_ids() <= code["connections"], literal_connection_ids()


def test_the_scanners_find_literals(tmp_path):
    (tmp_path / "m.py").write_text(
        "import os\n"
        "def hook(conn_id='kube_x', *, smtp_conn_id='mail_y', other='z'): ...\n"
        "hook(databricks_conn_id='dbx_z')\n"
        "os.environ.get('ATTRITION_SOMETHING_SET')\n"
        "PREFIX = 'ATTRITION_SURFACE_'\n"
    )
    assert literal_connection_ids(tmp_path) == {"kube_x", "mail_y", "dbx_z"}
    assert direct_env_reads(tmp_path) == {"ATTRITION_SOMETHING_SET"}


def test_local_only_names_are_read_by_the_code_and_not_in_the_walkthrough(code, named):
    prefixes = {cls.model_config.get("env_prefix", "").upper() for cls in code["classes"]}
    direct = direct_env_reads()
    for name in LOCAL_ONLY:
        assert name in prefixes or name in direct, f"{name} is excused but nothing reads it"
        assert not any(n.startswith(name) for n in named["names"] | named["surfaces"]), name


def test_the_rbac_example_grants_what_the_rollout_needs_and_validates():
    import kubernetes_validate

    blocks = re.findall(r"```yaml\n(.*?)```", walkthrough(), re.DOTALL)
    objects = [doc for block in blocks for doc in yaml.safe_load_all(block) if doc]
    kinds = {obj["kind"]: obj for obj in objects}
    assert set(kinds) == {"Role", "RoleBinding"}
    for obj in objects:
        kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)
    deploy = DeploySettings()
    role = kinds["Role"]
    assert role["metadata"]["namespace"] == deploy.staging_namespace
    assert role["rules"] == [
        {
            "apiGroups": ["apps"],
            "resources": ["deployments"],
            "resourceNames": [deploy.deployment],
            "verbs": ["get", "patch"],  # read (current, wait) and the strategic merge patch
        }
    ]
    assert kinds["RoleBinding"]["roleRef"]["name"] == role["metadata"]["name"]
    assert f"`{deploy.production_namespace}`" in walkthrough()  # "the same pair in ..."
