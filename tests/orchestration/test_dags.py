"""DAG integrity and structure: every DAG file imports cleanly and cheaply, carries its docs,
owner, tags, retries with backoff, timeouts and the failure alert, and wires the tasks the
lifecycle needs in the order it needs them."""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO

from attrition_mlops.orchestration.assets import (
    CHAMPION,
    DRIFT,
    LABELLED_SNAPSHOT,
    OUTCOMES,
    PERFORMANCE,
)
from attrition_mlops.orchestration.deploy import IMAGE, VERSION

DAG_FILES = sorted((REPO / "dags").glob("*.py"))
DAG_IDS = {
    "attrition_training",
    "attrition_deployment",
    "attrition_batch_scoring",
    "attrition_drift_monitoring",
    "attrition_snapshot_intake",
    "attrition_outcomes_intake",
    "attrition_performance_monitoring",
}
HEAVY = ("pandas", "sklearn", "scipy", "mlflow", "numpy", "pyarrow", "matplotlib", "optuna")

# Runs in a fresh interpreter, as the DAG processor's child does: Airflow is imported first (the
# processor has it loaded already), then each file is parsed once and the heavy modules it pulled
# in are listed. How long a parse takes is measured by bench/dag_parse.py, not asserted here: a
# wall-clock bound fails on a busy machine and passes on a fast one whatever the code does.
_PARSE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
report = {}
for path in sys.argv[2:]:
    for name in [m for m in sys.modules if m.startswith(("attrition_mlops", "unusual_prefix"))]:
        del sys.modules[name]
    bag = DagBag(dag_folder=path)
    heavy = sorted(m for m in sys.argv[1].split(",") if m in sys.modules)
    report[path] = {"errors": {k: str(v) for k, v in bag.import_errors.items()},
                    "dags": sorted(bag.dag_ids), "heavy": heavy}
