"""How often the gate promotes the right challenger: the recent-window rule vs the frozen holdout.

Each trial is one SIMULATED world built from the real IBM HR rows. The 1,470 real employees are
first split at random into four disjoint pools: old-world training (440), the frozen holdout
(294), new-world training (440) and the recent window (296). No real employee is ever on both
the training and the evaluation side (an earlier version resampled every set from all rows, so
copies of evaluation rows sat in the training sets and inflated the gains: its figures are
superseded). Each pool's rows pass once through ``simulate_labelled_snapshot`` (noise and a
label mechanism, ``replace=False``):

- the **old world** (scenario ``none``): the champion's training rows and the frozen holdout;
- the **new world**: ``senior_exodus``, a concept shift with the inputs untouched (35 %·intensity
  of the employees with ten or more years at the company who stayed now leave), or ``none``
  again for the no-shift trials: the challenger's training rows and the **recent window**;
- the **truth**: the window pool's employees resampled 5,000 times in the same world, which says
  whether a challenger IS better there, whatever its window showed.

Every model is the project's logistic-regression pipeline (``build_classifier``, C = 0.3). The
decisions are the gate's own pure rules with its default settings: :func:`decide` (the frozen
holdout alone, as the gate ran before) and :func:`decide_on_window` (the recent window, with the
frozen holdout as a non-regression guard). Conditions:

- ``adapted``: shift; the challenger trains on the new world. It should be promoted.
- ``equal``: no shift; the challenger trains on the other training pool, of the same size, from
  the same world. Equal quality: it should not be promoted.
- ``worse``: shift; the challenger trains on a fifth of the old-world pool. It must not be.
- ``better_no_shift``: no shift; the challenger trains on both training pools (twice the rows).

Each rate is reported with its Wilson 95 % interval, and (``truly_worse_any_condition``) over
every challenger whose AUC on the truth is below the champion's.

    uv run python bench/gate_decisions.py --worlds 500 --intensity 1.0 --json-out gate.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binomtest
from sklearn.metrics import roc_auc_score

from attrition_mlops.data import contract
from attrition_mlops.data.dataset import load_snapshot
from attrition_mlops.gate.bootstrap import paired_bootstrap_auc
from attrition_mlops.gate.rules import EvidenceWindow, decide, decide_on_window
from attrition_mlops.model.features import build_classifier
from attrition_mlops.settings import GateSettings
from attrition_mlops.simulate.generate import simulate_labelled_snapshot

SHIFT = "senior_exodus"
CONDITIONS = ("adapted", "equal", "worse", "better_no_shift")
TARGETS = {"adapted": ">= 0.80", "equal": "<= 0.05", "worse": "<= 0.01"}
#: Other settings of the window rule, decided on the same bootstraps (a sensitivity table).
VARIANTS = [(w, g, m) for w in (0.90, 0.95) for g in (0.0, 0.005, 0.01) for m in (0.10, 0.20)]


def _xy(frame):
    y = (frame[contract.LABEL] == contract.POSITIVE_LABEL).to_numpy(dtype=int)
    return frame[list(contract.INPUT_COLUMNS)], y


def _fit(frame, seed: int):
    X, y = _xy(frame)
    return build_classifier("logistic_regression", {"C": 0.3}, seed=seed).fit(X, y)


def _scores(model, frame) -> np.ndarray:
    return model.predict_proba(frame[list(contract.INPUT_COLUMNS)])[:, 1]


def one_world(base, seed: int, args: argparse.Namespace, gate: GateSettings) -> dict[str, Any]:
    """One SIMULATED world. The real rows are first split into four disjoint pools (old-world
    training, frozen holdout, new-world training, recent window): no real employee is ever on
    both the training and the evaluation side, so no model is judged on copies of its own rows.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(base))
    cuts = np.cumsum([args.train_rows, args.holdout_rows, args.train_rows])
    pools = [base.iloc[part] for part in np.split(order, cuts)]
    old_pool, holdout_pool, new_pool, window_pool = pools

    def draw(pool, scenario: str, k: int, n: int | None = None, replace: bool = False):
        return simulate_labelled_snapshot(
            pool,
            n or len(pool),
            scenario=scenario,
            seed=seed * 100 + k,
            replace=replace,
            intensity=args.intensity if scenario == SHIFT else 1.0,
        )

    holdout = draw(holdout_pool, "none", 2)
    champion = _fit(draw(old_pool, "none", 1), seed)
    _, y_holdout = _xy(holdout)
    holdout_champion = _scores(champion, holdout)
    worlds = {
        True: (draw(new_pool, SHIFT, 3), draw(window_pool, SHIFT, 4)),
        False: (draw(new_pool, "none", 5), draw(window_pool, "none", 6)),
    }
    # The truth a window only samples: the window pool's employees, resampled, in each world.
    truth = {
        True: draw(window_pool, SHIFT, 9, args.truth_rows, replace=True),
        False: draw(window_pool, "none", 10, args.truth_rows, replace=True),
    }
    both = pd.concat([old_pool, new_pool])
    challengers = {
        "adapted": (True, lambda: _fit(worlds[True][0], seed + 1)),
        "equal": (False, lambda: _fit(worlds[False][0], seed + 1)),
        "worse": (True, lambda: _fit(draw(old_pool, "none", 7, len(old_pool) // 5), seed + 1)),
        "better_no_shift": (False, lambda: _fit(draw(both, "none", 8), seed + 1)),
    }
    out: dict[str, Any] = {}
    for name, (shifted, fit) in challengers.items():
        challenger = fit()
        window_frame = worlds[shifted][1]
        _, y_window = _xy(window_frame)
        holdout_boot = paired_bootstrap_auc(
            y_holdout, holdout_champion, _scores(challenger, holdout), n_boot=args.n_boot, seed=seed
        )
        window_boot = paired_bootstrap_auc(
            y_window,
            _scores(champion, window_frame),
            _scores(challenger, window_frame),
            n_boot=args.n_boot,
            seed=seed + 1,
        )
        window = EvidenceWindow(
            "sim-day-1", "sim-day-30", int(y_window.size), int(y_window.sum()), "SIMULATED"
        )
        frozen = decide(
            challenger_version="2",
            champion_version="1",
            challenger_auc=holdout_boot.auc_challenger,
            boot=holdout_boot,
            gate=gate,
        )

        recent_rule = partial(
            _window_decision, window, window_boot, holdout_boot
        )  # the same bootstraps, judged under each setting
        recent = recent_rule(gate)
        variants = {
            f"win{w:.2f}_gain{g:.3f}_margin{m:.2f}": recent_rule(
                gate.model_copy(
                    update={"window_min_win_rate": w, "window_min_gain": g, "holdout_margin": m}
                )
            ).promote
            for w, g, m in VARIANTS
        }
        _, y_truth = _xy(truth[shifted])
        true_delta = roc_auc_score(y_truth, _scores(challenger, truth[shifted])) - roc_auc_score(
            y_truth, _scores(champion, truth[shifted])
        )
        out[name] = {
            "true_delta_auc": float(true_delta),
            "frozen_only": frozen.promote,
            "window_rule": recent.promote,
            "window_rule_reason": recent.rule,
            "variants": variants,
            "delta_auc_window": window_boot.delta_point,
            "delta_auc_holdout": holdout_boot.delta_point,
        }
    return out


def _window_decision(window, window_boot, holdout_boot, settings: GateSettings):
    return decide_on_window(
        challenger_version="2",
        champion_version="1",
        window=window,
        window_boot=window_boot,
        holdout_boot=holdout_boot,
        holdout_challenger_auc=holdout_boot.auc_challenger,
        gate=settings,
    )


def _rate(hits: int, n: int) -> dict[str, Any]:
    ci = binomtest(hits, n).proportion_ci(confidence_level=0.95, method="wilson")
    return {"rate": hits / n, "ci95": [round(ci.low, 4), round(ci.high, 4)], "n": n}


def summarise(trials: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name in CONDITIONS:
        rows = [t[name] for t in trials]
        summary[name] = {
            "window_rule": _rate(sum(r["window_rule"] for r in rows), len(rows)),
            "frozen_only": _rate(sum(r["frozen_only"] for r in rows), len(rows)),
            "target_window_rule": TARGETS.get(name, "reported"),
            "median_delta_auc_window": float(np.median([r["delta_auc_window"] for r in rows])),
            "median_delta_auc_holdout": float(np.median([r["delta_auc_holdout"] for r in rows])),
            "variants_window_rule": {
                key: round(sum(r["variants"][key] for r in rows) / len(rows), 4)
                for key in rows[0]["variants"]
            },
            "median_true_delta_auc": float(np.median([r["true_delta_auc"] for r in rows])),
            "window_rule_refusals": {
                rule: sum(r["window_rule_reason"] == rule for r in rows if not r["window_rule"])
                for rule in sorted({r["window_rule_reason"] for r in rows})
            },
        }
    worse = [t[name] for t in trials for name in CONDITIONS if t[name]["true_delta_auc"] < 0]
    summary["truly_worse_any_condition"] = {
        "what": "every challenger whose AUC on the world's population is below the champion's",
        "window_rule": _rate(sum(r["window_rule"] for r in worse), len(worse)),
        "frozen_only": _rate(sum(r["frozen_only"] for r in worse), len(worse)),
        "target_window_rule": "<= 0.01",
    }
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=500, help="simulated worlds (trials)")
    parser.add_argument(
        "--train-rows", type=int, default=440, help="real rows in each training pool (old, new)"
    )
    parser.add_argument("--holdout-rows", type=int, default=294, help="frozen holdout pool")
    parser.add_argument(
        "--intensity",
        type=float,
        default=1.0,
        help="size of the concept shift: senior_exodus flips 35 %%·intensity of the long-tenured "
        "employees' 'No' labels",
    )
    parser.add_argument(
        "--truth-rows", type=int, default=5000, help="population sample that says which is better"
    )
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    gate = GateSettings()
    base = load_snapshot().frame
    started, trials = time.perf_counter(), []
    for i in range(args.worlds):
        trials.append(one_world(base, args.first_seed + i, args, gate))
        if (i + 1) % 25 == 0:
            print(
                f"{i + 1}/{args.worlds} worlds, {time.perf_counter() - started:.0f} s", flush=True
            )
    result = {
        "worlds": args.worlds,
        "settings": {
            k: getattr(gate, k)
            for k in (
                "min_win_rate",
                "window_min_win_rate",
                "window_min_gain",
                "holdout_margin",
                "min_auc",
                "tie_tolerance",
            )
        }
        | {"n_boot": args.n_boot},
        "sizes": {
            "train_rows": args.train_rows,
            "holdout_rows": args.holdout_rows,
            "window_rows": len(base) - 2 * args.train_rows - args.holdout_rows,
            "truth_rows": args.truth_rows,
            "intensity": args.intensity,
        },
        "seconds": round(time.perf_counter() - started, 1),
        "conditions": summarise(trials),
    }
    print(json.dumps(result, indent=2))
    if args.json_out:
        args.json_out.write_text(json.dumps(result | {"trials": trials}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
