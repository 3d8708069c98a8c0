"""Batch scoring benchmark: the scoring job vs raw predict_proba vs read-everything-then-predict.

Generated input (SIMULATED rows: real IBM HR rows resampled, fresh EmployeeNumbers) of 1M and
10M rows as Parquet. For each size, in separate processes (so peak RSS is each method's own):
- ``job``: ``attrition_mlops.score.score_snapshot`` (stream, validate, score, outliers, write);
- ``naive``: ``pd.read_parquet`` of the whole input, then ``predictor.predict`` and one write;
- ``raw``: the model's ``predict_proba`` alone on in-memory typed frames of ``--batch-rows`` rows,
  the limit a scorer could reach (no I/O, no validation, no outlier score).
Reports rows/s and peak RSS (``resource.getrusage``, max resident set of the child).

    uv run python bench/batch_scoring.py --sizes 1000000,10000000 --json-out bench-batch.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
from datetime import date
from pathlib import Path
import joblib, pandas as pd, pyarrow.parquet as pq
method, source, out, model, batch_rows = sys.argv[1:6]
batch_rows = int(batch_rows)
predictor = joblib.load(model)
start = time.perf_counter()
if method == "job":
    from attrition_mlops.score import score_snapshot
    r = score_snapshot(Path(source), Path(out), date(2026, 1, 1), predictor,
                       model_name="bench", model_version="1", batch_rows=batch_rows,
                       progress=False, max_reject_fraction=0.0)
    rows = r.rows_scored
elif method == "naive":
    frame = pd.read_parquet(source)
    result = predictor.predict(frame)
    result.insert(0, "EmployeeNumber", frame["EmployeeNumber"].to_numpy())
    result.to_parquet(Path(out) / "naive.parquet")
    rows = len(result)
else:
    from attrition_mlops import contract
    rows = 0
    elapsed = 0.0
    for batch in pq.ParquetFile(source).iter_batches(batch_size=batch_rows):
        frame = batch.to_pandas()[list(contract.INPUT_COLUMNS)]
        t = time.perf_counter()
        predictor.predict_proba(frame)
        elapsed += time.perf_counter() - t
        rows += len(frame)
    start = time.perf_counter() - elapsed
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"method": method, "rows": rows, "seconds": seconds, "peak_rss_mib": rss}))
"""


def make_predictor(path: Path) -> None:
    import joblib

    from attrition_mlops import contract
    from attrition_mlops.dataset import load_snapshot
    from attrition_mlops.features import build_classifier
    from attrition_mlops.model import AttritionPredictor
    from attrition_mlops.outliers import calibrate_outlier_detector

    frame = load_snapshot().frame
    X, y = frame[list(contract.INPUT_COLUMNS)], (frame[contract.LABEL] == "Yes").astype(int)
    classifier = build_classifier("logistic_regression", {"C": 0.5}, seed=0).fit(X, y)
    joblib.dump(AttritionPredictor(classifier, calibrate_outlier_detector(X, fpr=0.01), 0.5), path)


def make_input(rows: int, path: Path, chunk: int = 500_000) -> None:
    """SIMULATED input: real rows resampled with replacement, fresh IDs, written in chunks."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from attrition_mlops import contract
    from attrition_mlops.dataset import load_snapshot

    base = load_snapshot().frame[list(contract.INPUT_COLUMNS)]
    rng = np.random.default_rng(0)
    writer = None
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        part = base.iloc[rng.integers(0, len(base), n)].reset_index(drop=True)
        part["EmployeeNumber"] = np.arange(start, start + n) + 100_000
        table = pa.Table.from_pandas(part, preserve_index=False)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()


def run(method: str, source: Path, model: Path, batch_rows: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, method, str(source), out, str(model), str(batch_rows)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--methods", default="raw,job,naive")
    parser.add_argument("--batch-rows", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bench-batch")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    model = args.workdir / "predictor.joblib"
    make_predictor(model)
    results = []
    for size in map(int, args.sizes.split(",")):
        source = args.workdir / f"input-{size}.parquet"
        if not source.exists():
            make_input(size, source)
        for method in args.methods.split(","):
            result = run(method, source, model, args.batch_rows) | {"size": size}
            result["rows_per_s"] = result["rows"] / result["seconds"]
            results.append(result)
            print(json.dumps(result), flush=True)
    print(f"\nmachine: {os.cpu_count()} CPUs; batch rows {args.batch_rows}\n")
    print("| rows | method | seconds | rows/s | % of raw | peak RSS MiB |")
    print("|---:|---|---:|---:|---:|---:|")
    for r in results:
        raw = next(x for x in results if x["size"] == r["size"] and x["method"] == "raw")
        share = 100 * r["rows_per_s"] / raw["rows_per_s"]
        print(f"| {r['size']:,} | {r['method']} | {r['seconds']:.1f} | {r['rows_per_s']:,.0f} | "
              f"{share:.0f}% | {r['peak_rss_mib']:.0f} |")  # fmt: skip
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
