"""The pure generators: named drift scenarios and SIMULATED records drawn from the real rows.

Records are real rows resampled with replacement, optionally changed by a named drift scenario,
with small symmetric noise on the four pay/rate fields, then made valid under the feature contract
(whole numbers, contract bounds, consistent tenure fields), and labelled SIMULATED.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from attrition_mlops.data import contract

#: The word that labels everything this package writes (file names, request ids, User-Agent).
SIMULATED = "simulated"
#: The largest EmployeeNumber in the real IBM HR data; simulated IDs start above it.
REAL_MAX_EMPLOYEE_NUMBER = 2068
#: Half-width of the uniform multiplicative noise on the pay/rate fields (±2 %).
DEFAULT_NOISE = 0.02
#: Near-continuous fields (886–1,427 distinct values) with no consistency rule tying them to
#: another field, so symmetric jitter cannot create an impossible record or a visible shift.
NOISY_FEATURES = ("DailyRate", "HourlyRate", "MonthlyIncome", "MonthlyRate")
#: Each field is capped by the one before it (a working life, then tenure at this company).
_TENURE = ("TotalWorkingYears", "YearsAtCompany")
_WITHIN_COMPANY = ("YearsInCurrentRole", "YearsSinceLastPromotion", "YearsWithCurrManager")

#: A scenario takes (resampled frame, rng, intensity, real base rows, options) and returns
#: (changed frame, mask of changed rows, label shift): the signed share of the changed rows'
#: labels to flip, + for "No"→"Yes", − for "Yes"→"No". Integer columns arrive as float64.
ScenarioFn = Callable[
    [pd.DataFrame, np.random.Generator, float, pd.DataFrame, dict[str, Any]],
    tuple[pd.DataFrame, np.ndarray, float],
]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    apply: ScenarioFn


def _none(frame, rng, intensity, base, options):
    return frame, np.zeros(len(frame), dtype=bool), 0.0


def _salary_inflation(frame, rng, intensity, base, options):
    # The IBM rate fields are uncorrelated with MonthlyIncome (|r| < 0.04), so they stay put.
    frame["MonthlyIncome"] *= 1 + 0.15 * intensity
    # Label rule (an assumption, not learnt from data): a raise keeps 15 %·intensity of leavers.
    return frame, np.ones(len(frame), dtype=bool), -min(1.0, 0.15 * intensity)


def _overtime_surge(frame, rng, intensity, base, options):
    yes = frame["OverTime"].eq("Yes").to_numpy()
    start = yes.mean()
    target = float(np.clip(start + (0.60 - start) * intensity, 0.0, 1.0))
    if target >= start:
        flip = ~yes & (rng.random(len(frame)) < (target - start) / max(1 - start, 1e-12))
    else:
        flip = yes & (rng.random(len(frame)) < (start - target) / max(start, 1e-12))
    frame.loc[flip, "OverTime"] = np.where(yes[flip], "No", "Yes")
    # Real data: 30.5 % attrition with overtime, 10.4 % without; moving a "No" employee's odds
    # from one to the other means flipping (30.5 − 10.4) / (100 − 10.4) ≈ 22 % of "No" labels.
    return frame, flip, 0.22 if target >= start else -0.22


def _young_hiring_wave(frame, rng, intensity, base, options):
    hired = rng.random(len(frame)) < min(1.0, 0.30 * intensity)
    n = int(hired.sum())
    # A new hire is an entry-level (JobLevel 1) record, so role, pay and department stay
    # consistent, re-aged to 18–25 with 0–3 working years and 0–1 years at this company.
    donors = np.flatnonzero(frame["JobLevel"].to_numpy() == 1)
    donors = donors if donors.size else np.arange(len(frame))
    rows = np.arange(len(frame))
    rows[hired] = rng.choice(donors, n)
    frame = frame.iloc[rows].reset_index(drop=True)
    age = rng.integers(18, 26, n)
    working = rng.integers(0, np.minimum(3, age - 18) + 1)
    at_company = rng.integers(0, np.minimum(1, working) + 1)
    frame.loc[hired, "Age"] = age
    frame.loc[hired, "TotalWorkingYears"] = working
    frame.loc[hired, "YearsAtCompany"] = at_company
    for name in _WITHIN_COMPANY:
        frame.loc[hired, name] = rng.integers(0, at_company + 1)
    frame.loc[hired, "NumCompaniesWorked"] = (working > at_company).astype(np.int64)
    # Real data: 26 % attrition at JobLevel 1 overall, 41 % at JobLevel 1 and age ≤ 25; flipping
    # (41 − 26) / (100 − 26) ≈ 20 % of the donors' "No" labels closes that gap.
    return frame, hired, 0.20


def _mean_shift(frame, rng, intensity, base, options):
    name = options.get("feature", "MonthlyIncome")
    feature = contract.FEATURES_BY_NAME.get(name)
    if feature is None or feature.kind != "numeric" or feature.role != "model":
        raise ValueError(f"mean_shift needs a numeric model feature, got {name!r}")
    sd = float(options.get("reference_sd") or base[name].std(ddof=1))
    delta = intensity * sd
    # Stochastic rounding: a whole-number step whose expectation is exactly delta.
    whole = np.floor(delta)
    step = whole + (rng.random(len(frame)) < delta - whole)
    frame[name] = frame[name].to_numpy(dtype=float) + step
    return frame, np.ones(len(frame), dtype=bool), 0.0  # a pure covariate shift: labels untouched


def _senior_exodus(frame, rng, intensity, base, options):
    # A concept shift: the inputs are untouched, what they mean changes. Story (an assumption):
    # a pension reform makes staying past ten years worth less, so long-tenured employees, whom
    # the real data shows leaving least (about 8 %), now leave often: 35 %·intensity of their
    # "No" labels become "Yes". A model fit to the old world ranks exactly them lowest.
    senior = frame["YearsAtCompany"].to_numpy() >= 10
    return frame, senior, min(1.0, 0.35 * intensity)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("none", "quiet traffic: resampled real rows, symmetric noise only", _none),
        Scenario(
            "salary_inflation", "MonthlyIncome +15 %·intensity for everyone", _salary_inflation
        ),
        Scenario(
            "overtime_surge",
            "OverTime 'Yes' share moves from the base share towards 60 % (fully at intensity 1)",
            _overtime_surge,
        ),
        Scenario(
            "young_hiring_wave",
            "30 %·intensity of records replaced by new hires aged 18–25 at JobLevel 1",
            _young_hiring_wave,
        ),
        Scenario(
            "senior_exodus",
            "concept shift, inputs unchanged: 35 %·intensity of employees with ≥ 10 years at the "
            "company who stayed now leave",
            _senior_exodus,
        ),
        Scenario(
            "mean_shift",
            "option `feature` (default MonthlyIncome) shifted by intensity reference SDs",
            _mean_shift,
        ),
    )
}


def simulate_traffic(
    base: pd.DataFrame,
    n: int,
    *,
    scenario: str = "none",
    seed: int,
    intensity: float = 1.0,
    noise: float = DEFAULT_NOISE,
    **options: Any,
) -> pd.DataFrame:
    """``n`` SIMULATED request records (the 34 input fields) drawn from the real rows ``base``.

    ``options`` go to the scenario (``mean_shift``: ``feature``, ``reference_sd``).
    """
    frame, _ = _simulate(base, n, scenario, seed, intensity, noise, options)
    return _label(frame[list(contract.INPUT_COLUMNS)].copy(), scenario, seed, intensity, noise)


def simulate_labelled_snapshot(
    base: pd.DataFrame,
    n: int,
    *,
    scenario: str,
    seed: int,
    intensity: float = 1.0,
    noise: float = DEFAULT_NOISE,
    replace: bool = True,
    **options: Any,
) -> pd.DataFrame:
    """A SIMULATED labelled snapshot (35 columns, with ``Attrition``) for retraining demos.

    Each record keeps the label of the real row it was resampled from; then the scenario flips
    a documented share of the changed records' labels in the direction it implies.
    ``replace=False`` draws each real row at most once (``n <= len(base)``): then a split of
    the snapshot never puts copies of one real employee on both sides.
    """
    if contract.LABEL not in base.columns:
        raise ValueError(f"base has no {contract.LABEL!r} column to resample labels from")
    options = {**options, "_replace": replace}
    frame, flips = _simulate(base, n, scenario, seed, intensity, noise, options)
    frame[contract.LABEL] = flips
    ordered = frame[list(contract.DATASET_COLUMNS)].copy()
    return _label(ordered, scenario, seed, intensity, noise)


def _simulate(
    base: pd.DataFrame,
    n: int,
    scenario: str,
    seed: int,
    intensity: float,
    noise: float,
    options: dict[str, Any],
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The resampled, scenario-changed, noised and repaired frame, and the final labels."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {sorted(SCENARIOS)}")
    if n < 1 or base.empty:
        raise ValueError("need n >= 1 and a non-empty base frame")
    if not 0 <= noise < 1:
        raise ValueError(f"noise must be in [0, 1), got {noise}")
    rng = np.random.default_rng(seed)
    if options.pop("_replace", True):
        rows = rng.integers(0, len(base), n)
    elif n > len(base):
        raise ValueError(f"cannot draw {n} distinct rows from {len(base)} without replacement")
    else:
        rows = rng.permutation(len(base))[:n]
    frame = base.iloc[rows].reset_index(drop=True)
    frame = frame.astype({name: "float64" for name in _integer_columns(frame)})
    # Noise first: with one seed every scenario sees the same resampled, noised records, so a
    # scenario's effect is exactly the difference from the quiet frame of that seed.
    for name in NOISY_FEATURES:
        frame[name] *= 1 + rng.uniform(-noise, noise, n)
    frame, changed, label_shift = SCENARIOS[scenario].apply(frame, rng, intensity, base, options)
    _make_valid(frame)
    first_id = max(REAL_MAX_EMPLOYEE_NUMBER, int(base[contract.ID_COLUMN].max())) + 1
    frame[contract.ID_COLUMN] = np.arange(first_id, first_id + n, dtype=np.int64)
    labels = None
    if contract.LABEL in frame.columns:
        labels = _flip_labels(frame[contract.LABEL].to_numpy(str), changed, label_shift, rng)
    return frame, labels


def _integer_columns(frame: pd.DataFrame) -> list[str]:
    return [f.name for f in contract.FEATURES if f.is_integer and f.name in frame.columns]


def _make_valid(frame: pd.DataFrame) -> None:
    """Whole numbers within contract bounds and a consistent tenure chain, in place."""
    for name in _integer_columns(frame):
        feature = contract.FEATURES_BY_NAME[name]
        values = np.clip(np.rint(frame[name].to_numpy(float)), feature.minimum, feature.maximum)
        frame[name] = values
    # Nobody works before 18, and tenure at a company fits in a working life; real rows already
    # satisfy this (checked in tests), so only scenario-changed records can be affected.
    cap = frame["Age"] - 18
    for name in _TENURE:
        frame[name] = np.minimum(frame[name], cap)
        cap = frame[name]
    for name in _WITHIN_COMPANY:
        frame[name] = np.minimum(frame[name], frame["YearsAtCompany"])
    for name in _integer_columns(frame):
        frame[name] = frame[name].astype(np.int64)


def _flip_labels(
    labels: np.ndarray, changed: np.ndarray, shift: float, rng: np.random.Generator
) -> np.ndarray:
    negative, positive = contract.NEGATIVE_LABEL, contract.POSITIVE_LABEL
    source, target = (negative, positive) if shift > 0 else (positive, negative)
    flip = changed & (labels == source) & (rng.random(labels.size) < abs(shift))
    return np.where(flip, target, labels)


def _label(
    frame: pd.DataFrame, scenario: str, seed: int, intensity: float, noise: float
) -> pd.DataFrame:
    frame.attrs["is_simulated"] = True
    frame.attrs["simulation"] = {
        "scenario": scenario,
        "seed": seed,
        "intensity": intensity,
        "noise": noise,
    }
    return frame


def require_simulated(frame: pd.DataFrame) -> dict[str, Any]:
    """The frame's simulation label; raises unless ``simulate_*`` labelled it and it has rows."""
    # Only frames this module labelled may be sent or written as traffic: real rows must never
    # reach an inference log disguised as (or mixed into) simulated traffic.
    if frame.attrs.get("is_simulated") is not True:
        raise ValueError("frame is not labelled SIMULATED (attrs['is_simulated']); use simulate_*")
    if frame.empty:
        raise ValueError("no records to deliver")
    return dict(frame.attrs.get("simulation", {}))
