"""Benchmark: `kuryr-migrate cleanup --yes` on a generated cluster served by the simulator.

The simulator and the tool run as separate processes (as an admin would run them), with a per-call
latency that stands for a real cloud's and Octavia's asynchronous deletion delay. Printed:

- `cleanup --plan` (discovery and planning: every read, no write): wall time, the tool's CPU, peak RSS;
- the run: wall time, the tool's CPU (user+system of the tool process alone, from wait4) and the
  simulator's (from /proc), the tool's peak RSS, requests by service and method;
- the lower bound of the run's wall time and each of its terms, and the ratio to it.

The lower bound is the larger of two things no scheduler can beat:
- the work term: every write costs one latency and at most `concurrency` are in flight, so
  writes x latency / concurrency (shown per service; reads are not counted: they are the tool's
  overhead, and discovery's reads are in the ratio);
- the critical path of the step graph (cleanup.REGISTRY): a step cannot start before the steps it
  depends on have finished, and takes at least ceil(its writes / concurrency) latencies; the step
  that deletes load balancers takes Octavia's deletion delay on top.

    python benchmarks/bench_cleanup.py --scenario S --latency-ms 20
    python benchmarks/bench_cleanup.py --spec namespaces=50,pods=4 --latency-ms 200 --concurrency 20
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kuryr_cleanup.cleanup import REGISTRY

VENDOR_SECONDS_PER_CALL = 1.5  # one `openstack`/`oc` process per resource in the vendor procedure

# The sizes. L is 2,000 namespaces and 20,000 pod ports on 100+ nodes; the generator has whole
# numbers of Services and NetworkPolicies per namespace, so L has 4,000 load balancers and 2,000
# policies (more than the 3,000 and 500 asked for: a harder case). No pool ports, so the pods'
# ports are the 20,000; the workers follow from 200 pods per node (100 workers + 3 masters).
SCENARIOS = {
    "S": "namespaces=100,pods=10,services=2,policies=1,pool-ports=0",
    "M": "namespaces=500,pods=10,services=2,policies=1,pool-ports=0",
    "L": "namespaces=2000,pods=10,services=2,policies=1,pool-ports=0",
}

# Which API a plan item's write goes to, by the item's kind (Kubernetes kinds are capitalised).
SERVICE_BY_KIND = {
    "load balancer": "load-balancer",
    "floating IP": "network", "port": "network", "trunk": "network", "network": "network",
    "router": "network", "router interface": "network", "security group": "network",
    "subnet pool": "network", "subnet": "network",
}
DONE_STATES = ("done",)


def item_service(kind: str) -> str:
    if kind in SERVICE_BY_KIND:
        return SERVICE_BY_KIND[kind]
    return "kube" if kind[:1].isupper() else "network"


# -- processes -----------------------------------------------------------------------------------------
def start_simulator(spec: str, latency_ms: float, lb_delete: float, workdir: Path,
                    extra: list[str] | None = None) -> tuple[subprocess.Popen[str], dict[str, str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "kuryr_cleanup", "sim", "serve", "--generate", spec, "--latency", str(latency_ms),
         "--workdir", str(workdir), *(extra or [])],
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
    if not url:
        raise RuntimeError(f"the simulator did not start: {proc.stderr.read() if proc.stderr else ''}")
    control(url, "PUT", "delays", {"lb_delete": lb_delete, "lb_create": 0.0})
    return proc, env, url


def control(url: str, method: str, path: str, data: Any = None) -> Any:
    body = json.dumps(data).encode() if data is not None else None
    with urllib.request.urlopen(urllib.request.Request(f"{url}/_sim/{path}", data=body, method=method)) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a running process (utime and stime of /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class ToolRun:
    returncode: int
    stdout: str
    stderr: str
    wall: float
    cpu: float  # user + system seconds of the tool process alone
    peak_rss_mb: float


def run_tool(args: list[str], env: dict[str, str]) -> ToolRun:
    """Run the tool and account for it alone: wait4 gives this child's own rusage."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "kuryr_cleanup", *args], env={**os.environ, **env},
                                stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ToolRun(proc.returncode, out.read(), err.read(), wall, usage.ru_utime + usage.ru_stime,
                       usage.ru_maxrss / 1024)


