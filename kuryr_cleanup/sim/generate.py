"""Kuryr-shaped scenarios of any size: an OpenStack project and an OpenShift cluster as Kuryr leaves them.

`ScenarioSpec.parse("namespaces=50,pods=4,second-cluster,fips")` describes a scenario;
`generate_scenario(store, spec)` fills a simulator store with it by calling the API modules' model
functions directly (no HTTP), so a 2,000-namespace cluster takes seconds.

What is generated, and why it looks the way it does (names, tags and descriptions are the ones the
real components write; docs/scenarios.md cites the sources):
- The installer's resources: node network `<infraID>-openshift` and subnet `<infraID>-nodes`, router
  `<infraID>-external-router` (description `Created By OpenShift Installer`) with a gateway on the
  external network, security groups `<infraID>-master`/`-worker`, the API and ingress VIP ports, and
  per node a Nova server, a trunk parent port and a trunk. All carry the cluster tag.
- The CNO's Kuryr resources: `<infraID>-kuryr-service-network`/`-subnet` (attached to the installer
  router through the port `<infraID>-kuryr-service-subnet-router-port`), `<infraID>-kuryr-pods-security-group`
  and `<infraID>-kuryr-pod-subnetpool`. Before mid-2019 the names had no `<infraID>-` prefix.
- Kuryr's per-namespace network `<ns-uid>/<ns-name>` and subnet (from the pool, on the router), pod
  ports (VLAN subports of their node's trunk), pool ports `kuryr-pool-port`, one Octavia LB per
  Service `<ns>/<svc>` and one security group per NetworkPolicy, plus the matching Kubernetes objects
  and Kuryr CRs with their finalizers.
- Options add a second cluster in the same project, untagged leftovers, floating IPs on LBs, LBs in
  ERROR, and resources the project's users made that nobody may touch.

Ids come from a seeded random generator, so a spec with the same seed gives the same cloud
(`python -m kuryr_cleanup.sim.generate --fixtures fixtures/` rewrites the recorded fixtures).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import hashlib
import ipaddress
import json
import random
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kuryr_cleanup.sim import neutron, nova, octavia, openshift
from kuryr_cleanup.sim.store import Store, iso_now

# -- names, tags and markers the real components use -------------------------------------------
CLUSTER_TAG_KEY = "openshiftClusterID"
INSTALLER_ROUTER_DESCRIPTION = "Created By OpenShift Installer"
KURYR_POOL_PORT_NAME = "kuryr-pool-port"  # kuryr_kubernetes.constants.KURYR_PORT_NAME
KURYR_PORT_DEVICE_OWNER = "compute:kuryr"  # kuryr.lib.constants.DEVICE_OWNER, before the trunk takes the port
KURYR_FIP_DESCRIPTION = "kuryr_lb"  # lb_public_ip.py: floating IPs Kuryr allocates for LoadBalancer Services
NP_SG_DESCRIPTION = "Kuryr-Kubernetes Network Policy {namespace}/{name} SG"
NP_RULE_DESCRIPTION = "Kuryr-Kubernetes NetPolicy SG rule"

POD_FINALIZER = "kuryr.openstack.org/pod-finalizer"
KURYRPORT_FINALIZER = "kuryr.openstack.org/kuryrport-finalizer"
SERVICE_FINALIZER = "kuryr.openstack.org/service-finalizer"
KURYRLB_FINALIZER = "kuryr.openstack.org/kuryrloadbalancer-finalizers"
NETWORKPOLICY_FINALIZER = "kuryr.openstack.org/networkpolicy-finalizer"
KURYRNETWORK_FINALIZER = "kuryrnetwork.finalizers.kuryr.openstack.org"

KURYR_API = "openstack.org/v1"
KURYR_NAMESPACE = "openshift-kuryr"
GATEWAY_GUARD_SERVICE = "service-subnet-gateway-ip"

MACHINE_NETWORK = "10.196.0.0/16"  # the installer's default machine network on OpenStack
CLUSTER_NETWORK = "10.128.0.0/14"
SERVICE_NETWORK = "172.30.0.0/16"
AMPHORA_SERVICE_NETWORK = "172.30.0.0/15"  # kuryrConfig.openStackServiceNetwork: twice the service network
EXTERNAL_CIDR = "172.24.4.0/24"
MAX_VLAN_ID = 4094  # one trunk carries at most this many subports
PODS_PER_NODE = 200  # used to size the workers when the spec leaves their number open
SCENARIO_EPOCH = "2024-03-01T09:00:00Z"  # what the recorded fixtures say every timestamp is

# Octavia gained tags in API 2.5 and provider selection in 2.6; the CNO picks the OVN provider when
# Octavia offers it and falls back to amphora (with a doubled service subnet) otherwise.
OCTAVIA_TAGS_VERSION = (2, 5)
OCTAVIA_PROVIDERS_VERSION = (2, 6)

# Kubernetes' generateName alphabet (no vowels, no look-alikes).
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

# NetworkPolicies a real project has, in the order the generator hands them out.
_POLICY_NAMES = ("allow-from-same-namespace", "deny-by-default", "allow-from-openshift-ingress")
_SERVICE_NAMES = ("web", "api", "db", "cache", "queue")


def cluster_tag(infra_id: str) -> str:
    """The tag Kuryr and the CNO put on everything they create: `openshiftClusterID=<infraID>`."""
    return f"{CLUSTER_TAG_KEY}={infra_id}"


# -- the spec ----------------------------------------------------------------------------------
def _count(key: str, value: str | None) -> int:
    if value is None:
        raise ValueError(f"{key} needs a value, e.g. {key}=3")
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{key}={value}: not a whole number") from None
    if number < 0:
        raise ValueError(f"{key}={value}: must not be negative")
    return number


def _flag(key: str, value: str | None) -> bool:
    if value is None:
        return True
    lowered = value.lower()
    if lowered in ("yes", "true", "on", "1"):
        return True
    if lowered in ("no", "false", "off", "0"):
        return False
    raise ValueError(f"{key}={value}: expected yes or no")


def _octavia_version(key: str, value: str | None) -> str:
    if value is None or not re.fullmatch(r"v?2\.\d+", value):
        raise ValueError(f"{key}={value}: expected an Octavia API version such as 2.4 or 2.27")
    return value.lstrip("v")


def _infra_id(key: str, value: str | None) -> str:
    # The installer's infraID: the cluster name (at most 27 characters) and 5 random characters.
    if value is None or not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,26})-[a-z0-9]{5}", value):
        raise ValueError(f"{key}={value}: expected an infraID such as ostest-abc12 (<cluster name>-<5 chars>)")
    return value


def _provider(key: str, value: str | None) -> str:
    if value not in ("amphora", "ovn"):
        raise ValueError(f"{key}={value}: expected amphora or ovn")
    return value


# spec key -> (field name, parser, help). The help text is what docs/scenarios.md lists.
_KEYS: dict[str, tuple[str, Callable[[str, str | None], Any], str]] = {
    "namespaces": ("namespaces", _count, "user namespaces ns-1..ns-N (the openshift-* ones come on top)"),
    "pods": ("pods", _count, "pods per user namespace"),
    "services": ("services", _count, "Services (Octavia LBs) per user namespace"),
    "policies": ("policies", _count, "NetworkPolicies (security groups) per user namespace"),
    "masters": ("masters", _count, "control-plane nodes"),
    "workers": ("workers", _count, "worker nodes (default: 2, more when the pods need them)"),
    "pool-ports": ("pool_ports", _count, "Kuryr pool ports per node and namespace with pods there"),
    "second-cluster": ("second_cluster", _flag, "another Kuryr cluster's OpenStack resources in the project"),
    "untagged": ("untagged", _count, "Kuryr resources of each kind whose tagging failed"),
    "fips": ("fips", _flag, "LoadBalancer Services with Kuryr (pool) and user floating IPs"),
    "error-lbs": ("error_lbs", _count, "load balancers in provisioning_status ERROR"),
    "octavia": ("octavia", _octavia_version, "Octavia API version (below 2.5: the tag is in descriptions)"),
    "lb-provider": ("lb_provider", _provider, "Octavia provider (default: ovn from Octavia 2.6, else amphora)"),
    "legacy-names": ("legacy_names", _flag, "CNO names without the <infraID>- prefix (before mid-2019)"),
    "installer-router": ("installer_router", _flag, "the router carries the installer's description"),
    "geneve-rule": ("geneve_rule", _flag, "the node security groups already allow UDP 6081"),
    "user-resources": ("user_resources", _flag, "resources of the project's users that must not be touched"),
    "mtu": ("mtu", _count, "MTU of the node network"),
    "host-prefix": ("host_prefix", _count, "prefix length of namespace subnets (default: 23, smaller if needed)"),
    "seed": ("seed", _count, "random seed: same seed, same ids"),
    "infra-id": ("infra_id", _infra_id, "this cluster's infraID (default: derived from the seed)"),
}


@dataclass(frozen=True)
class ScenarioSpec:
    """What to generate. Defaults give a small realistic cluster."""

    namespaces: int = 5
    pods: int = 3
    services: int = 2
    policies: int = 1
    masters: int = 3
    workers: int | None = None
    pool_ports: int = 1
    second_cluster: bool = False
    untagged: int = 0
    fips: bool = False
    error_lbs: int = 0
    octavia: str | None = None
    lb_provider: str | None = None
    legacy_names: bool = False
    installer_router: bool = True
    geneve_rule: bool = False
    user_resources: bool = True
    mtu: int = 1450
    host_prefix: int | None = None
    seed: int = 7
    infra_id: str | None = None

    def __post_init__(self) -> None:
        if self.masters < 1:
            raise ValueError("masters must be at least 1")
        if self.mtu < 1280:
            raise ValueError(f"mtu={self.mtu}: below the IPv4 minimum a node network needs (1280)")
        if self.host_prefix is not None and not 16 <= self.host_prefix <= 29:
            raise ValueError(f"host-prefix={self.host_prefix}: expected 16..29 inside {CLUSTER_NETWORK}")
        if self.lb_provider == "ovn" and self.octavia and _version(self.octavia) < OCTAVIA_PROVIDERS_VERSION:
            raise ValueError(f"lb-provider=ovn needs Octavia >= 2.6 (octavia={self.octavia})")

    @classmethod
    def parse(cls, text: str) -> ScenarioSpec:
        """`key=value` items or bare flags, comma separated: `namespaces=5,fips,octavia=2.4`."""
        values: dict[str, Any] = {}
        for item in (text or "").split(","):
            item = item.strip()
            if not item:
                continue
            key, sep, value = item.partition("=")
            key = key.strip().lower().replace("_", "-")
            if key not in _KEYS:
                raise ValueError(f"unknown scenario key {key!r}; known keys: {', '.join(_KEYS)}")
            name, parse_value, _ = _KEYS[key]
            values[name] = parse_value(key, value.strip() if sep else None)
        return cls(**values)

    def text(self) -> str:
        """The spec back as text (only what differs from the defaults), for logs and fixture metadata."""
        defaults = ScenarioSpec()
        items = []
        for key, (name, _, _) in _KEYS.items():
            value = getattr(self, name)
            if value == getattr(defaults, name):
                continue
            items.append(key if value is True else f"{key}={'no' if value is False else value}")
        return ",".join(items)


def spec_keys() -> dict[str, str]:
    """Spec key -> what it means (for help texts and docs)."""
    return {key: help_text for key, (_, _, help_text) in _KEYS.items()}


def _version(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


# -- determinism ---------------------------------------------------------------------------------
@contextlib.contextmanager
def _seeded_uuid4(rng: random.Random) -> Iterator[None]:
    """Make `uuid.uuid4()` draw from `rng` while a scenario is generated.

    The model functions and builders mint ids with uuid4 as the real services do; drawing them from a
    seeded generator makes a scenario, and the fixtures recorded from it, reproducible. Generation
    runs before the simulator serves anything, so nothing else is minting ids meanwhile.
    """
    original = uuid.uuid4

    def seeded() -> uuid.UUID:
        return uuid.UUID(int=rng.getrandbits(128), version=4)

    uuid.uuid4 = seeded
    try:
        yield
    finally:
        uuid.uuid4 = original


class _Addresses:
    """Hands out consecutive addresses of a network from an offset: O(1), no scans of used IPs."""

    def __init__(self, cidr: str, first_offset: int) -> None:
        self.network = ipaddress.ip_network(cidr)
        self._next = int(self.network.network_address) + first_offset
        self._last = int(self.network.broadcast_address) - 1

    def take(self) -> str:
        if self._next > self._last:
            raise ValueError(f"no addresses left in {self.network}: generate fewer pods or a larger host-prefix")
        address = str(ipaddress.ip_address(self._next))
        self._next += 1
        return address


# -- one cluster's worth of resources ------------------------------------------------------------
@dataclass
class _Node:
    name: str
    role: str
    ip: str
    mac: str
    server: dict[str, Any] = field(default_factory=dict)
    parent_port: dict[str, Any] = field(default_factory=dict)
    sub_ports: list[dict[str, Any]] = field(default_factory=list)
    pods: int = 0


@dataclass
class _Namespace:
    name: str
    uid: str
    network: dict[str, Any]
    subnet: dict[str, Any]
    addresses: _Addresses
    labels: dict[str, str]
    pod_security_groups: list[str] = field(default_factory=list)
    # pod name -> (ip, node name, labels)
    pods: dict[str, tuple[str, str, dict[str, str]]] = field(default_factory=dict)


@dataclass(frozen=True)
class _PodPlan:
    name: str
    node: str
    labels: dict[str, str]
    host_network: bool = False
    containers: tuple[str, ...] = ("app",)


@dataclass(frozen=True)
class _ServicePlan:
    name: str
    ports: tuple[tuple[str, int, str, int], ...]  # (name, port, protocol, target port)
    selector: dict[str, str] | None
    cluster_ip: str
    lb_type: str = "ClusterIP"
    host_endpoints: tuple[str, ...] = ()  # endpoint IPs on the node network (hostNetwork backends)


class _Scenario:
    """State shared by the clusters of one scenario: the store, the random sources, the external network."""

    def __init__(self, store: Store, spec: ScenarioSpec) -> None:
        self.store = store
        self.spec = spec
        self.names = random.Random(spec.seed)  # names, suffixes, MACs: never shifted by an extra id
        self.octavia_version = _version(spec.octavia or str(store.settings.get("octavia_version") or "2.27"))
        self.octavia_tags = self.octavia_version >= OCTAVIA_TAGS_VERSION
        has_providers = self.octavia_version >= OCTAVIA_PROVIDERS_VERSION
        self.lb_provider = spec.lb_provider or ("ovn" if has_providers else "amphora")
        self.external_network: dict[str, Any] = {}
        self.external_subnet: dict[str, Any] = {}
        self.external_addresses = _Addresses(EXTERNAL_CIDR, 10)
        self.macs: set[str] = set()
        self.created_at = iso_now(store.clock.now())
        self._segmentation_ids = iter(range(1001, 1 << 24))

    def suffix(self, length: int = 5) -> str:
        return "".join(self.names.choices(_SUFFIX_ALPHABET, k=length))

    def mac(self) -> str:
        while True:
            value = self.names.getrandbits(24)
            mac = f"fa:16:3e:{value >> 16:02x}:{(value >> 8) & 0xFF:02x}:{value & 0xFF:02x}"
            if mac not in self.macs:
                self.macs.add(mac)
                return mac

    def network(self, **attrs: Any) -> dict[str, Any]:
        # The segmentation id is passed so that it, too, follows the seed.
        return neutron.create_network(
            self.store, **{"provider:segmentation_id": next(self._segmentation_ids), **attrs}
        )

    def port(self, **attrs: Any) -> dict[str, Any]:
        return neutron.create_port(self.store, mac_address=self.mac(), **attrs)

    def build_external(self) -> None:
        """The provider network floating IPs and router gateways come from (admin-owned, never tagged)."""
        self.external_network = self.network(
            name="external", **{"router:external": True, "provider:network_type": "flat"}, mtu=1500
        )
        self.external_network["provider:segmentation_id"] = None
        self.external_network["provider:physical_network"] = "datacentre"
        self.external_subnet = neutron.create_subnet(
            self.store, name="external-subnet", network_id=self.external_network["id"], cidr=EXTERNAL_CIDR,
            ip_version=4, gateway_ip="172.24.4.1", enable_dhcp=False,
            allocation_pools=[{"start": "172.24.4.10", "end": "172.24.4.250"}],
        )

    def floating_ip(self, **attrs: Any) -> dict[str, Any]:
        return neutron.create_floatingip(
            self.store, floating_network_id=self.external_network["id"],
            floating_ip_address=self.external_addresses.take(), **attrs,
        )

    def gateway_info(self) -> dict[str, Any]:
        return {
            "network_id": self.external_network["id"],
            "enable_snat": True,
            "external_fixed_ips": [
                {"subnet_id": self.external_subnet["id"], "ip_address": self.external_addresses.take()}
            ],
        }


class _Cluster:
    """One OpenShift cluster with Kuryr: its OpenStack resources and (if it is ours) its Kubernetes objects."""

    def __init__(self, scenario: _Scenario, spec: ScenarioSpec, infra_id: str, ours: bool) -> None:
        self.sc = scenario
        self.store = scenario.store
        self.spec = spec
        self.infra_id = infra_id
        self.tag = cluster_tag(infra_id)
        self.ours = ours
        self.prefix = "" if spec.legacy_names else f"{infra_id}-"
        self.project_id = self.store.project_id
        self.nodes: list[_Node] = []
        self.namespaces: dict[str, _Namespace] = {}
        self.service_ips = _Addresses(SERVICE_NETWORK, 11)  # .1 is `kubernetes`, .10 is `dns-default`
        self._subnet_index = 0
        self._vlan_ids: dict[str, int] = {}
        self.untagged: dict[str, set[str]] = {}  # kind -> names chosen to lose their tag
        self.error_lbs: set[str] = set()
        self.pool_fip_services: set[str] = set()
        self.user_fip_service: str | None = None
        self._plan_options()

    # -- sizing and option choices ---------------------------------------------------------------
    @property
    def workers(self) -> int:
        if self.spec.workers is not None:
            return self.spec.workers
        pods = self.spec.namespaces * self.spec.pods
        return max(2, -(-pods // PODS_PER_NODE))

    @property
    def host_prefix(self) -> int:
        if self.spec.host_prefix is not None:
            return self.spec.host_prefix
        # One subnet per namespace: shrink them until every namespace fits the cluster network (the
        # CNO sizes namespace subnets with hostPrefix, so a /14 holds only 512 of the default /23s).
        needed = self.spec.namespaces + len(_SYSTEM_NAMESPACES) + 1
        prefix = 23
        while (1 << (prefix - 14)) < needed and prefix < 28:
            prefix += 1
        return prefix

    def _plan_options(self) -> None:
        spec = self.spec
        user = [f"ns-{i}" for i in range(1, spec.namespaces + 1)]
        first_services = [f"{ns}/{_service_name(0)}" for ns in user] if spec.services else []
        if not self.ours:
            return
        count = spec.untagged
        self.untagged = {
            "network": set(user[:count]),
            "lb": set(first_services[:count]),
            "sg": {f"{ns}/{_policy_name(0)}" for ns in user[:count]} if spec.policies else set(),
            "port": set(user[:count]),
        }
        all_services = [f"{ns}/{_service_name(j)}" for ns in user for j in range(spec.services)]
        if spec.fips and spec.services:
            self.pool_fip_services = set(first_services[:3])
            if spec.services >= 2:
                self.user_fip_service = f"{user[0]}/{_service_name(1)}"
            elif len(first_services) > 3:
                self.user_fip_service = first_services[3]
        taken = self.pool_fip_services | {self.user_fip_service}
        candidates = [s for s in reversed(all_services) if s not in taken]
        self.error_lbs = set(candidates[: spec.error_lbs])
        if len(self.error_lbs) < spec.error_lbs:
            raise ValueError(f"error-lbs={spec.error_lbs}: only {len(candidates)} user Services to put in ERROR")

    def _tags(self, kind: str, key: str) -> list[str]:
        return [] if key in self.untagged.get(kind, ()) else [self.tag]

    def _tag(self, collection: str, record: dict[str, Any], kind: str = "", key: str = "") -> None:
        tags = self._tags(kind, key) if kind else [self.tag]
        if tags:
            neutron.set_tags(self.store, collection, record["id"], tags)

    def _put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store a Kubernetes object, if this cluster is the one whose API the simulator serves."""
        if self.ours:
            obj["metadata"].setdefault("creationTimestamp", self.sc.created_at)
            self.store.kube_put(obj)
        return obj

    # -- the whole cluster -------------------------------------------------------------------------
    def build(self) -> None:
        self.build_installer()
        self.build_cno()
        self.build_nodes()
        for name, labels, builder in _SYSTEM_NAMESPACES:
            ns = self.build_namespace(name, labels)
            builder(self, ns)
        for i in range(1, self.spec.namespaces + 1):
            ns = self.build_namespace(f"ns-{i}", {})
            self.fill_user_namespace(ns)
        self.build_trunks()
        if self.ours:
            self.build_cluster_objects()

    # -- installer -------------------------------------------------------------------------------
    def build_installer(self) -> None:
        store, sc = self.store, self.sc
        self.node_network = sc.network(name=f"{self.infra_id}-openshift", mtu=self.spec.mtu, description="")
        self._tag("networks", self.node_network)
        self.node_subnet = neutron.create_subnet(
            store, name=f"{self.infra_id}-nodes", network_id=self.node_network["id"], cidr=MACHINE_NETWORK,
            ip_version=4, dns_nameservers=["10.0.0.10"],
        )
        self._tag("subnets", self.node_subnet)
        self.node_addresses = _Addresses(MACHINE_NETWORK, 10)
        self.router = neutron.create_router(
            store, name=f"{self.infra_id}-external-router",
            description=INSTALLER_ROUTER_DESCRIPTION if self.spec.installer_router else "",
            external_gateway_info=sc.gateway_info(),
        )
        self._tag("routers", self.router)
        neutron.add_router_interface(store, self.router["id"], subnet_id=self.node_subnet["id"])
        self.master_sg = self._node_security_group("master")
        self.worker_sg = self._node_security_group("worker")
        # The API and ingress VIPs (keepalived) live on installer ports of the node network.
        for role, address in (("api", "10.196.0.5"), ("ingress", "10.196.0.7")):
            vip = sc.port(
                name=f"{self.infra_id}-{role}-port", network_id=self.node_network["id"],
                fixed_ips=[{"subnet_id": self.node_subnet["id"], "ip_address": address}],
                security_groups=[self.master_sg["id"] if role == "api" else self.worker_sg["id"]],
            )
            self._tag("ports", vip)

    def _node_security_group(self, role: str) -> dict[str, Any]:
        store = self.store
        group = neutron.create_security_group(store, name=f"{self.infra_id}-{role}", description="")
        self._tag("security_groups", group)
        rules: list[dict[str, Any]] = [
            {"protocol": "icmp"},
            {"protocol": "tcp", "port_range_min": 22, "port_range_max": 22},
            {"protocol": "udp", "port_range_min": 4789, "port_range_max": 4789, "description": "VXLAN"},
            {"protocol": "tcp", "port_range_min": 10250, "port_range_max": 10250},
            {"protocol": "tcp", "port_range_min": 30000, "port_range_max": 32767},
        ]
        if role == "master":
            rules += [
                {"protocol": "tcp", "port_range_min": 6443, "port_range_max": 6443, "remote_ip_prefix": "0.0.0.0/0"},
                {"protocol": "tcp", "port_range_min": 22623, "port_range_max": 22623},
                {"protocol": "tcp", "port_range_min": 2379, "port_range_max": 2379},
                {"protocol": "tcp", "port_range_min": 2380, "port_range_max": 2380},
            ]
        else:
            rules += [
                {"protocol": "tcp", "port_range_min": 80, "port_range_max": 80, "remote_ip_prefix": "0.0.0.0/0"},
                {"protocol": "tcp", "port_range_min": 443, "port_range_max": 443, "remote_ip_prefix": "0.0.0.0/0"},
            ]
        if self.spec.geneve_rule:
            rules.append({"protocol": "udp", "port_range_min": 6081, "port_range_max": 6081, "description": "Geneve"})
        for rule in rules:
            neutron.create_security_group_rule(
                store, security_group_id=group["id"], direction="ingress", ethertype="IPv4",
                **{"remote_ip_prefix": MACHINE_NETWORK, **rule},
            )
        return group

    # -- CNO ----------------------------------------------------------------------------------------
    def build_cno(self) -> None:
        store, sc = self.store, self.sc
        self.service_network = sc.network(name=f"{self.prefix}kuryr-service-network", mtu=self.spec.mtu)
        self._tag("networks", self.service_network)
        if sc.lb_provider == "amphora":
            # Amphora: the subnet is twice the service network; the gateway is the highest address
            # outside it, and Neutron allocates (amphora ports) only from that upper half.
            cidr, gateway = AMPHORA_SERVICE_NETWORK, "172.31.255.254"
            pools = [{"start": "172.31.0.1", "end": "172.31.255.253"}]
            self.gateway_guard_ip = None
        else:
            # OVN: the subnet is the service network itself; the CNO reserves its gateway address with
            # the Service openshift-kuryr/service-subnet-gateway-ip.
            cidr = SERVICE_NETWORK
            gateway = self.gateway_guard_ip = f"172.30.{sc.names.randrange(200, 255)}.{sc.names.randrange(1, 255)}"
            pools = [{"start": "172.30.0.2", "end": str(ipaddress.ip_address(gateway) - 1)},
                     {"start": str(ipaddress.ip_address(gateway) + 1), "end": "172.30.255.254"}]
        self.service_subnet = neutron.create_subnet(
            store, name=f"{self.prefix}kuryr-service-subnet", network_id=self.service_network["id"], cidr=cidr,
            ip_version=4, gateway_ip=gateway, allocation_pools=pools, enable_dhcp=False,
        )
        self._tag("subnets", self.service_subnet)
        router_port = sc.port(
            name=f"{self.prefix}kuryr-service-subnet-router-port", network_id=self.service_network["id"],
            fixed_ips=[{"subnet_id": self.service_subnet["id"], "ip_address": gateway}],
        )
        self._tag("ports", router_port)
        neutron.add_router_interface(store, self.router["id"], port_id=router_port["id"])
        self.pods_sg = neutron.create_security_group(store, name=f"{self.prefix}kuryr-pods-security-group")
        self._tag("security_groups", self.pods_sg)
        neutron.create_security_group_rule(
            store, security_group_id=self.pods_sg["id"], direction="ingress", ethertype="IPv4", protocol="tcp",
            remote_ip_prefix="0.0.0.0/0",
        )
        for group in (self.master_sg, self.worker_sg):
            for protocol in ("tcp", "udp"):
                neutron.create_security_group_rule(
                    store, security_group_id=group["id"], direction="ingress", ethertype="IPv4", protocol=protocol,
                    port_range_min=53, port_range_max=53, remote_ip_prefix=CLUSTER_NETWORK,
                )
        self.subnetpool = neutron.create_subnetpool(
            store, name=f"{self.prefix}kuryr-pod-subnetpool", prefixes=[CLUSTER_NETWORK],
            default_prefixlen=self.host_prefix, min_prefixlen=8, max_prefixlen=32,
        )
        self._tag("subnetpools", self.subnetpool)

    # -- nodes ----------------------------------------------------------------------------------------
    def build_nodes(self) -> None:
        sc = self.sc
        names = [(f"{self.infra_id}-master-{i}", "master") for i in range(self.spec.masters)]
        names += [(f"{self.infra_id}-worker-0-{sc.suffix()}", "worker") for _ in range(self.workers)]
        for name, role in names:
            node = _Node(name=name, role=role, ip=self.node_addresses.take(), mac=sc.mac())
            group = self.master_sg if role == "master" else self.worker_sg
            node.server = nova.create_server(
                self.store, name=name, status="ACTIVE",
                addresses={self.node_network["name"]: [
                    {"addr": node.ip, "version": 4, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": node.mac}
                ]},
                metadata={"Name": name, CLUSTER_TAG_KEY: self.infra_id},
                security_groups=[{"name": group["name"]}], host=f"compute-{len(self.nodes) % 3}",
                **{"OS-EXT-SRV-ATTR:instance_name": f"instance-{sc.names.getrandbits(24):08x}"},
            )
            port_name = f"{self.infra_id}-master-port-{name.rsplit('-', 1)[1]}" if role == "master" else name
            node.parent_port = neutron.create_port(
                self.store, name=port_name, network_id=self.node_network["id"], mac_address=node.mac,
                fixed_ips=[{"subnet_id": self.node_subnet["id"], "ip_address": node.ip}],
                security_groups=[group["id"]], device_owner="compute:nova", device_id=node.server["id"],
                status="ACTIVE", **{"binding:host_id": f"compute-{len(self.nodes) % 3}"},
            )
            self._tag("ports", node.parent_port)
            self.nodes.append(node)
        self.masters = [n for n in self.nodes if n.role == "master"]
        self.workers_list = [n for n in self.nodes if n.role == "worker"] or self.masters
        self.node_by_name = {n.name: n for n in self.nodes}
        self._next_worker = 0

    def next_worker(self) -> _Node:
        node = self.workers_list[self._next_worker % len(self.workers_list)]
        self._next_worker += 1
        return node

    def add_subport(self, node: _Node, port: dict[str, Any]) -> None:
        vlan = self._vlan_ids.get(node.name, 0) + 1
        if vlan > MAX_VLAN_ID:
            raise ValueError(
                f"node {node.name} would carry more than {MAX_VLAN_ID} subports: give more workers (workers=N)"
            )
        self._vlan_ids[node.name] = vlan
        node.sub_ports.append({"port_id": port["id"], "segmentation_type": "vlan", "segmentation_id": vlan})

    def build_trunks(self) -> None:
        """One trunk per node, created with all its subports at once (as after Kuryr filled it)."""
        for node in self.nodes:
            trunk = neutron.create_trunk(
                self.store, name=f"{node.name}-trunk", port_id=node.parent_port["id"], sub_ports=node.sub_ports,
            )
            self._tag("trunks", trunk)
            self.store.os["trunks"][trunk["id"]]["status"] = "ACTIVE"

    # -- namespaces -------------------------------------------------------------------------------------
    def build_namespace(self, name: str, labels: dict[str, str]) -> _Namespace:
        store, sc = self.store, self.sc
        uid = str(uuid.uuid4())
        network_name = f"{uid}/{name}"  # kuryr: c_utils.get_resource_name(ns_name, ns_uid)
        # Kuryr names the network and subnet `<ns uid>/<ns name>` and puts its tags in the description.
        description = "" if self.spec.legacy_names else self.tag
        # Tags go in with the create here (Kuryr tags in a second call): the same end state, half the work.
        tags = self._tags("network", name)
        network = sc.network(name=network_name, description=description, mtu=self.spec.mtu, tags=tags)
        prefix = self.host_prefix
        pool_net = ipaddress.ip_network(CLUSTER_NETWORK)
        size = 1 << (32 - prefix)
        if (self._subnet_index + 1) * size > pool_net.num_addresses:
            raise ValueError(f"{CLUSTER_NETWORK} has no room for another /{prefix} namespace subnet: set host-prefix")
        cidr = str(ipaddress.ip_network((int(pool_net.network_address) + self._subnet_index * size, prefix)))
        self._subnet_index += 1
        subnet = neutron.create_subnet(
            store, name=network_name, network_id=network["id"], subnetpool_id=self.subnetpool["id"], cidr=cidr,
            ip_version=4, enable_dhcp=False, description=description, tags=tags,
        )
        neutron.add_router_interface(store, self.router["id"], subnet_id=subnet["id"])
        ns = _Namespace(name=name, uid=uid, network=network, subnet=subnet, addresses=_Addresses(cidr, 2),
                        labels={"kubernetes.io/metadata.name": name, **labels})
        ns.pod_security_groups = [self.pods_sg["id"]]
        self.namespaces[name] = ns
        namespace_obj = openshift.make_namespace(name, labels)
        namespace_obj["metadata"]["uid"] = uid
        self._put(namespace_obj)
        self._put({
            "apiVersion": KURYR_API,
            "kind": "KuryrNetwork",
            "metadata": {"name": name, "namespace": name, "finalizers": [KURYRNETWORK_FINALIZER],
                         "labels": {}, "annotations": {}},
            "spec": {"nsName": name, "projectId": self.project_id, "nsLabels": dict(ns.labels)},
            "status": {"netId": network["id"], "subnetId": subnet["id"], "subnetCIDR": subnet["cidr"],
                       "routerId": self.router["id"], "populated": True, "nsLabels": dict(ns.labels)},
        })
        return ns

    def fill_user_namespace(self, ns: _Namespace) -> None:
        spec = self.spec
        for k in range(spec.policies):
            self.build_policy(ns, _policy_name(k))
        apps = [_service_name(j) for j in range(spec.services)] or ["app"]
        pods = []
        for k in range(spec.pods):
            app = apps[k % len(apps)]
            pods.append(_PodPlan(f"{app}-{self.sc.suffix(10)}-{self.sc.suffix()}", self.next_worker().name,
                                 {"app": app}))
        self.build_pods(ns, pods)
        for j in range(spec.services):
            name = _service_name(j)
            key = f"{ns.name}/{name}"
            lb_type = "LoadBalancer" if key in self.pool_fip_services or key == self.user_fip_service else "ClusterIP"
            self.build_service(ns, _ServicePlan(name, (("http", 80, "TCP", 8080),), {"app": name},
                                                self.service_ips.take(), lb_type))

    # -- pods -------------------------------------------------------------------------------------------
    def build_pods(self, ns: _Namespace, pods: list[_PodPlan]) -> None:
        """Pods with their Kuryr ports (VLAN subports of their node's trunk), plus the pool ports."""
        sc = self.sc
        nodes_with_pods: list[str] = []
        first_port = True
        for plan in pods:
            node = self.node_by_name[plan.node]
            pod_uid = str(uuid.uuid4())
            if plan.host_network:
                self._put(_pod_object(ns.name, plan, pod_uid, node, node.ip, finalizers=[]))
                continue
            ip = ns.addresses.take()
            mac = sc.mac()
            port = neutron.create_port(
                self.store, name=f"{ns.name}/{plan.name}", network_id=ns.network["id"], mac_address=mac,
                fixed_ips=[{"subnet_id": ns.subnet["id"], "ip_address": ip}],
                security_groups=list(ns.pod_security_groups), device_owner=KURYR_PORT_DEVICE_OWNER,
                status="ACTIVE", tags=self._tags("port", ns.name if first_port else ""),
                **{"binding:host_id": plan.node},
            )
            first_port = False
            self.add_subport(node, port)
            ns.pods[plan.name] = (ip, plan.node, plan.labels)
            node.pods += 1
            if plan.node not in nodes_with_pods:
                nodes_with_pods.append(plan.node)
            self._put(_pod_object(ns.name, plan, pod_uid, node, ip, finalizers=[POD_FINALIZER]))
            vlan = node.sub_ports[-1]["segmentation_id"]
            self._put(_kuryr_port_object(ns, plan, pod_uid, port, vlan))
        # Kuryr keeps ready ports per node and security-group set, made in batches once a pod of the
        # namespace landed on the node: named kuryr-pool-port, subports already, no pod behind them.
        for node_name in nodes_with_pods:
            node = self.node_by_name[node_name]
            for _ in range(self.spec.pool_ports):
                port = neutron.create_port(
                    self.store, name=KURYR_POOL_PORT_NAME, network_id=ns.network["id"], mac_address=sc.mac(),
                    fixed_ips=[{"subnet_id": ns.subnet["id"], "ip_address": ns.addresses.take()}],
                    security_groups=list(ns.pod_security_groups), device_owner=KURYR_PORT_DEVICE_OWNER,
                    tags=[self.tag],
                )
                self.add_subport(node, port)

    # -- services ---------------------------------------------------------------------------------------
    def build_service(self, ns: _Namespace, plan: _ServicePlan, kuryr: bool = True) -> None:
        """A Service, its Octavia LB (listener, pool and members per port) and its KuryrLoadBalancer."""
        sc, store = self.sc, self.store
        key = f"{ns.name}/{plan.name}"
        svc_uid = str(uuid.uuid4())
        service_obj = _service_object(ns.name, plan, svc_uid, [SERVICE_FINALIZER] if kuryr else [])
        if not kuryr:
            self._put(service_obj)
            return
        tags = self._tags("lb", key)
        marker: dict[str, Any] = {"tags": tags} if sc.octavia_tags else {"description": ",".join(tags)}
        error = key in self.error_lbs
        lb = octavia.create_loadbalancer(
            store, name=key, vip_subnet_id=self.service_subnet["id"], vip_address=plan.cluster_ip,
            provider=sc.lb_provider, provisioning_status="ERROR" if error else "ACTIVE",
            operating_status="ERROR" if error else "ONLINE", **marker,
        )
        vip_port = store.os["ports"][lb["vip_port_id"]]
        lb_status = {
            "id": lb["id"], "ip": lb["vip_address"], "name": key, "port_id": lb["vip_port_id"],
            "project_id": self.project_id, "provider": sc.lb_provider, "security_groups": [],
            "subnet_id": self.service_subnet["id"],
        }
        listeners, pools, members = [], [], []
        endpoints = self._endpoints(ns, plan)
        if not error:
            for _, port, protocol, target in plan.ports:
                child_name = f"{key}:{protocol}:{port}"
                listener = octavia.create_listener(
                    store, name=child_name, loadbalancer_id=lb["id"], protocol=protocol, protocol_port=port,
                    **dict(marker),
                )
                pool = octavia.create_pool(
                    store, name=child_name, listener_id=listener["id"], protocol=protocol,
                    lb_algorithm="SOURCE_IP_PORT" if sc.lb_provider == "ovn" else "ROUND_ROBIN", **dict(marker),
                )
                listeners.append({"id": listener["id"], "loadbalancer_id": lb["id"], "name": child_name,
                                  "port": port, "project_id": self.project_id, "protocol": protocol})
                pools.append({"id": pool["id"], "listener_id": listener["id"], "loadbalancer_id": lb["id"],
                              "name": child_name, "project_id": self.project_id, "protocol": protocol})
                for target_name, address, subnet_id in endpoints:
                    member_name = f"{ns.name}/{target_name}:{target}"
                    member = octavia.create_member(
                        store, pool["id"], name=member_name, address=address, protocol_port=target,
                        subnet_id=subnet_id, **({"tags": tags} if sc.octavia_tags else {}),
                    )
                    members.append({"id": member["id"], "ip": address, "name": member_name, "pool_id": pool["id"],
                                    "port": target, "project_id": self.project_id, "subnet_id": subnet_id})
        status: dict[str, Any] = {"loadbalancer": lb_status}
        if listeners:
            status.update(listeners=listeners, pools=pools, members=members)
        if plan.lb_type == "LoadBalancer":
            if key == self.user_fip_service:
                # The admin made this floating IP and gave it as spec.loadBalancerIP: Kuryr only
                # associates it, so it has no Kuryr description and no tag.
                fip = sc.floating_ip(port_id=vip_port["id"], description="reserved for " + key)
                alloc_method = "user"
                service_obj["spec"]["loadBalancerIP"] = fip["floating_ip_address"]
            else:
                fip = sc.floating_ip(port_id=vip_port["id"], description=KURYR_FIP_DESCRIPTION)
                self._tag("floatingips", fip)
                alloc_method = "pool"
            status["service_pub_ip_info"] = {"ip_id": fip["id"], "ip_addr": fip["floating_ip_address"],
                                             "alloc_method": alloc_method}
            service_obj["status"] = {"loadBalancer": {"ingress": [{"ip": fip["floating_ip_address"]}]}}
        self._put(service_obj)
        klb_spec: dict[str, Any] = {
            "endpointSlices": [_endpoint_slice(ns.name, plan, endpoints)] if endpoints else [],
            "ip": plan.cluster_ip,
            "ports": [{"name": n, "port": p, "protocol": proto, "targetPort": str(t)} for n, p, proto, t in plan.ports],
            "project_id": self.project_id,
            "provider": sc.lb_provider,
            "security_groups_ids": list(ns.pod_security_groups),
            "subnet_id": self.service_subnet["id"],
            "type": plan.lb_type,
        }
        if "loadBalancerIP" in service_obj["spec"]:
            klb_spec["lb_ip"] = service_obj["spec"]["loadBalancerIP"]
        self._put({
            "apiVersion": KURYR_API,
            "kind": "KuryrLoadBalancer",
            "metadata": {
                "name": plan.name, "namespace": ns.name, "finalizers": [KURYRLB_FINALIZER],
                "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": plan.name, "uid": svc_uid}],
            },
            "spec": klb_spec,
            "status": status,
        })

    def _endpoints(self, ns: _Namespace, plan: _ServicePlan) -> list[tuple[str, str, str]]:
        """(target name, address, member subnet) of the Service's backends."""
        if plan.host_endpoints:
            return [(plan.name, ip, self.node_subnet["id"]) for ip in plan.host_endpoints]
        if not plan.selector:
            return []
        return [
            (pod, ip, ns.subnet["id"])
            for pod, (ip, _, labels) in ns.pods.items()
            if all(labels.get(k) == v for k, v in plan.selector.items())
        ]

    # -- network policies -------------------------------------------------------------------------------
    def build_policy(self, ns: _Namespace, name: str) -> None:
        """A NetworkPolicy's security group (pods of the namespace get it) and its KuryrNetworkPolicy."""
        store = self.store
        key = f"{ns.name}/{name}"
        sg_name = f"sg-{ns.name}-{name}" if self.spec.legacy_names else f"sg/{ns.name}-{name}"
        group = neutron.create_security_group(
            store, name=sg_name, description=NP_SG_DESCRIPTION.format(namespace=ns.name, name=name),
            tags=self._tags("sg", key),
        )
        rule_bodies: list[dict[str, Any]] = []
        if name == "allow-from-same-namespace":
            rule_bodies.append({"remote_ip_prefix": ns.subnet["cidr"]})
        elif name == "allow-from-openshift-ingress":
            ingress = self.namespaces.get("openshift-ingress")
            rule_bodies.append({"remote_ip_prefix": ingress.subnet["cidr"] if ingress else MACHINE_NETWORK})
        elif name != "deny-by-default":
            rule_bodies.append({"protocol": "tcp", "port_range_min": 8080, "port_range_max": 8080,
                                "remote_ip_prefix": "0.0.0.0/0"})
        # Kuryr always lets the service subnet and the nodes reach the pods.
        defaults = [{"remote_ip_prefix": self.service_subnet["cidr"]}, {"remote_ip_prefix": MACHINE_NETWORK}]
        sg_rules = []
        ingress_rules = []
        for body in rule_bodies + defaults:
            rule = neutron.create_security_group_rule(
                store, security_group_id=group["id"], direction="ingress", ethertype="IPv4",
                description=NP_RULE_DESCRIPTION, **body,
            )
            sg_rule = {k: rule[k] for k in ("description", "direction", "ethertype", "id", "port_range_max",
                                             "port_range_min", "protocol", "remote_ip_prefix", "security_group_id")
                       if rule.get(k) is not None}
            sg_rules.append(sg_rule)
            if body in rule_bodies:
                ingress_rules.append({"sgRule": {k: v for k, v in sg_rule.items() if k not in ("id",
                                                                                            "security_group_id")}})
        if ns.pod_security_groups == [self.pods_sg["id"]]:
            ns.pod_security_groups = []
        ns.pod_security_groups.append(group["id"])
        np_spec = _policy_spec(name)
        np_uid = str(uuid.uuid4())
        self._put({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns.name, "uid": np_uid, "finalizers": [NETWORKPOLICY_FINALIZER],
                         "generation": 1},
            "spec": np_spec,
        })
        self._put({
            "apiVersion": KURYR_API,
            "kind": "KuryrNetworkPolicy",
            "metadata": {
                "name": name, "namespace": ns.name, "finalizers": [NETWORKPOLICY_FINALIZER],
                "annotations": {"networkPolicyLink":
                                f"/apis/networking.k8s.io/v1/namespaces/{ns.name}/networkpolicies/{name}"},
            },
            "spec": {"egressSgRules": [], "ingressSgRules": ingress_rules,
                     "podSelector": np_spec["podSelector"], "policyTypes": np_spec["policyTypes"]},
            "status": {"securityGroupId": group["id"], "securityGroupRules": sg_rules,
                       "podSelector": np_spec["podSelector"]},
        })

    # -- cluster-scoped objects ---------------------------------------------------------------------------
    def build_cluster_objects(self) -> None:
        put = self._put
        cluster_network = [{"cidr": CLUSTER_NETWORK, "hostPrefix": self.host_prefix}]
        put(openshift.make_infrastructure(self.infra_id))
        put(openshift.make_network_config("Kuryr", cluster_network, [SERVICE_NETWORK], mtu=self.spec.mtu))
        put(openshift.make_network_operator("Kuryr", cluster_network, [SERVICE_NETWORK]))
        for role in ("master", "worker"):
            count = sum(1 for n in self.nodes if n.role == role)
            rendered = openshift.rendered_config_name(role, "Kuryr")
            pool = put(openshift.make_machine_config_pool(role, count, rendered))
            put(openshift.make_rendered_machine_config(role, "Kuryr", pool["metadata"]["uid"]))
        for node in self.nodes:
            put(openshift.make_node(node.name, node.server["id"], node.ip, node.role))
            daemon = openshift.make_machine_config_daemon_pod(node.name, self.sc.suffix())
            for status in daemon["status"].get("containerStatuses", []):
                if "containerID" in status:  # the builder hashes the wall clock into it: follow the seed instead
                    seed = f"{daemon['metadata']['name']}/{status['name']}/{self.spec.seed}"
                    status["containerID"] = f"cri-o://{hashlib.sha256(seed.encode()).hexdigest()}"
            put(daemon)
        for name in openshift.CLUSTER_OPERATORS:
            put(openshift.make_cluster_operator(name))
        put(openshift.make_multus_daemonset(len(self.nodes)))


