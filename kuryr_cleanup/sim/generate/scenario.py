"""A whole scenario: the shared random sources, the external network, the clusters and the users' resources.

Ids come from a seeded random generator, so a spec with the same seed gives the same cloud.
"""

from __future__ import annotations

import contextlib
import random
import uuid
from collections.abc import Iterator
from typing import Any

from kuryr_cleanup.sim import neutron, nova, octavia
from kuryr_cleanup.sim.generate.names import (
    EXTERNAL_CIDR,
    NP_SG_DESCRIPTION,
    OCTAVIA_PROVIDERS_VERSION,
    OCTAVIA_TAGS_VERSION,
    SUFFIX_ALPHABET,
)
from kuryr_cleanup.sim.generate.objects import Addresses
from kuryr_cleanup.sim.generate.spec import ScenarioSpec, version_tuple
from kuryr_cleanup.sim.store import Store, iso_now


@contextlib.contextmanager
def seeded_uuid4(rng: random.Random) -> Iterator[None]:
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


class Scenario:
    """State shared by the clusters of one scenario: the store, the random sources, the external network."""

    def __init__(self, store: Store, spec: ScenarioSpec) -> None:
        self.store = store
        self.spec = spec
        self.names = random.Random(spec.seed)  # names, suffixes, MACs: never shifted by an extra id
        self.octavia_version = version_tuple(spec.octavia or str(store.settings.get("octavia_version") or "2.27"))
        self.octavia_tags = self.octavia_version >= OCTAVIA_TAGS_VERSION
        has_providers = self.octavia_version >= OCTAVIA_PROVIDERS_VERSION
        # An Octavia upgraded across 2.5 was older than 2.6 when the cluster was installed: the CNO chose
        # amphora (and the doubled service subnet) then.
        self.lb_provider = spec.lb_provider or ("ovn" if has_providers and not spec.octavia_upgraded else "amphora")
        self.external_network: dict[str, Any] = {}
        self.external_subnet: dict[str, Any] = {}
        self.external_addresses = Addresses(EXTERNAL_CIDR, 10)
        self.macs: set[str] = set()
        self.created_at = iso_now(store.clock.now())
        self._segmentation_ids = iter(range(1001, 1 << 24))
        # The cloud admin's own project, when the scenario has more than the cluster's (not drawn from the
        # id sequence: the ids of a scenario without other projects must not move).
        self.admin_project_id = (uuid.UUID(int=random.Random(f"admin-project/{spec.seed}").getrandbits(128)).hex
                                 if spec.other_project else None)

    def suffix(self, length: int = 5) -> str:
        return "".join(self.names.choices(SUFFIX_ALPHABET, k=length))

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
        """The provider network floating IPs and router gateways come from (never tagged). With several
        projects it belongs to the cloud's `admin` project, as on a real cloud; a one-project scenario
        keeps it in the cluster's project (as every recorded fixture has it)."""
        owner = {"project_id": self.admin_project_id} if self.admin_project_id else {}
        self.external_network = self.network(
            name="external", **{"router:external": True, "provider:network_type": "flat"}, mtu=1500, **owner
        )
        self.external_network["provider:segmentation_id"] = None
        self.external_network["provider:physical_network"] = "datacentre"
        self.external_subnet = neutron.create_subnet(
            self.store, name="external-subnet", network_id=self.external_network["id"], cidr=EXTERNAL_CIDR,
            ip_version=4, gateway_ip="172.24.4.1", enable_dhcp=False,
            allocation_pools=[{"start": "172.24.4.10", "end": "172.24.4.250"}], **owner,
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


# -- what the project's users made -----------------------------------------------------------------
def build_user_resources(sc: Scenario) -> None:
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
