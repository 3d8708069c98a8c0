"""The deployment DAG on the ``azure`` target, in real Airflow (``dag.test()``: the real task
runner, metadata DB, XComs, failure callbacks), against the two stand-ins of ``standins.py``:
``az`` first on PATH and the apps/v1 API on loopback, reached through the Airflow connection
``kubernetes_default`` given as operators give it (``AIRFLOW_CONN_KUBERNETES_DEFAULT``, JSON with
a ``kube_config`` extra).

* A failing ``az acr build`` (the code path the ``build_image`` task runs, in process): a clear
  error carrying az's stderr; and the DAG's structure, in which no ``roll_out_*`` can run after
  a failed ``build_image``. (Not a DAG run: ``build_image`` retries twice with backoff first.)
* One DAG run: the build succeeds (its exact arguments are checked), but the worker's identity
  may not patch Deployments in the staging namespace (RBAC 403): ``roll_out_staging`` fails with
  an error naming namespace, verb, resource and connection, nothing is patched, production is
  never reached, and the ``dag_failed`` alert links the runbook entry for that error.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import mlflow
import pytest
from standins import (
    AZ_CALLS_ENV,
    AZ_FAIL_ENV,
    FakeCluster,
    az_calls,
    install_az,
    kubeconfig,
    rendered_deployment,
    serve,
    stored,
)
from support import REPO, clear_settings_caches

from attrition_mlops import registry
from attrition_mlops.data import contract
from attrition_mlops.deploy.image import PLATFORM
from attrition_mlops.model.predictor import AttritionPyfunc, write_artifacts
from attrition_mlops.model.profile import build_reference_profile

pytestmark = pytest.mark.integration

ACR = "attritionacr"
REPOSITORY = f"{ACR}.azurecr.io/attrition-serving"
RUNNING = f"{REPOSITORY}:v0-aaaaaaaaaaaa"  # what both environments run before the DAG
TOKEN = "airflow-worker-token-9a8b7c"
AZ_ERROR = (  # what az prints on stderr when ACR refuses a run
    "ERROR: The registry 'attritionacr' has reached its concurrent build limit "
    "(TaskRunQuotaExceeded)"
)


def _register_model(state: Path, snapshot, predictor) -> str:
    """Version 1 of a tiny real model, with the provenance tags training writes."""
    uri = f"sqlite:///{state.resolve() / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        X = snapshot.frame[list(contract.INPUT_COLUMNS)]
        profile = build_reference_profile(X, source_sha256=snapshot.sha256)
        with tempfile.TemporaryDirectory() as tmp, mlflow.start_run():
            artifacts = write_artifacts(Path(tmp) / "model", predictor, profile)
            model_uri = mlflow.pyfunc.log_model(
                name="model",
                python_model=AttritionPyfunc(),
                artifacts=artifacts,
                pip_requirements=[],
            ).model_uri
        tags = {
            "trained_at": "2026-12-01T00:00:00+00:00",
            "holdout_auc": "0.81",
            "family": "logistic_regression",
            "data_sha256": snapshot.sha256,
            "git_commit": "0123456789abcdef0123456789abcdef01234567",
        }
        version, _ = registry.register_version(
            model_uri, "employee_attrition", run_key="azure-deploy", tags=tags
        )
        return str(version.version)
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])


@pytest.fixture(scope="module")
def azure(tmp_path_factory, snapshot, predictor):
    """A state folder with a registered version, the stand-ins, and the worker's environment."""
    root = tmp_path_factory.mktemp("azure-deploy")
    state = root / "state"
    state.mkdir()
    version = _register_model(state, snapshot, predictor)
    cluster = FakeCluster()
    for overlay in ("staging", "production"):
        cluster.add(rendered_deployment(overlay, RUNNING, "0"))
    cluster.token = TOKEN
    install_az(root / "bin")
    with serve(cluster) as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ATTRITION_"))}
        env |= {
            "PATH": f"{root / 'bin'}{os.pathsep}{env['PATH']}",
            AZ_CALLS_ENV: str(root / "az-calls.jsonl"),
            "ATTRITION_TARGET": "azure",
            "ATTRITION_STATE_DIR": str(state),
            "ATTRITION_JOBS_DIR": str(REPO / "jobs"),
            "ATTRITION_WORKFLOW_ACR_NAME": ACR,
            "ATTRITION_WORKFLOW_IMAGE_REPOSITORY": REPOSITORY,
            "ATTRITION_DEPLOY_POLL_S": "0.05",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            "AIRFLOW_CONN_KUBERNETES_DEFAULT": json.dumps(
                {"conn_type": "kubernetes", "extra": {"kube_config": kubeconfig(url, TOKEN)}}
            ),
        }
        yield {
            "root": root,
            "state": state,
            "env": env,
            "cluster": cluster,
            "version": version,
            "before": {
                env_: copy.deepcopy(stored(cluster, env_)) for env_ in ("staging", "production")
            },
        }


def _run(azure, name: str, extra_env: dict[str, str]) -> dict:
    out = azure["root"] / f"result-{name}.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "attrition_mlops.orchestration.local_airflow",
            "run",
            "attrition_deployment",
            "--conf",
            json.dumps({"version": azure["version"]}),
            "--result-json",
            str(out),
        ],
        env=azure["env"] | extra_env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-5000:]
    return json.loads(out.read_text()) | {"output": proc.stdout + proc.stderr}


