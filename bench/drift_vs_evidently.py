"""The nightly drift job vs Evidently's ``DataDriftPreset``: 1M logged inference records.

Input: SIMULATED traffic (``attrition_mlops.simulate``: real IBM HR rows resampled with noise,
changed by a named drift scenario), written as the API's local inference-log export with
``simulate.write_export_logs`` (``date=2026-11-20/simulated-*.jsonl``). One quiet night
(``none``) and one drifted night (``young_hiring_wave``) by default. Reference: the 80 %
training part of the real data (1,176 rows, stratified, seed 42, as in the calibration study),
as the job's reference profile (JSON, every value kept) and, for Evidently, the same rows.

Each side runs in its own process, one after the other, from the same log files:

- ``ours``: the drift job's code path, ``window.read_window`` (validates every record
  against the schema) then ``window.check_window`` (per-version ``check_drift`` plus the
  JSON/HTML report). The only difference from ``jobs/drift.py`` is where the profile comes
  from: a JSON file here, the MLflow registry there. ``check_drift`` and ``write_report`` are
  timed from inside ``check_window`` by wrapping them.
- ``evidently``: a plain reader (``json.loads`` per line, no validation) into a DataFrame of the
  30 model features, then ``Report([DataDriftPreset()], include_tests=True).run(current,
  reference)`` and ``save_html``. Evidently does not install next to pandas 3 (0.7.23, the
  newest, fails at import), so it runs in a throwaway venv with pandas 2.3.3 that this script
  creates under ``.state/bench/`` (``--evidently-python`` to bring your own).

Both environments' packages are compiled to bytecode before anything is timed, as in the
images (``UV_COMPILE_BYTECODE=1``), so neither side pays for compiling its imports.

The parent measures each process's wall time and peak RSS (``os.wait4``), and compares the
per-feature decisions, explaining each disagreement from the numbers both sides report.

    uv run python bench/drift_vs_evidently.py --json-out bench-drift.json
    uv run python bench/drift_vs_evidently.py --records 100000 --repeats 1   # quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAY = "2026-11-20"
MODEL_VERSION = "1"
EVIDENTLY_REQUIREMENTS = ("evidently==0.7.23", "pandas==2.3.3", "pyarrow")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument(
        "--scenarios", default="none,young_hiring_wave", help="comma-separated NAME[:INTENSITY]"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261120)
    parser.add_argument("--records-per-request", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=REPO / ".state" / "bench" / "drift")
    parser.add_argument("--evidently-python", type=Path, help="a python with Evidently")
    parser.add_argument("--json-out", type=Path)
    # internal: one measured side, run by the parent in a fresh process
    parser.add_argument("--worker", choices=("ours", "evidently"), help=argparse.SUPPRESS)
    parser.add_argument("--logs", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--reference", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --- the two measured sides (each in its own process) -----------------------------------------


def worker_ours(args: argparse.Namespace, started: float) -> dict:
    from datetime import date

    from attrition_mlops.monitoring import window
    from attrition_mlops.settings import DriftSettings

    phases = {"import": time.perf_counter() - started}
    spent = {"check_drift": 0.0, "write_report": 0.0}

    def timed(name, function):
        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return function(*a, **k)
            finally:
                spent[name] += time.perf_counter() - t

        return wrapper

    window.check_drift = timed("check_drift", window.check_drift)
    window.write_report = timed("write_report", window.write_report)
    t = time.perf_counter()
    day, rejected, duplicates = date.fromisoformat(DAY), [], []
    frame = window.read_window(args.logs, day, day, "local", rejected, duplicates)
    phases["read"] = time.perf_counter() - t
    profile = json.loads(args.reference.read_text())
    t = time.perf_counter()
    summary = window.check_window(
        frame,
        lambda v: profile,
        DriftSettings(),
        args.out,
        rejected=rejected,
        duplicates=duplicates,
    )
    phases["check_window"] = time.perf_counter() - t
    phases |= {"stats": spent["check_drift"], "report": spent["write_report"]}
    result = json.loads(Path(summary["versions"][MODEL_VERSION]["reports"]["summary"]).read_text())
    return {"phases": phases, "n_records": len(frame), "rejected": len(rejected), "result": result}


def worker_evidently(args: argparse.Namespace, started: float) -> dict:
    import evidently
    import numpy
    import pandas as pd
    import scipy
    from evidently import Report
    from evidently.presets import DataDriftPreset

    phases = {"import": time.perf_counter() - started}
    t = time.perf_counter()
    reference = pd.read_parquet(args.reference)
    rows: list[dict] = []
    for path in sorted(args.logs.glob(f"date={DAY}/*.jsonl")):
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                rows.extend(json.loads(line)["inputs"])
    current = pd.DataFrame(rows, columns=list(reference.columns))
    del rows
    phases["read"] = time.perf_counter() - t
    t = time.perf_counter()
    snapshot = Report([DataDriftPreset()], include_tests=True).run(current, reference)
    phases["stats"] = time.perf_counter() - t
    t = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(args.out / "evidently_report.html"))
    result = snapshot.dict()
    phases["report"] = time.perf_counter() - t
    versions = {
        "evidently": evidently.__version__,
        "pandas": pd.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
    }
    return {"phases": phases, "n_records": len(current), "versions": versions, "result": result}


# --- the parent: data, processes, comparison ---------------------------------------------------


def prepare(args: argparse.Namespace) -> dict[str, Path]:
    """Reference profile + rows, and one log folder per scenario (reused when complete)."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    from attrition_mlops.data import contract
    from attrition_mlops.data.dataset import load_snapshot
    from attrition_mlops.model.profile import build_reference_profile
    from attrition_mlops.simulate import simulate_traffic, write_export_logs

    args.workdir.mkdir(parents=True, exist_ok=True)
    snapshot = load_snapshot()
    real = snapshot.frame
    train, _ = train_test_split(real, test_size=0.2, random_state=42, stratify=real["Attrition"])
    paths = {"profile": args.workdir / "reference_profile.json"}
    profile = build_reference_profile(train, source_sha256=snapshot.sha256)
    paths["profile"].write_text(json.dumps(profile))
    paths["reference"] = args.workdir / "reference.parquet"
    train[list(contract.MODEL_FEATURES)].reset_index(drop=True).to_parquet(paths["reference"])
    for i, spec in enumerate(args.scenarios.split(",")):
        scenario, _, intensity = spec.partition(":")
        seed = args.seed + i
        logs = args.workdir / f"logs-{spec}-{args.records}-{args.records_per_request}-seed{seed}"
        done = logs / "COMPLETE"
        if not done.exists():
            shutil.rmtree(logs, ignore_errors=True)
            t = time.perf_counter()
            frame = simulate_traffic(
                real, args.records, scenario=scenario, seed=seed, intensity=float(intensity or 1.0)
            )
            write_export_logs(
                frame,
                logs,
                pd.Timestamp(DAY).date(),
                model_name="employee_attrition",
                model_version=MODEL_VERSION,
                per_request=args.records_per_request,
            )
            done.write_text(json.dumps(frame.attrs["simulation"]))
            print(
                f"wrote {args.records:,} SIMULATED records ({spec}) to {logs} "
                f"in {time.perf_counter() - t:.0f} s",
                flush=True,
            )
        paths[spec] = logs
    return paths


