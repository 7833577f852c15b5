"""A builder of hostile clouds: what other clusters, users and broken CRs put next to (and into) a
Kuryr cluster's resources, made through the public APIs of a running simulator.

`World` describes one such cloud as plain data (its repr is the code that rebuilds it); `build(sim,
world)` generates this cluster with the scenario generator, then adds everything hostile the way an
admin or another cluster's components would: raw Neutron, Octavia and Nova requests with a Keystone
token, and the Kubernetes API through the kubernetes client. Nothing here reaches into the
simulator's internals, so it keeps working while the simulator's modules change.

What a hostile object is, and which of them are this cluster's Kuryr objects, is recorded in the
returned `Hostile` manifest: the property tests judge the cleanup with it.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import openstack
from kubernetes import client, config

NP_DESCRIPTION = "Kuryr-Kubernetes Network Policy {namespace}/{name} SG"
INSTALLER_DESCRIPTION = "Created By OpenShift Installer"
KURYR_API = ("openstack.org", "v1")
KN_FINALIZER = "kuryrnetwork.finalizers.kuryr.openstack.org"
KLB_FINALIZER = "kuryr.openstack.org/kuryrloadbalancer-finalizers"
KNP_FINALIZER = "kuryr.openstack.org/networkpolicy-finalizer"

# Features a world can have, each a field of `World` below; the property tests turn them on one by one.
FEATURES = (
    "legacy_lookalikes",  # kuryr-service-network & co. without the prefix, another cluster's or nobody's
    "np_lookalike",  # an untagged group with exactly our network-policy group's name and description
    "their_port_on_our_trunk",  # another cluster's pod port is a subport of one of our nodes' trunks
    "our_port_on_their_trunk",  # one of our Kuryr ports is a subport of another cluster's trunk
    "foreign_router_on_our_subnet",  # a user's or another cluster's router has an interface on our subnet
    "vm_port_on_our_network",  # a user's VM (a Nova server) has a port on one of our namespace networks
    "vm_port_in_our_group",  # ... and that port (or one on the user's network) is in our policy group
    "user_fip_on_vip",  # a user's floating IP put on one of our load balancers' VIP
    "kn_names_node_network",  # a KuryrNetwork whose status.netId is the installer's node network
    "kn_names_their_network",  # a KuryrNetwork naming another cluster's namespace network (and router)
    "kn_names_user_router",  # a second KuryrNetwork naming our network with a user's router as routerId
    "klb_names_their_lb",  # a KuryrLoadBalancer naming another cluster's load balancer
    "klb_names_user_fip",  # a KuryrLoadBalancer of a gone LB whose pool floating IP is a user's
    "knp_names_user_group",  # a KuryrNetworkPolicy naming a user's security group
)
# Features that need another cluster's resources to point at.
NEEDS_FOREIGN_CLUSTER = {"their_port_on_our_trunk", "our_port_on_their_trunk", "kn_names_their_network",
                         "klb_names_their_lb"}


@dataclass(frozen=True)
class World:
    """One hostile cloud. Scenario fields go to the generator; the rest are hostile features."""

    # -- this cluster, as the generator makes it (docs/scenarios.md)
    infra_id: str = "ostest-abcde"
    namespaces: int = 1
    pods: int = 1
    services: int = 1
    policies: int = 1
    octavia: str = "2.27"
    legacy_names: bool = False
    untagged: int = 0
    fips: bool = False
    installer_router: bool = True
    second_cluster: bool = False  # the generator's look-alike cluster (other-xxxxx)
    seed: int = 1
    # -- other Kuryr clusters in the same project, built through the APIs (their infraIDs)
    extra_clusters: tuple[str, ...] = ()
    # -- hostile features (see FEATURES)
    legacy_lookalikes: str | None = None  # "other": tagged for another cluster; "untagged"
    np_lookalike: bool = False
    their_port_on_our_trunk: bool = False
    our_port_on_their_trunk: bool = False
    foreign_router_on_our_subnet: str | None = None  # "user" or "cluster"
    vm_port_on_our_network: bool = False
    vm_port_in_our_group: bool = False
    user_fip_on_vip: bool = False
    kn_names_node_network: bool = False
    kn_names_their_network: bool = False
    kn_names_user_router: bool = False
    klb_names_their_lb: bool = False
    klb_names_user_fip: bool = False
    knp_names_user_group: str | None = None  # "in-use" (the VM's group) or "unused"

    def spec(self) -> str:
        """The generator's spec for this cluster (user resources on: the VM, its group and network)."""
        items = [f"namespaces={self.namespaces}", f"pods={self.pods}", f"services={self.services}",
                 f"policies={self.policies}", "masters=1", "workers=1", f"octavia={self.octavia}",
                 f"untagged={self.untagged}", f"infra-id={self.infra_id}", f"seed={self.seed}",
                 "user-resources=yes", f"installer-router={'yes' if self.installer_router else 'no'}"]
        items += [flag for flag, on in (("legacy-names", self.legacy_names), ("fips", self.fips),
                                        ("second-cluster", self.second_cluster)) if on]
        return ",".join(items)

    def features(self) -> set[str]:
        return {name for name in FEATURES if getattr(self, name)}

    def __post_init__(self) -> None:
        assert self.infra_id not in self.extra_clusters, "another cluster with our infraID"
        features = {name: getattr(self, name) for name in FEATURES}
        assert not needs_foreign_cluster(features) or self.extra_clusters, "these features need extra_clusters"
        assert not (self.vm_port_in_our_group or self.np_lookalike) or self.policies, "needs a policy group"


