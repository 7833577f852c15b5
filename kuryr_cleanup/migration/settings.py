"""A3/A5 settings: what the admin asks for, what Neutron and the cluster say, and the validation.

Validated in A0, before the first write, so a bad `--geneve-port 4789` or an overlapping subnet
refuses the whole run instead of failing half way through. What validation finds is split by whose
fault it is: a value the admin gave that the cluster rules out (an `--mtu` above the node networks',
a `--cluster-network` on the machine network) is a usage error, refused before any plan is shown;
the cluster as it is (its machine network on OVN's default join subnet) is a preflight refusal.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from kuryr_cleanup.kuryr import KURYR_PORT_DEVICE_OWNER
from kuryr_cleanup.migration import facts
from kuryr_cleanup.migration.base import MigrationContext
from kuryr_cleanup.migration.reboot import match_servers
from kuryr_cleanup.openstack_api import raw

KURYR_VXLAN_PORT = 4789
DEFAULT_GENEVE_PORT = 6081
DEFAULT_V4_INTERNAL = "100.64.0.0/16"
DEFAULT_V6_INTERNAL = "fd98::/48"
# The ranges OVN-Kubernetes (4.14+) keeps for itself, as the vendor lists them: "do not include any of
# these in any other CIDR definitions in your cluster or infrastructure". (kind, range, what it is)
OVN_RESERVED: tuple[tuple[str, str, str], ...] = (
    ("join", "100.64.0.0/16", "internal (join) subnet"),  # the v4InternalSubnet default
    ("masquerade", "169.254.169.0/29", "reserved masquerade subnet"),
    ("transit", "100.88.0.0/16", "reserved transit switch subnet"),
    ("join", "fd98::/64", "internal (join) subnet"),  # inside the v6InternalSubnet default fd98::/48
    ("masquerade", "fd69::/125", "reserved masquerade subnet"),
    ("transit", "fd97::/64", "reserved transit switch subnet"),
)
GENEVE_OVERHEAD = 100  # bytes the Geneve header costs, as the vendor documentation says
# UDP ports the nodes already listen on for something else (OVN-Kubernetes IPsec: IKE and NAT-T).
NODE_UDP_PORTS = {500: "IKE (IPsec)", 4500: "IPsec NAT traversal"}
DEFAULT_NODE_PORT_RANGE = "30000-32767"  # Network.config spec.serviceNodePortRange when unset
MIN_MTU_V4 = 576
MIN_MTU_V6 = 1280
# Server ids per port listing (`?device_id=a&device_id=b...`): 40 UUIDs keep the URL near 2 KB, well
# under the 8 KB request line a proxy in front of Neutron may allow.
DEVICE_IDS_PER_LISTING = 40

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class Findings:
    """What validation found, each as one line, by whose fault it is."""

    given: list[str] = field(default_factory=list)  # a value the admin gave: a usage error (exit 2)
    cluster: list[str] = field(default_factory=list)  # the cluster as it is: a preflight refusal (exit 3)

    def add(self, text: str, given: bool) -> None:
        found = self.given if given else self.cluster
        if text not in found:
            found.append(text)


@dataclass(frozen=True)
class NodeNetworks:
    """What Neutron says about the networks the nodes are on."""

    mtus: dict[str, int]  # network name -> MTU
    cidrs: tuple[str, ...]  # the machine network(s): subnets holding the nodes' addresses

    @property
    def smallest_mtu(self) -> int | None:
        return min(self.mtus.values()) if self.mtus else None

    @property
    def max_ovn_mtu(self) -> int | None:
        smallest = self.smallest_mtu
        return smallest - GENEVE_OVERHEAD if smallest else None


def is_node_port(port: dict[str, Any]) -> bool:
    """A Nova server's port: `compute:<the server's availability zone>` (`compute:nova` only in a
    single-zone cloud; `compute:None` when Nova had no zone to record), never Kuryr's pod ports,
    which are `compute:kuryr` too."""
    owner = str(port.get("device_owner") or "")
    return owner.startswith("compute:") and owner != KURYR_PORT_DEVICE_OWNER


def node_ports(mctx: MigrationContext) -> list[dict[str, Any]]:
    """The ports of the nodes' Nova servers, asked by device_id (the servers' ids, several per listing):
    a filter on one device_owner would miss every node outside that availability zone."""
    conn = mctx.ctx.conn
    servers = match_servers(mctx, facts.nodes(mctx), strict=False)
    wanted = sorted({s["id"] for s in servers.values()})
    ports: list[dict[str, Any]] = []
    for start in range(0, len(wanted), DEVICE_IDS_PER_LISTING):
        chunk = wanted[start:start + DEVICE_IDS_PER_LISTING]
        ports += facts.read(mctx, lambda c=chunk: [raw(p) for p in conn.network.ports(device_id=c)])
    members = set(wanted)
    return [p for p in ports if p.get("device_id") in members and is_node_port(p)]


def node_networks(mctx: MigrationContext) -> NodeNetworks:
    """The nodes' Neutron ports (device_id = their servers), their networks' MTUs and subnets' CIDRs."""
    if "node_networks" in mctx.cache:
        return mctx.cache["node_networks"]
    conn = mctx.ctx.conn
    ports = node_ports(mctx)
    mtus: dict[str, int] = {}
    cidrs: list[str] = []
    for net_id in sorted({p["network_id"] for p in ports}):
        net = raw(facts.read(mctx, lambda n=net_id: conn.network.get_network(n)))
        if net.get("mtu"):
            mtus[str(net.get("name") or net_id)] = int(net["mtu"])
    for subnet_id in sorted({ip["subnet_id"] for p in ports for ip in p.get("fixed_ips") or []}):
        subnet = raw(facts.read(mctx, lambda s=subnet_id: conn.network.get_subnet(s)))
        cidrs.append(str(subnet["cidr"]))
    result = NodeNetworks(mtus, tuple(cidrs))
    mctx.cache["node_networks"] = result
    return result


@dataclass(frozen=True)
class ClusterNetworks:
    cluster: tuple[str, ...]
    service: tuple[str, ...]
    machine: tuple[str, ...]
    node_count: int


def cluster_networks(mctx: MigrationContext, state: facts.NetworkState) -> ClusterNetworks:
    spec = state.config.get("spec") or {}
    return ClusterNetworks(
        cluster=tuple(str(c["cidr"]) for c in spec.get("clusterNetwork") or [] if c.get("cidr")),
        service=tuple(str(s) for s in spec.get("serviceNetwork") or []),
        machine=node_networks(mctx).cidrs,
        node_count=len(facts.nodes(mctx)),
    )


def _net(text: str, what: str, findings: Findings, given: bool) -> Network | None:
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        findings.add(f"{what} {text!r} is not a network CIDR: {exc}", given)
        return None


def ovn_config_patch(mctx: MigrationContext) -> dict[str, Any]:
    """The keys A3 merge-patches under spec.defaultNetwork.ovnKubernetesConfig: only those the admin
    gives (SPEC A3). Without --mtu the CNO picks the MTU itself; `expected_mtu` says what to expect."""
    opts = mctx.options
    patch: dict[str, Any] = {}
    if opts.mtu is not None:
        patch["mtu"] = opts.mtu
    if opts.geneve_port is not None:
        patch["genevePort"] = opts.geneve_port
    if opts.v4_internal_subnet:
        patch["v4InternalSubnet"] = opts.v4_internal_subnet
    if opts.v6_internal_subnet:
        patch["v6InternalSubnet"] = opts.v6_internal_subnet
    return patch


def expected_mtu_note(mctx: MigrationContext) -> str | None:
    """What the plan says about the MTU when the admin gives none: the smallest node network MTU minus
    the Geneve overhead, and a warning when the node networks differ (the CNO probes one node)."""
    if mctx.options.mtu is not None:
        return None
    nodes = node_networks(mctx)
    if nodes.max_ovn_mtu is None:
        return None
    note = (f"A3: no --mtu given: OVN-Kubernetes is expected to use MTU {nodes.max_ovn_mtu} (the smallest node "
            f"network MTU {nodes.smallest_mtu} minus {GENEVE_OVERHEAD}); not patched")
    if len(set(nodes.mtus.values())) > 1:
        note += (f"; the node networks' MTUs differ ({', '.join(f'{n} {m}' for n, m in sorted(nodes.mtus.items()))}): "
                 f"give --mtu {nodes.max_ovn_mtu} so every node fits")
    return note


def geneve_port(mctx: MigrationContext) -> int:
    return mctx.options.geneve_port or DEFAULT_GENEVE_PORT


@dataclass(frozen=True)
class NamedNetwork:
    """A network A3/A5 must keep apart from the others, with the words that name it in a refusal."""

    label: str
    net: Network
    kind: str  # machine, service, cluster, internal, transit, masquerade, join
    given: bool = False  # the admin gave it with a flag (not what the cluster or OVN has by default)

    @property
    def ovn(self) -> bool:
        """Brought by OVN-Kubernetes: a range the cluster does not use yet."""
        return self.kind in ("internal", "transit", "masquerade", "join")


def collect_networks(mctx: MigrationContext, state: facts.NetworkState,
                     findings: Findings) -> tuple[list[NamedNetwork], int]:
    """Every network in effect after the switch (the admin's values, else the cluster's and OVN's
    defaults) and the node count; unparsable or too small values go to `findings`."""
    opts = mctx.options
    nets = cluster_networks(mctx, state)
    found: list[NamedNetwork] = []

    def add(text: str, what: str, kind: str, given: bool = False, label: str = "") -> NamedNetwork | None:
        net = _net(text, what, findings, given)
        if net is None:
            return None
        named = NamedNetwork(label or f"{what} {text}", net, kind, given)
        found.append(named)
        return named

    for cidr in nets.machine:
        add(cidr, "the machine network", "machine")
    for cidr in nets.service:
        add(cidr, "the service network", "service")
    if (opts.cluster_network is None) != (opts.host_prefix is None):
        findings.add("--cluster-network and --host-prefix go together: give both or neither", True)
    if opts.cluster_network is not None and opts.host_prefix is not None:
        new = add(opts.cluster_network, "--cluster-network", "cluster", given=True)
        if new is not None:
            bits = new.net.max_prefixlen
            if not new.net.prefixlen < opts.host_prefix <= bits:
                findings.add(f"--host-prefix {opts.host_prefix} must be longer than the cluster network's /"
                             f"{new.net.prefixlen} and at most /{bits}", True)
            elif 2 ** (opts.host_prefix - new.net.prefixlen) < nets.node_count:
                findings.add(f"--cluster-network {opts.cluster_network} with --host-prefix {opts.host_prefix} has "
                             f"{2 ** (opts.host_prefix - new.net.prefixlen)} node subnets for {nets.node_count} "
                             f"nodes", True)
    else:
        for cidr in nets.cluster:
            add(cidr, "the cluster network", "cluster")
    for flag, text, default, version in (("--v4-internal-subnet", opts.v4_internal_subnet, DEFAULT_V4_INTERNAL, 4),
                                         ("--v6-internal-subnet", opts.v6_internal_subnet, DEFAULT_V6_INTERNAL, 6)):
        label = "" if text else f"OVN's internal{' (join)' if version == 4 else ''} subnet {default} (the default)"
        named = add(text or default, flag, "internal", given=bool(text), label=label)
        if named is None:
            continue
        if named.net.version != version:
            findings.add(f"{named.label} is not an IPv{version} network", named.given)
            found.remove(named)
            continue
        # One address per node on the join switch, plus the network and router addresses.
        if named.net.num_addresses < nets.node_count + 3:
            findings.add(f"{named.label} has {named.net.num_addresses} addresses: too small for "
                         f"{nets.node_count} nodes", named.given)
    moved = {4: bool(opts.v4_internal_subnet), 6: bool(opts.v6_internal_subnet)}
    for kind, cidr, what in OVN_RESERVED:
        net = ipaddress.ip_network(cidr)
        # The default join subnet is in the list already as the internal subnet (the default); when the
        # admin moves it, the old range stays out of the cluster network (SPEC A5).
        if kind != "join" or moved[net.version]:
            found.append(NamedNetwork(f"OVN's {what} {cidr}", net, kind))
    return found, nets.node_count


def _conflicts(a: NamedNetwork, b: NamedNetwork) -> bool:
    """Whether an overlap of `a` and `b` is a problem the migration would bring."""
    if a.net.version != b.net.version or not a.net.overlaps(b.net):
        return False
    if not (a.given or b.given or a.ovn or b.ovn):
        return False  # two networks the cluster already runs with: not the migration's business
    if a.ovn and b.ovn and not (a.given or b.given):
        return False  # OVN's own defaults fit together
    if "join" in (a.kind, b.kind):
        other = b if a.kind == "join" else a
        return other.kind == "cluster"
    return True


def overlap_problems(networks: list[NamedNetwork], findings: Findings) -> None:
    """One line per conflicting pair, the admin's value (or the existing network) named first: the
    admin's fault when one of the two is a value they gave."""
    for i, a in enumerate(networks):
        for b in networks[i + 1:]:
            if _conflicts(a, b):
                first, second = sorted((a, b), key=lambda n: (not n.given, n.ovn))
                findings.add(f"{first.label} overlaps {second.label}", a.given or b.given)


def _port_range(text: str) -> tuple[int, int] | None:
    low, _, high = text.partition("-")
    try:
        return int(low), int(high or low)
    except ValueError:
        return None


def geneve_port_problems(state: facts.NetworkState, port: int) -> list[str]:
    """An admin-given Geneve port must be free on every node: not Kuryr's VXLAN port (bound until each
    node has rebooted), not a port the nodes use for IPsec, not inside the Service NodePort range
    (a UDP NodePort Service would take it on every node)."""
    if port == KURYR_VXLAN_PORT:
        return [f"--geneve-port {KURYR_VXLAN_PORT} is Kuryr's VXLAN port: choose another (default "
                f"{DEFAULT_GENEVE_PORT})"]
    if port in NODE_UDP_PORTS:
        return [f"--geneve-port {port} is the nodes' {NODE_UDP_PORTS[port]} port: choose another (default "
                f"{DEFAULT_GENEVE_PORT})"]
    text = str((state.config.get("spec") or {}).get("serviceNodePortRange") or DEFAULT_NODE_PORT_RANGE)
    span = _port_range(text)
    if span and span[0] <= port <= span[1]:
        return [f"--geneve-port {port} is in the cluster's Service NodePort range {text} "
                f"(Network.config spec.serviceNodePortRange): choose another (default {DEFAULT_GENEVE_PORT})"]
    return []


def validate(mctx: MigrationContext, state: facts.NetworkState) -> Findings:
    """Every problem with the settings in effect, each as one line, by whose fault it is."""
    opts = mctx.options
    findings = Findings()
    nodes = node_networks(mctx)
    networks, _ = collect_networks(mctx, state, findings)

    # MTU: the overlay must fit in the smallest node network; IPv6 needs 1280 when the cluster has it.
    limit = nodes.max_ovn_mtu
    if opts.mtu is not None:
        dual_stack = any(n.net.version == 6 for n in networks if n.kind in ("machine", "service", "cluster"))
        low = MIN_MTU_V6 if dual_stack else MIN_MTU_V4
        if opts.mtu < low:
            findings.add(f"--mtu {opts.mtu} is below the minimum {low}" + (" (the cluster has IPv6)" if dual_stack
                                                                            else ""), True)
        if limit is not None and opts.mtu > limit:
            smallest = nodes.smallest_mtu
            which = ", ".join(f"{n} {m}" for n, m in sorted(nodes.mtus.items()))
            findings.add(f"--mtu {opts.mtu} is above the smallest node network MTU ({smallest}: {which}) minus "
                         f"{GENEVE_OVERHEAD} for Geneve: use at most {limit}", True)
    if limit is None and opts.mtu is None:
        findings.add("Neutron reports no MTU for the nodes' networks: give --mtu", False)

    if opts.geneve_port is not None:
        for problem in geneve_port_problems(state, opts.geneve_port):
            findings.add(problem, True)

    overlap_problems(networks, findings)
    return findings