# -- the system namespaces (what a 4.x cluster on Kuryr has) ----------------------------------------
def _fill_default(cluster: _Cluster, ns: _Namespace) -> None:
    # Kuryr gives `default/kubernetes` an LB too: its members are the masters' API on the node network.
    cluster.build_service(ns, _ServicePlan("kubernetes", (("https", 443, "TCP", 6443),), None, "172.30.0.1",
                                           host_endpoints=tuple(n.ip for n in cluster.masters)))


def _fill_kuryr(cluster: _Cluster, ns: _Namespace) -> None:
    # Kuryr's own pods run on the host network: no ports, no finalizers.
    master = cluster.masters[0]
    plans = [_PodPlan(f"kuryr-controller-{cluster.sc.suffix(10)}-{cluster.sc.suffix()}", master.name,
                      {"app": "kuryr-controller"}, host_network=True, containers=("controller",))]
    plans += [_PodPlan(f"kuryr-cni-{cluster.sc.suffix()}", n.name, {"app": "kuryr-cni"}, host_network=True,
                       containers=("kuryr-cni",)) for n in cluster.nodes]
    cluster.build_pods(ns, plans)
    if cluster.gateway_guard_ip:
        cluster.build_service(ns, _ServicePlan(GATEWAY_GUARD_SERVICE, (("", 80, "TCP", 80),), None,
                                               cluster.gateway_guard_ip), kuryr=False)


