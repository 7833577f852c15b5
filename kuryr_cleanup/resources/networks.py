"""Kuryr's networks with their router interfaces: the namespace networks (B12), the service network
(B6), and the final check (B15).

Ownership (S2, S7): a KuryrNetwork's `status.netId` is a pointer, not proof. A network it names is
emptied only if it also looks like Kuryr's (the cluster tag, or Kuryr's `<namespace uid>/<namespace>`
name for that CR's namespace) and nothing of another owner is on it: a Nova VM's own port, the
installer's API or ingress port, another cluster's port, a subport of another cluster's trunk, or an
interface of a router that is not this cluster's. Otherwise the whole network is kept, with the
reason. The service network is the CNO's by name. Ports go first (resources/ports.py), then the
subnets' interfaces on this cluster's routers, then the network with its subnets.
"""

from __future__ import annotations

from typing import Any

from kuryr_cleanup.engine import Finished, Outcome
from kuryr_cleanup.inventory import Inventory
from kuryr_cleanup.kuryr import INSTALLER_NODE_NETWORK, SERVICE_NETWORK, cno_name
from kuryr_cleanup.openstack_api import chunks, list_by_ids, list_raw, send
from kuryr_cleanup.ownership import kuryr_networks, ownership
from kuryr_cleanup.plan import DONE, FAILED, KEPT, PlanItem, Planned
from kuryr_cleanup.resources import loadbalancers, ports, trunks
from kuryr_cleanup.resources.base import Action, Reader, ResourceKind, Run, Step, refuse_held

# What planning reads of a network and of a subnet (the rest stays encoded until the journal records it).
FIELDS = frozenset({"id", "name", "tags", "project_id", "tenant_id"})
SUBNET_FIELDS = frozenset({"id", "name", "network_id", "subnetpool_id", "project_id"})


# -- discovery -------------------------------------------------------------------------------------------
def _service_network_names(infra: str) -> tuple[tuple[str, bool], ...]:
    return (cno_name(infra, SERVICE_NETWORK), True), (SERVICE_NETWORK, False)


def prefetch(reader: Reader, inv: Inventory) -> None:
    reader.start_list("network", "/networks", reader.scoped({"tags": inv.tag}), FIELDS)
    for name, _cno in _service_network_names(inv.infra_id):
        reader.start_list("network", "/networks", reader.scoped({"name": name}))


def discover(reader: Reader, inv: Inventory) -> None:
    tag, infra = inv.tag, inv.infra_id
    # Namespace networks: those KuryrNetworks name (tagged or not) that still exist.
    named = sorted(inv.kuryr_networks)
    tagged = {n["id"]: n for n in reader.list("network", "/networks", reader.scoped({"tags": tag}), FIELDS)}
    untagged = reader.by_ids("network", "/networks", set(named) - set(tagged))
    inv.unnamed_tagged_networks = [
        n for n in tagged.values()
        if n["id"] not in inv.kuryr_networks and n.get("name") != cno_name(infra, INSTALLER_NODE_NETWORK)
        and not (n.get("name") or "").endswith(SERVICE_NETWORK)
    ]
    for net_id in named:
        net = tagged.get(net_id) or untagged.get(net_id)
        if net is not None and (not inv.project_id or net.get("project_id") in (None, inv.project_id)):
            inv.networks[net_id] = net

    # The CNO's service network, and a legacy unprefixed one when it carries our tag (both are ours).
    for name, cno in _service_network_names(infra):
        for net in reader.list("network", "/networks", reader.scoped({"name": name})):
            own = ownership(net, tag, cno=name if cno else None)
            if own.ours and net["id"] not in inv.networks:
                inv.service_networks.append(net)
            elif net["id"] not in inv.networks:
                inv.other_service_networks.append(net)

    # Deleting a network deletes its subnets: the journal keeps them with it (and the subnets of kept
    # tagged networks keep the subnet pool they came from).
    batches = [{"network_id": batch} for batch in
               chunks(list(inv.networks) + [n["id"] for n in inv.service_networks + inv.unnamed_tagged_networks])]
    for listed in reader.list_each("network", "/subnets", batches, keep=SUBNET_FIELDS):
        for subnet in listed:
            inv.subnets_by_network.setdefault(subnet["network_id"], []).append(subnet)
    service_ids = {n["id"] for n in inv.service_networks}
    inv.service_subnets = [s for net_id in service_ids for s in inv.subnets_by_network.get(net_id, [])]


