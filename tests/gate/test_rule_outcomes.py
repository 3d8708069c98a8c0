"""The gate's decisions as whole values: the exact outcome, its rule and what its reason says.

Added for the mutation run (docs/testing.md#mutation-testing): each test pins an edge or a
reason that a surviving mutant of ``gate.rules`` or ``gate.bootstrap`` changed unnoticed, such as
``promote`` becoming ``None`` instead of ``False``, the AUC floor's ``<`` becoming ``<=``, or a
missing holdout bootstrap. Pure: no MLflow.
"""

from __future__ import annotations

import numpy as np
import pytest
from support import bootstrap_of_deltas

from attrition_mlops.gate.bootstrap import paired_bootstrap_auc
from attrition_mlops.gate.rules import (
    Decision,
    EvidenceWindow,
    decide,
    decide_on_window,
    window_is_usable,
)
from attrition_mlops.settings import GateSettings

GATE = GateSettings()


_boot = bootstrap_of_deltas


def _decide(champion="1", auc=0.82, boot=None) -> Decision:
    return decide(
        challenger_version="2", champion_version=champion, challenger_auc=auc, boot=boot, gate=GATE
    )


# --- decide (frozen holdout) -------------------------------------------------------------------


def test_a_retried_evaluation_keeps_and_says_why():
    decision = decide(
        challenger_version="2", champion_version="2", challenger_auc=0.9, boot=None, gate=GATE
    )
    assert decision == Decision(False, "already_champion", "version 2 is champion")
    assert decision.promote is False


def test_the_auc_floor_refuses_below_it_and_lets_exactly_the_floor_through():
    below = _decide(champion=None, auc=0.7499)
    assert below == Decision(False, "auc_floor", "holdout AUC 0.7499 < floor 0.7500")
    assert below.promote is False
    at = _decide(champion=None, auc=GATE.min_auc)  # the floor is "at least", not "above"
    assert at == Decision(True, "cold_start", "no champion yet; holdout AUC 0.7500 ≥ floor 0.7500")


def test_a_champion_without_a_bootstrap_is_decided_as_a_cold_start():
    # A champion exists but nothing could be paired (no bootstrap): the floor alone decides.
    decision = _decide(champion="1", auc=0.8, boot=None)
    assert decision.promote is True and decision.rule == "cold_start"


def test_a_losing_challenger_is_refused_and_the_reason_gives_the_rates():
    boot = _boot([0.01] * 50 + [-0.01] * 50)
    decision = _decide(boot=boot)
    assert decision.promote is False and decision.rule == "bootstrap"
    assert decision.reason == (
        "challenger wins only 50.0% of 100 paired resamples, ties 0.0% (needs ≥ 90%)"
    )


def test_identical_predictions_are_named_in_the_reason():
    decision = _decide(boot=_boot([0.0] * 100))
    assert decision.promote is False
    assert decision.reason == (
        "challenger wins only 0.0% of 100 paired resamples, ties 100.0% (needs ≥ 90%)"
        " (identical holdout predictions: ties keep the incumbent)"
    )
    # Some ties, not all: no such note.
    partly = _decide(boot=_boot([0.0] * 50 + [-0.01] * 50))
    assert partly.reason.endswith("ties 50.0% (needs ≥ 90%)")


# --- the recent window ---------------------------------------------------------------------------

WINDOW = EvidenceWindow("2026-11-01", "2026-11-30", 400, 60, "snapshot as_of=2026-12-01")


def _on_window(window_delta, holdout_delta=(0.0,) * 100, *, window=WINDOW, champion_auc=0.80):
    return decide_on_window(
        challenger_version="2",
        champion_version="1",
        window=window,
        window_boot=_boot(window_delta, champion_auc),
        holdout_boot=None if holdout_delta is None else _boot(holdout_delta),
        holdout_challenger_auc=0.80,
        gate=GATE,
    )


def test_a_window_exactly_at_the_minimum_size_is_usable():
    at = EvidenceWindow("a", "b", GATE.min_window_rows, GATE.min_window_positives, "s")
    assert window_is_usable(at, GATE)
    fewer_rows = EvidenceWindow("a", "b", GATE.min_window_rows - 1, GATE.min_window_positives, "s")
    fewer_pos = EvidenceWindow("a", "b", GATE.min_window_rows, GATE.min_window_positives - 1, "s")
    assert not window_is_usable(fewer_rows, GATE) and not window_is_usable(fewer_pos, GATE)
    assert not window_is_usable(None, GATE)


def test_no_win_on_the_window_is_refused_with_the_numbers():
    decision = _on_window([0.0] * 100)
    assert decision.promote is False and decision.rule == "window_bootstrap"
    assert decision.reason == (
        f"on the recent window {WINDOW.describe()} the challenger gains more than 0.005 AUC in "
        "only 0.0% of 100 paired resamples (ΔAUC +0.0000; needs ≥ 95%)"
    )


def test_a_holdout_regression_is_refused_as_false():
    decision = _on_window([0.05] * 100, [-0.3] * 100)
    assert decision.promote is False and decision.rule == "holdout_regression"


def test_the_promotion_reason_gives_the_holdout_delta_and_no_weakness_note():
    decision = _on_window([0.05] * 100, [0.01] * 100)
    assert decision.promote is True
    assert decision.reason.endswith(
        "frozen holdout ΔAUC +0.0100 within the non-regression margin 0.200."
    )


def test_without_a_holdout_bootstrap_the_window_decides_and_the_holdout_delta_is_nan():
    decision = _on_window([0.05] * 100, None)
    assert decision.promote is True and decision.rule == "window_bootstrap"
    assert "frozen holdout ΔAUC +nan within" in decision.reason


def test_the_weakness_note_appears_only_below_the_floor():
    # Challenger AUC exactly at the floor on the window: not weak.
    at_floor = _on_window([0.05] * 100, champion_auc=GATE.min_auc - 0.05)
    assert at_floor.promote and "weak" not in at_floor.reason
    assert at_floor.reason.endswith("margin 0.200.")
    below = _on_window([0.05] * 100, champion_auc=GATE.min_auc - 0.06)
    assert below.promote and below.reason.endswith(
        "Both models are weak on this window: the challenger's AUC 0.7400 is below the floor "
        "0.7500."
    )


# --- the bootstrap --------------------------------------------------------------------------------


def test_a_single_resample_is_allowed_and_has_no_spread():
    y = np.array([0, 0, 1, 1, 0, 1])
    boot = paired_bootstrap_auc(y, y * 0.5, y * 0.7, n_boot=1, seed=3)
    assert boot.n_boot == 1 and boot.delta.shape == (1,) and boot.delta_se == 0.0
    with pytest.raises(ValueError, match="n_boot must be >= 1, got 0"):
        paired_bootstrap_auc(y, y * 0.5, y * 0.7, n_boot=0)


def test_tie_rate_defaults_to_exact_ties():
    boot = _boot([0.0, 0.5, -0.5, 0.0])
    assert boot.tie_rate() == 0.5  # only Δ == 0 is a tie without a tolerance
    assert boot.win_rate() == 0.25
