"""The steps the deployment DAG calls, the same on every target.

:func:`get_backend` picks the backend for ``ATTRITION_TARGET``; :func:`deploy_environment` rolls
out, waits and smoke-tests, rolling back to what ran before on any failure;
:func:`record_deployment` points the environment's alias at what now runs there.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from attrition_mlops import registry
from attrition_mlops.deploy.rollout.common import (
    ROLLOUT_REASON,
    Deployed,
    DeploySettings,
    LocalServingSettings,
    RolloutBackend,
    check_environment,
    version_str,
)
from attrition_mlops.deploy.rollout.local import LocalBackend
from attrition_mlops.registry.tracking import actor, configure_mlflow
from attrition_mlops.settings import PipelineSettings, get_settings

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

log = logging.getLogger(__name__)


def environment_url(env: str, pipeline: PipelineSettings | None = None) -> str:
    """The base URL an environment's API answers on (for the smoke test)."""
    pipeline = pipeline or get_settings()
    if pipeline.target == "local":
        return LocalServingSettings().base_url(env)
    url = DeploySettings().url(env)
    if not url:
        raise ValueError(f"ATTRITION_DEPLOY_{env.upper()}_URL is not set: no URL to test {env} at")
    return url.rstrip("/")


def get_backend(
    settings: PipelineSettings | None = None, *, api_client: ApiClient | None = None
) -> RolloutBackend:
    """The backend for ``ATTRITION_TARGET``; on azure the client comes from the Airflow conn."""
    settings = settings or get_settings()
    deploy = DeploySettings()
    if settings.target == "local":
        return LocalBackend(settings, LocalServingSettings(), deploy)
    # the kubernetes client is only needed on this target
    from attrition_mlops.deploy.rollout import kubernetes

    client = api_client or kubernetes.api_client_from_airflow(deploy.kubernetes_conn_id)
    return kubernetes.KubernetesBackend(client, deploy)


def smoke_test_environment(
    env: str, *, expected_version: str, pipeline: PipelineSettings | None = None
) -> dict[str, Any]:
    """Smoke-test an environment at its URL with its API key; raises SmokeTestFailed."""
    from attrition_mlops.deploy.smoke import smoke_test

    deploy = DeploySettings()
    return smoke_test(
        environment_url(env, pipeline),
        expected_version=expected_version,
        api_key=deploy.api_key(env),
        timeout_s=deploy.smoke_timeout_s,
    )


def record_deployment(
    env: str, model_version: str, *, pipeline: PipelineSettings | None = None
) -> dict[str, Any] | None:
    """Point the registry alias ``env`` at the version now running there (the DAG's last step).

    On the local target the rollout itself moved the alias, so this finds nothing to do; on azure
    it records the image's model version. Idempotent: the audited move, or None if none was due.
    """
    pipeline = pipeline or get_settings()
    configure_mlflow(pipeline)
    version = version_str(model_version)
    held = registry.get_alias_version(pipeline.model_name, check_environment(env))
    if held == version:
        return None
    move = registry.move_alias(
        pipeline.model_name, env, version, expected=held, actor=actor(), reason=ROLLOUT_REASON
    )
    return asdict(move)


def deploy_environment(
    env: str,
    *,
    model_version: str,
    image: str | None,
    backend: RolloutBackend | None = None,
    pipeline: PipelineSettings | None = None,
) -> dict[str, Any]:
    """Roll out, wait, smoke-test; on any failure roll back to what ran before and re-raise."""
    backend = backend or get_backend(pipeline)
    previous = backend.roll_out(env, model_version=model_version, image=image)
    try:
        backend.wait(env, model_version=model_version, image=image)
        report = smoke_test_environment(env, expected_version=model_version, pipeline=pipeline)
    except BaseException:
        log.exception("%s: rollout failed; rolling back to %s", env, previous)
        backend.roll_back(env, previous)
        raise
    return {
        "deployed": Deployed(env, model_version, image).to_dict(),
        "previous": previous.to_dict(),
        "smoke_test": report,
    }
