"""Serving benchmark: this service vs ``mlflow models serve`` vs the naive FastAPI path.

Same registered model, same single-record payload (the original proof of concept's example
request), same machine, one run. Load comes from separate processes:
- latency at fixed request rates: a minimal Python client process sends requests on a fixed
  schedule (open loop) over one keep-alive connection and records each request's wall time;
- maximum throughput with p99 ≤ 50 ms: ``wrk`` (Debian package ``wrk``) at increasing
  connection counts; the best requests/s whose p99 stays ≤ 50 ms.
Each server runs with 1 and 2 uvicorn workers; this service through its production launcher
(``python -m attrition_mlops.serving.server``: uvloop, the guarded httptools protocol, no access
log; ``service@<ref>`` with uvloop, httptools and no access log, the options of older commits).

All servers of one worker count run side by side, and the fixed-rate measurement visits them in
turns, ``--rounds`` times: on a shared machine, background load then hits every server alike.
``--baseline-ref <git ref>`` adds this service as of that commit (``service@<ref>``), for a
before/after comparison within one run.

    uv run python bench/serving.py --json-out bench-serving.json
    uv run python bench/serving.py --servers service --workers 1 --rates 20,200 \
        --baseline-ref HEAD~3 --no-throughput

needs ``wrk`` on PATH for the throughput part (``apt-get install wrk``). It trains a small model
into its own state folder (``.state/bench-serving``) unless ``--model-uri`` and
``ATTRITION_TRACKING_URI`` say which model to use.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from attrition_mlops.data.example import EXAMPLE_REQUEST as EXAMPLE

REPO = Path(__file__).resolve().parents[1]
CONNECTIONS = (1, 2, 4, 8, 16, 32, 64)
OLD_OPTIONS = {"loop": "uvloop", "http": "httptools", "access_log": False}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def uvicorn_flags(options: dict) -> list[str]:
    """``{"loop": "uvloop", "access_log": False}`` → ``--loop uvloop --no-access-log``."""
    flags = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else flag.replace("--", "--no-", 1))
        else:
            flags += [flag, str(value)]
    return flags


def server_command(kind: str, port: int, workers: int, model_uri: str) -> tuple[list[str], dict]:
    py = sys.executable
    common = ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    if kind == "service" or kind.startswith("service@"):
        env = {"ATTRITION_SERVING_MODEL_URI": model_uri, "ATTRITION_SERVING_POLL_SECONDS": "0"}
        if kind == "service":
            env["ATTRITION_SERVING_WORKERS"] = str(workers)
            cmd = [py, "-m", "attrition_mlops.serving.server", "--host", "127.0.0.1"]
            return cmd + ["--port", str(port)], env
        cmd = [py, "-m", "uvicorn", "--factory", "attrition_mlops.serving.app:create_app"]
        return cmd + common + ["--log-level", "warning", *uvicorn_flags(OLD_OPTIONS)], env
    if kind == "naive":
        env = {"ATTRITION_BENCH_MODEL_URI": model_uri}
        cmd = [py, "-m", "uvicorn", "--factory", "naive_serving_app:create_app"]
        cmd += ["--app-dir", str(REPO / "bench")]
        return cmd + common + ["--log-level", "warning", "--no-access-log"], env
    if kind == "mlflow":
        cmd = [py, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local"]
        return cmd + ["-h", "127.0.0.1", "-p", str(port), "-w", str(workers)], {}
    raise ValueError(kind)


def payload(kind: str) -> bytes:
    body = {"dataframe_records": EXAMPLE} if kind == "mlflow" else EXAMPLE
    return json.dumps(body).encode()


def wait_ready(url: str, body: bytes, timeout: float = 180.0, process=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with code {process.returncode}")
        try:
            r = httpx.post(url, content=body, headers={"content-type": "application/json"})
            if r.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not ready after {timeout}s")


def fixed_rate_latency(url: str, body: bytes, rate: float, n: int) -> list[float]:
    """Open-loop latency from a separate process with a minimal keep-alive HTTP/1.1 client.

    The request bytes are built once (and passed on stdin), and the client only reads the status
    line, headers and Content-Length bytes, so its own cost (~tens of µs) does not inflate the
    server's latency, as a general-purpose client's would (httpx added ~0.8-1.5 ms here).
    """
    parts = httpx.URL(url)
    request = (
        f"POST {parts.raw_path.decode()} HTTP/1.1\r\nHost: {parts.host}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    code = f"""
