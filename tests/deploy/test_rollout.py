"""Rollout, wait and rollback on both targets.

Kubernetes: the real ``kubernetes`` client talks HTTP to the apps/v1 stand-in of
``standins.py`` (loopback; kustomize-rendered overlays; strategic merge patches with
resourceVersion preconditions; a simulated deployment controller; a bearer token and RBAC), with
the client built from an Airflow connection as on the azure target.

Local: real serving processes (``uvicorn --factory ...``, detached, pid files) following the
``staging``/``production`` aliases of a real MLflow store with tiny real models.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import mlflow
import pytest
import yaml
from kubernetes.client import (
    ApiClient,
    Configuration,
    V1Container,
    V1Deployment,
    V1DeploymentCondition,
    V1DeploymentSpec,
    V1DeploymentStatus,
    V1LabelSelector,
    V1ObjectMeta,
    V1PodSpec,
    V1PodTemplateSpec,
)
from standins import (
    DEPLOYMENTS,
    FakeCluster,
    kubeconfig,
    rendered_deployment,
    serve,
    stored,
    validated,
)
from support import clear_settings_caches, free_port

from attrition_mlops import registry
from attrition_mlops import settings as settings_module
from attrition_mlops.data import contract
from attrition_mlops.deploy.rollout import (
    ENVIRONMENTS,
    Deployed,
    DeploySettings,
    LocalBackend,
    RolloutFailed,
    RolloutTimeout,
    deploy_environment,
    get_backend,
    kubernetes,
    record_deployment,
    smoke_test_environment,
)
from attrition_mlops.deploy.rollout import local as local_rollout
from attrition_mlops.deploy.smoke import SmokeTestFailed
from attrition_mlops.model.predictor import AttritionPyfunc, write_artifacts
from attrition_mlops.model.profile import build_reference_profile
from attrition_mlops.registry.tracking import configure_mlflow
from attrition_mlops.settings import PipelineSettings

IMAGE_V1 = "myacr.azurecr.io/attrition-serving:v1-111111111111"
IMAGE_V2 = "myacr.azurecr.io/attrition-serving:v2-222222222222"
IMAGE_BROKEN = "myacr.azurecr.io/attrition-serving:v3-333333333333"


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict]:
    return {env: rendered_deployment(env, IMAGE_V1, "1") for env in ("staging", "production")}


@pytest.fixture
def cluster(manifests) -> Iterator[tuple[FakeCluster, str]]:
    fake = FakeCluster()
    for obj in manifests.values():
        fake.add(copy.deepcopy(obj))
    with serve(fake) as url:
        yield fake, url


@pytest.fixture
def backend(cluster) -> Iterator[kubernetes.KubernetesBackend]:
    fake, url = cluster
    client = ApiClient(Configuration(host=url))
    try:
        yield kubernetes.KubernetesBackend(client, DeploySettings(poll_s=0.01))
    finally:
        client.close()


# -- the rollout-status rule ------------------------------------------------------------------


def _deployment(generation=2, observed=2, replicas=2, updated=2, total=2, available=2, reason=""):
    conditions = [V1DeploymentCondition(type="Progressing", status="True", reason=reason)]
    return V1Deployment(
        metadata=V1ObjectMeta(generation=generation),
        spec=V1DeploymentSpec(
            replicas=replicas,
            selector=V1LabelSelector(match_labels={"app": "a"}),
            template=V1PodTemplateSpec(spec=V1PodSpec(containers=[V1Container(name="serving")])),
        ),
        status=V1DeploymentStatus(
            observed_generation=observed,
            updated_replicas=updated,
            replicas=total,
            available_replicas=available,
            conditions=conditions,
        ),
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, ("complete", "2 of 2 replicas updated and available")),
        ({"observed": 1}, ("progressing", "waiting for the deployment controller to observe")),
        # a deadline from the previous generation does not count until the new one is observed
        ({"observed": 1, "reason": "ProgressDeadlineExceeded"}, ("progressing", "waiting")),
        ({"reason": "ProgressDeadlineExceeded"}, ("failed", "ProgressDeadlineExceeded")),
        ({"updated": 1, "total": 3}, ("progressing", "1 of 2 new replicas updated")),
        ({"total": 3}, ("progressing", "1 old replicas pending termination")),
        ({"available": 1}, ("progressing", "1 of 2 updated replicas available")),
    ],
)
def test_rollout_status_has_kubectl_semantics(fields, expected):
    state, message = kubernetes.rollout_status(_deployment(**fields))
    assert state == expected[0] and message.startswith(expected[1])


# -- Kubernetes backend against the fake API server -----------------------------------------


@pytest.mark.integration  # starts a subprocess
def test_roll_out_patches_image_and_version_waits_and_is_idempotent(cluster, backend):
    fake, _ = cluster
    assert backend.current("production") == Deployed("production", "1", IMAGE_V1)

    previous = backend.roll_out("production", model_version="2", image=IMAGE_V2)

    assert previous == Deployed("production", "1", IMAGE_V1)
    assert Deployed.from_dict(json.loads(json.dumps(previous.to_dict()))) == previous  # XCom
    (patch_call,) = [entry for entry in fake.log if entry[0] == "PATCH"]
    assert patch_call == (
        "PATCH",
        DEPLOYMENTS.format("attrition-production", "attrition-serving"),
        "application/strategic-merge-patch+json",
    )
    obj = stored(fake, "production")
    model = validated(obj)
    assert model.spec.template.spec.containers[0].image == IMAGE_V2
    assert model.spec.template.metadata.annotations[kubernetes.MODEL_VERSION_ANNOTATION] == "2"
    assert model.metadata.annotations[kubernetes.PREVIOUS_IMAGE_ANNOTATION] == IMAGE_V1
    assert model.metadata.annotations[kubernetes.PREVIOUS_VERSION_ANNOTATION] == "1"
    assert model.metadata.generation == 2
    # the merge touched only what it should: probes, resources, security context survive
    container = obj["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert fake.patches[0]["metadata"]["resourceVersion"] == "1000"  # compare-and-set

    backend.wait("production", model_version="2", image=IMAGE_V2, timeout_s=10)

    seen = {message for _, message in fake.statuses}
    # the wait really went through a rolling update (surge one, retire one), not straight to done
    assert {
        "waiting for the deployment controller to observe the new spec",
        "1 of 2 new replicas updated",
        "1 old replicas pending termination",
        "2 of 2 replicas updated and available",
    } <= seen, seen
    assert kubernetes.rollout_status(validated(stored(fake, "production")))[0] == "complete"
    assert stored(fake, "production")["status"]["replicas"] == 2

    # a retried rollout changes nothing and still reports what ran before it
    again = backend.roll_out("production", model_version="2", image=IMAGE_V2)
    assert again == previous
    assert len(fake.patches) == 1 and stored(fake, "production")["metadata"]["generation"] == 2
    # staging was never touched
    assert backend.current("staging") == Deployed("staging", "1", IMAGE_V1)


def test_progress_deadline_exceeded_fails_and_roll_back_restores_the_previous_image(
    cluster, backend
):
    fake, _ = cluster
    fake.stuck_images.add(IMAGE_BROKEN)
    previous = backend.roll_out("production", model_version="3", image=IMAGE_BROKEN)

    with pytest.raises(RolloutFailed) as failed:
        backend.wait("production", model_version="3", image=IMAGE_BROKEN, timeout_s=30)

    message = str(failed.value)
    assert message.startswith("production: rollout of model version 3, image " + IMAGE_BROKEN)
    assert "ProgressDeadlineExceeded" in message and failed.value.environment == "production"
    # the old pods kept serving throughout (maxUnavailable 0)
    assert stored(fake, "production")["status"]["availableReplicas"] == 2

    backend.roll_back("production", previous)

    model = validated(stored(fake, "production"))
    assert backend.current("production") == Deployed("production", "1", IMAGE_V1)
    assert model.metadata.annotations[kubernetes.ROLLED_BACK_FROM_ANNOTATION] == IMAGE_BROKEN
    assert kubernetes.PREVIOUS_IMAGE_ANNOTATION not in model.metadata.annotations
    assert kubernetes.rollout_status(model)[0] == "complete"  # roll_back waited for it
    assert model.status.replicas == 2 and model.status.updated_replicas == 2
    # rolling back again is a no-op that just confirms the state
    patches = len(fake.patches)
    backend.roll_back("production", previous)
    assert len(fake.patches) == patches


def test_wait_times_out_with_the_last_observed_state(cluster, backend):
    fake, _ = cluster
    fake.frozen = True  # e.g. the controller manager is down
    backend.roll_out("staging", model_version="2", image=IMAGE_V2)
    started = time.monotonic()
    with pytest.raises(RolloutTimeout) as timeout:
        backend.wait("staging", model_version="2", image=IMAGE_V2, timeout_s=0.3)
    assert time.monotonic() - started < 5
    assert str(timeout.value) == (
        f"staging: model version 2, image {IMAGE_V2} not rolled out within 0.3 s; last observed: "
        "waiting for the deployment controller to observe the new spec"
    )


def test_a_concurrent_change_is_a_conflict_and_changes_nothing(cluster, backend):
    fake, _ = cluster

    def someone_else_wrote(obj: dict) -> None:
        obj["metadata"]["resourceVersion"] = "1001"

    fake.before_patch = someone_else_wrote
    with pytest.raises(RolloutFailed, match="resourceVersion conflict"):
        backend.roll_out("staging", model_version="2", image=IMAGE_V2)
    assert backend.current("staging") == Deployed("staging", "1", IMAGE_V1)


def test_wait_notices_a_rollout_made_by_someone_else(cluster, backend):
    fake, _ = cluster
    backend.roll_out("staging", model_version="2", image=IMAGE_V2)
    with fake.lock:
        stored(fake, "staging")["spec"]["template"]["spec"]["containers"][0]["image"] = "other:1"
    with pytest.raises(RolloutFailed, match="now specifies model version 2, image other:1"):
        backend.wait("staging", model_version="2", image=IMAGE_V2, timeout_s=10)


def test_an_unknown_environment_is_refused_before_any_request(cluster, backend):
    fake, _ = cluster
    with pytest.raises(ValueError, match="unknown environment 'prod': expected one of staging"):
        backend.roll_out("prod", model_version="2", image=IMAGE_V2)
    assert fake.log == []


def test_a_missing_deployment_is_a_clear_failure(cluster, backend):
    fake, _ = cluster
    del fake.objects[("attrition-staging", "attrition-serving")]
    with pytest.raises(RolloutFailed, match=r"no Deployment attrition-staging/attrition-serving"):
        backend.roll_out("staging", model_version="2", image=IMAGE_V2)


def test_azure_target_gets_the_kubernetes_backend(cluster):
    _, url = cluster
    client = ApiClient(Configuration(host=url))
    try:
        chosen = get_backend(PipelineSettings(target="azure"), api_client=client)
        assert isinstance(chosen, kubernetes.KubernetesBackend)
        assert chosen.current("production") == Deployed("production", "1", IMAGE_V1)
    finally:
        client.close()


# -- the client from an Airflow connection; what the API refuses --------------------------------

TOKEN = "worker-token-4f1d2c3b"


@pytest.fixture
def airflow_connection(monkeypatch) -> Iterator[Callable[[str, dict], None]]:
    """Give a Kubernetes connection the way operators do: ``AIRFLOW_CONN_<ID>`` holding JSON.

    ``load_kube_config`` (what the provider's hook calls) replaces the client's process-wide
    default configuration; it is reset afterwards so no other test talks to this server."""
    for name in [n for n in os.environ if n.startswith("AIRFLOW_CONN_")]:
        monkeypatch.delenv(name)

    def give(conn_id: str, extra: dict) -> None:
        value = json.dumps({"conn_type": "kubernetes", "extra": extra})
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)

    yield give
    Configuration.set_default(None)


@pytest.mark.parametrize("form", ["kube_config", "kube_config_path"])
def test_the_azure_client_is_built_from_the_airflow_connection(
    cluster, airflow_connection, tmp_path, form
):
    fake, url = cluster
    fake.token = TOKEN
    config = kubeconfig(url, TOKEN)
    if form == "kube_config_path":
        path = tmp_path / "kubeconfig.yaml"
        path.write_text(yaml.safe_dump(config))
        airflow_connection("kubernetes_default", {"kube_config_path": str(path)})
    else:
        airflow_connection("kubernetes_default", {"kube_config": config})

    chosen = get_backend(PipelineSettings(target="azure"))

    assert isinstance(chosen, kubernetes.KubernetesBackend)
    assert chosen.current("production") == Deployed("production", "1", IMAGE_V1)
    assert fake.authorizations == [f"Bearer {TOKEN}"]  # the connection's credentials, no other


def test_the_connection_id_is_a_setting_and_bad_credentials_name_it(
    cluster, airflow_connection, monkeypatch
):
    fake, url = cluster
    fake.token = TOKEN
    monkeypatch.setenv("ATTRITION_DEPLOY_KUBERNETES_CONN_ID", "aks_attrition")
    airflow_connection("kubernetes_default", {"kube_config": kubeconfig(url, "someone-elses")})
    airflow_connection("aks_attrition", {"kube_config": kubeconfig(url, TOKEN)})
    assert get_backend(PipelineSettings(target="azure")).current("staging").image == IMAGE_V1

    airflow_connection("aks_attrition", {"kube_config": kubeconfig(url, "expired-token")})
    with pytest.raises(kubernetes.RolloutForbidden) as refused:
        get_backend(PipelineSettings(target="azure")).current("staging")
    assert str(refused.value) == (
        "staging: rollout of current state failed: the Kubernetes API refused the credentials "
        "of Airflow connection 'aks_attrition' (401 Unauthorized) to get "
        "deployments/attrition-serving in namespace attrition-staging; renew the token or "
        "kubeconfig in that connection"
    )


def test_an_rbac_refusal_names_namespace_verb_resource_and_connection_and_changes_nothing(
    cluster, backend
):
    fake, _ = cluster
    fake.forbidden.add(("attrition-staging", "patch"))  # may read, may not patch
    before = copy.deepcopy(stored(fake, "staging"))

    with pytest.raises(kubernetes.RolloutForbidden) as denied:
        deploy_environment("staging", model_version="2", image=IMAGE_V2, backend=backend)

    assert isinstance(denied.value, RolloutFailed) and denied.value.environment == "staging"
    assert str(denied.value) == (
        f"staging: rollout of model version 2, image {IMAGE_V2} failed: the Kubernetes API "
        "refused to patch deployments/attrition-serving in namespace attrition-staging (403 "
        'Forbidden: deployments.apps "attrition-serving" is forbidden: User '
        '"system:serviceaccount:airflow:airflow-worker" cannot patch resource "deployments" in '
        'API group "apps" in the namespace "attrition-staging"). The identity of Airflow '
        "connection 'kubernetes_default' needs get and patch on deployments (API group apps) in "
        "attrition-staging: a Role and RoleBinding there (docs/deployment.md); nothing was changed"
    )
    assert stored(fake, "staging") == before and fake.patches == []  # no rollout at all
    assert [method for method, _, _ in fake.log] == ["GET", "PATCH"]  # and no rollback attempt

    fake.forbidden = {("attrition-production", "get")}
    with pytest.raises(kubernetes.RolloutForbidden, match="refused to get deployments/"):
        backend.current("production")


def test_the_failure_alert_for_a_refused_rollout_links_its_runbook_entry():
    from attrition_mlops.orchestration.notifier import alert_from_context

    refused = kubernetes.RolloutForbidden(
        "production", "model version 2", "the Kubernetes API refused to patch deployments/..."
    )
    ti = SimpleNamespace(
        dag_id="attrition_deployment", task_id="roll_out_production", run_id="r1", try_number=1
    )
    alert = alert_from_context({"exception": refused, "ti": ti})
    assert alert.event == "dag_failed" and alert.details["error"]["type"] == "RolloutForbidden"
    assert alert.runbook.endswith("runbook.md#error-rolloutforbidden")
    assert "failed with RolloutForbidden: production: rollout of model version 2" in alert.summary


# -- local backend: real serving processes on a real MLflow store -----------------------------

STAGING_KEY = "staging-smoke-test-key"


@pytest.fixture(scope="module")
def registered(tmp_path_factory, snapshot, predictor) -> Iterator[PipelineSettings]:
    """One local state folder for this module's local tests: a real SQLite MLflow store with
    versions 1 and 2 of a tiny real model and a version 3 whose predictor cannot load, and the
    local-serving settings (free ports, fast polling, an API key on staging)."""
    uris = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ATTRITION_STATE_DIR", str(tmp_path_factory.mktemp("rollout") / "state"))
        for name in ("ATTRITION_TARGET", "ATTRITION_TRACKING_URI", "ATTRITION_REGISTRY_URI"):
            env.delenv(name, raising=False)
        env.setenv("ATTRITION_LOCAL_SERVING_STAGING_PORT", str(free_port()))
        env.setenv("ATTRITION_LOCAL_SERVING_PRODUCTION_PORT", str(free_port()))
        env.setenv("ATTRITION_LOCAL_SERVING_POLL_SECONDS", "0.3")
        env.setenv("ATTRITION_DEPLOY_STAGING_API_KEY", STAGING_KEY)
        env.setenv("ATTRITION_DEPLOY_ROLLOUT_TIMEOUT_S", "240")  # a cold start on a busy machine
        clear_settings_caches()
        settings = settings_module.get_settings()
        configure_mlflow(settings)
        _register_tiny_models(settings.model_name, snapshot, predictor)
        yield settings
    clear_settings_caches()
    mlflow.set_tracking_uri(uris[0])
    mlflow.set_registry_uri(uris[1])


def _register_tiny_models(name: str, snapshot, predictor) -> None:
    X = snapshot.frame[list(contract.INPUT_COLUMNS)]
    profile = build_reference_profile(X, source_sha256=snapshot.sha256)
    uris = {}
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run():
        for kind in ("good", "broken"):
            artifacts = write_artifacts(Path(tmp) / kind, predictor, profile)
            if kind == "broken":
                Path(artifacts["predictor"]).write_bytes(b"not a joblib pickle")
            uris[kind] = mlflow.pyfunc.log_model(
                name=kind,
                python_model=AttritionPyfunc(),
                artifacts=artifacts,
                pip_requirements=[],
            ).model_uri
    tags = {
        "trained_at": "2026-01-01T00:00:00+00:00",
        "holdout_auc": "0.81",
        "family": "logistic_regression",
    }
    for run_key, kind in (("v1", "good"), ("v2", "good"), ("v3", "broken")):
        registry.register_version(uris[kind], name, run_key=run_key, tags=tags)


@pytest.fixture
def local(registered) -> Iterator[LocalBackend]:
    """The local target's backend; every server it started is stopped after the test."""
    backend = get_backend()
    assert isinstance(backend, LocalBackend)
    try:
        yield backend
    finally:
        for env in ENVIRONMENTS:
            backend.stop_server(env, timeout_s=30)
        # and anything a failed test left without a pid file: no server outlives the test
        for process in local_rollout._CHILDREN.values():
            if process.poll() is None:
                process.terminate()
                process.wait(30)


def _served_version(backend: LocalBackend, env: str) -> str:
    headers = {"X-API-Key": STAGING_KEY} if env == "staging" else {}
    response = httpx.get(f"{backend.serving.base_url(env)}/model", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["version"]


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.integration
def test_local_rollout_follows_the_alias_smoke_tests_and_rolls_back(local, registered):
    name = registered.model_name
    assert local.current("staging") == Deployed("staging", None, None)

    assert local.roll_out("staging", model_version="1", image=None) == Deployed(
        "staging", None, None
    )
    pid = local.ensure_server("staging")  # already running: the same process
    assert local.pid_file("staging").read_text().strip() == str(pid)
    local.wait("staging", model_version="1")
    report = smoke_test_environment("staging", expected_version="1")
    assert report["passed"] and "requires_api_key" in [c["name"] for c in report["checks"]]
    # the local server runs the same launcher as production: its header limit holds here too
    huge = httpx.get(
        f"{local.serving.base_url('staging')}/health/live",
        headers={"X-Padding": "x" * 64 * 1024},
        timeout=10,
    )
    assert huge.status_code == 431

    # v2: the alias moves and the running server hot-swaps (no restart)
    previous = local.roll_out("staging", model_version="2", image=None)
    assert previous == Deployed("staging", "1", None)
    local.wait("staging", model_version="2", timeout_s=60)
    assert local.ensure_server("staging") == pid and _served_version(local, "staging") == "2"
    assert smoke_test_environment("staging", expected_version="2")["passed"]
    audit = registry.get_version(name, "2").tags
    assert audit["audit.staging.reason"] == "deployment"
    assert audit["audit.staging.previous_version"] == "1"
    # a retried rollout moves nothing and still knows what ran before it
    assert local.roll_out("staging", model_version="2", image=None) == previous

    # a failed check after the rollout (here: the version the DAG expected is not served)
    with pytest.raises(SmokeTestFailed):
        smoke_test_environment("staging", expected_version="1")
    local.roll_back("staging", previous)
    assert local.current("staging") == Deployed("staging", "1", None)
    assert _served_version(local, "staging") == "1"  # roll_back waited for the swap
    assert "audit.staging.rolled_back_at" in registry.get_version(name, "2").tags
    assert record_deployment("staging", "1") is None  # local: the rollout already moved it

    # a version that cannot load: the server keeps serving v1, the rollout times out and is
    # rolled back by deploy_environment; another backend instance finds the same server
    impatient = LocalBackend(
        registered, local.serving, DeploySettings(rollout_timeout_s=8, staging_api_key=STAGING_KEY)
    )
    with pytest.raises(RolloutTimeout) as timed_out:
        deploy_environment("staging", model_version="3", image=None, backend=impatient)
    message = str(timed_out.value)
    assert message.startswith("staging: model version 3 not rolled out within 8 s")
    assert "last observed: serving model version 1" in message
    assert f"server log {local.log_file('staging')}" in message  # its tail says why
    assert local.current("staging") == Deployed("staging", "1", None)
    assert _served_version(local, "staging") == "1"
    assert impatient.ensure_server("staging") == pid

    # one server process did all of it: every version change was a hot swap
    assert local.log_file("staging").read_text().count("Started server process") == 1

    # stopping drains and exits; the pid file goes with it
    port = local.serving.port("staging")
    assert local.stop_server("staging") is True
    assert not _port_open(port) and not local.pid_file("staging").exists()
    assert local.stop_server("staging") is False


@pytest.mark.integration
def test_a_failed_first_deployment_takes_the_environment_down(local):
    impatient = LocalBackend(local.pipeline, local.serving, DeploySettings(rollout_timeout_s=3))
    with pytest.raises(RolloutTimeout, match="production: model version 3 not rolled out"):
        deploy_environment("production", model_version="3", image=None, backend=impatient)
    # nothing ran there before, so the rollback stops the server (here: while it still starts)
    assert not local.pid_file("production").exists()
    assert not _port_open(local.serving.port("production"))
    assert local.stop_server("production") is False
    # ... and removes the alias, which must not keep naming the failed version
    assert local.current("production").model_version is None

    # the DAG's last step records what runs where: on azure it moves the alias, once
    held = local.current("production").model_version
    move = record_deployment("production", "1")
    assert (move["alias"], move["version"], move["previous"]) == ("production", "1", held)
    assert move["reason"] == "deployment"
    assert record_deployment("production", "1") is None


@pytest.mark.integration
def test_a_port_taken_by_another_process_is_a_clear_failure(local):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", local.serving.port("production")))
        squatter.listen()
        with pytest.raises(RolloutFailed, match="is taken by a process this backend did not"):
            local.ensure_server("production")
    assert not local.pid_file("production").exists()
