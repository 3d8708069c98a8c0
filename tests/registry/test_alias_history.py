"""The append-only alias history and the rollback rule, against a real (SQLite) MLflow registry.

The property test drives random promotions, rollbacks and deletions and holds the registry to a
small reference model of what the history and the holder must be after each step.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlflow.tracking import MlflowClient

from attrition_mlops import registry

ALIAS = registry.CHAMPION
_names = itertools.count()


def _new_model(tmp_path, n_versions: int) -> tuple[str, list[str]]:
    """A fresh registered model with ``n_versions`` versions (aliases only need versions)."""
    name = f"history_model_{next(_names)}"
    client = MlflowClient()
    client.create_registered_model(name)
    versions = []
    for i in range(n_versions):
        source = tmp_path / name / f"v{i}"
        source.mkdir(parents=True)
        versions.append(str(client.create_model_version(name, str(source)).version))
    return name, versions


def _promote(name, version):
    held = registry.get_alias_version(name, ALIAS)
    return registry.move_alias(name, ALIAS, version, expected=held, actor="t", reason="promote")


def test_rollback_never_lands_on_a_version_that_was_rolled_back(mlflow_store, tmp_path):
    # Issue 11, defect 2: v1 champion; promote v2, v3; roll back; promote v4; roll back twice.
    name, (v1, v2, v3, v4) = _new_model(tmp_path, 4)
    for version in (v1, v2, v3):
        _promote(name, version)
    assert registry.rollback_alias(name, ALIAS, actor="oncall").version == v2
    _promote(name, v4)
    assert registry.rollback_alias(name, ALIAS, actor="oncall").version == v2
    move = registry.rollback_alias(name, ALIAS, actor="oncall")
    assert (move.version, move.previous) == (v1, v2)
    assert registry.get_alias_version(name, ALIAS) == v1
    assert registry.get_alias_version(name, registry.previous_alias(ALIAS)) is None
    steps = [(e.action, e.from_version, e.to_version) for e in registry.alias_history(name, ALIAS)]
    assert steps == [
        ("promotion", None, v1),
        ("promotion", v1, v2),
        ("promotion", v2, v3),
        ("rollback", v3, v2),
        ("promotion", v2, v4),
        ("rollback", v4, v2),
        ("rollback", v2, v1),
    ]
    with pytest.raises(registry.RollbackError, match="no previous-champion"):
        registry.rollback_alias(name, ALIAS, actor="oncall")


def test_a_registry_without_history_rolls_back_to_the_previous_pointer(mlflow_store, tmp_path):
    # Aliases set before the history existed: only previous-champion says where to go back.
    name, (v1, v2) = _new_model(tmp_path, 2)
    client = MlflowClient()
    client.set_registered_model_alias(name, ALIAS, v2)
    client.set_registered_model_alias(name, registry.previous_alias(ALIAS), v1)
    move = registry.rollback_alias(name, ALIAS, actor="oncall")
    assert (move.version, move.previous, move.reason) == (v1, v2, "rollback")
    assert registry.get_alias_version(name, ALIAS) == v1
    (entry,) = registry.alias_history(name, ALIAS)
    assert (entry.action, entry.why) == ("rollback", "rollback") and entry.lock
    message = (
        f"{name}@{ALIAS} \\(version {v1}\\) has no previous-champion to roll back to: every "
        "earlier holder was rolled back already, or there was none"
    )
    with pytest.raises(registry.RollbackError, match=message):
        registry.rollback_alias(name, ALIAS, actor="oncall")


def test_history_entry_records_who_why_when_and_the_evaluation(mlflow_store, tmp_path):
    name, (v1, v2) = _new_model(tmp_path, 2)
    _promote(name, v1)
    registry.move_alias(
        name,
        ALIAS,
        v2,
        expected=v1,
        actor="alice",
        reason="won the gate",
        evaluation_run_id="run123",
    )
    entry = registry.alias_history(name, ALIAS)[-1]
    assert (entry.seq, entry.by, entry.why, entry.lock) == (2, "alice", "won the gate", "file-lock")
    assert entry.extra == {"evaluation_run_id": "run123"} and entry.at
    tags = MlflowClient().get_registered_model(name).tags
    assert "alias_history.champion.000002" in tags
    assert registry.get_version(name, v2).tags["audit.champion.history_seq"] == "2"


@dataclass
class Reference:
    """What the alias must look like: the spec of promotion, rollback and deletion."""

    holder: str | None = None
    stack: list[str] = field(default_factory=list)
    rolled_back: set[str] = field(default_factory=set)
    entries: list[tuple[str, str | None, str | None]] = field(default_factory=list)

    def target(self) -> str | None:
        usable = [v for v in self.stack if v not in self.rolled_back and v != self.holder]
        return usable[-1] if usable else None

    def promote(self, version: str) -> None:
        self.entries.append(("promotion", self.holder, version))
        if self.holder not in (None, version):
            self.stack.append(self.holder)
        self.rolled_back.discard(version)
        self.holder = version

    def rollback(self) -> bool:
        target = self.target()
        if target is None:
            return False
        self.entries.append(("rollback", self.holder, target))
        if self.holder is not None:
            self.rolled_back.add(self.holder)
        last = len(self.stack) - 1 - self.stack[::-1].index(target)
        del self.stack[last:]
        self.holder = target
        return True

    def delete(self) -> None:
        if self.holder is not None:
            self.entries.append(("deletion", self.holder, None))
            self.rolled_back.add(self.holder)
            self.holder = None


N_VERSIONS = 4
operations = st.lists(
    st.one_of(
        st.tuples(st.just("promote"), st.integers(0, N_VERSIONS - 1)),
        st.tuples(st.just("rollback"), st.none()),
        st.tuples(st.just("delete"), st.none()),
    ),
    min_size=1,
    max_size=10,
)


@settings(
    max_examples=12,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ops=operations)
def test_history_and_holder_follow_the_reference_model(mlflow_store, tmp_path, ops):
    name, versions = _new_model(tmp_path, N_VERSIONS)
    ref = Reference()
    for op, arg in ops:
        if op == "promote":
            _promote(name, versions[arg])
            ref.promote(versions[arg])
        elif op == "rollback":
            if ref.rollback():
                registry.rollback_alias(name, ALIAS, actor="t")
            else:
                with pytest.raises(registry.RollbackError):
                    registry.rollback_alias(name, ALIAS, actor="t")
        else:
            held = registry.get_alias_version(name, ALIAS)
            registry.delete_alias(name, ALIAS, expected=held, actor="t", reason="failed")
            ref.delete()
        assert registry.get_alias_version(name, ALIAS) == ref.holder
        assert registry.get_alias_version(name, registry.previous_alias(ALIAS)) == ref.target()
    history = registry.alias_history(name, ALIAS)
    assert [(e.action, e.from_version, e.to_version) for e in history] == ref.entries
    assert [e.seq for e in history] == list(range(1, len(ref.entries) + 1))
    if ref.holder is not None:  # the holder's audit tags point at the entry that moved it there
        seq = registry.get_version(name, ref.holder).tags[f"audit.{ALIAS}.history_seq"]
        assert history[int(seq) - 1].to_version == ref.holder


def test_status_shows_each_alias_history_newest_first(mlflow_store, tmp_path, capsys):
    import json

    from attrition_mlops import cli

    name = mlflow_store.model_name
    client = MlflowClient()
    client.create_registered_model(name)
    v1, v2 = (str(client.create_model_version(name, str(tmp_path)).version) for _ in range(2))
    _promote(name, v1)
    _promote(name, v2)
    registry.rollback_alias(name, ALIAS, actor="oncall", reason="bad canary")
    assert cli.main(["status", "--history", "2", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)[ALIAS]
    assert shown["version"] == v1 and shown["history_entries"] == 3
    assert [
        (e["seq"], e["action"], e["from_version"], e["to_version"], e["why"])
        for e in shown["history"]
    ] == [
        (3, "rollback", v2, v1, "bad canary"),
        (2, "promotion", v1, v2, "promote"),
    ]