def _alerts(azure, run_id: str) -> list[dict]:
    path = azure["state"] / "alerts" / "alerts.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if r.get("record") == "alert" and r.get("run_id") == run_id]


@pytest.fixture(scope="module")
def forbidden_rollout(azure) -> dict:
    """The one DAG run: the image builds, then RBAC refuses the staging patch."""
    cluster = azure["cluster"]
    with cluster.lock:
        cluster.forbidden = {("attrition-staging", "patch")}
    return _run(azure, "forbidden-rollout", {})


def _descendants(dag, task_id: str) -> set[str]:
    return dag.get_task(task_id).get_flat_relative_ids(upstream=False)


def test_a_failed_acr_build_raises_azs_error_and_no_rollout_can_follow(
    azure, monkeypatch, tmp_path
):
    """The code path the DAG's ``build_image`` task runs, then the DAG's structure."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import TriggerRule

    from attrition_mlops.deploy.image import ImageBuildError
    from attrition_mlops.orchestration import deploy

    calls = tmp_path / "az-calls.jsonl"
    for name, value in (azure["env"] | {AZ_CALLS_ENV: str(calls), AZ_FAIL_ENV: AZ_ERROR}).items():
        if name.startswith(("ATTRITION_", "AZ_", "PATH", "MLFLOW_")):
            monkeypatch.setenv(name, value)
    clear_settings_caches()
    uris = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    requests = len(azure["cluster"].log)
    try:
        with pytest.raises(ImageBuildError) as failed:
            deploy.build_image(azure["version"])
    finally:
        clear_settings_caches()
        mlflow.set_tracking_uri(uris[0])
        mlflow.set_registry_uri(uris[1])
    message = str(failed.value)
    assert message.startswith(f"`az acr build --registry {ACR} --image attrition-serving:v1-")
    assert "exited 1" in message and AZ_ERROR in message  # az's own words, for the task log
    assert len(az_calls(calls)) == 1
    assert len(azure["cluster"].log) == requests  # the cluster was not called

    # In the DAG, every roll_out_* depends on build_image through all_success steps only, so a
    # failed build leaves them upstream_failed: no environment is touched.
    dag = DagBag(dag_folder=str(REPO / "dags")).dags["attrition_deployment"]
    after_build = _descendants(dag, "build_image")
    for env in ("staging", "production"):
        rollout = f"roll_out_{env}"
        assert rollout in after_build
        between = after_build & dag.get_task(rollout).get_flat_relative_ids(upstream=True)
        rules = {t: TriggerRule(dag.get_task(t).trigger_rule) for t in between | {rollout}}
        assert set(rules.values()) == {TriggerRule.ALL_SUCCESS}, rules


def test_the_acr_build_gets_the_exact_arguments(azure, forbidden_rollout):
    assert forbidden_rollout["tasks"]["build_image"] == "success", forbidden_rollout["output"][
        -3000:
    ]
    context = azure["state"].resolve() / "images" / f"v{azure['version']}"
    record = json.loads((context / "build.json").read_text())
    tag = record["tag"]
    calls = az_calls(Path(azure["env"][AZ_CALLS_ENV]))
    assert len(calls) == 1
    assert calls[0] == [
        "acr",
        "build",
        "--registry",
        ACR,
        "--image",
        f"attrition-serving:{tag}",
        "--platform",
        PLATFORM,
        "--file",
        str(context / "Dockerfile"),
        "--build-arg",
        f"IMAGE_TAG={tag}",
        "--build-arg",
        f"MODEL_VERSION={azure['version']}",
        str(context),
    ]
    # what ACR pushed is what the rollout asks the cluster to pull
    assert record["image_ref"] == f"{REPOSITORY}:{tag}"


def test_an_rbac_refusal_fails_the_rollout_clearly_patches_nothing_and_alerts(
    azure, forbidden_rollout
):
    tasks = forbidden_rollout["tasks"]
    assert forbidden_rollout["state"] == "failed"
    assert tasks["read_deployed"] == "success"  # get is allowed
    assert tasks["roll_out_staging"] == "failed"
    for task in ("wait_for_staging", "smoke_test_staging", "approve_production"):
        assert tasks[task] == "upstream_failed", (task, tasks)
    assert tasks["roll_out_production"] == "upstream_failed"
    cluster = azure["cluster"]
    assert cluster.patches == []  # no rollout: the one PATCH was refused
    assert [m for m, path, _ in cluster.log if m == "PATCH"] == ["PATCH"]
    for env in ("staging", "production"):
        assert stored(cluster, env) == azure["before"][env]
    assert set(cluster.authorizations) == {f"Bearer {TOKEN}"}  # the connection's credentials

    # the refusal changed nothing: no rollback runs, and none is announced
    assert tasks["roll_back_staging"] == "skipped"
    alerts = _alerts(azure, forbidden_rollout["run_id"])
    assert sorted((a["event"], a["task_id"]) for a in alerts) == [
        ("dag_failed", "roll_out_staging")
    ]
    [alert] = [a for a in alerts if a["task_id"] == "roll_out_staging"]
    assert alert["event"] == "dag_failed" and alert["severity"] == "critical"
    assert alert["details"]["error"]["type"] == "RolloutForbidden"
    message = alert["details"]["error"]["message"]
    for part in (
        "refused to patch deployments/attrition-serving in namespace attrition-staging",
        "403 Forbidden",
        "Airflow connection 'kubernetes_default'",
    ):
        assert part in message, message
    assert alert["runbook"].endswith("#error-rolloutforbidden")
