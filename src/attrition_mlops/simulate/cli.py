"""The command line: ``python -m attrition_mlops.simulate`` with a subcommand (see main)."""

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
from attrition_mlops.simulate.send import TrafficError, describe_sent, send_traffic


def main(argv: list[str] | None = None) -> int:
    """``scenarios`` | ``traffic`` (API or export folder) | ``snapshot`` (CSV) | ``outcomes``."""
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
    traffic.add_argument(
        "--date",
        type=date.fromisoformat,
        help="--export-dir: UTC day (default: yesterday, the drift job's default window)",
    )
    traffic.add_argument("--model-name", default="employee_attrition")
    traffic.add_argument("--model-version", help="--export-dir: the serving version to log")
    traffic.add_argument("--records-per-request", type=int, default=5)
    traffic.add_argument(
        "--pseudonym-key-env",
        metavar="VAR",
        default="ATTRITION_SERVING_PSEUDONYM_KEY",
        help="--export-dir: env variable with the HMAC key (unset: a random key)",
    )
    traffic.set_defaults(command=_cmd_traffic)
    snapshot = sub.add_parser("snapshot", help="a labelled 35-column CSV for retraining demos")
    _common(snapshot, "--rows")
    into = snapshot.add_mutually_exclusive_group(required=True)
    into.add_argument("--output", type=Path, help="a .csv whose name contains 'simulated'")
    into.add_argument(
        "--as-of",
        type=date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="store it as the labelled snapshot of that date",
    )
    snapshot.set_defaults(command=_cmd_snapshot)
    _outcomes_parser(sub)
    return parser


def _outcomes_parser(sub) -> None:
    outcomes = sub.add_parser(
        "outcomes",
        help="SIMULATED outcomes of labelled employees, "
        "written as an arrival partition (docs/performance.md)",
    )
    outcomes.add_argument(
        "--employees",
        type=Path,
        required=True,
        help="labelled 35-column CSV (e.g. from `snapshot`)",
    )
    outcomes.add_argument(
        "--predictions",
        type=Path,
        help="a batch partition run_date=…: time only its employees, from its run date",
    )
    outcomes.add_argument("--predicted-on", type=date.fromisoformat, help="without --predictions")
    outcomes.add_argument("--arrived", type=date.fromisoformat, required=True)
    outcomes.add_argument("--output-dir", type=Path, required=True, help="the outcomes root")
    outcomes.add_argument("--horizon", default="12m")
    outcomes.add_argument("--seed", type=int, default=0)
    outcomes.set_defaults(command=_cmd_outcomes)


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
    return dict(
        scenario=args.scenario,
        seed=args.seed,
        intensity=args.intensity,
        noise=args.noise,
        **options,
    )


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
        sent = send_traffic(
            args.send,
            frame,
            batch_size=args.batch_size,
            api_key=api_key,
            timeout=args.timeout,
            manifest=args.manifest,
        )
        print(describe_sent(sent), file=sys.stderr)  # for people; stdout keeps the JSON
        return sent
    if not args.model_version:
        raise ValueError("--export-dir needs --model-version (the drift job checks each version)")
    key = os.environ.get(args.pseudonym_key_env or "")
    day = args.date or datetime.now(UTC).date() - timedelta(days=1)
    path = write_export_logs(
        frame,
        args.export_dir,
        day,
        model_name=args.model_name,
        model_version=args.model_version,
        pseudonymise=inference_log.Pseudonymiser(key.encode()) if key else None,
        per_request=args.records_per_request,
    )
    return {
        "file": str(path),
        "records": len(frame),
        "date": day.isoformat(),
        "simulation": frame.attrs["simulation"],
    }


def _cmd_outcomes(args: argparse.Namespace) -> dict[str, Any]:
    from attrition_mlops.data.dataset import load_snapshot
    from attrition_mlops.data.outcomes import write_outcomes
    from attrition_mlops.simulate.outcomes import simulate_outcomes

    employees = load_snapshot(args.employees, require_label=True).frame
    predicted_on = args.predicted_on
    if args.predictions is not None:
        scored = pd.read_parquet(args.predictions, columns=[contract.ID_COLUMN, "run_date"])
        employees = employees[employees[contract.ID_COLUMN].isin(scored[contract.ID_COLUMN])]
        predicted_on = date.fromisoformat(str(scored["run_date"].iloc[0]))
    if predicted_on is None:
        raise ValueError("give --predictions (a run_date=… partition) or --predicted-on")
    frame = simulate_outcomes(
        employees, predicted_on, args.arrived, horizon=args.horizon, seed=args.seed
    )
    delivery = write_outcomes(frame, args.output_dir, args.arrived, simulated=True)
    return {"is_simulated": True, **frame.attrs["simulation"], **delivery.to_dict()}


def _cmd_snapshot(args: argparse.Namespace) -> dict[str, Any]:
    if args.as_of:
        return _snapshot_partition(args)
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
    label = {
        "is_simulated": True,
        **frame.attrs["simulation"],
        "rows": len(frame),
        "attrition_yes": positives,
    }
    sidecar.write_text(json.dumps(label, indent=1) + "\n")
    return {"file": str(args.output), "label_file": str(sidecar), **label}


def _snapshot_partition(args: argparse.Namespace) -> dict[str, Any]:
    """Straight into the labelled-snapshot store, its source saying SIMULATED and how."""
    from attrition_mlops.data.snapshots import SnapshotError, add_snapshot
    from attrition_mlops.settings import get_settings

    frame = simulate_labelled_snapshot(_base(args), args.n, **_simulation_kwargs(args))
    how = ", ".join(f"{k}={v}" for k, v in frame.attrs["simulation"].items())
    source = f"{SIMULATED.upper()} labelled snapshot ({how})"
    try:
        added = add_snapshot(frame, args.as_of, source=source, root=get_settings().snapshot_dir)
    except SnapshotError as err:  # e.g. the date holds other rows: exit 2 like any bad input
        raise ValueError(str(err)) from err
    return {"is_simulated": True, **added.to_dict()}
