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
from kuryr_cleanup.retrying import call, describe
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
    conn, policy = ctx.conn, ctx.options.retry
    openstack: dict[str, Any] = {"project_id": conn.current_project_id}
    for collection in OPENSTACK_COLLECTIONS:
        source = _OPENSTACK_SOURCES.get(collection)
        if source is None:
            openstack[collection] = []
            continue
        proxy_name, path, key = source
        try:
            openstack[collection] = list_raw(conn, proxy_name, path, key, policy)
        except (os_exc.EndpointNotFound, os_exc.NotFoundException) as exc:
            if proxy_name != "compute":
                raise
            # A cloud (or a token) without Nova: the snapshot is still useful for the cleanup.
            openstack[collection] = []
            notes.append(f"no servers captured: {describe(exc)}")
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

    A resource is the cluster's when it carries the cluster tag (or, on Octavia < 2.5, its text in the
    description), when this cluster's objects name it (ClusterEvidence), or when it has an installer or
    CNO name `<infraID>-...` and no other cluster's tag. Then what hangs off those: the ports, subnets
    and routers of their networks, the ports and subnets of their routers' interfaces, their servers'
    ports, the trunks carrying their ports, the floating IPs on them, the rules of their security
    groups, the listeners, pools, members and health monitors of their load balancers.

    Listings are filtered by the server where the API can (tags, network_id, device_id, port_id,
    security_group_id: reads grow with this cluster, not the project). Names can only be matched here:
    the collections with one record per namespace, policy or node at most (networks, routers, trunks,
    security groups, subnet pools) are read whole and filtered client-side.
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
        version = str(settings["octavia_version"]).split(".")
        self.octavia_tags = (int(version[0]), int(version[1])) >= (2, 5)
        self.kept: dict[str, dict[str, dict[str, Any]]] = {c: {} for c in OPENSTACK_COLLECTIONS}

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

    def neutron_tagged(self, path: str, **params: Any) -> list[dict[str, Any]]:
        return self.neutron(path, {"tags": self.tag, **params}) if self.neutron_tags else []

    def missing(self, collection: str, path: str, ids: Iterable[str]) -> None:
        """Resources by id that are not kept yet (named by the cluster's objects or another kept one)."""
        wanted = set(ids) - self.ids(collection)
        if wanted:
            self.keep(collection, self.reader.by_ids("network", path, wanted).values())

    # -- the capture -------------------------------------------------------------------------------
    def capture(self) -> dict[str, Any]:
        self.servers()
        self.network_side()
        self.octavia_side()
        openstack: dict[str, Any] = {"project_id": self.ctx.conn.current_project_id}
        for collection in OPENSTACK_COLLECTIONS:
            openstack[collection] = list(self.kept[collection].values())
        return openstack

    def servers(self) -> None:
        """The nodes' servers: named `<infraID>-...` (Nova's name filter is a regular expression), and
        those the Nodes' providerIDs name (a renamed server is still a node)."""
        conn, policy, ev = self.ctx.conn, self.ctx.options.retry, self.evidence
        try:
            named = list_raw(conn, "compute", "/servers/detail", "servers", policy, {"name": f"^{self.prefix}"})
            self.keep("servers", named, lambda s: str(s.get("name") or "").startswith(self.prefix))
            for server_id in sorted(ev.server_ids - self.ids("servers")):
                server = self.reader.one("compute", f"/servers/{server_id}", "server")
                if server is not None:
                    self.keep("servers", [server])
        except (os_exc.EndpointNotFound, os_exc.NotFoundException) as exc:
            # A cloud (or a token) without Nova: the snapshot is still useful for the cleanup.
            self.notes.append(f"no servers captured: {describe(exc)}")

    def network_side(self) -> None:
        ev = self.evidence
        self.keep("networks", self.neutron("/networks", {}), lambda n: self.ours(n, ev.network_ids))
        networks = self.ids("networks")
        # Ports: tagged, on the kept networks (pods, router interfaces, VIPs, and any other owner's
        # port there: the cleanup must see those), on the nodes' servers, named by a CR.
        self.keep("ports", self.neutron_tagged("/ports"))
        self.keep("ports", self.neutron_by("/ports", "network_id", networks))
        self.keep("ports", self.neutron_by("/ports", "device_id", self.ids("servers")))
        self.missing("ports", "/ports", ev.port_ids)
        # Routers: ours, or holding an interface on one of our networks (a foreign router there is what
        # makes the cleanup keep a network: the rehearsal must see it).
        attached = {p["device_id"] for p in self.kept["ports"].values()
                    if p.get("device_owner") in ROUTER_INTERFACE_OWNERS and p.get("network_id") in networks}
        self.keep("routers", self.neutron("/routers", {}), lambda r: self.ours(r, ev.router_ids | attached))
        self.keep("ports", self.neutron_by("/ports", "device_id", self.ids("routers")))
        interface_subnets = {ip["subnet_id"] for p in self.kept["ports"].values()
                             if p.get("device_id") in self.kept["routers"]
                             and p.get("device_owner") in ROUTER_INTERFACE_OWNERS
                             for ip in p.get("fixed_ips") or [] if ip.get("subnet_id")}
        self.keep("subnets", self.neutron_by("/subnets", "network_id", networks))
        self.keep("subnets", self.neutron_tagged("/subnets"))
        self.missing("subnets", "/subnets", ev.subnet_ids | interface_subnets)
        # Trunks: ours, or carrying one of the kept ports (a node's trunk whose tagging failed); then
        # their parent ports and subports.
        ports = self.ids("ports")
        self.keep("trunks", self.neutron("/trunks", {}), lambda t: self.ours(t) or t.get("port_id") in ports
                  or any(s.get("port_id") in ports for s in t.get("sub_ports") or []))
        carried = {t["port_id"] for t in self.kept["trunks"].values() if t.get("port_id")}
        carried |= {s["port_id"] for t in self.kept["trunks"].values() for s in t.get("sub_ports") or []}
        self.missing("ports", "/ports", carried)
        self.keep("security_groups", self.neutron("/security-groups", {}),
                  lambda g: self.ours(g, ev.security_group_ids))
        self.keep("security_group_rules", self.neutron_by("/security-group-rules", "security_group_id",
                                                          self.ids("security_groups")))
        self.keep("subnetpools", self.neutron("/subnetpools", {}), lambda p: self.ours(p))
        # Floating IPs on the kept ports, Kuryr's (tagged), and those a KuryrLoadBalancer names.
        self.keep("floatingips", self.neutron_by("/floatingips", "port_id", self.ids("ports")))
        self.keep("floatingips", self.neutron_tagged("/floatingips"))
        self.missing("floatingips", "/floatingips", ev.fip_ids)
        # A floating IP's own port on the external network (Neutron deletes it with the floating IP).
        self.keep("ports", self.neutron_by("/ports", "device_id", self.ids("floatingips")))

    def octavia_side(self) -> None:
        ev, reader = self.evidence, self.reader
        if self.octavia_tags:
            self.keep("loadbalancers", reader.list("load_balancer", "/lbaas/loadbalancers", {"tags": self.tag}))
            wanted = ev.lb_ids - self.ids("loadbalancers")
            if len(wanted) <= 5:
                found = [reader.one("load_balancer", f"/lbaas/loadbalancers/{i}", "loadbalancer") for i in wanted]
                self.keep("loadbalancers", [lb for lb in found if lb is not None])
            else:  # Octavia has no "any of these ids" filter: one listing beats hundreds of GETs
                self.keep("loadbalancers", reader.list("load_balancer", "/lbaas/loadbalancers"),
                          lambda lb: lb["id"] in wanted)
        else:
            # Before 2.5 the tag is in the description, which no filter reads.
            self.keep("loadbalancers", reader.list("load_balancer", "/lbaas/loadbalancers"),
                      lambda lb: self.ours(lb, ev.lb_ids, by_name=False, description=True))
        lbs = self.ids("loadbalancers")
        self.missing("ports", "/ports", {str(lb["vip_port_id"]) for lb in self.kept["loadbalancers"].values()
                                         if lb.get("vip_port_id")})

        def of_kept_lb(child: dict[str, Any]) -> bool:
            return any(ref.get("id") in lbs for ref in child.get("loadbalancers") or [])

        for collection in ("listeners", "pools"):
            path = f"/lbaas/{collection}"
            if self.octavia_tags:
                self.keep(collection, reader.list("load_balancer", path, {"tags": self.tag}), of_kept_lb)
                # Children of an LB whose tagging failed lack the tag too: asked for per LB.
                for lb in self.kept["loadbalancers"].values():
                    if not self.tagged(lb):
                        self.keep(collection, reader.list("load_balancer", path, {"loadbalancer_id": lb["id"]}),
                                  of_kept_lb)
            else:
                self.keep(collection, reader.list("load_balancer", path), of_kept_lb)
        pools = self.ids("pools")
        self.keep("healthmonitors", reader.list("load_balancer", "/lbaas/healthmonitors"),
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
