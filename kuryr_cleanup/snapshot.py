"""`kuryr-migrate snapshot`: a read-only capture of the cloud and the cluster as raw API objects.

The format is the simulator's (kuryr_cleanup.sim.store: format `kuryr-migrate/snapshot`, version 1),
so a snapshot of a real cloud can be loaded by `kuryr-migrate sim serve --snapshot` to rehearse the
cleanup. Objects are kept as the APIs return them: raw JSON, following pagination links.

A snapshot leaves the admin's machine (it goes into support cases and bug reports), so by default it
holds only this cluster's OpenStack resources (`scope: cluster`): a shared project's other clusters
are someone else's to share. `--all` captures the whole project (`scope: project`). Either way the
MachineConfigs are cut down to what the migration reads of them: on a real cluster the rendered ones
carry the nodes' files, the pull secret among them. The file is readable by its owner only.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openstack import exceptions as os_exc

from kuryr_cleanup import kube as k
from kuryr_cleanup.context import Context
from kuryr_cleanup.journal import scrub
from kuryr_cleanup.kuryr import ROUTER_INTERFACE_OWNERS, cluster_tags, description_tags
from kuryr_cleanup.openstack_api import chunks, list_raw, octavia_version, raw
from kuryr_cleanup.resources.base import Reader
from kuryr_cleanup.retrying import call, describe, http_status
from kuryr_cleanup.snapshot_format import OPENSTACK_COLLECTIONS, SNAPSHOT_FORMAT, SNAPSHOT_VERSION

# What the snapshot's `scope` says: only this cluster's OpenStack resources, or the whole project.
CLUSTER_SCOPE = "cluster"
PROJECT_SCOPE = "project"

# (proxy attribute, path, JSON key) for every collection a snapshot holds.
_OPENSTACK_SOURCES: dict[str, tuple[str, str, str]] = {
    "networks": ("network", "/networks", "networks"),
    "subnets": ("network", "/subnets", "subnets"),
    "subnetpools": ("network", "/subnetpools", "subnetpools"),
    "ports": ("network", "/ports", "ports"),
    "routers": ("network", "/routers", "routers"),
    "trunks": ("network", "/trunks", "trunks"),
    "security_groups": ("network", "/security-groups", "security_groups"),
    "security_group_rules": ("network", "/security-group-rules", "security_group_rules"),
    "floatingips": ("network", "/floatingips", "floatingips"),
    "loadbalancers": ("load_balancer", "/lbaas/loadbalancers", "loadbalancers"),
    "listeners": ("load_balancer", "/lbaas/listeners", "listeners"),
    "pools": ("load_balancer", "/lbaas/pools", "pools"),
    "healthmonitors": ("load_balancer", "/lbaas/healthmonitors", "healthmonitors"),
    "servers": ("compute", "/servers/detail", "servers"),
}

CLUSTER_KINDS: tuple[k.Kind, ...] = (
    k.INFRASTRUCTURE, k.NETWORK_CONFIG, k.NETWORK_OPERATOR, k.CLUSTER_OPERATOR, k.NODE,
    k.MACHINE_CONFIG_POOL, k.MACHINE_CONFIG, k.NAMESPACE, k.SERVICE, k.POD, k.NETWORK_POLICY, k.DAEMON_SET,
    k.KURYR_NETWORK, k.KURYR_PORT, k.KURYR_LOAD_BALANCER, k.KURYR_NETWORK_POLICY,
)

# The one line of a rendered MachineConfig the migration reads (A4, migration/facts.py
# `rendered_config_has_ovs_line`): the OVS unit's ExecStart with the network type it configures.
OVS_EXEC_START = "ExecStart=/usr/local/bin/configure-ovs.sh"
_MACHINE_CONFIG_METADATA = ("name", "labels", "annotations", "ownerReferences", "resourceVersion", "uid",
                            "creationTimestamp")
_PROVIDER_PREFIX = "openstack:///"
_TAG_EXTENSIONS = ("standard-attr-tag", "tag")


def capture(ctx: Context, whole_project: bool = False) -> dict[str, Any]:
    """The snapshot document: this cluster's OpenStack resources (or, `whole_project`, every one of the
    project's) and the cluster's objects."""
    policy = ctx.options.retry
    infra_id = ctx.infra_id
    ctx.check_openstack()
    conn = ctx.conn
    notes: list[str] = []
    objects = cluster_objects(ctx)
    extensions = {e.get("alias") for e in call(policy, lambda: [raw(e) for e in conn.network.extensions()],
                                                retry_conflicts=False)}
    major, minor = octavia_version(conn, policy)
    # What the simulator needs to answer as this cloud does: Octavia < 2.5 has no tags (the cleanup then
    # reads the tag in descriptions); a Neutron without the tag extension refuses tag filters.
    settings = {"octavia_version": f"{major}.{minor}",
                "neutron_tag_extension": bool(extensions & set(_TAG_EXTENSIONS))}
    if whole_project:
        openstack = _whole_project(ctx, notes)
    else:
        openstack = _ClusterCapture(ctx, objects, settings, notes).capture()
        notes.append(f"scope cluster: only the OpenStack resources of cluster {infra_id} (kuryr-migrate "
                     f"snapshot --all captures the whole project)")
    notes.append(f"MachineConfigs reduced to their metadata and their {OVS_EXEC_START} lines")
    return {
        "format": SNAPSHOT_FORMAT,
        "version": SNAPSHOT_VERSION,
        "scope": PROJECT_SCOPE if whole_project else CLUSTER_SCOPE,
        "captured_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": "kuryr-migrate snapshot",
        "infra_id": infra_id,
        "settings": settings,
        "notes": notes,
        "openstack": scrub(openstack),
        "kubernetes": {"objects": scrub(objects)},
    }


# -- the cluster --------------------------------------------------------------------------------------
def cluster_objects(ctx: Context) -> list[dict[str, Any]]:
    """The cluster's objects of `CLUSTER_KINDS`, MachineConfigs reduced (`reduce_machine_config`)."""
    policy = ctx.options.retry

    def list_kind(kind: k.Kind) -> list[dict[str, Any]]:
        return list(ctx.cluster.list(kind))

    objects: list[dict[str, Any]] = []
    for kind in CLUSTER_KINDS:
        for obj in call(policy, functools.partial(list_kind, kind), retry_conflicts=False):
            obj.setdefault("apiVersion", kind.api_version)
            obj.setdefault("kind", kind.kind)
            objects.append(reduce_machine_config(obj) if kind == k.MACHINE_CONFIG else obj)
    return objects


