"""Neutron networking Kuryr made: trunk subports (B11), namespace networks with their ports and
router interfaces (B12), the service network (B6), and the final check (B15).

Ownership (S2): a network is this cluster's Kuryr network when a KuryrNetwork of this cluster names it
(or an earlier run recorded that one did) and it is not tagged for another cluster; the service
network by its CNO name. Every port inside such a network is deleted, tagged or not (the one
exception S2 allows), except router interfaces, which are removed through the router.
"""

from __future__ import annotations

import functools
from typing import Any

from kuryr_cleanup.context import Context
from kuryr_cleanup.engine import Finished, Outcome
from kuryr_cleanup.inventory import ROUTER_INTERFACE_OWNERS, Inventory, ownership
from kuryr_cleanup.openstack_api import list_raw, send
from kuryr_cleanup.plan import DONE, FAILED, GONE, KEPT, PlanItem
from kuryr_cleanup.resources.deletion import delete_journaled
from kuryr_cleanup.retrying import call, http_status


def _is_router_interface(port: dict[str, Any]) -> bool:
    return (port.get("device_owner") or "") in ROUTER_INTERFACE_OWNERS


def _port_label(port: dict[str, Any]) -> str:
    return port.get("name") or ",".join(ip.get("ip_address", "") for ip in port.get("fixed_ips") or [])


def kuryr_network_ids(inv: Inventory) -> dict[str, str]:
    """Network id -> evidence, for the namespace networks that are ours."""
    owned = {}
    for net_id, net in inv.networks.items():
        own = ownership(net, inv.tag, named_in=f"KuryrNetwork {inv.kuryr_networks[net_id].get('kuryrnetwork')}")
        if own.ours:
            owned[net_id] = own.evidence
    return owned


# -- B11 trunk subports ------------------------------------------------------------------------------
def plan_subports(inv: Inventory) -> list[PlanItem]:
    kuryr_nets = kuryr_network_ids(inv)
    ports_on_kuryr_nets = {p["id"] for net_id in kuryr_nets for p in inv.ports_by_network.get(net_id, [])}
    items = []
    for trunk in sorted(inv.trunks, key=lambda t: (t.get("name") or "", t["id"])):
        own = ownership(trunk, inv.tag)
        subports = [s["port_id"] for s in trunk.get("sub_ports") or []
                    if s["port_id"] in inv.tagged_subport_ids or s["port_id"] in ports_on_kuryr_nets]
        if not subports:
            continue
        name = trunk.get("name") or ""
        if own.ours:
            evidence = f"trunk {own.evidence}; subports tagged {inv.tag} or on Kuryr networks"
        elif own.reason.startswith("skipped"):
            items.append(PlanItem("B11", "trunk", trunk["id"], name, "unset-subports", "", own.state, own.reason))
            continue
        else:
            # An untagged trunk (its tagging failed) still carries our pods' ports: those ports are the
            # evidence, and only they are removed from it.
            evidence = "subports tagged for this cluster or on Kuryr networks"
        items.append(
            PlanItem("B11", "trunk", trunk["id"], name, "unset-subports",
                     f"{evidence} ({len(subports)} subports)", params={"subports": sorted(subports), "object": trunk})
        )
    return items


def unset_subports(ctx: Context, item: PlanItem) -> Outcome:
    """One call per trunk with all its Kuryr subports; if some are already gone, retry with the rest."""
    policy = ctx.options.retry
    wanted = list(item.params["subports"])
    ctx.journal.write("change", step=item.step, kind=item.kind, id=item.id, action=item.action,
                      subports=wanted, object=item.params.get("object"))
    for _attempt in range(3):
        try:
            subports = [{"port_id": p} for p in wanted]
            path = f"/trunks/{item.id}/remove_subports"
            call(policy, functools.partial(send, ctx.conn, "network", "PUT", path, {"sub_ports": subports}),
                 retry_conflicts=True)
        except Exception as exc:
            if http_status(exc) != 404:
                raise
            # TrunkNotFound, or SubPortNotFound for a port someone already removed: ask the trunk.
            try:
                current = call(policy, lambda: send(ctx.conn, "network", "GET", f"/trunks/{item.id}/get_subports"),
                               retry_conflicts=False)
            except Exception as exc2:
                if http_status(exc2) == 404:
                    return Finished(GONE, "trunk already gone")
                raise
            present = {s["port_id"] for s in (current.get("sub_ports") or [])}
            wanted = [p for p in wanted if p in present]
            if not wanted:
                return Finished(GONE, "subports already removed")
            continue
        ctx.journal.write("result", sync=False, step=item.step, kind=item.kind, id=item.id, result="done")
        return Finished(DONE)
    return Finished(FAILED, "subports kept changing while they were being removed")


