"""The performance job's online part on a full prediction ledger: time and peak memory.

The ledger keeps one row per (model version, employee, day) for one horizon and a month
(docs/performance.md, "Retention: the prediction ledger"). This builds the window the job reads
for a 12-month horizon (about 400 days) with every employee of a SIMULATED workforce scored
online every day by one version (the ledger's worst case: a row per employee per day), the
outcomes of that workforce, then times ``online_performance.check_online`` (list the ledger,
read every day's file, pseudonymise the outcomes' employees, join, judge) in a fresh process
and reports its peak RSS.

The workforce is the real IBM HR employees (1,470), repeated ``--copies`` times under other
employee numbers (SIMULATED); each keeps its real attrition label, timed into outcomes by the
outcome simulator. The probabilities are SIMULATED too (label-informed noise): the figure here
is cost, not accuracy.

    uv run python bench/ledger_read.py                 # 1,470 employees: ~590k ledger rows
    uv run python bench/ledger_read.py --copies 10     # 14,700 employees: ~5.9M rows
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
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

KEY = "bench-pseudonym-key-0123456789abcdef"
AS_OF = date(2026, 12, 1)


def build(root: Path, copies: int) -> dict:
    from attrition_mlops.data import contract
    from attrition_mlops.data import outcomes as feed
    from attrition_mlops.data.dataset import load_snapshot
    from attrition_mlops.data.files import write_parquet_atomic
    from attrition_mlops.data.inference_log import Pseudonymiser
    from attrition_mlops.monitoring import ledger
    from attrition_mlops.monitoring.online_performance import log_window
    from attrition_mlops.simulate.outcomes import simulate_outcomes

    real = load_snapshot().frame[[contract.ID_COLUMN, contract.LABEL]]
    workforce = pd.concat(
        [
            real.assign(**{contract.ID_COLUMN: real[contract.ID_COLUMN] + k * 100_000})
            for k in range(copies)
        ],
        ignore_index=True,
    )
    ids = workforce[contract.ID_COLUMN].to_numpy()
    pseudonymise = Pseudonymiser(KEY.encode())
    pseudonyms = np.array([pseudonymise(int(i)) for i in ids], dtype=object)
    rng = np.random.default_rng(7)
    leaves = (workforce[contract.LABEL] == contract.POSITIVE_LABEL).to_numpy()
    base = np.clip(rng.normal(np.where(leaves, 0.45, 0.15), 0.12), 0.001, 0.999)
    first, last = log_window(AS_OF, "12m")
    book = root / "prediction-ledger"
    rows = 0
    day = first
    while day < last:
        stamps = pd.Timestamp(day, tz="UTC") + pd.to_timedelta(
            rng.integers(0, 86_400, len(ids)), unit="s"
        )
        frame = pd.DataFrame(
            {
                contract.ID_COLUMN: pseudonyms,
                "model_version": "1",
                "timestamp": stamps,
                "probability": np.clip(base + rng.normal(0, 0.02, len(ids)), 0.001, 0.999),
                "simulated": True,
                "request_id": [f"simulated-{day}-{n}" for n in range(len(ids))],
            }
        )
        table = ledger.to_table(frame).replace_schema_metadata(
            {
                ledger.METADATA_KEY: json.dumps(
                    {"logged_records": len(ids), "simulated_records": len(ids)}
                ).encode()
            }
        )
        target = ledger.ledger_file(book, day)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_parquet_atomic(table, target)
        rows += len(ids)
        day += timedelta(days=1)
    outcomes = simulate_outcomes(workforce, first, AS_OF, seed=3)
    outcomes = outcomes.assign(**{feed.SIMULATED_COLUMN: True})
    outcomes.to_parquet(root / "outcomes.parquet", index=False)
    size = sum(p.stat().st_size for p in book.rglob("*.parquet"))
    return {
        "employees": len(ids),
        "days": (last - first).days,
        "ledger_rows": rows,
        "ledger_bytes": size,
    }


def measure(root: Path) -> dict:
    """In this (fresh) process: the job's online part on the ledger, timed, with peak RSS."""
    from pydantic import SecretStr

    from attrition_mlops.data import outcomes as feed
    from attrition_mlops.monitoring.online_performance import OnlineSource, check_online
    from attrition_mlops.settings import PerformanceSettings

    outcomes = pd.read_parquet(root / "outcomes.parquet")
    # As the feed's reader returns them (data.outcomes.read_outcomes): days as datetime64.
    outcomes[feed.OBSERVED_ON] = pd.to_datetime(outcomes[feed.OBSERVED_ON])
    source = OnlineSource(
        logs=root / "no-full-logs", key=SecretStr(KEY), ledger=root / "prediction-ledger"
    )
    start = time.perf_counter()
    part, _ = check_online(source, outcomes, AS_OF, PerformanceSettings())
    seconds = time.perf_counter() - start
    verdict = part["versions"].get("1", {})
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "status": part["status"],
        "n_records": part.get("n_records"),
        "n_ledger_rows": part.get("n_ledger_rows"),
        "judged_cohort": verdict.get("judged_cohort"),
        "n_labelled": verdict.get("n_labelled"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=1, help="the real workforce, repeated")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        built = build(root, args.copies)
        child = subprocess.run(
            [sys.executable, __file__, "--measure", str(root)],
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode:
            raise SystemExit(f"measuring failed:\n{child.stderr[-3000:]}")
        result = built | json.loads(child.stdout.strip().splitlines()[-1])
    result |= {"cpus": os.cpu_count(), "python": platform.python_version()}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
