"""Benchmark: adaptive per-service concurrency against fixed settings, on services with a capacity.

The simulator's capacity model (`sim serve --capacity`) makes each service serve some requests in
parallel at the base latency, queue more (latency grows with the requests in flight) and refuse
(503) beyond a hard limit. The same cleanup runs with `--fixed-concurrency` at several settings and
with the adaptive limits under a ceiling; printed for each: the run's wall time after discovery, its
throughput (writes per second), and the 503s it drew.

    python benchmarks/bench_adaptive.py --fixed 4,8,12,20 --ceiling 20
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_cleanup import run_benchmark  # noqa: E402

SPEC = "namespaces=100,pods=10,services=2,policies=1,pool-ports=0"
CAPACITY = "network=8:12,load-balancer=4:8,kube=10:16"


def one(spec: str, latency_ms: float, capacity: str, concurrency: int, fixed: bool) -> dict[str, Any]:
    out = run_benchmark(spec, latency_ms, 1.0, concurrency, plan=False,
                        tool_args=["--fixed-concurrency"] if fixed else [],
                        sim_args=["--capacity", capacity], quiet=True)
    writes = sum(n for key, n in out["requests"].items() if not key.endswith((" GET", " HEAD"))
                 and not key.startswith("identity"))
    refused = int(out["statuses"].get("503", 0))
    return {"setting": f"fixed {concurrency}" if fixed else f"adaptive (ceiling {concurrency})",
            "run_seconds": out["engine_wall"], "wall": out["wall"], "writes": writes,
            "writes_per_second": (writes - refused) / out["engine_wall"], "503": refused,
            "cpu": out["cpu"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default=SPEC)
    parser.add_argument("--capacity", default=CAPACITY, help="the simulator's --capacity")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--fixed", default="4,8,12,20", help="fixed concurrencies to compare")
    parser.add_argument("--ceiling", type=int, default=20, help="--concurrency of the adaptive run")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    rows = [one(args.spec, args.latency_ms, args.capacity, int(c), True) for c in args.fixed.split(",")]
    rows.append(one(args.spec, args.latency_ms, args.capacity, args.ceiling, False))
    best = max(rows[:-1], key=lambda r: r["writes_per_second"])
    print(f"scenario {args.spec}; latency {args.latency_ms:g} ms; capacity {args.capacity}")
    print("| setting | run after discovery | writes/s | 503s | vs best fixed |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['setting']} | {r['run_seconds']:.1f} s | {r['writes_per_second']:.0f} | {r['503']} | "
              f"{r['writes_per_second'] / best['writes_per_second']:.0%} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
