"""The online API's predictions judged on outcomes, apart from the batch scorer's.

The API logs every prediction (:mod:`attrition_mlops.data.inference_log`) with a keyed-HMAC
pseudonym in place of the ``EmployeeNumber``. The performance job reads those logs (the export
the drift job reads, both formats: :func:`monitoring.window.read_window`), joins them to the
outcomes on the pseudonym (:func:`monitoring.outcomes.join_logged_predictions`, the outcomes'
identifiers put through the API's key) and judges each model version with the batch rules
(:func:`monitoring.verdicts.judge`).

Judged separately from batch: who calls the API is not the whole workforce, so an online cohort
is another population, not more rows of the batch one.

Not judged, and the summary's ``reason`` says why in words, when:

- the key (``ATTRITION_SERVING_PSEUDONYM_KEY``) is not set: the API then logs with a random key
  per process, and nothing can recompute its pseudonyms;
- the key is too short to be one the API accepts;
- there are no logs in the window.

Judged with a warning when no logged pseudonym matches an employee whose outcome was observed
since the first logged prediction: the key is likely not the one the API logged with, and every
prediction would otherwise read as ``pending`` or ``missing``, a data problem it is not.

Which records: the prediction ledger's (:mod:`~attrition_mlops.monitoring.ledger`, the slim copy
that outlives the full logs) for every day it holds, the full logs' for the other days of the
window; the summary counts the records from each.

The key is a secret: it is read from a ``SecretStr`` here, used to build the
:class:`~attrition_mlops.data.inference_log.Pseudonymiser` (whose ``repr`` hides it), and never
written to the summary, the report, the log or MLflow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import SecretStr

from attrition_mlops.data import contract
from attrition_mlops.data import outcomes as feed
from attrition_mlops.data.inference_log import Pseudonymiser
from attrition_mlops.monitoring.ledger import (
    LEDGER_COLUMNS,
    compacted_days,
    empty_ledger,
    read_monthly_firsts,
)
from attrition_mlops.monitoring.outcomes import join_logged_predictions
from attrition_mlops.monitoring.verdicts import Judged, clean, judge
from attrition_mlops.monitoring.window import LogFormat, read_window
from attrition_mlops.settings import PerformanceSettings

KEY = contract.ID_COLUMN
KEY_ENV = "ATTRITION_SERVING_PSEUDONYM_KEY"
NOT_JUDGED = "not_judged"
NO_KEY = f"{KEY_ENV} is not set, so logged pseudonyms cannot be matched to outcomes"
SHORT_KEY = (
    f"{KEY_ENV} is shorter than 16 bytes: the API refuses such a key, so it cannot be the one "
    "the logs were written with"
)
#: How many times the job reads the window while the nightly purge moves days into the ledger.
READ_ATTEMPTS = 3
#: How many rejected lines the summary lists (all are counted).
SHOWN_REJECTED = 20


@dataclass(frozen=True)
class OnlineSource:
    """Where the online predictions are and how to recognise their employees."""

    logs: Path
    log_format: LogFormat = "local"
    #: The API's pseudonym key; None when unset. ``repr`` shows it masked.
    key: SecretStr | None = field(default=None, repr=False)
    #: The prediction ledger (local export): read for the days it holds, instead of the logs.
    ledger: Path | None = None


def log_window(as_of: date, horizon: str) -> tuple[date, date]:
    """The days of logs the job reads: ``as_of`` back to the first day of the month BEFORE the
    one holding ``as_of − horizon``.

    That month is the newest cohort whose every prediction has matured (the month holding
    ``as_of − horizon`` has matured only up to that day); every later cohort is read too, for
    its label-free estimate. Older cohorts are the batch job's history, not needed to judge now.
    """
    matured = (pd.Timestamp(as_of) - feed.horizon_offset(horizon)).to_period("M") - 1
    return matured.start_time.date(), as_of


def pseudonymiser(key: SecretStr | None) -> tuple[Pseudonymiser | None, str | None]:
    """The API's pseudonymiser for ``key``, or None and the reason in words."""
    if key is None:
        return None, NO_KEY
    try:
        return Pseudonymiser(key.get_secret_value().encode()), None
    except ValueError:  # the Pseudonymiser's own length rule, as the API applies it
        return None, SHORT_KEY


def key_check(
    logged: pd.Series, outcomes: pd.DataFrame, pseudonyms: dict[int, str], since: date
) -> dict[str, Any]:
    """Do the logged pseudonyms meet the outcomes' employees at all? Pure.

    ``logged``: the logs' pseudonyms; ``pseudonyms``: each outcome employee's pseudonym under the
    job's key; ``since``: the first logged prediction's day. ``key_check`` is ``matched``,
    ``no_match`` (outcomes were observed since ``since`` and none of their employees was logged:
    a likely wrong key) or ``nothing_to_match`` (no outcome observed since then yet).
    """
    seen = set(logged.unique())
    matched = sum(1 for pseudonym in pseudonyms.values() if pseudonym in seen)
    recent = outcomes[outcomes[feed.OBSERVED_ON] >= pd.Timestamp(since)]
    n_recent = int(recent[KEY].nunique())
    check = "matched" if matched else "no_match" if n_recent else "nothing_to_match"
    return {
        "key_check": check,
        "n_logged_employees": len(seen),
        "n_matched_employees": matched,
        "n_outcome_employees_since_first_log": n_recent,
    }


