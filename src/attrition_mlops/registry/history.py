"""The append-only history of an alias's moves, and the rollback rule computed from it (pure).

Each move of an alias is one entry: a promotion (any compare-and-set move), a rollback or a
deletion, with the versions it went from and to, when, who and why. Entries are never rewritten,
so a rollback can always tell which versions were themselves rolled back. ``registry`` stores
them as registered-model tags ``alias_history.<alias>.<seq>`` (see docs/model-lifecycle.md);
this module only encodes, decodes and replays them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Literal

Action = Literal["promotion", "rollback", "deletion"]
ACTIONS: tuple[Action, ...] = ("promotion", "rollback", "deletion")
PREFIX = "alias_history"
# MLflow's SQL store keeps tag values in a VARCHAR(5000) column (PostgreSQL enforces it); stay
# well below it so an entry with a long reason is still stored whole rather than rejected.
MAX_ENTRY_CHARS = 4000
_MAX_TEXT = 1000


@dataclass(frozen=True)
class HistoryEntry:
    seq: int
    alias: str
    action: Action
    from_version: str | None
    to_version: str | None
    at: str
    by: str
    why: str
    lock: str
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return history_key(self.alias, self.seq)

    def to_tag_value(self) -> str:
        body = {
            "action": self.action,
            "from": self.from_version,
            "to": self.to_version,
            "at": self.at,
            "by": _clip(self.by),
            "why": _clip(self.why),
            "lock": self.lock,
            **{k: _clip(v) for k, v in self.extra.items()},
        }
        text = json.dumps(body, separators=(",", ":"), sort_keys=True)
        if len(text) > MAX_ENTRY_CHARS:  # only reachable through many long extras
            raise ValueError(f"history entry for {self.alias} is {len(text)} characters")
        return text

    def to_dict(self) -> dict:
        out = asdict(self)
        return {**{k: v for k, v in out.items() if k != "extra"}, **self.extra}


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def history_key(alias: str, seq: int) -> str:
    # Zero-padded so that the tags sort by sequence in any UI that sorts keys as text.
    return f"{PREFIX}.{alias}.{seq:06d}"


def parse_history(tags: dict[str, str], alias: str) -> list[HistoryEntry]:
    """The entries for ``alias`` among a registered model's tags, oldest first."""
    prefix = f"{PREFIX}.{alias}."
    entries = []
    for key, value in tags.items():
        seq = key.removeprefix(prefix)
        if key.startswith(prefix) and seq.isdigit():
            body = json.loads(value)
            known = {"action", "from", "to", "at", "by", "why", "lock"}
            entries.append(
                HistoryEntry(
                    seq=int(seq),
                    alias=alias,
                    action=body["action"],
                    from_version=body.get("from"),
                    to_version=body.get("to"),
                    at=body.get("at", ""),
                    by=body.get("by", ""),
                    why=body.get("why", ""),
                    lock=body.get("lock", ""),
                    extra={k: str(v) for k, v in body.items() if k not in known},
                )
            )
    return sorted(entries, key=lambda e: e.seq)


def aliases_with_history(tags: dict[str, str]) -> list[str]:
    found = {k.split(".")[1] for k in tags if k.startswith(f"{PREFIX}.") and k.count(".") >= 2}
    return sorted(found)


def next_seq(entries: list[HistoryEntry]) -> int:
    return entries[-1].seq + 1 if entries else 1


@dataclass(frozen=True)
class AliasState:
    """What the history says: the holder, and the versions a rollback may return to."""

    holder: str | None
    behind: tuple[str, ...]  # earlier holders not yet stepped back over, oldest first
    rolled_back: frozenset[str]

    def rollback_target(self, current: str | None) -> str | None:
        """The newest earlier holder that was not itself rolled back (nor is ``current``)."""
        for version in reversed(self.behind):
            if version not in self.rolled_back and version != current:
                return version
        return None


def replay(entries: list[HistoryEntry]) -> AliasState:
    """Fold the history into the alias's state.

    A promotion stacks the version it replaced. A rollback marks the version it left as rolled
    back and unstacks everything down to its target (the versions it skipped included). A deletion
    marks the removed version as rolled back. Promoting a version again clears its mark: someone
    chose it anew.
    """
    holder: str | None = None
    behind: list[str] = []
    rolled_back: set[str] = set()
    for entry in entries:
        source, target = entry.from_version, entry.to_version
        if entry.action == "promotion":
            if source is not None and source != target:
                behind.append(source)
            rolled_back.discard(target)
        elif entry.action == "rollback":
            if source is not None:
                rolled_back.add(source)
            while behind and behind.pop() != target:
                pass
        elif source is not None:  # deletion
            rolled_back.add(source)
        holder = target
    return AliasState(holder, tuple(behind), frozenset(rolled_back))
