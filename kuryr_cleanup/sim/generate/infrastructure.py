"""The installer's and the CNO's resources of a cluster, its nodes, and its cluster-scoped objects."""

from __future__ import annotations

import hashlib
import ipaddress
from typing import Any

from kuryr_cleanup.sim import neutron, nova, openshift
from kuryr_cleanup.sim.cluster_version import UPGRADE_VERSION
from kuryr_cleanup.sim.generate.cluster_state import ClusterState
from kuryr_cleanup.sim.generate.names import (
    AMPHORA_SERVICE_NETWORK,
    CLUSTER_NETWORK,
    CLUSTER_TAG_KEY,
    INSTALLER_ROUTER_DESCRIPTION,
    MACHINE_NETWORK,
    SERVICE_NETWORK,
)
from kuryr_cleanup.sim.generate.objects import Addresses, Node
from kuryr_cleanup.sim.kube import resources as kube_resources


class Infrastructure(ClusterState):
    """Installer (node network, router, node security groups, VIP ports), CNO (service network and
    subnet, pods security group, pod subnet pool), nodes (servers, trunk parents, trunks), and the
    cluster-scoped objects (Infrastructure, Network configs, nodes, pools, operators)."""

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
        self.node_addresses = Addresses(MACHINE_NETWORK, 10)
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
        for index, (name, role) in enumerate(names):
            node = Node(name=name, role=role, ip=self.node_addresses.take(), mac=sc.mac())
            if self.spec.azs:  # the installer spreads the machines over the zones it is given
                node.zone = self.spec.azs[index % len(self.spec.azs)]
            group = self.master_sg if role == "master" else self.worker_sg
            node.server = nova.create_server(
                self.store, name=name, status="ACTIVE",
                addresses={self.node_network["name"]: [
                    {"addr": node.ip, "version": 4, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": node.mac}
                ]},
                metadata={"Name": name, CLUSTER_TAG_KEY: self.infra_id},
                security_groups=[{"name": group["name"]}], host=f"compute-{len(self.nodes) % 3}",
                availability_zone=node.zone,
                **{"OS-EXT-SRV-ATTR:instance_name": f"instance-{sc.names.getrandbits(24):08x}"},
            )
            port_name = f"{self.infra_id}-master-port-{name.rsplit('-', 1)[1]}" if role == "master" else name
            node.parent_port = neutron.create_port(
                self.store, name=port_name, network_id=self.node_network["id"], mac_address=node.mac,
                fixed_ips=[{"subnet_id": self.node_subnet["id"], "ip_address": node.ip}],
                security_groups=[group["id"]], device_owner=f"compute:{node.zone}", device_id=node.server["id"],
                status="ACTIVE", **{"binding:host_id": f"compute-{len(self.nodes) % 3}"},
            )
            self._tag("ports", node.parent_port)
            self.nodes.append(node)
        self.masters = [n for n in self.nodes if n.role == "master"]
        self.workers_list = [n for n in self.nodes if n.role == "worker"] or self.masters
        self.node_by_name = {n.name: n for n in self.nodes}

    def build_trunks(self) -> None:
        """One trunk per node, created with all its subports at once (as after Kuryr filled it)."""
        for node in self.nodes:
            trunk = neutron.create_trunk(
                self.store, name=f"{node.name}-trunk", port_id=node.parent_port["id"], sub_ports=node.sub_ports,
            )
            self._tag("trunks", trunk)
            self.store.os["trunks"][trunk["id"]]["status"] = "ACTIVE"

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
            pool = put(openshift.make_machine_config_pool(role, count, rendered, paused=self.spec.paused_pool == role))
            put(openshift.make_rendered_machine_config(role, "Kuryr", pool["metadata"]["uid"]))
        for node in self.nodes:
            put(openshift.make_node(node.name, node.server["id"], node.ip, node.role, zone=node.zone))
            daemon = openshift.make_machine_config_daemon_pod(node.name, self.sc.suffix())
            for status in daemon["status"].get("containerStatuses", []):
                if "containerID" in status:  # the builder hashes the wall clock into it: follow the seed instead
                    seed = f"{daemon['metadata']['name']}/{status['name']}/{self.spec.seed}"
                    status["containerID"] = f"cri-o://{hashlib.sha256(seed.encode()).hexdigest()}"
            put(daemon)
        for name in openshift.CLUSTER_OPERATORS:
            put(openshift.make_cluster_operator(name))
        put(openshift.make_multus_daemonset(len(self.nodes)))
        # The cluster's identity: the same seed and infraID, the same clusterID. Neither it nor the uid is
        # drawn from the id sequence (store.kube_put would draw a uid even for an object that has one), so
        # no other id of the scenario moves.
        cluster_id = openshift.cluster_id_from(f"generated/{self.spec.seed}/{self.infra_id}")
        upgrading_to = UPGRADE_VERSION if self.spec.upgrading else None
        version = openshift.make_cluster_version(cluster_id, self.sc.created_at, upgrading_to=upgrading_to)
        version["metadata"]["creationTimestamp"] = self.sc.created_at
        kube_resources.save_object(self.store, version, "ADDED")
