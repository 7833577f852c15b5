"""Another project in the same cloud (`other-project`): what a cloud admin's token also lists.

A tool run with admin credentials sees every project's Neutron and Octavia resources unless it asks
for its own project's, so this project holds what such a tool must never take for the cluster's: its
own network, router, VM with a floating IP and security groups, and look-alikes of the cluster's
resources with the very names the CNO and Kuryr give them (`<infraID>-kuryr-pods-security-group`,
`<infraID>-kuryr-service-network`, a `Kuryr-Kubernetes Network Policy` group, an LB `ns-1/web`, a
`kuryr-pool-port`, the pod subnet pool). None carries the cluster tag: names are no evidence.
"""

from __future__ import annotations

import uuid

from kuryr_cleanup.sim import neutron, nova, octavia
from kuryr_cleanup.sim.generate.names import (
    CLUSTER_NETWORK,
    KURYR_POOL_PORT_NAME,
    NP_RULE_DESCRIPTION,
    NP_SG_DESCRIPTION,
)
from kuryr_cleanup.sim.generate.scenario import Scenario

OTHER_PROJECT = "team-b"
ADMIN_PROJECT = "admin"  # the cloud admin's project, which owns the external network


def build_other_project(sc: Scenario, infra_id: str) -> str:
    """Build the project's resources (ids drawn after everything else's); return its id."""
    store = sc.store
    project_id = uuid.uuid4().hex
    store.settings["other_projects"] = {ADMIN_PROJECT: sc.admin_project_id, OTHER_PROJECT: project_id}
    user_id = uuid.uuid5(uuid.NAMESPACE_URL, f"kuryr-migrate-sim/user/{OTHER_PROJECT}").hex
    owned = {"project_id": project_id}

    network = sc.network(name=f"{OTHER_PROJECT}-net", mtu=1450, **owned)
    subnet = neutron.create_subnet(store, name=f"{OTHER_PROJECT}-subnet", network_id=network["id"],
                                   cidr="192.168.200.0/24", ip_version=4, **owned)
    router = neutron.create_router(store, name=f"{OTHER_PROJECT}-router", external_gateway_info=sc.gateway_info(),
                                   **owned)
    neutron.add_router_interface(store, router["id"], subnet_id=subnet["id"])
    web = neutron.create_security_group(store, name="web", description="the team's web servers", **owned)
    neutron.create_security_group_rule(store, security_group_id=web["id"], direction="ingress", ethertype="IPv4",
                                       protocol="tcp", port_range_min=443, port_range_max=443,
                                       remote_ip_prefix="0.0.0.0/0", **owned)
    mac = sc.mac()
    server = nova.create_server(store, name=f"{OTHER_PROJECT}-vm", status="ACTIVE", metadata={}, tenant_id=project_id,
                                user_id=user_id, host="compute-1",
                                addresses={network["name"]: [{"addr": "192.168.200.20", "version": 4,
                                                              "OS-EXT-IPS:type": "fixed",
                                                              "OS-EXT-IPS-MAC:mac_addr": mac}]},
                                security_groups=[{"name": "web"}],
                                **{"OS-EXT-SRV-ATTR:instance_name": f"instance-{sc.names.getrandbits(24):08x}"})
    vm_port = neutron.create_port(store, name=f"{OTHER_PROJECT}-vm-port", network_id=network["id"], mac_address=mac,
                                  fixed_ips=[{"subnet_id": subnet["id"], "ip_address": "192.168.200.20"}],
                                  security_groups=[web["id"]], device_owner="compute:nova", device_id=server["id"],
                                  status="ACTIVE", **owned)
    sc.floating_ip(port_id=vm_port["id"], description="", **owned)

    # Look-alikes, by name only.
    neutron.create_security_group(store, name=f"{infra_id}-kuryr-pods-security-group", **owned)
    look_alike = sc.network(name=f"{infra_id}-kuryr-service-network", mtu=1450, **owned)
    look_alike_subnet = neutron.create_subnet(store, name=f"{infra_id}-kuryr-service-subnet",
                                              network_id=look_alike["id"], cidr="172.30.0.0/16", ip_version=4,
                                              **owned)
    neutron.create_port(store, name=KURYR_POOL_PORT_NAME, network_id=look_alike["id"], mac_address=sc.mac(),
                        fixed_ips=[{"subnet_id": look_alike_subnet["id"]}], device_owner="compute:kuryr", **owned)
    policy = neutron.create_security_group(
        store, name="sg/ns-1-allow-from-same-namespace",
        description=NP_SG_DESCRIPTION.format(namespace="ns-1", name="allow-from-same-namespace"), **owned)
    neutron.create_security_group_rule(store, security_group_id=policy["id"], direction="ingress", ethertype="IPv4",
                                       remote_ip_prefix="192.168.200.0/24", description=NP_RULE_DESCRIPTION, **owned)
    neutron.create_subnetpool(store, name=f"{infra_id}-kuryr-pod-subnetpool", prefixes=[CLUSTER_NETWORK],
                              default_prefixlen=23, min_prefixlen=8, max_prefixlen=32, **owned)
    lb = octavia.create_loadbalancer(store, name="ns-1/web", vip_subnet_id=subnet["id"], provisioning_status="ACTIVE",
                                     description="", **owned)
    listener = octavia.create_listener(store, name="ns-1/web:TCP:80", loadbalancer_id=lb["id"], protocol="TCP",
                                       protocol_port=80)
    pool = octavia.create_pool(store, name="ns-1/web:TCP:80", listener_id=listener["id"], protocol="TCP",
                               lb_algorithm="ROUND_ROBIN")
    octavia.create_member(store, pool["id"], address="192.168.200.20", protocol_port=8080, subnet_id=subnet["id"])
    return project_id
