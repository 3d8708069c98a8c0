"""Benchmark: how long Airflow's DagBag takes to parse each DAG file of this project.

Each repeat is a fresh interpreter, as the DAG processor's child is: Airflow is imported first
(the processor has it loaded already, so it is not counted), then the file is parsed once cold
(the project's modules imported for the first time) and three times warm (the project's modules
unloaded in between, third-party modules still cached; the fastest counts). The heavy modules
(pandas, scikit-learn, MLflow, ...) loaded by the cold parse are listed: there should be none.
The tests check that import hygiene; this script measures the time, which no test asserts.

    uv run python bench/dag_parse.py [--repeats 5] [--json-out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from attrition_mlops.orchestration.local_airflow import airflow_env

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "sklearn", "scipy", "mlflow", "numpy", "pyarrow", "matplotlib", "optuna")

_PARSE = """
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
path, heavy_names = sys.argv[1], sys.argv[2].split(",")
times = []
for _ in range(4):
    for name in [m for m in sys.modules if m.startswith(("attrition_mlops", "unusual_prefix"))]:
        del sys.modules[name]
    start = time.perf_counter()
    bag = DagBag(dag_folder=path)
    times.append(time.perf_counter() - start)
    if len(times) == 1:
        heavy = sorted(m for m in heavy_names if m in sys.modules)
print(json.dumps({"cold": times[0], "warm": min(times[1:]), "heavy": heavy,
                  "errors": len(bag.import_errors), "dags": sorted(bag.dag_ids)}))
"""


def parse_once(path: Path, env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _PARSE, str(path), ",".join(HEAVY)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh interpreters per DAG file")
    parser.add_argument("--json-out", type=Path, help="also write the results as JSON")
    args = parser.parse_args(argv)

    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    results = {}
    with tempfile.TemporaryDirectory(prefix="dag-parse-bench-") as state:
        env = airflow_env(Path(state), base=clean)  # a throwaway Airflow home, no metadata DB
        for path in sorted((REPO / "dags").glob("*.py")):
            runs = [parse_once(path, env) for _ in range(args.repeats)]
            results[path.stem] = {
                "cold_ms": [round(r["cold"] * 1000, 1) for r in runs],
                "warm_ms": [round(r["warm"] * 1000, 1) for r in runs],
                "heavy": runs[0]["heavy"],
                "import_errors": runs[0]["errors"],
            }

    print(
        f"{platform.python_version()} on {platform.machine()}, nproc={os.cpu_count()}, "
        f"{args.repeats} fresh interpreters per file; median (min-max) in ms"
    )
    print(f"{'DAG file':<28} {'cold parse':>22} {'warm parse':>22}  heavy modules")
    for stem, r in results.items():
        cells = [
            f"{statistics.median(r[k]):.0f} ({min(r[k]):.0f}-{max(r[k]):.0f})"
            for k in ("cold_ms", "warm_ms")
        ]
        heavy = ", ".join(r["heavy"]) or "none"
        print(f"{stem:<28} {cells[0]:>22} {cells[1]:>22}  {heavy}")
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2) + "\n")
    failed = any(r["heavy"] or r["import_errors"] for r in results.values())
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