def reduce_machine_config(obj: dict[str, Any]) -> dict[str, Any]:
    """A MachineConfig with only what the migration reads: its metadata, and of its systemd units only the
    `configure-ovs.sh` ExecStart lines.

    A rendered MachineConfig holds every file the MCO writes to the nodes: the pull secret
    (/var/lib/kubelet/config.json), kubelet certificates, the core user's SSH keys. None of it may
    leave the cluster in a snapshot, and A4 checks one line (the network type OVS is set up for).
    """
    meta = obj.get("metadata") or {}
    units = (((obj.get("spec") or {}).get("config") or {}).get("systemd") or {}).get("units") or []
    kept_units = []
    for unit in units:
        lines = [line for line in str(unit.get("contents") or "").splitlines() if OVS_EXEC_START in line]
        if lines:
            kept_units.append({"name": unit.get("name"), "contents": "\n".join(lines) + "\n"})
    spec: dict[str, Any] = {"config": {"systemd": {"units": kept_units}}} if kept_units else {}
    return {
        "apiVersion": obj.get("apiVersion", k.MACHINE_CONFIG.api_version),
        "kind": obj.get("kind", k.MACHINE_CONFIG.kind),
        "metadata": {key: meta[key] for key in _MACHINE_CONFIG_METADATA if key in meta},
        "spec": spec,
    }


