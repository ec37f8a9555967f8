"""Load benchmark of ``trt-inpaint serve`` on loopback: bounded concurrent clients, bounded in count and time.

    python3 benchmarks/serve_load.py --out benchmarks/reports/cpu-2core [--engines DIR] [--clients 8]
        [--requests 48] [--time-limit 300] [--budget 150MiB]

For each server configuration (one request at a time: --max-batch 1; batched: --max-batch 8) a fresh
server runs under the same tight memory budget; the clients post the shipped sample photos. Reports
requests/s, p50/p99 latency, queue time, batch sizes, loads per stage, errors, and the gain of batching.
Without --engines it writes stand-in engines (tests/standins.py, about 110 MB resident per stage on ONNX
Runtime CPU) so that every stage load costs real time and a 150 MiB budget holds one stage at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trt_inpaint.samples import sample_pairs  # noqa: E402

CONFIGS = {"one at a time": ["--max-batch", "1"], "batched": ["--max-batch", "8", "--batch-wait-ms", "50"]}


def machine() -> dict:
    info = {"python": platform.python_version(), "cores": os.cpu_count()}
    try:
        text = Path("/proc/cpuinfo").read_text()
        info["cpu"] = re.search(r"model name\s*:\s*(.*)", text).group(1)
        flags = set(re.search(r"flags\s*:\s*(.*)", text).group(1).split())
        info["flags"] = sorted(f for f in flags if f.startswith(("avx", "amx", "fma", "sse4")))
    except (OSError, AttributeError):
        pass
    info["load_before"] = os.getloadavg()
    return info


def start(engines: Path, budget: str, extra: list[str]) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "trt_inpaint.cli", "serve", "--engines", str(engines),
           "--backend", "ort-cpu", "--memory-budget", budget, "--port", "0", "--no-footprint-cache",
           "--max-queue", "64", *extra]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    line = proc.stdout.readline()
    url = re.search(r"(http://\S+)", line).group(1)
    deadline = time.monotonic() + 60
    while httpx.get(f"{url}/v2/health/ready").status_code != 200:
        if time.monotonic() > deadline:
            raise RuntimeError("server not ready")
        time.sleep(0.1)
    return proc, url


def load(url: str, clients: int, requests: int, time_limit: float) -> dict:
    bodies = [(i.read_bytes(), m.read_bytes()) for i, m in sample_pairs()]
    stop_at = time.monotonic() + time_limit
    counter = iter(range(requests))
    lock = threading.Lock()
    rows: list[dict] = []

    def client(_: int) -> None:
        with httpx.Client(base_url=url, timeout=time_limit) as c:
            while time.monotonic() < stop_at:
                with lock:
                    k = next(counter, None)
                if k is None:
                    return
                img, mask = bodies[k % len(bodies)]
                t0 = time.perf_counter()
                try:
                    r = c.post("/api/v1/inpaint", files={"image": ("i", img), "mask": ("m", mask)})
                    row = {"status": r.status_code, "seconds": time.perf_counter() - t0}
                    if r.status_code == 200:
                        row["queue"] = float(r.headers["x-inpaint-queue-seconds"])
                        row["batch"] = int(r.headers["x-inpaint-batch-size"])
                except httpx.HTTPError as e:
                    row = {"status": type(e).__name__, "seconds": time.perf_counter() - t0}
                with lock:
                    rows.append(row)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    wall = time.perf_counter() - t0
    ok = [r for r in rows if r["status"] == 200]
    lat = sorted(r["seconds"] for r in ok)
    status = httpx.get(f"{url}/api/v1/status").json()
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else None  # noqa: E731
    return {
        "requests": len(rows),
        "ok": len(ok),
        "errors": len(rows) - len(ok),
        "seconds": round(wall, 2),
        "requests_per_second": round(len(ok) / wall, 3),
        "latency_p50_s": round(pct(0.50), 3) if lat else None,
        "latency_p99_s": round(pct(0.99), 3) if lat else None,
        "queue_mean_s": round(statistics.mean(r["queue"] for r in ok), 3) if ok else None,
        "batch_mean": round(statistics.mean(r["batch"] for r in ok), 2) if ok else None,
        "batch_max": max((r["batch"] for r in ok), default=0),
        "batches": status["queue"]["batches"],
        "loads": {s["stage"]: s["loads"] for s in status["stages"]},
        "swaps": status["swaps"],
        "peak_pool_bytes": status["peak_pool_bytes"],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--engines", type=Path)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--requests", type=int, default=48)
    p.add_argument("--time-limit", type=float, default=300)
    p.add_argument("--budget", default="150MiB")
    args = p.parse_args()
    tmp = tempfile.TemporaryDirectory()
    engines = args.engines
    if engines is None:
        from tests.standins import write_standins

        engines = write_standins(Path(tmp.name) / "engines", width=1_000_000)
    report = {"machine": machine(), "engines": str(args.engines or "stand-ins, width 1,000,000"),
              "budget": args.budget, "clients": args.clients, "runs": {}}  # fmt: skip
    for name, extra in CONFIGS.items():
        proc, url = start(engines, args.budget, extra)
        try:
            report["runs"][name] = {"flags": extra, **load(url, args.clients, args.requests, args.time_limit)}
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        print(name, json.dumps(report["runs"][name]), flush=True)
    one, batched = report["runs"]["one at a time"], report["runs"]["batched"]
    report["batching_gain"] = round(batched["requests_per_second"] / one["requests_per_second"], 2)
    report["machine"]["load_after"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serve.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "serve.md").write_text(markdown(report))
    print(f"batching gain: {report['batching_gain']}x requests/s")
    return 0


def markdown(r: dict) -> str:
    m = r["machine"]
    rows = [
        "| configuration | ok / sent | errors | req/s | p50 s | p99 s | mean queue s | mean batch | batches "
        "| loads per stage | swaps |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, x in r["runs"].items():
        loads = ", ".join(f"{k} {v}" for k, v in x["loads"].items())
        rows.append(
            f"| {name} (`{' '.join(x['flags'])}`) | {x['ok']} / {x['requests']} | {x['errors']} | "
            f"{x['requests_per_second']} | {x['latency_p50_s']} | {x['latency_p99_s']} | "
            f"{x['queue_mean_s']} | "
            f"{x['batch_mean']} (max {x['batch_max']}) | {x['batches']} | {loads} | {x['swaps']} |"
        )
    return "\n".join(
        [
            "# `trt-inpaint serve` under load (cpu-2core)",
            "",
            f"Machine: {m.get('cpu')}, {m.get('cores')} cores, flags {' '.join(m.get('flags', []))}; "
            f"load average before {tuple(round(x, 2) for x in m['load_before'])}, after "
            f"{tuple(round(x, 2) for x in m['load_after'])} "
            "(a shared machine: absolute times are upper bounds).",
            "",
            f"Engines: {r['engines']} on ONNX Runtime CPU, memory budget {r['budget']} (one stage "
            "resident at a time), the six shipped sample photos and masks, ensemble. Stand-ins, not the real "
            "models: on 2 CPU cores the full-size models take minutes per image, which would hide what this "
            "measures, the cost of stage loads that batching shares.",
            "",
            f"{r['clients']} concurrent clients on loopback, each posting until the request count or the "
            "time limit is reached; one fresh server per configuration.",
            "",
            *rows,
            "",
            f"Batching gain (requests/s, batched over one at a time): **{r['batching_gain']}x**.",
            "",
            "Command: `python3 benchmarks/serve_load.py --out benchmarks/reports/cpu-2core`",
            "",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
