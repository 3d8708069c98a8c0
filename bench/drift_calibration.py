"""Calibration study of the nightly drift check: false-alarm rate on quiet nights, power on drift.

Reference: the profile of the 80 % training part (1,176 rows; stratified on Attrition, seed 42)
of the shipped IBM HR data. Each simulated night is one window of ``--n-records`` SIMULATED
records (attrition_mlops.simulate):

- quiet night: ``scenario="none"`` traffic resampled from all 1,470 real rows, the reference
  population (resampling plus small symmetric noise on the four pay/rate fields);
- exact-null quiet night: the same traffic, but tested against a reference profile that is
  itself a fresh 1,176-row resample of the same 1,470 rows, so both samples are i.i.d. draws
  from one distribution, which is exactly the null hypothesis the tests assume;
- drift night: quiet traffic with ``--feature`` shifted by ``--shift-sd`` reference SDs.

Four decision rules are scored on the same windows: the check with Benjamini–Hochberg (the
default), with Bonferroni, BH without the effect-size gate (diagnostic), and the proof of
concept's rule (any feature with raw p < 0.05). Rates come with 95 % Clopper–Pearson intervals.

    uv run python bench/drift_calibration.py [--nights 500] [--json-out drift-calibration.json]
    uv run python bench/drift_calibration.py --full   # 2,000 nights, ~4x longer
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import scipy
from scipy import stats
from sklearn.model_selection import train_test_split

from attrition_mlops.data import contract
from attrition_mlops.data.dataset import load_snapshot
from attrition_mlops.model.profile import build_reference_profile
from attrition_mlops.monitoring.drift import (
    DriftSettings,
    FeatureDrift,
    compare_features,
    decide_drift,
    uncorrected_drift,
)
from attrition_mlops.simulate import DEFAULT_NOISE, simulate_traffic

KINDS = ("quiet", "exact_null", "drift")
#: Near-continuous (MonthlyIncome), integer with many levels (Age), and heavily tied ones.
SWEEP_FEATURES = ("MonthlyIncome", "Age", "DistanceFromHome", "NumCompaniesWorked")
SWEEP_SHIFTS = (0.1, 0.15, 0.25)
Rule = Callable[[tuple[FeatureDrift, ...]], tuple[bool, set[str]]]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    numeric = [f.name for f in contract.FEATURES if f.kind == "numeric" and f.role == "model"]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nights", type=int, default=500, help="nights per kind (default 500)")
    parser.add_argument("--full", action="store_true", help="bigger run: 2,000 nights per kind")
    parser.add_argument("--n-records", type=int, default=1000)
    parser.add_argument("--shift-sd", type=float, default=0.25)
    parser.add_argument("--feature", default="MonthlyIncome", choices=numeric)
    parser.add_argument("--noise", type=float, default=DEFAULT_NOISE)
    parser.add_argument("--seed", type=int, default=20240607)
    parser.add_argument("--json-out", type=Path)
    parser.add_argument(
        "--sweep",
        action="store_true",
        help=f"instead: power of the default check over {', '.join(SWEEP_FEATURES)} "
        f"x shifts {', '.join(map(str, SWEEP_SHIFTS))} SD (drift nights only)",
    )
    args = parser.parse_args(argv)
    if args.full:
        args.nights = max(args.nights, 2000)
    return args


def decision_rules(n_records: int, n_reference: int) -> dict[str, Rule]:
    bh, bonferroni = DriftSettings(correction="bh"), DriftSettings(correction="bonferroni")

    def checked(settings: DriftSettings, gate: bool) -> Rule:
        def rule(features: tuple[FeatureDrift, ...]) -> tuple[bool, set[str]]:
            result = decide_drift(
                features, n_current=n_records, n_reference=n_reference, settings=settings
            )
            flagged = {f.name for f in result.features if (f.drifted if gate else f.significant)}
            return bool(flagged), flagged

        return rule

    def uncorrected(features: tuple[FeatureDrift, ...]) -> tuple[bool, set[str]]:
        result = decide_drift(features, n_current=n_records, n_reference=n_reference, settings=bh)
        return uncorrected_drift(result), {f.name for f in features if f.p_value < 0.05}

    return {
        "(a) check, Benjamini–Hochberg (default)": checked(bh, gate=True),
        "(b) check, Bonferroni": checked(bonferroni, gate=True),
        "(a′) BH without effect gate (diagnostic)": checked(bh, gate=False),
        "(c) uncorrected p < 0.05 per feature (PoC)": uncorrected,
    }


def run_study(real: pd.DataFrame, profile: dict, args: argparse.Namespace) -> dict:
    settings = DriftSettings()
    rules = decision_rules(args.n_records, profile["n_rows"])
    seeds = np.random.SeedSequence(args.seed).generate_state(3 * args.nights).reshape(3, -1)
    reference_sd = profile["features"][args.feature]["std"]
    alarms = {kind: Counter() for kind in KINDS}
    attributed: Counter = Counter()
    flagged_quiet: Counter = Counter()
    for night in range(args.nights):
        quiet_seed, null_seed, drift_seed = (int(s) for s in seeds[:, night])
        quiet = simulate_traffic(real, args.n_records, seed=quiet_seed, noise=args.noise)
        drift = simulate_traffic(
            real,
            args.n_records,
            scenario="mean_shift",
            intensity=args.shift_sd,
            feature=args.feature,
            reference_sd=reference_sd,
            seed=drift_seed,
            noise=args.noise,
        )
        # Same generator for both samples (the noise included), so the null holds exactly.
        null_reference = simulate_traffic(real, profile["n_rows"], seed=null_seed, noise=args.noise)
        windows = {
            "quiet": (profile, quiet),
            "exact_null": (build_reference_profile(null_reference, source_sha256="sim"), quiet),
            "drift": (profile, drift),
        }
        for kind, (reference, window) in windows.items():
            features = compare_features(reference, window, settings)
            for name, rule in rules.items():
                alarm, flagged = rule(features)
                alarms[kind][name] += alarm
                attributed[name] += kind == "drift" and args.feature in flagged
                if kind == "quiet" and name.startswith("(c)"):
                    flagged_quiet.update(flagged)
    return {"alarms": alarms, "attributed": attributed, "flagged_quiet": flagged_quiet}


def run_sweep(real: pd.DataFrame, profile: dict, args: argparse.Namespace) -> dict:
    """Power of the default check (BH + effect gate) per feature and shift size."""
    settings = DriftSettings()
    seeds = np.random.SeedSequence(args.seed).generate_state(args.nights)
    power = {}
    for feature in SWEEP_FEATURES:
        sd = profile["features"][feature]["std"]
        for shift in SWEEP_SHIFTS:
            hits = 0
            for seed in seeds:
                window = simulate_traffic(
                    real,
                    args.n_records,
                    scenario="mean_shift",
                    intensity=shift,
                    feature=feature,
                    reference_sd=sd,
                    seed=int(seed),
                    noise=args.noise,
                )
                features = compare_features(profile, window, settings)
                result = decide_drift(
                    features,
                    n_current=len(window),
                    n_reference=profile["n_rows"],
                    settings=settings,
                )
                hits += result.drift_confirmed
            power[f"{feature} +{shift} SD"] = rate(hits, args.nights)
    return power


def rate(k: int, n: int) -> dict:
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    return {"k": k, "n": n, "rate": k / n, "ci95": [ci.low, ci.high]}


def summarise(tallies: dict, nights: int) -> dict:
    rows = {}
    for name in tallies["alarms"]["quiet"]:
        rows[name] = {
            "false_alarm": rate(tallies["alarms"]["quiet"][name], nights),
            "false_alarm_exact_null": rate(tallies["alarms"]["exact_null"][name], nights),
            "power": rate(tallies["alarms"]["drift"][name], nights),
            "shifted_feature_flagged": rate(tallies["attributed"][name], nights),
        }
    return rows


def _cell(entry: dict) -> str:
    low, high = entry["ci95"]
    return f"{entry['rate']:.1%} [{low:.1%}, {high:.1%}] ({entry['k']}/{entry['n']})"


def markdown_table(rows: dict) -> str:
    lines = [
        "| rule | false alarms, quiet | false alarms, exact null | power | shifted feature "
        "flagged |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in rows.items():
        cells = (row[key] for key in ("false_alarm", "false_alarm_exact_null", "power"))
        flagged = _cell(row["shifted_feature_flagged"])
        lines.append(f"| {name} | " + " | ".join(map(_cell, cells)) + f" | {flagged} |")
    return "\n".join(lines)


def machine() -> dict:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    snapshot = load_snapshot()
    real = snapshot.frame
    train, _ = train_test_split(real, test_size=0.2, random_state=42, stratify=real["Attrition"])
    profile = build_reference_profile(train, source_sha256=snapshot.sha256)
    if args.sweep:
        return _report_sweep(run_sweep(real, profile, args), args, started)
    tallies = run_study(real, profile, args)
    rows = summarise(tallies, args.nights)
    elapsed = time.perf_counter() - started
    print(
        f"{args.nights} nights per kind, {args.n_records} SIMULATED records per night, "
        f"shift {args.shift_sd} SD of {args.feature}, noise ±{args.noise:.0%}, seed {args.seed}, "
        f"reference {profile['n_rows']} rows; {elapsed:.0f} s\n"
    )
    print(markdown_table(rows))
    top = ", ".join(f"{k} {v}" for k, v in tallies["flagged_quiet"].most_common(5))
    print(f"\nfeatures most often at raw p < 0.05 on quiet nights: {top}")
    if args.json_out:
        payload = {
            "config": _config(args),
            "machine": machine(),
            "elapsed_s": elapsed,
            "results": rows,
            "flagged_quiet_uncorrected": dict(tallies["flagged_quiet"]),
        }
        args.json_out.write_text(json.dumps(payload, indent=2))
    return 0


def _report_sweep(power: dict, args: argparse.Namespace, started: float) -> int:
    elapsed = time.perf_counter() - started
    print(
        f"power of the default check (BH + effect gate), {args.nights} drift nights per cell, "
        f"{args.n_records} SIMULATED records per night, seed {args.seed}; {elapsed:.0f} s\n"
    )
    print("| shifted feature | power [95% CI] |\n|---|---:|")
    for name, entry in power.items():
        print(f"| {name} | {_cell(entry)} |")
    if args.json_out:
        payload = {"config": _config(args), "machine": machine(), "elapsed_s": elapsed}
        args.json_out.write_text(json.dumps(payload | {"power": power}, indent=2))
    return 0


def _config(args: argparse.Namespace) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}


if __name__ == "__main__":
    raise SystemExit(main())
