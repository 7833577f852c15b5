"""Trunk subports (B11): Kuryr's pod ports hang off the node VMs' trunks as VLAN subports.

A subport is removed only from a trunk of this cluster's nodes (tagged for it, or named like its
nodes' trunks when the tagging failed), and only when its port sits on a Kuryr network that B6/B12
empty; one call per trunk with all of them (don't fetch each port one by one).
"""

from __future__ import annotations

import functools

from openstack import exceptions as os_exc

from kuryr_cleanup.engine import Finished, Outcome
from kuryr_cleanup.inventory import Inventory
from kuryr_cleanup.kuryr import CLUSTER_TAG_KEY, cluster_tags
from kuryr_cleanup.openstack_api import send
from kuryr_cleanup.ownership import trunk_ownership
from kuryr_cleanup.plan import FAILED, GONE, PlanItem, Planned
from kuryr_cleanup.resources import ports
from kuryr_cleanup.resources.base import Action, Reader, ResourceKind, Run, Step, journaled
from kuryr_cleanup.retrying import http_status


# -- discovery -------------------------------------------------------------------------------------------
def prefetch(reader: Reader, inv: Inventory) -> None:
    reader.start_list("network", "/ports", reader.scoped({"tags": inv.tag, "device_owner": "trunk:subport"}))
    reader.start_list("network", "/trunks", reader.scoped({"tags": inv.tag}))


def discover(reader: Reader, inv: Inventory) -> None:
    """Tagged trunks, plus untagged trunks that carry subports on Kuryr networks or tagged subports."""
    subport_filter = reader.scoped({"tags": inv.tag, "device_owner": "trunk:subport"})
    tagged_subports = reader.list("network", "/ports", subport_filter)
    inv.tagged_subport_ids = {p["id"] for p in tagged_subports}
    trunks = {t["id"]: t for t in reader.list("network", "/trunks", reader.scoped({"tags": inv.tag}))}
    wanted = {p["device_id"] for ports in inv.ports_by_network.values() for p in ports
              if p.get("device_owner") == "trunk:subport" and p.get("device_id")}
    wanted |= {p["device_id"] for p in tagged_subports if p.get("device_id")}
    trunks.update(reader.by_ids("network", "/trunks", wanted - set(trunks)))
    inv.trunks = list(trunks.values())
    _node_parents(reader, inv)


def _node_parents(reader: Reader, inv: Inventory) -> None:
    """A trunk whose tagging failed is a node's only if its parent port says so: the port is tagged for
    this cluster, or belongs to a server whose metadata carries the cluster's infraID (as the installer
    and the machine API set it). A name alone is no evidence: anyone can name a trunk `<infraID>-...`."""
    named = {t["id"]: t["port_id"] for t in inv.trunks if not cluster_tags(t.get("tags"))
             and (t.get("name") or "").startswith(f"{inv.infra_id}-") and t.get("port_id")}
    if not named:
        return
    parents = reader.by_ids("network", "/ports", set(named.values()))
    if any(inv.tag not in (p.get("tags") or []) for p in parents.values()) and not inv.servers:
        try:
            inv.servers = {s["id"]: s for s in reader.list("compute", "/servers")}
        except Exception as exc:  # noqa: BLE001 - no Nova for this token: only tagged parents count
            if http_status(exc) not in (403, 404) and not isinstance(exc, os_exc.EndpointNotFound):
                raise
    for trunk_id, port_id in named.items():
        parent = parents.get(port_id) or {}
        server = inv.servers.get(parent.get("device_id") or "") or {}
        if inv.tag in (parent.get("tags") or []):
            inv.node_trunk_parents[trunk_id] = f"its parent port {port_id} is tagged {inv.tag}"
        elif (server.get("metadata") or {}).get(CLUSTER_TAG_KEY) == inv.infra_id:
            inv.node_trunk_parents[trunk_id] = (f"its parent port is server {server.get('name')}'s, whose metadata "
                                                f"says {CLUSTER_TAG_KEY}={inv.infra_id}")


# -- actions ---------------------------------------------------------------------------------------------
def unset_subports(run: Run, item: PlanItem) -> Outcome:
    """One call per trunk with all its Kuryr subports; if some are already gone, retry with the rest."""
    wanted = list(item.params["subports"])
    for _attempt in range(3):
        body = {"sub_ports": [{"port_id": p} for p in wanted]}
        try:
            return journaled(run, item, functools.partial(send, run.conn, "network", "PUT",
                                                          f"/trunks/{item.id}/remove_subports", body),
                             event="change", missing_ok=False, subports=wanted)
        except Exception as exc:
            if http_status(exc) != 404:
                raise
        # TrunkNotFound, or SubPortNotFound for a port someone already removed: ask the trunk.
        try:
            current = run.call(lambda: send(run.conn, "network", "GET", f"/trunks/{item.id}/get_subports"))
        except Exception as exc:
            if http_status(exc) == 404:
                return Finished(GONE, "trunk already gone")
            raise
        present = {s["port_id"] for s in (current.get("sub_ports") or [])}
        wanted = [p for p in wanted if p in present]
        if not wanted:
            return Finished(GONE, "subports already removed")
    return Finished(FAILED, "subports kept changing while they were being removed")


UNSET_SUBPORTS = Action("trunk", "unset-subports", "unset subports", unset_subports)


# -- planning --------------------------------------------------------------------------------------------
def plan(inv: Inventory, planned: Planned) -> list[PlanItem]:
    # Only subports on the networks B6/B12 will empty: a kept network keeps everything on it, and a
    # network with a foreign trunk's subport is kept (ports.blockers), so no foreign trunk is changed.
    emptied = ports.emptied_networks(inv)
    on_emptied = {p["id"] for net_id in emptied for p in inv.ports_by_network.get(net_id, [])}
    items = []
    for trunk in sorted(inv.trunks, key=lambda t: (t.get("name") or "", t["id"])):
        subports = [s["port_id"] for s in trunk.get("sub_ports") or [] if s["port_id"] in on_emptied]
        if not subports:
            continue
        own = trunk_ownership(trunk, inv)
        name = trunk.get("name") or ""
        if not own.ours:
            items.append(UNSET_SUBPORTS.item("B11", trunk["id"], name, "", own.state, own.reason))
            continue
        items.append(UNSET_SUBPORTS.item("B11", trunk["id"], name,
                                         f"trunk {own.evidence}; subports on Kuryr networks being deleted "
                                         f"({len(subports)} subports)", subports=sorted(subports), object=trunk))
    return items


STEP = Step("B11", "Trunk subports", (), plan,
            what="subports of the nodes' trunks: one call per trunk with all its Kuryr subports",
            evidence="a trunk of this cluster's nodes (the cluster tag, or named `<infraID>-...`); the port sits on a "
                     "Kuryr network being deleted")
KIND = ResourceKind("trunks", steps=(STEP,), discover=discover, prefetch=prefetch)
