"""Neutron routers (gateway, interfaces) and floating IPs; what DVR adds is in `dvr`."""

from __future__ import annotations

import ipaddress
from typing import Any

from kuryr_cleanup.sim.neutron import dvr
from kuryr_cleanup.sim.neutron.ports import create_port, disassociate_floatingip
from kuryr_cleanup.sim.neutron.records import (
    FLOATINGIP_OWNER,
    ROUTER_GATEWAY_OWNER,
    ROUTER_INTERFACE_OWNERS,
    NeutronError,
    apply_attrs,
    bad_request,
    change,
    get,
    insert,
    lookup,
    new_record,
    remove_record,
    touch,
)
from kuryr_cleanup.sim.store import Store


def create_router(store: Store, **attrs: Any) -> dict[str, Any]:
    record = new_record(store, attrs)
    record.update(
        {
            "admin_state_up": True,
            "status": "ACTIVE",
            "external_gateway_info": None,
            "availability_zone_hints": [],
            "availability_zones": [],
            "distributed": dvr.routers_distributed_by_default(store),
            "ha": False,
            "flavor_id": None,
            "routes": [],
            "enable_ndp_proxy": None,
            "revision_number": 1,
        }
    )
    gateway = attrs.get("external_gateway_info")
    apply_attrs(record, attrs, skip=("external_gateway_info",))
    insert(store, "routers", record)
    if gateway:
        set_router_gateway(store, record["id"], gateway)
    return record


def set_router_gateway(store: Store, router_id: str, gateway: dict[str, Any] | None) -> dict[str, Any]:
    """Set, change or (with None / {}) clear the router's external gateway and its gateway port."""
    router = get(store, "routers", router_id)
    old_network_id = (router.get("external_gateway_info") or {}).get("network_id")
    for port in lookup(store, "ports", "device_id", router_id):
        if port["device_owner"] == ROUTER_GATEWAY_OWNER:
            remove_record(store, "ports", port["id"])
    if not gateway or not gateway.get("network_id"):
        router["external_gateway_info"] = None
        touch(store, router)
        if old_network_id and router.get("distributed"):
            dvr.delete_snat_ports(store, router_id)
            dvr.delete_unused_agent_gateway_ports(store, old_network_id)
        return router
    network = get(store, "networks", gateway["network_id"])
    port = create_port(
        store,
        network_id=network["id"],
        fixed_ips=gateway.get("external_fixed_ips"),
        device_owner=ROUTER_GATEWAY_OWNER,
        device_id=router_id,
        project_id="",
        status="ACTIVE",
    )
    port["tenant_id"] = port["project_id"] = ""
    router["external_gateway_info"] = {
        "network_id": network["id"],
        "enable_snat": gateway.get("enable_snat", True),
        "external_fixed_ips": [dict(f) for f in port["fixed_ips"]],
    }
    touch(store, router)
    if not old_network_id:
        dvr.add_snat_ports_for_interfaces(store, router)
    elif old_network_id != network["id"] and router.get("distributed"):
        dvr.delete_unused_agent_gateway_ports(store, old_network_id)
    return router


def router_interfaces(store: Store, router_id: str, subnet_id: str | None = None) -> list[dict[str, Any]]:
    """The router's interface ports (only those on `subnet_id` if given)."""
    if subnet_id is None:
        candidates = lookup(store, "ports", "device_id", router_id)
    else:
        on_subnet = lookup(store, "ports", "fixed_ips.subnet_id", subnet_id)
        candidates = [p for p in on_subnet if p["device_id"] == router_id]
    return [p for p in candidates if p["device_owner"] in ROUTER_INTERFACE_OWNERS]


