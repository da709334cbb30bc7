"""Where one process's rate is bounded, one product per request at concurrency 32.

    .venv/bin/python -m bench.bench_http_ceiling --tracking-uri sqlite:////path/mlflow.db

Three servers in turn, each round, driven by the same `wrk` script as `bench_serving`'s:

- **bare uvicorn**: uvicorn with the same HTTP stack (httptools, uvloop) and an ASGI app that
  reads the body and answers a fixed prediction (`bench/bare_asgi.py`): the HTTP server's own
  ceiling on this machine;
- **fixed answer**: this server with each model call answering fixed probabilities
  (`bench/fixed_answer.py`): all of its own request path (validation, batching on the model
  threads, ranking, metrics, drift, the access log, JSON) without the model's features and walk;
- **this server**, as served.

For the last two it also reads the request durations the access log records (from the request
middleware's first line to its last) beside `wrk`'s, which add what happens outside it: waiting in
the socket and in the event loop before the request is read, and after its answer is handed over.
Prints medians over the rounds and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import bench_serving
from bench.bench_serving import OURS, RESULTS, free_port, load_products, stop, wait_ready, wrk

SERVERS = ("bare uvicorn", "fixed answer", "this server")


def main() -> None:
    args = parse_arguments()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    script = bench_serving.write_scripts(workdir, load_products())[(OURS.name, "single")]
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in SERVERS}
    for round_number in range(args.rounds):
        for name in SERVERS:
            runs[name].append(one_run(args, workdir, script, name))
            print(f"round {round_number + 1}, {name}: {runs[name][-1]}", flush=True)
    medians = {name: _medians(results) for name, results in runs.items()}
    report: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "runs": runs,
        "medians": medians,
        "rate_vs_bare": {
            name: round(medians[name]["rps"] / medians["bare uvicorn"]["rps"], 4)
            for name in SERVERS
        },
    }
    for name in SERVERS:
        print(f"{name:>14}: {medians[name]}")
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


def one_run(args: argparse.Namespace, workdir: Path, script: Path, name: str) -> dict[str, float]:
    """One server started, warmed, loaded and stopped: wrk's figures, plus the access log's."""
    port = free_port()
    log_path = workdir / f"ceiling-{name.replace(' ', '-')}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command(name, port), cwd=workdir, env=environment(args, port),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url + ("/" if name == "bare uvicorn" else OURS.ready_path), process, 180)
        wrk(url, script, 8, 2)  # warm-up
        skip = len(_access_durations(log_path))
        result = wrk(url, script, args.concurrency, args.duration)
    finally:
        stop(process)
    durations = sorted(_access_durations(log_path)[skip:])
    if durations:
        result["server_p50_ms"] = _quantile(durations, 0.50)
        result["server_p99_ms"] = _quantile(durations, 0.99)
    return result


def command(name: str, port: int) -> list[str]:
    if name == "bare uvicorn":
        return [
            sys.executable, "-m", "uvicorn", "bench.bare_asgi:app", "--host", "127.0.0.1",
            "--port", str(port), "--http", "httptools", "--loop", "uvloop", "--no-access-log",
            "--log-level", "warning",
        ]  # fmt: skip
    return [sys.executable, "-m", "bench.fixed_answer" if name == "fixed answer" else "serving"]


def environment(args: argparse.Namespace, port: int) -> dict[str, str]:
    env = OURS.environment(args.tracking_uri, args.model_name, port)
    env["PYTHONPATH"] = str(bench_serving.REPO)  # `bench.*` from any working directory
    return env


def _access_durations(log_path: Path) -> list[float]:
    durations = []
    for line in log_path.read_text(errors="replace").splitlines():
        if '"serving.access"' not in line:
            continue
        try:
            durations.append(float(json.loads(line)["duration_ms"]))
        except (ValueError, KeyError):
            continue
    return durations


def _quantile(ordered: list[float], q: float) -> float:
    return round(ordered[min(int(q * len(ordered)), len(ordered) - 1)], 3)


def _medians(results: list[dict[str, float]]) -> dict[str, float]:
    keys = [key for key in results[0] if all(key in r for r in results)]
    return {key: round(statistics.median(r[key] for r in results), 3) for key in keys}


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", required=True, help="MLflow store with the champion")
    parser.add_argument("--model-name", default="product-classifier")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per run")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workdir", default="/tmp/bench-http-ceiling")
    parser.add_argument("--output", default=str(RESULTS / "http-ceiling.json"))
    return parser.parse_args()


if __name__ == "__main__":
    main()