def _fill_dns(cluster: _Cluster, ns: _Namespace) -> None:
    plans = [_PodPlan(f"dns-default-{cluster.sc.suffix()}", n.name, {"dns.operator.openshift.io/daemonset-dns":
                                                                      "default"}, containers=("dns", "kube-rbac-proxy"))
             for n in cluster.nodes]
    cluster.build_pods(ns, plans)
    # Kuryr also makes a UDP listener on 53 where Octavia allows two listeners on one port (>= 2.13);
    # the simulated Octavia refuses that, so the scenario keeps the TCP ones.
    ports: tuple[tuple[str, int, str, int], ...] = (("dns-tcp", 53, "TCP", 5353), ("metrics", 9154, "TCP", 9154))
    cluster.build_service(ns, _ServicePlan("dns-default", ports, {"dns.operator.openshift.io/daemonset-dns":
                                                                  "default"}, "172.30.0.10"))


def _fill_ingress(cluster: _Cluster, ns: _Namespace) -> None:
    # On OpenStack the routers publish on the host network: endpoints are worker node addresses.
    workers = cluster.workers_list[:2]
    plans = [_PodPlan(f"router-default-{cluster.sc.suffix(10)}-{cluster.sc.suffix()}", n.name,
                      {"ingresscontroller.operator.openshift.io/deployment-ingresscontroller": "default"},
                      host_network=True, containers=("router",)) for n in workers]
    cluster.build_pods(ns, plans)
    cluster.build_service(ns, _ServicePlan(
        "router-internal-default",
        (("http", 80, "TCP", 80), ("https", 443, "TCP", 443), ("metrics", 1936, "TCP", 1936)),
        None, cluster.service_ips.take(), host_endpoints=tuple(n.ip for n in workers)))


