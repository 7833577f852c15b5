"""Neutron networks, subnet pools and subnets: prefix and address allocation, and their deletes."""

from __future__ import annotations

import functools
import ipaddress
import itertools
from typing import Any

from kuryr_cleanup.sim.neutron.records import (
    AUTO_DELETE_PORT_OWNERS,
    NeutronError,
    apply_attrs,
    bad_request,
    get,
    indexes_of,
    insert,
    lookup,
    new_record,
    remove_record,
    touch,
)
from kuryr_cleanup.sim.store import Store

_segmentation_ids = itertools.count(1001)


def create_network(store: Store, **attrs: Any) -> dict[str, Any]:
    record = new_record(store, attrs)
    record.update(
        {
            "admin_state_up": True,
            "status": "ACTIVE",
            "subnets": [],
            "shared": False,
            "mtu": 1442,
            "availability_zone_hints": [],
            "availability_zones": [],
            "ipv4_address_scope": None,
            "ipv6_address_scope": None,
            "router:external": False,
            "port_security_enabled": True,
            "l2_adjacency": True,
            "qos_policy_id": None,
            "is_default": False,
            "provider:network_type": "vxlan",
            "provider:physical_network": None,
            "provider:segmentation_id": next(_segmentation_ids),
            "revision_number": 1,
        }
    )
    apply_attrs(record, attrs, skip=("subnets",))
    return insert(store, "networks", record)


def create_subnetpool(store: Store, **attrs: Any) -> dict[str, Any]:
    prefixes = [str(ipaddress.ip_network(p, strict=False)) for p in attrs.get("prefixes") or []]
    if not prefixes:
        raise bad_request("Invalid input for prefixes. Reason: the list of prefixes is empty.", "InvalidInput")
    version = ipaddress.ip_network(prefixes[0]).version
    record = new_record(store, attrs)
    record.update(
        {
            "prefixes": prefixes,
            "ip_version": version,
            "default_prefixlen": 26 if version == 4 else 64,
            "min_prefixlen": 8 if version == 4 else 64,
            "max_prefixlen": 32 if version == 4 else 128,
            "shared": False,
            "is_default": False,
            "default_quota": None,
            "address_scope_id": None,
        }
    )
    apply_attrs(record, attrs, skip=("prefixes", "ip_version"))
    for key in ("default_prefixlen", "min_prefixlen", "max_prefixlen"):
        record[key] = int(record[key])
    return insert(store, "subnetpools", record)


def _allocate_prefix(store: Store, pool: dict[str, Any], prefixlen: int) -> str:
    """The first prefix of `prefixlen` in the pool that overlaps no subnet allocated from it."""
    if not pool["min_prefixlen"] <= prefixlen <= pool["max_prefixlen"]:
        raise bad_request(
            f"Unable to allocate subnet with prefix length {prefixlen}, maximum allowed prefix is "
            f"{pool['max_prefixlen']}.",
            "MaxPrefixSubnetAllocationError",
        )
    taken = _pool_allocations(store, pool["id"])
    cursors = indexes_of(store).prefix_cursor
    for pool_prefix_text in pool["prefixes"]:
        pool_prefix = ipaddress.ip_network(pool_prefix_text)
        if pool_prefix.prefixlen > prefixlen:
            continue
        size = 1 << (pool_prefix.max_prefixlen - prefixlen)
        count = 1 << (prefixlen - pool_prefix.prefixlen)
        cursor_key = (pool["id"] + "|" + pool_prefix_text, prefixlen)
        start = cursors.get(cursor_key, 0)
        for step in itertools.chain(range(start, count), range(0, min(start, count))):
            address = int(pool_prefix.network_address) + step * size
            if not _prefix_overlaps(address, prefixlen, size, taken, pool_prefix.max_prefixlen):
                cursors[cursor_key] = step + 1
                taken.setdefault(prefixlen, set()).add(address)
                return str(ipaddress.ip_network((address, prefixlen)))
    raise NeutronError(
        409, "SubnetAllocationError", "Failed to allocate subnet: Insufficient prefix space to allocate subnet size /"
        f"{prefixlen}."
    )


def _pool_allocations(store: Store, pool_id: str) -> dict[int, set[int]]:
    """prefix length -> first addresses of the pool's subnets; cached while the subnets index lives."""
    indexes = indexes_of(store)
    subnets_index = indexes.of(store, "subnets")
    cached = indexes.pool_taken.get(pool_id)
    if cached is not None and cached[0] is subnets_index:
        return cached[1]
    taken: dict[int, set[int]] = {}
    for subnet in lookup(store, "subnets", "subnetpool_id", pool_id):
        start, length = _parsed_cidr(subnet["cidr"])
        taken.setdefault(length, set()).add(start)
    indexes.pool_taken[pool_id] = (subnets_index, taken)
    return taken