# -- B12 namespace networks and B6 service network ---------------------------------------------------
def _network_items(step: str, inv: Inventory, net: dict[str, Any], evidence: str,
                   vip_ports: set[str]) -> list[PlanItem]:
    """Delete every port but router interfaces, remove the router interfaces, delete the network."""
    items: list[PlanItem] = []
    net_id = net["id"]
    after: list[str] = []
    ports = inv.ports_by_network.get(net_id, [])
    for port in sorted(ports, key=lambda p: p["id"]):
        if _is_router_interface(port) or port["id"] in vip_ports:
            continue
        item = PlanItem(step, "port", port["id"], _port_label(port), "delete",
                        f"inside network {net.get('name') or net_id} ({evidence})", params={"object": port})
        items.append(item)
        after.append(item.key)
    interfaces = [p for p in ports if _is_router_interface(p)]
    seen: set[tuple[str, str]] = set()
    for port in interfaces:
        for ip in port.get("fixed_ips") or []:
            pair = (port["device_id"], ip["subnet_id"])
            if pair in seen:
                continue
            seen.add(pair)
            item = PlanItem(step, "router interface", f"{pair[0]}:{pair[1]}", f"subnet {ip['subnet_id']}",
                            "remove-interface", f"subnet of network {net.get('name') or net_id} ({evidence})",
                            after=tuple(after), params={"router_id": pair[0], "subnet_id": pair[1], "object": port})
            items.append(item)
    items.append(
        PlanItem(step, "network", net_id, net.get("name") or "", "delete", evidence,
                 after=tuple(after) + tuple(i.key for i in items if i.kind == "router interface"),
                 params={"object": net, "related": {"subnets": inv.subnets_by_network.get(net_id, [])}})
    )
    return items


def _vip_ports(inv: Inventory) -> set[str]:
    """Octavia removes a load balancer's VIP port with the LB (B3, which comes first); deleting it
    directly would race Octavia, and a VIP port of an LB that is not ours must stay."""
    return {str(lb["vip_port_id"]) for lb in inv.load_balancers if lb.get("vip_port_id")}


def plan_namespace_networks(inv: Inventory) -> list[PlanItem]:
    items: list[PlanItem] = []
    vip_ports = _vip_ports(inv)
    owned = kuryr_network_ids(inv)
    for net_id in sorted(inv.networks, key=lambda n: inv.networks[n].get("name") or n):
        net = inv.networks[net_id]
        if net_id not in owned:
            own = ownership(net, inv.tag)
            items.append(PlanItem("B12", "network", net_id, net.get("name") or "", "delete", "", own.state, own.reason))
            continue
        items.extend(_network_items("B12", inv, net, owned[net_id], vip_ports))
    for net in sorted(inv.unnamed_tagged_networks, key=lambda n: n.get("name") or ""):
        items.append(PlanItem("B12", "network", net["id"], net.get("name") or "", "delete", "", KEPT,
                              f"kept: tagged {inv.tag} but no KuryrNetwork names it (delete it by hand if it is "
                              f"Kuryr's)"))
    return items


def plan_service_network(inv: Inventory) -> list[PlanItem]:
    items: list[PlanItem] = []
    for other in inv.other_service_networks:
        own = ownership(other, inv.tag)
        state, reason = (own.state, own.reason) if not own.ours else (KEPT, "kept: a second network by that name")
        items.append(PlanItem("B6", "network", other["id"], other.get("name") or "", "delete", "", state, reason))
    net = inv.service_network
    if net is None:
        return items
    own = ownership(net, inv.tag, cno=net.get("name"))
    items.extend(_network_items("B6", inv, net, own.evidence, _vip_ports(inv)))
    return items


def delete_port(ctx: Context, item: PlanItem) -> Outcome:
    return delete_journaled(ctx, item, lambda: send(ctx.conn, "network", "DELETE", f"/ports/{item.id}"))


def delete_network(ctx: Context, item: PlanItem) -> Outcome:
    return delete_journaled(ctx, item, lambda: send(ctx.conn, "network", "DELETE", f"/networks/{item.id}"))


def remove_router_interface(ctx: Context, router_id: str, subnet_id: str) -> Any:
    return send(ctx.conn, "network", "PUT", f"/routers/{router_id}/remove_router_interface", {"subnet_id": subnet_id})


def remove_interface(ctx: Context, item: PlanItem) -> Outcome:
    router_id = item.params["router_id"]
    subnet_id = item.params["subnet_id"]
    ctx.journal.write("change", step=item.step, kind=item.kind, id=item.id, action=item.action,
                      router_id=router_id, subnet_id=subnet_id, object=item.params.get("object"))
    try:
        call(ctx.options.retry,
             lambda: remove_router_interface(ctx, router_id, subnet_id),
             retry_conflicts=True)
    except Exception as exc:
        if http_status(exc) == 404:  # RouterInterfaceNotFoundForSubnet, or the router/subnet is gone
            return Finished(GONE, "already removed")
        raise
    ctx.journal.write("result", sync=False, step=item.step, kind=item.kind, id=item.id, result="done")
    return Finished(DONE)


# -- B15 check -----------------------------------------------------------------------------------------
def plan_check(inv: Inventory) -> list[PlanItem]:
    if not inv.networks:  # none of the networks KuryrNetworks named exists any more: nothing to check
        return []
    return [PlanItem("B15", "check", "kuryr-networks-gone", "no Kuryr network remains", "check",
                     f"{len(inv.kuryr_networks)} networks named by KuryrNetworks")]


def check_networks_gone(ctx: Context, inv: Inventory, item: PlanItem) -> Outcome:
    named = set(inv.kuryr_networks)
    tagged = list_raw(ctx.conn, "network", "/networks", "networks", ctx.options.retry, {"tags": inv.tag})
    remaining = [n for n in tagged if n["id"] in named]
    if remaining:
        names = ", ".join(f"{n.get('name')} ({n['id']})" for n in remaining[:10])
        return Finished(FAILED, f"networks still exist: {names}")
    return Finished(DONE)
