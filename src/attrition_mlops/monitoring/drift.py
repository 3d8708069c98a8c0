"""The nightly drift check: one window of served records against the training reference profile.

Pure: no I/O. Window-based, never per request. Each model feature gets one two-sample test
against the reference (KS for numeric, χ² homogeneity for ordinal and categorical), the p-values
of the whole family are corrected (Benjamini–Hochberg by default, or Bonferroni), and drift is
*confirmed* only when a feature is significant after correction AND its effect size clears a
configured minimum, so a huge window cannot alarm on a trivially small shift. Windows below a
minimum size get ``insufficient_data``: a result, not an alarm. docs/drift.md explains why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from attrition_mlops.data import contract
from attrition_mlops.monitoring.two_sample import (
    Sample,
    chi2_homogeneity,
    ks_two_sample,
    population_stability_index,
    quantile_bin_shares,
)
from attrition_mlops.settings import Correction, DriftSettings

Status = Literal["drift", "no_drift", "insufficient_data"]


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's test, effect sizes and verdict. ``effect_ratio`` ≥ 1 clears the effect gate.

    ``effect_ratio`` is the effect size over its configured minimum (PSI / min_psi; for numeric
    features the larger of that and Wasserstein-in-SDs / min_wasserstein_sd), so features of
    different kinds rank on one scale. ``reference``/``current`` summarise both samples (mean,
    std, median; or level shares).
    """

    name: str
    kind: str
    test: str
    statistic: float
    p_value: float
    psi: float
    effect_ratio: float
    reference: dict[str, float]
    current: dict[str, float]
    wasserstein: float | None = None
    wasserstein_sd: float | None = None
    p_adjusted: float = math.nan
    significant: bool = False
    drifted: bool = False
    note: str = ""


@dataclass(frozen=True)
class DriftResult:
    status: Status
    drift_confirmed: bool
    n_current: int
    n_reference: int
    correction: Correction
    alpha: float
    features: tuple[FeatureDrift, ...]
    #: Names of drifted features, largest effect (``effect_ratio``) first.
    drifted_features: tuple[str, ...]
    thresholds: dict[str, float]
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (non-finite floats become None)."""
        return _jsonable(asdict(self))

    def crossings(self, feature: FeatureDrift) -> tuple[Crossing, ...]:
        """The effect measures of ``feature`` past this check's minimums."""
        limits = self.thresholds
        return effects_past_minimum(feature, limits["min_psi"], limits["min_wasserstein_sd"])

    def why(self, feature: FeatureDrift) -> str:
        """Why ``feature`` drifted, with this check's minimums and alpha (:func:`why_drifted`)."""
        limits = self.thresholds
        return why_drifted(feature, limits["min_psi"], limits["min_wasserstein_sd"], self.alpha)


def check_drift(
    reference_profile: Mapping[str, Any], current: pd.DataFrame, settings: DriftSettings
) -> DriftResult:
    """Compare a window of records with the reference profile and decide whether it drifted."""
    n_reference = int(reference_profile["n_rows"])
    if len(current) < settings.min_records:
        return _insufficient(len(current), n_reference, settings)
    features = compare_features(reference_profile, current, settings)
    return decide_drift(
        features, n_current=len(current), n_reference=n_reference, settings=settings
    )


def compare_features(
    reference_profile: Mapping[str, Any], current: pd.DataFrame, settings: DriftSettings
) -> tuple[FeatureDrift, ...]:
    """Raw per-feature tests and effect sizes (no correction, no verdict), in contract order.

    Only role == "model" features are tested; identifiers and constants never are.
    """
    profiled = reference_profile["features"]
    model = [f for f in contract.FEATURES if f.role == "model"]
    missing = [f.name for f in model if f.name not in current.columns]
    unprofiled = [f.name for f in model if f.name not in profiled]
    if missing or unprofiled:
        raise ValueError(
            f"cannot check drift: window lacks {missing or 'nothing'}, "
            f"reference profile lacks {unprofiled or 'nothing'}"
        )
    incomplete = [f.name for f in model if current[f.name].isna().any()]
    if incomplete:
        raise ValueError(f"window has missing values in {incomplete}; validate records first")
    results = []
    for feature in model:
        entry, column = profiled[feature.name], current[feature.name]
        if feature.kind == "numeric":
            results.append(_numeric(feature.name, entry, column.to_numpy(float), settings))
        else:
            if feature.kind == "ordinal":
                column = pd.to_numeric(column).astype("int64")
            observed = column.value_counts()  # then levels as text: cheaper than the other way
            observed.index = observed.index.astype(str)
            results.append(_categorical(feature, entry, observed, settings))
    return tuple(results)