@functools.lru_cache(maxsize=65536)
def _parsed_cidr(cidr: str) -> tuple[int, int]:
    """(first address as an int, prefix length): parsing CIDRs is the hot part of prefix allocation."""
    net = ipaddress.ip_network(cidr)
    return int(net.network_address), net.prefixlen


def _prefix_overlaps(address: int, prefixlen: int, size: int, taken: dict[int, set[int]], bits: int) -> bool:
    for length, starts in taken.items():
        if length <= prefixlen:
            mask = ~((1 << (bits - length)) - 1)
            if (address & mask) in starts:
                return True
        elif any(address <= start < address + size for start in starts):
            return True
    return False


def create_subnet(store: Store, **attrs: Any) -> dict[str, Any]:
    network = get(store, "networks", attrs.get("network_id") or "")
    pool_id = attrs.get("subnetpool_id")
    if attrs.get("cidr"):
        cidr = str(ipaddress.ip_network(attrs["cidr"], strict=False))
        if pool_id:
            indexes_of(store).pool_taken.pop(pool_id, None)
    elif pool_id:
        pool = get(store, "subnetpools", pool_id)
        cidr = _allocate_prefix(store, pool, int(attrs.get("prefixlen") or pool["default_prefixlen"]))
    else:
        raise bad_request("Bad subnet request: a cidr must be specified in the absence of a subnet pool.")
    net = ipaddress.ip_network(cidr)
    hosts_first, hosts_last = net.network_address + 1, net.broadcast_address - (1 if net.version == 4 else 0)
    gateway = attrs.get("gateway_ip", str(hosts_first))
    pools = attrs.get("allocation_pools") or _pools_around_gateway(hosts_first, hosts_last, gateway)
    record = new_record(store, attrs)
    record.update(
        {
            "network_id": network["id"],
            "ip_version": net.version,
            "cidr": cidr,
            "subnetpool_id": pool_id,
            "enable_dhcp": True,
            "ipv6_ra_mode": None,
            "ipv6_address_mode": None,
            "gateway_ip": gateway,
            "allocation_pools": pools,
            "host_routes": [],
            "dns_nameservers": [],
            "dns_publish_fixed_ip": False,
            "service_types": [],
            "segment_id": None,
        }
    )
    apply_attrs(record, attrs, skip=("cidr", "ip_version", "prefixlen", "gateway_ip", "allocation_pools", "network_id"))
    insert(store, "subnets", record)
    network["subnets"].append(record["id"])
    touch(store, network)
    return record


def _pools_around_gateway(first: Any, last: Any, gateway: str | None) -> list[dict[str, str]]:
    if not gateway:
        return [{"start": str(first), "end": str(last)}]
    gw = ipaddress.ip_address(gateway)
    pools = []
    if first < gw:
        pools.append({"start": str(first), "end": str(gw - 1)})
    if gw < last:
        pools.append({"start": str(max(first, gw + 1)), "end": str(last)})
    return pools


def _used_ips(store: Store, subnet_id: str) -> set[str]:
    used = set()
    for port in lookup(store, "ports", "fixed_ips.subnet_id", subnet_id):
        for fixed in port["fixed_ips"]:
            if fixed.get("subnet_id") == subnet_id:
                used.add(fixed["ip_address"])
    return used


def _allocate_ip(store: Store, subnet: dict[str, Any]) -> str:
    """The next free address of the subnet's allocation pools, scanning on from the last one given."""
    used = _used_ips(store, subnet["id"])
    if subnet.get("gateway_ip"):
        used.add(subnet["gateway_ip"])
    ranges = [(int(ipaddress.ip_address(p["start"])), int(ipaddress.ip_address(p["end"]))) for p in
              subnet["allocation_pools"]]
    candidates = [a for lo, hi in ranges for a in (lo, hi)]
    if not candidates:
        raise _no_more_ips(subnet)
    cursors = indexes_of(store).ip_cursor
    start = cursors.get(subnet["id"], min(candidates))
    total = sum(hi - lo + 1 for lo, hi in ranges)
    tried = 0
    address = start
    lowest, highest = min(candidates), max(candidates)
    while tried < total + (highest - lowest + 1):
        if address > highest:
            address = lowest
        if any(lo <= address <= hi for lo, hi in ranges):
            text = str(ipaddress.ip_address(address))
            tried += 1
            if text not in used:
                cursors[subnet["id"]] = address + 1
                return text
        address += 1
        if tried >= total:
            break
    raise _no_more_ips(subnet)


def _no_more_ips(subnet: dict[str, Any]) -> NeutronError:
    return NeutronError(
        409, "IpAddressGenerationFailure", f"No more IP addresses available on network {subnet['network_id']}."
    )


