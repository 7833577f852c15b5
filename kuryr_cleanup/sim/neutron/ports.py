"""Neutron ports and trunks, and what deleting a port is refused for."""

from __future__ import annotations

import random
from typing import Any

from kuryr_cleanup.sim.neutron.networks import resolve_fixed_ips
from kuryr_cleanup.sim.neutron.records import (
    FLOATINGIP_OWNER,
    L3_OWNERS,
    SUBPORT_OWNER,
    NeutronError,
    apply_attrs,
    change,
    get,
    insert,
    lookup,
    new_record,
    remove_record,
)
from kuryr_cleanup.sim.neutron.security_groups import ensure_default_security_group
from kuryr_cleanup.sim.store import Store

_mac_rng = random.Random()


def new_mac(store: Store) -> str:
    value = _mac_rng.getrandbits(24)
    return f"fa:16:3e:{value >> 16:02x}:{(value >> 8) & 0xFF:02x}:{value & 0xFF:02x}"


def create_port(store: Store, **attrs: Any) -> dict[str, Any]:
    network = get(store, "networks", attrs.get("network_id") or "")
    record = new_record(store, attrs)
    owner = attrs.get("device_owner") or ""
    security = attrs.get("port_security_enabled", network.get("port_security_enabled", True))
    groups = attrs.get("security_groups")
    if groups is None:
        groups = (
            [ensure_default_security_group(store, record["project_id"])["id"]]
            if security and not owner.startswith("network:") else []
        )
    for group_id in groups:
        get(store, "security_groups", group_id)
    record.update(
        {
            "network_id": network["id"],
            "admin_state_up": True,
            "mac_address": attrs.get("mac_address") or new_mac(store),
            "fixed_ips": resolve_fixed_ips(store, network, attrs.get("fixed_ips")),
            "device_id": "",
            "device_owner": "",
            "status": "DOWN",
            "allowed_address_pairs": [],
            "extra_dhcp_opts": [],
            "security_groups": list(groups),
            "port_security_enabled": bool(security),
            "binding:host_id": "",
            "binding:profile": {},
            "binding:vif_details": {},
            "binding:vif_type": "unbound",
            "binding:vnic_type": "normal",
            "qos_policy_id": None,
            "qos_network_policy_id": None,
            "resource_request": None,
            "ip_allocation": "immediate",
            "propagate_uplink_status": False,
            "dns_name": "",
            "dns_assignment": [],
            "revision_number": 1,
        }
    )
    apply_attrs(record, attrs, skip=("network_id", "fixed_ips", "security_groups", "mac_address"))
    if record["binding:host_id"]:
        record["binding:vif_type"] = "ovs"
    return insert(store, "ports", record)


def create_trunk(store: Store, **attrs: Any) -> dict[str, Any]:
    parent = get(store, "ports", attrs.get("port_id") or "")
    if lookup(store, "trunks", "port_id", parent["id"]) or lookup(store, "trunks", "sub_ports.port_id", parent["id"]):
        raise NeutronError(409, "TrunkPortInUse", f"Port {parent['id']} is in use by another trunk.")
    record = new_record(store, attrs)
    record.update({"port_id": parent["id"], "admin_state_up": True, "status": "DOWN", "sub_ports": []})
    sub_ports = attrs.get("sub_ports") or []
    apply_attrs(record, attrs, skip=("port_id", "sub_ports"))
    insert(store, "trunks", record)
    if sub_ports:
        add_subports(store, record["id"], sub_ports)
    _sync_trunk_details(store, record)
    return record


def _sync_trunk_details(store: Store, trunk: dict[str, Any]) -> None:
    """Keep the parent port's `trunk_details` (what a port show answers for a trunk parent) current."""
    parent = store.os["ports"].get(trunk["port_id"])
    if parent is None:
        return
    details = []
    for sub in trunk["sub_ports"]:
        port = store.os["ports"].get(sub["port_id"])
        details.append({**sub, "mac_address": port["mac_address"] if port else None})
    parent["trunk_details"] = {"trunk_id": trunk["id"], "sub_ports": details}


