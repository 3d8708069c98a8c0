"""SIMULATED outcomes for the demo and the performance benchmark: when did each employee leave?

The label mechanism is the simulator's one (:func:`simulate_labelled_snapshot`): each simulated
employee keeps the ``Attrition`` label of the real IBM HR row it was resampled from, flipped by the
drift scenario's documented share. Here that label is read as "left within the horizon of the
prediction", and only the TIMING is added:

- a leaver (``Attrition`` = Yes) leaves on a day drawn uniformly from the horizon's days after the
  prediction day (``observed_on`` = that day, ``left`` = Yes);
- a stayer is confirmed still employed on the horizon's last day (``observed_on`` = prediction
  day + horizon, ``left`` = No).

An outcome is delivered only once it has happened: ``observed_on <= arrived``. So a delivery soon
after the predictions holds the early leavers only, and the stayers arrive when the horizon ends:
the same censoring a real HR feed has, which is what makes label coverage grow over time.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from attrition_mlops.data import contract
from attrition_mlops.data import outcomes as feed


def simulate_outcomes(
    employees: pd.DataFrame,
    predicted_on: date,
    arrived: date,
    *,
    horizon: str = "12m",
    seed: int = 0,
) -> pd.DataFrame:
    """The outcome rows (:mod:`attrition_mlops.data.outcomes` format) known on ``arrived`` for
    ``employees`` (``EmployeeNumber`` and ``Attrition``) predicted on ``predicted_on``."""
    if contract.LABEL not in employees.columns:
        raise ValueError(f"employees need a {contract.LABEL!r} column: the label to time")
    start = pd.Timestamp(predicted_on)
    end = start + feed.horizon_offset(horizon)
    span = (end - start).days
    rng = np.random.default_rng(seed)
    left = employees[contract.LABEL].to_numpy() == contract.POSITIVE_LABEL
    days = np.where(left, rng.integers(1, span + 1, len(employees)), span)
    observed = start + pd.to_timedelta(days, unit="D")
    frame = pd.DataFrame(
        {
            contract.ID_COLUMN: employees[contract.ID_COLUMN].astype("int64").to_numpy(),
            feed.OBSERVED_ON: observed.strftime("%Y-%m-%d"),
            feed.LEFT: np.where(left, contract.POSITIVE_LABEL, contract.LABEL_VALUES[0]),
            feed.HORIZON: horizon,
        }
    )
    frame = frame[(observed <= pd.Timestamp(arrived))].reset_index(drop=True)
    frame.attrs["is_simulated"] = True
    frame.attrs["simulation"] = {
        "predicted_on": predicted_on.isoformat(),
        "horizon": horizon,
        "seed": seed,
        "arrived": arrived.isoformat(),
    }
    return frame
