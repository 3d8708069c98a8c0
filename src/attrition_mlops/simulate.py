"""The traffic and drift simulator. Everything it returns is SIMULATED, never real employee data.

The generators are pure (data in, data out); ``write_export_logs``, ``send_traffic`` and the
command line (``python -m attrition_mlops.simulate``, docs/simulator.md) deliver their output.
Records are real rows resampled with replacement, optionally changed by
a named drift scenario, with small symmetric noise on the four pay/rate fields, then made valid
under the feature contract (whole numbers, contract bounds, consistent tenure fields). Every
returned frame is labelled: ``frame.attrs["is_simulated"] is True`` and ``frame.attrs
["simulation"]`` records scenario, seed, intensity and noise; ``EmployeeNumber`` holds fresh IDs
above the real data's maximum (2068), so a simulated record never collides with a real employee.

A quiet night (scenario ``none``) is the real data's distribution: resampling draws from the
empirical distribution itself, and the noise has mean zero and touches only near-continuous fields
(see docs/drift.md, where the calibration study relies on this).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from attrition_mlops import contract, inference_log

#: The word that labels everything this module writes (file names, request ids, User-Agent).
SIMULATED = "simulated"
#: The largest EmployeeNumber in the real IBM HR data; simulated IDs start above it.
REAL_MAX_EMPLOYEE_NUMBER = 2068
#: Half-width of the uniform multiplicative noise on the pay/rate fields (±2 %).
DEFAULT_NOISE = 0.02
#: Near-continuous fields (886–1,427 distinct values) with no consistency rule tying them to
#: another field, so symmetric jitter cannot create an impossible record or a visible shift.
NOISY_FEATURES = ("DailyRate", "HourlyRate", "MonthlyIncome", "MonthlyRate")
#: Each field is capped by the one before it (a working life, then tenure at this company).
_TENURE = ("TotalWorkingYears", "YearsAtCompany")
_WITHIN_COMPANY = ("YearsInCurrentRole", "YearsSinceLastPromotion", "YearsWithCurrManager")

#: A scenario takes (resampled frame, rng, intensity, real base rows, options) and returns
#: (changed frame, mask of changed rows, label shift): the signed share of the changed rows'
#: labels to flip, + for "No"→"Yes", − for "Yes"→"No". Integer columns arrive as float64.
ScenarioFn = Callable[
    [pd.DataFrame, np.random.Generator, float, pd.DataFrame, dict[str, Any]],
    tuple[pd.DataFrame, np.ndarray, float],
]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    apply: ScenarioFn


def _none(frame, rng, intensity, base, options):
    return frame, np.zeros(len(frame), dtype=bool), 0.0


def _salary_inflation(frame, rng, intensity, base, options):
    # The IBM rate fields are uncorrelated with MonthlyIncome (|r| < 0.04), so they stay put.
    frame["MonthlyIncome"] *= 1 + 0.15 * intensity
    # Label rule (an assumption, not learnt from data): a raise keeps 15 %·intensity of leavers.
    return frame, np.ones(len(frame), dtype=bool), -min(1.0, 0.15 * intensity)


def _overtime_surge(frame, rng, intensity, base, options):
    yes = frame["OverTime"].eq("Yes").to_numpy()
    start = yes.mean()
    target = float(np.clip(start + (0.60 - start) * intensity, 0.0, 1.0))
    if target >= start:
        flip = ~yes & (rng.random(len(frame)) < (target - start) / max(1 - start, 1e-12))
    else:
        flip = yes & (rng.random(len(frame)) < (start - target) / max(start, 1e-12))
    frame.loc[flip, "OverTime"] = np.where(yes[flip], "No", "Yes")
    # Real data: 30.5 % attrition with overtime, 10.4 % without; moving a "No" employee's odds
    # from one to the other means flipping (30.5 − 10.4) / (100 − 10.4) ≈ 22 % of "No" labels.
    return frame, flip, 0.22 if target >= start else -0.22


def _young_hiring_wave(frame, rng, intensity, base, options):
    hired = rng.random(len(frame)) < min(1.0, 0.30 * intensity)
    n = int(hired.sum())
    # A new hire is an entry-level (JobLevel 1) record, so role, pay and department stay
    # consistent, re-aged to 18–25 with 0–3 working years and 0–1 years at this company.
    donors = np.flatnonzero(frame["JobLevel"].to_numpy() == 1)
    donors = donors if donors.size else np.arange(len(frame))
    rows = np.arange(len(frame))
    rows[hired] = rng.choice(donors, n)
    frame = frame.iloc[rows].reset_index(drop=True)
    age = rng.integers(18, 26, n)
    working = rng.integers(0, np.minimum(3, age - 18) + 1)
    at_company = rng.integers(0, np.minimum(1, working) + 1)
    frame.loc[hired, "Age"] = age
    frame.loc[hired, "TotalWorkingYears"] = working
    frame.loc[hired, "YearsAtCompany"] = at_company
    for name in _WITHIN_COMPANY:
        frame.loc[hired, name] = rng.integers(0, at_company + 1)
    frame.loc[hired, "NumCompaniesWorked"] = (working > at_company).astype(np.int64)
    # Real data: 26 % attrition at JobLevel 1 overall, 41 % at JobLevel 1 and age ≤ 25; flipping
    # (41 − 26) / (100 − 26) ≈ 20 % of the donors' "No" labels closes that gap.
    return frame, hired, 0.20


def _mean_shift(frame, rng, intensity, base, options):
    name = options.get("feature", "MonthlyIncome")
    feature = contract.FEATURES_BY_NAME.get(name)
    if feature is None or feature.kind != "numeric" or feature.role != "model":
        raise ValueError(f"mean_shift needs a numeric model feature, got {name!r}")
    sd = float(options.get("reference_sd") or base[name].std(ddof=1))
    delta = intensity * sd
    # Stochastic rounding: a whole-number step whose expectation is exactly delta.
    whole = np.floor(delta)
    step = whole + (rng.random(len(frame)) < delta - whole)
    frame[name] = frame[name].to_numpy(dtype=float) + step
    return frame, np.ones(len(frame), dtype=bool), 0.0  # a pure covariate shift: labels untouched


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("none", "quiet traffic: resampled real rows, symmetric noise only", _none),
        Scenario(
            "salary_inflation", "MonthlyIncome +15 %·intensity for everyone", _salary_inflation
        ),
        Scenario(
            "overtime_surge",
            "OverTime 'Yes' share moves from the base share towards 60 % (fully at intensity 1)",
            _overtime_surge,
        ),
        Scenario(
            "young_hiring_wave",
            "30 %·intensity of records replaced by new hires aged 18–25 at JobLevel 1",
            _young_hiring_wave,
        ),
        Scenario(
            "mean_shift",
            "option `feature` (default MonthlyIncome) shifted by intensity reference SDs",
            _mean_shift,
        ),
    )
}


def simulate_traffic(
    base: pd.DataFrame,
    n: int,
    *,
    scenario: str = "none",
    seed: int,
    intensity: float = 1.0,
    noise: float = DEFAULT_NOISE,
    **options: Any,
) -> pd.DataFrame:
    """``n`` SIMULATED request records (the 34 input fields) drawn from the real rows ``base``.

    ``options`` go to the scenario (``mean_shift``: ``feature``, ``reference_sd``).
    """
    frame, _ = _simulate(base, n, scenario, seed, intensity, noise, options)
    return _label(frame[list(contract.INPUT_COLUMNS)].copy(), scenario, seed, intensity, noise)


def simulate_labelled_snapshot(
    base: pd.DataFrame,
    n: int,
    *,
    scenario: str,
    seed: int,
    intensity: float = 1.0,
    noise: float = DEFAULT_NOISE,
    **options: Any,
) -> pd.DataFrame:
    """A SIMULATED labelled snapshot (35 columns, with ``Attrition``) for retraining demos.

    Each record keeps the label of the real row it was resampled from; then the scenario flips
    a documented share of the changed records' labels in the direction it implies.
    """
    if contract.LABEL not in base.columns:
        raise ValueError(f"base has no {contract.LABEL!r} column to resample labels from")
    frame, flips = _simulate(base, n, scenario, seed, intensity, noise, options)
    frame[contract.LABEL] = flips
    ordered = frame[list(contract.DATASET_COLUMNS)].copy()
    return _label(ordered, scenario, seed, intensity, noise)


def _simulate(
    base: pd.DataFrame,
    n: int,
    scenario: str,
    seed: int,
    intensity: float,
    noise: float,
    options: dict[str, Any],
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The resampled, scenario-changed, noised and repaired frame, and the final labels."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {sorted(SCENARIOS)}")
    if n < 1 or base.empty:
        raise ValueError("need n >= 1 and a non-empty base frame")
    if not 0 <= noise < 1:
        raise ValueError(f"noise must be in [0, 1), got {noise}")
    rng = np.random.default_rng(seed)
    frame = base.iloc[rng.integers(0, len(base), n)].reset_index(drop=True)
    frame = frame.astype({name: "float64" for name in _integer_columns(frame)})
    # Noise first: with one seed every scenario sees the same resampled, noised records, so a
    # scenario's effect is exactly the difference from the quiet frame of that seed.
    for name in NOISY_FEATURES:
        frame[name] *= 1 + rng.uniform(-noise, noise, n)
    frame, changed, label_shift = SCENARIOS[scenario].apply(frame, rng, intensity, base, options)
    _make_valid(frame)
    first_id = max(REAL_MAX_EMPLOYEE_NUMBER, int(base[contract.ID_COLUMN].max())) + 1
    frame[contract.ID_COLUMN] = np.arange(first_id, first_id + n, dtype=np.int64)
    labels = None
    if contract.LABEL in frame.columns:
        labels = _flip_labels(frame[contract.LABEL].to_numpy(str), changed, label_shift, rng)
    return frame, labels


def _integer_columns(frame: pd.DataFrame) -> list[str]:
    return [f.name for f in contract.FEATURES if f.is_integer and f.name in frame.columns]


def _make_valid(frame: pd.DataFrame) -> None:
    """Whole numbers within contract bounds and a consistent tenure chain, in place."""
    for name in _integer_columns(frame):
        feature = contract.FEATURES_BY_NAME[name]
        values = np.clip(np.rint(frame[name].to_numpy(float)), feature.minimum, feature.maximum)
        frame[name] = values
    # Nobody works before 18, and tenure at a company fits in a working life; real rows already
    # satisfy this (checked in tests), so only scenario-changed records can be affected.
    cap = frame["Age"] - 18
    for name in _TENURE:
        frame[name] = np.minimum(frame[name], cap)
        cap = frame[name]
    for name in _WITHIN_COMPANY:
        frame[name] = np.minimum(frame[name], frame["YearsAtCompany"])
    for name in _integer_columns(frame):
        frame[name] = frame[name].astype(np.int64)


def _flip_labels(
    labels: np.ndarray, changed: np.ndarray, shift: float, rng: np.random.Generator
) -> np.ndarray:
    source, target = ("No", "Yes") if shift > 0 else ("Yes", "No")
    flip = changed & (labels == source) & (rng.random(labels.size) < abs(shift))
    return np.where(flip, target, labels)


def _label(
    frame: pd.DataFrame, scenario: str, seed: int, intensity: float, noise: float
) -> pd.DataFrame:
    frame.attrs["is_simulated"] = True
    frame.attrs["simulation"] = {
        "scenario": scenario,
        "seed": seed,
        "intensity": intensity,
        "noise": noise,
    }
    return frame


def simulated_log_lines(
    frame: pd.DataFrame,
    *,
    model_name: str,
    model_version: str,
    day: date,
    pseudonymise: inference_log.Pseudonymiser,
    per_request: int = 5,
    request_id_prefix: str = "simulated",
) -> Iterator[str]:
    """Inference-log lines, exactly as the API writes them, for SIMULATED traffic ``frame``.

    One request per ``per_request`` records, spread evenly over ``day`` (UTC) so that any number
    of records stays inside that day's window. The outputs are placeholders (the drift check
    reads inputs only); request ids ``<request_id_prefix>-<n>`` mark the lines simulated.
    """
    if per_request < 1:
        raise ValueError(f"per_request must be >= 1, got {per_request}")
    records = frame[list(contract.INPUT_COLUMNS)].to_dict(orient="records")
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    step = timedelta(days=1) / max(1, -(-len(records) // per_request))
    placeholder = {"probability": 0.0, "label": "No", "is_outlier": False}
    for n, i in enumerate(range(0, len(records), per_request)):
        batch = records[i : i + per_request]
        yield inference_log.dump_line(inference_log.build_record(
            timestamp=start + n * step, request_id=f"{request_id_prefix}-{n}",
            model_name=model_name, model_version=model_version, inputs=batch,
            outputs=[placeholder] * len(batch), latency_ms=0.0, pseudonymise=pseudonymise,
        ))  # fmt: skip


# --- Delivering SIMULATED traffic: the API over HTTP, or the export folder directly ----------


class TrafficError(RuntimeError):
    """Sending stopped: the API could not be reached, failed (5xx) or refused the API key."""


def _require_simulated(frame: pd.DataFrame) -> dict[str, Any]:
    # Only frames this module labelled may be sent or written as traffic: real rows must never
    # reach an inference log disguised as (or mixed into) simulated traffic.
    if frame.attrs.get("is_simulated") is not True:
        raise ValueError("frame is not labelled SIMULATED (attrs['is_simulated']); use simulate_*")
    if frame.empty:
        raise ValueError("no records to deliver")
    return dict(frame.attrs.get("simulation", {}))


def write_export_logs(
    frame: pd.DataFrame,
    export_dir: Path | str,
    day: date,
    *,
    model_name: str,
    model_version: str,
    pseudonymise: inference_log.Pseudonymiser | None = None,
    per_request: int = 5,
) -> Path:
    """Write SIMULATED ``frame`` as one file of the API's local export; returns its path.

    The file is ``<export_dir>/date=YYYY-MM-DD/simulated-<scenario>-seed<seed>-<token>.jsonl``
    (exactly the layout and schema the drift job reads), written under a temporary name and
    renamed, so a concurrent reader never sees half of it. Request ids are
    ``simulated-<scenario>-<token>-<n>``. Without ``pseudonymise`` a random key is used.
    """
    label = _require_simulated(frame)
    scenario, seed = label.get("scenario", "unknown"), label.get("seed", "x")
    token = uuid.uuid4().hex[:12]
    path = inference_log.partition_dir(Path(export_dir), day) / (
        f"{SIMULATED}-{scenario}-seed{seed}-{token}.jsonl"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    key = pseudonymise or inference_log.Pseudonymiser(secrets.token_bytes(32))
    lines = simulated_log_lines(
        frame, model_name=model_name, model_version=model_version, day=day, pseudonymise=key,
        per_request=per_request, request_id_prefix=f"{SIMULATED}-{scenario}-{token}",
    )  # fmt: skip
    partial = path.with_name(f".{path.name}.partial")  # not *.jsonl: readers skip it
    try:
        with open(partial, "x", encoding="utf-8") as handle:
            handle.writelines(line + "\n" for line in lines)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)  # no debris from a failed or interrupted write
        raise
    return path


def send_traffic(
    url: str,
    frame: pd.DataFrame,
    *,
    batch_size: int = 100,
    api_key: str | None = None,
    timeout: float = 30.0,
    manifest: Path | str | None = None,
) -> dict[str, Any]:
    """POST SIMULATED ``frame`` to ``<url>/predict`` as JSON arrays of ``batch_size`` records.

    Returns counts: ``records_sent``, ``records_accepted`` (scored), ``requests``,
    ``status_counts`` (HTTP status → requests) and the first rejection's detail. A 4xx other
    than 401/403 is counted and sending goes on; an unreachable API, a 5xx, a 401 or a 403 raise
    :class:`TrafficError` at once (every further request would fail the same way). The
    ``User-Agent`` names the traffic SIMULATED with its scenario and seed. The API assigns its
    own request ids; with ``manifest``, the simulation and the id of every accepted request are
    written there (JSON) so these requests can be told apart in the inference log.
    """
    label = _require_simulated(frame)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"url must be http(s)://host[:port][/prefix], got {url!r}")
    endpoint = urllib.parse.urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/predict"))
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": f"attrition-simulator (SIMULATED traffic; scenario={label.get('scenario')};"
        f" seed={label.get('seed')})",
    }
    if api_key:
        headers["X-API-Key"] = api_key
    records = frame[list(contract.INPUT_COLUMNS)].to_dict(orient="records")
    statuses: Counter[int] = Counter()
    accepted, request_ids, first_error = 0, [], None
    for i in range(0, len(records), batch_size):
        body = json.dumps(records[i : i + batch_size]).encode()
        status, payload = _post(endpoint, body, headers, timeout, statuses)
        statuses[status] += 1
        if status == 200:
            accepted += len(payload["predictions"])
            request_ids.append(payload["request_id"])
        elif first_error is None:
            span = [i, min(i + batch_size, len(records))]
            first_error = {"status": status, "records": span, "body": payload}
    result = {
        "url": endpoint,
        "simulation": label,
        "records_sent": len(records),
        "records_accepted": accepted,
        "requests": sum(statuses.values()),
        "status_counts": {str(code): n for code, n in sorted(statuses.items())},
        "first_error": first_error,
    }
    if manifest is not None:
        Path(manifest).parent.mkdir(parents=True, exist_ok=True)
        Path(manifest).write_text(json.dumps({**result, "request_ids": request_ids}, indent=1))
        result["manifest"] = str(manifest)
    return result


def _post(
    endpoint: str, body: bytes, headers: dict[str, str], timeout: float, so_far: Counter[int]
) -> tuple[int, Any]:
    request = urllib.request.Request(endpoint, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        status, text = err.code, err.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as err:  # refused, reset, DNS, timeout
        reason = getattr(err, "reason", err)
        raise TrafficError(
            f"cannot reach {endpoint}: {reason} (after {sum(so_far.values())} requests)"
        ) from err
    if status >= 500 or status in (401, 403):
        raise TrafficError(
            f"{endpoint} answered HTTP {status} after {sum(so_far.values())} requests: {text[:500]}"
        )
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        return status, text[:500]


# --- The command line: python -m attrition_mlops.simulate ... --------------------------------


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
    from attrition_mlops.dataset import load_snapshot

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
    label = {"is_simulated": True, **frame.attrs["simulation"], "rows": len(frame),
             "attrition_yes": int(frame[contract.LABEL].eq("Yes").sum())}  # fmt: skip
    sidecar.write_text(json.dumps(label, indent=1) + "\n")
    return {"file": str(args.output), "label_file": str(sidecar), **label}


if __name__ == "__main__":
    raise SystemExit(main())
