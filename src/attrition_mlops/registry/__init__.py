"""The MLflow registry and tracking server: the only package that talks to them.

``aliases`` moves, reads and rolls back aliases (compare-and-set, audited); ``history`` is the
append-only alias history and the rollback rule replayed from it (pure); ``lock`` is the lock every
alias move holds; ``tracking`` sets up where runs go; ``connection`` bounds MLflow's HTTP waits
and names an unreachable server. ``from attrition_mlops import registry`` gives the alias API.
"""

from attrition_mlops.registry.aliases import (
    CHALLENGER,
    CHAMPION,
    PRODUCTION,
    RUN_KEY_TAG,
    STAGING,
    AliasMove,
    ConcurrentAliasMoveError,
    RollbackError,
    UnknownModelError,
    alias_histories,
    alias_history,
    delete_alias,
    find_reference_profile,
    find_version_by_run_key,
    get_alias_version,
    get_version,
    load_reference_profile,
    move_alias,
    previous_alias,
    register_version,
    resolve_model_uri,
    rollback_alias,
    set_version_tags,
    was_moved_to,
)
from attrition_mlops.registry.history import HistoryEntry
from attrition_mlops.registry.lock import RegistryLockError

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "PRODUCTION",
    "RUN_KEY_TAG",
    "STAGING",
    "AliasMove",
    "ConcurrentAliasMoveError",
    "HistoryEntry",
    "RegistryLockError",
    "RollbackError",
    "UnknownModelError",
    "alias_histories",
    "alias_history",
    "delete_alias",
    "find_reference_profile",
    "find_version_by_run_key",
    "get_alias_version",
    "get_version",
    "load_reference_profile",
    "move_alias",
    "previous_alias",
    "register_version",
    "resolve_model_uri",
    "rollback_alias",
    "set_version_tags",
    "was_moved_to",
]
