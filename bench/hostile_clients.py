"""Liveness and memory of the API while hostile clients hammer it (issue 11, defect 4).

One server (the production launcher, default limits: 2 MB bodies, 1,000 records) on loopback.
A prober opens a fresh connection for ``GET /health/live`` every 50 ms, as the kubelet does,
and records each latency (a probe over 5 s counts as failed); the server's RSS is sampled
every 0.25 s. Two phases, ``--seconds`` each:

- ``bodies``: 4 client processes post maximum-size hostile bodies back to back, cycling
  through one record of 150,000 unknown keys, 1,000 records of 34 unknown keys, ~900,000 tiny
  JSON values, and 1,000 valid records (the legitimate maximum); then again without the valid
  ones (``bodies_hostile_only``);
- ``headers``: 200 slow-header connections (one header byte every 0.5 s, reconnecting when
  refused) and 8 clients sending 60 MB headers as fast as they can.

    uv run python bench/hostile_clients.py --json-out bench-hostile.json
    uv run python bench/hostile_clients.py --baseline-src /path/to/old/checkout

``--baseline-src`` runs an older checkout's code (its ``src/`` on PYTHONPATH) with the uvicorn
command it shipped, for a before/after comparison. Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from attrition_mlops.data.example import EXAMPLE_RECORD

MB = 1024 * 1024
PROBE_EVERY = 0.05
PROBE_TIMEOUT = 5.0


def hostile_bodies(with_valid: bool = True) -> list[bytes]:
    one_record = {f"u{i}": 0 for i in range(150_000)}  # ~1.8 MB
    many_records = [{f"unknown_field_{i:02d}": 0 for i in range(34)} for _ in range(1000)]
    bodies = [
        json.dumps([one_record]).encode(),
        json.dumps(many_records).encode(),
        b"[" + b",".join([b"0"] * 900_000) + b"]",
    ]
    if with_valid:
        bodies.append(json.dumps([EXAMPLE_RECORD] * 1000).encode())
    return [b for b in bodies if len(b) < 2 * MB]


def _post_forever(url: str, bodies: list[bytes], stop, counts) -> None:
    with httpx.Client(timeout=60) as http:
        i = 0
        while not stop.is_set():
            body = bodies[i % len(bodies)]
            i += 1
            try:
                http.post(url, content=body, headers={"content-type": "application/json"})
                counts.value += 1
            except httpx.HTTPError:
                time.sleep(0.05)


def _slow_header(host: str, port: int, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            with socket.create_connection((host, port), timeout=5) as sock:
                sock.sendall(b"GET /health/live HTTP/1.1\r\nhost: x\r\nx-slow: ")
                while not stop.is_set():
                    sock.sendall(b"a")
                    time.sleep(0.5)
        except OSError:
            time.sleep(0.2)


def _big_header(host: str, port: int, stop: threading.Event) -> None:
    chunk = b"a" * 65536
    while not stop.is_set():
        try:
            with socket.create_connection((host, port), timeout=5) as sock:
                sock.sendall(b"GET /health/live HTTP/1.1\r\nhost: x\r\nx-big: ")
                for _ in range(60 * MB // len(chunk)):
                    if stop.is_set():
                        break
                    sock.sendall(chunk)
        except OSError:
            time.sleep(0.05)


def _probe(host: str, port: int) -> float | None:
    started = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT) as sock:
            sock.settimeout(PROBE_TIMEOUT)
            sock.sendall(b"GET /health/live HTTP/1.1\r\nhost: probe\r\nconnection: close\r\n\r\n")
            reply = b""
            while chunk := sock.recv(4096):
                reply += chunk
    except OSError:
        return None
    return time.perf_counter() - started if reply.startswith(b"HTTP/1.1 200") else None


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(host: str, port: int, pid: int, seconds: float) -> dict:
    latencies: list[float] = []
    failed = 0
    rss: list[float] = []
    deadline = time.monotonic() + seconds
    next_rss = 0.0
    while time.monotonic() < deadline:
        latency = _probe(host, port)
        if latency is None:
            failed += 1
        else:
            latencies.append(latency)
        if time.monotonic() >= next_rss:
            rss.append(_rss_mib(pid))
            next_rss = time.monotonic() + 0.25
        time.sleep(PROBE_EVERY)
    latencies.sort()
    pick = (
        (lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000)
        if latencies
        else (lambda q: None)
    )
    return {
        "probes": len(latencies) + failed,
        "failed": failed,
        "p50_ms": pick(0.50),
        "p99_ms": pick(0.99),
        "max_ms": latencies[-1] * 1000 if latencies else None,
        "rss_mib_median": statistics.median(rss) if rss else None,
        "rss_mib_max": max(rss) if rss else None,
    }


def phase_bodies(
    url: str, host: str, port: int, pid: int, seconds: float, with_valid: bool = True
) -> dict:
    bodies = hostile_bodies(with_valid)
    stop = multiprocessing.Event()
    counts = [multiprocessing.Value("i", 0) for _ in range(4)]
    clients = [
        multiprocessing.Process(target=_post_forever, args=(f"{url}/predict", bodies, stop, c))
        for c in counts
    ]
    for client in clients:
        client.start()
    time.sleep(2)  # let the clients build their bodies and start sending
    try:
        result = measure(host, port, pid, seconds)
    finally:
        stop.set()
        for client in clients:
            client.join(60)
    result["hostile_requests"] = sum(c.value for c in counts)
    result["body_sizes_mb"] = [round(len(b) / MB, 2) for b in bodies]
    return result


def phase_headers(host: str, port: int, pid: int, seconds: float) -> dict:
    stop = threading.Event()
    workers = [threading.Thread(target=_slow_header, args=(host, port, stop)) for _ in range(200)]
    workers += [threading.Thread(target=_big_header, args=(host, port, stop)) for _ in range(8)]
    for worker in workers:
        worker.daemon = True
        worker.start()
    time.sleep(2)
    try:
        return measure(host, port, pid, seconds)
    finally:
        stop.set()


def start_server(model_dir: str, baseline_src: str | None, port: int, workdir: Path):
    env = {
        **os.environ,
        "ATTRITION_STATE_DIR": str(workdir / "state"),
        "ATTRITION_SERVING_MODEL_DIR": model_dir,
        "ATTRITION_SERVING_POLL_SECONDS": "0",
        "ATTRITION_SERVING_LOG_STDOUT": "false",
    }
    if baseline_src:
        env["PYTHONPATH"] = str(Path(baseline_src) / "src")
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "attrition_mlops.serving.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
        ]
    else:
        command = [sys.executable, "-m", "attrition_mlops.serving.server", "--port", str(port)]
    log = open(workdir / "server.log", "wb")  # noqa: SIM115 (kept open for the server's life)
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError((workdir / "server.log").read_text()[-2000:])
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready").status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError("server not ready")


def train_model(workdir: Path) -> str:
    """A small model saved as a baked model directory (as the image has it); returns its path."""
    import mlflow

    from attrition_mlops.data import contract
    from attrition_mlops.data.dataset import load_snapshot
    from attrition_mlops.model.features import build_classifier
    from attrition_mlops.model.outliers import calibrate_outlier_detector
    from attrition_mlops.model.predictor import AttritionPredictor, AttritionPyfunc, write_artifacts
    from attrition_mlops.model.profile import build_reference_profile

    snapshot = load_snapshot()
    X = snapshot.frame[list(contract.INPUT_COLUMNS)]
    y = (snapshot.frame[contract.LABEL] == contract.POSITIVE_LABEL).to_numpy(dtype=int)
    classifier = build_classifier("logistic_regression", {"C": 0.3}, seed=0).fit(X, y)
    detector = calibrate_outlier_detector(X, fpr=0.01, seed=0)
    predictor = AttritionPredictor(classifier, detector, threshold=0.5)
    profile = build_reference_profile(X, source_sha256=snapshot.sha256)
    artifacts = write_artifacts(workdir / "artifacts", predictor, profile)
    path = workdir / "model"
    mlflow.pyfunc.save_model(
        str(path), python_model=AttritionPyfunc(), artifacts=artifacts, pip_requirements=[]
    )
    (path / "model_card.json").write_text(json.dumps({"name": "bench", "version": "1"}))
    return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="per phase")
    parser.add_argument("--baseline-src", help="an older checkout to measure instead")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    (workdir / "artifacts").mkdir()
    model_dir = train_model(workdir)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = start_server(model_dir, args.baseline_src, port, workdir)
    host, url = "127.0.0.1", f"http://127.0.0.1:{port}"
    try:
        results = {"idle": measure(host, port, server.pid, min(5.0, args.seconds))}
        results["bodies"] = phase_bodies(url, host, port, server.pid, args.seconds)
        results["bodies_hostile_only"] = phase_bodies(
            url, host, port, server.pid, args.seconds, with_valid=False
        )
        results["headers"] = phase_headers(host, port, server.pid, args.seconds)
    finally:
        server.terminate()
        server.wait(60)
    results["server"] = "baseline: " + args.baseline_src if args.baseline_src else "launcher"
    print(json.dumps(results, indent=2))
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
