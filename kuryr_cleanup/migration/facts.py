"""Reading where the cluster is: network objects, phase, pools, nodes, operators, daemon logs.

Everything here is read-only and goes through the retry policy (a 503 from a busy API server during
the reboots is expected, not a reason to stop).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from kuryr_cleanup import kube as k
from kuryr_cleanup.migration.base import KURYR, OVN, MigrationContext
from kuryr_cleanup.retrying import call

MCO_NAMESPACE = "openshift-machine-config-operator"
MULTUS_NAMESPACE = "openshift-multus"
ANN_CURRENT = "machineconfiguration.openshift.io/currentConfig"
ANN_DESIRED = "machineconfiguration.openshift.io/desiredConfig"
ANN_STATE = "machineconfiguration.openshift.io/state"
ANN_REASON = "machineconfiguration.openshift.io/reason"
PROVIDER_PREFIX = "openstack:///"


def read(mctx: MigrationContext, fn: Any) -> Any:
    return call(mctx.ctx.options.retry, fn, retry_conflicts=False)


def get(mctx: MigrationContext, kind: k.Kind, name: str, namespace: str | None = None) -> dict[str, Any] | None:
    return read(mctx, lambda: mctx.cluster.get(kind, name, namespace))


def list_all(mctx: MigrationContext, kind: k.Kind, namespace: str | None = None) -> list[dict[str, Any]]:
    return read(mctx, lambda: list(mctx.cluster.list(kind, namespace)))


def conditions(obj: dict[str, Any] | None) -> dict[str, str]:
    return {str(c.get("type")): str(c.get("status")) for c in ((obj or {}).get("status") or {}).get("conditions") or []}


def condition_message(obj: dict[str, Any], ctype: str) -> str:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == ctype:
            return str(cond.get("message") or cond.get("reason") or "")
    return ""


# -- the network objects and the phase -----------------------------------------------------------
@dataclass(frozen=True)
class NetworkState:
    config: dict[str, Any]  # Network.config.openshift.io/cluster
    operator: dict[str, Any]  # Network.operator.openshift.io/cluster

    @property
    def status_type(self) -> str:
        return str((self.config.get("status") or {}).get("networkType") or "")

    @property
    def spec_type(self) -> str:
        return str((self.config.get("spec") or {}).get("networkType") or "")

    @property
    def migration(self) -> dict[str, Any] | None:
        value = (self.operator.get("spec") or {}).get("migration")
        return value if isinstance(value, dict) else None

    @property
    def migration_target(self) -> str | None:
        mig = self.migration
        return str(mig.get("networkType")) if mig and mig.get("networkType") else None

    @property
    def switched(self) -> bool:
        """A5 happened: spec or status says OVNKubernetes.

        Never proof that the nodes rebooted: the CNO may set `status.networkType` as soon as it has
        processed the switch, while every node still runs the old plugin until its reboot.
        """
        return self.spec_type == OVN or self.status_type == OVN

    @property
    def finished(self) -> bool:
        """A9 happened: switched and spec.migration cleared (only done after the reboots and A8)."""
        return self.switched and self.migration is None

    @property
    def phase(self) -> str:
        """Where the migration is, in the admin's words (the cluster can't tell whether nodes rebooted)."""
        if self.finished:
            return "migrated"
        if self.switched:
            return "switched (multus rollout, node reboots, verify and finish left)"
        if self.migration_target == OVN:
            return "prepared (machine configs rolling out)"
        if self.status_type == KURYR:
            return "on Kuryr (not started)"
        return f"on {self.status_type or 'an unknown network type'}"

    @property
    def started(self) -> bool:
        return self.migration_target == OVN or self.switched


def network_state(mctx: MigrationContext) -> NetworkState:
    config = get(mctx, k.NETWORK_CONFIG, "cluster") or {}
    operator = get(mctx, k.NETWORK_OPERATOR, "cluster") or {}
    return NetworkState(config, operator)


# -- machine config pools --------------------------------------------------------------------------
@dataclass(frozen=True)
class PoolState:
    name: str
    machines: int
    updated_machines: int
    updated: bool
    updating: bool
    degraded: bool
    message: str
    target: str  # spec.configuration.name: the rendered config the pool rolls out
    reached: str  # status.configuration.name: the config the MCO says every node of the pool is on
    node_labels: dict[str, str]  # spec.nodeSelector.matchLabels: which nodes belong to the pool
    paused: bool = False  # spec.paused: the MCO renders new configs for the pool but rolls none out
    max_unavailable: int = 1  # nodes the MCO updates at a time (spec.maxUnavailable, scaled)

    @property
    def settled(self) -> bool:
        return self.updated and not self.updating and not self.degraded

    @property
    def on_target(self) -> bool:
        """Settled on its target: Updated conditions alone may be stale (the MCO wrote them before it
        picked the new target), status.configuration says which config they are about."""
        return self.settled and bool(self.target) and self.reached == self.target

    def selects(self, node: dict[str, Any]) -> bool:
        labels = (node.get("metadata") or {}).get("labels") or {}
        return bool(self.node_labels) and all(labels.get(k) == v for k, v in self.node_labels.items())

    def text(self) -> str:
        return f"{self.name} {self.updated_machines}/{self.machines}"


def pools(mctx: MigrationContext) -> list[PoolState]:
    result = []
    for pool in sorted(list_all(mctx, k.MACHINE_CONFIG_POOL), key=lambda p: p["metadata"]["name"]):
        conds = conditions(pool)
        status = pool.get("status") or {}
        degraded = conds.get("Degraded") == "True" or conds.get("NodeDegraded") == "True"
        message = condition_message(pool, "NodeDegraded") if degraded else ""
        spec = pool.get("spec") or {}
        selector = (spec.get("nodeSelector") or {}).get("matchLabels") or {}
        result.append(PoolState(
            name=pool["metadata"]["name"],
            machines=int(status.get("machineCount") or 0),
            updated_machines=int(status.get("updatedMachineCount") or 0),
            updated=conds.get("Updated") == "True",
            updating=conds.get("Updating") == "True",
            degraded=degraded,
            message=message or condition_message(pool, "Degraded"),
            target=str((spec.get("configuration") or {}).get("name") or ""),
            reached=str((status.get("configuration") or {}).get("name") or ""),
            node_labels={str(k): str(v) for k, v in selector.items()},
            paused=bool(spec.get("paused")),
            max_unavailable=max_unavailable(spec.get("maxUnavailable"), int(status.get("machineCount") or 0)),
        ))
    return result


def max_unavailable(value: Any, machines: int) -> int:
    """How many of a pool's nodes the MCO updates at once: `spec.maxUnavailable`, a number or a
    percentage of the pool rounded down, never less than 1 (the MCO's getMaxUnavailable); default 1."""
    if value is None or value == "":
        return 1
    text = str(value).strip()
    try:
        number = int(machines * float(text[:-1]) / 100) if text.endswith("%") else int(text)
    except ValueError:
        return 1
    return max(1, number)


def pool_of(node: dict[str, Any], pools: list[PoolState]) -> PoolState | None:
    """The pool whose config the node runs: a custom pool (infra, ...) wins over `worker`, as in the MCO."""
    matching = [p for p in pools if p.selects(node)]
    custom = [p for p in matching if p.name != "worker"]
    found = custom or matching
    return found[0] if found else None


def rendered_config_has_ovs_line(mctx: MigrationContext, name: str, network_type: str = OVN) -> bool:
    """The rendered config runs `configure-ovs.sh OVNKubernetes` (the vendor's check with grep ExecStart).

    A rendered config never changes (its name is a hash of its content): once found, it is not read
    again at every poll of A4."""
    remembered = f"rendered-config-runs:{name}:{network_type}"
    if mctx.cache.get(remembered):
        return True
    config = get(mctx, k.MACHINE_CONFIG, name)
    if config is None:
        return False
    units = (((config.get("spec") or {}).get("config") or {}).get("systemd") or {}).get("units") or []
    wanted = f"ExecStart=/usr/local/bin/configure-ovs.sh {network_type}"
    found = any(wanted in (unit.get("contents") or "") for unit in units)
    if found:
        mctx.cache[remembered] = True
    return found


# -- nodes -------------------------------------------------------------------------------------------
def nodes(mctx: MigrationContext) -> list[dict[str, Any]]:
    return sorted(list_all(mctx, k.NODE), key=lambda n: n["metadata"]["name"])


def node_name(node: dict[str, Any]) -> str:
    return str(node["metadata"]["name"])


def node_ready(node: dict[str, Any]) -> bool:
    return conditions(node).get("Ready") == "True"


def boot_id(node: dict[str, Any]) -> str:
    return str(((node.get("status") or {}).get("nodeInfo") or {}).get("bootID") or "")


def internal_ip(node: dict[str, Any]) -> str | None:
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == "InternalIP":
            return str(address.get("address"))
    return None


def is_control_plane(node: dict[str, Any]) -> bool:
    labels = (node.get("metadata") or {}).get("labels") or {}
    return "node-role.kubernetes.io/master" in labels or "node-role.kubernetes.io/control-plane" in labels


def server_id_of(node: dict[str, Any]) -> str | None:
    provider = str((node.get("spec") or {}).get("providerID") or "")
    if provider.startswith(PROVIDER_PREFIX):
        return provider[len(PROVIDER_PREFIX):].strip("/") or None
    return None


def node_annotations(node: dict[str, Any]) -> dict[str, str]:
    return dict((node.get("metadata") or {}).get("annotations") or {})


def node_config_done(node: dict[str, Any], target: str | None = None) -> bool:
    """The daemon is Done and the node runs its desired config (and that is `target`, when given)."""
    ann = node_annotations(node)
    current = ann.get(ANN_CURRENT)
    done = ann.get(ANN_STATE) == "Done" and bool(current) and current == ann.get(ANN_DESIRED)
    return done and (target is None or current == target)


def daemon_log_tail(mctx: MigrationContext, node: str, lines: int = 20) -> list[str]:
    """The last lines of the machine-config-daemon pod's log on `node` (what the vendor says to read)."""
    try:
        pods = list_all(mctx, k.POD, MCO_NAMESPACE)
        for pod in pods:
            name = pod["metadata"]["name"]
            if name.startswith("machine-config-daemon-") and (pod.get("spec") or {}).get("nodeName") == node:
                api = client.CoreV1Api(mctx.cluster.api_client)
                text = read(mctx, functools.partial(api.read_namespaced_pod_log, name, MCO_NAMESPACE,
                                                    container="machine-config-daemon", tail_lines=lines))
                return [f"{name}: {line}" for line in str(text or "").splitlines()] or [f"{name}: (empty log)"]
    except Exception as exc:  # a log is a hint for the admin; failing to read it must not hide the real error
        return [f"(could not read the machine-config-daemon log: {type(exc).__name__})"]
    return [f"(no machine-config-daemon pod on {node})"]


def cluster_version(mctx: MigrationContext) -> dict[str, Any] | None:
    return get(mctx, k.CLUSTER_VERSION, "version")


# -- cluster operators -------------------------------------------------------------------------------
def unhealthy_operators(mctx: MigrationContext) -> list[str]:
    """ClusterOperators not Available=True/Progressing=False/Degraded=False, each with why."""
    problems = []
    for op in sorted(list_all(mctx, k.CLUSTER_OPERATOR), key=lambda o: o["metadata"]["name"]):
        conds = conditions(op)
        name = op["metadata"]["name"]
        bad = []
        if conds.get("Available") != "True":
            bad.append("Available=" + conds.get("Available", "missing"))
        if conds.get("Progressing") != "False":
            bad.append("Progressing=" + conds.get("Progressing", "missing"))
        if conds.get("Degraded") != "False":
            message = condition_message(op, "Degraded")
            bad.append("Degraded=" + conds.get("Degraded", "missing") + (f" ({message})" if message else ""))
        if bad:
            problems.append(f"ClusterOperator {name}: {', '.join(bad)}")
    return problems


def multus(mctx: MigrationContext) -> dict[str, Any] | None:
    return get(mctx, k.DAEMON_SET, "multus", MULTUS_NAMESPACE)


def multus_progress(ds: dict[str, Any]) -> tuple[bool, int, int, int, bool]:
    """(rolled out, updated, available, desired, spec update observed), as `oc rollout status` judges
    a DaemonSet (kubectl's DaemonSetStatusViewer): done once status.observedGeneration has reached
    metadata.generation and no fewer pods are updated, nor available, than are desired."""
    status = ds.get("status") or {}
    generation = int(ds["metadata"].get("generation") or 0)
    desired = int(status.get("desiredNumberScheduled") or 0)
    updated = int(status.get("updatedNumberScheduled") or 0)
    available = int(status.get("numberAvailable") or 0)
    observed = int(status.get("observedGeneration") or 0) >= generation
    done = observed and updated >= desired and available >= desired
    return done, updated, available, desired, observed
