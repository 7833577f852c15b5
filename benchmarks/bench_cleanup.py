"""Benchmark: `kuryr-migrate cleanup --yes` on a generated cluster served by the simulator.

Runs the simulator and the tool as separate processes (as an admin would), with a per-call latency
that stands for a real cloud's, and prints: wall time, API calls (reads, writes), the ratio of calls
to the lower bound (one write per action), the ratio of wall time to its lower bound (the writes
spread over the worker pool at the given latency, plus one LB deletion delay), and what the vendor's
serial shell procedure would take at ~1.5 s per CLI call.

    python benchmarks/bench_cleanup.py --namespaces 500 --pods 5 --latency-ms 20
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

VENDOR_SECONDS_PER_CALL = 1.5  # one `openstack`/`oc` process per resource in the vendor procedure


def start_simulator(
    spec: str, latency_ms: float, lb_delete: float, workdir: Path
) -> tuple[subprocess.Popen[str], dict[str, str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "kuryr_cleanup", "sim", "serve", "--generate", spec, "--latency", str(latency_ms),
         "--workdir", str(workdir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    env: dict[str, str] = {}
    url = ""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("# simulator"):
            url = re.search(r"OpenStack at (\S+),", line).group(1)  # type: ignore[union-attr]
        elif line.startswith("export "):
            name, _, value = line[len("export "):].strip().partition("=")
            env[name] = value
            if name == "KUBECONFIG":
                break
    control(url, "PUT", "delays", {"lb_delete": lb_delete, "lb_create": 0.0})
    return proc, env, url


def control(url: str, method: str, path: str, data: Any = None) -> Any:
    body = json.dumps(data).encode() if data is not None else None
    with urllib.request.urlopen(urllib.request.Request(f"{url}/_sim/{path}", data=body, method=method)) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--namespaces", type=int, default=200)
    parser.add_argument("--pods", type=int, default=5)
    parser.add_argument("--services", type=int, default=1)
    parser.add_argument("--policies", type=int, default=1)
    parser.add_argument("--latency-ms", type=float, default=10.0, help="added to every API call")
    parser.add_argument("--lb-delete-seconds", type=float, default=1.0, help="Octavia's asynchronous delete time")
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()

    spec = f"namespaces={args.namespaces},pods={args.pods},services={args.services},policies={args.policies}"
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        sim, env, url = start_simulator(spec, args.latency_ms, args.lb_delete_seconds, Path(tmp) / "sim")
        generated = time.monotonic() - t0
        try:
            control(url, "DELETE", "requests")
            t1 = time.monotonic()
            run = subprocess.run(
                [sys.executable, "-m", "kuryr_cleanup", "cleanup", "--yes", "--force", "-o", "json",
                 "--run-dir", str(Path(tmp) / "run"), "--concurrency", str(args.concurrency),
                 "--poll-interval", "0.5"],
                env={**os.environ, **env}, capture_output=True, text=True,
            )
            wall = time.monotonic() - t1
            if run.returncode != 0:
                print(run.stdout[-3000:], run.stderr[-3000:], sep="\n")
                return run.returncode
            result = json.loads(run.stdout)
            requests = control(url, "GET", "requests")["requests"]
        finally:
            sim.terminate()
            sim.wait(timeout=30)

    actions = sum(1 for i in result["items"] if i["state"] == "done")
    reads = sum(1 for r in requests if r["method"] == "GET")
    writes = sum(1 for r in requests if r["method"] not in ("GET", "HEAD") and r["service"] != "identity")
    latency = args.latency_ms / 1000.0
    wall_bound = math.ceil(actions / args.concurrency) * latency + args.lb_delete_seconds
    print(f"scenario          {spec}  (generated and served in {generated:.1f} s)")
    print(f"actions           {actions}")
    print(f"wall time         {wall:.1f} s  (lower bound {wall_bound:.1f} s, ratio {wall / wall_bound:.1f})")
    print(f"API calls         {reads + writes}  (reads {reads}, writes {writes})")
    print(f"calls / actions   {(reads + writes) / max(actions, 1):.2f}  (lower bound 1.00: one write per action)")
    print(f"vendor procedure  ~{actions * VENDOR_SECONDS_PER_CALL / 60:.0f} min serial at {VENDOR_SECONDS_PER_CALL} s "
          f"per CLI call ({actions * VENDOR_SECONDS_PER_CALL / wall:.0f}x slower)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
