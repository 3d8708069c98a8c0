"""Alias moves against a real (SQLite) MLflow registry: idempotency, CAS, audit, rollback."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from attrition_mlops import registry

NAME = "employee_attrition"


@pytest.fixture
def versions(mlflow_store, tmp_path):
    """Three registered versions pointing at empty model folders (aliases only need versions)."""
    out = []
    for i in range(3):
        source = tmp_path / f"model{i}"
        source.mkdir()
        version, created = registry.register_version(
            str(source), NAME, run_key=f"key-{i}", tags={"holdout_auc": "0.8"}
        )
        assert created
        out.append(str(version.version))
    return out


def _move(alias, version, expected):
    return registry.move_alias(NAME, alias, version, expected=expected, actor="t", reason="r")


def test_register_is_idempotent_per_run_key(versions, tmp_path):
    again, created = registry.register_version(
        str(tmp_path / "model0"), NAME, run_key="key-0", tags={}
    )
    assert not created and str(again.version) == versions[0]
    assert len(MlflowClient().search_model_versions(f"name = '{NAME}'")) == 3


def test_move_alias_writes_audit_tags_and_previous_pointer(versions):
    first = _move(registry.CHAMPION, versions[0], None)
    assert first.previous is None
    second = registry.move_alias(
        NAME,
        registry.CHAMPION,
        versions[1],
        expected=versions[0],
        actor="alice",
        reason="won the gate",
        evaluation_run_id="run123",
    )
    assert second.previous == versions[0]
    assert registry.get_alias_version(NAME, registry.CHAMPION) == versions[1]
    assert registry.get_alias_version(NAME, "previous-champion") == versions[0]
    tags = registry.get_version(NAME, versions[1]).tags
    assert tags["audit.champion.moved_by"] == "alice"
    assert tags["audit.champion.reason"] == "won the gate"
    assert tags["audit.champion.previous_version"] == versions[0]
    assert tags["audit.champion.evaluation_run_id"] == "run123"
    old = registry.get_version(NAME, versions[0]).tags
    assert old["audit.champion.replaced_by"] == versions[1]


def test_lost_race_aborts_and_changes_nothing(versions):
    _move(registry.CHAMPION, versions[0], None)
    # This evaluation started when there was no champion; another promotion got there first.
    with pytest.raises(registry.ConcurrentAliasMoveError, match="another promotion won"):
        _move(registry.CHAMPION, versions[1], None)
    assert registry.get_alias_version(NAME, registry.CHAMPION) == versions[0]
    assert "audit.champion.moved_at" not in registry.get_version(NAME, versions[1]).tags


def test_rollback_walks_back_the_chain(versions):
    _move(registry.CHAMPION, versions[0], None)
    _move(registry.CHAMPION, versions[1], versions[0])
    _move(registry.CHAMPION, versions[2], versions[1])
    move = registry.rollback_alias(NAME, registry.CHAMPION, actor="oncall")
    assert (move.version, move.previous) == (versions[1], versions[2])
    assert registry.get_alias_version(NAME, registry.CHAMPION) == versions[1]
    assert registry.get_alias_version(NAME, "previous-champion") == versions[0]
    assert "audit.champion.rolled_back_at" in registry.get_version(NAME, versions[2]).tags
    registry.rollback_alias(NAME, registry.CHAMPION, actor="oncall")
    assert registry.get_alias_version(NAME, registry.CHAMPION) == versions[0]
    assert registry.get_alias_version(NAME, "previous-champion") is None
    with pytest.raises(registry.RollbackError, match="no previous-champion"):
        registry.rollback_alias(NAME, registry.CHAMPION, actor="oncall")
    assert registry.get_alias_version(NAME, registry.CHAMPION) == versions[0]


def test_missing_alias_is_none(mlflow_store):
    assert registry.get_alias_version(NAME, registry.CHAMPION) is None
