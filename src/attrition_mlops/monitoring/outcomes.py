"""Join realized outcomes to the predictions they judge: batch partitions and online logs.

Pure functions on pandas frames; reading and writing is the caller's (docs/performance.md).

**Which prediction counts.** Performance is reported per model version and monthly prediction
cohort (the calendar month, UTC, of the prediction). An employee scored many times by one version
in one month counts ONCE in that cohort, with the FIRST prediction of the month; later ones are
counted in ``times_scored`` and otherwise left out. Why: the bootstrap's unit must be an employee
(thirty daily scores of one person are not thirty independent cases: keeping them all would make
the CI far too narrow); the first prediction is the one whose full horizon the outcome answers,
and a later one is made closer to a departure, with information the month's cohort did not yet
have. Two versions scoring the same employee in one month each get that employee once.

**How an outcome labels a prediction** made on day ``t`` with horizon ``H`` (``end = t + H``).
Outcomes are first reduced per employee: ``left_on`` is the earliest day they were seen leaving,
``seen_until`` the latest day they were seen still employed (outcomes for another horizon are
ignored). Then, in this order:

===========================  ==========================================================
``left_before_prediction``   ``left_on <= t``: the prediction was made after the departure;
                             excluded (a late or backdated outcome, or a rehire)
``positive``                 ``t < left_on <= end``: left within the horizon
``negative``                 ``left_on > end``, or ``seen_until >= end``: stayed through it
``missing``                  none of the above and ``end <= as_of``: the horizon has elapsed
                             and no outcome says what happened (a feed gap, or an unknown
                             employee): not a label, a data problem to look into
``pending``                  none of the above and ``end > as_of``: not matured yet
===========================  ==========================================================

Online logs carry a keyed-HMAC pseudonym instead of the identifier. The outcomes' identifiers
are put through the SAME :class:`~attrition_mlops.data.inference_log.Pseudonymiser` (same key)
the API logs with, and the join runs on pseudonyms: its output holds pseudonyms only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import numpy as np
import pandas as pd

from attrition_mlops.data import contract
from attrition_mlops.data import outcomes as feed

KEY = contract.ID_COLUMN
STATUSES = ("positive", "negative", "pending", "missing", "left_before_prediction")
LABELLED = ("positive", "negative")
#: Columns of a joined frame, one row per (model_version, cohort, employee).
JOINED_COLUMNS = (
    KEY,
    "model_version",
    "cohort",
    "predicted_on",
    "probability",
    "times_scored",
    "horizon_end",
    "status",
    "label",
)


def join_batch_predictions(
    predictions: pd.DataFrame, outcomes: pd.DataFrame, *, horizon: str, as_of: date
) -> pd.DataFrame:
    """Batch predictions (the scorer's partitions: ``run_date``, ``EmployeeNumber``,
    ``probability``, ``model_version``) labelled by ``outcomes`` (:func:`feed.read_outcomes`)."""
    frame = pd.DataFrame(
        {
            KEY: predictions[KEY].to_numpy(),
            "model_version": predictions["model_version"].astype(str),
            "predicted_on": pd.to_datetime(predictions["run_date"]),
            "probability": predictions["probability"].to_numpy(dtype="float64"),
        }
    )
    return label_predictions(frame, outcomes, horizon=horizon, as_of=as_of)


def join_logged_predictions(
    logs: pd.DataFrame,
    outcomes: pd.DataFrame,
    pseudonymise: Callable[[int], str],
    *,
    horizon: str,
    as_of: date,
) -> pd.DataFrame:
    """Online predictions (:func:`monitoring.log_reader.read_frame`'s frame, ``EmployeeNumber``
    holding the pseudonym) labelled by ``outcomes``, joined on the pseudonym.

    ``pseudonymise`` must be the serving API's Pseudonymiser with the API's key: any other key
    matches nothing (every prediction then ends up ``pending`` or ``missing``).
    """
    stamps = pd.to_datetime(logs["timestamp"], utc=True)
    frame = pd.DataFrame(
        {
            KEY: logs[KEY].astype(str).to_numpy(),
            "model_version": logs["model_version"].astype(str),
            "predicted_on": stamps.dt.tz_localize(None).dt.normalize(),
            "probability": logs["probability"].to_numpy(dtype="float64"),
        }
    )
    ids = outcomes[KEY].unique()
    pseudonyms = pd.Series([pseudonymise(int(i)) for i in ids], index=ids)
    hidden = outcomes.assign(**{KEY: outcomes[KEY].map(pseudonyms)})
    return label_predictions(frame, hidden, horizon=horizon, as_of=as_of)


def first_in_cohort(predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per (model_version, cohort, employee): the month's first prediction (see the
    module docstring), with ``cohort`` (``YYYY-MM``) and ``times_scored``."""
    day = pd.to_datetime(predictions["predicted_on"]).dt.normalize()
    months = day.dt.year.to_numpy() * 12 + day.dt.month.to_numpy() - 1
    frame = predictions.assign(predicted_on=day, _month=months)
    frame = frame.sort_values("predicted_on", kind="stable")
    group = frame.groupby(["model_version", "_month", KEY], sort=False)
    times = group[KEY].transform("size").to_numpy()
    first = ~frame.duplicated(["model_version", "_month", KEY], keep="first").to_numpy()
    out = frame[first].assign(times_scored=times[first])
    labels = {m: f"{m // 12:04d}-{m % 12 + 1:02d}" for m in np.unique(out["_month"])}
    out["cohort"] = out["_month"].map(labels).astype(str)
    return out.drop(columns="_month").reset_index(drop=True)


