"""The MLflow registry and tracking server: the only package that talks to them.

``aliases`` moves, reads and rolls back aliases (compare-and-set, audited); ``versions``
registers versions (once per run key) and reads them, their tags and reference profiles;
``history`` is the append-only alias history and the rollback rule replayed from it (pure);
``lock`` is the lock every alias move holds; ``tracking`` sets up where runs go; ``connection``
bounds MLflow's HTTP waits and names an unreachable server. ``from attrition_mlops import
registry`` gives the alias and version API.
"""

from attrition_mlops.registry.aliases import (
    CHALLENGER,
    CHAMPION,
    PRODUCTION,
    STAGING,
    AliasMove,
    ConcurrentAliasMoveError,
    RollbackError,
    alias_histories,
    alias_history,
    delete_alias,
    get_alias_version,
    move_alias,
    previous_alias,
    resolve_model_uri,
    rollback_alias,
    was_moved_to,
)
from attrition_mlops.registry.history import HistoryEntry
from attrition_mlops.registry.lock import RegistryLockError
from attrition_mlops.registry.versions import (
    RUN_KEY_TAG,
    UnknownModelError,
    find_gate_report,
    find_reference_profile,
    find_version_by_run_key,
    get_version,
    load_reference_profile,
    register_version,
    set_version_tags,
)

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
    "find_gate_report",
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