def engine_seconds(journal: Path) -> float:
    """From the journal's run-start to its run-end: the run after discovery and planning."""
    times = {}
    with open(journal, encoding="utf-8") as fh:
        for line in fh:
            if '"run-start"' in line or '"run-end"' in line:
                record = json.loads(line)
                times[record["event"]] = datetime.datetime.fromisoformat(record["time"]).timestamp()
    return times["run-end"] - times["run-start"]


# -- the lower bound -----------------------------------------------------------------------------------
@dataclass
class Bound:
    latency: float
    concurrency: int
    lb_delete: float
    writes_by_service: dict[str, int]
    writes_by_step: dict[str, int]
    critical_path: list[str] = field(default_factory=list)
    critical_seconds: float = 0.0

    def __post_init__(self) -> None:
        self.critical_path, self.critical_seconds = self._critical()

    def step_seconds(self, step: str) -> float:
        n = self.writes_by_step.get(step, 0)
        seconds = math.ceil(n / self.concurrency) * self.latency
        if step == "B3" and n:
            seconds += self.latency + self.lb_delete  # the last LB's delete, then Octavia's delay
        return seconds

    def _critical(self) -> tuple[list[str], float]:
        deps = REGISTRY.dependencies()
        best: dict[str, tuple[float, list[str]]] = {}
        for step in (s.id for s in REGISTRY.steps):  # registry order: dependencies first
            before = max((best[d] for d in deps[step]), default=(0.0, []), key=lambda b: b[0])
            best[step] = (before[0] + self.step_seconds(step), [*before[1], step])
        seconds, path = max(best.values(), key=lambda b: b[0])
        return path, seconds

    @property
    def work_seconds(self) -> float:
        return sum(self.writes_by_service.values()) * self.latency / self.concurrency

    @property
    def seconds(self) -> float:
        return max(self.work_seconds, self.critical_seconds)