# -- the whole project (--all) ---------------------------------------------------------------------------
def _whole_project(ctx: Context, notes: list[str]) -> dict[str, Any]:
    """Every resource of the token's project. An admin token lists every project's unless the query names
    one, so each listing names it; Neutron's own ports (router gateways, floating IPs) belong to no
    project and come with the project's networks, routers and floating IPs."""
    conn, policy, project = ctx.conn, ctx.options.retry, ctx.project_id
    scope = {"project_id": project} if project else {}
    openstack: dict[str, Any] = {"project_id": ctx.project_id}
    for collection in OPENSTACK_COLLECTIONS:
        source = _OPENSTACK_SOURCES.get(collection)
        if source is None:
            openstack[collection] = []
            continue
        proxy_name, path, key = source
        try:
            # Nova lists the token's project's servers already (other projects' only with all_tenants).
            openstack[collection] = list_raw(conn, proxy_name, path, key, policy,
                                             None if proxy_name == "compute" else scope)
        except (os_exc.EndpointNotFound, os_exc.NotFoundException) as exc:
            if proxy_name != "compute":
                raise
            # A cloud (or a token) without Nova: the snapshot is still useful for the cleanup.
            openstack[collection] = []
            notes.append(f"no servers captured: {describe(exc)}")
    if project:
        ports = {p["id"]: p for p in openstack["ports"]}
        for name, owners in (("network_id", openstack["networks"]),
                             ("device_id", openstack["routers"] + openstack["floatingips"])):
            for batch in chunks(sorted({r["id"] for r in owners})):
                for port in list_raw(conn, "network", "/ports", "ports", policy, {name: batch}):
                    ports.setdefault(port["id"], port)
        openstack["ports"] = list(ports.values())
    openstack["members"] = _members(conn, policy, openstack.get("pools", []))
    return openstack


def _members(conn: Any, policy: Any, pools: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Members live under their pools: one listing per pool (Octavia has no listing of them all)."""
    members = []
    for pool in pools:
        for member in list_raw(conn, "load_balancer", f"/lbaas/pools/{pool['id']}/members", "members", policy):
            member.setdefault("pool_id", pool["id"])
            members.append(member)
    return members


# -- this cluster's resources (the default) ----------------------------------------------------------------
@dataclass
class ClusterEvidence:
    """The ids this cluster's objects name: its Kuryr CRs (the same pointers the cleanup follows, S2)
    and its Nodes' `spec.providerID` (the Nova servers the reboots use, R)."""

    network_ids: set[str] = field(default_factory=set)
    subnet_ids: set[str] = field(default_factory=set)
    router_ids: set[str] = field(default_factory=set)
    port_ids: set[str] = field(default_factory=set)
    lb_ids: set[str] = field(default_factory=set)
    fip_ids: set[str] = field(default_factory=set)
    security_group_ids: set[str] = field(default_factory=set)
    server_ids: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, objects: Iterable[dict[str, Any]]) -> ClusterEvidence:
        ev = cls()
        for obj in objects:
            kind, status = obj.get("kind"), obj.get("status") or {}
            if kind == "KuryrNetwork":
                _add(ev.network_ids, status.get("netId"))
                _add(ev.subnet_ids, status.get("subnetId"))
                _add(ev.router_ids, status.get("routerId"))
            elif kind == "KuryrLoadBalancer":
                lb = status.get("loadbalancer") or {}
                _add(ev.lb_ids, lb.get("id"))
                _add(ev.port_ids, lb.get("port_id"))
                _add(ev.fip_ids, (status.get("service_pub_ip_info") or {}).get("ip_id"))
            elif kind == "KuryrNetworkPolicy":
                _add(ev.security_group_ids, status.get("securityGroupId"))
            elif kind == "KuryrPort":
                for vif in (status.get("vifs") or {}).values():
                    data = ((vif or {}).get("vif") or {}).get("versioned_object.data") or {}
                    _add(ev.port_ids, data.get("id"))
            elif kind == "Node":
                provider = str((obj.get("spec") or {}).get("providerID") or "")
                if provider.startswith(_PROVIDER_PREFIX):
                    _add(ev.server_ids, provider[len(_PROVIDER_PREFIX):].strip("/"))
        return ev


def _add(ids: set[str], value: Any) -> None:
    if value:
        ids.add(str(value))