# -- actions ---------------------------------------------------------------------------------------------
def remove_router_interface(run: Run, router_id: str, subnet_id: str) -> Any:
    return send(run.conn, "network", "PUT", f"/routers/{router_id}/remove_router_interface", {"subnet_id": subnet_id})


def remove_interface(run: Run, item: PlanItem) -> Outcome:
    router_id, subnet_id = item.params["router_id"], item.params["subnet_id"]
    # 404: RouterInterfaceNotFoundForSubnet, or the router or subnet is gone.
    return refuse_held(run, item, lambda: remove_router_interface(run, router_id, subnet_id), _interface_holders,
                       event="change", router_id=router_id, subnet_id=subnet_id, gone="already removed")


def _interface_holders(run: Run, item: PlanItem) -> list[str]:
    """What keeps an interface (RouterInterfaceInUseByFloatingIP): floating IPs on the subnet's ports."""
    fips = list_raw(run.conn, "network", "/floatingips", "floatingips", run.policy,
                    {"router_id": item.params["router_id"]})
    return [f"floating IP {f.get('floating_ip_address')} ({f['id']}, port {f.get('port_id')})" for f in fips
            if f.get("port_id")]


def _network_holders(run: Run, item: PlanItem) -> list[str]:
    """What keeps a network once its Kuryr ports are gone (NetworkInUse): every port still on it."""
    left = list_raw(run.conn, "network", "/ports", "ports", run.policy, {"network_id": item.id})
    return [ports.describe_port(p) for p in left]


def delete_network(run: Run, item: PlanItem) -> Outcome:
    return refuse_held(run, item, lambda: send(run.conn, "network", "DELETE", f"/networks/{item.id}"),
                       _network_holders)


def check_gone(run: Run, item: PlanItem) -> Outcome:
    # By id, not by tag: an untagged Kuryr network (its tagging failed) that survived must be seen too.
    remaining = list(list_by_ids(run.conn, "network", "/networks", "networks", run.policy,
                                 set(item.params["networks"])).values())
    if remaining:
        names = ", ".join(f"{n.get('name')} ({n['id']})" for n in remaining[:10])
        return Finished(FAILED, f"networks still exist: {names}")
    return Finished(DONE)


REMOVE_INTERFACE = Action("router interface", "remove-interface", "remove", remove_interface)
DELETE = Action("network", "delete", "delete", delete_network)
CHECK = Action("check", "check", "verify", check_gone)


# -- planning --------------------------------------------------------------------------------------------
def _kept(net: dict[str, Any], step: str, evidence: str, found: list[str]) -> PlanItem:
    shown = "; ".join(found[:3]) + (f"; and {len(found) - 3} more" if len(found) > 3 else "")
    return DELETE.item(step, net["id"], net.get("name") or "", evidence, KEPT,
                       f"kept, not emptied: {shown}")


def _network_items(step: str, inv: Inventory, planned: Planned, net: dict[str, Any], evidence: str,
                   kuryr_shaped: bool, occupancy: ports.Occupancy) -> list[PlanItem]:
    """Delete its ports, remove its subnets from this cluster's routers, delete the network; or keep it
    whole when anything on it is not Kuryr's."""
    found = ports.blockers(inv, net, kuryr_shaped, occupancy)
    if found:
        return [_kept(net, step, evidence, found)]
    net_id = net["id"]
    label = net.get("name") or net_id
    net_ports = inv.ports_by_network.get(net_id, [])
    subport_of = {p["id"]: planned.key("trunk", p.get("device_id") or "") for p in net_ports
                  if p.get("device_owner") == "trunk:subport"}
    items = ports.plan_deletions(step, net_ports, label, evidence, inv, occupancy.vip_ports,
                                 {pid: key for pid, key in subport_of.items() if key})
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


