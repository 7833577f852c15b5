"""What a distributed router adds on ML2/OVS with DVR (neutron/db/l3_dvr_db.py).

- Its interfaces are `network:router_interface_distributed` ports (`_get_device_owner`).
- While it has a gateway, each interface subnet also has a `network:router_centralized_snat` port:
  made with the interface (`_add_csnat_on_interface_create`, on an address the subnet allocates, not
  the gateway's), made for every interface when a gateway is set (`_create_snat_intf_ports_if_not_exists`),
  removed with its interface (`delete_csnat_router_interface_ports(subnet_id=...)`) and, all of them,
  when the gateway goes (`_delete_dvr_internal_ports`). Its device_id is the router's, its project "".
- A floating IP associated through it with a port bound to a host gives that host's L3 agent a
  `network:floatingip_agent_gateway` port on the external network (`create_fip_agent_gw_port_if_not_exists`):
  device_id the agent's id, binding:host_id the host, project "". They go when the network's last
  router gateway goes (`delete_floatingip_agent_gateway_port`), and with the network.

Both owners are DVR router device owners (`L3_NAT_with_dvr_db_mixin.router_device_owners`), so a port
DELETE of them goes through `prevent_l3_port_deletion`: a SNAT port, whose device_id is a router, is
refused (409 ServicePortInUse); an agent gateway port, whose device_id is an agent and no router, is not.
"""

from __future__ import annotations

import uuid
from typing import Any

from kuryr_cleanup.sim.neutron.ports import create_port
from kuryr_cleanup.sim.neutron.records import (
    AGENT_GATEWAY_OWNER,
    CENTRALIZED_SNAT_OWNER,
    DVR_INTERFACE_OWNER,
    ROUTER_GATEWAY_OWNER,
    ROUTER_INTERFACE_OWNERS,
    lookup,
    remove_record,
)
from kuryr_cleanup.sim.store import Store


def routers_distributed_by_default(store: Store) -> bool:
    """neutron.conf `router_distributed`: what a router is when its create does not say."""
    return bool(store.settings.get("neutron_dvr", False))


def interface_owner(router: dict[str, Any]) -> str:
    return DVR_INTERFACE_OWNER if router.get("distributed") else ROUTER_INTERFACE_OWNERS[0]


def _service_port(store: Store, **attrs: Any) -> dict[str, Any]:
    port = create_port(store, project_id="", name="", admin_state_up=True, status="ACTIVE", **attrs)
    port["tenant_id"] = port["project_id"] = ""
    return port


def add_snat_port(store: Store, router: dict[str, Any], interface: dict[str, Any]) -> None:
    """The centralized-SNAT port of a new interface of a distributed router that has a gateway."""
    if not router.get("distributed") or not router.get("external_gateway_info") or not interface["fixed_ips"]:
        return
    _service_port(store, network_id=interface["network_id"], device_owner=CENTRALIZED_SNAT_OWNER,
                  device_id=router["id"], fixed_ips=[{"subnet_id": interface["fixed_ips"][-1]["subnet_id"]}])


def add_snat_ports_for_interfaces(store: Store, router: dict[str, Any]) -> None:
    """A gateway was just set on a distributed router: one SNAT port per IPv4 interface subnet."""
    if not router.get("distributed"):
        return
    for interface in lookup(store, "ports", "device_id", router["id"]):
        if interface["device_owner"] != DVR_INTERFACE_OWNER:
            continue
        for fixed in interface["fixed_ips"]:
            if ":" not in fixed["ip_address"]:
                _service_port(store, network_id=interface["network_id"], device_owner=CENTRALIZED_SNAT_OWNER,
                              device_id=router["id"], fixed_ips=[{"subnet_id": fixed["subnet_id"]}])


def delete_snat_ports(store: Store, router_id: str, subnet_id: str | None = None) -> None:
    """The router's SNAT ports (those on `subnet_id` only, if given), as the L3 service removes them."""
    for port in lookup(store, "ports", "device_id", router_id):
        if port["device_owner"] != CENTRALIZED_SNAT_OWNER:
            continue
        if subnet_id is None or not port["fixed_ips"] or port["fixed_ips"][0]["subnet_id"] == subnet_id:
            remove_record(store, "ports", port["id"])


def l3_agent_id(host: str) -> str:
    """The id of the (simulated) L3 agent in dvr mode on a compute host."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"kuryr-migrate-sim/neutron-l3-agent/{host}"))


def ensure_agent_gateway_port(store: Store, network_id: str, host: str) -> dict[str, Any]:
    """The floating-IP agent gateway port of `host`'s L3 agent on the external network (made once)."""
    agent_id = l3_agent_id(host)
    for port in lookup(store, "ports", "device_id", agent_id):
        if port["device_owner"] == AGENT_GATEWAY_OWNER and port["network_id"] == network_id:
            return port
    return _service_port(store, network_id=network_id, device_owner=AGENT_GATEWAY_OWNER, device_id=agent_id,
                         **{"binding:host_id": host})


def delete_unused_agent_gateway_ports(store: Store, network_id: str) -> None:
    """After a router gateway went: no gateway left on the external network, no agent gateway ports."""
    on_network = lookup(store, "ports", "network_id", network_id)
    if any(p["device_owner"] == ROUTER_GATEWAY_OWNER for p in on_network):
        return
    for port in on_network:
        if port["device_owner"] == AGENT_GATEWAY_OWNER:
            remove_record(store, "ports", port["id"])
