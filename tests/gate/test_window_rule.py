"""The recent-window gate rule (issue 14): judged on rows neither model saw, guarded on the frozen
holdout, falling back to it (and saying so) when the window is too small. Pure: no MLflow."""

from __future__ import annotations

import numpy as np
import pytest
from support import bootstrap_of_deltas

from attrition_mlops.gate.rules import EvidenceWindow, decide_on_window, window_is_usable
from attrition_mlops.settings import GateSettings

GATE = GateSettings()  # window: win rate 0.95, min gain 0.005; holdout_margin 0.20
WINDOW = EvidenceWindow("2026-11-01", "2026-11-30", 400, 60, "snapshot as_of=2026-12-01")


_boot = bootstrap_of_deltas


def _decide(window_delta, holdout_delta=(0.0,) * 100, *, window=WINDOW, gate=GATE, **kw):
    args = {
        "challenger_version": "2",
        "champion_version": "1",
        "window": window,
        "window_boot": None if window_delta is None else _boot(window_delta, **kw),
        "holdout_boot": _boot(holdout_delta),
        "holdout_challenger_auc": 0.80 + float(np.mean(holdout_delta)),
        "gate": gate,
    }
    return decide_on_window(**args)


def test_a_clear_gain_on_the_window_promotes_and_the_reason_names_the_window():
    decision = _decide([0.03] * 100)
    assert decision.promote and decision.rule == "window_bootstrap"
    assert "2026-11-01..2026-11-30 (n=400, 60 leavers; snapshot as_of=2026-12-01)" in (
        decision.reason
    )


@pytest.mark.parametrize("n_boot", [20, 100, 2000])
def test_a_win_is_a_gain_above_window_min_gain_at_the_win_rate(n_boot):
    wins = round(GATE.window_min_win_rate * n_boot)
    gain = GATE.window_min_gain
    # Exactly window_min_win_rate of resamples gain more than window_min_gain: promoted ...
    at = [gain + 0.001] * wins + [gain] * (n_boot - wins)
    assert _decide(at).promote
    # ... one fewer, or gains of exactly window_min_gain (not more), and it is refused.
    below = [gain + 0.001] * (wins - 1) + [gain] * (n_boot - wins + 1)
    assert not _decide(below).promote
    assert _decide(below).rule == "window_bootstrap"


def test_ties_and_equal_models_never_win_on_the_window():
    assert not _decide([0.0] * 100).promote
    # A challenger slightly better in every resample, but by less than the minimum gain.
    assert not _decide([GATE.window_min_gain / 2] * 100).promote


def test_the_frozen_holdout_refuses_a_significant_regression_beyond_the_margin():
    margin = GATE.holdout_margin
    n = 100
    losses = round(GATE.window_min_win_rate * n)
    regressed = [-(margin + 0.01)] * losses + [0.0] * (n - losses)
    decision = _decide([0.03] * n, regressed)
    assert not decision.promote and decision.rule == "holdout_regression"
    assert "frozen holdout" in decision.reason
    # Losing by exactly the margin, or by more in too few resamples, is allowed.
    assert _decide([0.03] * n, [-margin] * n).promote
    fewer = [-(margin + 0.01)] * (losses - 1) + [0.0] * (n - losses + 1)
    assert _decide([0.03] * n, fewer).promote


def test_a_window_too_small_falls_back_to_the_frozen_holdout_and_says_so():
    small = EvidenceWindow("2026-11-29", "2026-11-30", GATE.min_window_rows - 1, 60, "x")
    few_leavers = EvidenceWindow(
        "2026-11-01", "2026-11-30", 400, GATE.min_window_positives - 1, "x"
    )
    for window in (small, few_leavers):
        assert not window_is_usable(window, GATE)
        # The window says "promote"; the frozen holdout (a clear win there) decides instead.
        decision = _decide([0.03] * 100, [0.02] * 100, window=window)
        assert decision.promote and decision.rule == "bootstrap_frozen_holdout"
        assert "judged on the frozen holdout instead" in decision.reason
        refused = _decide([0.03] * 100, [0.0] * 100, window=window)
        assert not refused.promote and refused.rule == "bootstrap_frozen_holdout"
    assert "below the minimum 200 rows / 30 leavers" in _decide([0.03] * 100, window=small).reason
    assert window_is_usable(WINDOW, GATE)


def test_no_window_at_all_decides_exactly_as_the_frozen_holdout_gate_always_has():
    # The first snapshot, a retrain on unchanged data: the rule and reason of the plain gate.
    promoted = _decide(None, [0.02] * 100, window=None)
    assert promoted.promote and promoted.rule == "bootstrap"
    assert promoted.reason.startswith("challenger wins 100.0% of 100 paired resamples")
    assert _decide(None, [0.0] * 100, window=None).rule == "bootstrap"


def test_a_window_without_two_classes_falls_back_and_says_so():
    decision = _decide(None, [0.02] * 100)  # a window, but no bootstrap on it
    assert decision.promote and decision.rule == "bootstrap_frozen_holdout"
    assert "holds one class only" in decision.reason


def test_cold_start_and_a_retried_evaluation_are_decided_as_before():
    cold = decide_on_window(
        challenger_version="1",
        champion_version=None,
        window=WINDOW,
        window_boot=None,
        holdout_boot=None,
        holdout_challenger_auc=0.81,
        gate=GATE,
    )
    assert cold.promote and cold.rule == "cold_start"
    again = decide_on_window(
        challenger_version="1",
        champion_version="1",
        window=WINDOW,
        window_boot=_boot([0.03] * 100),
        holdout_boot=_boot([0.0] * 100),
        holdout_challenger_auc=0.81,
        gate=GATE,
    )
    assert not again.promote and again.rule == "already_champion"


def test_a_weak_new_world_does_not_keep_a_worse_champion_but_is_reported():
    decision = _decide([0.05] * 100, champion_auc=0.62)
    assert decision.promote
    assert "below the floor 0.7500" in decision.reason
