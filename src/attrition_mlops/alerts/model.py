"""One typed alert: the fields every channel carries, with defaults from its event."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from attrition_mlops.alerts.config import runbook_link
from attrition_mlops.alerts.kinds import EVENTS, Event, Severity

ALERT_SCHEMA = "attrition-mlops/alert/1"
_MAX_DETAILS_CHARS = 16_000


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain(value: Any) -> Any:
    """Strict JSON: numpy scalars and arrays (p-values, PSI) become numbers, NaN and infinity
    become null (receivers such as Slack reject them), anything else unknown becomes text."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        value = value.tolist()  # numpy scalar or array
        if isinstance(value, list):
            return _plain(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


class Alert(BaseModel):
    """One alert. Only ``event`` is required; the rest defaults from ``EVENTS`` and the clock."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alert_id: str = Field(min_length=1)
    event: Event
    severity: Severity
    title: str = Field(min_length=1)
    summary: str = Field(min_length=1, description="one actionable sentence")
    details: dict[str, Any] = Field(default_factory=dict)
    links: dict[str, str] = Field(default_factory=dict, description="name -> URL")
    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    runbook: str
    dedup_key: str = Field(description="one incident per key in PagerDuty (max 255 chars)")

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        data["alert_id"] = data.get("alert_id") or uuid.uuid4().hex
        event = data.get("event")
        if event not in EVENTS:
            return data  # field validation reports the bad event
        spec = EVENTS[event]
        for key, default in (("severity", spec.severity), ("title", spec.title)):
            data[key] = data.get(key) or default
        data["summary"] = data.get("summary") or spec.summary
        data["runbook"] = data.get("runbook") or runbook_link(event)
        if not data.get("dedup_key"):
            # One incident per event and DAG run; an alert from outside a run stands alone.
            scope = (
                [data.get("dag_id"), data["run_id"]] if data.get("run_id") else [data["alert_id"]]
            )
            data["dedup_key"] = "/".join(str(p) for p in [event, *scope] if p)
        data["links"] = {k: v for k, v in (data.get("links") or {}).items() if v}
        return data

    @field_validator("title")
    @classmethod
    def _short_title(cls, value: str) -> str:
        return clip(" ".join(value.split()), 150)

    @field_validator("summary")
    @classmethod
    def _short_summary(cls, value: str) -> str:
        return clip(" ".join(value.split()), 1000)

    @field_validator("dedup_key")
    @classmethod
    def _short_key(cls, value: str) -> str:
        return value[:255]

    @field_validator("details", mode="before")
    @classmethod
    def _json_details(cls, value: Any) -> Any:
        text = json.dumps(_plain(value or {}), sort_keys=True, allow_nan=False)
        if len(text) > _MAX_DETAILS_CHARS:
            return {"truncated": True, "preview": text[: _MAX_DETAILS_CHARS // 2]}
        return json.loads(text)

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
