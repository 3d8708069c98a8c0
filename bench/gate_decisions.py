"""How often the gate promotes the right challenger: the recent-window rule vs the frozen holdout.

Each trial is one SIMULATED world built from the real IBM HR rows (``simulate_labelled_snapshot``:
real rows resampled with their real labels, plus a scenario's label mechanism):

- the **old world** (scenario ``none``): the champion's training rows and the frozen holdout;
- the **new world**: ``senior_exodus``, a concept shift with the inputs untouched (35 % of the
  employees with ten or more years at the company who stayed now leave), or ``none`` again for
  the no-shift trials; its rows are the challenger's training rows (when it adapts) and the
  **recent window**, rows neither model trained on.

Every model is the project's logistic-regression pipeline (``build_classifier``, C = 0.3). The
decisions are the gate's own pure rules with its default settings: :func:`decide` (the frozen
holdout alone, as the gate ran before) and :func:`decide_on_window` (the recent window, with the
frozen holdout as a non-regression guard). Conditions:

- ``adapted``: shift; the challenger trains on the new world. It should be promoted.
- ``equal``: no shift; the challenger trains on a fresh sample of the same size from the same
  world. Equal quality: it should not be promoted (ties never win).
- ``worse``: shift; the challenger trains on a fifth as many old-world rows. Worse on the recent
  window: it must not be promoted.
- ``better_no_shift``: no shift; the challenger trains on three times as many rows.

Each rate is reported with its Wilson 95 % interval.

    uv run python bench/gate_decisions.py --worlds 500 --json-out gate-decisions.json
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
VARIANTS = [(w, g, m) for w in (0.90, 0.95) for g in (0.0, 0.005, 0.01) for m in (0.05, 0.10)]


def _xy(frame):
    y = (frame[contract.LABEL] == contract.POSITIVE_LABEL).to_numpy(dtype=int)
    return frame[list(contract.INPUT_COLUMNS)], y


def _fit(frame, seed: int):
    X, y = _xy(frame)
    return build_classifier("logistic_regression", {"C": 0.3}, seed=seed).fit(X, y)


def _scores(model, frame) -> np.ndarray:
    return model.predict_proba(frame[list(contract.INPUT_COLUMNS)])[:, 1]


def one_world(base, seed: int, args: argparse.Namespace, gate: GateSettings) -> dict[str, Any]:
    def sample(n: int, scenario: str, k: int):
        return simulate_labelled_snapshot(base, n, scenario=scenario, seed=seed * 100 + k)

    old_train, holdout = sample(args.train_rows, "none", 1), sample(args.holdout_rows, "none", 2)
    champion = _fit(old_train, seed)
    _, y_holdout = _xy(holdout)
    holdout_champion = _scores(champion, holdout)
    worlds = {
        True: (sample(args.train_rows, SHIFT, 3), sample(args.window_rows, SHIFT, 4)),
        False: (sample(args.train_rows, "none", 5), sample(args.window_rows, "none", 6)),
    }
    # The truth a window only samples: each world's population, to say which model IS better.
    truth = {True: sample(args.truth_rows, SHIFT, 9), False: sample(args.truth_rows, "none", 10)}
    challengers = {
        "adapted": (True, lambda: _fit(worlds[True][0], seed + 1)),
        "equal": (False, lambda: _fit(worlds[False][0], seed + 1)),
        "worse": (True, lambda: _fit(sample(args.train_rows // 5, "none", 7), seed + 1)),
        "better_no_shift": (
            False,
            lambda: _fit(sample(args.train_rows * 3, "none", 8), seed + 1),
        ),
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
                    update={"min_win_rate": w, "window_min_gain": g, "holdout_margin": m}
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
    parser.add_argument("--train-rows", type=int, default=1200)
    parser.add_argument("--holdout-rows", type=int, default=300, help="frozen holdout size")
    parser.add_argument("--window-rows", type=int, default=600, help="recent window size")
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
            "window_rows": args.window_rows,
            "truth_rows": args.truth_rows,
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