import json, socket, sys, time
request = sys.stdin.buffer.read()
sock = socket.create_connection(({parts.host!r}, {parts.port}))
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
stream = sock.makefile("rb")
def one():
    started = time.perf_counter()
    sock.sendall(request)
    status = stream.readline()
    length = 0
    while (line := stream.readline()) not in (b"\\r\\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    stream.read(length)
    assert b" 200 " in status, status
    return (time.perf_counter() - started) * 1000
for _ in range(30):
    one()
lat = []
start = time.perf_counter()
for i in range({n}):
    pause = start + i / {rate} - time.perf_counter()
    if pause > 0:
        time.sleep(pause)
    lat.append(one())
print(json.dumps(lat))
"""
    # the request goes in on stdin: a large body would not fit on a command line
    run = subprocess.run(
        [sys.executable, "-c", code], input=request, capture_output=True, check=True
    )
    return json.loads(run.stdout)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(number) * _UNITS[unit]


def wrk_run(url: str, body: bytes, connections: int, seconds: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        escaped = body.decode().replace("\\", "\\\\").replace('"', '\\"')
        lua.write(f'wrk.method = "POST"\nwrk.body = "{escaped}"\n')
        lua.write('wrk.headers["Content-Type"] = "application/json"\n')
    out = subprocess.run(
        [
            "wrk",
            "-t",
            "1",
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "-s",
            lua.name,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(lua.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = _ms(re.search(r"99%\s+([\d.]+(?:us|ms|s))", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "connections": connections,
        "rps": rps,
        "p99_ms": p99,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1) if errors else None,
    }


def max_throughput(url: str, body: bytes, seconds: int, p99_limit: float) -> dict:
    runs = [wrk_run(url, body, c, seconds) for c in CONNECTIONS]
    ok = [r for r in runs if r["p99_ms"] <= p99_limit and r["non_2xx"] == 0]
    best = max(ok, key=lambda r: r["rps"]) if ok else None
    peak = max(runs, key=lambda r: r["rps"] if r["non_2xx"] == 0 else 0)
    return {"best": best, "peak": peak, "runs": runs}


@dataclass
class Server:
    kind: str
    workers: int
    url: str
    body: bytes
    process: subprocess.Popen
    log: object
    latency: dict[float, list[list[float]]] = field(default_factory=dict)  # rate -> rounds

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)
        self.log.close()


def start_server(kind: str, workers: int, model_uri: str, args, sources: dict[str, Path]):
    port = free_port()
    cmd, extra = server_command(kind, port, workers, model_uri)
    # `mlflow models serve` runs `uvicorn` from PATH: this interpreter's bin dir first
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "PATH": path, **extra}
    if kind in sources:  # this service as of another commit
        env["PYTHONPATH"] = os.pathsep.join([str(sources[kind]), env.get("PYTHONPATH", "")])
    log = open(Path(args.log_dir) / f"{kind}-{workers}.log", "w")  # noqa: SIM115 (Server.stop)
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=args.log_dir)
    url = f"http://127.0.0.1:{port}" + ("/invocations" if kind == "mlflow" else "/predict")
    return Server(kind, workers, url, payload(kind), proc, log)


def measure_all(kinds: list[str], workers: int, model_uri: str, args, sources) -> list[dict]:
    """Start every server, then fixed-rate latency in interleaved rounds, then wrk on each."""
    servers = [start_server(kind, workers, model_uri, args, sources) for kind in kinds]
    try:
        for server in servers:
            wait_ready(server.url, server.body, timeout=600, process=server.process)
        for _ in range(args.rounds):
            for rate in args.rates:
                for server in servers:
                    latencies = fixed_rate_latency(server.url, server.body, rate, args.requests)
                    server.latency.setdefault(rate, []).append(latencies)
        results = []
        for server in servers:
            latency = {
                str(rate): {
                    "p50_ms": percentile([x for r in rounds for x in r], 0.50),
                    "p99_ms": percentile([x for r in rounds for x in r], 0.99),
                    "round_p50_ms": [percentile(r, 0.50) for r in rounds],
                    "n": sum(len(r) for r in rounds),
                }
                for rate, rounds in server.latency.items()
            }
            throughput = None
            if args.throughput:
                throughput = max_throughput(server.url, server.body, args.seconds, args.p99_limit)
            results.append(
                {
                    "server": server.kind,
                    "workers": workers,
                    "latency": latency,
                    "throughput": throughput,
                }
            )
        return results
    finally:
        for server in servers:
            server.stop()


def export_source(ref: str, into: Path) -> Path:
    """The package sources (``src/``) of git ``ref``, for serving an older version."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", ref, "src"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def ensure_model(args) -> str:
    if args.model_uri:
        return args.model_uri
    state = REPO / ".state" / "bench-serving"
    os.environ.setdefault("ATTRITION_STATE_DIR", str(state))
    os.environ.setdefault("ATTRITION_TRAIN_N_TRIALS", "8")
    from attrition_mlops.runner.local import run_job

    os.environ.setdefault("ATTRITION_JOBS_DIR", str(REPO / "jobs"))
    trained = run_job("train", ["--run-key", "bench-serving"], echo=False)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{(state / 'mlflow.db').resolve()}"
    return f"models:/{trained['model_name']}/{trained['version']}"


def table(results: list[dict], rates: list[float]) -> str:
    head = "| server | workers |"
    rule = "|---|---:|"
    for rate in rates:
        head += f" p50 ms @ {rate:g}/s (per round) | p99 ms @ {rate:g}/s |"
        rule += "---:|---:|"
    head += " max req/s with p99 ≤ 50 ms (connections) | peak req/s at any p99 (p99 ms) |"
    rule += "---:|---:|"
    lines = [head, rule]
    for r in results:
        row = f"| {r['server']} | {r['workers']} |"
        for rate in rates:
            lat = r["latency"][str(rate)]
            rounds = ", ".join(f"{x:.2f}" for x in lat["round_p50_ms"])
            row += f" {lat['p50_ms']:.2f} ({rounds}) | {lat['p99_ms']:.2f} |"
        if r["throughput"] is None:
            row += " – | – |"
        else:
            best, peak = r["throughput"]["best"], r["throughput"]["peak"]
            cell = f"{best['rps']:.0f} ({best['connections']})" if best else "none met the limit"
            row += f" {cell} | {peak['rps']:.0f} ({peak['p99_ms']:.0f}) |"
        lines.append(row)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-uri")
    parser.add_argument("--servers", default="service,mlflow,naive")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument(
        "--rates", default="20", help="fixed request rates, requests/s, comma-separated"
    )
    parser.add_argument("--requests", type=int, default=200, help="requests per rate and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved latency rounds")
    parser.add_argument("--baseline-ref", help="also serve this service as of this git ref")
    parser.add_argument("--throughput", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--seconds", type=int, default=8, help="wrk duration per step")
    parser.add_argument("--p99-limit", type=float, default=50.0)
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--log-dir", default=tempfile.mkdtemp(prefix="bench-serving-"))
    args = parser.parse_args(argv)
    args.rates = [float(rate) for rate in args.rates.split(",")]
    if args.throughput and shutil.which("wrk") is None:
        parser.error("wrk is required for the throughput part: apt-get install wrk")
    kinds = args.servers.split(",")
    sources: dict[str, Path] = {}
    if args.baseline_ref:
        kind = f"service@{args.baseline_ref}"
        sources[kind] = export_source(args.baseline_ref, Path(tempfile.mkdtemp(prefix="bench-")))
        kinds.insert(kinds.index("service") + 1 if "service" in kinds else 0, kind)
    model_uri = ensure_model(args)
    load_before = load_average()
    results = [
        row
        for w in args.workers.split(",")
        for row in measure_all(kinds, int(w), model_uri, args, sources)
    ]
    print(
        f"model {model_uri}; machine: {os.cpu_count()} CPUs, load average (1/5/15 min) "
        f"{load_before} before, {load_average()} after; server logs in {args.log_dir}"
    )
    print(table(results, args.rates))
    if args.json_out:
        meta = {"load_before": load_before, "load_after": load_average(), "args": vars(args)}
        args.json_out.write_text(
            json.dumps({"meta": meta, "results": results}, indent=2, default=str)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
