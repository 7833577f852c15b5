"""Kuryr's networks with their router interfaces: the namespace networks (B12), the service network
(B6), and the final check (B15).

Ownership (S2): a network is this cluster's Kuryr network when a KuryrNetwork of this cluster names it
(or an earlier run recorded that one did) and it is not tagged for another cluster; the service
network by its CNO name. Its ports go first (resources/ports.py), then its subnets' router
interfaces (through the router), then the network with its subnets.
"""

from __future__ import annotations

from typing import Any

from kuryr_cleanup.engine import Finished, Outcome
from kuryr_cleanup.inventory import Inventory
from kuryr_cleanup.kuryr import INSTALLER_NODE_NETWORK, SERVICE_NETWORK, cno_name
from kuryr_cleanup.openstack_api import chunks, list_raw, send
from kuryr_cleanup.ownership import kuryr_networks, ownership
from kuryr_cleanup.plan import DONE, FAILED, KEPT, PlanItem
from kuryr_cleanup.resources import loadbalancers, ports, trunks
from kuryr_cleanup.resources.base import Action, Reader, ResourceKind, Run, Step, journaled


# -- discovery -------------------------------------------------------------------------------------------
def discover(reader: Reader, inv: Inventory) -> None:
    tag, infra = inv.tag, inv.infra_id
    # Namespace networks: those KuryrNetworks name (tagged or not) that still exist.
    named = sorted(inv.kuryr_networks)
    tagged = {n["id"]: n for n in reader.list("network", "/networks", {"tags": tag})}
    untagged = reader.by_ids("network", "/networks", set(named) - set(tagged))
    inv.unnamed_tagged_networks = [
        n for n in tagged.values()
        if n["id"] not in inv.kuryr_networks and n.get("name") != cno_name(infra, INSTALLER_NODE_NETWORK)
        and not (n.get("name") or "").endswith(SERVICE_NETWORK)
    ]
    for net_id in named:
        net = tagged.get(net_id) or untagged.get(net_id)
        if net is not None:
            inv.networks[net_id] = net

    # The CNO's service network (with the legacy unprefixed name only when tagged).
    for name, cno in ((cno_name(infra, SERVICE_NETWORK), True), (SERVICE_NETWORK, False)):
        for net in reader.list("network", "/networks", {"name": name}):
            own = ownership(net, tag, cno=name if cno else None)
            if own.ours and inv.service_network is None:
                inv.service_network = net
            else:
                inv.other_service_networks.append(net)
    if inv.service_network is not None:
        inv.service_subnets = reader.list("network", "/subnets", {"network_id": inv.service_network["id"]})
        inv.subnets_by_network[inv.service_network["id"]] = inv.service_subnets

    # Deleting a network deletes its subnets: the journal keeps them with it.
    for batch in chunks(list(inv.networks)):
        for subnet in reader.list("network", "/subnets", {"network_id": batch}):
            inv.subnets_by_network.setdefault(subnet["network_id"], []).append(subnet)


# -- actions ---------------------------------------------------------------------------------------------
def remove_router_interface(run: Run, router_id: str, subnet_id: str) -> Any:
    return send(run.conn, "network", "PUT", f"/routers/{router_id}/remove_router_interface", {"subnet_id": subnet_id})


def remove_interface(run: Run, item: PlanItem) -> Outcome:
    router_id, subnet_id = item.params["router_id"], item.params["subnet_id"]
    # 404: RouterInterfaceNotFoundForSubnet, or the router or subnet is gone.
    return journaled(run, item, lambda: remove_router_interface(run, router_id, subnet_id), event="change",
                     router_id=router_id, subnet_id=subnet_id, gone="already removed")


def delete_network(run: Run, item: PlanItem) -> Outcome:
    return journaled(run, item, lambda: send(run.conn, "network", "DELETE", f"/networks/{item.id}"))


def check_gone(run: Run, item: PlanItem) -> Outcome:
    named = set(run.inv.kuryr_networks)
    tagged = list_raw(run.conn, "network", "/networks", "networks", run.policy, {"tags": run.inv.tag})
    remaining = [n for n in tagged if n["id"] in named]
    if remaining:
        names = ", ".join(f"{n.get('name')} ({n['id']})" for n in remaining[:10])
        return Finished(FAILED, f"networks still exist: {names}")
    return Finished(DONE)


REMOVE_INTERFACE = Action("router interface", "remove-interface", "remove", remove_interface)
DELETE = Action("network", "delete", "delete", delete_network)
CHECK = Action("check", "check", "verify", check_gone)


