"""A real Neutron 29 through openstacksdk: Kuryr-shaped resources, tags, and the deletion-order errors.

These answers are what the simulator has to give too; docs/real-services.md lists the exact bodies.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Any

import openstack.exceptions
import pytest


def neutron_error(exc: openstack.exceptions.HttpException) -> dict[str, Any]:
    """The {"type", "message", "detail"} object of a Neutron error response."""
    assert exc.response is not None
    body = exc.response.json()
    assert set(body) == {"NeutronError"}, body
    error: dict[str, Any] = body["NeutronError"]
    assert set(error) == {"type", "message", "detail"}, error
    return error


@dataclass
class KuryrShapedCloud:
    """One namespace's worth of Kuryr resources: what the cleanup will meet."""

    project_id: str
    network: Any
    subnet: Any
    parent_port: Any
    subport: Any
    trunk: Any
    external_network: Any
    router: Any
    interface_port_id: str
    security_group: Any
    subnet_pool: Any
    pool_subnet: Any


def build_kuryr_shaped_cloud(conn: Any, project_id: str) -> KuryrShapedCloud:
    net = conn.network.create_network(name="ns-demo", project_id=project_id)
    subnet = conn.network.create_subnet(
        network_id=net.id, cidr="10.128.4.0/23", ip_version=4, name="ns-demo", project_id=project_id
    )
    parent = conn.network.create_port(network_id=net.id, name="node-0", project_id=project_id)
    subport = conn.network.create_port(network_id=net.id, name="demo/pod-0", project_id=project_id)
    trunk = conn.network.create_trunk(
        port_id=parent.id,
        name="node-0-trunk",
        project_id=project_id,
        sub_ports=[{"port_id": subport.id, "segmentation_type": "vlan", "segmentation_id": 1001}],
    )
    external = conn.network.create_network(name="public", project_id=project_id, is_router_external=True)
    conn.network.create_subnet(
        network_id=external.id, cidr="172.24.4.0/24", ip_version=4, name="public", project_id=project_id
    )
    router = conn.network.create_router(
        name="cluster-router", project_id=project_id, external_gateway_info={"network_id": external.id}
    )
    interface = conn.network.add_interface_to_router(router, subnet=subnet.id)
    security_group = conn.network.create_security_group(name="np-demo", project_id=project_id)
    conn.network.update_port(subport, security_group_ids=[security_group.id])
    pool = conn.network.create_subnet_pool(
        name="cluster-pool", prefixes=["10.128.0.0/14"], default_prefix_length=23, project_id=project_id
    )
    pool_net = conn.network.create_network(name="ns-pooled", project_id=project_id)
    pool_subnet = conn.network.create_subnet(
        network_id=pool_net.id, subnet_pool_id=pool.id, ip_version=4, project_id=project_id
    )
    return KuryrShapedCloud(
        project_id, net, subnet, parent, subport, trunk, external, router, interface["port_id"], security_group,
        pool, pool_subnet,
    )


@pytest.fixture
def cloud(neutron: Any, project_id: str) -> KuryrShapedCloud:
    return build_kuryr_shaped_cloud(neutron, project_id)


def test_created_resources_are_what_kuryr_leaves(neutron: Any, cloud: KuryrShapedCloud) -> None:
    trunk = neutron.network.get_trunk(cloud.trunk.id)
    assert [sp["port_id"] for sp in trunk.sub_ports] == [cloud.subport.id]
    # No agent: ports never go ACTIVE.
    assert neutron.network.get_port(cloud.subport.id).status == "DOWN"
    assert cloud.pool_subnet.cidr == "10.128.0.0/23"
    # A non-default group gets the two egress rule templates only.
    rules = {(r["direction"], r["ethertype"]) for r in cloud.security_group.security_group_rules}
    assert rules == {("egress", "IPv4"), ("egress", "IPv6")}
    # The project's default group was created on the fly by the first port, with all four templates.
    (default_sg,) = neutron.network.security_groups(project_id=cloud.project_id, name="default")
    assert len(default_sg.security_group_rules) == 4


def test_tags_are_set_with_put_and_filter_lists(neutron: Any, cloud: KuryrShapedCloud) -> None:
    for resource in (cloud.network, cloud.subnet, cloud.subport, cloud.trunk, cloud.router, cloud.security_group,
                     cloud.subnet_pool):
        neutron.network.set_tags(resource, ["openshiftClusterID=abc-123", "kuryr"])
    neutron.network.set_tags(cloud.parent_port, ["openshiftClusterID=other"])
    mine = "openshiftClusterID=abc-123"

    def port_ids(**filters: str) -> set[str]:
        return {p.id for p in neutron.network.ports(project_id=cloud.project_id, **filters)}

    assert port_ids(tags=mine) == {cloud.subport.id}
    assert port_ids(tags=f"{mine},kuryr") == {cloud.subport.id}
    assert port_ids(any_tags=f"{mine},openshiftClusterID=other") == {cloud.subport.id, cloud.parent_port.id}
    # not-tags excludes a port carrying all the tags; untagged ports (the router's) stay listed.
    assert cloud.subport.id not in port_ids(not_tags=mine)
    assert cloud.parent_port.id in port_ids(not_tags=mine)
    assert port_ids(not_any_tags=f"{mine},openshiftClusterID=other").isdisjoint({cloud.subport.id,
                                                                                 cloud.parent_port.id})
    assert [t.id for t in neutron.network.trunks(project_id=cloud.project_id, tags=mine)] == [cloud.trunk.id]
    assert [p.id for p in neutron.network.subnet_pools(project_id=cloud.project_id, tags=mine)] == [
        cloud.subnet_pool.id
    ]
    assert neutron.network.get_network(cloud.network.id).tags == sorted(["kuryr", mine])


