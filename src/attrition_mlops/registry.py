"""The one module that talks to the MLflow model registry.

Promotion is by aliases, never stages: ``challenger`` (candidate), ``champion`` (chosen by the
gate), ``staging`` / ``production`` (what is deployed where). Every move of an alias is
compare-and-set (the caller states which version it expects the alias to hold; if another
promotion got there first the move aborts) and leaves audit tags on the versions involved, so
``rollback_alias`` can walk the chain back one step at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

CHALLENGER = "challenger"
CHAMPION = "champion"
STAGING = "staging"
PRODUCTION = "production"
RUN_KEY_TAG = "run_key"


class ConcurrentAliasMoveError(RuntimeError):
    """The alias no longer holds the version this decision was based on."""


class RollbackError(RuntimeError):
    """There is nothing to roll back to."""


class UnknownModelError(LookupError):
    """A model URI names no registered version (a missing alias, a bad URI)."""


@dataclass(frozen=True)
class AliasMove:
    alias: str
    version: str | None
    previous: str | None
    actor: str
    reason: str
    at: str


def previous_alias(alias: str) -> str:
    return f"previous-{alias}"


def _tag(alias: str, field: str) -> str:
    return f"audit.{alias}.{field}"


def get_alias_version(name: str, alias: str, client: MlflowClient | None = None) -> str | None:
    client = client or MlflowClient()
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def resolve_model_uri(uri: str) -> tuple[str, str]:
    """(name, version) behind ``models:/name/N`` or ``models:/name@alias``."""
    if not uri.startswith("models:/"):
        raise UnknownModelError(f"expected a models:/ URI, got {uri!r}")
    ref = uri.removeprefix("models:/")
    if "@" in ref:
        name, alias = ref.split("@", 1)
        version = get_alias_version(name, alias)
        if version is None:
            raise UnknownModelError(f"{name} has no alias {alias!r}: nothing to score with yet")
        return name, version
    name, _, version = ref.partition("/")
    return name, version


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


def was_moved_to(name: str, version: str, alias: str) -> bool:
    """Whether ``alias`` was ever moved to ``version`` (its audit tag is there)."""
    return _tag(alias, "moved_at") in get_version(name, version).tags


def set_version_tags(name: str, version: str, tags: dict[str, str]) -> None:
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value))


def move_alias(
    name: str,
    alias: str,
    version: str,
    *,
    expected: str | None,
    actor: str,
    reason: str,
    evaluation_run_id: str | None = None,
) -> AliasMove:
    """Point ``alias`` at ``version`` if it still holds ``expected``; audit both versions."""
    client = MlflowClient()
    version, expected = str(version), None if expected is None else str(expected)
    current = get_alias_version(name, alias, client)
    if current != expected:
        raise ConcurrentAliasMoveError(
            f"{name}@{alias} now holds version {current}, not {expected} as when this decision "
            f"was made (another promotion won the race); aborting without changes. Re-run the "
            f"evaluation against the current {alias}."
        )
    at = datetime.now(UTC).isoformat(timespec="seconds")
    client.set_registered_model_alias(name, alias, version)
    if current is not None and current != version:
        client.set_registered_model_alias(name, previous_alias(alias), current)
        set_version_tags(
            name, current, {_tag(alias, "replaced_at"): at, _tag(alias, "replaced_by"): version}
        )
    audit = {
        _tag(alias, "moved_at"): at,
        _tag(alias, "moved_by"): actor,
        _tag(alias, "reason"): reason,
        _tag(alias, "previous_version"): current or "none",
    }
    if evaluation_run_id:
        audit[_tag(alias, "evaluation_run_id")] = evaluation_run_id
    set_version_tags(name, version, audit)
    holder = get_alias_version(name, alias, client)
    if holder != version:  # someone moved it between our write and this read: say so loudly
        raise ConcurrentAliasMoveError(
            f"{name}@{alias} was moved to version {holder} right after this move to {version}"
        )
    return AliasMove(alias, version, current, actor, reason, at)


def delete_alias(
    name: str, alias: str, *, expected: str | None, actor: str, reason: str
) -> AliasMove:
    """Remove ``alias`` if it still holds ``expected`` (compare-and-set); audit the version.

    For an environment whose first deployment failed: nothing ran there before, so the alias
    must stop naming the failed version, or a later rollback would return to it.
    """
    client = MlflowClient()
    expected = None if expected is None else str(expected)
    current = get_alias_version(name, alias, client)
    if current != expected:
        raise ConcurrentAliasMoveError(
            f"{name}@{alias} now holds version {current}, not {expected}; not removing it"
        )
    at = datetime.now(UTC).isoformat(timespec="seconds")
    if current is not None:
        client.delete_registered_model_alias(name, alias)
        set_version_tags(
            name,
            current,
            {_tag(alias, "removed_at"): at, _tag(alias, "removed_by"): actor,
             _tag(alias, "removal_reason"): reason},
        )  # fmt: skip
    return AliasMove(alias, None, current, actor, reason, at)


def rollback_alias(name: str, alias: str, *, actor: str, reason: str = "rollback") -> AliasMove:
    """Move ``alias`` back to ``previous-<alias>`` and step that pointer one further back."""
    client = MlflowClient()
    current = get_alias_version(name, alias, client)
    target = get_alias_version(name, previous_alias(alias), client)
    if target is None:
        raise RollbackError(
            f"{name}@{alias} (version {current}) has no {previous_alias(alias)} to roll back to"
        )
    # Read the chain link before the move overwrites the target's audit tags.
    before = get_version(name, target, client).tags.get(_tag(alias, "previous_version"), "none")
    move = move_alias(name, alias, target, expected=current, actor=actor, reason=reason)
    # ``move_alias`` pointed previous-<alias> at the version we just left; a rollback instead
    # steps the pointer back along the chain recorded when ``target`` itself was promoted.
    if before in ("none", current):
        client.delete_registered_model_alias(name, previous_alias(alias))
    else:
        client.set_registered_model_alias(name, previous_alias(alias), before)
    set_version_tags(name, current, {_tag(alias, "rolled_back_at"): move.at})
    return move
