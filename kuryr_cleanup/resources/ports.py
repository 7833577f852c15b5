"""Neutron ports on Kuryr's networks (deleted in B6 and B12, before their network).

A port inside one of this cluster's Kuryr networks is deleted, tagged or not (the one exception S2
allows: pods' ports whose tagging failed), except:
- ports Neutron keeps for a router (interfaces go through the router; on DVR the SNAT port goes with
  its interface) or with the network (DHCP, OVN metadata), and load-balancer VIP ports (Octavia
  removes them with the LB);
- ports of another project (an Octavia amphora's member port goes with its LB; anything else is not
  ours to touch);
- ports of a non-Kuryr owner (S7): a Nova VM's own port, the installer's API or ingress port,
  another cluster's port. Such a port keeps its whole network: it is not emptied at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from openstack import exceptions as os_exc

from kuryr_cleanup.engine import Outcome
from kuryr_cleanup.inventory import Inventory
from kuryr_cleanup.kuryr import (
    KURYR_POOL_PORT_NAME,
    KURYR_PORT_DEVICE_OWNER,
    ROUTER_DEVICE_OWNERS,
    ROUTER_INTERFACE_OWNERS,
    SUBPORT_DEVICE_OWNER,
    cluster_tags,
)
from kuryr_cleanup.openstack_api import chunks, send
from kuryr_cleanup.ownership import kuryr_networks, trunk_ownership
from kuryr_cleanup.plan import PlanItem
from kuryr_cleanup.resources import loadbalancers
from kuryr_cleanup.resources.base import Action, Reader, ResourceKind, Run, journaled
from kuryr_cleanup.retrying import http_status

# Ports Neutron deletes itself with their network.
GOES_WITH_NETWORK = ("network:dhcp", "network:distributed")
# What planning reads of a port (the rest stays encoded until the journal records it).
FIELDS = frozenset({"id", "name", "network_id", "device_owner", "device_id", "project_id", "tenant_id", "tags",
                    "fixed_ips", "security_groups"})


def is_router_interface(port: dict[str, Any]) -> bool:
    return (port.get("device_owner") or "") in ROUTER_INTERFACE_OWNERS


def label(port: dict[str, Any]) -> str:
    return port.get("name") or ",".join(ip.get("ip_address", "") for ip in port.get("fixed_ips") or [])


def describe_port(port: dict[str, Any]) -> str:
    owner = port.get("device_owner") or "no device owner"
    name = f" {port['name']}" if port.get("name") else ""
    return f"port {port['id']}{name} ({owner}, project {port.get('project_id') or port.get('tenant_id') or '?'})"


def foreign_owner(port: dict[str, Any], inv: Inventory, namespace: str | None = None) -> str | None:
    """Why `port` belongs to someone other than this cluster's Kuryr (S7), or None if it may be Kuryr's.

    Such a port keeps its network: a CR that names the installer's node network, or a user who put a
    VM, a reserved address, a bare-metal or a share port on a namespace network, must not get the
    network emptied. A port Kuryr made is tagged for this cluster, or is `compute:kuryr` or a trunk
    subport, or (taken off its trunk) has no owner and Kuryr's name: `<namespace>/<pod>` for the
    network's namespace, or its pool's name. Ports Neutron or Octavia own go with their owner.
    """
    tags = cluster_tags(port.get("tags"))
    if tags and inv.tag not in tags:
        return f"{describe_port(port)} is tagged for another cluster ({', '.join(sorted(tags))})"
    owner = port.get("device_owner") or ""
    project = port.get("project_id") or port.get("tenant_id")
    vm_port = owner.startswith("compute:") and owner != KURYR_PORT_DEVICE_OWNER
    # Another project's compute port (an Octavia amphora's member port) is left alone, not a reason.
    if vm_port and (not inv.project_id or project == inv.project_id or port.get("device_id") in inv.servers):
        server = inv.servers.get(port.get("device_id") or "", {})
        return f"{describe_port(port)} is the own port of server {server.get('name') or port.get('device_id')}"
    name = port.get("name") or ""
    if not owner and name.startswith(f"{inv.infra_id}-"):
        return f"{describe_port(port)} is an installer port"
    if inv.tag in tags or goes_with_its_owner(port):
        return None
    if inv.project_id and project and project != inv.project_id:
        # Another project's compute port is an Octavia amphora's member port (it goes with its LB);
        # anything else of another project (a port an admin made, a network shared by RBAC) is theirs.
        return None if vm_port else f"{describe_port(port)} belongs to another project"
    if owner in (KURYR_PORT_DEVICE_OWNER, SUBPORT_DEVICE_OWNER):
        return None
    if not owner and (name == KURYR_POOL_PORT_NAME or (namespace and name.startswith(f"{namespace}/"))):
        return None  # a pod's port taken off its trunk (by B11 of an interrupted run, or by Kuryr)
    return (f"{describe_port(port)} is not a port Kuryr makes ({KURYR_PORT_DEVICE_OWNER}, a trunk subport, or "
            f"named for a pod of this namespace)")


def goes_with_its_owner(port: dict[str, Any]) -> bool:
    """A port Neutron or Octavia own and remove themselves: a router's (through the router), the
    network's (DHCP, metadata), a load balancer's VIP (with its LB)."""
    owner = port.get("device_owner") or ""
    return owner in ROUTER_DEVICE_OWNERS or owner in GOES_WITH_NETWORK or is_lb_vip(port)


def left_alone(port: dict[str, Any], inv: Inventory, vip_ports: set[str]) -> bool:
    """Ports on a Kuryr network that the cleanup never deletes itself (they go with something else)."""
    project = port.get("project_id") or port.get("tenant_id")
    return (goes_with_its_owner(port) or port["id"] in vip_ports
            or bool(inv.project_id and project and project != inv.project_id))


def is_lb_vip(port: dict[str, Any]) -> bool:
    """A load balancer's VIP port, whether or not its LB is recognised as the cluster's: it is deleted
    only with its LB (deleting it alone leaves a broken LB behind)."""
    name = port.get("name") or ""
    return (port.get("device_owner") or "") == "Octavia" or name.startswith(("octavia-lb-", "ovn-lb-vip-"))


# -- what keeps a network (S7) -----------------------------------------------------------------------------
def our_routers(inv: Inventory) -> set[str]:
    """Routers whose interfaces the cleanup may remove: this cluster's (tagged for it)."""
    routers = {**inv.other_routers, **inv.routers}
    return {rid for rid, router in routers.items() if inv.tag in cluster_tags(router.get("tags"))}