def add_router_interface(
    store: Store, router_id: str, subnet_id: str | None = None, port_id: str | None = None
) -> dict[str, Any]:
    """Attach a subnet (a new port on its gateway IP) or an existing port; return the interface port."""
    router = get(store, "routers", router_id)
    if port_id:
        port = get(store, "ports", port_id)
        if port["device_id"] or port["device_owner"]:
            raise NeutronError(
                409, "PortInUse",
                f"Unable to complete operation on port {port_id} for network {port['network_id']}. Port already "
                f"has an attached device {port['device_id']}.",
            )
        change(store, "ports", port, device_owner=dvr.interface_owner(router), device_id=router["id"],
               status="ACTIVE")
        dvr.add_snat_port(store, router, port)
        return port
    if not subnet_id:
        raise bad_request("Bad router request: Either subnet_id or port_id must be specified.")
    subnet = get(store, "subnets", subnet_id)
    if router_interfaces(store, router_id, subnet_id):
        raise bad_request(f"Bad router request: Router already has a port on subnet {subnet_id}.")
    if not subnet.get("gateway_ip"):
        raise bad_request("Bad router request: Subnet for router interface must have a gateway IP.")
    port = create_port(
        store,
        network_id=subnet["network_id"],
        fixed_ips=[{"subnet_id": subnet_id, "ip_address": subnet["gateway_ip"]}],
        device_owner=dvr.interface_owner(router),
        device_id=router["id"],
        project_id=router["project_id"],
        status="ACTIVE",
    )
    dvr.add_snat_port(store, router, port)
    touch(store, router)
    return port


def router_interface_info(router: dict[str, Any], port: dict[str, Any]) -> dict[str, Any]:
    """The body of add/remove_router_interface answers."""
    subnet_ids = [f["subnet_id"] for f in port["fixed_ips"]]
    return {
        "id": router["id"],
        "project_id": router["project_id"],  # no tenant_id here, unlike resource bodies (Neutron 29)
        "port_id": port["id"],
        "network_id": port["network_id"],
        "subnet_id": subnet_ids[0] if subnet_ids else None,
        "subnet_ids": subnet_ids,
    }


def remove_router_interface(
    store: Store, router_id: str, subnet_id: str | None = None, port_id: str | None = None
) -> dict[str, Any]:
    """Detach by subnet or by port; return the removed interface port record."""
    router = get(store, "routers", router_id)
    if port_id:
        port = get(store, "ports", port_id)
        if port["device_id"] != router_id or port["device_owner"] not in ROUTER_INTERFACE_OWNERS:
            raise NeutronError(
                404, "RouterInterfaceNotFound", f"Router {router_id} does not have an interface with id {port_id}"
            )
        if subnet_id and not any(f["subnet_id"] == subnet_id for f in port["fixed_ips"]):
            raise NeutronError(
                409, "SubnetMismatchForPort",
                f"Subnet on port {port_id} does not match the requested subnet {subnet_id}.",
            )
    elif subnet_id:
        get(store, "subnets", subnet_id)
        on_subnet = router_interfaces(store, router_id, subnet_id)
        if not on_subnet:
            raise NeutronError(
                404, "RouterInterfaceNotFoundForSubnet", f"Router {router_id} has no interface on subnet {subnet_id}"
            )
        port = on_subnet[0]
    else:
        raise bad_request("Bad router request: Either subnet_id or port_id must be specified.")
    for fixed in port["fixed_ips"]:
        _check_interface_not_needed_by_fip(store, router, fixed["subnet_id"])
    remove_record(store, "ports", port["id"])
    if port["fixed_ips"]:
        dvr.delete_snat_ports(store, router_id, subnet_id or port["fixed_ips"][0]["subnet_id"])
    touch(store, router)
    return port


def _check_interface_not_needed_by_fip(store: Store, router: dict[str, Any], subnet_id: str) -> None:
    subnet = store.os["subnets"].get(subnet_id)
    if subnet is None:
        return
    net = ipaddress.ip_network(subnet["cidr"])
    for fip in lookup(store, "floatingips", "router_id", router["id"]):
        if fip.get("fixed_ip_address") and ipaddress.ip_address(fip["fixed_ip_address"]) in net:
            raise NeutronError(
                409, "RouterInterfaceInUseByFloatingIP",
                f"Router interface for subnet {subnet_id} on router {router['id']} cannot be deleted, as it is "
                "required by one or more floating IPs.",
            )


def delete_router(store: Store, router_id: str) -> None:
    """Refused while interfaces remain; the gateway (and its port) go with the router."""
    get(store, "routers", router_id)
    if router_interfaces(store, router_id):
        attached = ", ".join(p["id"] for p in router_interfaces(store, router_id))
        raise NeutronError(409, "RouterInUse", f"Router {router_id} has ports still attached: {attached}")
    for fip in lookup(store, "floatingips", "router_id", router_id):
        disassociate_floatingip(store, fip)
    set_router_gateway(store, router_id, None)  # its port, and on DVR the SNAT and agent gateway ports
    remove_record(store, "routers", router_id)


