"""Registry aliases: compare-and-set moves, audit tags, rollback from the alias history.

Promotion is by aliases, never stages: ``challenger`` (candidate), ``champion`` (chosen by the
gate), ``staging`` / ``production`` (what is deployed where). Every move of an alias is
compare-and-set under the registry lock (``registry_lock``): the caller states which version it
expects the alias to hold, and if another move got there first this one aborts. Each move appends
an entry to the alias's history (registered-model tags, ``alias_history``) and leaves audit tags on
the versions involved; ``rollback_alias`` computes its target from that history.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from attrition_mlops.registry.history import (
    HistoryEntry,
    aliases_with_history,
    next_seq,
    parse_history,
    replay,
)
from attrition_mlops.registry.lock import registry_lock
from attrition_mlops.registry.undo import Undo, repoint, tag_version
from attrition_mlops.registry.versions import UnknownModelError, get_version
from attrition_mlops.settings import get_settings

log = logging.getLogger(__name__)

CHALLENGER = "challenger"
CHAMPION = "champion"
STAGING = "staging"
PRODUCTION = "production"


class ConcurrentAliasMoveError(RuntimeError):
    """The alias no longer holds the version this decision was based on."""


class RollbackError(RuntimeError):
    """There is nothing to roll back to."""


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


def was_moved_to(name: str, version: str, alias: str) -> bool:
    """Whether ``alias`` was ever moved to ``version`` (its audit tag is there)."""
    return _tag(alias, "moved_at") in get_version(name, version).tags


def _snapshot(client: MlflowClient, name: str) -> tuple[dict[str, str], dict[str, str]]:
    """The model's aliases and tags in one read (holders, pointers and history together)."""
    model = client.get_registered_model(name)
    return {alias: str(v) for alias, v in model.aliases.items()}, model.tags


def alias_histories(name: str, client: MlflowClient | None = None) -> dict[str, list[HistoryEntry]]:
    """Every alias's history of moves, oldest entry first ({} for an unknown model)."""
    client = client or MlflowClient()
    try:
        tags = client.get_registered_model(name).tags
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return {}
        raise
    return {alias: parse_history(tags, alias) for alias in aliases_with_history(tags)}


def alias_history(name: str, alias: str, client: MlflowClient | None = None) -> list[HistoryEntry]:
    return alias_histories(name, client).get(alias, [])


def _lock(name: str):
    settings = get_settings()
    url = settings.registry_lock_url
    return registry_lock(
        name,
        mlflow.get_registry_uri(),
        url.get_secret_value() if url else None,
        settings.registry_lock_timeout_s,
    )


@dataclass(frozen=True)
class _Move:
    alias: str
    target: str | None
    expected: str | None
    action: str
    actor: str
    reason: str
    lock: str
    evaluation_run_id: str | None = None


def _apply(client: MlflowClient, name: str, move: _Move) -> AliasMove:
    """Compare-and-set ``move`` and record it; the caller holds the registry lock."""
    alias, target = move.alias, move.target
    aliases, tags = _snapshot(client, name)
    current = aliases.get(alias)
    if current != move.expected:
        raise ConcurrentAliasMoveError(
            f"{name}@{alias} now holds version {current}, not {move.expected} as when this "
            f"decision was made (another promotion won the race); aborting without changes. "
            f"Re-run the evaluation against the current {alias}."
        )
    history = parse_history(tags, alias)
    extra = {"evaluation_run_id": move.evaluation_run_id} if move.evaluation_run_id else {}
    at = datetime.now(UTC).isoformat(timespec="seconds")
    entry = HistoryEntry(
        seq=next_seq(history),
        alias=alias,
        action=move.action,
        from_version=current,
        to_version=target,
        at=at,
        by=move.actor,
        why=move.reason,
        lock=move.lock,
        extra=extra,
    )
    undo = Undo(client)
    try:
        undo.add(client.delete_registered_model_tag, name, entry.key)
        client.set_registered_model_tag(name, entry.key, entry.to_tag_value())
        repoint(undo, name, alias, current, target)
        _audit_versions(undo, name, entry)
        after = replay([*history, entry]).rollback_target(target)
        pointer = previous_alias(alias)
        repoint(undo, name, pointer, aliases.get(pointer), after)
    except BaseException:
        undo.run()
        raise
    holder = get_alias_version(name, alias, client)
    if holder != target:  # only a writer that bypasses the lock (the MLflow UI) can do this
        raise ConcurrentAliasMoveError(
            f"{name}@{alias} was moved to version {holder} right after this move to {target}, "
            "by a writer that does not take the registry lock"
        )
    return AliasMove(alias, target, current, move.actor, move.reason, at)


