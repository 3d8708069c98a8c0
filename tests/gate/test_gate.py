"""The champion/challenger decision rule and report statistics (pure functions)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from attrition_mlops.data import contract
from attrition_mlops.gate.bootstrap import paired_bootstrap_auc
from attrition_mlops.gate.rules import decide, power_statement, slice_metrics
from attrition_mlops.settings import GateSettings

GATE = GateSettings(n_boot=500)


def _labels(n=294, n_pos=47, seed=0):
    y = np.zeros(n, dtype=int)
    y[np.random.default_rng(seed).choice(n, n_pos, replace=False)] = 1
    return y


def _scores(y, noise, seed):
    return y + np.random.default_rng(seed).normal(0, noise, len(y))


def _decide(y, champion, challenger, gate=GATE, champion_version="1"):
    boot = paired_bootstrap_auc(y, champion, challenger, n_boot=gate.n_boot, seed=gate.seed)
    return decide(
        challenger_version="2",
        champion_version=champion_version,
        challenger_auc=boot.auc_challenger,
        boot=boot,
        gate=gate,
    ), boot


@pytest.mark.parametrize("seed", range(10))
def test_a_worse_challenger_is_never_promoted(seed):
    y = _labels(seed=seed)
    no_floor = GATE.model_copy(update={"min_auc": 0.51})  # the bootstrap rule alone decides
    decision, boot = _decide(y, _scores(y, 0.5, seed), _scores(y, 0.9, seed + 100), no_floor)
    assert boot.delta_point < 0
    assert not decision.promote and decision.rule == "bootstrap"


def test_an_identical_challenger_is_not_promoted():
    y = _labels()
    s = _scores(y, 0.8, 1)
    decision, boot = _decide(y, s, s.copy())
    assert boot.tie_rate(GATE.tie_tolerance) == 1.0
    assert not decision.promote and "ties keep the incumbent" in decision.reason


def test_an_equivalent_challenger_is_a_tie_not_a_win():
    # A monotone transform ranks every record identically: same AUC on every resample.
    y = _labels()
    s = _scores(y, 0.8, 2)
    decision, boot = _decide(y, s, 3 * s + 7)
    assert boot.win_rate(GATE.tie_tolerance) == 0.0 and not decision.promote


def test_a_clearly_better_challenger_is_promoted():
    y = _labels()
    decision, boot = _decide(y, _scores(y, 1.5, 3), _scores(y, 0.5, 4))
    assert boot.win_rate(GATE.tie_tolerance) >= GATE.min_win_rate
    assert decision.promote and decision.rule == "bootstrap"


def test_the_win_rate_threshold_is_configurable():
    y = _labels()
    champion, challenger = _scores(y, 1.0, 5), _scores(y, 0.95, 6)
    boot = paired_bootstrap_auc(y, champion, challenger, n_boot=500, seed=GATE.seed)
    win = boot.win_rate(GATE.tie_tolerance)
    assert 0 < win < 1
    lenient = GATE.model_copy(update={"min_win_rate": max(win - 0.01, 0.51)})
    strict = GATE.model_copy(update={"min_win_rate": min(win + 0.01, 1.0)})
    assert _decide(y, champion, challenger, lenient)[0].promote == (win >= lenient.min_win_rate)
    assert not _decide(y, champion, challenger, strict)[0].promote


def test_cold_start_promotes_only_above_the_floor():
    promote = decide(
        challenger_version="1", champion_version=None, challenger_auc=0.81, boot=None, gate=GATE
    )
    assert promote.promote and promote.rule == "cold_start"
    reject = decide(
        challenger_version="1", champion_version=None, challenger_auc=0.70, boot=None, gate=GATE
    )
    assert not reject.promote and reject.rule == "auc_floor"


def test_a_better_challenger_below_the_floor_is_not_promoted():
    y = _labels()
    gate = GATE.model_copy(update={"min_auc": 0.99})
    decision, _ = _decide(y, _scores(y, 1.5, 3), _scores(y, 0.5, 4), gate)
    assert not decision.promote and decision.rule == "auc_floor"


def test_the_champion_itself_is_a_no_op():
    decision = decide(
        challenger_version="3", champion_version="3", challenger_auc=0.9, boot=None, gate=GATE
    )
    assert not decision.promote and decision.rule == "already_champion"


def test_power_statement_is_honest_about_small_gains():
    y = _labels()
    _, boot = _decide(y, _scores(y, 1.0, 7), _scores(y, 1.0, 8))
    power = power_statement(boot, GATE)
    assert not power["se_assumed_from_single_model"]
    assert power["se_delta_auc"] == pytest.approx(boot.delta_se)
    # At this holdout size a +0.01 AUC gain is detected far less often than not.
    assert power["power_at_true_delta"]["+0.01"] < 0.5
    assert power["min_detectable_delta_auc_at_80pct_power"] > 0.01
    assert "will usually not be promoted" in power["statement"]
    identical = paired_bootstrap_auc(y, _scores(y, 1, 9), _scores(y, 1, 9), n_boot=200)
    assert power_statement(identical, GATE)["se_assumed_from_single_model"]


def test_slice_metrics_cover_every_sensitive_group(snapshot):
    frame = snapshot.frame.head(300)
    y = (frame[contract.LABEL] == "Yes").to_numpy(dtype=int)
    rng = np.random.default_rng(0)
    rows = slice_metrics(frame, y, {"challenger": y + rng.normal(0, 1, len(y))}, threshold=0.5)
    table = pd.DataFrame(rows)
    for attribute in ("Gender", "AgeBand", "MaritalStatus"):
        part = table[table.attribute == attribute]
        assert part.n.sum() == len(frame)
        assert part.positives.sum() == y.sum()
    assert set(table[table.attribute == "AgeBand"].value) <= {b[0] for b in contract.AGE_BANDS}
    assert table.challenger_auc.between(0, 1).all()
