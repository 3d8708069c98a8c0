"""The command line: ``python -m attrition_mlops.simulate scenarios | traffic | snapshot``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from attrition_mlops.data import contract, inference_log
from attrition_mlops.simulate.export import write_export_logs
from attrition_mlops.simulate.generate import (
    DEFAULT_NOISE,
    SCENARIOS,
    SIMULATED,
    simulate_labelled_snapshot,
    simulate_traffic,
)
from attrition_mlops.simulate.send import TrafficError, send_traffic


def main(argv: list[str] | None = None) -> int:
    """``scenarios`` | ``traffic`` (to the API or the export folder) | ``snapshot`` (CSV)."""
    args = _parser().parse_args(argv)
    try:
        result = args.command(args)
    except (ValueError, OSError, TrafficError) as err:
        print(f"{type(err).__name__}: {err}", file=sys.stderr)
        return 2
    print(result if isinstance(result, str) else json.dumps(result, ensure_ascii=False))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m attrition_mlops.simulate",
        description="SIMULATED inference traffic and labelled snapshots, built from the real "
        "IBM HR data by resampling with noise, with named drift scenarios.",
    )
    sub = parser.add_subparsers(required=True, metavar="{scenarios,traffic,snapshot}")
    sub.add_parser("scenarios", help="list the drift scenarios").set_defaults(
        command=_cmd_scenarios
    )
    traffic = sub.add_parser("traffic", help="request records: send to the API or write logs")
    _common(traffic, "--records")
    where = traffic.add_mutually_exclusive_group(required=True)
    where.add_argument("--send", metavar="URL", help="API base URL (POSTs to URL/predict)")
    where.add_argument("--export-dir", type=Path, help="write the local export format here")
    traffic.add_argument("--api-key-env", metavar="VAR", help="env variable holding the API key")
    traffic.add_argument("--batch-size", type=int, default=100, help="records per request")
    traffic.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    traffic.add_argument("--manifest", type=Path, help="--send: write accepted request ids")
    traffic.add_argument("--date", type=date.fromisoformat, help="--export-dir: UTC day "
                         "(default: yesterday, the drift job's default window)")  # fmt: skip
    traffic.add_argument("--model-name", default="employee_attrition")
    traffic.add_argument("--model-version", help="--export-dir: the serving version to log")
    traffic.add_argument("--records-per-request", type=int, default=5)
    traffic.add_argument(
        "--pseudonym-key-env", metavar="VAR", default="ATTRITION_SERVING_PSEUDONYM_KEY",
        help="--export-dir: env variable with the HMAC key (unset: a random key)",
    )  # fmt: skip
    traffic.set_defaults(command=_cmd_traffic)
    snapshot = sub.add_parser("snapshot", help="a labelled 35-column CSV for retraining demos")
    _common(snapshot, "--rows")
    snapshot.add_argument("--output", type=Path, required=True, help="a .csv whose name "
                          "contains 'simulated'")  # fmt: skip
    snapshot.set_defaults(command=_cmd_snapshot)
    return parser


def _common(parser: argparse.ArgumentParser, count: str) -> None:
    parser.add_argument("--scenario", default="none", choices=sorted(SCENARIOS))
    parser.add_argument(count, dest="n", type=int, required=True, help="how many to make")
    parser.add_argument("--intensity", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, default=DEFAULT_NOISE)
    parser.add_argument("--feature", help="mean_shift: the numeric feature to shift")
    parser.add_argument("--base", type=Path, help="real rows to resample (default: bundled)")


def _simulation_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    options = {"feature": args.feature} if args.feature else {}
    return dict(scenario=args.scenario, seed=args.seed, intensity=args.intensity,
                noise=args.noise, **options)  # fmt: skip


def _base(args: argparse.Namespace) -> pd.DataFrame:
    from attrition_mlops.data.dataset import load_snapshot

    return load_snapshot(args.base, require_label=False).frame


def _cmd_scenarios(args: argparse.Namespace) -> str:
    width = max(map(len, SCENARIOS))
    return "\n".join(f"{name:<{width}}  {s.description}" for name, s in SCENARIOS.items())


def _cmd_traffic(args: argparse.Namespace) -> dict[str, Any]:
    frame = simulate_traffic(_base(args), args.n, **_simulation_kwargs(args))
    if args.send:
        api_key = None
        if args.api_key_env:
            api_key = os.environ.get(args.api_key_env)
            if not api_key:
                raise ValueError(f"--api-key-env: environment variable {args.api_key_env} unset")
        return send_traffic(args.send, frame, batch_size=args.batch_size, api_key=api_key,
                            timeout=args.timeout, manifest=args.manifest)  # fmt: skip
    if not args.model_version:
        raise ValueError("--export-dir needs --model-version (the drift job checks each version)")
    key = os.environ.get(args.pseudonym_key_env or "")
    day = args.date or datetime.now(UTC).date() - timedelta(days=1)
    path = write_export_logs(
        frame, args.export_dir, day, model_name=args.model_name, model_version=args.model_version,
        pseudonymise=inference_log.Pseudonymiser(key.encode()) if key else None,
        per_request=args.records_per_request,
    )  # fmt: skip
    return {"file": str(path), "records": len(frame), "date": day.isoformat(),
            "simulation": frame.attrs["simulation"]}  # fmt: skip


def _cmd_snapshot(args: argparse.Namespace) -> dict[str, Any]:
    if SIMULATED not in args.output.name.lower() or args.output.suffix != ".csv":
        raise ValueError(
            f"--output {args.output.name!r}: use a .csv whose name contains '{SIMULATED}', so "
            "the file is never mistaken for real HR data (e.g. simulated-overtime.csv)"
        )
    frame = simulate_labelled_snapshot(_base(args), args.n, **_simulation_kwargs(args))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.output, index=False)
    sidecar = args.output.with_name(args.output.name + ".simulation.json")
    positives = int(frame[contract.LABEL].eq(contract.POSITIVE_LABEL).sum())
    label = {"is_simulated": True, **frame.attrs["simulation"], "rows": len(frame),
             "attrition_yes": positives}  # fmt: skip
    sidecar.write_text(json.dumps(label, indent=1) + "\n")
    return {"file": str(args.output), "label_file": str(sidecar), **label}
