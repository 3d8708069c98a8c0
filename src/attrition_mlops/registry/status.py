"""What ``attrition status`` / ``make status`` prints: each alias's holder and its history."""

from __future__ import annotations

from attrition_mlops.registry.aliases import (
    CHALLENGER,
    CHAMPION,
    PRODUCTION,
    STAGING,
    alias_histories,
    get_alias_version,
    get_version,
    previous_alias,
)
from attrition_mlops.registry.connection import reaching
from attrition_mlops.registry.tracking import configure_mlflow
from attrition_mlops.settings import get_settings

ALIASES = (CHAMPION, previous_alias(CHAMPION), CHALLENGER, STAGING, PRODUCTION)


def alias_status(history_limit: int = 10) -> dict:
    """Which version holds each alias, with its audit tags and its latest history entries."""
    settings = get_settings()
    configure_mlflow(settings)
    uri = settings.registry_uri or settings.resolved_tracking_uri
    out = {}
    with reaching(uri):
        histories = alias_histories(settings.model_name)
        for alias in dict.fromkeys([*ALIASES, *histories]):
            version = get_alias_version(settings.model_name, alias)
            history = histories.get(alias, [])
            if version is None and not history:
                continue
            out[alias] = {"version": version}
            if version is not None:
                tags = get_version(settings.model_name, version).tags
                out[alias] |= {
                    "holdout_auc": tags.get("holdout_auc"),
                    **{k: v for k, v in tags.items() if k.startswith(f"audit.{alias}.")},
                }
            if history:
                shown = history[-history_limit:] if history_limit > 0 else history
                out[alias]["history"] = [entry.to_dict() for entry in reversed(shown)]
                out[alias]["history_entries"] = len(history)
    return out
