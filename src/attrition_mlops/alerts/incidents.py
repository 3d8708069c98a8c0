"""Incidents: one open incident per model version and signal, instead of a page every night.

A nightly check (drift; model performance on batch predictions, ``performance``, and on the
online API's logged predictions, ``online_performance``: two populations, two incidents) yields an
:class:`Observation`:
``confirmed`` (the signal fired), ``clear`` (it was tested and did not fire) or ``unknown``
(too little data to test). :func:`step` is the whole lifecycle as a pure function of the open
incident, if any, and that observation:

===========  ====================  ===============================================  =======
incident     observation           what happens                                     retrain
===========  ====================  ===============================================  =======
none         confirmed             opened; on-call is paged (``opened``)            yes
open         confirmed, same       counted; one ``digest`` a day at most, no page   no
             features, no new
             labelled data
open         confirmed, new        counted; ``digest``                              yes
             labelled data
open         confirmed, other      the incident ``changed``: features replaced,     yes
             features              sent at warning under the same incident id
open         clear                 one more clear night; after ``resolve_after``    no
                                   of them in a row it is ``resolved``
any          unknown               nothing: a blind night neither confirms nor      no
                                   clears
open         the last night again  not counted twice; its notice and retraining     as then
                                   request are repeated, so a retry after a crash
                                   between the write and the alert still delivers
                                   them (receivers fold them by incident id)
open         an earlier night      nothing (a backfill never reopens the past)      no
===========  ====================  ===============================================  =======

The incident id is the PagerDuty dedup key, so the receivers that group by key (PagerDuty,
Opsgenie) fold every alert of one incident into one page as well.

Labelled data is named by a fingerprint (a snapshot's sha256, or the newest outcomes arrival):
retraining is requested again only when it differs from the one the last request saw.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import date
from typing import Literal

Signal = Literal["drift", "performance", "online_performance"]
Status = Literal["confirmed", "clear", "unknown"]
Notice = Literal["opened", "changed", "digest", "resolved"]
SIGNALS: tuple[Signal, ...] = ("drift", "performance", "online_performance")
STATUSES: tuple[Status, ...] = ("confirmed", "clear", "unknown")


@dataclass(frozen=True)
class Observation:
    """One night's verdict on one signal for one model version."""

    model_version: str
    signal: Signal
    status: Status
    day: date
    features: tuple[str, ...] = ()
    labelled_data: str | None = None

    def __post_init__(self) -> None:
        if self.signal not in SIGNALS:
            raise ValueError(f"unknown signal {self.signal!r}; known: {SIGNALS}")
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}; known: {STATUSES}")
        if not str(self.model_version).strip():
            raise ValueError("an observation names the model version it judged")
        object.__setattr__(self, "features", tuple(sorted(set(self.features))))


@dataclass(frozen=True)
class Incident:
    """An incident's state, as stored. ``resolved_on`` is set once, when it closes."""

    incident_id: str
    model_version: str
    signal: Signal
    features: tuple[str, ...]
    opened_on: date
    last_observed_on: date
    last_confirmed_on: date
    nights_confirmed: int
    clear_nights: int
    last_notified_on: date
    retraining_requested_on: date
    retraining_fingerprint: str
    labelled_data: str | None = None
    resolved_on: date | None = None
    # What the night of ``last_observed_on`` did, replayed if that night is run again.
    last_notice: Notice | None = None
    last_retrain: bool = False

    @property
    def is_open(self) -> bool:
        return self.resolved_on is None


@dataclass(frozen=True)
class Step:
    """What one observation did: the incident after it (None: there is none), the notice to
    send (None: stay quiet), whether to request retraining, and why, in words for the task log."""

    incident: Incident | None
    notice: Notice | None
    retrain: bool
    reason: str


_ALREADY_COUNTED = "already counted"


def incident_id(
    model_version: str, signal: Signal, opened_on: date, features: tuple[str, ...]
) -> str:
    """Readable and unique per opening: ``drift/v3/2026-12-07/1a2b3c``."""
    digest = hashlib.sha256("\0".join(features).encode()).hexdigest()[:6]
    return f"{signal}/v{model_version}/{opened_on.isoformat()}/{digest}"


def fingerprint(features: tuple[str, ...], labelled_data: str | None) -> str:
    """What a retraining request was made for: the features and the labelled data it saw."""
    return hashlib.sha256(("\0".join(features) + "\1" + (labelled_data or "")).encode()).hexdigest()


