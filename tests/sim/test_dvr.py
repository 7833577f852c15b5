"""ML2/OVS with DVR (scenario option `dvr`): distributed routers and the ports Neutron adds for them.

The rules come from neutron/db/l3_dvr_db.py: a distributed router with a gateway has a
`network:router_centralized_snat` port on every interface subnet, made and removed with the interface
and with the gateway; floating IPs give compute hosts' L3 agents `network:floatingip_agent_gateway`
ports on the external network. Both are router device owners: a DELETE of a SNAT port (its device is
a router) is refused with ServicePortInUse; an agent gateway port's device is an agent, not a router,
so Neutron lets it go.
"""

from __future__ import annotations

from typing import Any

import openstack.exceptions
import pytest
import requests

from kuryr_cleanup.sim import neutron
from kuryr_cleanup.sim.generate import ScenarioSpec, cluster_tag, generate_scenario
from kuryr_cleanup.sim.neutron.api import extensions
from kuryr_cleanup.sim.store import Store

SNAT = "network:router_centralized_snat"
AGENT_GATEWAY = "network:floatingip_agent_gateway"
DVR_INTERFACE = "network:router_interface_distributed"


@pytest.fixture
def dvr_sim(sim: Any) -> Any:
    with sim.store.lock:
        sim.store.settings["neutron_dvr"] = True
        sim.external = neutron.create_network(sim.store, name="public", **{"router:external": True})
        neutron.create_subnet(sim.store, network_id=sim.external["id"], cidr="172.24.4.0/24")
    return sim


def ports_of(sim: Any, owner: str) -> list[dict[str, Any]]:
    return [p for p in sim.store.os["ports"].values() if p["device_owner"] == owner]


def raw_delete(sim: Any, conn: Any, port_id: str) -> requests.Response:
    return requests.delete(f"{sim.server.os_url}/networking/v2.0/ports/{port_id}",
                           headers={"X-Auth-Token": conn.session.get_token()}, timeout=10)


def test_a_distributed_routers_interfaces_come_with_centralized_snat_ports(dvr_sim: Any) -> None:
    conn = dvr_sim.openstack_sdk()
    router = conn.network.create_router(name="r", external_gateway_info={"network_id": dvr_sim.external["id"]})
    assert router.is_distributed is True
    network = conn.network.create_network(name="pods")
    subnet = conn.network.create_subnet(network_id=network.id, cidr="10.128.0.0/23", ip_version=4)
    conn.network.add_interface_to_router(router, subnet_id=subnet.id)
    interface = next(p for p in conn.network.ports(device_id=router.id) if p.device_owner == DVR_INTERFACE)
    assert interface.fixed_ips[0]["ip_address"] == "10.128.0.1"
    (snat,) = conn.network.ports(device_owner=SNAT)
    assert (snat.device_id, snat.network_id, snat.project_id) == (router.id, network.id, "")
    assert snat.fixed_ips[0]["subnet_id"] == subnet.id and snat.fixed_ips[0]["ip_address"] != "10.128.0.1"

    refused = raw_delete(dvr_sim, conn, snat.id)
    assert refused.status_code == 409
    assert refused.json()["NeutronError"] == {
        "type": "ServicePortInUse", "detail": "",
        "message": f"Port {snat.id} cannot be deleted directly via the port API: has device owner {SNAT}."}
    with pytest.raises(openstack.exceptions.ConflictException):
        conn.network.delete_subnet(subnet)  # the SNAT port has an address on it: SubnetInUse
    conn.network.remove_interface_from_router(router, subnet_id=subnet.id)
    assert list(conn.network.ports(device_owner=SNAT)) == []
    conn.network.delete_network(network)


