"""The inventory: what discovery found of this cluster's Kuryr resources, in the cloud and the cluster.

Each resource module (`resources/`) fills its part (its `discover`) and plans from it. Facts that only
the cluster's Kuryr CRs know (the router id, the namespace networks, Kuryr's floating-IP allocations,
the policy security groups) are merged with the run state, so a re-run after those CRs are gone still
finds what is left (S3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Inventory:
    infra_id: str
    tag: str
    project_id: str | None = None  # the cluster's OpenStack project (from the token)
    network_type: str | None = None
    migration: dict[str, Any] | None = None  # Network.operator spec.migration: set while migrating
    octavia_version: tuple[int, int] = (2, 0)
    # cluster objects that carry a Kuryr finalizer, by step
    finalizer_objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    gateway_service: dict[str, Any] | None = None
    kuryr_namespace: dict[str, Any] | None = None
    # facts from Kuryr's CRs, merged with what earlier runs learnt
    kuryr_networks: dict[str, dict[str, Any]] = field(default_factory=dict)  # net id -> {subnet_id, namespace}
    router_ids: list[str] = field(default_factory=list)
    kuryr_lbs: dict[str, dict[str, Any]] = field(default_factory=dict)  # lb id -> {name, alloc_method}
    np_security_groups: dict[str, str] = field(default_factory=dict)  # sg id -> KuryrNetworkPolicy ns/name
    # cloud resources
    load_balancers: list[dict[str, Any]] = field(default_factory=list)
    floating_ips_by_port: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Kuryr-allocated FIPs whose LB is already gone (a partial earlier cleanup): released too.
    orphan_kuryr_fips: list[dict[str, Any]] = field(default_factory=list)
    # Tagged networks no KuryrNetwork names (shown, never deleted: the tag alone is no proof).
    unnamed_tagged_networks: list[dict[str, Any]] = field(default_factory=list)
    trunks: list[dict[str, Any]] = field(default_factory=list)
    tagged_subport_ids: set[str] = field(default_factory=set)
    # Untagged trunks named like a node's: the evidence their parent port gives (tagged for this cluster,
    # or a port of a server whose metadata carries the cluster's infraID), by trunk id.
    node_trunk_parents: dict[str, str] = field(default_factory=dict)
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)  # Kuryr namespace networks
    ports_by_network: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    subnets_by_network: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # for the journal
    lb_children: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)  # for the journal
    # The CNO's service network(s): the prefixed one, and a legacy unprefixed one with our tag.
    service_networks: list[dict[str, Any]] = field(default_factory=list)
    service_subnets: list[dict[str, Any]] = field(default_factory=list)
    other_service_networks: list[dict[str, Any]] = field(default_factory=list)  # name matches, not ours
    routers: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Routers that are not named as Kuryr's but have an interface on one of its networks.
    other_routers: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Nova servers of the cluster's project (to tell a VM's own port from a Kuryr port).
    servers: dict[str, dict[str, Any]] = field(default_factory=dict)
    router_ports: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    security_groups: list[dict[str, Any]] = field(default_factory=list)
    # Rules of other groups whose remote_group_id is one of Kuryr's groups: Neutron deletes them with it.
    rules_naming_group: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Each listed group's part in those rules (kept for the run, which re-reads them): "deleted" (a group
    # the cleanup deletes too), "ours" (this cluster's own), else "foreign"; with its name.
    group_roles: dict[str, tuple[str, str]] = field(default_factory=dict)
    subnet_pools: list[dict[str, Any]] = field(default_factory=list)

    @property
    def octavia_has_tags(self) -> bool:
        return self.octavia_version >= (2, 5)

    # The listings only planning reads (the run reads the tag, the project and the LBs).
    PLANNING_ONLY = ("finalizer_objects", "floating_ips_by_port", "orphan_kuryr_fips", "unnamed_tagged_networks",
                     "trunks", "tagged_subport_ids", "networks", "ports_by_network", "subnets_by_network",
                     "lb_children", "service_networks", "service_subnets", "other_service_networks", "routers",
                     "other_routers", "servers", "router_ports", "security_groups", "subnet_pools")

    def release_listings(self) -> None:
        """Let go of what only planning read. Each plan item carries the object it changes (for the
        journal) and lets it go when it finishes; the inventory holding every listing to the end
        kept them all (the ports, the cluster objects, the LBs' listeners and pools) in memory.
        The containers are replaced, not emptied: plan items may share them."""
        for name in self.PLANNING_ONLY:
            setattr(self, name, type(getattr(self, name))())
