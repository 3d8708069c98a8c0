"""Registered versions: register once per run key, look versions up, their tags and profiles.

The version side of the registry (``aliases`` is the alias side). A pipeline run registers its
model at most once: the version carries the run's key (``run_key`` tag), so a retried attempt
finds the version the first attempt created instead of registering a second one.
"""

from __future__ import annotations

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

RUN_KEY_TAG = "run_key"


class UnknownModelError(LookupError):
    """A model URI names no registered version (a missing alias, a bad URI)."""


def get_version(name: str, version: str, client: MlflowClient | None = None) -> ModelVersion:
    return (client or MlflowClient()).get_model_version(name, version)


def find_version_by_run_key(name: str, run_key: str) -> ModelVersion | None:
    """The version an earlier attempt of the same pipeline run registered, if any."""
    client = MlflowClient()
    try:
        found = client.search_model_versions(
            f"name = '{name}' and tags.{RUN_KEY_TAG} = '{run_key}'"
        )
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    return min(found, key=lambda v: int(v.version)) if found else None


def register_version(
    model_uri: str, name: str, *, run_key: str, tags: dict[str, str]
) -> tuple[ModelVersion, bool]:
    """Register ``model_uri`` unless this run key already did; returns (version, created)."""
    existing = find_version_by_run_key(name, run_key)
    if existing is not None:
        return existing, False
    client = MlflowClient()
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    created = client.create_model_version(
        name, model_uri, tags={**tags, RUN_KEY_TAG: run_key}, run_id=tags.get("run_id")
    )
    return created, True


def load_reference_profile(name: str, version: str) -> dict:
    """The training reference profile stored with a registered version (for drift)."""
    import json

    import mlflow

    path = mlflow.artifacts.download_artifacts(
        f"models:/{name}/{version}/artifacts/reference_profile.json"
    )
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def find_reference_profile(name: str, version: str) -> dict | None:
    """The reference profile of a registered version; None if the registry holds no such version.

    Log lines name the version that served them; one the registry does not know (a typo, a
    deleted version, another registry's number) is the caller's to count, not a crash. A model
    name the registry does not know at all is a configuration error: ``UnknownModelError``.
    """
    client = MlflowClient()
    try:
        client.get_model_version(name, version)  # a stage name or "abc" is no version either
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
        try:
            client.get_registered_model(name)
        except MlflowException as missing:
            if missing.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise UnknownModelError(
                    f"no registered model {name!r} (ATTRITION_MODEL_NAME): nothing to check "
                    "the logs against"
                ) from missing
            raise
        return None
    return load_reference_profile(name, version)


def set_version_tags(name: str, version: str, tags: dict[str, str]) -> None:
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value))


def find_gate_report(name: str, version: str) -> dict | None:
    """The gate's decision report for ``version``, or None when the gate never judged it.

    The evaluation job tags the version with ``gate.evaluation_run_id`` and logs the report as
    ``decision_report.json`` in that run. Returns ``{"evaluation_run_id", "experiment_id",
    "report"}``; ``report`` is None when the run holds no report (a run aborted before it).
    """
    import mlflow

    client = MlflowClient()
    run_id = client.get_model_version(name, version).tags.get("gate.evaluation_run_id")
    if not run_id:
        return None
    experiment_id = client.get_run(run_id).info.experiment_id
    try:
        report = mlflow.artifacts.load_dict(f"runs:/{run_id}/decision_report.json")
    except (MlflowException, OSError):
        report = None
    return {"evaluation_run_id": run_id, "experiment_id": experiment_id, "report": report}
