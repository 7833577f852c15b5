"""Discovery: one read-only inventory of this cluster's Kuryr resources, in the cloud and the cluster.

Reads are listings with server-side filters (tags, network ids in batches, device owner), paged, so
their number grows with pages, not with resources. Facts that only the cluster's Kuryr CRs know (the
router id, the namespace networks, Kuryr's floating-IP allocations, the policy security groups) are
merged into the run state, so a re-run after those CRs are gone still finds what is left (S3).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kuryr_cleanup import cluster as k
from kuryr_cleanup.context import CLUSTER_TAG_KEY, Context
from kuryr_cleanup.errors import UsageError
from kuryr_cleanup.openstack_api import get_one, list_raw
from kuryr_cleanup.plan import KEPT, PLANNED, SKIPPED
from kuryr_cleanup.retrying import call

T = TypeVar("T")

# Finalizers Kuryr puts on cluster objects (SPEC B1, B4, B7-B10, B17).
SERVICE_FINALIZER = "kuryr.openstack.org/service-finalizer"
KLB_FINALIZER = "kuryr.openstack.org/kuryrloadbalancer-finalizers"
POD_FINALIZER = "kuryr.openstack.org/pod-finalizer"
KURYRPORT_FINALIZER = "kuryr.openstack.org/kuryrport-finalizer"
NETWORKPOLICY_FINALIZER = "kuryr.openstack.org/networkpolicy-finalizer"
KURYRNETWORK_FINALIZER = "kuryrnetwork.finalizers.kuryr.openstack.org"

KURYR_NAMESPACE = "openshift-kuryr"
GATEWAY_SERVICE = "service-subnet-gateway-ip"
NP_SG_DESCRIPTION = "Kuryr-Kubernetes Network Policy"
INSTALLER_ROUTER_DESCRIPTION = "Created By OpenShift Installer"
ROUTER_INTERFACE_OWNERS = ("network:router_interface", "network:router_interface_distributed",
                           "network:ha_router_replicated_interface")
KURYR_FIP_DESCRIPTION = "kuryr_lb"
ID_BATCH = 80  # ids per filtered listing: keeps URLs well under common 8 KiB limits


def cno_name(infra_id: str, suffix: str) -> str:
    """A name the Cluster Network Operator gives: `<infraID>-kuryr-...`."""
    return f"{infra_id}-{suffix}"


def cluster_tags(tags: Iterable[str] | None) -> set[str]:
    return {t for t in (tags or []) if t.startswith(CLUSTER_TAG_KEY + "=")}


_DESCRIPTION_TAG = re.compile(re.escape(CLUSTER_TAG_KEY) + r"=([^\s,;]+)")


def description_tags(description: str | None) -> set[str]:
    """The cluster tags written into a description (Kuryr on Octavia < 2.5), as whole tokens: a
    substring test would take `...=abc12` for `...=abc12-other` too."""
    return {f"{CLUSTER_TAG_KEY}={m}" for m in _DESCRIPTION_TAG.findall(description or "")}


@dataclass
class Ownership:
    """Why a resource may (or may not) be touched (SPEC S2)."""

    ours: bool
    evidence: str = ""
    reason: str = ""

    @property
    def state(self) -> str:
        """The plan state this gives: planned when ours; skipped when another cluster's; else kept."""
        if self.ours:
            return PLANNED
        return SKIPPED if self.reason.startswith("skipped") else KEPT


def ownership(resource: dict[str, Any], tag: str, named_in: str | None = None, cno: str | None = None,
              description_tag: bool = False) -> Ownership:
    """Evidence that `resource` is this cluster's: our tag, being named in our CRs, or a CNO name.

    A resource tagged for another cluster is never ours, whatever else says so.
    """
    tags = cluster_tags(resource.get("tags"))
    if description_tag:
        tags |= description_tags(resource.get("description"))
    others = sorted(tags - {tag})
    if others and tag not in tags:
        return Ownership(False, reason=f"skipped: tagged for another cluster ({', '.join(others)})")
    if tag in cluster_tags(resource.get("tags")):
        return Ownership(True, f"tag {tag}")
    if tag in tags:
        return Ownership(True, f"description carries {tag} (Octavia < 2.5)")
    if named_in:
        return Ownership(True, f"named in {named_in}")
    if cno:
        return Ownership(True, f"CNO name {cno}")
    return Ownership(False, reason="kept: no evidence it belongs to this cluster")


def raw(resource: Any) -> dict[str, Any]:
    """An openstacksdk resource as the API's own JSON (attribute names as the service sends them)."""
    if isinstance(resource, dict):
        return resource
    data = resource.to_dict(headers=False, computed=False, original_names=True)
    data.pop("location", None)
    return dict(json.loads(json.dumps(data, default=str)))