def test_the_gateway_brings_and_takes_the_snat_ports_of_every_interface(dvr_sim: Any) -> None:
    conn = dvr_sim.openstack_sdk()
    router = conn.network.create_router(name="r")
    subnets = []
    for i in range(2):
        network = conn.network.create_network(name=f"n{i}")
        subnets.append(conn.network.create_subnet(network_id=network.id, cidr=f"10.0.{i}.0/24", ip_version=4))
        conn.network.add_interface_to_router(router, subnet_id=subnets[-1].id)
    assert ports_of(dvr_sim, SNAT) == []  # no gateway, no SNAT
    conn.network.update_router(router, external_gateway_info={"network_id": dvr_sim.external["id"]})
    assert sorted(p["fixed_ips"][0]["subnet_id"] for p in ports_of(dvr_sim, SNAT)) == sorted(s.id for s in subnets)
    conn.network.update_router(router, external_gateway_info={})
    assert ports_of(dvr_sim, SNAT) == []


def test_a_floating_ip_gives_the_hosts_agent_a_gateway_port_that_may_be_deleted(dvr_sim: Any) -> None:
    conn = dvr_sim.openstack_sdk()
    router = conn.network.create_router(name="r", external_gateway_info={"network_id": dvr_sim.external["id"]})
    network = conn.network.create_network(name="vms")
    subnet = conn.network.create_subnet(network_id=network.id, cidr="192.168.0.0/24", ip_version=4)
    conn.network.add_interface_to_router(router, subnet_id=subnet.id)
    vm_port = conn.network.create_port(network_id=network.id, device_owner="compute:az1", device_id="vm-1",
                                       binding_host_id="compute-1")
    conn.network.create_ip(floating_network_id=dvr_sim.external["id"], port_id=vm_port.id)
    (gateway,) = conn.network.ports(device_owner=AGENT_GATEWAY)
    assert (gateway.network_id, gateway.binding_host_id, gateway.project_id) == (dvr_sim.external["id"],
                                                                               "compute-1", "")
    assert gateway.device_id == neutron.l3_agent_id("compute-1")
    # Its device is an L3 agent, not a router: prevent_l3_port_deletion lets it go.
    assert raw_delete(dvr_sim, conn, gateway.id).status_code == 204


def test_the_last_gateway_on_the_external_network_takes_the_agent_gateway_ports(dvr_sim: Any) -> None:
    conn = dvr_sim.openstack_sdk()
    router = conn.network.create_router(name="r", external_gateway_info={"network_id": dvr_sim.external["id"]})
    with dvr_sim.store.lock:
        neutron.ensure_agent_gateway_port(dvr_sim.store, dvr_sim.external["id"], "compute-0")
    assert len(ports_of(dvr_sim, AGENT_GATEWAY)) == 1
    conn.network.delete_router(router)
    assert ports_of(dvr_sim, AGENT_GATEWAY) == [] and ports_of(dvr_sim, SNAT) == []


def test_a_generated_dvr_cloud_has_distributed_routers_and_their_ports() -> None:
    store = Store()
    generate_scenario(store, ScenarioSpec.parse("namespaces=3,dvr,fips"))
    assert store.settings["neutron_dvr"] is True
    tag = cluster_tag(store.infra_id or "")
    router = next(r for r in store.os["routers"].values() if r["name"] == f"{store.infra_id}-external-router")
    assert router["distributed"] is True and tag in router["tags"]
    assert all(r["distributed"] for r in store.os["routers"].values())
    ports = list(store.os["ports"].values())
    interfaces = [p for p in ports if p["device_id"] == router["id"] and p["device_owner"] == DVR_INTERFACE]
    snat_subnets = sorted(p["fixed_ips"][0]["subnet_id"] for p in ports
                          if p["device_id"] == router["id"] and p["device_owner"] == SNAT)
    # Node subnet, service subnet (through the CNO's router port) and every namespace subnet.
    assert interfaces and snat_subnets == sorted(p["fixed_ips"][0]["subnet_id"] for p in interfaces)
    hosts = {s["OS-EXT-SRV-ATTR:host"] for s in store.os["servers"].values()}
    gateways = [p for p in ports if p["device_owner"] == AGENT_GATEWAY]
    assert {p["binding:host_id"] for p in gateways} == hosts
    addresses = [(f["subnet_id"], f["ip_address"]) for p in ports for f in p["fixed_ips"]]
    assert len(addresses) == len(set(addresses))  # pods and SNAT ports never share an address
    assert "dvr" in {e["alias"] for e in extensions(store)}
