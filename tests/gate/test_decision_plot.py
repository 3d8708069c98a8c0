"""The gate's decision plot states the verdict, the rule and its threshold, read back from the
matplotlib figure (its super-title and the text under it)."""

from __future__ import annotations

import numpy as np
import pytest

from attrition_mlops.gate.bootstrap import paired_bootstrap_auc
from attrition_mlops.gate.report import decision_headline, plot_decision
from attrition_mlops.gate.rules import decide
from attrition_mlops.settings import GateSettings

GATE = GateSettings(n_boot=300)


def _data(gain: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = (rng.random(400) < 0.2).astype(int)
    signal = y + rng.normal(0, 1.0, y.size)
    champion = signal + rng.normal(0, 1.2, y.size)
    challenger = champion if gain == 0 else signal + rng.normal(0, 1.2 - gain, y.size)
    return y, champion, challenger


def _report(boot, decision, champion="1", **extra):
    lo, hi = boot.delta_ci(0.95)
    return {
        "decision": "promoted" if decision.promote else "rejected",
        "rule": decision.rule,
        "reason": decision.reason,
        "challenger_version": "2",
        "champion_version": champion,
        "auc_challenger": boot.auc_challenger,
        "delta_auc": boot.delta_point if champion else None,
        "delta_auc_ci95": [lo, hi] if champion else None,
        "win_rate": boot.win_rate(GATE.tie_tolerance) if champion else None,
        "gate": GATE.model_dump(),
        **extra,
    }


def _texts(fig) -> tuple[str, str]:
    """(the super-title, every other text on the figure), as a reader of the PNG sees them."""
    others = [t.get_text() for t in fig.texts] + [ax.get_title() for ax in fig.axes]
    return fig.get_suptitle(), "\n".join(others)


@pytest.mark.parametrize(("gain", "verdict", "sign"), [(0.9, "PROMOTE", "≥"), (0.0, "REJECT", "<")])
def test_the_frozen_holdout_rule_states_win_rate_against_its_minimum(gain, verdict, sign):
    y, champion, challenger = _data(gain)
    boot = paired_bootstrap_auc(y, champion, challenger, n_boot=GATE.n_boot, seed=1)
    decision = decide(
        challenger_version="2",
        champion_version="1",
        challenger_auc=max(boot.auc_challenger, GATE.min_auc),
        boot=boot,
        gate=GATE,
    )
    assert decision.promote == (verdict == "PROMOTE")
    report = _report(boot, decision)
    fig = plot_decision(boot, y, {"champion": champion, "challenger": challenger}, report)
    title, rest = _texts(fig)
    lo, hi = boot.delta_ci(0.95)
    win = boot.win_rate(GATE.tie_tolerance)
    assert title == (
        f"{verdict} (rule bootstrap): challenger v2 vs champion v1, win rate {win:.1%} {sign} "
        f"{GATE.min_win_rate:.0%}; ΔAUC {boot.delta_point:+.3f}, 95% CI [{lo:+.3f}, {hi:+.3f}]"
    )
    assert title == decision_headline(report)
    assert decision.reason[:40] in rest.replace("\n", " ")  # the rule's full sentence under it


def test_the_window_rule_states_the_window_figures_and_its_thresholds():
    y, champion, challenger = _data(0.9)
    boot = paired_bootstrap_auc(y, champion, challenger, n_boot=GATE.n_boot, seed=1)
    window = {
        "first": "2026-06-30",
        "last": "2026-09-30",
        "n": 412,
        "positives": 61,
        "delta_auc": 0.0213,
        "delta_auc_ci95": [0.0041, 0.0392],
        "win_rate": 0.972,
    }
    report = _report(boot, decide_window_promoted(), evidence_window=window)
    fig = plot_decision(boot, y, {"champion": champion, "challenger": challenger}, report)
    title, _ = _texts(fig)
    assert title == (
        "PROMOTE (rule window_bootstrap): challenger v2 vs champion v1 on the recent window "
        "2026-06-30..2026-09-30 (n=412, 61 leavers), win rate 97.2% ≥ 95% (gain > 0.005 AUC); "
        "ΔAUC +0.021, 95% CI [+0.004, +0.039]"
    )


def decide_window_promoted():
    from attrition_mlops.gate.rules import Decision

    return Decision(True, "window_bootstrap", "challenger gains more than 0.005 AUC in 97.2% ...")


def test_cold_start_and_the_auc_floor_state_the_floor():
    y, _, challenger = _data(0.9)
    boot = paired_bootstrap_auc(y, challenger, challenger, n_boot=GATE.n_boot, seed=1)
    cold = decide(
        challenger_version="2",
        champion_version=None,
        challenger_auc=0.81,
        boot=None,
        gate=GATE,
    )
    report = _report(boot, cold, champion=None) | {"auc_challenger": 0.81}
    title, _ = _texts(plot_decision(boot, y, {"challenger": challenger}, report))
    assert (
        title
        == "PROMOTE (rule cold_start): challenger v2, no champion; holdout AUC 0.810 ≥ floor 0.75"
    )
    floor = decide(
        challenger_version="2", champion_version="1", challenger_auc=0.7, boot=boot, gate=GATE
    )
    report = _report(boot, floor) | {"auc_challenger": 0.7}
    assert decision_headline(report).startswith(
        "REJECT (rule auc_floor): challenger v2 vs champion v1; holdout AUC 0.700 < floor 0.75"
    )