print(json.dumps(report))
"""


def _module_scope_imports(path: Path, package: str) -> set[str]:
    """Modules a file imports when it is executed: module and class scope, not function bodies
    (imported when a task runs) nor ``if TYPE_CHECKING:`` blocks (never imported)."""
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against this file's package
                    parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{parent}.{base}" if base else parent
                found.add(base)
                # `from pkg import sub` imports the submodule when `sub` is one
                found.update(f"{base}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If):
                if "TYPE_CHECKING" not in ast.unparse(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, (ast.Try, ast.With, ast.ClassDef)):
                for field in ("body", "orelse", "finalbody"):
                    visit(getattr(node, field, []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(ast.parse(path.read_text()).body)
    return found


def import_closure(path: Path) -> set[str]:
    """Every module a DAG file imports at parse time, following this project's own modules (and
    their parent packages) transitively; third-party packages are not opened."""
    seen: set[str] = set()
    todo = [(path, "")]
    while todo:
        file, in_package = todo.pop()
        for name in _module_scope_imports(file, in_package):
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):  # `import a.b.c` runs a, a.b and a.b.c
                module = ".".join(parts[:depth])
                if module in seen:
                    continue
                seen.add(module)
                if parts[0] != "attrition_mlops":
                    continue
                try:
                    spec = importlib.util.find_spec(module)
                except ModuleNotFoundError:  # `from module import name`: name is not a module
                    spec = None
                if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
                    continue
                package = module if spec.submodule_search_locations else module.rpartition(".")[0]
                todo.append((Path(spec.origin), package))
    return seen


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_dag_file_module_scope_imports_nothing_heavy(path):
    # Static and in-process, so it runs in the fast lane; the fresh-interpreter check below
    # confirms it against what Airflow actually loads.
    heavy = sorted(m for m in import_closure(path) if m.split(".")[0] in HEAVY)
    assert heavy == [], f"{path.name} imports {heavy} at parse time; import them inside a task"


def test_the_import_check_follows_project_modules_and_skips_lazy_imports(tmp_path):
    dag = tmp_path / "dag.py"
    dag.write_text(
        "from typing import TYPE_CHECKING\n"
        "from attrition_mlops.model import features\n"  # imports sklearn at module scope
        "if TYPE_CHECKING:\n    import mlflow\n"
        "def task():\n    import pyarrow\n"
    )
    closure = import_closure(dag)
    assert {"attrition_mlops.model.features", "sklearn.pipeline", "optuna"} <= closure
    assert "mlflow" not in closure and "pyarrow" not in closure


@pytest.fixture(scope="module")
def parse_report(airflow_env) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _PARSE, ",".join(HEAVY), *map(str, DAG_FILES)],
        env=airflow_env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def dagbag(airflow_env):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag


def test_the_dags_exist(dagbag):
    assert set(dagbag.dag_ids) == DAG_IDS
    assert {f.stem for f in DAG_FILES} == DAG_IDS  # DAG id = file stem


@pytest.mark.integration  # a fresh interpreter: a subprocess
@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_dag_file_parses_in_a_fresh_interpreter_without_heavy_imports(path, parse_report):
    report = parse_report[str(path)]
    assert report["errors"] == {}
    assert report["dags"] == [path.stem]
    assert report["heavy"] == [], f"{path.name} imports {report['heavy']} at module level"


@pytest.mark.parametrize("dag_id", sorted(DAG_IDS))
def test_dag_conventions(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.doc_md and dag_id in dag.doc_md
    assert "attrition" in dag.tags and len(dag.tags) >= 2
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.dagrun_timeout is not None
    assert dag.default_args["retries"] >= 1
    assert dag.default_args["retry_exponential_backoff"] is True
    for task in dag.tasks:
        assert task.owner == "ml-platform", task.task_id
        assert task.on_failure_callback, f"{task.task_id} has no failure alert"
        if task.task_id != "approve_production":  # bounded by response_timeout instead
            assert task.execution_timeout is not None, f"{task.task_id} has no timeout"


def test_the_retry_delay_is_a_setting(monkeypatch):
    from datetime import timedelta

    from attrition_mlops.orchestration.defaults import default_args

    assert default_args()["retry_delay"] == timedelta(minutes=1)  # the production default
    monkeypatch.setenv("ATTRITION_WORKFLOW_RETRY_DELAY_SECONDS", "5")
    assert default_args()["retry_delay"] == timedelta(seconds=5)
    assert default_args()["max_retry_delay"] == timedelta(minutes=15)


def _edges(dag) -> set[tuple[str, str]]:
    return {(t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids}


def test_training_graph(dagbag):
    dag = dagbag.dags["attrition_training"]
    assert _edges(dag) == {
        ("plan_training", "validate_snapshot"),
        ("plan_training", "train_challenger"),
        ("validate_snapshot", "train_challenger"),
        ("train_challenger", "evaluate_challenger"),
        ("evaluate_challenger", "promote_champion"),
    }
    outlets = {t.task_id: [a.name for a in t.outlets] for t in dag.tasks if t.outlets}
    assert outlets == {"promote_champion": ["attrition_champion"]}
    # weekly, on demand, on the drift Asset, on degraded performance, on a new labelled snapshot
    assert dag.timetable.asset_condition == DRIFT | LABELLED_SNAPSHOT | PERFORMANCE
    assert dag.timetable.timetable.expression == "0 3 * * 1"
    assert set(dag.params) == {"snapshot", "snapshot_as_of"}


def test_snapshot_intake_graph(dagbag):
    dag = dagbag.dags["attrition_snapshot_intake"]
    assert _edges(dag) == {
        ("plan_snapshot", "add_snapshot"),
        ("add_snapshot", "announce_snapshot"),
    }
    outlets = {t.task_id: [a.name for a in t.outlets] for t in dag.tasks if t.outlets}
    assert outlets == {"announce_snapshot": ["attrition_labelled_snapshot"]}
    assert dag.get_task("add_snapshot").job == "add_snapshot"
    assert type(dag.timetable).__name__ == "NullTimetable"  # on demand, with a file and its date
    assert {"file", "as_of", "source"} == set(dag.params)


def test_outcomes_and_performance_graphs(dagbag):
    intake = dagbag.dags["attrition_outcomes_intake"]
    assert _edges(intake) == {
        ("plan_outcomes", "add_outcomes"),
        ("add_outcomes", "announce_outcomes"),
    }
    assert [a.name for a in intake.get_task("announce_outcomes").outlets] == ["attrition_outcomes"]
    assert intake.get_task("add_outcomes").job == "add_outcomes"
    assert {"file", "arrived", "simulated"} == set(intake.params)
    check = dagbag.dags["attrition_performance_monitoring"]
    assert _edges(check) == {
        ("plan_performance", "check_performance"),
        ("check_performance", "signal_performance"),
    }
    assert check.get_task("check_performance").job == "performance"
    outlets = [a.name for a in check.get_task("signal_performance").outlets]
    assert outlets == ["attrition_performance"]
    # when outcomes arrive, and nightly for the label-free estimate
    assert check.timetable.asset_condition == OUTCOMES
    assert check.timetable.timetable.expression == "30 2 * * *"


def test_deployment_graph(dagbag):
    dag = dagbag.dags["attrition_deployment"]
    edges = _edges(dag)
    chain = [
        "plan_deployment",
        "build_image",
        "read_deployed",
        "roll_out_staging",
        "wait_for_staging",
        "smoke_test_staging",
        "approve_production",
        "roll_out_production",
        "wait_for_production",
        "smoke_test_production",
        "record_deployment",
    ]
    rollbacks = {
        (f"{step}_{env}", f"roll_back_{env}")
        for env in ("staging", "production")
        for step in ("roll_out", "wait_for", "smoke_test")
    }
    # The graph is the order of the steps plus the rollbacks: no XCom edge from plan_deployment
    # (or build_image, read_deployed) to every task that reads the version (or the image).
    assert edges == set(zip(chain, chain[1:], strict=False)) | rollbacks
    assert dag.get_task("plan_deployment").downstream_task_ids == {"build_image"}
    # ... they get them as arguments, which Airflow renders (a default value it would not).
    for task in dag.tasks:
        if task.task_id not in ("plan_deployment", "read_deployed", "approve_production"):
            assert task.op_args[0] == VERSION, task.task_id
        if task.task_id.startswith(("roll_out_", "wait_for_")):
            assert task.op_args[1] == IMAGE, task.task_id
        assert "op_args" in task.template_fields or task.task_id == "approve_production"
    assert dag.get_task("approve_production").version == VERSION
    for env in ("staging", "production"):
        rollback = dag.get_task(f"roll_back_{env}")
        assert rollback.trigger_rule == "one_failed"
        assert {f"roll_out_{env}", f"wait_for_{env}", f"smoke_test_{env}"} <= set(
            rollback.upstream_task_ids
        )
        assert not rollback.downstream_task_ids
    # production cannot start before staging's smoke test and the approval
    prod = dag.get_task("roll_out_production")
    assert {"smoke_test_staging", "approve_production"} <= prod.get_flat_relative_ids(upstream=True)
    assert dag.get_task("approve_production").task_type == "DeploymentApprovalOperator"
    assert dag.timetable.asset_condition == CHAMPION


def test_batch_scoring_graph(dagbag):
    dag = dagbag.dags["attrition_batch_scoring"]
    assert _edges(dag) == {("plan_scoring", "score_snapshot")}
    assert [a.name for a in dag.get_task("score_snapshot").outlets] == ["attrition_predictions"]


def test_drift_graph(dagbag):
    dag = dagbag.dags["attrition_drift_monitoring"]
    assert _edges(dag) == {
        ("plan_drift_check", "check_drift"),
        ("check_drift", "signal_drift"),
        ("check_drift", "purge_expired_logs"),
    }
    assert [a.name for a in dag.get_task("signal_drift").outlets] == ["attrition_drift"]
    assert dag.get_task("purge_expired_logs").trigger_rule == "all_done"