def needs_foreign_cluster(features: dict[str, Any]) -> bool:
    """Whether these features (name -> value) point at another cluster's resources."""
    return any(features.get(name) for name in NEEDS_FOREIGN_CLUSTER) \
        or features.get("foreign_router_on_our_subnet") == "cluster" or features.get("legacy_lookalikes") == "other"


@dataclass
class Hostile:
    """What `build` made: which hostile objects are this cluster's Kuryr objects, and notes for reports."""

    ours: dict[str, set[str]] = field(default_factory=dict)  # collection -> ids of ours among the new ones
    notes: list[str] = field(default_factory=list)  # one line per hostile object, for failure messages

    def add_ours(self, collection: str, rid: str) -> None:
        self.ours.setdefault(collection, set()).add(rid)


class ApiError(Exception):
    pass


class Cloud:
    """Raw OpenStack requests as the project's admin would send them (a Keystone token, the catalog)."""

    def __init__(self, auth_url: str) -> None:
        self.conn = openstack.connect(
            auth_url=auth_url, username="admin", password="sim-password", project_name="openshift",
            user_domain_name="Default", project_domain_name="Default", region_name="RegionOne",
        )
        self.session = self.conn.session
        self.endpoints = {kind: str(self.session.get_endpoint(service_type=kind, interface="public"))
                          for kind in ("network", "load-balancer", "compute")}

    def call(self, service: str, method: str, path: str, body: Any = None) -> Any:
        url = self.endpoints[service].rstrip("/") + path
        response = self.session.request(url, method, json=body, raise_exc=False)
        if response.status_code >= 400:
            raise ApiError(f"{method} {path} -> {response.status_code}: {response.text[:300]}")
        return response.json() if response.content else None

    def neutron(self, collection: str, singular: str, **attrs: Any) -> dict[str, Any]:
        return dict(self.call("network", "POST", f"/v2.0/{collection}", {singular: attrs})[singular])

    def network(self, name: str, tags: list[str], description: str = "") -> dict[str, Any]:
        return self.neutron("networks", "network", name=name, tags=tags, description=description)

    def subnet(self, network: dict[str, Any], name: str, tags: list[str], **attrs: Any) -> dict[str, Any]:
        return self.neutron("subnets", "subnet", name=name, network_id=network["id"], ip_version=4, tags=tags,
                            **attrs)

    def port(self, network_id: str, name: str, tags: list[str], **attrs: Any) -> dict[str, Any]:
        return self.neutron("ports", "port", name=name, network_id=network_id, tags=tags, **attrs)

    def group(self, name: str, description: str, tags: list[str]) -> dict[str, Any]:
        return self.neutron("security-groups", "security_group", name=name,
                            description=description, tags=tags)

    def add_interface(self, router_id: str, **what: str) -> None:
        self.call("network", "PUT", f"/v2.0/routers/{router_id}/add_router_interface", what)

    def add_subport(self, trunk_id: str, port_id: str, vlan: int) -> None:
        self.call("network", "PUT", f"/v2.0/trunks/{trunk_id}/add_subports",
                  {"sub_ports": [{"port_id": port_id, "segmentation_type": "vlan", "segmentation_id": vlan}]})

    def floating_ip(self, network_id: str, **attrs: Any) -> dict[str, Any]:
        return self.neutron("floatingips", "floatingip", floating_network_id=network_id, **attrs)

    def server_id(self, name: str) -> str:
        servers = self.call("compute", "GET", f"/servers?name={name}")["servers"]
        assert servers, f"no Nova server {name}"
        return str(servers[0]["id"])

    def loadbalancer(self, name: str, subnet_id: str, tag: str, tags_supported: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "vip_subnet_id": subnet_id,
                                "description": "" if tags_supported else tag}
        if tags_supported:
            body["tags"] = [tag]
        return dict(self.call("load-balancer", "POST", "/v2/lbaas/loadbalancers", {"loadbalancer": body})
                    ["loadbalancer"])