class _ClusterCapture:
    """This cluster's OpenStack resources and what hangs off them.

    A resource is the cluster's when it carries the cluster tag (or, for load balancers, its text in the
    description), when this cluster's objects name it (ClusterEvidence), or when it has an installer or
    CNO name `<infraID>-...` and no other cluster's tag. Then what hangs off those, or what the cleanup
    runs into there: the ports of their networks, routers, servers and floating IPs, the subnets of
    their networks and router interfaces, another owner's router, VM, trunk or port holding one of
    them, the trunks carrying their ports, the floating IPs on them, the rules of their security
    groups, the listeners, pools, members and health monitors of their load balancers.

    Listings are filtered by the server where the API can (tags, network_id, device_id, port_id,
    security_group_id, security_groups, id: reads grow with this cluster, not the project). Names and
    descriptions can only be matched here: the collections with one record per namespace, policy,
    node or Service at most (networks, routers, trunks, security groups, subnet pools, Octavia's) are
    read whole, the cluster's project only, and filtered client-side.
    """

    def __init__(self, ctx: Context, objects: list[dict[str, Any]], settings: dict[str, Any],
                 notes: list[str]) -> None:
        self.ctx = ctx
        self.reader = Reader(ctx)
        self.notes = notes
        self.tag = ctx.tag
        self.prefix = f"{ctx.infra_id}-"
        self.evidence = ClusterEvidence.of(objects)
        self.neutron_tags = bool(settings["neutron_tag_extension"])
        self.has_nova = True
        self.kept: dict[str, dict[str, dict[str, Any]]] = {c: {} for c in OPENSTACK_COLLECTIONS}
        project = ctx.project_id
        # An admin token lists every project's resources unless the query names one: listings by tag or
        # whole are limited to the cluster's project (those by network, device or id follow what is kept).
        self.scope: dict[str, Any] = {"project_id": project} if project else {}

    # -- evidence ---------------------------------------------------------------------------------
    def tagged(self, record: dict[str, Any], description: bool = False) -> bool:
        tags = cluster_tags(record.get("tags"))
        if description:
            tags |= description_tags(record.get("description"))
        return self.tag in tags

    def foreign(self, record: dict[str, Any]) -> bool:
        """Tagged for another cluster only: a name `<infraID>-...` is no evidence then (a cluster named
        `<our infraID>` would have names that start like ours)."""
        tags = cluster_tags(record.get("tags")) | description_tags(record.get("description"))
        return bool(tags) and self.tag not in tags

    def ours(self, record: dict[str, Any], named: Collection[str] = (), by_name: bool = True,
             description: bool = False) -> bool:
        if self.tagged(record, description) or record.get("id") in named:
            return True
        return by_name and str(record.get("name") or "").startswith(self.prefix) and not self.foreign(record)

    # -- reads ------------------------------------------------------------------------------------
    def keep(self, collection: str, records: Iterable[dict[str, Any]],
             wanted: Callable[[dict[str, Any]], bool] = lambda _: True) -> None:
        found = self.kept[collection]
        for record in records:
            if record["id"] not in found and wanted(record):
                found[record["id"]] = record

    def ids(self, collection: str) -> set[str]:
        return set(self.kept[collection])

    def neutron(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self.reader.list("network", path, params)

    def neutron_by(self, path: str, name: str, values: Iterable[str]) -> list[dict[str, Any]]:
        """A listing filtered by any of `values` (Neutron reads repeated parameters as "any of")."""
        out: list[dict[str, Any]] = []
        for batch in chunks(sorted(set(values))):
            out.extend(self.neutron(path, {name: batch}))
        return out

    def neutron_tagged(self, path: str) -> list[dict[str, Any]]:
        return self.neutron(path, {"tags": self.tag, **self.scope}) if self.neutron_tags else []

    def neutron_whole(self, path: str) -> list[dict[str, Any]]:
        return self.neutron(path, dict(self.scope))

    def octavia_whole(self, path: str) -> list[dict[str, Any]]:
        return self.reader.list("load_balancer", path, dict(self.scope))

    def missing(self, collection: str, path: str, ids: Iterable[str]) -> None:
        """Resources by id that are not kept yet (named by the cluster's objects or another kept one)."""
        wanted = set(ids) - self.ids(collection)
        if wanted:
            self.keep(collection, self.reader.by_ids("network", path, wanted).values())

    def missing_servers(self, ids: Iterable[str]) -> None:
        for server_id in sorted(set(ids) - self.ids("servers")):
            server = self.reader.one("compute", f"/servers/{server_id}", "server")
            if server is not None:
                self.keep("servers", [server])

    # -- the capture -------------------------------------------------------------------------------
    def capture(self) -> dict[str, Any]:
        self.servers()
        self.network_side()
        self.octavia_side()
        openstack: dict[str, Any] = {"project_id": self.ctx.project_id}
        for collection in OPENSTACK_COLLECTIONS:
            openstack[collection] = list(self.kept[collection].values())
        return openstack

    def servers(self) -> None:
        """The nodes' servers: named `<infraID>-...` (Nova's name filter is a regular expression), and
        those the Nodes' providerIDs name (a renamed server is still a node)."""
        conn, policy = self.ctx.conn, self.ctx.options.retry
        try:
            named = list_raw(conn, "compute", "/servers/detail", "servers", policy, {"name": f"^{self.prefix}"})
            self.keep("servers", named, lambda s: str(s.get("name") or "").startswith(self.prefix))
            self.missing_servers(self.evidence.server_ids)
            self.has_nova = True
        except (os_exc.EndpointNotFound, os_exc.NotFoundException) as exc:
            # A cloud (or a token) without Nova: the snapshot is still useful for the cleanup.
            self.has_nova = False
            self.notes.append(f"no servers captured: {describe(exc)}")

    def network_side(self) -> None:
        ev = self.evidence
        self.keep("networks", self.neutron_whole("/networks"), lambda n: self.ours(n, ev.network_ids))
        self.missing("networks", "/networks", ev.network_ids)
        networks = self.ids("networks")
        # Ports: tagged, on the kept networks (pods, router interfaces, VIPs, and any other owner's
        # port there: the cleanup must see those), on the nodes' servers, named by a CR.
        self.keep("ports", self.neutron_tagged("/ports"))
        self.keep("ports", self.neutron_by("/ports", "network_id", networks))
        self.keep("ports", self.neutron_by("/ports", "device_id", self.ids("servers")))
        self.missing("ports", "/ports", ev.port_ids)
        if self.has_nova:
            # A VM on a Kuryr network is someone's machine: the cleanup keeps the network for it.
            self.missing_servers({p["device_id"] for p in self.kept["ports"].values()
                                  if p.get("network_id") in networks and p.get("device_id")
                                  and str(p.get("device_owner") or "").startswith("compute:")})
        # Routers: ours, or holding an interface on one of our networks (a foreign router there is what
        # makes the cleanup keep a network: the rehearsal must see it).
        attached = {p["device_id"] for p in self.kept["ports"].values()
                    if p.get("device_owner") in ROUTER_INTERFACE_OWNERS and p.get("network_id") in networks}
        self.keep("routers", self.neutron_whole("/routers"), lambda r: self.ours(r, ev.router_ids))
        self.missing("routers", "/routers", ev.router_ids | attached)
        self.keep("ports", self.neutron_by("/ports", "device_id", self.ids("routers")))
        interface_subnets = {ip["subnet_id"] for p in self.kept["ports"].values()
                             if p.get("device_id") in self.kept["routers"]
                             and p.get("device_owner") in ROUTER_INTERFACE_OWNERS
                             for ip in p.get("fixed_ips") or [] if ip.get("subnet_id")}
        self.keep("subnets", self.neutron_by("/subnets", "network_id", networks))
        self.keep("subnets", self.neutron_tagged("/subnets"))
        self.missing("subnets", "/subnets", ev.subnet_ids | interface_subnets)
        # Trunks: ours, or carrying one of the kept ports (a node's trunk whose tagging failed, another
        # owner's trunk holding a pod's port); then their parent ports and subports.
        ports = self.ids("ports")
        self.keep("trunks", self.neutron_whole("/trunks"), lambda t: self.ours(t) or t.get("port_id") in ports
                  or any(s.get("port_id") in ports for s in t.get("sub_ports") or []))
        self.missing("trunks", "/trunks", {p["device_id"] for p in self.kept["ports"].values()
                                           if p.get("device_owner") == "trunk:subport" and p.get("device_id")})
        carried = {t["port_id"] for t in self.kept["trunks"].values() if t.get("port_id")}
        carried |= {s["port_id"] for t in self.kept["trunks"].values() for s in t.get("sub_ports") or []}
        self.missing("ports", "/ports", carried)
        self.keep("security_groups", self.neutron_whole("/security-groups"),
                  lambda g: self.ours(g, ev.security_group_ids))
        self.missing("security_groups", "/security-groups", ev.security_group_ids)
        groups = self.ids("security_groups")
        self.keep("security_group_rules", self.neutron_by("/security-group-rules", "security_group_id", groups))
        self.group_holders(groups)
        self.keep("subnetpools", self.neutron_whole("/subnetpools"), lambda p: self.ours(p))
        # Floating IPs on the kept ports, Kuryr's (tagged), and those a KuryrLoadBalancer names.
        self.keep("floatingips", self.neutron_by("/floatingips", "port_id", self.ids("ports")))
        self.keep("floatingips", self.neutron_tagged("/floatingips"))
        self.missing("floatingips", "/floatingips", ev.fip_ids)
        # A floating IP's own port on the external network (Neutron deletes it with the floating IP).
        self.keep("ports", self.neutron_by("/ports", "device_id", self.ids("floatingips")))

    def group_holders(self, groups: set[str]) -> None:
        """Other owners' ports in one of the kept security groups (a user's VM in the pods group): what
        makes the cleanup fail to delete that group, so what a rehearsal must meet too."""
        try:
            holders = self.neutron_by("/ports", "security_groups", groups)
        except Exception as exc:
            if http_status(exc) != 400:
                raise
            # A Neutron without port-security-groups-filtering refuses the filter.
            self.notes.append(f"ports of other owners in the cluster's security groups not captured: {describe(exc)}")
            return
        self.keep("ports", holders, lambda p: bool(groups & set(p.get("security_groups") or [])))

    def octavia_side(self) -> None:
        """The project's load balancers with our tag, or its text in their description (on every Octavia
        version: LBs made before an upgrade across 2.5 carry it only there), or named by a
        KuryrLoadBalancer; one paged listing of the project's, as the cleanup reads them."""
        ev, reader = self.evidence, self.reader
        self.keep("loadbalancers", self.octavia_whole("/lbaas/loadbalancers"),
                  lambda lb: self.ours(lb, ev.lb_ids, by_name=False, description=True))
        for lb_id in sorted(ev.lb_ids - self.ids("loadbalancers")):
            # Octavia has no "any of these ids" filter (a real Octavia 19 answers 500 to id=a&id=b).
            lb = reader.one("load_balancer", f"/lbaas/loadbalancers/{lb_id}", "loadbalancer")
            if lb is not None:
                self.keep("loadbalancers", [lb])
        lbs = self.ids("loadbalancers")
        self.missing("ports", "/ports", {str(lb["vip_port_id"]) for lb in self.kept["loadbalancers"].values()
                                         if lb.get("vip_port_id")})

        def of_kept_lb(child: dict[str, Any]) -> bool:
            return any(ref.get("id") in lbs for ref in child.get("loadbalancers") or [])

        for collection in ("listeners", "pools"):
            self.keep(collection, self.octavia_whole(f"/lbaas/{collection}"), of_kept_lb)
        pools = self.ids("pools")
        self.keep("healthmonitors", self.octavia_whole("/lbaas/healthmonitors"),
                  lambda hm: any(ref.get("id") in pools for ref in hm.get("pools") or []))
        self.keep("members", _members(self.ctx.conn, self.ctx.options.retry, self.kept["pools"].values()))


# -- the file ----------------------------------------------------------------------------------------
def write_snapshot(data: dict[str, Any], path: Path) -> None:
    """Write the snapshot readable by its owner only, from the first byte, whatever the umask.

    It holds the cloud's and the cluster's raw objects: created 0600 (never a moment world-readable),
    written to a temporary file beside it and renamed over it, so a reader sees the old file or the
    whole new one.
    """
    tmp = path.with_name(path.name + ".tmp")
    # A temporary file left by an interrupted run may have any mode (or be a link): start afresh.
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), 0o600)  # the umask may have taken bits off; it can't have added any
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