def test_combining_tags_and_tags_any_is_a_server_error(neutron: Any, cloud: KuryrShapedCloud) -> None:
    """Neutron 29 joins the tag table twice for this query and fails: the tool must never combine them."""
    with pytest.raises(openstack.exceptions.HttpException) as raised:
        list(neutron.network.networks(tags="a", any_tags="b"))
    assert raised.value.status_code == 500
    assert neutron_error(raised.value)["type"] == "HTTPInternalServerError"


def test_deleting_in_the_wrong_order_is_refused(neutron: Any, cloud: KuryrShapedCloud) -> None:
    """Each row of the error table: (call, status, NeutronError type)."""
    net = neutron.network
    floating_ip = net.create_ip(floating_network_id=cloud.external_network.id, port_id=cloud.subport.id,
                                project_id=cloud.project_id)
    (gateway_port,) = net.ports(device_id=cloud.router.id, device_owner="network:router_gateway")
    (fip_port,) = net.ports(device_id=floating_ip.id)
    other_port = net.create_port(network_id=cloud.network.id, project_id=cloud.project_id)
    other_subnet = net.create_subnet(network_id=cloud.external_network.id, cidr="172.24.5.0/24", ip_version=4,
                                     project_id=cloud.project_id)
    refused = [
        (lambda: net.delete_port(cloud.subport.id), 409, "PortInUseAsSubPort"),
        (lambda: net.delete_port(cloud.parent_port.id), 409, "PortInUseAsTrunkParent"),
        (lambda: net.delete_network(cloud.network.id), 409, "NetworkInUse"),
        (lambda: net.delete_subnet(cloud.subnet.id), 409, "SubnetInUse"),
        (lambda: net.delete_router(cloud.router.id), 409, "RouterInUse"),
        (lambda: net.delete_port(cloud.interface_port_id), 409, "ServicePortInUse"),
        (lambda: net.delete_port(gateway_port.id), 409, "ServicePortInUse"),
        (lambda: net.delete_port(fip_port.id), 409, "ServicePortInUse"),
        (lambda: net.remove_interface_from_router(cloud.router, subnet=cloud.subnet.id), 409,
         "RouterInterfaceInUseByFloatingIP"),
        (lambda: net.delete_subnet_pool(cloud.subnet_pool.id), 400, "SubnetPoolDeleteError"),
        (lambda: net.delete_security_group(cloud.security_group.id), 409, "SecurityGroupInUse"),
        (lambda: net.remove_interface_from_router(cloud.router, subnet=other_subnet.id), 404,
         "RouterInterfaceNotFoundForSubnet"),
        (lambda: net.delete_trunk_subports(cloud.trunk, [{"port_id": other_port.id}]), 404, "SubPortNotFound"),
    ]
    answers: list[tuple[int | None, str]] = []
    for call, _, _ in refused:
        try:
            call()
            answers.append((200, "accepted"))
        except openstack.exceptions.HttpException as exc:
            answers.append((exc.status_code, neutron_error(exc)["type"]))
    assert answers == [(status, kind) for _, status, kind in refused]


def test_deletes_that_are_allowed(neutron: Any, cloud: KuryrShapedCloud) -> None:
    net = neutron.network
    floating_ip = net.create_ip(floating_network_id=cloud.external_network.id, port_id=cloud.subport.id,
                                project_id=cloud.project_id)
    # A trunk with subports goes; the subports stay as plain ports.
    net.delete_trunk(cloud.trunk.id, ignore_missing=False)
    assert net.find_port(cloud.subport.id) is not None
    # A port with a floating IP goes; the floating IP stays, disassociated.
    net.delete_port(cloud.subport.id, ignore_missing=False)
    assert net.get_ip(floating_ip.id).port_id is None
    # A network with subnets but no ports goes.
    pooled = net.get_subnet(cloud.pool_subnet.id).network_id
    net.delete_network(pooled, ignore_missing=False)
    # A router with only its gateway goes.
    net.remove_interface_from_router(cloud.router, subnet=cloud.subnet.id)
    net.delete_router(cloud.router.id, ignore_missing=False)
    # Deleting what is already gone: 404 NotFound types (openstacksdk maps them to ResourceNotFound).
    with pytest.raises(openstack.exceptions.ResourceNotFound) as raised:
        net.delete_trunk(cloud.trunk.id, ignore_missing=False)
    assert neutron_error(raised.value)["type"] == "TrunkNotFound"


def test_openstack_cli_with_noauth_environment(
    openstack_cli: str, real_cli_env: dict[str, str], cloud: KuryrShapedCloud
) -> None:
    listed = subprocess.run(
        [openstack_cli, "network", "show", cloud.network.id, "-f", "value", "-c", "project_id"],
        env=real_cli_env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == [cloud.project_id]
