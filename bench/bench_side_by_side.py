"""Two versions of this server at the same time, each driven by its own wrk: their ratio per round.

    git archive <commit> serving product_model training | tar -x -C /tmp/before
    .venv/bin/python -m bench.bench_side_by_side --tracking-uri sqlite:////path/mlflow.db \\
        --before /tmp/before --rounds 8

On this shared 2-core machine the same server, run alone, varies by ±15% from one run to the
next, more than most changes it is meant to measure. Run at once, the two servers share the same
moments of the machine: each gets about one core (one process is bound by its GIL to about one),
and each round gives a ratio of the two rates that moves far less. Each round starts both servers
fresh (`--before` from another checkout's packages, the other from this one), warms them, runs
wrk on both at once (one product per request, concurrency 32 by default; `--shape batch
--concurrency 2` sends batches of 100 products), and stops them. Prints
the rates, the ratios and their median; writes JSON. The absolute rates are lower than a server
alone gets, which has the second core for its forest walk: use `bench_serving` for those.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import bench_serving
from bench.bench_serving import OURS, RESULTS, free_port, load_products, stop, wait_ready, wrk


def main() -> None:
    args = parse_arguments()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    script = bench_serving.write_scripts(workdir, load_products())[(OURS.name, args.shape)]
    rates: dict[str, list[float]] = {"before": [], "after": []}
    for round_number in range(args.rounds):
        result = one_round(args, workdir, script)
        for name, rate in result.items():
            rates[name].append(rate)
        print(f"round {round_number + 1}: {result}", flush=True)
    ratios = [after / before for before, after in zip(rates["before"], rates["after"], strict=True)]
    report: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "shape": args.shape,
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "rps": rates,
        "ratios": [round(ratio, 4) for ratio in ratios],
        "median_rps": {name: statistics.median(values) for name, values in rates.items()},
        "median_ratio": round(statistics.median(ratios), 4),
        "rounds_faster": sum(ratio > 1 for ratio in ratios),
    }
    print(json.dumps({k: report[k] for k in ("median_rps", "median_ratio", "rounds_faster")}))
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


def one_round(args: argparse.Namespace, workdir: Path, script: Path) -> dict[str, float]:
    """Both servers started, warmed, loaded at once and stopped: requests/s of each."""
    servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    rates: dict[str, float] = {}
    try:
        for name, source in (("before", args.before), ("after", None)):
            servers[name] = start(args, workdir, name, source)
        for process, url in servers.values():
            wait_ready(url + OURS.ready_path, process, timeout=180)
            wrk(url, script, 8, 2)  # warm-up, not recorded

        def load(name: str, url: str) -> None:
            rates[name] = wrk(url, script, args.concurrency, args.duration)["rps"]

        threads = [threading.Thread(target=load, args=(n, u)) for n, (_, u) in servers.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for process, _ in servers.values():
            stop(process)
    return rates


def start(
    args: argparse.Namespace, workdir: Path, name: str, source: str | None
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    server = replace(OURS, source=str(Path(source).absolute()) if source is not None else None)
    alias_uri = f"models:/{args.model_name}@champion"
    log = (workdir / f"side-by-side-{name}.log").open("wb")
    process = subprocess.Popen(
        server.command(args.model_name, alias_uri, port), cwd=workdir,
        env=server.environment(args.tracking_uri, args.model_name, port),
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    log.close()
    return process, f"http://127.0.0.1:{port}"


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", required=True, help="MLflow store with the champion")
    parser.add_argument("--model-name", default="product-classifier")
    parser.add_argument("--before", required=True, help="folder with the other `serving` package")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--duration", type=int, default=8, help="seconds of load per round")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--shape",
        choices=("single", "batch"),
        default="single",
        help="one product per request, or bench_serving's batches of 100 (with --concurrency 2)",
    )
    parser.add_argument("--workdir", default="/tmp/bench-side-by-side")
    parser.add_argument("--output", default=str(RESULTS / "side-by-side.json"))
    return parser.parse_args()


if __name__ == "__main__":
    main()
