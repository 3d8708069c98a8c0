"""The lock that makes an alias compare-and-set atomic (MLflow has no compare-and-set of its own).

Every alias move reads the holder, compares it with what the caller expected, then writes the
alias, its history entry and its audit tags: several registry calls. Two movers interleaving
there is the race this lock closes. Where the lock lives depends on the registry:

* ``sqlite:///path``: an exclusive ``fcntl.flock`` on ``path.registry.lock`` beside the database
  (every mover shares that file system, or it could not open the database either);
* ``postgresql://…`` used directly as the registry URI: a PostgreSQL advisory lock there;
* anything else (an MLflow server, Databricks): an advisory lock in the PostgreSQL named by
  ``ATTRITION_REGISTRY_LOCK_URL``. Without it a move raises :class:`RegistryLockError` rather than
  run unprotected; ``ATTRITION_REGISTRY_LOCK_URL=none`` opts out explicitly, with a warning on
  every move.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

NO_LOCK = "none"
_POSTGRES_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg2://")


class RegistryLockError(RuntimeError):
    """The registry lock is not configured, not reachable, or was not granted in time."""


@dataclass(frozen=True)
class LockPlan:
    kind: str  # "file", "postgres" or "none"
    target: str  # lock file path, or PostgreSQL DSN (may hold a password: never log it)

    @property
    def label(self) -> str:
        return {"file": "file-lock", "postgres": "postgres-advisory-lock"}.get(self.kind, NO_LOCK)


def lock_plan(registry_uri: str, lock_url: str | None) -> LockPlan:
    """Which lock guards moves in ``registry_uri`` (pure: decides, touches nothing)."""
    if lock_url:
        if lock_url.strip().lower() == NO_LOCK:
            return LockPlan("none", "")
        if lock_url.startswith(_POSTGRES_SCHEMES):
            return LockPlan("postgres", _libpq_dsn(lock_url))
        raise RegistryLockError(
            "ATTRITION_REGISTRY_LOCK_URL must be a postgresql:// URL (or 'none' to run "
            "without a lock); got a URL of another kind"
        )
    if registry_uri.startswith("sqlite:///"):
        path = registry_uri.removeprefix("sqlite:///").split("?", 1)[0]
        if path and path != ":memory:":
            return LockPlan("file", f"{Path(path)}.registry.lock")
    if registry_uri.startswith(_POSTGRES_SCHEMES):
        return LockPlan("postgres", _libpq_dsn(registry_uri))
    raise RegistryLockError(
        f"no lock is configured for alias moves in the registry at {_scheme(registry_uri)}: two "
        "concurrent promotions could both succeed. Set ATTRITION_REGISTRY_LOCK_URL to a "
        "postgresql:// URL that every mover can reach (see docs/configuration.md), or to 'none' "
        "to accept the race knowingly."
    )


def _scheme(uri: str) -> str:
    return uri.split("://", 1)[0] + "://…" if "://" in uri else repr(uri)


def _libpq_dsn(url: str) -> str:
    # SQLAlchemy spells the driver into the scheme; libpq does not know it.
    return "postgresql://" + url.split("://", 1)[1]


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key per registered model (pg_advisory_* take a bigint)."""
    digest = hashlib.sha256(f"attrition-mlops/registry/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def registry_lock(name: str, registry_uri: str, lock_url: str | None, timeout_s: float):
    """Hold the registry's lock for model ``name``; yields the lock's label for the audit."""
    plan = lock_plan(registry_uri, lock_url)
    if plan.kind == "file":
        with _file_lock(Path(plan.target), timeout_s):
            yield plan.label
    elif plan.kind == "postgres":
        with _advisory_lock(plan.target, advisory_key(name), timeout_s):
            yield plan.label
    else:
        log.warning(
            "moving an alias of %s WITHOUT a registry lock (ATTRITION_REGISTRY_LOCK_URL=none): "
            "a concurrent move can interleave with this one",
            name,
        )
        yield plan.label


@contextmanager
def _file_lock(path: Path, timeout_s: float) -> Iterator[None]:
    # flock belongs to the open file description, so threads of one process exclude each other
    # too; the kernel drops it if the process dies, so a crash never leaves the lock held.
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise RegistryLockError(
                        f"registry lock {path} not granted within {timeout_s:g} s: another alias "
                        "move is holding it (or hung while holding it)"
                    ) from None
                time.sleep(0.005)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextmanager
def _advisory_lock(dsn: str, key: int, timeout_s: float) -> Iterator[None]:
    # A transaction-scoped advisory lock: released at the end of the transaction, or by the
    # server when this connection drops (a killed mover never leaves it held).
    try:
        import psycopg2
    except ImportError as exc:  # the driver comes with the airflow group, not the serving image
        raise RegistryLockError("the PostgreSQL registry lock needs psycopg2") from exc
    try:
        conn = psycopg2.connect(dsn, connect_timeout=max(1, int(timeout_s)))
    except psycopg2.OperationalError as exc:
        raise RegistryLockError(f"cannot reach the registry lock database: {exc}") from None
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT set_config('lock_timeout', %s, true)", (f"{int(timeout_s * 1000)}",)
            )
            try:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
            except psycopg2.errors.LockNotAvailable:
                raise RegistryLockError(
                    f"registry lock (advisory key {key}) not granted within {timeout_s:g} s: "
                    "another alias move is holding it (or hung while holding it)"
                ) from None
        yield
    finally:
        conn.rollback()
        conn.close()