def _fill_monitoring(cluster: _Cluster, ns: _Namespace) -> None:
    plans = [_PodPlan(f"prometheus-k8s-{i}", cluster.next_worker().name, {"app.kubernetes.io/name": "prometheus"},
                      containers=("prometheus",)) for i in range(2)]
    plans.append(_PodPlan("alertmanager-main-0", cluster.next_worker().name,
                          {"app.kubernetes.io/name": "alertmanager"}, containers=("alertmanager",)))
    cluster.build_pods(ns, plans)
    cluster.build_service(ns, _ServicePlan("prometheus-k8s", (("web", 9091, "TCP", 9091),),
                                           {"app.kubernetes.io/name": "prometheus"}, cluster.service_ips.take()))


def _fill_host_network_daemon(pod_prefix: str, container: str) -> Callable[[_Cluster, _Namespace], None]:
    def fill(cluster: _Cluster, ns: _Namespace) -> None:
        plans = [_PodPlan(f"{pod_prefix}-{cluster.sc.suffix()}", n.name, {"app": pod_prefix}, host_network=True,
                          containers=(container,)) for n in cluster.nodes]
        cluster.build_pods(ns, plans)

    return fill


def _fill_nothing(cluster: _Cluster, ns: _Namespace) -> None:
    """The machine-config-daemon pods come with the cluster objects (from the OpenShift builders)."""


