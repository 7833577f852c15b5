"""Neutron ports on Kuryr's networks (deleted in B6 and B12, before their network).

Every port inside a network that is this cluster's Kuryr network is deleted, tagged or not (the one
exception S2 allows: pods' ports whose tagging failed), except the ports Neutron owns for a router
(interfaces are removed through the router; on DVR the SNAT port goes with its interface) and the
VIP ports of load balancers (Octavia removes them with the LB).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kuryr_cleanup.engine import Outcome
from kuryr_cleanup.inventory import Inventory
from kuryr_cleanup.kuryr import ROUTER_DEVICE_OWNERS, ROUTER_INTERFACE_OWNERS
from kuryr_cleanup.openstack_api import chunks, send
from kuryr_cleanup.plan import PlanItem
from kuryr_cleanup.resources.base import Action, Reader, ResourceKind, Run, journaled


def is_router_interface(port: dict[str, Any]) -> bool:
    return (port.get("device_owner") or "") in ROUTER_INTERFACE_OWNERS


def is_router_owned(port: dict[str, Any]) -> bool:
    """A port Neutron keeps for a router: never deleted directly (409 ServicePortInUse)."""
    return (port.get("device_owner") or "") in ROUTER_DEVICE_OWNERS


def label(port: dict[str, Any]) -> str:
    return port.get("name") or ",".join(ip.get("ip_address", "") for ip in port.get("fixed_ips") or [])


# -- discovery -------------------------------------------------------------------------------------------
def discover(reader: Reader, inv: Inventory) -> None:
    """Every port on the Kuryr networks found, a batch of networks per listing."""
    networks = list(inv.networks) + ([inv.service_network["id"]] if inv.service_network else [])
    for batch in chunks(networks):
        for port in reader.list("network", "/ports", {"network_id": batch}):
            inv.ports_by_network.setdefault(port["network_id"], []).append(port)


# -- actions ---------------------------------------------------------------------------------------------
def delete(run: Run, item: PlanItem) -> Outcome:
    return journaled(run, item, lambda: send(run.conn, "network", "DELETE", f"/ports/{item.id}"))


DELETE = Action("port", "delete", "delete", delete)


# -- planning --------------------------------------------------------------------------------------------
def plan_deletions(step: str, ports: Iterable[dict[str, Any]], network: str, evidence: str,
                   keep: set[str]) -> list[PlanItem]:
    """The ports of one network to delete before the network: all but the router's own and `keep`."""
    return [DELETE.item(step, port["id"], label(port), f"inside network {network} ({evidence})", object=port)
            for port in sorted(ports, key=lambda p: p["id"])
            if not is_router_owned(port) and port["id"] not in keep]


KIND = ResourceKind("ports", discover=discover)
