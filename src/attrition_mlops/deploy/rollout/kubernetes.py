"""The azure target's rollout: patch the serving Deployment through the Kubernetes API.

Rolling out is one strategic merge patch of the ``attrition-serving`` Deployment in the
environment's namespace: the ``serving`` container's image, the pod template annotation
``attrition.io/model-version`` (so even a same-image redeploy rolls the pods), and, on the
Deployment itself, what it replaced (``attrition.io/previous-image`` /
``attrition.io/previous-model-version``), which is what a retried rollout reports as its "before"
and what rollback restores. The patch carries the ``resourceVersion`` it was computed from, so a
concurrent change is a 409 Conflict, never a silently merged mix (compare-and-set, as for aliases).

Waiting has ``kubectl rollout status`` semantics: the controller has observed the new generation,
every desired replica is updated, no old replica is left, every updated replica is available; a
``Progressing`` condition with reason ``ProgressDeadlineExceeded`` is a failure.

The API client comes from an Airflow connection (``ATTRITION_DEPLOY_KUBERNETES_CONN_ID``, default
``kubernetes_default``) through the cncf provider's ``KubernetesHook``. A request the API refuses
(401: the connection's credentials; 403: RBAC) is a :class:`RolloutForbidden` naming the
namespace, the verb, the resource and the connection; it is raised before anything is patched.
"""

from __future__ import annotations

import json
import logging
import time

from kubernetes.client import ApiClient, AppsV1Api, V1Deployment, V1DeploymentStatus
from kubernetes.client.exceptions import ApiException

from attrition_mlops.deploy.rollout.common import (
    Deployed,
    DeploySettings,
    RolloutFailed,
    RolloutRefused,
    RolloutTimeout,
    check_environment,
    describe,
    version_str,
)

log = logging.getLogger(__name__)

MODEL_VERSION_ANNOTATION = "attrition.io/model-version"
PREVIOUS_IMAGE_ANNOTATION = "attrition.io/previous-image"
PREVIOUS_VERSION_ANNOTATION = "attrition.io/previous-model-version"
ROLLED_BACK_FROM_ANNOTATION = "attrition.io/rolled-back-from"
CHANGE_CAUSE_ANNOTATION = "kubernetes.io/change-cause"  # shown by `kubectl rollout history`
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
COMPLETE, PROGRESSING, FAILED = "complete", "progressing", "failed"
RESOURCE, API_GROUP = "deployments", "apps"


class RolloutForbidden(RolloutRefused):
    """The Kubernetes API refused a request (401 or 403): nothing was changed by it."""


def _api_message(err: ApiException) -> str:
    """The ``message`` of the Status body the API server sent, else the HTTP reason."""
    try:
        return str(json.loads(err.body)["message"])
    except (TypeError, ValueError, KeyError):
        return str(err.reason or "")


def api_client_from_airflow(conn_id: str = "kubernetes_default") -> ApiClient:
    """An API client from an Airflow connection (kubeconfig, in-cluster, ...) via the cncf hook.

    The hook reads the extras ``in_cluster``, ``kube_config``, ``kube_config_path`` and
    ``cluster_context``. Note that a missing ``kubernetes_default`` is not an error there: the
    provider falls back to the in-cluster configuration, then to ``~/.kube/config``.
    """
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    return KubernetesHook(conn_id=conn_id).get_conn()


def rollout_status(deployment: V1Deployment) -> tuple[str, str]:
    """(``complete`` | ``progressing`` | ``failed``, what is happening), as kubectl decides it."""
    generation = deployment.metadata.generation or 0
    status = deployment.status or V1DeploymentStatus()
    if (status.observed_generation or 0) < generation:
        return PROGRESSING, "waiting for the deployment controller to observe the new spec"
    for condition in status.conditions or []:
        if condition.type == "Progressing" and condition.reason == DEADLINE_EXCEEDED:
            return FAILED, f"{DEADLINE_EXCEEDED}: {condition.message or 'no progress'}"
    wanted = deployment.spec.replicas if deployment.spec.replicas is not None else 1
    updated = status.updated_replicas or 0
    total, available = status.replicas or 0, status.available_replicas or 0
    if updated < wanted:
        return PROGRESSING, f"{updated} of {wanted} new replicas updated"
    if total > updated:
        return PROGRESSING, f"{total - updated} old replicas pending termination"
    if available < updated:
        return PROGRESSING, f"{available} of {updated} updated replicas available"
    return COMPLETE, f"{updated} of {wanted} replicas updated and available"