def _router_owner(inv: Inventory, router_id: str) -> str:
    router = inv.routers.get(router_id) or inv.other_routers.get(router_id)
    if router is None:
        return f"router {router_id} (not visible to this token)"
    tags = sorted(cluster_tags(router.get("tags")))
    owner = f"tagged {', '.join(tags)}" if tags else "not tagged for this cluster"
    return f"router {router.get('name') or router_id} ({router_id}, {owner}, project {router.get('project_id')})"


def kuryr_shaped(inv: Inventory, net_id: str) -> bool:
    """The cluster tag, or the name Kuryr gives a namespace's network: `<namespace uid>/<namespace>`."""
    net = inv.networks[net_id]
    if inv.tag in cluster_tags(net.get("tags")):
        return True
    cr = inv.kuryr_networks.get(net_id) or {}
    namespace, uid = cr.get("namespace"), cr.get("namespace_uid")
    return bool(namespace and uid and net.get("name") == f"{uid}/{namespace}")


class Occupancy:
    """What deciding about every network reads, worked out once (per network, it was most of the
    plan's time at 2,000 networks): this cluster's routers, the LBs' VIP ports (all, and those of the
    LBs B3 deletes), the trunks by id."""

    def __init__(self, inv: Inventory) -> None:
        self.routers = our_routers(inv)
        self.vip_ports = loadbalancers.vip_ports(inv)
        self.our_vips = loadbalancers.our_vip_ports(inv)
        self.trunks = {t["id"]: t for t in inv.trunks}


