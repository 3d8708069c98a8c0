"""Concurrent alias moves: exactly one winner, a clean loser, and an audit record that agrees.

Two backends, both real: the local SQLite store (file lock beside the database) and an MLflow
tracking server backed by PostgreSQL, the production configuration (advisory lock in PostgreSQL).
Each round, two threads race compare-and-set moves that expected the same holder.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg2
import pytest
from mlflow.tracking import MlflowClient
from support import clear_settings_caches, free_port

from attrition_mlops import registry
from attrition_mlops import settings as settings_module
from attrition_mlops.registry.lock import registry_lock

pytestmark = pytest.mark.integration
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
ALIAS = registry.STAGING
ROUNDS = 100
LANES = 4


def _admin(sql: str) -> None:
    conn = psycopg2.connect(PG_ADMIN)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def pg_mlflow_server(tmp_path_factory):
    """A real ``mlflow server`` on a free loopback port over a fresh PostgreSQL database."""
    db = f"attrition_registry_{uuid.uuid4().hex[:10]}"
    _admin(f"CREATE DATABASE {db}")
    db_url = f"postgresql://postgres@127.0.0.1:5432/{db}"
    port, home = free_port(), tmp_path_factory.mktemp("mlflow-server")
    log = open(home / "server.log", "wb")  # noqa: SIM115 (closed below)
    mlflow_bin = str(Path(sys.executable).with_name("mlflow"))
    proc = subprocess.Popen(
        [
            mlflow_bin,
            "server",
            "--backend-store-uri",
            db_url,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "2",
            "--artifacts-destination",
            str(home / "art"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=home,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start: {(home / 'server.log').read_text()}")
            time.sleep(0.5)
        yield url, db_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        _admin(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        shutil.rmtree(home, ignore_errors=True)


def _use(monkeypatch, **env: str | None) -> None:
    for key, value in env.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    clear_settings_caches()
    from attrition_mlops.registry.tracking import configure_mlflow

    configure_mlflow(settings_module.get_settings())


@pytest.fixture(params=["sqlite", "postgres-server"])
def backend(request, state_dir, monkeypatch):
    """The registry to race on; returns the lock label its history entries must carry."""
    if request.param == "sqlite":
        _use(monkeypatch, ATTRITION_REGISTRY_LOCK_URL=None)
        return "file-lock"
    url, db_url = request.getfixturevalue("pg_mlflow_server")
    _use(monkeypatch, ATTRITION_TRACKING_URI=url, ATTRITION_REGISTRY_LOCK_URL=db_url)
    return "postgres-advisory-lock"


def _model(n_versions: int = 3) -> tuple[str, list[str]]:
    name = f"race_{uuid.uuid4().hex[:8]}"
    client = MlflowClient()
    client.create_registered_model(name)
    # A remote-style source: the server refuses local paths without a run, and the moves under
    # test never load the model.
    return name, [
        str(client.create_model_version(name, f"s3://attrition-tests/{name}/{i}").version)
        for i in range(n_versions)
    ]


def _race(calls: dict[str, callable]) -> dict[str, object]:
    """Run the calls at the same instant, one thread each; each result or exception by name."""
    barrier, results = threading.Barrier(len(calls)), {}

    def run(key, call):
        barrier.wait()
        try:
            results[key] = call()
        except Exception as exc:  # the assertions below say which exceptions are allowed
            results[key] = exc

    threads = [threading.Thread(target=run, args=item) for item in calls.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def _round_calls(name, r, holder, versions):
    """Two movers expecting ``holder``; every 10th round one of them deletes the alias instead."""
    others = [v for v in versions if v != holder]
    a, b = (others[0], others[1]) if r % 2 else (others[-1], others[-2])
    calls = {
        f"mover-a-{r}": lambda: registry.move_alias(
            name, ALIAS, a, expected=holder, actor=f"mover-a-{r}", reason=f"round {r}"
        ),
        f"mover-b-{r}": lambda: registry.move_alias(
            name, ALIAS, b, expected=holder, actor=f"mover-b-{r}", reason=f"round {r}"
        ),
    }
    if r % 10 == 9 and holder is not None:
        calls[f"mover-b-{r}"] = lambda: registry.delete_alias(
            name, ALIAS, expected=holder, actor=f"mover-b-{r}", reason=f"round {r}"
        )
    return calls


def _race_rounds(rounds: int, lock_label: str) -> None:
    """``rounds`` races on a model of its own, each checked as it ends, then its whole history."""
    name, versions = _model()
    expected_history = []
    for r in range(rounds):
        holder = registry.get_alias_version(name, ALIAS)
        results = _race(_round_calls(name, r, holder, versions))
        winners = {k: v for k, v in results.items() if isinstance(v, registry.AliasMove)}
        losers = {k: v for k, v in results.items() if k not in winners}
        assert len(winners) == 1 and len(losers) == 1, f"round {r}: {results}"
        (loser_error,) = losers.values()
        assert isinstance(loser_error, registry.ConcurrentAliasMoveError), f"round {r}: {results}"
        (actor, move), now = next(iter(winners.items())), registry.get_alias_version(name, ALIAS)
        assert (move.previous, now) == (holder, move.version), f"round {r}"
        if now is not None:  # the holder's audit tags name the winner, never the loser
            tags = registry.get_version(name, now).tags
            assert tags[f"audit.{ALIAS}.moved_by"] == actor, f"round {r}"
            assert tags.get(f"audit.{ALIAS}.history_seq") == str(len(expected_history) + 1)
        action = "promotion" if move.version is not None else "deletion"
        expected_history.append((action, holder, move.version, actor))
    history = registry.alias_history(name, ALIAS)
    assert [(e.action, e.from_version, e.to_version, e.by) for e in history] == expected_history
    assert {e.lock for e in history} == {lock_label}


def test_concurrent_moves_have_exactly_one_winner_and_agree_with_the_audit(backend):
    # ROUNDS races in all, on LANES models at once: the lock is per model, so lanes overlap
    # (which also shows that one model's lock never blocks another's moves for good).
    with ThreadPoolExecutor(LANES) as pool:
        lanes = [pool.submit(_race_rounds, ROUNDS // LANES, backend) for _ in range(LANES)]
        for lane in lanes:
            lane.result()


def test_a_move_waits_for_the_lock_and_gives_up_clearly(backend, monkeypatch):
    name, (v1, v2, _) = _model()
    registry.move_alias(name, ALIAS, v1, expected=None, actor="t", reason="first")
    monkeypatch.setenv("ATTRITION_REGISTRY_LOCK_TIMEOUT_S", "0.5")
    settings_module.get_settings.cache_clear()
    settings = settings_module.get_settings()
    url = settings.registry_lock_url.get_secret_value() if settings.registry_lock_url else None
    import mlflow

    with registry_lock(name, mlflow.get_registry_uri(), url, 5):  # someone else's long move
        with pytest.raises(registry.RegistryLockError, match="not granted within 0.5 s"):
            registry.move_alias(name, ALIAS, v2, expected=v1, actor="t", reason="second")
    assert registry.get_alias_version(name, ALIAS) == v1
    assert len(registry.alias_history(name, ALIAS)) == 1
    registry.move_alias(name, ALIAS, v2, expected=v1, actor="t", reason="after release")
    assert registry.get_alias_version(name, ALIAS) == v2


def test_server_without_a_lock_refuses_to_move(pg_mlflow_server, state_dir, monkeypatch, caplog):
    url, _ = pg_mlflow_server
    _use(monkeypatch, ATTRITION_TRACKING_URI=url, ATTRITION_REGISTRY_LOCK_URL=None)
    name, (v1, _, _) = _model()
    with pytest.raises(registry.RegistryLockError, match="ATTRITION_REGISTRY_LOCK_URL"):
        registry.move_alias(name, ALIAS, v1, expected=None, actor="t", reason="unsafe")
    assert registry.get_alias_version(name, ALIAS) is None
    assert registry.alias_history(name, ALIAS) == []
    # The explicit opt-out moves, warns on every move, and records that no lock was held.
    _use(monkeypatch, ATTRITION_TRACKING_URI=url, ATTRITION_REGISTRY_LOCK_URL="none")
    registry.move_alias(name, ALIAS, v1, expected=None, actor="t", reason="accepted")
    assert "WITHOUT a registry lock" in caplog.text
    assert registry.alias_history(name, ALIAS)[-1].lock == "none"


def test_a_mover_paused_between_its_check_and_its_write_still_wins_alone(backend, monkeypatch):
    """Deterministic interleaving: A has checked the holder and is about to write; B moves now.

    Only A's alias write is slowed (it waits for B to finish, at most 3 s); nothing is faked.
    Without a lock B passes the same check and both "win"; with it B waits for A and loses.
    """
    name, (v1, v2, v3) = _model()
    registry.move_alias(name, ALIAS, v1, expected=None, actor="t", reason="first")
    b_done, real_set = threading.Event(), MlflowClient.set_registered_model_alias

    def slow_for_a(self, model, alias, version):
        if threading.current_thread().name == "mover-a" and alias == ALIAS:
            b_done.wait(timeout=3)
        return real_set(self, model, alias, version)

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", slow_for_a)
    results = {}

    def mover(label, version):
        try:
            results[label] = registry.move_alias(
                name, ALIAS, version, expected=v1, actor=label, reason="race"
            )
        except Exception as exc:  # asserted below
            results[label] = exc
        finally:
            if label == "mover-b":
                b_done.set()

    a = threading.Thread(target=mover, args=("mover-a", v2), name="mover-a")
    a.start()
    time.sleep(0.5)  # A is inside its move (waiting in its alias write) before B starts
    b = threading.Thread(target=mover, args=("mover-b", v3), name="mover-b")
    b.start()
    a.join(timeout=120)
    b.join(timeout=120)
    assert isinstance(results["mover-a"], registry.AliasMove), results
    assert isinstance(results["mover-b"], registry.ConcurrentAliasMoveError), results
    assert registry.get_alias_version(name, ALIAS) == v2
    assert registry.get_version(name, v2).tags[f"audit.{ALIAS}.moved_by"] == "mover-a"
    assert f"audit.{ALIAS}.moved_at" not in registry.get_version(name, v3).tags
