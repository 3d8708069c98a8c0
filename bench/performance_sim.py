"""Realized and estimated performance on SIMULATED cohorts with a known truth (issue 13, item 7).

A cohort is n predictions of a model whose probabilities are CALIBRATED for its population: a
risk factor x ~ N(mu, 1), true P(leave | x) = sigmoid(-2 + 1.2·x) (~16 % leave at mu = 0, like
the IBM data, AUC ≈ 0.78), outcomes y ~ Bernoulli(P). The model's probability is that P as
learnt at mu = 0. Scenarios:

- ``stable``:          mu = 0, the model is right;
- ``covariate_shift``: mu = 0.7, more high-risk employees, P(leave | x) unchanged: still calibrated;
- ``concept_shift``:   mu = 0, but the true P(leave | x) is now sigmoid(-1.3 + 0.6·x): the model's
                       probabilities are wrong, which no label-free estimate can see.

The population's true AUC is the expected-confusion AUC of 4M draws of its (true) probabilities
scored by the model's (exact in the limit; Monte-Carlo error ~1e-4).

Parts: ``coverage`` (a): share of cohorts whose 95 % bootstrap CI holds the true AUC, with its
Wilson 95 % interval; ``cbpe`` (b): estimated (CBPE) vs realized AUC per cohort; ``scale`` (c):
the performance computation on 1M batch predictions and their outcomes, timed, with peak RSS,
run in a fresh process.

    uv run python bench/performance_sim.py --json-out bench-performance.json
    uv run python bench/performance_sim.py --part scale       # (c) only, ~1 min
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from attrition_mlops.monitoring import performance as perf

SCENARIOS = {  # (mu, true intercept, true slope); the model always says sigmoid(-2 + 1.2 x)
    "stable": (0.0, -2.0, 1.2),
    "covariate_shift": (0.7, -2.0, 1.2),
    "concept_shift": (0.0, -1.3, 0.6),
}


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def cohort(scenario: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(labels, model probabilities) of one simulated cohort."""
    mu, a, b = SCENARIOS[scenario]
    x = rng.normal(mu, 1.0, n)
    y = (rng.random(n) < _sigmoid(a + b * x)).astype(np.int64)
    return y, _sigmoid(-2.0 + 1.2 * x)


def true_auc(scenario: str, seed: int = 12345, n: int = 4_000_000) -> float:
    """Population AUC: P(model ranks a leaver above a stayer), by expected confusion counts."""
    mu, a, b = SCENARIOS[scenario]
    x = np.random.default_rng(seed).normal(mu, 1.0, n)
    truth, score = _sigmoid(a + b * x), x  # the model's probability is monotone in x
    order = np.argsort(score)
    pos, neg = truth[order], 1.0 - truth[order]
    below = np.cumsum(neg) - neg
    return float((pos * below).sum() / (pos.sum() * neg.sum()))  # continuous x: no ties


def wilson(hits: int, n: int, z: float = 1.96) -> list[float]:
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(float(centre - half), 4), round(float(centre + half), 4)]