def step(current: Incident | None, obs: Observation, *, resolve_after: int) -> Step:
    """The next state of ``current`` (the open incident for ``obs``'s version and signal)."""
    if resolve_after < 1:
        raise ValueError("resolve_after must be at least 1 night")
    if current is not None:
        if not current.is_open:
            raise ValueError(f"incident {current.incident_id} is resolved; pass the open one")
        if (current.model_version, current.signal) != (obs.model_version, obs.signal):
            raise ValueError(
                f"incident {current.incident_id} is about v{current.model_version} "
                f"{current.signal}, the observation about v{obs.model_version} {obs.signal}"
            )
        if obs.day == current.last_observed_on:
            return Step(
                current,
                current.last_notice,
                current.last_retrain,
                f"{_ALREADY_COUNTED}: {obs.day.isoformat()} was counted before; its notice "
                "and retraining request are repeated",
            )
        if obs.day < current.last_observed_on:
            return Step(
                current, None, False, f"{_ALREADY_COUNTED}: a night before the incident's last"
            )
    result = _next(current, obs, resolve_after)
    if result.incident is None or result.incident is current:
        return result
    stamped = replace(result.incident, last_notice=result.notice, last_retrain=result.retrain)
    return replace(result, incident=stamped)


def _next(current: Incident | None, obs: Observation, resolve_after: int) -> Step:
    if obs.status == "unknown":
        if current is None:
            return Step(None, None, False, "nothing to test and no open incident")
        return Step(current, None, False, "too little data to test: the night is not counted")
    if obs.status == "clear":
        return _clear(current, obs, resolve_after)
    if current is None:
        return _open(obs)
    return _confirmed_again(current, obs)


def _open(obs: Observation) -> Step:
    new = Incident(
        incident_id=incident_id(obs.model_version, obs.signal, obs.day, obs.features),
        model_version=obs.model_version,
        signal=obs.signal,
        features=obs.features,
        opened_on=obs.day,
        last_observed_on=obs.day,
        last_confirmed_on=obs.day,
        nights_confirmed=1,
        clear_nights=0,
        last_notified_on=obs.day,
        retraining_requested_on=obs.day,
        retraining_fingerprint=fingerprint(obs.features, obs.labelled_data),
        labelled_data=obs.labelled_data,
    )
    return Step(new, "opened", True, "new incident: on-call paged, retraining requested")


def _confirmed_again(current: Incident, obs: Observation) -> Step:
    counted = replace(
        current,
        last_observed_on=obs.day,
        last_confirmed_on=obs.day,
        nights_confirmed=current.nights_confirmed + 1,
        clear_nights=0,
        labelled_data=obs.labelled_data or current.labelled_data,
    )
    night = f"night {counted.nights_confirmed} of incident {current.incident_id}"
    if obs.features != current.features:
        return _request(
            replace(counted, features=obs.features, last_notified_on=obs.day),
            "changed",
            f"{night}: the signal moved to other features, retraining requested again",
        )
    new_data = (
        obs.labelled_data is not None
        and fingerprint(obs.features, obs.labelled_data) != current.retraining_fingerprint
    )
    digest_due = obs.day > current.last_notified_on
    notice: Notice | None = "digest" if digest_due else None
    if digest_due:
        counted = replace(counted, last_notified_on=obs.day)
    if new_data:
        return _request(counted, notice, f"{night}: new labelled data, retraining requested")
    return Step(
        counted,
        notice,
        False,
        f"{night}: still open, no page; retraining was requested on "
        f"{current.retraining_requested_on.isoformat()} and no new labelled data has arrived",
    )


def _request(incident: Incident, notice: Notice | None, reason: str) -> Step:
    requested = replace(
        incident,
        retraining_requested_on=incident.last_observed_on,
        retraining_fingerprint=fingerprint(incident.features, incident.labelled_data),
    )
    return Step(requested, notice, True, reason)


def _clear(current: Incident | None, obs: Observation, resolve_after: int) -> Step:
    if current is None:
        return Step(None, None, False, "clear and no open incident")
    clear = current.clear_nights + 1
    counted = replace(current, last_observed_on=obs.day, clear_nights=clear)
    if clear < resolve_after:
        return Step(
            counted, None, False, f"clear night {clear} of {resolve_after} needed to resolve"
        )
    resolved = replace(counted, resolved_on=obs.day, last_notified_on=obs.day)
    return Step(resolved, "resolved", False, f"clear for {clear} nights in a row: resolved")