def add_subports(store: Store, trunk_id: str, sub_ports: list[dict[str, Any]]) -> dict[str, Any]:
    trunk = get(store, "trunks", trunk_id)
    new = []
    for sub in sub_ports:
        port = get(store, "ports", sub.get("port_id") or "")
        if lookup(store, "trunks", "port_id", port["id"]) or lookup(store, "trunks", "sub_ports.port_id", port["id"]):
            raise NeutronError(409, "PortInUse" if port["device_id"] else "TrunkPortInUse",
                               f"Port {port['id']} is in use by another trunk.")
        seg_type = sub.get("segmentation_type", "vlan")
        seg_id = sub.get("segmentation_id")
        if any(s["segmentation_type"] == seg_type and s["segmentation_id"] == seg_id for s in trunk["sub_ports"]):
            raise NeutronError(
                409, "DuplicateSubPort",
                f"segmentation_type {seg_type} and segmentation_id {seg_id} already in use on trunk {trunk_id}.",
            )
        new.append({"port_id": port["id"], "segmentation_type": seg_type, "segmentation_id": seg_id})
    change(store, "trunks", trunk, sub_ports=[*trunk["sub_ports"], *new])
    for sub in new:
        change(store, "ports", store.os["ports"][sub["port_id"]], device_owner=SUBPORT_OWNER, device_id=trunk_id)
    _sync_trunk_details(store, trunk)
    return trunk


def remove_subports(store: Store, trunk_id: str, sub_ports: list[dict[str, Any]]) -> dict[str, Any]:
    trunk = get(store, "trunks", trunk_id)
    current = {s["port_id"] for s in trunk["sub_ports"]}
    removing = [s.get("port_id") or "" for s in sub_ports]
    for port_id in removing:
        if port_id not in current:
            raise NeutronError(
                404, "SubPortNotFound", f"SubPort {port_id} on trunk {trunk_id} could not be found."
            )
    change(store, "trunks", trunk, sub_ports=[s for s in trunk["sub_ports"] if s["port_id"] not in removing])
    for port_id in removing:
        _release_subport(store, port_id)
    _sync_trunk_details(store, trunk)
    return trunk


def _release_subport(store: Store, port_id: str) -> None:
    # Neutron's trunk plugin hands a removed subport back as a plain port: no owner, no device.
    port = store.os["ports"].get(port_id)
    if port is not None and port["device_owner"] == SUBPORT_OWNER:
        change(store, "ports", port, device_owner="", device_id="")


def delete_port(store: Store, port_id: str, l3_port_check: bool = True) -> None:
    """DELETE /v2.0/ports/<id>. `l3_port_check=False` is the L3 service removing its own port."""
    port = get(store, "ports", port_id)
    for trunk in lookup(store, "trunks", "port_id", port_id):
        if trunk["port_id"] == port_id:
            raise NeutronError(
                409, "PortInUseAsTrunkParent", f"Port {port_id} is currently a parent port for trunk {trunk['id']}."
            )
    for trunk in lookup(store, "trunks", "sub_ports.port_id", port_id):
        raise NeutronError(409, "PortInUseAsSubPort", f"Port {port_id} is currently a subport for trunk {trunk['id']}.")
    if l3_port_check and port["device_owner"] in L3_OWNERS and _l3_owner_exists(store, port):
        raise NeutronError(
            409, "ServicePortInUse",
            f"Port {port_id} cannot be deleted directly via the port API: has device owner {port['device_owner']}.",
        )
    for fip in lookup(store, "floatingips", "port_id", port_id):
        disassociate_floatingip(store, fip)
    remove_record(store, "ports", port_id)


def _l3_owner_exists(store: Store, port: dict[str, Any]) -> bool:
    collection = "floatingips" if port["device_owner"] == FLOATINGIP_OWNER else "routers"
    return port["device_id"] in store.os[collection]


def delete_trunk(store: Store, trunk_id: str) -> None:
    """Allowed with subports: they become plain ports again."""
    trunk = get(store, "trunks", trunk_id)
    for sub in trunk["sub_ports"]:
        _release_subport(store, sub["port_id"])
    parent = store.os["ports"].get(trunk["port_id"])
    if parent is not None:
        parent.pop("trunk_details", None)
    remove_record(store, "trunks", trunk_id)


def disassociate_floatingip(store: Store, fip: dict[str, Any]) -> None:
    """Point the floating IP at nothing (its port went, or the user unset it)."""
    change(store, "floatingips", fip, port_id=None, fixed_ip_address=None, router_id=None, status="DOWN",
           port_details=None)