def outcome_facts(outcomes: pd.DataFrame, horizon: str) -> pd.DataFrame:
    """Per employee, for one horizon: ``left_on`` (earliest leaving day) and ``seen_until``
    (latest day seen still employed); NaT when never observed."""
    rows = outcomes[outcomes[feed.HORIZON] == horizon]
    observed = pd.to_datetime(rows[feed.OBSERVED_ON])
    left = rows[feed.LEFT].to_numpy() == contract.POSITIVE_LABEL
    left_on = observed.where(left).groupby(rows[KEY].to_numpy()).min()
    seen = observed.where(~left).groupby(rows[KEY].to_numpy()).max()
    facts = pd.DataFrame({"left_on": left_on, "seen_until": seen})
    facts.index.name = KEY
    return facts


def label_predictions(
    predictions: pd.DataFrame, outcomes: pd.DataFrame, *, horizon: str, as_of: date
) -> pd.DataFrame:
    """Label ``predictions`` (``EmployeeNumber``, ``model_version``, ``predicted_on``,
    ``probability``) by the rules of the module docstring: :data:`JOINED_COLUMNS`."""
    offset = feed.horizon_offset(horizon)
    cohort = first_in_cohort(predictions)
    facts = outcome_facts(outcomes, horizon)
    joined = cohort.join(facts, on=KEY)
    days = joined["predicted_on"].unique()
    ends = pd.Series(pd.DatetimeIndex(days) + offset, index=days)
    joined["horizon_end"] = joined["predicted_on"].map(ends)
    t, end = joined["predicted_on"], joined["horizon_end"]
    left_on, seen = joined["left_on"], joined["seen_until"]
    conditions = [
        (left_on <= t).to_numpy(),
        (left_on <= end).to_numpy(),
        ((left_on > end) | (seen >= end)).to_numpy(),
        (end <= pd.Timestamp(as_of)).to_numpy(),
    ]
    choices = ["left_before_prediction", "positive", "negative", "missing"]
    joined["status"] = np.select(conditions, choices, "pending")
    label = pd.array(np.where(joined["status"] == "positive", 1, 0), dtype="Int8")
    label[~joined["status"].isin(LABELLED).to_numpy()] = pd.NA
    joined["label"] = label
    return joined[list(JOINED_COLUMNS)]
