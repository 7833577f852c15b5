"""What one cluster's builders share: its spec, tag and names, option choices, and the records they make.

The generator builds a cluster in two parts that both extend this state: `infrastructure.Infrastructure`
(installer, CNO, nodes, cluster objects) and `workloads.Workloads` (namespaces, pods, Services,
NetworkPolicies); `cluster.Cluster` joins them and builds the whole cluster.
"""

from __future__ import annotations

from typing import Any

from kuryr_cleanup.sim import neutron
from kuryr_cleanup.sim.generate.names import (
    IMAGE_REGISTRY_NAMESPACE,
    MAX_VLAN_ID,
    PODS_PER_NODE,
    SERVICE_NETWORK,
    SYSTEM_NAMESPACES,
    cluster_tag,
)
from kuryr_cleanup.sim.generate.objects import Addresses, Namespace, Node, policy_name, service_name
from kuryr_cleanup.sim.generate.scenario import Scenario
from kuryr_cleanup.sim.generate.spec import ScenarioSpec


class ClusterState:
    """One cluster's spec, names and choices, and the records its builders make and share."""

    # Set by `Infrastructure` (installer, CNO and nodes come first) and read by `Workloads`.
    node_network: dict[str, Any]
    node_subnet: dict[str, Any]
    node_addresses: Addresses
    router: dict[str, Any]
    master_sg: dict[str, Any]
    worker_sg: dict[str, Any]
    service_network: dict[str, Any]
    service_subnet: dict[str, Any]
    gateway_guard_ip: str | None
    pods_sg: dict[str, Any]
    subnetpool: dict[str, Any]
    masters: list[Node]
    workers_list: list[Node]
    node_by_name: dict[str, Node]

    def __init__(self, scenario: Scenario, spec: ScenarioSpec, infra_id: str, ours: bool) -> None:
        self.sc = scenario
        self.store = scenario.store
        self.spec = spec
        self.infra_id = infra_id
        self.tag = cluster_tag(infra_id)
        self.ours = ours
        self.prefix = "" if spec.legacy_names else f"{infra_id}-"
        self.project_id = self.store.project_id
        self.nodes: list[Node] = []
        self.namespaces: dict[str, Namespace] = {}
        self.service_ips = Addresses(SERVICE_NETWORK, 11)  # .1 is `kubernetes`, .10 is `dns-default`
        self._subnet_index = 0
        self._vlan_ids: dict[str, int] = {}
        self.untagged: dict[str, set[str]] = {}  # kind -> names chosen to lose their tag
        self.error_lbs: set[str] = set()
        self.pool_fip_services: set[str] = set()
        self.user_fip_service: str | None = None
        self._next_worker = 0
        # namespace -> numbers (1..N) of the `finished-pods` that ran there: 1 is the image pruner's
        self.finished_pods: dict[str, list[int]] = {}
        self._plan_options()

    # -- sizing and option choices ---------------------------------------------------------------
    @property
    def workers(self) -> int:
        if self.spec.workers is not None:
            return self.spec.workers
        pods = self.spec.namespaces * self.spec.pods
        return max(2, -(-pods // PODS_PER_NODE))

    @property
    def host_prefix(self) -> int:
        if self.spec.host_prefix is not None:
            return self.spec.host_prefix
        # One subnet per namespace: shrink them until every namespace fits the cluster network (the
        # CNO sizes namespace subnets with hostPrefix, so a /14 holds only 512 of the default /23s).
        needed = self.spec.namespaces + len(SYSTEM_NAMESPACES) + 1
        prefix = 23
        while (1 << (prefix - 14)) < needed and prefix < 28:
            prefix += 1
        return prefix

    def _plan_options(self) -> None:
        spec = self.spec
        user = [f"ns-{i}" for i in range(1, spec.namespaces + 1)]
        first_services = [f"{ns}/{service_name(0)}" for ns in user] if spec.services else []
        if not self.ours:
            return
        count = spec.untagged
        self.untagged = {
            "network": set(user[:count]),
            "lb": set(first_services[:count]),
            "sg": {f"{ns}/{policy_name(0)}" for ns in user[:count]} if spec.policies else set(),
            "port": set(user[:count]),
        }
        all_services = [f"{ns}/{service_name(j)}" for ns in user for j in range(spec.services)]
        if spec.fips and spec.services:
            self.pool_fip_services = set(first_services[:3])
            if spec.services >= 2:
                self.user_fip_service = f"{user[0]}/{service_name(1)}"
            elif len(first_services) > 3:
                self.user_fip_service = first_services[3]
        for number in range(1, spec.finished_pods + 1):
            where = IMAGE_REGISTRY_NAMESPACE if number == 1 or not user else user[(number - 2) % len(user)]
            self.finished_pods.setdefault(where, []).append(number)
        taken = self.pool_fip_services | {self.user_fip_service}
        candidates = [s for s in reversed(all_services) if s not in taken]
        self.error_lbs = set(candidates[: spec.error_lbs])
        if len(self.error_lbs) < spec.error_lbs:
            raise ValueError(f"error-lbs={spec.error_lbs}: only {len(candidates)} user Services to put in ERROR")

    def _tags(self, kind: str, key: str) -> list[str]:
        return [] if key in self.untagged.get(kind, ()) else [self.tag]

    def _tag(self, collection: str, record: dict[str, Any], kind: str = "", key: str = "") -> None:
        tags = self._tags(kind, key) if kind else [self.tag]
        if tags:
            neutron.set_tags(self.store, collection, record["id"], tags)

    def _put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store a Kubernetes object, if this cluster is the one whose API the simulator serves."""
        if self.ours:
            obj["metadata"].setdefault("creationTimestamp", self.sc.created_at)
            self.store.kube_put(obj)
        return obj

    def next_worker(self) -> Node:
        node = self.workers_list[self._next_worker % len(self.workers_list)]
        self._next_worker += 1
        return node

    def add_subport(self, node: Node, port: dict[str, Any]) -> None:
        vlan = self._vlan_ids.get(node.name, 0) + 1
        if vlan > MAX_VLAN_ID:
            raise ValueError(
                f"node {node.name} would carry more than {MAX_VLAN_ID} subports: give more workers (workers=N)"
            )
        self._vlan_ids[node.name] = vlan
        node.sub_ports.append({"port_id": port["id"], "segmentation_type": "vlan", "segmentation_id": vlan})