def decide_drift(
    features: Sequence[FeatureDrift], *, n_current: int, n_reference: int, settings: DriftSettings
) -> DriftResult:
    """Correct the family of p-values and apply the confirmation rule."""
    adjusted = adjust_p_values([f.p_value for f in features], settings.correction)
    decided = []
    for feature, p_adjusted in zip(features, adjusted, strict=True):
        significant = bool(p_adjusted < settings.alpha)
        drifted = significant and feature.effect_ratio >= 1.0
        decided.append(
            replace(feature, p_adjusted=float(p_adjusted), significant=significant, drifted=drifted)
        )
    ranked = sorted((f for f in decided if f.drifted), key=lambda f: (-f.effect_ratio, f.name))
    n_significant = sum(f.significant for f in decided)
    if ranked:
        limits = (settings.min_psi, settings.min_wasserstein_sd, settings.alpha)
        top = ", ".join(f"{f.name} ({why_drifted(f, *limits)})" for f in ranked[:3])
        message = f"drift confirmed in {len(ranked)} of {len(decided)} features: {top}"
    elif n_significant:
        message = f"no drift: {n_significant} features significant, none with a material effect"
    else:
        message = f"no drift: no feature significant after {settings.correction} correction"
    status: Status = "drift" if ranked else "no_drift"
    return _result(status, n_current, n_reference, settings, tuple(decided), ranked, message)


@dataclass(frozen=True)
class Crossing:
    """An effect measure at or past its configured minimum (``value / minimum >= 1``)."""

    measure: str  # "PSI" or "W/SD" (Wasserstein distance in reference standard deviations)
    value: float
    minimum: float

    def describe(self) -> str:
        value = "∞" if math.isinf(self.value) else f"{self.value:.3f}"
        return f"{self.measure} {value} ≥ {self.minimum:g}"


def effects_past_minimum(
    feature: FeatureDrift, min_psi: float, min_wasserstein_sd: float
) -> tuple[Crossing, ...]:
    """The effect measures of ``feature`` that cleared their minimum: the reason its
    ``effect_ratio`` (the larger of the ratios) is at least 1. A measure below its minimum is
    never among them, so a headline built from these cannot quote one as the cause."""
    measures = [("PSI", feature.psi, min_psi)]
    if feature.wasserstein_sd is not None:
        measures.append(("W/SD", feature.wasserstein_sd, min_wasserstein_sd))
    return tuple(
        Crossing(name, float(value), float(minimum))
        for name, value, minimum in measures
        if math.isfinite(minimum) and value / minimum >= 1.0
    )


def why_drifted(
    feature: FeatureDrift, min_psi: float, min_wasserstein_sd: float, alpha: float
) -> str:
    """Why a feature counts as drifted, e.g. ``W/SD 0.153 ≥ 0.1; adjusted p 3.2e-05 < 0.05``:
    the effect measures past their minimum, then the corrected p-value against alpha."""
    crossed = effects_past_minimum(feature, min_psi, min_wasserstein_sd)
    effects = ", ".join(c.describe() for c in crossed) or "no effect measure at its minimum"
    return f"{effects}; adjusted p {feature.p_adjusted:.2g} < {alpha:g}"


def adjust_p_values(p_values: Sequence[float], correction: Correction) -> np.ndarray:
    """Family-wise adjusted p-values: Benjamini–Hochberg ("bh") or Bonferroni."""
    p = np.asarray(p_values, dtype=float)
    if p.size == 0:
        return p
    if correction == "bh":
        return stats.false_discovery_control(p, method="bh")
    if correction == "bonferroni":
        return np.minimum(1.0, p * p.size)
    raise ValueError(f"unknown correction {correction!r}; use 'bh' or 'bonferroni'")


