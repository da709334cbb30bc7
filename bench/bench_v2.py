"""Open Inference Protocol (v2) against /v1/predict: requests/s for one product at concurrency 32.

    .venv/bin/python -m bench.bench_v2                  # trains the sample, then measures
    .venv/bin/python -m bench.bench_v2 --tracking-uri sqlite:////path/mlflow.db  # reuse a store

One server process (one worker), the same real catalog products sent both ways: as
`{"products": [...]}` to /v1/predict and as v2 JSON tensors (one per model field) to
/v2/models/{name}/infer, by wrk (one thread, a Lua script cycling through the bodies). The two
routes alternate within each repeat, so a busy machine slows both alike; the figure that matters
is the ratio. Writes bench/results/v2.json. Needs Debian's wrk.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.bench_serving import (
    OURS,
    RESULTS,
    free_port,
    load_products,
    lua_script,
    stop,
    train_sample,
    wait_ready,
    wrk,
)

CONCURRENCY = 32
PRODUCTS = 500


def main() -> None:
    args = parse_arguments()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: install Debian's wrk (apt-get install -y wrk)")
    workdir = Path(tempfile.mkdtemp(prefix="bench-v2-"))
    tracking_uri = args.tracking_uri or f"sqlite:///{workdir}/mlflow.db"
    if args.tracking_uri is None:
        train_sample(workdir, tracking_uri, args.model_name)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        OURS.command(args.model_name, "", port), cwd=workdir,
        env=OURS.environment(tracking_uri, args.model_name, port),
        stdout=(workdir / "server.log").open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_ready(url + "/readyz", process, timeout=180)
        runs = measure(url, args, workdir)
    finally:
        stop(process)
    report = summarize(runs, args, tracking_uri)
    for route, figures in report["routes"].items():
        print(f"{route:<32}{figures['rps']:8.1f} req/s  p50 {figures['p50_ms']:6.1f} ms  "
              f"p99 {figures['p99_ms']:6.1f} ms  failed {figures['failed']}")  # fmt: skip
    print(f"v2 / v1 requests per second: {report['figures']['rps_ratio_v2_to_v1']:.3f}")
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {output}")


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", help="reuse this MLflow store instead of training")
    parser.add_argument("--model-name", default="product-classifier")
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each route")
    parser.add_argument("--output", default=str(RESULTS / "v2.json"))
    return parser.parse_args()


def measure(url: str, args: argparse.Namespace, workdir: Path) -> dict[str, list[dict]]:
    with urllib.request.urlopen(url + "/v1/model", timeout=10) as response:
        fields = json.load(response)["input_fields"]
    products = [normalized(p, fields) for p in load_products()[:PRODUCTS]]
    bodies = {
        "/v1/predict": [json.dumps({"products": [p]}) for p in products],
        f"/v2/models/{args.model_name}/infer": [json.dumps(v2_body(p, fields)) for p in products],
    }
    scripts = {}
    for index, (route, texts) in enumerate(bodies.items()):
        scripts[route] = workdir / f"route{index}.lua"
        scripts[route].write_text(lua_script(route, texts), "utf-8")
        wrk(url, scripts[route], 8, 2)  # warm-up, not recorded
    runs: dict[str, list[dict]] = {route: [] for route in bodies}
    for repeat in range(args.repeats):
        for route, script in scripts.items():
            print(f"repeat {repeat + 1}/{args.repeats}: {route}", flush=True)
            runs[route].append(wrk(url, script, CONCURRENCY, args.duration))
    return runs


def normalized(product: dict[str, Any], fields: list[dict[str, str]]) -> dict[str, Any]:
    """The product's model fields in forms a tensor carries (strings, lists of them, numbers)."""
    clean: dict[str, Any] = {}
    for field in fields:
        value = product.get(field["name"])
        if field["role"] == "numeric":
            number = as_number(value)
            if number is not None:
                clean[field["name"]] = number
        elif isinstance(value, list) and value:
            clean[field["name"]] = [str(item) for item in value]
        elif isinstance(value, str) and value:
            clean[field["name"]] = value
    return clean


def as_number(value: Any) -> float | None:
    try:
        return float(str(value).strip("$").replace(",", ""))
    except ValueError:
        return None


def v2_body(product: dict[str, Any], fields: list[dict[str, str]]) -> dict[str, Any]:
    inputs = []
    for field in fields:
        name = field["name"]
        if name not in product:
            continue
        value = product[name]
        if field["role"] == "numeric":
            inputs.append({"name": name, "datatype": "FP64", "shape": [1], "data": [value]})
        elif isinstance(value, list):
            inputs.append(
                {"name": name, "datatype": "BYTES", "shape": [1, len(value)], "data": value}
            )
        else:
            inputs.append({"name": name, "datatype": "BYTES", "shape": [1], "data": [value]})
    return {"inputs": inputs, "parameters": {"top_k": 3}}


def summarize(
    runs: dict[str, list[dict]], args: argparse.Namespace, tracking_uri: str
) -> dict[str, Any]:
    routes = {
        route: {key: statistics.median(r[key] for r in results) for key in results[0]}
        for route, results in runs.items()
    }
    for route, results in runs.items():
        routes[route]["failed"] = sum(r["failed"] for r in results)
    v1, v2 = routes.values()
    return {
        "command": " ".join([Path(sys.executable).name, "-m", "bench.bench_v2", *sys.argv[1:]]),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_end": os.getloadavg(),
            "note": "shared machine, other jobs running: compare the routes, not absolute figures",
        },
        "settings": {
            "concurrency": CONCURRENCY,
            "duration_s": args.duration,
            "repeats": args.repeats,
            "products_cycled": PRODUCTS,
            "load_generator": "wrk -t1 (Lua POST script)",
            "workers": 1,
        },
        "model": {"name": args.model_name, "tracking_uri": tracking_uri},
        "routes": routes,
        "runs": runs,
        "figures": {"rps_ratio_v2_to_v1": v2["rps"] / v1["rps"]},
    }


if __name__ == "__main__":
    main()