def create_floatingip(store: Store, **attrs: Any) -> dict[str, Any]:
    network = get(store, "networks", attrs.get("floating_network_id") or "")
    record = new_record(store, attrs)
    del record["name"]
    requested = [{"ip_address": attrs["floating_ip_address"]}] if attrs.get("floating_ip_address") else None
    if attrs.get("subnet_id"):
        requested = [{"subnet_id": attrs["subnet_id"], **(requested[0] if requested else {})}]
    fip_port = create_port(
        store, network_id=network["id"], fixed_ips=requested, device_owner=FLOATINGIP_OWNER,
        device_id=record["id"], status="N/A",
    )
    fip_port["tenant_id"] = fip_port["project_id"] = ""
    record.update(
        {
            "floating_network_id": network["id"],
            "floating_ip_address": fip_port["fixed_ips"][0]["ip_address"] if fip_port["fixed_ips"] else None,
            "router_id": None,
            "port_id": None,
            "fixed_ip_address": None,
            "status": "DOWN",
            "port_details": None,
            "port_forwardings": [],
            "qos_policy_id": None,
            "qos_network_policy_id": None,
        }
    )
    apply_attrs(record, attrs, skip=("floating_network_id", "floating_ip_address", "port_id", "fixed_ip_address",
                                "subnet_id", "router_id"))
    insert(store, "floatingips", record)
    if attrs.get("port_id"):
        associate_floatingip(store, record["id"], attrs["port_id"], attrs.get("fixed_ip_address"),
                             attrs.get("router_id"))
    return record


def associate_floatingip(
    store: Store, fip_id: str, port_id: str | None, fixed_ip_address: str | None = None,
    router_id: str | None = None,
) -> dict[str, Any]:
    """Point the floating IP at a port (finding the router that reaches it), or with None, at nothing."""
    fip = get(store, "floatingips", fip_id)
    if not port_id:
        disassociate_floatingip(store, fip)
        return fip
    port = get(store, "ports", port_id)
    fixed = next((f for f in port["fixed_ips"] if fixed_ip_address in (None, f["ip_address"])), None)
    if fixed is None:
        raise bad_request(f"Port {port_id} does not have fixed ip {fixed_ip_address}.")
    router_id = router_id or _router_for(store, fip["floating_network_id"], fixed["subnet_id"])
    if router_id is None:
        subnet = store.os["subnets"].get(fixed["subnet_id"], {})
        raise NeutronError(
            404, "ExternalGatewayForFloatingIPNotFound",
            f"External network {fip['floating_network_id']} is not reachable from subnet {fixed['subnet_id']}. "
            f"Therefore, cannot associate Port {port_id} with a Floating IP." + ("" if subnet else ""),
        )
    change(
        store, "floatingips", fip, port_id=port_id, fixed_ip_address=fixed["ip_address"], router_id=router_id,
        status="ACTIVE",
        port_details={
            "name": port["name"], "network_id": port["network_id"], "mac_address": port["mac_address"],
            "admin_state_up": port["admin_state_up"], "status": port["status"], "device_id": port["device_id"],
            "device_owner": port["device_owner"],
        },
    )
    router = store.os["routers"].get(router_id) or {}
    if router.get("distributed") and port.get("binding:host_id"):
        dvr.ensure_agent_gateway_port(store, fip["floating_network_id"], port["binding:host_id"])
    return fip


def _router_for(store: Store, external_network_id: str, subnet_id: str) -> str | None:
    """A router with a gateway on the external network and an interface on the subnet."""
    for interface in lookup(store, "ports", "fixed_ips.subnet_id", subnet_id):
        if interface["device_owner"] not in ROUTER_INTERFACE_OWNERS:
            continue
        router = store.os["routers"].get(interface["device_id"])
        gateway = (router or {}).get("external_gateway_info") or {}
        if gateway.get("network_id") == external_network_id:
            return str(interface["device_id"])
    return None


def delete_floatingip(store: Store, fip_id: str) -> None:
    fip = get(store, "floatingips", fip_id)
    for port in lookup(store, "ports", "device_id", fip["id"]):
        if port["device_owner"] == FLOATINGIP_OWNER:
            remove_record(store, "ports", port["id"])
    remove_record(store, "floatingips", fip_id)