def blockers(inv: Inventory, net: dict[str, Any], shaped: bool, occupancy: Occupancy) -> list[str]:
    """Why a network must not be emptied (S7): a foreign port, a subport of a trunk that is not this
    cluster's nodes', an interface of a router that is not this cluster's, or the VIP of a load balancer
    B3 does not delete."""
    found: list[str] = []
    if not shaped:
        found.append("it is neither tagged for this cluster nor named like Kuryr's network of that namespace")
    routers, our_vips, trunks = occupancy.routers, occupancy.our_vips, occupancy.trunks
    namespace = (inv.kuryr_networks.get(net["id"]) or {}).get("namespace")
    for port in inv.ports_by_network.get(net["id"], []):
        why = foreign_owner(port, inv, namespace)
        device = port.get("device_id") or ""
        if why:
            found.append(why)
        elif is_router_interface(port) and device not in routers:
            subnets = ", ".join(ip["subnet_id"] for ip in port.get("fixed_ips") or [])
            found.append(f"{_router_owner(inv, device)} has an interface on subnet {subnets}: "
                         f"remove it there (openstack router remove subnet)")
        elif port.get("device_owner") == SUBPORT_DEVICE_OWNER:
            trunk = trunks.get(device)
            own = trunk_ownership(trunk, inv) if trunk is not None else None
            if own is None or not own.ours:
                whose = own.reason.split(": ", 1)[-1] if own else "not visible to this token"
                found.append(f"{describe_port(port)} is a subport of trunk "
                             f"{(trunk or {}).get('name') or device} ({device}), {whose}")
        elif is_lb_vip(port) and port["id"] not in our_vips:
            found.append(f"{describe_port(port)} is the VIP of a load balancer that is not this cluster's")
    return found


def emptied_networks(inv: Inventory) -> set[str]:
    """The Kuryr networks B6 and B12 empty and delete: this cluster's, Kuryr-shaped, nothing foreign on them."""
    occupancy = Occupancy(inv)
    emptied = {n for n in kuryr_networks(inv) if not blockers(inv, inv.networks[n], kuryr_shaped(inv, n), occupancy)}
    return emptied | {n["id"] for n in inv.service_networks if not blockers(inv, n, True, occupancy)}


# -- discovery -------------------------------------------------------------------------------------------
def discover(reader: Reader, inv: Inventory) -> None:
    """Every port on the Kuryr networks found, a batch of networks per listing (every project's the
    token can see: another project's port on our network is a reason to keep it); and on the tagged
    networks that are kept (their ports keep the security groups they use)."""
    networks = list(inv.networks) + [n["id"] for n in inv.service_networks + inv.unnamed_tagged_networks]
    batches = [{"network_id": batch} for batch in chunks(networks)]
    for listed in reader.list_each("network", "/ports", batches, keep=FIELDS):
        for port in listed:
            inv.ports_by_network.setdefault(port["network_id"], []).append(port)
    if any((p.get("device_owner") or "").startswith("compute:") for ps in inv.ports_by_network.values() for p in ps):
        # Nova lists the token's project's servers: a VM among them is someone's machine, not Kuryr's.
        try:
            inv.servers = {s["id"]: s for s in reader.list("compute", "/servers")}
        except Exception as exc:  # noqa: BLE001 - a cloud or token without Nova: compute ports count as VMs
            if http_status(exc) not in (403, 404) and not isinstance(exc, os_exc.EndpointNotFound):
                raise


# -- actions ---------------------------------------------------------------------------------------------
def delete(run: Run, item: PlanItem) -> Outcome:
    return journaled(run, item, lambda: send(run.conn, "network", "DELETE", f"/ports/{item.id}"))


DELETE = Action("port", "delete", "delete", delete)


# -- planning --------------------------------------------------------------------------------------------
def plan_deletions(step: str, ports: Iterable[dict[str, Any]], network: str, evidence: str, inv: Inventory,
                   vip_ports: set[str], after: dict[str, str]) -> list[PlanItem]:
    """The ports of one network to delete before the network; `after`: port id -> the key of the
    item that must finish first (the removal of the port from its trunk)."""
    return [DELETE.item(step, port["id"], label(port), f"inside network {network} ({evidence})",
                        after=[after[port["id"]]] if port["id"] in after else (), object=port)
            for port in sorted(ports, key=lambda p: p["id"]) if not left_alone(port, inv, vip_ports)]


KIND = ResourceKind("ports", discover=discover)
