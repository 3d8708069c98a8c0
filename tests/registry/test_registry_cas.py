"""Compare-and-set on every alias write, against a real (SQLite) MLflow registry.

A stale expectation, empty or not, aborts with ConcurrentAliasMoveError and changes nothing:
not the alias, not its history, not the audit tags. Deletions are compare-and-set too.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from mlflow.tracking import MlflowClient

from attrition_mlops import registry

NAME = "employee_attrition"
ALIAS = registry.CHAMPION


@pytest.fixture
def versions(mlflow_store, tmp_path):
    """Three registered versions pointing at empty model folders (aliases only need versions)."""
    out = []
    for i in range(3):
        source = tmp_path / f"model{i}"
        source.mkdir()
        version, _ = registry.register_version(str(source), NAME, run_key=f"key-{i}", tags={})
        out.append(str(version.version))
    return out


def _move(version, expected):
    return registry.move_alias(NAME, ALIAS, version, expected=expected, actor="t", reason="r")


def _delete(expected):
    return registry.delete_alias(NAME, ALIAS, expected=expected, actor="t", reason="failed")


def _state():
    """Everything an alias write may touch: aliases, model tags, every version's tags."""
    client = MlflowClient()
    model = client.get_registered_model(NAME)
    tags = {v.version: v.tags for v in client.search_model_versions(f"name = '{NAME}'")}
    return dict(model.aliases), dict(model.tags), tags


def test_move_with_stale_non_empty_expected_aborts_and_changes_nothing(versions):
    v1, v2, v3 = versions
    _move(v1, None)
    _move(v2, v1)
    before = _state()
    # This decision was made while v1 was champion; v2 has replaced it since.
    with pytest.raises(registry.ConcurrentAliasMoveError, match="holds version 2, not 1"):
        _move(v3, v1)
    assert _state() == before
    assert registry.get_alias_version(NAME, ALIAS) == v2
    assert [e.to_version for e in registry.alias_history(NAME, ALIAS)] == [v1, v2]


def test_move_expecting_a_holder_when_the_alias_is_empty_aborts(versions):
    before = _state()
    with pytest.raises(registry.ConcurrentAliasMoveError):
        _move(versions[0], versions[1])
    assert _state() == before and registry.get_alias_version(NAME, ALIAS) is None


def test_delete_with_stale_expected_refuses_and_changes_nothing(versions):
    v1, v2, _ = versions
    _move(v1, None)
    _move(v2, v1)
    before = _state()
    with pytest.raises(registry.ConcurrentAliasMoveError, match="holds version 2, not 1"):
        _delete(v1)
    assert _state() == before and registry.get_alias_version(NAME, ALIAS) == v2


def test_delete_expecting_nothing_leaves_a_held_alias_alone(versions):
    _move(versions[0], None)
    before = _state()
    with pytest.raises(registry.ConcurrentAliasMoveError):
        _delete(None)
    assert _state() == before


def test_delete_with_current_expected_removes_and_records(versions):
    v1 = versions[0]
    _move(v1, None)
    moved = _delete(v1)
    assert (moved.previous, moved.version) == (v1, None)
    assert (moved.alias, moved.actor, moved.reason) == (ALIAS, "t", "failed")
    assert moved.at.startswith("20")
    assert registry.get_alias_version(NAME, ALIAS) is None
    last = registry.alias_history(NAME, ALIAS)[-1]
    assert (last.action, last.from_version, last.to_version) == ("deletion", v1, None)
    assert last.lock  # which lock the deletion held, as every move records
    assert registry.get_version(NAME, v1).tags[f"audit.{ALIAS}.removal_reason"] == "failed"


def test_delete_of_an_empty_alias_expecting_nothing_is_a_recorded_no_op(versions):
    before = _state()
    moved = _delete(None)
    assert (moved.alias, moved.version, moved.previous) == (ALIAS, None, None)
    assert (moved.actor, moved.reason) == ("t", "failed") and moved.at.startswith("20")
    assert _state() == before  # nothing written: no history entry, no tags


def test_a_move_failing_half_way_undoes_every_write(versions, monkeypatch):
    v1, v2, _ = versions
    _move(v1, None)
    _move(v2, v1)
    before = _state()
    real = MlflowClient.set_model_version_tag

    def failing(self, name, version, key, value):
        # The last write of a move: the audit tags on the new holder (after the history entry,
        # the alias, and the previous holder's tags).
        if key == f"audit.{ALIAS}.moved_at":
            raise RuntimeError("registry went away")
        return real(self, name, version, key, value)

    monkeypatch.setattr(MlflowClient, "set_model_version_tag", failing)
    with pytest.raises(RuntimeError, match="registry went away"):
        _move(v1, v2)
    monkeypatch.undo()
    assert _state() == before  # alias, history, pointers and audit tags as they were


def _race(*writes):
    """Run the writes at once (released together); (winners' results, losers' errors)."""
    start = threading.Barrier(len(writes))

    def run(write):
        start.wait()
        try:
            return write(), None
        except registry.ConcurrentAliasMoveError as lost:
            return None, lost

    with ThreadPoolExecutor(len(writes)) as pool:
        outcomes = list(pool.map(run, writes))
    return [w for w, _ in outcomes if w is not None], [e for _, e in outcomes if e is not None]


@pytest.mark.parametrize("round_", range(3))
def test_two_deleters_expecting_the_same_holder_exactly_one_wins(versions, round_):
    v1 = versions[0]
    _move(v1, None)
    won, lost = _race(lambda: _delete(v1), lambda: _delete(v1))
    assert (len(won), len(lost)) == (1, 1)
    assert registry.get_alias_version(NAME, ALIAS) is None
    deletions = [e for e in registry.alias_history(NAME, ALIAS) if e.action == "deletion"]
    assert len(deletions) == 1


@pytest.mark.parametrize("round_", range(3))
def test_delete_against_move_expecting_the_same_holder_exactly_one_wins(versions, round_):
    v1, v2, _ = versions
    _move(v1, None)
    won, lost = _race(lambda: _delete(v1), lambda: _move(v2, v1))
    assert (len(won), len(lost)) == (1, 1)
    history = registry.alias_history(NAME, ALIAS)
    assert len(history) == 2  # the first move, then the winner only
    holder = registry.get_alias_version(NAME, ALIAS)
    assert holder == won[0].version == history[-1].to_version
    assert holder in (None, v2)
