"""Where incidents live between nights: one table in any SQL database SQLAlchemy reaches.

Local default: SQLite at ``<state_dir>/alerts/incidents.db``; production: the same PostgreSQL
that holds Airflow's metadata, through ``ATTRITION_ALERT_INCIDENT_DB_URL`` (a separate schema or
database is fine; the table is created on first use).

Two runs at once (a manual rerun beside the scheduled one, the drift and performance DAGs on the
same night) cannot both open an incident or both count a night: at most one *open* incident per
model version and signal is a unique constraint (``open_key`` is NULL once resolved), and every
update names the revision it read (compare-and-set). A run that loses re-reads and applies its
observation again, where :func:`~attrition_mlops.alerts.incidents.step` sees the night already
counted and changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from datetime import date
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from attrition_mlops.alerts.incidents import Incident, Observation, Step, step

_METADATA = sa.MetaData()
INCIDENTS = sa.Table(
    "attrition_incidents",
    _METADATA,
    sa.Column("incident_id", sa.String(200), primary_key=True),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("signal", sa.String(32), nullable=False),
    # "<version>/<signal>" while open, NULL once resolved: one open incident per key.
    sa.Column("open_key", sa.String(100), unique=True, nullable=True),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
)
_DATES = tuple(f.name for f in fields(Incident) if f.name.endswith("_on"))
MAX_ATTEMPTS = 5


class IncidentConflictError(RuntimeError):
    """Another run kept changing the same incident; nothing was written by this one."""


def _encode(incident: Incident) -> str:
    state = asdict(incident)
    for name in _DATES:
        if state[name] is not None:
            state[name] = state[name].isoformat()
    state["features"] = list(incident.features)
    return json.dumps(state, sort_keys=True)


def _decode(text: str) -> Incident:
    state: dict[str, Any] = json.loads(text)
    for name in _DATES:
        if state.get(name) is not None:
            state[name] = date.fromisoformat(state[name])
    state["features"] = tuple(state["features"])
    return Incident(**state)


class IncidentStore:
    """The incidents table behind one SQLAlchemy URL."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url, future=True)
        _METADATA.create_all(self.engine)

    def open_incident(self, model_version: str, signal: str) -> tuple[Incident, int] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(INCIDENTS.c.state, INCIDENTS.c.revision).where(
                    INCIDENTS.c.open_key == f"{model_version}/{signal}"
                )
            ).first()
        return None if row is None else (_decode(row.state), row.revision)

    def get(self, incident_id: str) -> Incident | None:
        with self.engine.connect() as conn:
            text = conn.execute(
                sa.select(INCIDENTS.c.state).where(INCIDENTS.c.incident_id == incident_id)
            ).scalar()
        return None if text is None else _decode(text)

    def all(self, *, open_only: bool = False) -> list[Incident]:
        query = sa.select(INCIDENTS.c.state).order_by(INCIDENTS.c.incident_id)
        if open_only:
            query = query.where(INCIDENTS.c.open_key.is_not(None))
        with self.engine.connect() as conn:
            return [_decode(text) for text in conn.execute(query).scalars()]

    def record(self, obs: Observation, *, resolve_after: int) -> Step:
        """Apply one observation and store the result; safe against concurrent writers."""
        for _ in range(MAX_ATTEMPTS):
            found = self.open_incident(obs.model_version, obs.signal)
            current, revision = found if found else (None, 0)
            result = step(current, obs, resolve_after=resolve_after)
            if result.incident is None or result.incident is current:
                return result  # nothing new to store
            if self._write(result.incident, current, revision):
                return result
        raise IncidentConflictError(
            f"v{obs.model_version} {obs.signal}: the incident changed under this run "
            f"{MAX_ATTEMPTS} times in a row; re-run the task"
        )

    def _write(self, new: Incident, current: Incident | None, revision: int) -> bool:
        values = {
            "model_version": new.model_version,
            "signal": new.signal,
            "open_key": f"{new.model_version}/{new.signal}" if new.is_open else None,
            "revision": revision + 1,
            "state": _encode(new),
        }
        if current is None:
            try:
                with self.engine.begin() as conn:
                    conn.execute(INCIDENTS.insert().values(incident_id=new.incident_id, **values))
            except IntegrityError:
                return False  # another run opened it first: re-read and count the night there
            return True
        with self.engine.begin() as conn:
            updated = conn.execute(
                INCIDENTS.update()
                .where(INCIDENTS.c.incident_id == current.incident_id)
                .where(INCIDENTS.c.revision == revision)
                .values(**values)
            )
            return updated.rowcount == 1


@lru_cache(maxsize=4)
def incident_store(url: str) -> IncidentStore:
    """One store (one connection pool) per URL per process."""
    return IncidentStore(url)