class Cluster:
    """The Kubernetes API as the cluster's admin uses it."""

    def __init__(self, kubeconfig: str) -> None:
        api = config.new_client_from_config(kubeconfig)
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    def namespace(self, name: str) -> None:
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))

    def kuryr_cr(self, plural: str, kind: str, namespace: str, name: str, finalizer: str,
                 spec: dict[str, Any], status: dict[str, Any]) -> None:
        # Kuryr's CRDs have no status subresource (as the CNO installs them): status goes in with the object.
        body = {"apiVersion": "/".join(KURYR_API), "kind": kind,
                "metadata": {"name": name, "namespace": namespace, "finalizers": [finalizer]},
                "spec": spec, "status": status}
        self.custom.create_namespaced_custom_object(*KURYR_API, namespace, plural, body)


@dataclass
class Foreign:
    """Another Kuryr cluster's resources, as built by `_build_foreign_cluster`."""

    infra_id: str
    router: dict[str, Any]
    trunk: dict[str, Any]
    network: dict[str, Any]
    subnet: dict[str, Any]
    port: dict[str, Any]
    lb: dict[str, Any]


def _tag(infra_id: str) -> str:
    return f"openshiftClusterID={infra_id}"


def _by_name(records: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [r for r in records if r.get("name") == name]
    assert len(found) == 1, f"{len(found)} records named {name}"
    return found[0]


class _Facts:
    """What this cluster's cloud holds, read from the simulator's snapshot (a documented format)."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        self.os = state["openstack"]
        self.infra = state["infra_id"]
        self.tag = _tag(self.infra)
        objs = state["kubernetes"]["objects"]
        self.kns = sorted((o for o in objs if o["kind"] == "KuryrNetwork"), key=lambda o: o["metadata"]["name"])
        self.klbs = [o for o in objs if o["kind"] == "KuryrLoadBalancer"]
        self.knps = [o for o in objs if o["kind"] == "KuryrNetworkPolicy"]

    def user_kn(self) -> dict[str, Any]:
        """The KuryrNetwork of the first user namespace (ns-1)."""
        return next(kn for kn in self.kns if kn["metadata"]["name"] == "ns-1")

    def router_id(self) -> str:
        return str(self.user_kn()["status"]["routerId"])

    def our_trunks(self) -> list[dict[str, Any]]:
        return [t for t in self.os["trunks"] if self.tag in t.get("tags") or []]

    def our_group(self) -> dict[str, Any]:
        """A network-policy group of ns-1 (what its KuryrNetworkPolicy names)."""
        knp = next(k for k in self.knps if k["metadata"]["namespace"] == "ns-1")
        return next(g for g in self.os["security_groups"] if g["id"] == knp["status"]["securityGroupId"])

    def pods_group(self) -> dict[str, Any]:
        names = (f"{self.infra}-kuryr-pods-security-group", "kuryr-pods-security-group")
        return next(g for g in self.os["security_groups"] if g["name"] in names and self.tag in g["tags"])

    def external(self) -> dict[str, Any]:
        return _by_name(self.os["networks"], "external")

    def free_vip(self) -> dict[str, Any] | None:
        """One of our load balancers whose VIP has no floating IP yet."""
        taken = {f.get("port_id") for f in self.os["floatingips"]}
        ours = {k["status"]["loadbalancer"]["id"] for k in self.klbs if (k.get("status") or {}).get("loadbalancer")}
        return next((lb for lb in self.os["loadbalancers"] if lb["id"] in ours and lb["vip_port_id"] not in taken
                     and lb["provisioning_status"] == "ACTIVE"), None)


def _build_foreign_cluster(cloud: Cloud, facts: _Facts, infra_id: str, index: int) -> Foreign:
    """A small Kuryr cluster of `infra_id` in the same project: the installer's network, router and a
    node trunk, the CNO's resources, one namespace with a pod port on the trunk, a policy group whose
    name and description equal ours, and a load balancer; all tagged for that cluster."""
    tag = _tag(infra_id)
    tags = [tag]
    tags_in_octavia = tuple(int(p) for p in str(facts.state["settings"].get("octavia_version") or "2.27")
                            .split(".")) >= (2, 5)
    nodes = cloud.network(f"{infra_id}-openshift", tags)
    node_subnet = cloud.subnet(nodes, f"{infra_id}-nodes", tags, cidr=f"10.{150 + index}.0.0/16")
    router = cloud.neutron("routers", "router", name=f"{infra_id}-external-router", tags=tags,
                           description=INSTALLER_DESCRIPTION)
    cloud.add_interface(router["id"], subnet_id=node_subnet["id"])
    parent = cloud.port(nodes["id"], f"{infra_id}-master-0", tags, device_owner="compute:nova",
                        device_id=str(uuid.uuid4()))
    trunk = cloud.neutron("trunks", "trunk", name=f"{infra_id}-master-0-trunk", port_id=parent["id"], tags=tags)
    service = cloud.network(f"{infra_id}-kuryr-service-network", tags)
    service_subnet = cloud.subnet(service, f"{infra_id}-kuryr-service-subnet", tags,
                                  cidr=f"172.{40 + index}.0.0/16")
    cloud.add_interface(router["id"], subnet_id=service_subnet["id"])
    pods_group = cloud.group(f"{infra_id}-kuryr-pods-security-group", "", tags)
    pool = cloud.neutron("subnetpools", "subnetpool", name=f"{infra_id}-kuryr-pod-subnetpool", tags=tags,
                         prefixes=[f"10.{200 + index}.0.0/16"], default_prefixlen=23)
    namespace = cloud.network(f"{uuid.uuid4()}/ns-1", tags, description=tag)
    subnet = cloud.subnet(namespace, namespace["name"], tags, subnetpool_id=pool["id"], prefixlen=23,
                          description=tag)
    cloud.add_interface(router["id"], subnet_id=subnet["id"])
    policy = cloud.group("sg/ns-1-allow-from-same-namespace",
                         NP_DESCRIPTION.format(namespace="ns-1", name="allow-from-same-namespace"), tags)
    port = cloud.port(namespace["id"], "ns-1/web-0", tags, security_groups=[policy["id"], pods_group["id"]],
                      device_owner="compute:kuryr")
    cloud.add_subport(trunk["id"], port["id"], 1)
    lb = cloud.loadbalancer("ns-1/web", service_subnet["id"], tag, tags_in_octavia)
    return Foreign(infra_id, router, trunk, namespace, subnet, port, lb)


def _foreign_in_state(facts: _Facts) -> Iterator[str]:
    """The infraIDs of other clusters already in the project (the generator's second cluster)."""
    for net in facts.os["networks"]:
        for tag in net.get("tags") or []:
            if tag.startswith("openshiftClusterID=") and tag != facts.tag and net["name"].endswith("-openshift"):
                yield tag.split("=", 1)[1]


def build(state_of: Any, auth_url: str, kubeconfig: str, world: World) -> Hostile:
    """Add `world`'s hostile objects to a running simulator that already holds this cluster.

    `state_of()` returns the simulator's current snapshot (GET /_sim/state).
    """
    cloud = Cloud(auth_url)
    cluster = Cluster(kubeconfig)
    facts = _Facts(state_of())
    hostile = Hostile()
    note = hostile.notes.append
    foreigners = [_build_foreign_cluster(cloud, facts, infra, i) for i, infra in enumerate(world.extra_clusters)]
    for other in foreigners:
        note(f"another Kuryr cluster {other.infra_id}: router {other.router['id']}, trunk {other.trunk['id']}, "
             f"network {other.network['id']}, LB {other.lb['id']}")
    their = foreigners[0] if foreigners else None
    kn = facts.user_kn()
    our_net, our_subnet = kn["status"]["netId"], kn["status"]["subnetId"]
    external = facts.external()

    if world.legacy_lookalikes:
        tags = [_tag(their.infra_id)] if world.legacy_lookalikes == "other" and their else []
        net = cloud.network("kuryr-service-network", tags)
        cloud.subnet(net, "kuryr-service-subnet", tags, cidr="172.50.0.0/16")
        group = cloud.group("kuryr-pods-security-group", "", tags)
        pool = cloud.neutron("subnetpools", "subnetpool", name="kuryr-pod-subnetpool", tags=tags,
                             prefixes=["10.210.0.0/16"], default_prefixlen=23)
        note(f"legacy-named look-alikes tagged {tags}: network {net['id']}, group {group['id']}, pool {pool['id']}")

    if world.np_lookalike:
        ours = facts.our_group()
        group = cloud.group(ours["name"], ours["description"], [])
        note(f"untagged group {group['id']} named {ours['name']!r} described {ours['description']!r}")

    if world.their_port_on_our_trunk:
        assert their is not None
        port = cloud.port(their.network["id"], "ns-1/web-crossed", [_tag(their.infra_id)],
                          device_owner="compute:kuryr")
        trunk = facts.our_trunks()[0]
        cloud.add_subport(trunk["id"], port["id"], 4000)
        note(f"{their.infra_id}'s port {port['id']} is a subport of our trunk {trunk['id']}")

    if world.our_port_on_their_trunk:
        assert their is not None
        port = cloud.port(our_net, "kuryr-pool-port", [facts.tag], device_owner="compute:kuryr",
                          security_groups=[facts.pods_group()["id"]])
        cloud.add_subport(their.trunk["id"], port["id"], 4001)
        hostile.add_ours("ports", port["id"])
        note(f"our Kuryr port {port['id']} (network {our_net}) is a subport of {their.infra_id}'s trunk "
             f"{their.trunk['id']}")

    if world.foreign_router_on_our_subnet:
        if world.foreign_router_on_our_subnet == "cluster":
            assert their is not None
            router_id = their.router["id"]
        else:
            router_id = _by_name(facts.os["routers"], "user-router")["id"]
        port = cloud.port(our_net, "", [], fixed_ips=[{"subnet_id": our_subnet}])
        cloud.add_interface(router_id, port_id=port["id"])
        note(f"{world.foreign_router_on_our_subnet} router {router_id} has interface port {port['id']} on our "
             f"subnet {our_subnet}")

    if world.vm_port_on_our_network or world.vm_port_in_our_group:
        server = cloud.server_id("user-vm")
        network = our_net if world.vm_port_on_our_network else _by_name(facts.os["networks"], "user-net")["id"]
        groups = [facts.our_group()["id"]] if world.vm_port_in_our_group else \
            [_by_name(facts.os["security_groups"], "user-sg")["id"]]
        port = cloud.port(network, "user-vm-port-2", [], device_owner="compute:nova", device_id=server,
                          security_groups=groups)
        note(f"user VM {server}'s port {port['id']} on network {network} in groups {groups}")

    if world.user_fip_on_vip:
        lb = facts.free_vip()
        if lb is not None:
            fip = cloud.floating_ip(external["id"], port_id=lb["vip_port_id"], description="reserved for www")
            note(f"user floating IP {fip['id']} on our LB {lb['id']}'s VIP port {lb['vip_port_id']}")

    def hostile_namespace(name: str) -> str:
        cluster.namespace(name)
        return name

    if world.kn_names_node_network:
        nodes = _by_name(facts.os["networks"], f"{facts.infra}-openshift")
        subnet = next(s for s in facts.os["subnets"] if s["network_id"] == nodes["id"])
        ns = hostile_namespace("broken-node-net")
        cluster.kuryr_cr("kuryrnetworks", "KuryrNetwork", ns, ns, KN_FINALIZER, {"nsName": ns},
                         {"netId": nodes["id"], "subnetId": subnet["id"], "subnetCIDR": subnet["cidr"],
                          "routerId": facts.router_id(), "populated": True})
        note(f"KuryrNetwork {ns}/{ns} names the installer's node network {nodes['id']}")

    if world.kn_names_their_network:
        assert their is not None
        ns = hostile_namespace("broken-their-net")
        cluster.kuryr_cr("kuryrnetworks", "KuryrNetwork", ns, ns, KN_FINALIZER, {"nsName": ns},
                         {"netId": their.network["id"], "subnetId": their.subnet["id"],
                          "subnetCIDR": their.subnet["cidr"], "routerId": their.router["id"], "populated": True})
        note(f"KuryrNetwork {ns}/{ns} names {their.infra_id}'s network {their.network['id']} and router "
             f"{their.router['id']}")

    if world.kn_names_user_router:
        router = _by_name(facts.os["routers"], "user-router")
        ns = hostile_namespace("broken-user-router")
        cluster.kuryr_cr("kuryrnetworks", "KuryrNetwork", ns, ns, KN_FINALIZER, {"nsName": ns},
                         {**kn["status"], "routerId": router["id"]})
        note(f"KuryrNetwork {ns}/{ns} names our network {our_net} and the user's router {router['id']}")

    if world.klb_names_their_lb:
        assert their is not None
        ns = hostile_namespace("broken-their-lb")
        lb = their.lb
        cluster.kuryr_cr("kuryrloadbalancers", "KuryrLoadBalancer", ns, "web", KLB_FINALIZER, {"type": "ClusterIP"},
                         {"loadbalancer": {"id": lb["id"], "ip": lb["vip_address"], "name": lb["name"],
                                           "port_id": lb["vip_port_id"], "provider": lb.get("provider"),
                                           "subnet_id": lb["vip_subnet_id"], "security_groups": []}})
        note(f"KuryrLoadBalancer {ns}/web names {their.infra_id}'s LB {lb['id']}")

    if world.klb_names_user_fip:
        fip = cloud.floating_ip(external["id"], description="")
        ns = hostile_namespace("broken-user-fip")
        gone_lb = str(uuid.uuid4())
        cluster.kuryr_cr("kuryrloadbalancers", "KuryrLoadBalancer", ns, "web", KLB_FINALIZER,
                         {"type": "LoadBalancer"},
                         {"loadbalancer": {"id": gone_lb, "name": f"{ns}/web"},
                          "service_pub_ip_info": {"ip_id": fip["id"], "ip_addr": fip["floating_ip_address"],
                                                  "alloc_method": "pool"}})
        note(f"KuryrLoadBalancer {ns}/web (LB {gone_lb}, gone) names the user's floating IP {fip['id']} as pool")

    if world.knp_names_user_group:
        if world.knp_names_user_group == "in-use":
            group = _by_name(facts.os["security_groups"], "user-sg")
        else:
            group = cloud.group("user-db-sg", "db servers", [])
        ns = hostile_namespace("broken-user-group")
        cluster.kuryr_cr("kuryrnetworkpolicies", "KuryrNetworkPolicy", ns, "allow-all", KNP_FINALIZER,
                         {"podSelector": {}, "policyTypes": ["Ingress"]},
                         {"securityGroupId": group["id"], "securityGroupRules": []})
        note(f"KuryrNetworkPolicy {ns}/allow-all names the user's group {group['id']} ({group['name']})")

    for infra in sorted(set(_foreign_in_state(facts))):
        note(f"the generator's second cluster {infra}")
    return hostile


def world_as_code(world: World) -> str:
    """`World(...)` with only the fields that differ from the defaults: a reproduction to paste."""
    fields = [f"{f.name}={getattr(world, f.name)!r}" for f in dataclasses.fields(World)
              if getattr(world, f.name) != f.default]
    return f"World({', '.join(fields)})"


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
