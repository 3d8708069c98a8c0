"""The rollback rule replayed from an alias's history, without a registry (pure).

Added for the mutation run (docs/testing.md#mutation-testing): the registry tests reach these
functions through MLflow; here each rule is pinned on hand-written histories.
"""

from __future__ import annotations

from attrition_mlops.registry.history import AliasState, HistoryEntry, next_seq, replay


def _entry(seq: int, action: str, source: str | None, target: str | None) -> HistoryEntry:
    return HistoryEntry(seq, "champion", action, source, target, "t", "me", "why", "lock")


def test_rollback_target_skips_rolled_back_versions_and_the_current_holder():
    state = AliasState("3", ("1", "2"), frozenset({"2"}))
    assert state.rollback_target("3") == "1"  # 2 was rolled back: step over it
    assert AliasState("2", ("1", "2"), frozenset()).rollback_target("2") == "1"
    assert AliasState("2", ("2",), frozenset()).rollback_target("2") is None
    assert AliasState(None, (), frozenset()).rollback_target(None) is None


def test_replay_stacks_promotions_and_unstacks_rollbacks():
    history = [
        _entry(1, "promotion", None, "1"),
        _entry(2, "promotion", "1", "2"),
        _entry(3, "promotion", "2", "3"),
        _entry(4, "promotion", "3", "3"),  # re-promoting the holder stacks nothing
    ]
    state = replay(history)
    assert state == AliasState("3", ("1", "2"), frozenset())
    back = replay([*history, _entry(5, "rollback", "3", "1")])  # skips 2 on the way down
    assert back == AliasState("1", (), frozenset({"3"}))
    assert back.rollback_target("1") is None


def test_a_deletion_marks_the_removed_version_and_a_new_promotion_clears_the_mark():
    history = [_entry(1, "promotion", None, "1"), _entry(2, "deletion", "1", None)]
    assert replay(history) == AliasState(None, (), frozenset({"1"}))
    again = replay([*history, _entry(3, "promotion", None, "1")])
    assert again == AliasState("1", (), frozenset())
    assert replay([_entry(1, "deletion", None, None)]) == AliasState(None, (), frozenset())


def test_next_seq_follows_the_last_entry():
    assert next_seq([]) == 1
    assert next_seq([_entry(1, "promotion", None, "1"), _entry(7, "promotion", "1", "2")]) == 8


def test_an_empty_history_has_no_holder():
    assert replay([]) == AliasState(None, (), frozenset())
