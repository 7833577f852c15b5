"""A8: is the cluster healthy on OVN-Kubernetes? The vendor's four checks, as a report.

Pods are judged by what the migration can have caused. Pods stuck Terminating only because a Kuryr
finalizer is still on them are expected (the cleanup removes those finalizers); pods that ended
(Succeeded or Failed) before the switch are listed as notes (an old failed Job or image-pruner pod
must not stop the run before A9). A pod not running after the switch (its sandbox, its network, a
crash loop) is an error naming its node: rebooting that node again (`reboot --node`) usually cures it.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from kuryr_cleanup import kube as k
from kuryr_cleanup.kuryr import POD_FINALIZER
from kuryr_cleanup.migration import facts, reboot
from kuryr_cleanup.migration.base import OVN, MigrationContext
from kuryr_cleanup.render import API_VERSION

# Container waiting reasons that mean the pod is broken, not starting.
ERROR_REASONS = frozenset({
    "CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError", "CreateContainerError",
    "InvalidImageName", "RunContainerError", "ContainerCannotRun",
})
# Sandbox creation failures: what pods show when their node's network plugin is not working.
SANDBOX_MARKERS = ("FailedCreatePodSandBox", "failed to create pod network sandbox")
# Waiting reasons of a pod still starting; past STUCK_AFTER seconds it is stuck, usually because its
# sandbox can't be created (the kubelet reports that only as events: FailedCreatePodSandBox).
STARTING_REASONS = frozenset({"ContainerCreating", "PodInitializing"})
STUCK_AFTER = 600.0
MAX_LISTED = 20


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    problems: tuple[str, ...] = ()
    expected: tuple[str, ...] = ()  # things that look wrong but are not (Kuryr-finalizer Terminating pods)

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "problems": list(self.problems),
                "expected": list(self.expected)}


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def failures(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.checks if not c.ok]

    def nodes_with_pod_errors(self) -> list[str]:
        return sorted({p.split(" on node ", 1)[1].split(":", 1)[0] for c in self.checks
                       for p in c.problems if " on node " in p} - {"(unscheduled)"})


def _age(pod: dict[str, Any], now: float) -> float | None:
    stamp = (pod.get("status") or {}).get("startTime") or (pod.get("metadata") or {}).get("creationTimestamp")
    try:
        started = dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return None
    return now - started.timestamp()


def pod_error(pod: dict[str, Any], now: float | None = None) -> str | None:
    status = pod.get("status") or {}
    if status.get("phase") == "Pending" and (pod.get("spec") or {}).get("nodeName"):  # scheduled, not starting
        age = _age(pod, time.time() if now is None else now)
        reasons = [str(((cs.get("state") or {}).get("waiting") or {}).get("reason") or "")
                   for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])]
        starting = [r for r in reasons if r in STARTING_REASONS] or ([] if reasons else ["no container started"])
        if starting and age is not None and age > STUCK_AFTER:
            return f"Pending ({starting[0]}) for {age / 60:.0f} min (see its events: FailedCreatePodSandBox?)"
    if status.get("phase") == "Failed" and status.get("reason") != "Evicted":
        return f"phase Failed ({status.get('reason') or 'no reason'})"
    if status.get("phase") == "Unknown":
        return "phase Unknown"
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in ERROR_REASONS:
            return f"container {cs.get('name')} {waiting['reason']}"
        message = str(waiting.get("message") or "")
        if any(marker in message for marker in SANDBOX_MARKERS):
            return f"container {cs.get('name')}: {message[:120]}"
    return None


def _stamp(text: Any) -> float | None:
    try:
        return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def ended_at(pod: dict[str, Any]) -> float | None:
    """When a pod that ended did so: its containers' last finishedAt, else its conditions' last change."""
    status = pod.get("status") or {}
    finished = [_stamp(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt"))
                for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])]
    known = [t for t in finished if t is not None]
    if not known:
        known = [t for t in (_stamp(c.get("lastTransitionTime")) for c in status.get("conditions") or [])
                 if t is not None]
    return max(known) if known else None


def switch_time(mctx: MigrationContext, config: dict[str, Any]) -> float | None:
    """When the network type was switched (A5): recorded by the run that switched it; else the last
    write of `spec.networkType` that Network.config's managedFields show (a switch made by hand or
    from another run directory)."""
    recorded = mctx.step_state().get("switched_at")
    if recorded:
        return float(recorded)
    times = [_stamp(entry.get("time")) for entry in (config.get("metadata") or {}).get("managedFields") or []
             if "f:networkType" in ((entry.get("fieldsV1") or {}).get("f:spec") or {})]
    known = [t for t in times if t is not None]
    return max(known) if known else None


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _end_reason(pod: dict[str, Any]) -> str:
    status = pod.get("status") or {}
    if status.get("reason"):
        return str(status["reason"])
    for cs in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
        terminated = (cs.get("state") or {}).get("terminated") or {}
        if terminated:
            return f"{terminated.get('reason') or 'terminated'}, exit code {terminated.get('exitCode')}"
    return "no reason given"


def _ended_before(pod: dict[str, Any], switched: float | None) -> float | None:
    """The end time of a pod that ended (Succeeded or Failed) before the switch, else None."""
    if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed") or switched is None:
        return None
    end = ended_at(pod)
    # Kubernetes times have whole seconds: a pod that ended in the second of the switch may have ended
    # after it, so only an end a whole second before the switch is certain (else it is the migration's).
    return end if end is not None and end + 1 <= switched else None


def check_pods(mctx: MigrationContext, switched: float | None = None) -> Check:
    errors: list[str] = []
    expected: list[str] = []
    ended: list[str] = []
    for pod in facts.list_all(mctx, k.POD):
        meta = pod["metadata"]
        status = pod.get("status") or {}
        ref = f"{meta.get('namespace')}/{meta['name']}"
        node = (pod.get("spec") or {}).get("nodeName") or "(unscheduled)"
        if meta.get("deletionTimestamp"):
            if POD_FINALIZER in (meta.get("finalizers") or []):
                expected.append(f"{ref} Terminating (Kuryr finalizer; the cleanup removes it)")
            continue
        end = _ended_before(pod, switched)
        if end is not None:
            ended.append(f"{ref} on node {node} {status.get('phase')} ({_end_reason(pod)}) at {_when(end)}, before "
                         f"the switch: not the migration's doing")
            continue
        why = pod_error(pod)
        if why:
            if status.get("phase") == "Failed" and switched is None:
                why += " (the time of the switch is unknown to this run directory: whether it failed before is too)"
            errors.append(f"pod {ref} on node {node}: {why}")
    errors.sort()
    detail = "no pod in an error state" if not errors else f"{len(errors)} pod(s) in an error state"
    if expected:
        detail += f"; {len(expected)} Terminating because of the Kuryr finalizer (expected)"
    if ended:
        detail += f"; {len(ended)} ended before the switch (notes)"
    notes = sorted(expected)[:MAX_LISTED] + sorted(ended)[:MAX_LISTED]
    return Check("pods", not errors, detail, tuple(errors[:MAX_LISTED]), tuple(notes))


def check_reboots(mctx: MigrationContext, nodes: list[dict[str, Any]]) -> Check:
    """While the migration is under way, every node must have rebooted since the switch.

    Judged from the boot IDs this run directory recorded: status.networkType says OVNKubernetes as
    soon as the CNO has processed the switch, before any node has rebooted.
    """
    if not (mctx.ctx.state.get(reboot.STATE_KEY) or {}).get("boot_ids"):
        return Check("node reboots", False, "no boot IDs recorded in this run directory: whether the nodes "
                     "rebooted since the switch is unknown (use the run directory of the migration)")
    waiting = [p.name for p in reboot.progress(mctx, nodes) if not p.rebooted]
    return Check("node reboots", not waiting, f"{len(nodes) - len(waiting)}/{len(nodes)} rebooted since the switch",
                 tuple(f"node {n} has not rebooted since the switch" for n in waiting))


def run_checks(mctx: MigrationContext) -> Report:
    report = Report()
    state = facts.network_state(mctx)
    report.checks.append(Check("network type", state.status_type == OVN,
                               f"status.networkType is {state.status_type or 'unset'}"
                               + ("" if state.status_type == OVN else f" (expected {OVN})")))
    nodes = facts.nodes(mctx)
    not_ready = [facts.node_name(n) for n in nodes if not facts.node_ready(n)]
    report.checks.append(Check("nodes", not not_ready,
                               f"{len(nodes) - len(not_ready)}/{len(nodes)} Ready",
                               tuple(f"node {n} NotReady" for n in not_ready)))
    if state.switched and state.migration is not None:
        report.checks.append(check_reboots(mctx, nodes))
    report.checks.append(check_pods(mctx, switch_time(mctx, state.config) if state.switched else None))
    operators = facts.unhealthy_operators(mctx)
    total = len(facts.list_all(mctx, k.CLUSTER_OPERATOR))
    report.checks.append(Check("cluster operators", not operators,
                               f"{total - len(operators)}/{total} Available, not Progressing, not Degraded",
                               tuple(operators)))
    return report


def report_lines(report: Report) -> list[str]:
    lines = []
    for check in report.checks:
        lines.append(f"{'ok' if check.ok else 'FAILED':<7} {check.name:<18} {check.detail}")
        lines.extend(f"        - {p}" for p in check.problems)
        lines.extend(f"        ~ {e}" for e in check.expected)
    if not report.ok:
        nodes = report.nodes_with_pod_errors()
        if nodes:
            lines.append("hint: pods in error on a node are usually cured by rebooting that node again: "
                         + ", ".join(nodes) + "; kuryr-migrate reboot " + " ".join(f"--node {n}" for n in nodes)
                         + " (Nova, rolling, as the migration's own reboots)")
    return lines


def report_document(report: Report, infra_id: str) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "VerifyReport", "infraID": infra_id, "ok": report.ok,
            "checks": [c.public() for c in report.checks]}