# -- planning --------------------------------------------------------------------------------------------
def _network_items(step: str, inv: Inventory, net: dict[str, Any], evidence: str) -> list[PlanItem]:
    """Delete every port but the router's own and LB VIPs, remove the router interfaces, delete the network."""
    net_id = net["id"]
    label = net.get("name") or net_id
    net_ports = inv.ports_by_network.get(net_id, [])
    items = ports.plan_deletions(step, net_ports, label, evidence, keep=loadbalancers.vip_ports(inv))
    port_keys = tuple(i.key for i in items)
    seen: set[tuple[str, str]] = set()
    for port in net_ports:
        if not ports.is_router_interface(port):
            continue
        for ip in port.get("fixed_ips") or []:
            pair = (port["device_id"], ip["subnet_id"])
            if pair in seen:
                continue
            seen.add(pair)
            items.append(REMOVE_INTERFACE.item(step, f"{pair[0]}:{pair[1]}", f"subnet {ip['subnet_id']}",
                                               f"subnet of network {label} ({evidence})", after=port_keys,
                                               router_id=pair[0], subnet_id=pair[1], object=port))
    items.append(DELETE.item(step, net_id, net.get("name") or "", evidence, after=[i.key for i in items],
                             object=net, related={"subnets": inv.subnets_by_network.get(net_id, [])}))
    return items


def plan_namespace_networks(inv: Inventory) -> list[PlanItem]:
    items: list[PlanItem] = []
    owned = kuryr_networks(inv)
    for net_id in sorted(inv.networks, key=lambda n: inv.networks[n].get("name") or n):
        net = inv.networks[net_id]
        if net_id not in owned:
            own = ownership(net, inv.tag)
            items.append(DELETE.item("B12", net_id, net.get("name") or "", "", own.state, own.reason))
            continue
        items.extend(_network_items("B12", inv, net, owned[net_id]))
    for net in sorted(inv.unnamed_tagged_networks, key=lambda n: n.get("name") or ""):
        items.append(DELETE.item("B12", net["id"], net.get("name") or "", "", KEPT,
                                 f"kept: tagged {inv.tag} but no KuryrNetwork names it (delete it by hand if it is "
                                 f"Kuryr's)"))
    return items


def plan_service_network(inv: Inventory) -> list[PlanItem]:
    items: list[PlanItem] = []
    for other in inv.other_service_networks:
        own = ownership(other, inv.tag)
        state, reason = (own.state, own.reason) if not own.ours else (KEPT, "kept: a second network by that name")
        items.append(DELETE.item("B6", other["id"], other.get("name") or "", "", state, reason))
    net = inv.service_network
    if net is None:
        return items
    own = ownership(net, inv.tag, cno=net.get("name"))
    items.extend(_network_items("B6", inv, net, own.evidence))
    return items


def plan_check(inv: Inventory) -> list[PlanItem]:
    if not inv.networks:  # none of the networks KuryrNetworks named exists any more: nothing to check
        return []
    return [CHECK.item("B15", "kuryr-networks-gone", "no Kuryr network remains",
                       f"{len(inv.kuryr_networks)} networks named by KuryrNetworks")]


def kuryr_subnet_ids(inv: Inventory) -> set[str]:
    """Every subnet that is Kuryr's: those the KuryrNetworks named, the service subnets, and the
    subnets of the namespace networks' ports."""
    subnets = {str(v["subnet_id"]) for v in inv.kuryr_networks.values() if v.get("subnet_id")}
    subnets |= {s["id"] for s in inv.service_subnets}
    for net_id in inv.networks:
        for port in inv.ports_by_network.get(net_id, []):
            subnets |= {ip["subnet_id"] for ip in port.get("fixed_ips") or []}
    return subnets


SERVICE_NETWORK_STEP = Step(
    "B6", "Kuryr service network, its ports and router interface", (loadbalancers.STEP.id,), plan_service_network,
    what="the service network: its ports, its router interface, the network",
    evidence="CNO name `<infraID>-kuryr-service-network` (or `kuryr-service-network` with the cluster tag)",
)
# After B3 too: amphora LBs have member ports on the pod subnets; deleting them under a cascade delete
# in progress can push the LB to ERROR (the vendor order has B3 first for this reason).
NAMESPACE_NETWORKS_STEP = Step(
    "B12", "Namespace networks: ports, router interfaces, networks", (loadbalancers.STEP.id, trunks.STEP.id),
    plan_namespace_networks,
    what="per namespace network: every port (bounded parallelism), the router interface, the network",
    evidence="named by a KuryrNetwork of this cluster (or recorded by an earlier run)",
)
CHECK_STEP = Step("B15", "Check: no Kuryr network remains", (NAMESPACE_NETWORKS_STEP.id,), plan_check,
                  what="a check that no network a KuryrNetwork named still exists")
# What must be gone before the groups, pools and router the networks used can go.
NETWORK_STEPS = (SERVICE_NETWORK_STEP.id, NAMESPACE_NETWORKS_STEP.id)

KIND = ResourceKind("networks", steps=(SERVICE_NETWORK_STEP, NAMESPACE_NETWORKS_STEP, CHECK_STEP), discover=discover)