def resolve_fixed_ips(
    store: Store, network: dict[str, Any], requested: list[dict[str, Any]] | None
) -> list[dict[str, str]]:
    """Resolve requested fixed IPs (subnet and/or address) or allocate one from the first IPv4 subnet."""
    subnets = [store.os["subnets"][s] for s in network["subnets"] if s in store.os["subnets"]]
    if requested is None:
        subnets.sort(key=lambda s: s["ip_version"])
        return [{"subnet_id": subnets[0]["id"], "ip_address": _allocate_ip(store, subnets[0])}] if subnets else []
    result = []
    for wanted in requested:
        subnet_id = wanted.get("subnet_id")
        address = wanted.get("ip_address")
        if subnet_id is not None:
            subnet = get(store, "subnets", subnet_id)
            if subnet["network_id"] != network["id"]:
                raise bad_request(
                    f"Invalid input for operation: Failed to create port on network {network['id']}, because "
                    f"fixed_ips included invalid subnet {subnet_id}.", "InvalidInput"
                )
        elif address is not None:
            matching = [s for s in subnets if ipaddress.ip_address(address) in ipaddress.ip_network(s["cidr"])]
            if not matching:
                raise bad_request(
                    f"IP address {address} is not a valid IP for any of the subnets on the specified network.",
                    "InvalidIpForNetwork",
                )
            subnet = matching[0]
        else:
            continue
        if address is None:
            address = _allocate_ip(store, subnet)
        elif lookup(store, "ports", "fixed_ips.address", (subnet["id"], address)):
            raise NeutronError(
                409, "IpAddressAlreadyAllocated",
                f"IP address {address} already allocated in subnet {subnet['id']}",
            )
        result.append({"subnet_id": subnet["id"], "ip_address": address})
    return result


def delete_subnet(store: Store, subnet_id: str) -> None:
    subnet = get(store, "subnets", subnet_id)
    for port in lookup(store, "ports", "fixed_ips.subnet_id", subnet_id):
        if port["device_owner"] not in AUTO_DELETE_PORT_OWNERS:
            raise NeutronError(
                409, "SubnetInUse",
                f"Unable to complete operation on subnet {subnet_id}: One or more ports have an IP allocation "
                "from this subnet.",
            )
    _remove_subnet(store, subnet)


def _remove_subnet(store: Store, subnet: dict[str, Any]) -> None:
    for port in lookup(store, "ports", "fixed_ips.subnet_id", subnet["id"]):
        remove_record(store, "ports", port["id"])
    network = store.os["networks"].get(subnet["network_id"])
    if network is not None and subnet["id"] in network["subnets"]:
        network["subnets"].remove(subnet["id"])
        touch(store, network)
    remove_record(store, "subnets", subnet["id"])
    indexes_of(store).ip_cursor.pop(subnet["id"], None)
    if subnet.get("subnetpool_id"):
        # Freed prefixes are handed out again, first fit, like Neutron's allocator does.
        indexes_of(store).pool_taken.pop(subnet["subnetpool_id"], None)
        cursors = indexes_of(store).prefix_cursor
        for key in [k for k in cursors if k[0].startswith(subnet["subnetpool_id"] + "|")]:
            del cursors[key]


def delete_network(store: Store, network_id: str) -> None:
    """Refused while the network has ports other than those Neutron deletes itself (DHCP, OVN metadata,
    DVR agent gateway); its subnets go with it."""
    network = get(store, "networks", network_id)
    in_use = {p["id"] for p in lookup(store, "ports", "network_id", network_id)
              if p["device_owner"] not in AUTO_DELETE_PORT_OWNERS}
    if in_use:
        # Neutron names them in creation order (its SQL has no ORDER BY); the store keeps creation order.
        in_use_ordered = [pid for pid in store.os["ports"] if pid in in_use]
        raise NeutronError(
            409, "NetworkInUse",
            f"Unable to complete operation on network {network_id}. There are one or more ports still in use "
            f"on the network, id for these ports is: {','.join(in_use_ordered)}.",
        )
    for port in lookup(store, "ports", "network_id", network_id):
        remove_record(store, "ports", port["id"])
    for subnet in lookup(store, "subnets", "network_id", network_id):
        _remove_subnet(store, subnet)
    remove_record(store, "networks", network["id"])


def delete_subnetpool(store: Store, pool_id: str) -> None:
    get(store, "subnetpools", pool_id)
    if lookup(store, "subnets", "subnetpool_id", pool_id):
        raise NeutronError(
            400, "SubnetPoolDeleteError", "Unable to delete subnet pool: Subnet pool has existing allocations."
        )
    remove_record(store, "subnetpools", pool_id)