def plan_namespace_networks(inv: Inventory, planned: Planned) -> list[PlanItem]:
    items: list[PlanItem] = []
    owned = kuryr_networks(inv)
    occupancy = ports.Occupancy(inv)
    for net_id in sorted(inv.networks, key=lambda n: inv.networks[n].get("name") or n):
        net = inv.networks[net_id]
        if net_id not in owned:
            own = ownership(net, inv.tag)
            items.append(DELETE.item("B12", net_id, net.get("name") or "", "", own.state, own.reason))
            continue
        shaped = ports.kuryr_shaped(inv, net_id)
        items.extend(_network_items("B12", inv, planned, net, owned[net_id], shaped, occupancy))
    for net in sorted(inv.unnamed_tagged_networks, key=lambda n: n.get("name") or ""):
        items.append(DELETE.item("B12", net["id"], net.get("name") or "", "", KEPT,
                                 f"kept: tagged {inv.tag} but no KuryrNetwork names it (delete it by hand if it is "
                                 f"Kuryr's)"))
    return items


def plan_service_network(inv: Inventory, planned: Planned) -> list[PlanItem]:
    items: list[PlanItem] = []
    occupancy = ports.Occupancy(inv)
    for other in inv.other_service_networks:
        own = ownership(other, inv.tag)
        items.append(DELETE.item("B6", other["id"], other.get("name") or "", "", own.state, own.reason))
    for net in inv.service_networks:
        own = ownership(net, inv.tag, cno=net.get("name") if net.get("name") != SERVICE_NETWORK else None)
        items.extend(_network_items("B6", inv, planned, net, own.evidence, True, occupancy))
    return items


def plan_check(inv: Inventory, planned: Planned) -> list[PlanItem]:
    deleted = sorted(n for n in inv.networks if planned.key("network", n))
    if not deleted:  # none of the networks KuryrNetworks named is to be deleted: nothing to check
        return []
    return [CHECK.item("B15", "kuryr-networks-gone", "no Kuryr network remains",
                       f"{len(deleted)} networks named by KuryrNetworks", networks=deleted,
                       after=[k for k in (planned.key("network", n) for n in deleted) if k])]


def kuryr_subnet_ids(inv: Inventory) -> set[str]:
    """Every subnet that is Kuryr's: the service subnets, and the subnets of the namespace networks that
    are this cluster's and Kuryr-shaped. A KuryrNetwork's `status.subnetId` is a pointer, not proof (S7):
    a broken or hand-edited one can name the nodes' subnet, which must keep its router."""
    subnets = {s["id"] for s in inv.service_subnets}
    for net_id in kuryr_networks(inv):
        if ports.kuryr_shaped(inv, net_id):
            subnets |= {s["id"] for s in inv.subnets_by_network.get(net_id, [])}
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
    evidence="named by a KuryrNetwork of this cluster, and tagged for it or named `<namespace uid>/<namespace>`; "
             "kept whole when anything on it is not Kuryr's (S7)",
)
CHECK_STEP = Step("B15", "Check: no Kuryr network remains", (NAMESPACE_NETWORKS_STEP.id,), plan_check,
                  what="a check that no network the cleanup deleted still exists")
# What must be gone before the groups, pools and router the networks used can go.
NETWORK_STEPS = (SERVICE_NETWORK_STEP.id, NAMESPACE_NETWORKS_STEP.id)

KIND = ResourceKind("networks", steps=(SERVICE_NETWORK_STEP, NAMESPACE_NETWORKS_STEP, CHECK_STEP), discover=discover,
                    prefetch=prefetch)