_SYSTEM_NAMESPACES: tuple[tuple[str, dict[str, str], Callable[[_Cluster, _Namespace], None]], ...] = (
    ("default", {}, _fill_default),
    (KURYR_NAMESPACE, {"openshift.io/run-level": "0"}, _fill_kuryr),
    ("openshift-dns", {"openshift.io/cluster-monitoring": "true"}, _fill_dns),
    ("openshift-ingress", {"policy-group.network.openshift.io/ingress": "",
                           "network.openshift.io/policy-group": "ingress"}, _fill_ingress),
    ("openshift-monitoring", {"openshift.io/cluster-monitoring": "true"}, _fill_monitoring),
    ("openshift-multus", {"openshift.io/run-level": "0"}, _fill_host_network_daemon("multus", "kube-multus")),
    (openshift.MCO_NAMESPACE, {"openshift.io/run-level": "1"}, _fill_nothing),
)


def _service_name(j: int) -> str:
    return _SERVICE_NAMES[j] if j < len(_SERVICE_NAMES) else f"svc-{j}"


def _policy_name(k: int) -> str:
    return _POLICY_NAMES[k] if k < len(_POLICY_NAMES) else f"allow-port-8080-{k}"


def _policy_spec(name: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": {}, "policyTypes": ["Ingress"]}
    if name == "allow-from-same-namespace":
        spec["ingress"] = [{"from": [{"podSelector": {}}]}]
    elif name == "allow-from-openshift-ingress":
        spec["ingress"] = [{"from": [{"namespaceSelector": {"matchLabels": {
            "policy-group.network.openshift.io/ingress": ""}}}]}]
    elif name != "deny-by-default":
        spec["ingress"] = [{"ports": [{"port": 8080, "protocol": "TCP"}]}]
    return spec


# -- Kubernetes object shapes --------------------------------------------------------------------
def _pod_object(namespace: str, plan: _PodPlan, uid: str, node: _Node, ip: str,
                finalizers: list[str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": plan.name, "namespace": namespace, "uid": uid, "labels": dict(plan.labels)}
    if finalizers:
        meta["finalizers"] = list(finalizers)
    spec: dict[str, Any] = {
        "containers": [{"name": c, "image": f"registry.example.com/{c}:latest"} for c in plan.containers],
        "nodeName": node.name,
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "serviceAccountName": "default",
    }
    if plan.host_network:
        spec["hostNetwork"] = True
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": spec,
        "status": {
            "phase": "Running",
            "hostIP": node.ip,
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "qosClass": "BestEffort",
            "conditions": [{"type": t, "status": "True"} for t in ("Initialized", "Ready", "ContainersReady",
                                                                   "PodScheduled")],
            # Complete as the kubelet writes them: the typed kubernetes client refuses a status without
            # image, imageID or containerID.
            "containerStatuses": [
                {"name": c, "ready": True, "restartCount": 0, "started": True,
                 "image": f"registry.example.com/{c}:latest",
                 "imageID": f"registry.example.com/{c}@sha256:{hashlib.sha256(c.encode()).hexdigest()}",
                 "containerID": "cri-o://" + hashlib.sha256(f"{namespace}/{plan.name}/{c}".encode()).hexdigest(),
                 "state": {"running": {}}}
                for c in plan.containers
            ],
        },
    }


def _kuryr_port_object(ns: _Namespace, plan: _PodPlan, pod_uid: str, port: dict[str, Any],
                       vlan: int) -> dict[str, Any]:
    """A KuryrPort: `status.vifs` holds the pod's os-vif VIFVlanNested, as kuryr-controller writes it."""

    def versioned(name: str, data: dict[str, Any], version: str = "1.0",
                  namespace: str = "os_vif") -> dict[str, Any]:
        return {"versioned_object.data": data, "versioned_object.name": name,
                "versioned_object.namespace": namespace, "versioned_object.version": version}

    ip = port["fixed_ips"][0]["ip_address"]
    subnet = versioned("Subnet", {
        "cidr": ns.subnet["cidr"], "dns": [], "gateway": ns.subnet["gateway_ip"],
        "ips": versioned("FixedIPList", {"objects": [versioned("FixedIP", {"address": ip})]}),
        "routes": versioned("RouteList", {"objects": []}),
    })
    network = versioned("Network", {
        "id": ns.network["id"], "label": ns.network["name"], "mtu": ns.network["mtu"], "multi_host": False,
        "should_provide_bridge": False, "should_provide_vlan": False,
        "subnets": versioned("SubnetList", {"objects": [subnet]}),
    }, version="1.1")
    vif = versioned("VIFVlanNested", {
        "active": True, "address": port["mac_address"], "has_traffic_filtering": False, "id": port["id"],
        "network": network, "plugin": "noop", "preserve_on_delete": False,
        "vif_name": f"tap{port['id'][:11]}", "vlan_id": vlan,
    }, namespace="os_vif")
    return {
        "apiVersion": KURYR_API,
        "kind": "KuryrPort",
        "metadata": {"name": plan.name, "namespace": ns.name, "finalizers": [KURYRPORT_FINALIZER],
                     "labels": {"kuryr.openstack.org/nodeName": plan.node}},
        "spec": {"podUid": pod_uid, "podNodeName": plan.node},
        "status": {"vifs": {"eth0": {"default": True, "vif": vif}}},
    }


def _service_object(namespace: str, plan: _ServicePlan, uid: str, finalizers: list[str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": plan.name, "namespace": namespace, "uid": uid}
    if finalizers:
        meta["finalizers"] = list(finalizers)
    spec: dict[str, Any] = {
        "clusterIP": plan.cluster_ip,
        "clusterIPs": [plan.cluster_ip],
        "internalTrafficPolicy": "Cluster",
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
        "ports": [{**({"name": n} if n else {}), "port": p, "protocol": proto, "targetPort": t}
                  for n, p, proto, t in plan.ports],
        "sessionAffinity": "None",
        "type": plan.lb_type,
    }
    if plan.selector:
        spec["selector"] = dict(plan.selector)
    if plan.lb_type == "LoadBalancer":
        spec["externalTrafficPolicy"] = "Cluster"
        spec["allocateLoadBalancerNodePorts"] = True
        spec["ports"] = [dict(p, nodePort=30000 + (i * 7 + p["port"]) % 2767) for i, p in enumerate(spec["ports"])]
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec,
            "status": {"loadBalancer": {}}}


def _endpoint_slice(namespace: str, plan: _ServicePlan, endpoints: list[tuple[str, str, str]]) -> dict[str, Any]:
    return {
        "endpoints": [
            {"addresses": [address], "conditions": {"ready": True},
             **({} if plan.host_endpoints else {"targetRef": {"kind": "Pod", "name": name, "namespace": namespace}})}
            for name, address, _ in endpoints
        ],
        "ports": [{**({"name": n} if n else {}), "port": t, "protocol": proto} for n, _, proto, t in plan.ports],
    }


# -- what the project's users made -----------------------------------------------------------------
def _build_user_resources(sc: _Scenario) -> None:
    """Resources nobody but their owners may touch: a network, a VM, a security group, an LB, a floating
    IP, and a security group whose description looks like Kuryr's but that no cluster's tag or CR names."""
    store = sc.store
    network = sc.network(name="user-net", mtu=1450)
    subnet = neutron.create_subnet(store, name="user-subnet", network_id=network["id"], cidr="192.168.100.0/24",
                                   ip_version=4)
    router = neutron.create_router(store, name="user-router", external_gateway_info=sc.gateway_info())
    neutron.add_router_interface(store, router["id"], subnet_id=subnet["id"])
    group = neutron.create_security_group(store, name="user-sg", description="web servers")
    neutron.create_security_group_rule(store, security_group_id=group["id"], direction="ingress", ethertype="IPv4",
                                       protocol="tcp", port_range_min=443, port_range_max=443,
                                       remote_ip_prefix="0.0.0.0/0")
    mac = sc.mac()
    server = nova.create_server(store, name="user-vm", status="ACTIVE", metadata={},
                                addresses={"user-net": [{"addr": "192.168.100.20", "version": 4,
                                                         "OS-EXT-IPS:type": "fixed",
                                                         "OS-EXT-IPS-MAC:mac_addr": mac}]},
                                security_groups=[{"name": "user-sg"}],
                                **{"OS-EXT-SRV-ATTR:instance_name": f"instance-{sc.names.getrandbits(24):08x}"})
    vm_port = neutron.create_port(store, name="user-vm-port", network_id=network["id"], mac_address=mac,
                                  fixed_ips=[{"subnet_id": subnet["id"], "ip_address": "192.168.100.20"}],
                                  security_groups=[group["id"]], device_owner="compute:nova",
                                  device_id=server["id"], status="ACTIVE")
    sc.floating_ip(port_id=vm_port["id"], description="")
    lb = octavia.create_loadbalancer(store, name="user-lb", vip_subnet_id=subnet["id"], provisioning_status="ACTIVE",
                                     description="the team's web LB")
    listener = octavia.create_listener(store, name="user-lb-https", loadbalancer_id=lb["id"], protocol="TCP",
                                       protocol_port=443)
    pool = octavia.create_pool(store, name="user-lb-pool", listener_id=listener["id"], protocol="TCP",
                               lb_algorithm="ROUND_ROBIN")
    octavia.create_member(store, pool["id"], address="192.168.100.20", protocol_port=443, subnet_id=subnet["id"])
    # Looks like a leftover network-policy group, but nothing proves whose it is: must stay.
    neutron.create_security_group(store, name="sg/legacy-app-allow-all",
                                  description=NP_SG_DESCRIPTION.format(namespace="legacy-app", name="allow-all"))


# -- entry points ----------------------------------------------------------------------------------
def generate_scenario(store: Store, spec: ScenarioSpec) -> None:
    """Fill `store` with the scenario `spec` describes (this cluster, and whatever the options add)."""
    ids = random.Random(f"ids-{spec.seed}")
    with store.lock, _seeded_uuid4(ids):
        store.project_id = uuid.UUID(int=ids.getrandbits(128), version=4).hex
        sc = _Scenario(store, spec)
        infra_id = spec.infra_id or f"ostest-{sc.suffix()}"
        store.infra_id = infra_id
        if spec.octavia:
            store.settings["octavia_version"] = spec.octavia
        # Every delayed transition of the creates (none are expected) happens now, not after serving starts.
        saved_delays = dict(store.delays)
        store.delays.update({name: 0.0 for name in store.delays})
        try:
            sc.build_external()
            _Cluster(sc, spec, infra_id, ours=True).build()
            if spec.second_cluster:
                other_spec = dataclasses.replace(
                    spec, namespaces=min(spec.namespaces, 3) or 1, pods=min(spec.pods, 2) or 1,
                    services=min(spec.services, 1), policies=min(spec.policies, 1), masters=3, workers=1,
                    pool_ports=min(spec.pool_ports, 1), untagged=0, fips=False, error_lbs=0, host_prefix=None,
                )
                other_id = f"ostest-{sc.suffix()}" if not infra_id.startswith("ostest-") else f"other-{sc.suffix()}"
                _Cluster(sc, other_spec, other_id, ours=False).build()
            if spec.user_resources:
                _build_user_resources(sc)
            store.tick()
        finally:
            store.delays.update(saved_delays)
        _seed_generated_macs(store, sc)


def _seed_generated_macs(store: Store, sc: _Scenario) -> None:
    """Ports the models made on their own (router interfaces, gateways, VIPs) get MACs from the seed too."""
    for port in store.os["ports"].values():
        if port["mac_address"] not in sc.macs:
            port["mac_address"] = sc.mac()
    for fip in store.os["floatingips"].values():
        fip_port = store.os["ports"].get(fip.get("port_id") or "")
        if fip_port is not None and fip.get("port_details"):
            fip["port_details"]["mac_address"] = fip_port["mac_address"]
    for trunk in store.os["trunks"].values():
        parent = store.os["ports"].get(trunk["port_id"])
        details = (parent or {}).get("trunk_details") or {}
        for sub in details.get("sub_ports", []):
            sub_port = store.os["ports"].get(sub["port_id"])
            if sub_port is not None:
                sub["mac_address"] = sub_port["mac_address"]


_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")


def normalize_timestamps(snapshot: dict[str, Any], when: str = SCENARIO_EPOCH) -> dict[str, Any]:
    """A copy of `snapshot` whose timestamps all read `when` (so recorded fixtures don't change with the clock)."""

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str) and _TIMESTAMP.match(value):
            return when if value.endswith("Z") else when.rstrip("Z")
        return value

    return dict(walk(copy.deepcopy(snapshot)))


# The recorded fixtures: file name -> spec. `--fixtures DIR` regenerates them all.
FIXTURES: dict[str, str] = {
    "small.json": "namespaces=5,pods=3,services=2,policies=1,seed=7",
    "shared-project.json": "namespaces=4,pods=2,services=1,policies=1,second-cluster,seed=11",
    "legacy-octavia24.json": "namespaces=4,pods=2,services=2,policies=1,legacy-names,octavia=2.4,untagged=1,fips,"
                             "error-lbs=1,installer-router=no,seed=24",
}


def fixture_snapshot(spec_text: str) -> dict[str, Any]:
    """The snapshot document of a generated scenario, as recorded in fixtures/ (timestamps fixed)."""
    store = Store()
    spec = ScenarioSpec.parse(spec_text)
    generate_scenario(store, spec)
    snap = normalize_timestamps(store.snapshot(source=f"generated: {spec.text()}"))
    return snap


def write_fixture(spec_text: str, path: Path) -> None:
    path.write_text(json.dumps(fixture_snapshot(spec_text), indent=1, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kuryr_cleanup.sim.generate",
                                     description="Write generated scenarios as snapshot files.")
    parser.add_argument("--fixtures", metavar="DIR", help="rewrite the recorded fixtures into DIR")
    parser.add_argument("--spec", default="", help="a scenario spec, e.g. namespaces=5,fips")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the --spec scenario here")
    args = parser.parse_args(argv)
    if args.fixtures:
        for name, spec_text in FIXTURES.items():
            write_fixture(spec_text, Path(args.fixtures) / name)
            print(f"wrote {Path(args.fixtures) / name}")
    if args.output:
        write_fixture(args.spec, Path(args.output))
        print(f"wrote {args.output}")
    if not args.fixtures and not args.output:
        parser.error("give --fixtures DIR or --spec SPEC -o FILE")
    return 0


if __name__ == "__main__":
    sys.exit(main())