def evidently_python(args: argparse.Namespace) -> Path:
    if args.evidently_python:
        return args.evidently_python
    venv = args.workdir.parent / "evidently-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        uv = [shutil.which("uv")] if shutil.which("uv") else [sys.executable, "-m", "uv"]
        subprocess.run([*uv, "venv", "-q", str(venv), "--python", sys.executable], check=True)
        subprocess.run(
            [*uv, "pip", "install", "-q", "--python", str(python), *EVIDENTLY_REQUIREMENTS],
            check=True,
        )
    return python


def compile_bytecode(python: Path) -> None:
    """Compile each side's installed packages (and this project's code) to bytecode first.

    The images the job runs in are built with ``UV_COMPILE_BYTECODE=1``; a venv used where
    ``PYTHONDONTWRITEBYTECODE`` is set never caches bytecode and pays ~2 s more per start
    (measured: our imports 3.4-4.0 s instead of 1.1-1.6 s; Evidently's 8 s). Quick once done.
    """
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    paths = [site]
    if python == Path(sys.executable):
        paths.append(str(REPO / "src"))
    subprocess.run(
        [str(python), "-m", "compileall", "-q", "-j", "0", *paths],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def run_side(python: Path, side: str, logs: Path, reference: Path, out: Path) -> dict:
    """One side in a fresh process: its own report, wall time and peak RSS (``wait4``)."""
    result_file = out / f"{side}.json"
    out.mkdir(parents=True, exist_ok=True)
    command = [
        str(python),
        str(Path(__file__).resolve()),
        "--worker",
        side,
        "--logs",
        str(logs),
        "--reference",
        str(reference),
        "--out",
        str(out),
    ]
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    with open(result_file, "w") as handle:
        process = subprocess.Popen(command, stdout=handle, cwd=REPO)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{side} worker failed (exit {os.waitstatus_to_exitcode(status)})")
    report = json.loads(result_file.read_text())
    return report | {
        "wall_seconds": wall,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }


def compare_decisions(ours: dict, evidently: dict) -> dict:
    """Per-feature verdicts side by side; each disagreement explained from both sides' numbers."""
    mine = {f["name"]: f for f in ours["features"]}
    theirs: dict[str, dict] = {}
    for metric in evidently["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith("ValueDrift"):
            theirs[config["column"]] = {
                "method": config["method"],
                "threshold": config["threshold"],
                "score": metric["value"],
            }
        elif config.get("type", "").endswith("DriftedColumnsCount"):
            share = metric["value"]["share"]
    for test in evidently["tests"]:
        column = test.get("metric_config", {}).get("params", {}).get("column")
        if column in theirs:
            theirs[column]["drifted"] = test["status"] == "FAIL"
    rows, disagreements = [], []
    for name, f in mine.items():
        e = theirs[name]
        row = {
            "feature": name,
            "ours_test": f["test"],
            "p_adjusted": f["p_adjusted"],
            "psi": f["psi"],
            "wasserstein_sd": f["wasserstein_sd"],
            "ours": f["drifted"],
            "evidently_method": e["method"],
            "evidently_score": e["score"],
            "evidently_threshold": e["threshold"],
            "evidently": e["drifted"],
        }
        rows.append(row)
        if row["ours"] != row["evidently"]:
            disagreements.append({"feature": name, "why": explain(f, e, ours)})
    return {
        "features": rows,
        "agree": len(rows) - len(disagreements),
        "n_features": len(rows),
        "disagreements": disagreements,
        "ours_drift_confirmed": ours["drift_confirmed"],
        "ours_drifted": list(ours["drifted_features"]),
        "evidently_drifted": sorted(n for n, e in theirs.items() if e["drifted"]),
        "evidently_dataset_drift": share >= 0.5,
        "evidently_drifted_share": share,
    }


def explain(f: dict, e: dict, ours: dict) -> str:
    """Which rule decided on each side, in numbers."""
    gate = ours["thresholds"]
    if not f["significant"]:
        mine = (
            f"ours: {f['test']} not significant after {ours['correction']} "
            f"(p_adj {f['p_adjusted']:.3g})"
        )
    else:
        effects = f"PSI {f['psi']:.3f} (gate {gate['min_psi']})"
        if f["wasserstein_sd"] is not None:
            effects += f", W {f['wasserstein_sd']:.3f} SD (gate {gate['min_wasserstein_sd']})"
        verdict = "clears" if f["drifted"] else "misses"
        mine = (
            f"ours: {f['test']} p_adj {f['p_adjusted']:.3g}, effect {verdict} the gate: {effects}"
        )
    op = ">=" if e["drifted"] else "<"
    theirs = f"Evidently: {e['method']} {e['score']:.3f} {op} {e['threshold']}"
    return f"{mine}; {theirs}"


def _verdicts(run: dict) -> tuple:
    # Scores may differ in the last bits between processes: Evidently collects string levels in
    # a set, so its JS sums run in a hash-seed-dependent order (measured: ~1e-16). Verdicts
    # must not differ.
    d = run["decisions"]
    per_feature = tuple((f["feature"], f["ours"], f["evidently"]) for f in d["features"])
    return per_feature, d["ours_drift_confirmed"], d["evidently_dataset_drift"]


def summarise(runs: list[dict]) -> dict:
    def span(values: list[float]) -> list[float]:
        return [round(min(values), 2), round(max(values), 2)]

    out: dict = {}
    for side in ("ours", "evidently"):
        mine = [r[side] for r in runs]
        out[side] = {
            "wall_seconds": span([r["wall_seconds"] for r in mine]),
            "peak_rss_mib": span([r["peak_rss_mib"] for r in mine]),
            **{f"{k}_seconds": span([r["phases"][k] for r in mine]) for k in mine[0]["phases"]},
        }
    ratio = [r["evidently"]["wall_seconds"] / r["ours"]["wall_seconds"] for r in runs]
    stats = [r["evidently"]["phases"]["stats"] / r["ours"]["phases"]["stats"] for r in runs]
    out["speedup_end_to_end"] = span(ratio)
    out["speedup_statistics"] = span(stats)
    out["load_average"] = span(
        [
            x
            for r in runs
            for s in ("ours", "evidently")
            for x in (r[s]["load_before"], r[s]["load_after"])
        ]
    )
    return out


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    args = parse_args(argv)
    if args.worker:
        work = worker_ours if args.worker == "ours" else worker_evidently
        print(json.dumps(work(args, started), default=str))
        return 0
    paths = prepare(args)
    ev_python = evidently_python(args)
    for python in (Path(sys.executable), ev_python):
        compile_bytecode(python)
    report: dict = {
        "records": args.records,
        "records_per_request": args.records_per_request,
        "reference_rows": 1176,
        "machine": machine(),
        "scenarios": {},
    }
    for scenario in args.scenarios.split(","):
        runs = []
        for repeat in range(args.repeats):
            out = args.workdir / "runs" / f"{scenario}-{repeat}"
            sides = ("ours", "evidently") if repeat % 2 == 0 else ("evidently", "ours")
            run = {}
            for side in sides:  # alternate the order, so a load trend hits both sides alike
                python = Path(sys.executable) if side == "ours" else ev_python
                reference = paths["profile"] if side == "ours" else paths["reference"]
                run[side] = run_side(python, side, paths[scenario], reference, out)
                phases = ", ".join(f"{k} {v:.1f}" for k, v in run[side]["phases"].items())
                print(
                    f"{scenario} #{repeat + 1} {side}: {run[side]['wall_seconds']:.1f} s wall, "
                    f"{run[side]['peak_rss_mib']:.0f} MiB ({phases})",
                    flush=True,
                )
            run["decisions"] = compare_decisions(run["ours"]["result"], run["evidently"]["result"])
            runs.append(run)
        decisions = runs[0]["decisions"]
        report["scenarios"][scenario] = {
            "summary": summarise(runs),
            "decisions": decisions,
            "verdicts_identical_across_repeats": all(
                _verdicts(r) == _verdicts(runs[0]) for r in runs
            ),
            "max_score_change_across_repeats": max(
                abs(a[k] - b[k])
                for r in runs
                for a, b in zip(r["decisions"]["features"], decisions["features"], strict=True)
                for k in ("evidently_score", "psi")
            ),
            "versions": runs[0]["evidently"]["versions"],
            "runs": [
                {s: {k: v for k, v in r[s].items() if k != "result"} for s in ("ours", "evidently")}
                for r in runs
            ],
        }
        print_scenario(scenario, report["scenarios"][scenario])
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=1, default=str))
    return 0


def machine() -> dict:
    import numpy
    import pandas
    import scipy

    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "ours": {
            "pandas": pandas.__version__,
            "numpy": numpy.__version__,
            "scipy": scipy.__version__,
        },
    }


def print_scenario(scenario: str, result: dict) -> None:
    s, d = result["summary"], result["decisions"]
    print(
        f"\n== {scenario}: {d['agree']}/{d['n_features']} feature decisions agree; "
        f"ours drift_confirmed={d['ours_drift_confirmed']} {d['ours_drifted']}; Evidently "
        f"dataset drift={d['evidently_dataset_drift']} "
        f"(share {d['evidently_drifted_share']:.2f}) "
        f"{d['evidently_drifted']}"
    )
    for side in ("ours", "evidently"):
        print(f"  {side:9} " + ", ".join(f"{k} {v[0]}–{v[1]}" for k, v in s[side].items()))
    print(
        f"  speedup end to end {s['speedup_end_to_end']}, statistics {s['speedup_statistics']}, "
        f"load average {s['load_average']}"
    )
    for item in d["disagreements"]:
        print(f"  differ on {item['feature']}: {item['why']}")


if __name__ == "__main__":
    raise SystemExit(main())
