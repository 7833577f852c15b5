"""The Kuryr router (B18): deleted unless it is the installer's, and never while it still serves
subnets that are not Kuryr's (report it and leave it).
"""

from __future__ import annotations

import functools
from typing import Any

from kuryr_cleanup.engine import Finished, Outcome
from kuryr_cleanup.inventory import Inventory
from kuryr_cleanup.kuryr import INSTALLER_ROUTER_DESCRIPTION
from kuryr_cleanup.openstack_api import list_raw, send
from kuryr_cleanup.ownership import ownership
from kuryr_cleanup.plan import KEPT, PlanItem, Planned
from kuryr_cleanup.resources import networks, ports
from kuryr_cleanup.resources.base import Action, Reader, ResourceKind, Run, Step, journaled


# -- discovery -------------------------------------------------------------------------------------------
def discover(reader: Reader, inv: Inventory) -> None:
    """The routers the KuryrNetworks (or an earlier run) named, and their ports; and the other routers
    with an interface on a Kuryr network (one batched listing), to say whose they are."""
    for router_id in inv.router_ids:
        router = reader.one("network", f"/routers/{router_id}", "router")
        if router is not None:
            inv.routers[router_id] = router
            inv.router_ports[router_id] = reader.list("network", "/ports", {"device_id": router_id})
    others = {p["device_id"] for net_ports in inv.ports_by_network.values() for p in net_ports
              if ports.is_router_interface(p) and p.get("device_id")} - set(inv.routers)
    if others:
        inv.other_routers = reader.by_ids("network", "/routers", others)


def foreign_interfaces(router_ports: list[dict[str, Any]], kuryr_subnets: set[str]) -> list[str]:
    """Subnets the router still serves that are not Kuryr's (the installer's node subnet, a user's)."""
    foreign = []
    for port in router_ports:
        if not ports.is_router_interface(port):
            continue
        for ip in port.get("fixed_ips") or []:
            if ip["subnet_id"] not in kuryr_subnets:
                foreign.append(ip["subnet_id"])
    return sorted(set(foreign))


# -- actions ---------------------------------------------------------------------------------------------
def delete(run: Run, item: PlanItem) -> Outcome:
    """Re-check just before deleting: a router that gained a non-Kuryr interface since the plan is kept."""
    router_ports = list_raw(run.conn, "network", "/ports", "ports", run.policy, {"device_id": item.id})
    foreign = foreign_interfaces(router_ports, set(item.params.get("kuryr_subnets") or []))
    if foreign:
        return Finished(KEPT, f"kept: now serves subnets that are not Kuryr's ({', '.join(foreign)})")
    # Kuryr interfaces left by an earlier failure would make Neutron answer RouterInUse: remove them.
    for port in router_ports:
        if ports.is_router_interface(port):
            for ip in port.get("fixed_ips") or []:
                journaled(run, item, functools.partial(networks.remove_router_interface, run, item.id, ip["subnet_id"]),
                          event="change", obj=port, kind="router interface", ident=f"{item.id}:{ip['subnet_id']}",
                          action="remove-interface")
    return journaled(run, item, lambda: send(run.conn, "network", "DELETE", f"/routers/{item.id}"))


DELETE = Action("router", "delete", "delete", delete)


# -- planning --------------------------------------------------------------------------------------------
def _kept_networks_served(inv: Inventory, planned: Planned, router_id: str) -> list[str]:
    """Kuryr networks that are kept (S7) and still have an interface on this router."""
    kept = []
    for net_id, net_ports in inv.ports_by_network.items():
        item = planned.get("network", net_id)
        if item is not None and not item.actionable and any(
                ports.is_router_interface(p) and p.get("device_id") == router_id for p in net_ports):
            kept.append(item.name or net_id)
    return sorted(kept)


def plan(inv: Inventory, planned: Planned) -> list[PlanItem]:
    items = []
    kuryr_subnets = networks.kuryr_subnet_ids(inv)
    for router_id in inv.router_ids:
        router = inv.routers.get(router_id)
        if router is None:
            continue
        name = router.get("name") or ""
        # A CR is a pointer, not proof (S7): the router must carry this cluster's tag too.
        own = ownership(router, inv.tag)
        evidence = f"named in KuryrNetwork status.routerId; {own.evidence}"
        if not own.ours:
            items.append(DELETE.item("B18", router_id, name, "", own.state, own.reason))
            continue
        if (router.get("description") or "") == INSTALLER_ROUTER_DESCRIPTION:
            items.append(DELETE.item("B18", router_id, name, evidence, KEPT,
                                     f"kept: the installer's router (description {INSTALLER_ROUTER_DESCRIPTION!r})"))
            continue
        foreign = foreign_interfaces(inv.router_ports.get(router_id, []), kuryr_subnets)
        if foreign:
            items.append(DELETE.item("B18", router_id, name, evidence, KEPT,
                                     f"kept: still serves subnets that are not Kuryr's ({', '.join(foreign)})"))
            continue
        kept = _kept_networks_served(inv, planned, router_id)
        if kept:
            items.append(DELETE.item("B18", router_id, name, evidence, KEPT,
                                     f"kept: still serves Kuryr networks that are kept ({', '.join(kept[:5])})"))
            continue
        interfaces = [k for k in (planned.key("router interface", f"{router_id}:{s}") for s in sorted(kuryr_subnets))
                      if k]
        items.append(DELETE.item("B18", router_id, name, evidence, after=interfaces, object=router,
                                 kuryr_subnets=sorted(kuryr_subnets)))
    return items


KIND = ResourceKind(
    "routers",
    steps=(Step("B18", "Kuryr router", networks.NETWORK_STEPS, plan, what="the Kuryr router",
                evidence="named in a KuryrNetwork's `status.routerId`"),),
    discover=discover,
)