def _audit_versions(undo: Undo, name: str, entry: HistoryEntry) -> None:
    alias, current, target, at = entry.alias, entry.from_version, entry.to_version, entry.at
    if entry.action == "deletion":
        if current is not None:
            tag_version(
                undo,
                name,
                current,
                {
                    _tag(alias, "removed_at"): at,
                    _tag(alias, "removed_by"): entry.by,
                    _tag(alias, "removal_reason"): entry.why,
                },
            )
        return
    if current is not None and current != target:
        left = {_tag(alias, "replaced_at"): at, _tag(alias, "replaced_by"): target}
        if entry.action == "rollback":
            left[_tag(alias, "rolled_back_at")] = at
        tag_version(undo, name, current, left)
    audit = {
        _tag(alias, "moved_at"): at,
        _tag(alias, "moved_by"): entry.by,
        _tag(alias, "reason"): entry.why,
        _tag(alias, "previous_version"): current or "none",
        _tag(alias, "history_seq"): str(entry.seq),
        **{_tag(alias, k): v for k, v in entry.extra.items()},
    }
    tag_version(undo, name, target, audit)


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
    """Point ``alias`` at ``version`` if it still holds ``expected``; record and audit the move.

    Raises ConcurrentAliasMoveError (nothing changed) if another move got there first, and
    RegistryLockError if the registry lock is not configured or not granted in time.
    """
    client = MlflowClient()
    version, expected = str(version), None if expected is None else str(expected)
    with _lock(name) as lock:
        move = _Move(alias, version, expected, "promotion", actor, reason, lock, evaluation_run_id)
        return _apply(client, name, move)


def delete_alias(
    name: str, alias: str, *, expected: str | None, actor: str, reason: str
) -> AliasMove:
    """Remove ``alias`` if it still holds ``expected`` (compare-and-set, locked); audit it.

    For an environment whose first deployment failed: nothing ran there before, so the alias
    must stop naming the failed version, or a later rollback would return to it.
    """
    client = MlflowClient()
    expected = None if expected is None else str(expected)
    with _lock(name) as lock:
        if expected is None and get_alias_version(name, alias, client) is None:
            return AliasMove(alias, None, None, actor, reason, _now())  # nothing to remove
        return _apply(client, name, _Move(alias, None, expected, "deletion", actor, reason, lock))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def rollback_alias(name: str, alias: str, *, actor: str, reason: str = "rollback") -> AliasMove:
    """Move ``alias`` back to the newest earlier holder that was not itself rolled back.

    The target comes from the alias's history (``previous-<alias>`` always names it). A registry
    whose history predates this code falls back to the ``previous-<alias>`` alias once.
    """
    client = MlflowClient()
    with _lock(name) as lock:
        aliases, tags = _snapshot(client, name)
        current, history = aliases.get(alias), parse_history(tags, alias)
        if history:
            target = replay(history).rollback_target(current)
        else:
            target = aliases.get(previous_alias(alias))
        if target is None:
            raise RollbackError(
                f"{name}@{alias} (version {current}) has no {previous_alias(alias)} to roll back "
                "to: every earlier holder was rolled back already, or there was none"
            )
        return _apply(client, name, _Move(alias, target, current, "rollback", actor, reason, lock))
