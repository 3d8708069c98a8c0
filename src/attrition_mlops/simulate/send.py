"""SIMULATED traffic sent to the API over HTTP (``POST /predict``)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from attrition_mlops.data import contract, inference_log
from attrition_mlops.simulate.generate import require_simulated


class TrafficError(RuntimeError):
    """Sending stopped: the API could not be reached, failed (5xx) or refused the API key."""


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
    label = require_simulated(frame)
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
        inference_log.SIMULATED_HEADER: "true",  # the API marks the log line SIMULATED
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


def describe_sent(result: dict[str, Any], scenario: str | None = None) -> str:
    """:func:`send_traffic`'s counts in words, e.g. ``600 SIMULATED records (scenario none) in
    12 requests: all 600 accepted`` or ``… 1,750 accepted; 1 request refused (HTTP 422)``."""
    scenario = scenario or (result.get("simulation") or {}).get("scenario")
    sent, accepted = result["records_sent"], result["records_accepted"]
    requests = result["requests"]
    what = f"{sent:,} SIMULATED record{'' if sent == 1 else 's'}"
    if scenario:
        what += f" (scenario {scenario})"
    what += f" in {requests:,} request{'' if requests == 1 else 's'}"
    if accepted == sent:
        return f"{what}: all {accepted:,} accepted" if sent else f"{what}: nothing to send"
    refused = {code: n for code, n in result["status_counts"].items() if code != "200"}
    statuses = ", ".join(f"{n:,} × HTTP {code}" for code, n in refused.items())
    n_refused = sum(refused.values())
    noun = "request" if n_refused == 1 else "requests"
    return f"{what}: {accepted:,} accepted; {n_refused:,} {noun} refused ({statuses})"


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
