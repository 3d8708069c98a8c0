"""What ``attrition status`` / ``make status`` prints: each alias's holder and its history.

Two reads of the registry answer it: the registered model (its aliases, and the history of
every alias, which lives in its tags) and each holder version once (trained-at, holdout AUC,
the audit tags of the move that put it there). :func:`alias_status` returns that as a dict
(``attrition status --json``); :func:`format_status` lays it out as tables for a terminal.

Most of the command's time is importing MLflow and opening its store, not these reads
(docs/model-lifecycle.md, "make status", has the figures); the CLI imports this module only
when the command runs, so ``attrition --help`` stays instant.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from attrition_mlops.registry.aliases import (
    CHALLENGER,
    CHAMPION,
    PRODUCTION,
    STAGING,
    previous_alias,
)
from attrition_mlops.registry.connection import bound_http_requests, reaching
from attrition_mlops.registry.history import aliases_with_history, parse_history
from attrition_mlops.settings import get_settings

#: The aliases of the promotion path, in the order a reader follows them.
ALIASES = (CHAMPION, CHALLENGER, STAGING, PRODUCTION)
_PREVIOUS = previous_alias("")
#: Version tags shown beside each holder.
VERSION_FIELDS = ("trained_at", "holdout_auc")


def _ordered(aliases: set[str]) -> list[str]:
    """The promotion path first, each alias followed by its ``previous-*`` pointer."""
    bases = {alias.removeprefix(_PREVIOUS) for alias in aliases}
    order = [*ALIASES, *sorted(bases - set(ALIASES))]
    return [a for base in order for a in (base, previous_alias(base)) if a in aliases]


def alias_status(history_limit: int = 10) -> dict:
    """Which version holds each alias, with its audit tags and its latest history entries.

    Read-only: no experiment is created, and a local store that does not exist yet is not
    created (and migrated, 1-4 s) just to say that nothing is registered.
    """
    settings = get_settings()
    uri = settings.registry_uri or settings.resolved_tracking_uri
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return {}
    bound_http_requests()
    client = MlflowClient(tracking_uri=settings.resolved_tracking_uri, registry_uri=uri)
    with reaching(uri):
        return read_status(client, settings.model_name, history_limit)


def read_status(client: MlflowClient, name: str, history_limit: int = 10) -> dict:
    """:func:`alias_status` from ``client`` ({} for a model the registry does not know)."""
    try:
        model = client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return {}
        raise
    holders = {alias: str(version) for alias, version in model.aliases.items()}
    histories = {
        alias: parse_history(model.tags, alias) for alias in aliases_with_history(model.tags)
    }
    tags = {
        v: client.get_model_version(name, v).tags for v in sorted(set(holders.values()), key=int)
    }
    out: dict[str, dict] = {}
    for alias in _ordered({*holders, *histories}):
        version = holders.get(alias)
        out[alias] = {"version": version}
        if version is not None:
            held = tags[version]
            out[alias] |= {field: held.get(field) for field in VERSION_FIELDS}
            out[alias] |= {k: v for k, v in held.items() if k.startswith(f"audit.{alias}.")}
        if history := histories.get(alias):
            shown = history[-history_limit:] if history_limit > 0 else history
            out[alias]["history"] = [entry.to_dict() for entry in reversed(shown)]
            out[alias]["history_entries"] = len(history)
    return out


# the terminal view ----------------------------------------------------------------------------
_WHY_WIDTH = 48


def _when(stamp: str | None) -> str:
    """An ISO timestamp as ``YYYY-MM-DD HH:MM`` in UTC, or ``-``; text that is none as it was."""
    if not stamp:
        return "-"
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M")


def _auc(value: str | None) -> str:
    try:
        return f"{float(value):.4f}" if value else "-"
    except ValueError:
        return value or "-"


def _clip(text: str | None, width: int = _WHY_WIDTH) -> str:
    text = " ".join((text or "-").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]], indent: str = "") -> list[str]:
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    return [
        indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]


def _holder_row(alias: str, shown: dict) -> tuple[str, ...]:
    version = shown.get("version")
    base = alias.removeprefix(_PREVIOUS)
    if alias != base:  # a pointer, moved with its alias: no audit tags of its own
        moved = ("-", "-", f"where a rollback of {base} goes")
    else:
        audit = f"audit.{alias}."
        moved = (
            _when(shown.get(audit + "moved_at")),
            _clip(shown.get(audit + "moved_by"), 32),
            _clip(shown.get(audit + "reason")),
        )
    if version is None:
        return (alias, "(none)", "-", "-", *moved[:2], "removed; see the history")
    return (alias, version, _when(shown.get("trained_at")), _auc(shown.get("holdout_auc")), *moved)


def format_status(status: dict, model_name: str, where: str) -> str:
    """The status as a terminal reads it: one row per alias, then each alias's history."""
    if not status:
        return (
            f"No registered model {model_name!r} at {where} yet: `make jobs-demo` or `make demo` "
            "trains and registers one."
        )
    lines = [f"{model_name} at {where}", ""]
    header = ("ALIAS", "VERSION", "TRAINED (UTC)", "HOLDOUT AUC", "MOVED (UTC)", "BY", "WHY")
    lines += _table(header, [_holder_row(alias, shown) for alias, shown in status.items()])
    for alias, shown in status.items():
        history = shown.get("history")
        if not history:
            continue
        total = shown.get("history_entries", len(history))
        moves = f"{total} move{'s' if total != 1 else ''}"
        count = f"latest {len(history)} of {moves}" if len(history) < total else moves
        lines += ["", f"{alias}: {count}, newest first"]
        rows = [
            (
                f"#{e['seq']}",
                _when(e["at"]),
                e["action"],
                f"{e['from_version'] or '-'} -> {e['to_version'] or '-'}",
                _clip(e["by"], 32),
                _clip(e["why"]),
            )
            for e in history
        ]
        lines += _table(("SEQ", "AT (UTC)", "ACTION", "VERSION", "BY", "WHY"), rows, "  ")
    lines += ["", "All history: attrition status --history 0; every tag, untruncated: --json"]
    return "\n".join(lines)
