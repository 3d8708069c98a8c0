"""The deployment DAG's steps, each a small adapter over the library (image, rollout, smoke,
registry). Kept out of the DAG file so the module scope there stays cheap and the steps testable.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowSkipException

STARTED_KEY = "rollout_started"
# Each step reads the version and the image from the one task that made them (a template pulled
# at run time), so the graph's edges are the order of the steps, not every XCom handed around.
VERSION = "{{ ti.xcom_pull(task_ids='plan_deployment') }}"
IMAGE = "{{ ti.xcom_pull(task_ids='build_image')['image'] }}"
BEFORE_TASK = "read_deployed"
SMOKE_TASK = "smoke_test_{env}"


def target_version(conf: dict[str, Any], triggering_events: Any) -> str:
    """An explicit ``version`` in the run's conf, else the champion the Asset event announced,
    else whatever holds the champion alias now."""
    if conf.get("version"):
        return str(conf["version"])
    for events in (triggering_events or {}).values():
        for event in reversed(list(events)):
            version = (event.extra or {}).get("version")
            if version:
                return str(version)
    from attrition_mlops import registry
    from attrition_mlops.registry.tracking import configure_mlflow
    from attrition_mlops.settings import get_settings

    settings = get_settings()
    configure_mlflow(settings)
    version = registry.get_alias_version(settings.model_name, registry.CHAMPION)
    if version is None:
        raise ValueError("nothing to deploy: no 'version' in the run conf and no champion yet")
    return version


def build_image(version: str) -> dict[str, Any]:
    """Assemble the image build context (model baked in, content-addressed tag) and build it.

    ``local``: a Docker engine builds it when one is reachable; otherwise the context is the
    deliverable and the local rollout serves the model from the registry. ``azure``: the image
    must exist in the registry before AKS can pull it, so it is built in ACR (``az acr build``
    when ``ATTRITION_WORKFLOW_ACR_NAME`` is set; ImageBuildError with az's error if it fails) or
    else by a reachable Docker engine and pushed; with neither the task fails here, before any
    environment is touched.
    """
    import subprocess

    from attrition_mlops.deploy.image import (
        acr_build,
        build_context,
        docker_build_command,
        maybe_docker_build,
    )
    from attrition_mlops.settings import get_settings, get_workflow_settings

    settings, workflow = get_settings(), get_workflow_settings()
    out = settings.state_dir.resolve() / "images" / f"v{version}"
    ctx = build_context(
        settings.model_name,
        version,
        out,
        registry_image=workflow.image_repository,
        settings=settings,
    )
    result = {"image": ctx.image_ref, "tag": ctx.tag, "context": str(ctx.path), "built": False}
    if settings.target == "local":
        result["built"] = maybe_docker_build(ctx)
        return result
    if workflow.acr_name:
        acr_build(ctx, workflow.acr_name)  # ImageBuildError with az's own error
    elif maybe_docker_build(ctx):
        subprocess.run(["docker", "push", ctx.image_ref], check=True)
    else:
        command = " ".join(docker_build_command(ctx))
        raise RuntimeError(
            "no image builder for the azure target: set ATTRITION_WORKFLOW_ACR_NAME on a worker "
            f"with the Azure CLI, or give it a Docker engine ({command})"
        )
    result["built"] = True
    return result


def deployed_now() -> dict[str, Any]:
    """What each environment runs before this deployment touches it (the rollback targets)."""
    from attrition_mlops.deploy.rollout import ENVIRONMENTS, get_backend

    backend = get_backend()
    return {env: backend.current(env).to_dict() for env in ENVIRONMENTS}


def roll_out(env: str, version: str, image: str | None, ti: Any) -> dict[str, Any]:
    from attrition_mlops.deploy.rollout import get_backend
    from attrition_mlops.deploy.rollout.common import RolloutRefused

    ti.xcom_push(key=STARTED_KEY, value=True)  # before touching anything: rollback keys on it
    try:
        previous = get_backend().roll_out(env, model_version=version, image=image)
    except RolloutRefused:
        # refused before any change: the rollback must not announce a rollback that never was
        ti.xcom_push(key=STARTED_KEY, value=False)
        raise
    return previous.to_dict()


def wait(env: str, version: str, image: str | None) -> None:
    from attrition_mlops.deploy.rollout import get_backend

    get_backend().wait(
        env, model_version=version, image=image
    )  # ATTRITION_DEPLOY_ROLLOUT_TIMEOUT_S


def smoke_test(env: str, version: str) -> dict[str, Any]:
    from attrition_mlops.deploy.rollout import smoke_test_environment

    return smoke_test_environment(env, expected_version=version)


def roll_back(env: str, version: str, ti: Any) -> dict[str, Any]:
    """Restore what ran before (``read_deployed``); only when this run had started changing
    ``env``."""
    from attrition_mlops.deploy.rollout import Deployed, get_backend
    from attrition_mlops.orchestration.events import notify_rollback

    if not ti.xcom_pull(task_ids=f"roll_out_{env}", key=STARTED_KEY):
        raise AirflowSkipException(f"{env} was never changed by this run: nothing to roll back")
    previous = Deployed.from_dict(ti.xcom_pull(task_ids=BEFORE_TASK)[env])
    get_backend().roll_back(env, previous)
    notify_rollback(env, failed_version=version, restored=previous.model_version, ti=ti)
    return {"environment": env, "restored": previous.to_dict(), "failed_version": version}


def record_deployment(version: str, ti: Any) -> dict[str, Any]:
    """Point the ``staging`` and ``production`` aliases at what now runs there (audited; a no-op
    where the local rollout already moved them), then announce the deployment."""
    from attrition_mlops.deploy.rollout import ENVIRONMENTS
    from attrition_mlops.deploy.rollout import record_deployment as record
    from attrition_mlops.orchestration.events import notify_deployed

    moves = {env: record(env, version) for env in ENVIRONMENTS}
    notify_deployed(version, ti)
    return {"version": version, "alias_moves": moves}


def approval_evidence(version: str, context: Any) -> Any:
    """What the approver reads (:class:`~attrition_mlops.orchestration.approval_prompt.
    ApprovalEvidence`): what production runs now (this run's ``read_deployed`` record, taken
    before anything changed), the staging smoke test, the gate's decision report from the
    registry, and links to the evaluation run, the smoke test's task log and the version.

    Never raises: what cannot be read is listed in ``missing`` and the prompt says so.
    """
    from attrition_mlops.alerts import mlflow_run_url, safe_alert_settings
    from attrition_mlops.orchestration.approval_prompt import ApprovalEvidence
    from attrition_mlops.orchestration.links import model_version_url
    from attrition_mlops.orchestration.notifier import airflow_links
    from attrition_mlops.settings import get_settings

    settings, alerts = get_settings(), safe_alert_settings()
    ti, missing, links = context["ti"], [], {}
    before = _pull(ti, BEFORE_TASK, missing, "the deployment record (read_deployed)")
    production = (before or {}).get("production") or {}
    smoke = _pull(ti, SMOKE_TASK.format(env="staging"), missing, "the staging smoke test")
    gate = None
    try:
        from attrition_mlops import registry
        from attrition_mlops.registry.tracking import configure_mlflow

        configure_mlflow(settings)
        found = registry.find_gate_report(settings.model_name, version)
    except Exception as exc:  # the registry is down, the version unknown: say so, still ask
        missing.append(f"the gate's report ({type(exc).__name__}: {exc})")
        found = None
    if found:
        gate = found["report"]
        links["evaluation run"] = mlflow_run_url(
            found["evaluation_run_id"], found["experiment_id"], alerts
        )
        if gate is None:
            missing.append(f"decision_report.json in run {found['evaluation_run_id']}")
    smoke_log = airflow_links(alerts, ti.dag_id, ti.run_id, SMOKE_TASK.format(env="staging"))
    if "task log" in smoke_log:
        links["staging smoke test log"] = smoke_log["task log"]
    links["model version"] = model_version_url(
        settings.mlflow_ui_url, settings.model_name, str(version)
    )
    return ApprovalEvidence(
        model_name=settings.model_name,
        version=str(version),
        production=production.get("model_version"),
        production_image=production.get("image"),
        production_known=before is not None,
        smoke=smoke,
        gate=gate,
        links=links,
        missing=tuple(missing),
    )


def _pull(ti: Any, task_id: str, missing: list[str], what: str) -> Any:
    try:
        value = ti.xcom_pull(task_ids=task_id)
    except Exception as exc:  # an XCom backend hiccup must not block the question
        missing.append(f"{what} ({type(exc).__name__})")
        return None
    if value is None:
        missing.append(what)
    return value