def uncorrected_drift(result: DriftResult, threshold: float = 0.05) -> bool:
    """The proof of concept's rule, kept for comparison: any raw p-value below ``threshold``."""
    return any(f.p_value < threshold for f in result.features)


def _insufficient(n_current: int, n_reference: int, settings: DriftSettings) -> DriftResult:
    message = f"insufficient data: {n_current} records < minimum {settings.min_records}"
    return _result("insufficient_data", n_current, n_reference, settings, (), [], message)


def _result(
    status: Status,
    n_current: int,
    n_reference: int,
    settings: DriftSettings,
    features: tuple[FeatureDrift, ...],
    drifted: list[FeatureDrift],
    message: str,
) -> DriftResult:
    return DriftResult(
        status=status,
        drift_confirmed=status == "drift",
        n_current=n_current,
        n_reference=n_reference,
        correction=settings.correction,
        alpha=settings.alpha,
        features=features,
        drifted_features=tuple(f.name for f in drifted),
        thresholds={
            "min_records": settings.min_records,
            "min_psi": settings.min_psi,
            "min_wasserstein_sd": settings.min_wasserstein_sd,
        },
        message=message,
    )


def _numeric(
    name: str, entry: Mapping, values: np.ndarray, settings: DriftSettings
) -> FeatureDrift:
    reference = np.asarray(entry["values"], dtype=float)
    current = Sample.of(values)
    statistic, p_value = ks_two_sample(reference, current, settings.ks_method)
    distance = float(
        stats.wasserstein_distance(reference, current.values, v_weights=current.counts)
    )
    sd = float(entry["std"])
    distance_sd = distance / sd if sd > 0 else (0.0 if distance == 0 else math.inf)
    ref_share, cur_share = quantile_bin_shares(reference, current, settings.psi_bins)
    psi = population_stability_index(ref_share, cur_share, settings.psi_epsilon)
    return FeatureDrift(
        name=name,
        kind="numeric",
        test="ks",
        statistic=statistic,
        p_value=p_value,
        psi=psi,
        effect_ratio=max(psi / settings.min_psi, distance_sd / settings.min_wasserstein_sd),
        reference={"mean": float(entry["mean"]), "std": sd, "median": float(np.median(reference))},
        current={"mean": current.mean(), "std": current.std(), "median": current.median()},
        wasserstein=distance,
        wasserstein_sd=distance_sd,
    )


def _categorical(
    feature: contract.Feature, entry: Mapping, observed: pd.Series, settings: DriftSettings
) -> FeatureDrift:
    """``observed``: the window's count of each level, indexed by the level as text."""
    ref_counts = {str(level): int(count) for level, count in entry["counts"].items()}
    unseen_now = sorted(set(observed.index) - set(ref_counts))
    levels = [*ref_counts, *unseen_now]
    table = np.array(
        [[ref_counts.get(lv, 0) for lv in levels], [observed.get(lv, 0) for lv in levels]]
    )
    present = table.sum(axis=0) > 0  # a level absent from both samples carries no information
    table = table[:, present].astype(np.int64)
    levels = [lv for lv, keep in zip(levels, present, strict=True) if keep]
    test, statistic, p_value, note = chi2_homogeneity(table, feature.name, settings)
    unseen = [lv for lv, count in zip(levels, table[0], strict=True) if count == 0]
    if unseen:
        note = "; ".join(filter(None, [note, f"levels unseen in reference: {', '.join(unseen)}"]))
    shares = table / table.sum(axis=1, keepdims=True)
    psi = population_stability_index(shares[0], shares[1], settings.psi_epsilon)
    return FeatureDrift(
        name=feature.name,
        kind=feature.kind,
        test=test,
        statistic=statistic,
        p_value=p_value,
        psi=psi,
        effect_ratio=psi / settings.min_psi,
        reference=dict(zip(levels, shares[0].tolist(), strict=True)),
        current=dict(zip(levels, shares[1].tolist(), strict=True)),
        note=note,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