def chunks(values: list[str], size: int = ID_BATCH) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


@dataclass
class Inventory:
    infra_id: str
    tag: str
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
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)  # Kuryr namespace networks
    ports_by_network: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    subnets_by_network: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # for the journal
    lb_children: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)  # for the journal
    service_network: dict[str, Any] | None = None
    service_subnets: list[dict[str, Any]] = field(default_factory=list)
    other_service_networks: list[dict[str, Any]] = field(default_factory=list)  # name matches, not ours
    routers: dict[str, dict[str, Any]] = field(default_factory=dict)
    router_ports: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    security_groups: list[dict[str, Any]] = field(default_factory=list)
    subnet_pools: list[dict[str, Any]] = field(default_factory=list)

    @property
    def octavia_has_tags(self) -> bool:
        return self.octavia_version >= (2, 5)


class Discovery:
    """Builds the Inventory. Every read goes through the retry policy."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.policy = ctx.options.retry

    def _read(self, fn: Callable[[], T]) -> T:
        return call(self.policy, fn, retry_conflicts=False)

    def _by_ids(self, service: str, path: str, ids: set[str]) -> dict[str, dict[str, Any]]:
        """Resources by id, a batch of ids per listing: ids an earlier run recorded may number in the
        thousands, and most are gone on a re-run (one GET each would make reads grow with them)."""
        found: dict[str, dict[str, Any]] = {}
        for batch in chunks(sorted(ids)):
            wanted = set(batch)
            # Kept to the ids asked for, whatever the service made of the filter.
            found.update({r["id"]: r for r in self._raw(service, path, {"id": batch}) if r["id"] in wanted})
        return found

    def _load_balancers_by_ids(self, ids: set[str]) -> dict[str, dict[str, Any]]:
        """Octavia has no "any of these ids" filter (a real Octavia 19 answers 500 to `id=a&id=b`): a
        few ids are read one by one; more (a re-run remembering thousands) by one listing of all."""
        if len(ids) <= 5:
            found = {i: self._one("load_balancer", f"/lbaas/loadbalancers/{i}", "loadbalancer") for i in ids}
            return {i: lb for i, lb in found.items() if lb is not None}
        return {lb["id"]: lb for lb in self._raw("load_balancer", "/lbaas/loadbalancers") if lb["id"] in ids}

    def _one(self, service: str, path: str, key: str) -> dict[str, Any] | None:
        return get_one(self.ctx.conn, service, path, key, self.policy)

    def _raw(self, service: str, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        key = path.rsplit("/", 1)[-1].replace("-", "_")
        return list_raw(self.ctx.conn, service, path, key, self.policy, params)

    def run(self) -> Inventory:
        ctx = self.ctx
        inv = Inventory(ctx.infra_id, ctx.tag)
        self.discover_cluster(inv)
        self.remember(inv)
        self.discover_cloud(inv)
        return inv

    # -- the cluster ------------------------------------------------------------------------------
    def discover_cluster(self, inv: Inventory) -> None:
        cl = self.ctx.cluster
        net = self._read(lambda: cl.get(k.NETWORK_CONFIG, "cluster")) or {}
        inv.network_type = (net.get("status") or {}).get("networkType")
        operator = self._read(lambda: cl.get(k.NETWORK_OPERATOR, "cluster")) or {}
        inv.migration = (operator.get("spec") or {}).get("migration")

        def with_finalizer(kind: k.Kind, finalizer: str) -> list[dict[str, Any]]:
            objs = self._read(lambda: list(cl.list(kind)))
            return [o for o in objs if finalizer in ((o.get("metadata") or {}).get("finalizers") or [])]

        kns = self._read(lambda: list(cl.list(k.KURYR_NETWORK)))
        klbs = self._read(lambda: list(cl.list(k.KURYR_LOAD_BALANCER)))
        knps = self._read(lambda: list(cl.list(k.KURYR_NETWORK_POLICY)))
        inv.finalizer_objects = {
            "B1": with_finalizer(k.SERVICE, SERVICE_FINALIZER),
            "B4": [o for o in klbs if KLB_FINALIZER in (o["metadata"].get("finalizers") or [])],
            "B7": with_finalizer(k.POD, POD_FINALIZER),
            "B8": with_finalizer(k.KURYR_PORT, KURYRPORT_FINALIZER),
            "B9": with_finalizer(k.NETWORK_POLICY, NETWORKPOLICY_FINALIZER),
            "B10": [o for o in knps if NETWORKPOLICY_FINALIZER in (o["metadata"].get("finalizers") or [])],
            "B17": [o for o in kns if KURYRNETWORK_FINALIZER in (o["metadata"].get("finalizers") or [])],
        }
        inv.gateway_service = self._read(lambda: cl.get(k.SERVICE, GATEWAY_SERVICE, KURYR_NAMESPACE))
        inv.kuryr_namespace = self._read(lambda: cl.get(k.NAMESPACE, KURYR_NAMESPACE))
        for kn in kns:
            status = kn.get("status") or {}
            ref = k.object_ref(kn)
            if status.get("netId"):
                inv.kuryr_networks[status["netId"]] = {"subnet_id": status.get("subnetId"), "kuryrnetwork": ref}
            if status.get("routerId") and status["routerId"] not in inv.router_ids:
                inv.router_ids.append(status["routerId"])
        for klb in klbs:
            status = klb.get("status") or {}
            lb = status.get("loadbalancer") or {}
            if lb.get("id"):
                pub = status.get("service_pub_ip_info") or {}
                inv.kuryr_lbs[lb["id"]] = {
                    "kuryrloadbalancer": k.object_ref(klb),
                    "alloc_method": pub.get("alloc_method"),
                    "fip_id": pub.get("ip_id"),
                }
        for knp in knps:
            sg = (knp.get("status") or {}).get("securityGroupId")
            if sg:
                inv.np_security_groups[sg] = k.object_ref(knp)

    def remember(self, inv: Inventory) -> None:
        """Merge CR facts with earlier runs' so nothing learnt is lost when the CRs go."""
        state = self.ctx.state
        inv.kuryr_networks = state.merge_dict("kuryr_networks", inv.kuryr_networks)
        routers = list(dict.fromkeys((state.get("router_ids") or []) + inv.router_ids))
        state.set("router_ids", routers)
        inv.router_ids = routers
        inv.kuryr_lbs = state.merge_dict("kuryr_lbs", inv.kuryr_lbs)
        inv.np_security_groups = state.merge_dict("np_security_groups", inv.np_security_groups)
        state.set("infra_id", inv.infra_id)

    # -- the cloud --------------------------------------------------------------------------------
    def discover_cloud(self, inv: Inventory) -> None:
        conn = self.ctx.conn
        tag = inv.tag
        infra = inv.infra_id
        extensions = {e["alias"] for e in self._read(lambda: conn.network.get("/extensions").json()["extensions"])}
        if "standard-attr-tag" not in extensions and "tag" not in extensions:
            raise UsageError("Neutron has no tag extension: ownership of Kuryr resources cannot be proven")
        inv.octavia_version = self.octavia_version()

        # Octavia load balancers: by tag (or the description on Octavia < 2.5), plus those the
        # KuryrLoadBalancers name (their tagging may have failed).
        if inv.octavia_has_tags:
            lbs = {lb["id"]: lb for lb in self._raw("load_balancer", "/lbaas/loadbalancers", {"tags": tag})}
        else:
            lbs = {lb["id"]: lb for lb in self._raw("load_balancer", "/lbaas/loadbalancers")
                   if tag in description_tags(lb.get("description"))}
        lbs.update(self._load_balancers_by_ids(set(inv.kuryr_lbs) - set(lbs)))
        inv.load_balancers = list(lbs.values())
        if inv.load_balancers:
            self.load_balancer_children(inv, set(lbs))
        vip_ports = {str(lb["vip_port_id"]) for lb in inv.load_balancers if lb.get("vip_port_id")}
        if vip_ports:
            for batch in chunks(sorted(vip_ports)):
                for fip in self._raw("network", "/floatingips", {"port_id": batch}):
                    inv.floating_ips_by_port[fip["port_id"]] = fip
        seen = {f["id"] for f in inv.floating_ips_by_port.values()}
        recorded = {str(v["fip_id"]) for lb_id, v in inv.kuryr_lbs.items()
                    if v.get("alloc_method") == "pool" and v.get("fip_id") and lb_id not in lbs}
        inv.orphan_kuryr_fips = list(self._by_ids("network", "/floatingips", recorded - seen).values())

        # Kuryr namespace networks: those KuryrNetworks name (tagged or not) that still exist.
        net_ids = sorted(inv.kuryr_networks)
        tagged_nets = {n["id"]: n for n in self._raw("network", "/networks", {"tags": tag})}
        untagged = self._by_ids("network", "/networks", set(net_ids) - set(tagged_nets))
        installer_networks = {cno_name(infra, "openshift")}
        inv.unnamed_tagged_networks = [
            n for n in tagged_nets.values()
            if n["id"] not in inv.kuryr_networks and n.get("name") not in installer_networks
            and not (n.get("name") or "").endswith("kuryr-service-network")
        ]
        for net_id in net_ids:
            net = tagged_nets.get(net_id) or untagged.get(net_id)
            if net is not None:
                inv.networks[net_id] = net

        # The CNO's service network (with the legacy unprefixed name only when tagged).
        for name, cno in ((cno_name(infra, "kuryr-service-network"), True), ("kuryr-service-network", False)):
            for net in self._raw("network", "/networks", {"name": name}):
                own = ownership(net, tag, cno=name if cno else None)
                if own.ours and inv.service_network is None:
                    inv.service_network = net
                else:
                    inv.other_service_networks.append(net)
        if inv.service_network is not None:
            sid = inv.service_network["id"]
            inv.service_subnets = self._raw("network", "/subnets", {"network_id": sid})

        # Every port on those networks, a batch of networks per listing.
        port_nets = list(inv.networks) + ([inv.service_network["id"]] if inv.service_network else [])
        for batch in chunks(port_nets):
            for port in self._raw("network", "/ports", {"network_id": batch}):
                inv.ports_by_network.setdefault(port["network_id"], []).append(port)
            # Deleting a network deletes its subnets: the journal keeps them with it.
            for subnet in self._raw("network", "/subnets", {"network_id": batch}):
                inv.subnets_by_network.setdefault(subnet["network_id"], []).append(subnet)

        # Trunks: tagged ones, plus untagged trunks that carry subports on Kuryr networks.
        tagged_subports = self._raw("network", "/ports", {"tags": tag, "device_owner": "trunk:subport"})
        inv.tagged_subport_ids = {p["id"] for p in tagged_subports}
        trunks = {t["id"]: t for t in self._raw("network", "/trunks", {"tags": tag})}
        wanted = {p["device_id"] for ports in inv.ports_by_network.values() for p in ports
                  if p.get("device_owner") == "trunk:subport" and p.get("device_id")}
        wanted |= {p["device_id"] for p in tagged_subports if p.get("device_id")}
        trunks.update(self._by_ids("network", "/trunks", wanted - set(trunks)))
        inv.trunks = list(trunks.values())

        # The Kuryr router(s) and their interfaces.
        for router_id in inv.router_ids:
            router = self._one("network", f"/routers/{router_id}", "router")
            if router is not None:
                inv.routers[router_id] = router
                inv.router_ports[router_id] = self._raw("network", "/ports", {"device_id": router_id})

        inv.security_groups = self._raw("network", "/security-groups")
        pools = {p["id"]: p for p in self._raw("network", "/subnetpools", {"tags": tag})}
        for name in (cno_name(infra, "kuryr-pod-subnetpool"),):
            for pool in self._raw("network", "/subnetpools", {"name": name}):
                pools.setdefault(pool["id"], pool)
        inv.subnet_pools = list(pools.values())

    def load_balancer_children(self, inv: Inventory, lb_ids: set[str]) -> None:
        """Listeners and pools of the LBs to delete: a cascade delete takes them, and the journal
        keeps them. One listing each (by tag where Octavia has tags), not one per LB."""
        params = {"tags": inv.tag} if inv.octavia_has_tags else None
        for kind in ("listeners", "pools"):
            for child in self._raw("load_balancer", f"/lbaas/{kind}", params):
                for owner in child.get("loadbalancers") or []:
                    if owner.get("id") in lb_ids:
                        inv.lb_children.setdefault(owner["id"], {}).setdefault(kind, []).append(child)

    def octavia_version(self) -> tuple[int, int]:
        """The highest Octavia API version the endpoint supports (tags need 2.5)."""
        conn = self.ctx.conn

        def fetch() -> tuple[int, int]:
            # The proxy's endpoint honours load_balancer_endpoint_override; the session's catalog
            # lookup would not (with auth_type none it would answer Neutron's URL).
            endpoint = conn.load_balancer.get_endpoint()
            root = endpoint.rstrip("/")
            for suffix in ("/v2.0", "/v2"):
                if root.endswith(suffix):
                    root = root[: -len(suffix)]
            resp = conn.session.get(root + "/", endpoint_filter=None, raise_exc=True)
            best = (2, 0)
            for version in (resp.json().get("versions") or []):
                vid = str(version.get("id", "")).lstrip("v")
                try:
                    major, minor = (int(x) for x in vid.split(".")[:2])
                except ValueError:
                    continue
                best = max(best, (major, minor))
            return best

        return self._read(fetch)