class KubernetesBackend:
    """The serving Deployment per environment namespace, through ``AppsV1Api``."""

    def __init__(self, api_client: ApiClient, settings: DeploySettings | None = None) -> None:
        self.apps = AppsV1Api(api_client)
        self.settings = settings or DeploySettings()

    def _where(self, env: str) -> tuple[str, str]:
        return self.settings.deployment, self.settings.namespace(check_environment(env))

    def _refused(self, err: ApiException, env: str, target: str, verb: str) -> RolloutFailed | None:
        """The clear error for a request the API refused (401, 403); None for anything else."""
        name, namespace = self._where(env)
        conn = self.settings.kubernetes_conn_id
        what = f"{RESOURCE}/{name} in namespace {namespace}"
        if err.status == 401:
            return RolloutForbidden(
                env,
                target,
                f"the Kubernetes API refused the credentials of Airflow connection {conn!r} "
                f"(401 Unauthorized) to {verb} {what}; renew the token or kubeconfig in that "
                "connection",
            )
        if err.status == 403:
            return RolloutForbidden(
                env,
                target,
                f"the Kubernetes API refused to {verb} {what} (403 Forbidden: "
                f"{_api_message(err)}). The identity of Airflow connection {conn!r} needs get "
                f"and patch on {RESOURCE} (API group {API_GROUP}) in {namespace}: a Role and "
                "RoleBinding there (docs/deployment.md); nothing was changed",
            )
        return None

    def _read(self, env: str, target: str) -> V1Deployment:
        name, namespace = self._where(env)
        try:
            return self.apps.read_namespaced_deployment(name, namespace)
        except ApiException as err:
            if err.status == 404:
                raise RolloutFailed(
                    env,
                    target,
                    f"no Deployment {namespace}/{name}: apply k8s/overlays/{env} first",
                ) from err
            if refused := self._refused(err, env, target, "get"):
                raise refused from err
            raise

    def _state(self, env: str, deployment: V1Deployment, target: str) -> Deployed:
        template = deployment.spec.template
        annotations = (template.metadata.annotations if template.metadata else None) or {}
        version = annotations.get(MODEL_VERSION_ANNOTATION) or None
        for container in template.spec.containers:
            if container.name == self.settings.container:
                return Deployed(env, version, container.image)
        raise RolloutFailed(
            env,
            target,
            f"Deployment {deployment.metadata.namespace}/{deployment.metadata.name} has no "
            f"container {self.settings.container!r}",
        )

    def current(self, env: str) -> Deployed:
        return self._state(env, self._read(env, "current state"), "current state")

    def roll_out(self, env: str, *, model_version: str, image: str | None) -> Deployed:
        if not image:
            raise ValueError(f"{env}: the azure target rolls out an image; none was given")
        model_version = version_str(model_version)
        target = describe(model_version, image)
        deployment = self._read(env, target)
        now = self._state(env, deployment, target)
        if (now.model_version, now.image) == (model_version, image):
            recorded = deployment.metadata.annotations or {}
            if recorded.get(PREVIOUS_IMAGE_ANNOTATION):  # the "before" of the rollout that did it
                return Deployed(
                    env,
                    recorded.get(PREVIOUS_VERSION_ANNOTATION) or None,
                    recorded[PREVIOUS_IMAGE_ANNOTATION],
                )
            return now
        self._patch(
            env,
            deployment,
            model_version,
            image,
            {
                PREVIOUS_IMAGE_ANNOTATION: now.image,
                PREVIOUS_VERSION_ANNOTATION: now.model_version or "",
                ROLLED_BACK_FROM_ANNOTATION: None,
            },
        )
        log.info("%s: rolling out %s (was %s)", env, target, describe(now.model_version, now.image))
        return now

    def roll_back(self, env: str, previous: Deployed, *, timeout_s: float | None = None) -> None:
        target = describe(previous.model_version, previous.image)
        if not previous.image:
            raise RolloutFailed(env, target, "no previous image is known: nothing to restore")
        deployment = self._read(env, target)
        now = self._state(env, deployment, target)
        if (now.model_version, now.image) != (previous.model_version, previous.image):
            self._patch(
                env,
                deployment,
                previous.model_version,
                previous.image,
                {
                    PREVIOUS_IMAGE_ANNOTATION: None,
                    PREVIOUS_VERSION_ANNOTATION: None,
                    ROLLED_BACK_FROM_ANNOTATION: now.image,
                },
            )
            log.warning("%s: rolling back to %s", env, target)
        self.wait(
            env, model_version=previous.model_version, image=previous.image, timeout_s=timeout_s
        )

    def _patch(
        self,
        env: str,
        deployment: V1Deployment,
        model_version: str | None,
        image: str,
        record: dict[str, str | None],
    ) -> None:
        """One strategic merge patch; ``None`` values delete annotations."""
        target = describe(model_version, image)
        body = {
            "metadata": {
                "resourceVersion": deployment.metadata.resource_version,
                "annotations": {**record, CHANGE_CAUSE_ANNOTATION: f"attrition: {target}"},
            },
            "spec": {
                "template": {
                    "metadata": {"annotations": {MODEL_VERSION_ANNOTATION: model_version}},
                    "spec": {"containers": [{"name": self.settings.container, "image": image}]},
                }
            },
        }
        name, namespace = self._where(env)
        try:
            self.apps.patch_namespaced_deployment(
                name, namespace, body, _content_type=STRATEGIC_MERGE_PATCH
            )
        except ApiException as err:
            if err.status == 409:
                raise RolloutFailed(
                    env,
                    target,
                    f"Deployment {namespace}/{name} changed while this patch was prepared "
                    "(resourceVersion conflict); nothing was changed, re-run to start from its "
                    "current state",
                ) from err
            if refused := self._refused(err, env, target, "patch"):
                raise refused from err
            raise

    def wait(
        self,
        env: str,
        *,
        model_version: str | None,
        image: str | None,
        timeout_s: float | None = None,
    ) -> None:
        """Until the rollout of exactly this image and version is complete."""
        timeout_s = self.settings.rollout_timeout_s if timeout_s is None else timeout_s
        model_version = version_str(model_version)
        target = describe(model_version, image)
        deadline = time.monotonic() + timeout_s
        while True:
            deployment = self._read(env, target)
            now = self._state(env, deployment, target)
            if (now.model_version, now.image) != (model_version, image):
                raise RolloutFailed(
                    env,
                    target,
                    f"the Deployment now specifies {describe(now.model_version, now.image)}: "
                    "someone else rolled it out meanwhile",
                )
            state, observed = rollout_status(deployment)
            if state == COMPLETE:
                log.info("%s: %s rolled out (%s)", env, target, observed)
                return
            if state == FAILED:
                raise RolloutFailed(env, target, observed)
            if time.monotonic() >= deadline:
                raise RolloutTimeout(env, target, observed, timeout_s)
            time.sleep(self.settings.poll_s)