def part_coverage(args: argparse.Namespace) -> dict:
    truth = true_auc("stable")
    out = {"true_auc": round(truth, 4), "n_boot": args.n_boot, "level": 0.95, "sizes": {}}
    for n, cohorts in ((300, args.cohorts), (1000, args.cohorts), (50_000, args.cohorts // 4)):
        rng = np.random.default_rng(n)
        started, hits, widths = time.perf_counter(), 0, []
        for _ in range(cohorts):
            y, p = cohort("stable", n, rng)
            _, low, high = perf.auc_with_ci(y, p, n_boot=args.n_boot, seed=int(rng.integers(1e9)))
            hits += low <= truth <= high
            widths.append(high - low)
        path = "rows" if n * args.n_boot <= perf.EXACT_BUDGET else "grouped counts"
        out["sizes"][n] = {
            "cohorts": cohorts,
            "bootstrap": path,
            "coverage": round(hits / cohorts, 4),
            "coverage_ci95": wilson(hits, cohorts),
            "mean_ci_width": round(np.mean(widths), 4),
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(
            f"(a) n={n:>6} {path:>14}: coverage {hits}/{cohorts} = {hits / cohorts:.3f} "
            f"{wilson(hits, cohorts)}, mean width {np.mean(widths):.4f}"
        )
    return out


def part_cbpe(args: argparse.Namespace) -> dict:
    out = {}
    for scenario in SCENARIOS:
        truth = true_auc(scenario)
        for n in (1000, 5000):
            rng = np.random.default_rng(hash((scenario, n)) % 2**32)
            errors, inside, estimates = [], 0, []
            for _ in range(args.cohorts // 2):
                y, p = cohort(scenario, n, rng)
                realized = perf.auc_with_ci(y, p, n_boot=1)[0]
                estimate = perf.estimate_auc(
                    p, n_samples=args.n_samples, seed=int(rng.integers(1e9))
                )
                errors.append(realized - estimate.estimated_auc)
                estimates.append(estimate.estimated_auc)
                inside += estimate.low <= realized <= estimate.high
            errors_ = np.abs(np.asarray(errors))
            key = f"{scenario} n={n}"
            out[key] = {
                "cohorts": len(errors),
                "true_auc": round(truth, 4),
                "mean_estimate": round(float(np.mean(estimates)), 4),
                "mean_error": round(float(np.mean(errors)), 4),
                "mean_abs_error": round(float(errors_.mean()), 4),
                "p95_abs_error": round(float(np.quantile(errors_, 0.95)), 4),
                "within_0.03": round(float((errors_ <= 0.03).mean()), 4),
                "realized_inside_estimate_ci": round(inside / len(errors), 4),
            }
            r = out[key]
            print(
                f"(b) {key:>22}: true {truth:.3f}, estimate {r['mean_estimate']:.3f}, "
                f"mean error {r['mean_error']:+.4f}, |error| mean {r['mean_abs_error']:.4f} "
                f"p95 {r['p95_abs_error']:.4f}, within ±0.03 {r['within_0.03']:.1%}, "
                f"realized inside CI {r['realized_inside_estimate_ci']:.1%}"
            )
    return out


def scale_inputs(n: int, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame, date]:
    """``n`` batch predictions over 12 monthly runs (10 % of employees scored twice in their
    month) and every outcome known on ``as_of`` (cohorts Oct–Dec not fully matured)."""
    rng = np.random.default_rng(seed)
    employees = int(n / 1.1)
    y, p = cohort("stable", employees, rng)
    month = rng.integers(0, 12, employees)
    day = pd.Timestamp("2026-01-01") + pd.to_timedelta(
        month * 30 + rng.integers(0, 28, employees), "D"
    )
    again = rng.random(employees) < (n - employees) / employees
    ids = np.arange(1, employees + 1)
    predictions = pd.DataFrame(
        {
            "EmployeeNumber": np.r_[ids, ids[again]],
            "probability": np.r_[p, p[again] * 0.9],
            "run_date": np.r_[day, day[again] + pd.Timedelta(days=1)].astype("M8[s]"),
            "model_version": np.where(np.r_[month, month[again]] < 6, "1", "2"),
        }
    )
    predictions["run_date"] = predictions["run_date"].dt.strftime("%Y-%m-%d")
    end = day + pd.DateOffset(months=12)
    leave_day = day + pd.to_timedelta(rng.integers(1, 365, employees), "D")
    observed = np.where(y == 1, leave_day, end)
    as_of = date(2027, 10, 1)
    known = observed <= pd.Timestamp(as_of)
    outcomes = pd.DataFrame(
        {
            "EmployeeNumber": ids[known].astype(str),
            "observed_on": pd.DatetimeIndex(observed[known]).strftime("%Y-%m-%d"),
            "left": np.where(y[known] == 1, "Yes", "No"),
            "horizon": "12m",
        }
    )
    return predictions, outcomes, as_of


def _peak_mb() -> int:
    """Peak RSS of this process so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def part_scale(args: argparse.Namespace) -> dict:
    from attrition_mlops.data.outcomes import read_outcomes, write_outcomes
    from attrition_mlops.monitoring.outcomes import join_batch_predictions

    predictions, raw, as_of = scale_inputs(args.rows)
    rss_inputs = _peak_mb()
    timings = {}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        delivery = write_outcomes(raw, Path(tmp), as_of, simulated=True)
        timings["validate_and_write_outcomes"] = time.perf_counter() - started
        peaks = {"validate_and_write_outcomes": _peak_mb()}
        del raw
        started = time.perf_counter()
        outcomes = read_outcomes(Path(tmp))
        joined = join_batch_predictions(predictions, outcomes, horizon="12m", as_of=as_of)
        timings["read_and_join"] = time.perf_counter() - started
        peaks["read_and_join"] = _peak_mb()
        step = time.perf_counter()
        realized = perf.realized_performance(joined)
        timings["realized"] = time.perf_counter() - step
        peaks["realized"] = _peak_mb()
        step = time.perf_counter()
        latest = joined[joined["cohort"] == joined["cohort"].max()]
        estimated = perf.estimated_performance(latest)
        timings["estimate_latest_cohort"] = time.perf_counter() - step
        timings["performance_job"] = time.perf_counter() - started
    result = {
        "predictions": len(predictions),
        "outcomes_valid": delivery.rows_valid,
        "joined_rows": len(joined),
        "cohorts": len(realized),
        "seconds": {k: round(v, 2) for k, v in timings.items()},
        "rss_mb_after_inputs": round(rss_inputs),
        "peak_rss_mb": _peak_mb(),
        "peak_rss_mb_by_step": peaks,
        "label_coverage": realized[["cohort", "label_coverage"]].values.tolist(),
        "estimate_latest": estimated.round(4).to_dict("records"),
    }
    print(
        f"(c) {result['predictions']:,} predictions + {delivery.rows_valid:,} outcomes: "
        f"performance job {timings['performance_job']:.1f} s (read+join "
        f"{timings['read_and_join']:.1f}, realized {timings['realized']:.1f}, estimate "
        f"{timings['estimate_latest_cohort']:.1f}); outcomes validated+written in "
        f"{timings['validate_and_write_outcomes']:.1f} s; peak RSS {result['peak_rss_mb']} MB "
        f"({result['rss_mb_after_inputs']} MB after the inputs; by step {peaks})"
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("all", "coverage", "cbpe", "scale"), default="all")
    parser.add_argument("--cohorts", type=int, default=400)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--n-samples", type=int, default=500)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:  # (c) in a fresh process, so its peak RSS is its own
        print(json.dumps(part_scale(args)), file=sys.stderr)
        return 0
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average": os.getloadavg(),
        }
    }
    if args.part in ("all", "scale"):
        child = subprocess.run(
            [sys.executable, __file__, "--child", "--rows", str(args.rows)],
            check=True,
            stderr=subprocess.PIPE,
            text=True,
        )
        report["scale"] = json.loads(child.stderr.strip().splitlines()[-1])
        s = report["scale"]
        print(
            f"(c) {s['predictions']:,} predictions: performance job "
            f"{s['seconds']['performance_job']} s, peak RSS {s['peak_rss_mb']} MB"
        )
    if args.part in ("all", "coverage"):
        report["coverage"] = part_coverage(args)
    if args.part in ("all", "cbpe"):
        report["cbpe"] = part_cbpe(args)
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