# -- the benchmark -------------------------------------------------------------------------------------
def run_benchmark(spec: str, latency_ms: float, lb_delete: float, concurrency: int, plan: bool = True,
                  tool_args: list[str] | None = None, sim_args: list[str] | None = None,
                  quiet: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"spec": spec, "latency_ms": latency_ms, "lb_delete": lb_delete,
                           "concurrency": concurrency}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        sim, env, url = start_simulator(spec, latency_ms, lb_delete, Path(tmp) / "sim", sim_args)
        out["generated_seconds"] = time.monotonic() - t0
        common = ["--run-dir", str(Path(tmp) / "run"), "--concurrency", str(concurrency)]
        try:
            if plan:
                planned = run_tool(["cleanup", "--plan", "-o", "json", *common], env)
                if planned.returncode != 0:
                    raise RuntimeError(f"cleanup --plan failed:\n{planned.stdout[-3000:]}\n{planned.stderr[-3000:]}")
                out["plan"] = {"wall": planned.wall, "cpu": planned.cpu, "peak_rss_mb": planned.peak_rss_mb,
                               "reads": len(control(url, "GET", "requests")["requests"])}
            control(url, "DELETE", "requests")
            sim_cpu0 = cpu_seconds(sim.pid)
            run = run_tool(["cleanup", "--yes", "--force", "-o", "json", "--poll-interval", "0.5", *common,
                            *(tool_args or [])], env)
            out["sim_cpu"] = cpu_seconds(sim.pid) - sim_cpu0
            if run.returncode != 0:
                raise RuntimeError(f"cleanup failed ({run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
            result = json.loads(run.stdout)
            requests = control(url, "GET", "requests")["requests"]
            out["engine_wall"] = engine_seconds(Path(tmp) / "run" / "journal.jsonl")
        finally:
            sim.terminate()
            sim.wait(timeout=60)
    out.update(wall=run.wall, cpu=run.cpu, peak_rss_mb=run.peak_rss_mb)
    by_call = Counter((r["service"], r["method"]) for r in requests)
    out["requests"] = {f"{s} {m}": n for (s, m), n in sorted(by_call.items())}
    out["statuses"] = dict(Counter(str(r["status"]) for r in requests))
    writes_by_service = Counter(r["service"] for r in requests if r["method"] not in ("GET", "HEAD")
                                and r["service"] != "identity" and r["status"] < 400)
    done = [i for i in result["items"] if i["state"] in DONE_STATES]
    out["actions"] = len(done)
    bound = Bound(latency_ms / 1000.0, concurrency, lb_delete, dict(writes_by_service),
                  dict(Counter(i["step"] for i in done)))
    out["bound"] = {"seconds": bound.seconds, "work_seconds": bound.work_seconds,
                    "by_service": {s: n * bound.latency / concurrency for s, n in writes_by_service.items()},
                    "critical_path": bound.critical_path, "critical_seconds": bound.critical_seconds,
                    "critical_steps": {s: bound.step_seconds(s) for s in bound.critical_path}}
    out["ratio"] = run.wall / bound.seconds if bound.seconds else float("nan")
    out["engine_ratio"] = out["engine_wall"] / bound.seconds if bound.seconds else float("nan")
    if not quiet:
        report(out)
    return out


def report(out: dict[str, Any]) -> None:
    b = out["bound"]
    reads = sum(n for k, n in out["requests"].items() if k.endswith((" GET", " HEAD")))
    total = sum(out["requests"].values())
    print(f"scenario          {out['spec']}  (generated and served in {out['generated_seconds']:.1f} s)")
    print(f"settings          latency {out['latency_ms']:g} ms, LB deletion {out['lb_delete']:g} s, "
          f"concurrency {out['concurrency']}")
    if "plan" in out:
        p = out["plan"]
        print(f"cleanup --plan    {p['wall']:.1f} s wall, {p['cpu']:.1f} s CPU, peak RSS {p['peak_rss_mb']:.0f} MB, "
              f"{p['reads']} requests")
    print(f"actions           {out['actions']}")
    print(f"wall time         {out['wall']:.1f} s  (lower bound {b['seconds']:.1f} s, ratio {out['ratio']:.2f}); "
          f"the run after discovery {out['engine_wall']:.1f} s (ratio {out['engine_ratio']:.2f})")
    print(f"tool CPU          {out['cpu']:.1f} s ({1000 * out['cpu'] / max(total, 1):.2f} ms per request); "
          f"simulator CPU {out['sim_cpu']:.1f} s")
    print(f"tool peak RSS     {out['peak_rss_mb']:.0f} MB")
    print(f"requests          {total} (reads {reads}, writes {total - reads}); statuses "
          + ", ".join(f"{k}: {v}" for k, v in sorted(out["statuses"].items())))
    for key, n in out["requests"].items():
        print(f"  {key:<24} {n}")
    print(f"lower bound       max(work {b['work_seconds']:.1f} s, critical path {b['critical_seconds']:.1f} s)")
    for service, seconds in sorted(b["by_service"].items()):
        print(f"  work {service:<19} {seconds:.1f} s (writes x latency / concurrency)")
    print("  critical path    " + " -> ".join(f"{s} {b['critical_steps'][s]:.1f} s" for s in b["critical_path"]))
    actions = out["actions"]
    print(f"vendor procedure  ~{actions * VENDOR_SECONDS_PER_CALL / 60:.0f} min serial at {VENDOR_SECONDS_PER_CALL} s "
          f"per CLI call ({actions * VENDOR_SECONDS_PER_CALL / out['wall']:.0f}x slower)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), help="the issue's sizes: " + "; ".join(
        f"{k}: {v}" for k, v in SCENARIOS.items()))
    parser.add_argument("--spec", help="a generator spec instead (see docs/scenarios.md)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="added to every API call")
    parser.add_argument("--lb-delete-seconds", type=float, default=1.0, help="Octavia's asynchronous delete time")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--no-plan", action="store_true", help="skip the timed `cleanup --plan`")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    spec = args.spec or SCENARIOS[args.scenario or "S"]
    out = run_benchmark(spec, args.latency_ms, args.lb_delete_seconds, args.concurrency, plan=not args.no_plan)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
