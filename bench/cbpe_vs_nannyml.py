"""Our label-free AUC estimate (``monitoring.performance.estimate_auc``) vs NannyML's CBPE.

Same SIMULATED chunks for both (``bench/performance_sim.py``'s generator: calibrated probabilities,
a known truth): a labelled reference of 20,000 stable predictions, then analysis chunks of
``--chunk`` predictions: stable, covariate shift (still calibrated), concept shift (miscalibrated).

- ``nannyml``: ``CBPE(metrics=["roc_auc"], problem_type="classification_binary",
  chunk_size=…)`` fitted on the reference (it calibrates with isotonic regression when its
  check says the reference needs it) and run on the analysis chunks; its estimate and its
  confidence band (3 × its sampling-error estimate). NannyML runs in a throwaway venv that this
  script creates under ``.state/bench/nannyml-venv`` (``--nannyml-python`` to bring your own),
  with usage telemetry disabled (``NML_DISABLE_USAGE_LOGGING=1``).
- ``ours``: ``estimate_auc`` on each chunk's probabilities (no reference needed: the
  probabilities are taken as calibrated, as the model's calibration is checked on realized
  outcomes instead).

Reported per chunk: both estimates, their difference, the realized AUC of the chunk's SIMULATED
labels, and both intervals.

    uv run python bench/cbpe_vs_nannyml.py --json-out bench-cbpe.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: NannyML 0.13.1 imports statsmodels (its joy plots) without declaring it: installed alongside.
NANNYML_REQUIREMENTS = ("nannyml==0.13.1", "statsmodels==0.15.0")
PLAN = (("stable", 4), ("covariate_shift", 3), ("concept_shift", 3))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunk", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--workdir", type=Path, default=REPO / ".state" / "bench" / "cbpe")
    parser.add_argument("--nannyml-python", type=Path, help="a python with nannyml installed")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)  # the NannyML side
    return parser.parse_args(argv)


def make_data(args: argparse.Namespace) -> tuple[Path, Path, list[str]]:
    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(Path(__file__).parent))
    from performance_sim import cohort

    rng = np.random.default_rng(args.seed)
    y, p = cohort("stable", 20_000, rng)
    reference = pd.DataFrame({"p": p, "y": y, "y_pred": (p >= 0.5).astype(int)})
    frames, names = [], []
    for scenario, chunks in PLAN:
        for i in range(chunks):
            y, p = cohort(scenario, args.chunk, rng)
            frames.append(pd.DataFrame({"p": p, "y": y, "y_pred": (p >= 0.5).astype(int)}))
            names.append(f"{scenario}#{i}")
    args.workdir.mkdir(parents=True, exist_ok=True)
    paths = args.workdir / "reference.parquet", args.workdir / "analysis.parquet"
    reference.to_parquet(paths[0])
    pd.concat(frames, ignore_index=True).to_parquet(paths[1])
    return *paths, names


def worker(folder: Path, chunk: int) -> None:
    """Runs inside the NannyML venv: CBPE on the files, results as JSON on stdout."""
    import nannyml as nml
    import pandas as pd

    reference = pd.read_parquet(folder / "reference.parquet")
    analysis = pd.read_parquet(folder / "analysis.parquet")
    started = time.perf_counter()
    estimator = nml.CBPE(
        metrics=["roc_auc"],
        y_pred_proba="p",
        y_pred="y_pred",
        y_true="y",
        problem_type="classification_binary",
        chunk_size=chunk,
    )
    estimator.fit(reference)
    table = estimator.estimate(analysis.drop(columns="y")).to_df()
    seconds = time.perf_counter() - started
    roc = table[table[("chunk", "period")] == "analysis"]["roc_auc"]  # not the reference's
    rows = [
        {
            "value": float(r["value"]),
            "low": float(r["lower_confidence_boundary"]),
            "high": float(r["upper_confidence_boundary"]),
        }
        for _, r in roc.iterrows()
    ]
    print(
        json.dumps(
            {
                "chunks": rows,
                "seconds": seconds,
                "version": nml.__version__,
                "needs_calibration": bool(estimator.needs_calibration),
                "pandas": pd.__version__,
            }
        )
    )


def nannyml_python(args: argparse.Namespace) -> Path:
    if args.nannyml_python:
        return args.nannyml_python
    venv = args.workdir.parent / "nannyml-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        uv = [shutil.which("uv")] if shutil.which("uv") else [sys.executable, "-m", "uv"]
        subprocess.run([*uv, "venv", "-q", str(venv), "--python", sys.executable], check=True)
        subprocess.run(
            [*uv, "pip", "install", "-q", "--python", str(python), *NANNYML_REQUIREMENTS],
            check=True,
        )
    return python


def ours(analysis: Path, chunk: int) -> dict:
    import pandas as pd

    from attrition_mlops.monitoring.performance import auc_with_ci, estimate_auc

    frame = pd.read_parquet(analysis)
    started = time.perf_counter()
    rows = []
    for start in range(0, len(frame), chunk):
        part = frame.iloc[start : start + chunk]
        estimate = estimate_auc(part["p"].to_numpy())
        realized = auc_with_ci(part["y"].to_numpy(), part["p"].to_numpy(), n_boot=1)[0]
        rows.append(
            {
                "value": estimate.estimated_auc,
                "low": estimate.low,
                "high": estimate.high,
                "realized": realized,
            }
        )
    return {"chunks": rows, "seconds": time.perf_counter() - started}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker(args.worker, args.chunk)
        return 0
    reference, analysis, names = make_data(args)
    python = nannyml_python(args)
    env = {**os.environ, "NML_DISABLE_USAGE_LOGGING": "1"}
    done = subprocess.run(
        [str(python), __file__, "--worker", str(args.workdir), "--chunk", str(args.chunk)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=args.workdir,
    )
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    mine = ours(analysis, args.chunk)
    chunks = []
    print(
        f"NannyML {theirs['version']} (pandas {theirs['pandas']}), reference needs "
        f"calibration: {theirs['needs_calibration']}; chunks of {args.chunk}"
    )
    print(
        f"{'chunk':20} {'realized':>8} {'ours':>7} {'nannyml':>7} {'diff':>8}  ours CI"
        f"           nannyml band"
    )
    for name, a, b in zip(names, mine["chunks"], theirs["chunks"], strict=True):
        chunks.append(
            {
                "chunk": name,
                "realized": a["realized"],
                "ours": a,
                "nannyml": b,
                "difference": a["value"] - b["value"],
            }
        )
        print(
            f"{name:20} {a['realized']:8.4f} {a['value']:7.4f} {b['value']:7.4f} "
            f"{a['value'] - b['value']:+8.4f}  [{a['low']:.3f}, {a['high']:.3f}]  "
            f"[{b['low']:.3f}, {b['high']:.3f}]"
        )
    report = {
        "chunk": args.chunk,
        "nannyml": {k: v for k, v in theirs.items() if k != "chunks"},
        "ours_seconds": mine["seconds"],
        "chunks": chunks,
        "max_abs_difference": max(abs(c["difference"]) for c in chunks),
    }
    print(
        f"largest |ours − nannyml| {report['max_abs_difference']:.4f}; time ours "
        f"{mine['seconds']:.2f} s, nannyml {theirs['seconds']:.2f} s (fit + estimate)"
    )
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