def wrong_key_warning(check: dict[str, Any], since: date) -> str:
    return (
        f"no logged pseudonym matches any of the {check['n_outcome_employees_since_first_log']:,} "
        f"employees with outcomes observed since {since.isoformat()} (the first logged "
        f"prediction; {check['n_logged_employees']:,} employees logged): {KEY_ENV} is likely not "
        "the key the API logged with, so its predictions read as pending or missing although "
        "their outcomes may have arrived"
    )


def ledger_of(source: OnlineSource) -> Path | None:
    """The ledger the job reads: none for the Log Analytics export (its retention is the
    storage lifecycle policy's, and no ledger is built from it)."""
    return source.ledger if source.log_format == "local" else None


def read_predictions(
    source: OnlineSource, first: date, last: date, in_ledger: set[date]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The window's logged predictions: the ledger's rows for the days it holds, the full logs'
    for the others (no day read twice), earliest first; and the summary's counts of each."""
    rejected: list[str] = []
    duplicates: list[str] = []
    logs = pd.DataFrame(columns=list(LEDGER_COLUMNS))
    if source.logs.exists():
        logs = read_window(
            source.logs, first, last, source.log_format, rejected, duplicates, in_ledger
        )
    ledger = ledger_of(source)
    slim, held = (
        read_monthly_firsts(ledger, in_ledger) if ledger and in_ledger else (empty_ledger(), {})
    )
    parts = [part for part in (logs[list(LEDGER_COLUMNS)], slim) if len(part)]
    frame = pd.concat(parts, ignore_index=True) if parts else empty_ledger()
    # Earliest first, so the join's first prediction of a day is the same from either source.
    frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
    simulated = int(logs["simulated"].fillna(False).astype(bool).sum())
    counts = {
        "n_records": len(logs) + held.get("logged_records", 0),
        "n_log_records": len(logs),
        "ledger": str(ledger) if ledger is not None else None,
        "n_ledger_days": len(in_ledger),
        "n_ledger_rows": held.get("rows", 0),
        "n_ledger_records": held.get("logged_records", 0),
        "n_rejected_lines": len(rejected) + held.get("rejected_lines", 0),
        "rejected": rejected[:SHOWN_REJECTED],
        "n_duplicate_lines": len(duplicates) + held.get("duplicate_lines", 0),
        "n_simulated_records": simulated + held.get("simulated_records", 0),
    }
    return frame, counts


def check_online(
    source: OnlineSource | None,
    outcomes: pd.DataFrame,
    as_of: date,
    settings: PerformanceSettings,
) -> tuple[dict[str, Any], Judged | None]:
    """The summary's ``online`` part, and the judged figures (None when not judged)."""
    if source is None:
        reason = "no inference logs were given"
        return {"status": NOT_JUDGED, "reason": reason, "versions": {}}, None
    first, last = log_window(as_of, settings.horizon)
    part: dict[str, Any] = {
        "status": NOT_JUDGED,
        "logs": str(source.logs),
        "log_format": source.log_format,
        "window": [first.isoformat(), last.isoformat()],
        "versions": {},
        "warnings": [],
    }
    pseudonymise, why = pseudonymiser(source.key)
    if pseudonymise is None:
        return part | {"reason": why}, None
    ledger = ledger_of(source)
    # The nightly purge may compact a day and delete its log between listing the ledger and
    # reading the logs: that day would be in neither. It is in the ledger before its log goes,
    # so a second listing that differs from the first means "read again".
    for _ in range(READ_ATTEMPTS):
        in_ledger = compacted_days(ledger, first, last)
        if not source.logs.exists() and not in_ledger:
            return part | {"reason": f"no inference logs: {source.logs} does not exist"}, None
        logs, counts = read_predictions(source, first, last, in_ledger)
        if compacted_days(ledger, first, last) == in_ledger:
            break
    else:
        raise RuntimeError(
            f"the prediction ledger {ledger} kept changing while it was read "
            f"({READ_ATTEMPTS} attempts): is the purge task running in a loop?"
        )
    part |= counts
    if part["n_rejected_lines"]:
        part["warnings"].append(
            f"{part['n_rejected_lines']:,} malformed log line(s) left out (listed under "
            "rejected, those still in the full logs)"
        )
    if logs.empty:
        where = f"{source.logs}" + (f" or {ledger}" if ledger and ledger.exists() else "")
        reason = f"no logged predictions in {where} from {first} to {last}"
        return part | {"reason": reason}, None
    since = logs["timestamp"].min().date()
    ids = outcomes[KEY].unique()
    pseudonyms = {int(i): pseudonymise(int(i)) for i in ids}
    part |= key_check(logs[KEY], outcomes, pseudonyms, since)
    part["first_logged_on"] = since.isoformat()
    if part["key_check"] == "no_match":
        part["warnings"].append(wrong_key_warning(part, since))
    if since > (pd.Timestamp(as_of) - feed.horizon_offset(settings.horizon)).date():
        part["warnings"].append(
            f"the logs begin on {since} and an outcome takes one horizon ({settings.horizon}) to "
            f"mature, so no online prediction can have matured by {as_of}: only the label-free "
            "estimate applies (inference logs kept for less than the horizon are never judged "
            "on outcomes)"
        )
    joined = join_logged_predictions(
        logs, outcomes, pseudonyms.__getitem__, horizon=settings.horizon, as_of=as_of
    )
    judged = judge(joined, settings)
    part |= {
        "status": judged.status,
        "reason": None,
        "versions": judged.verdicts,
        "comparison": judged.comparison,
        "status_counts": judged.status_counts,
    }
    return clean(part), judged
