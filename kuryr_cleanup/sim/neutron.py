"""Neutron v2.0: the records, the rules real Neutron enforces, and the HTTP API under /networking.

The model functions (`create_port`, `delete_network`, ...) are what the scenario generator, the other
simulated APIs (Octavia creates its VIP ports here) and the HTTP handlers all call, so a record made
by the generator is the same record a POST would make. The caller holds `store.lock`.

Real Neutron's behaviour that the cleanup tool depends on is reproduced on purpose, with the real
error types and messages (neutron-lib exceptions, checked against a Neutron 29 server): what may be
deleted in which order (NetworkInUse, SubnetInUse, PortInUseAsSubPort, ...), what is allowed
(a trunk with subports, a router with its gateway, a port with a floating IP), tag filters, and the
500 a real server answers when `tags` and `tags-any` are combined in one query.

Lookups that a 2,000-namespace scenario (20,000+ ports) makes hot (ports by network, by subnet, by
device, records by tag) go through indexes kept by the model functions; see `_Indexes`.
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import json
import math
import random
import re
import weakref
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

from kuryr_cleanup.sim import keystone
from kuryr_cleanup.sim.http import ApiError, Request, Response, Service
from kuryr_cleanup.sim.store import Store, iso_now, new_id

# Device owners of ports that belong to the L3 service: the port API refuses to delete them
# (ServicePortInUse); they go with their router interface, gateway or floating IP.
ROUTER_INTERFACE_OWNERS = (
    "network:router_interface",
    "network:router_interface_distributed",
    "network:ha_router_replicated_interface",
)
ROUTER_GATEWAY_OWNER = "network:router_gateway"
FLOATINGIP_OWNER = "network:floatingip"
L3_OWNERS = (*ROUTER_INTERFACE_OWNERS, ROUTER_GATEWAY_OWNER, FLOATINGIP_OWNER)
DHCP_OWNER = "network:dhcp"
SUBPORT_OWNER = "trunk:subport"

# Collections whose records carry standard attributes, hence tags (the `standard-attr-tag` extension).
TAGGABLE = ("networks", "subnets", "ports", "routers", "subnetpools", "security_groups", "floatingips", "trunks")


class NeutronError(ApiError):
    """An error as Neutron answers it: `{"NeutronError": {"type", "message", "detail"}}`."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(status, {"NeutronError": {"type": error_type, "message": message, "detail": ""}})
        self.error_type = error_type
        self.message = message


# The NotFound type and message for each collection, as neutron-lib words them.
_NOT_FOUND: dict[str, tuple[str, str]] = {
    "networks": ("NetworkNotFound", "Network {id} could not be found."),
    "subnets": ("SubnetNotFound", "Subnet {id} could not be found."),
    "ports": ("PortNotFound", "Port {id} could not be found."),
    "routers": ("RouterNotFound", "Router {id} could not be found"),  # no final period, as on Neutron 29
    "trunks": ("TrunkNotFound", "Trunk {id} could not be found."),
    "security_groups": ("SecurityGroupNotFound", "Security group {id} does not exist"),
    "security_group_rules": ("SecurityGroupRuleNotFound", "Security group rule {id} does not exist"),
    "subnetpools": ("SubnetPoolNotFound", "Subnet pool {id} could not be found."),
    "floatingips": ("FloatingIPNotFound", "Floating IP {id} could not be found"),
}


def not_found(collection: str, rid: str) -> NeutronError:
    error_type, message = _NOT_FOUND[collection]
    return NeutronError(404, error_type, message.format(id=rid))


def bad_request(message: str, error_type: str = "HTTPBadRequest") -> NeutronError:
    return NeutronError(400, error_type, message)


# --------------------------------------------------------------------------------------------------
# Indexes
# --------------------------------------------------------------------------------------------------

KeyFunction = Callable[[dict[str, Any]], Iterable[Any]]


def _scalar(name: str) -> KeyFunction:
    def keys(record: dict[str, Any]) -> Iterable[Any]:
        value = record.get(name)
        return (value,) if value is not None else ()

    return keys


def _each(name: str, sub: str | None = None) -> KeyFunction:
    def keys(record: dict[str, Any]) -> Iterable[Any]:
        values = record.get(name) or ()
        if sub is None:
            return tuple(values)
        return tuple(v.get(sub) for v in values if isinstance(v, dict))

    return keys


def _fixed_addresses(record: dict[str, Any]) -> Iterable[Any]:
    return [(f.get("subnet_id"), f.get("ip_address")) for f in record.get("fixed_ips") or []]


# collection -> index name -> the keys a record is filed under. Index names are query attributes
# ("network_id") or pseudo attributes ("fixed_ips.subnet_id", "sub_ports.port_id").
_INDEXED: dict[str, dict[str, KeyFunction]] = {
    "networks": {},
    "subnets": {"network_id": _scalar("network_id"), "subnetpool_id": _scalar("subnetpool_id")},
    "ports": {
        "network_id": _scalar("network_id"),
        "device_id": _scalar("device_id"),
        "fixed_ips.subnet_id": _each("fixed_ips", "subnet_id"),
        "security_groups": _each("security_groups"),
        # (subnet_id, ip_address) pairs: "is this address taken" without scanning the subnet's ports.
        "fixed_ips.address": _fixed_addresses,
    },
    "routers": {},
    "trunks": {"port_id": _scalar("port_id"), "sub_ports.port_id": _each("sub_ports", "port_id")},
    "security_groups": {},
    "security_group_rules": {"security_group_id": _scalar("security_group_id")},
    "subnetpools": {},
    "floatingips": {"port_id": _scalar("port_id"), "router_id": _scalar("router_id")},
}
for _name in TAGGABLE:
    _INDEXED[_name]["tags"] = _each("tags")
NEUTRON_COLLECTIONS = tuple(_INDEXED)


class _CollectionIndex:
    """Index tables of one collection plus the insertion order of its records.

    `source` and `expected_len` detect a collection changed behind this module's back: a snapshot
    load replaces the dicts (the index is rebuilt), another module's `store.remove` or `store.add`
    changes its size (the index is repaired). Lookups re-check every candidate against the filters,
    so an index may only ever be too wide, never too narrow.
    """

    def __init__(self, collection: str, records: dict[str, dict[str, Any]]) -> None:
        self.collection = collection
        self.source = records
        self.tables: dict[str, dict[Any, dict[str, None]]] = {name: {} for name in _INDEXED[collection]}
        self.order: dict[str, int] = {}
        # The record each id was filed with, so a record removed behind our back can be unfiled.
        self.filed: dict[str, dict[str, Any]] = {}
        self._seq = itertools.count()
        for record in records.values():
            self.add(record)

    @property
    def expected_len(self) -> int:
        return len(self.order)

    def repair(self) -> None:
        """Catch up with records added or removed with `store.add`/`store.remove` directly."""
        for rid in [rid for rid in self.order if rid not in self.source]:
            self.discard(self.filed[rid])
        for rid, record in self.source.items():
            if rid not in self.order:
                self.add(record)

    def add(self, record: dict[str, Any]) -> None:
        rid = record["id"]
        self.order.setdefault(rid, next(self._seq))
        self.filed[rid] = record
        for name, keys in _INDEXED[self.collection].items():
            table = self.tables[name]
            for key in keys(record):
                if _hashable(key):
                    table.setdefault(key, {})[rid] = None

    def discard(self, record: dict[str, Any], forget: bool = True) -> None:
        rid = record["id"]
        for name, keys in _INDEXED[self.collection].items():
            table = self.tables[name]
            for key in keys(record):
                if _hashable(key):
                    ids = table.get(key)
                    if ids is not None:
                        ids.pop(rid, None)
                        if not ids:
                            del table[key]
        if forget:
            self.order.pop(rid, None)
            self.filed.pop(rid, None)

    def ids(self, name: str, key: Any) -> Iterable[str]:
        return self.tables[name].get(key, {}).keys()


def _hashable(key: Any) -> bool:
    return isinstance(key, (str, int, bool, tuple))


class _Indexes:
    """All of one store's Neutron indexes, plus allocation cursors (next free IP, next free prefix)."""

    def __init__(self) -> None:
        self.by_collection: dict[str, _CollectionIndex] = {}
        self.ip_cursor: dict[str, int] = {}
        self.prefix_cursor: dict[tuple[str, int], int] = {}
        self.pool_taken: dict[str, tuple[_CollectionIndex, dict[int, set[int]]]] = {}

    def of(self, store: Store, collection: str) -> _CollectionIndex:
        records = store.os[collection]
        index = self.by_collection.get(collection)
        if index is None or index.source is not records:
            index = _CollectionIndex(collection, records)
            self.by_collection[collection] = index
        elif index.expected_len != len(records):
            index.repair()
        return index


_STORE_INDEXES: weakref.WeakKeyDictionary[Store, _Indexes] = weakref.WeakKeyDictionary()


def _indexes(store: Store) -> _Indexes:
    indexes = _STORE_INDEXES.get(store)
    if indexes is None:
        indexes = _Indexes()
        _STORE_INDEXES[store] = indexes
    return indexes


def _index(store: Store, collection: str) -> _CollectionIndex:
    return _indexes(store).of(store, collection)


def _insert(store: Store, collection: str, record: dict[str, Any]) -> dict[str, Any]:
    index = _index(store, collection)
    store.add(collection, record)
    index.add(record)
    return record


def _delete(store: Store, collection: str, rid: str) -> dict[str, Any] | None:
    index = _index(store, collection)
    record = store.remove(collection, rid)
    if record is not None:
        index.discard(record)
    return record


def _change(store: Store, collection: str, record: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """Change fields of a stored record, keeping the indexes right and bumping the revision."""
    index = _index(store, collection)
    index.discard(record, forget=False)
    record.update(changes)
    index.add(record)
    _touch(store, record)
    return record


def _touch(store: Store, record: dict[str, Any]) -> None:
    record["updated_at"] = iso_now(store.clock.now())
    record["revision_number"] = int(record.get("revision_number", 0)) + 1


def lookup(store: Store, collection: str, attribute: str, value: Any) -> list[dict[str, Any]]:
    """Records whose indexed `attribute` holds `value` (e.g. ports by "network_id"), in store order."""
    index = _index(store, collection)
    records = store.os[collection]
    return [records[rid] for rid in list(index.ids(attribute, value)) if rid in records]


def get(store: Store, collection: str, rid: str) -> dict[str, Any]:
    """The record, or the collection's NotFound error."""
    record = store.os[collection].get(rid)
    if record is None:
        raise not_found(collection, rid)
    return record


# --------------------------------------------------------------------------------------------------
# Model functions: create
# --------------------------------------------------------------------------------------------------


def _base(store: Store, attrs: dict[str, Any]) -> dict[str, Any]:
    """The fields every standard-attribute record has."""
    now = iso_now(store.clock.now())
    project_id = attrs.get("project_id") or attrs.get("tenant_id") or store.project_id
    return {
        "id": attrs.get("id") or new_id(),
        "name": "",
        "tenant_id": project_id,
        "project_id": project_id,
        "description": "",
        "tags": [],
        "created_at": now,
        "updated_at": now,
        "revision_number": 0,
    }


def _apply(record: dict[str, Any], attrs: dict[str, Any], skip: Iterable[str] = ()) -> None:
    """Copy the caller's create attributes over the defaults (ids and derived fields excepted)."""
    skipped = {"id", "tenant_id", "project_id", *skip}
    for key, value in attrs.items():
        if key not in skipped:
            record[key] = value
    record["tags"] = _clean_tags(record.get("tags") or [])


def _clean_tags(tags: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(str(t) for t in tags))


_segmentation_ids = itertools.count(1001)


def create_network(store: Store, **attrs: Any) -> dict[str, Any]:
    record = _base(store, attrs)
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
    _apply(record, attrs, skip=("subnets",))
    return _insert(store, "networks", record)


def create_subnetpool(store: Store, **attrs: Any) -> dict[str, Any]:
    prefixes = [str(ipaddress.ip_network(p, strict=False)) for p in attrs.get("prefixes") or []]
    if not prefixes:
        raise bad_request("Invalid input for prefixes. Reason: the list of prefixes is empty.", "InvalidInput")
    version = ipaddress.ip_network(prefixes[0]).version
    record = _base(store, attrs)
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
    _apply(record, attrs, skip=("prefixes", "ip_version"))
    for key in ("default_prefixlen", "min_prefixlen", "max_prefixlen"):
        record[key] = int(record[key])
    return _insert(store, "subnetpools", record)


def _allocate_prefix(store: Store, pool: dict[str, Any], prefixlen: int) -> str:
    """The first prefix of `prefixlen` in the pool that overlaps no subnet allocated from it."""
    if not pool["min_prefixlen"] <= prefixlen <= pool["max_prefixlen"]:
        raise bad_request(
            f"Unable to allocate subnet with prefix length {prefixlen}, maximum allowed prefix is "
            f"{pool['max_prefixlen']}.",
            "MaxPrefixSubnetAllocationError",
        )
    taken = _pool_allocations(store, pool["id"])
    cursors = _indexes(store).prefix_cursor
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
    indexes = _indexes(store)
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
            _indexes(store).pool_taken.pop(pool_id, None)
    elif pool_id:
        pool = get(store, "subnetpools", pool_id)
        cidr = _allocate_prefix(store, pool, int(attrs.get("prefixlen") or pool["default_prefixlen"]))
    else:
        raise bad_request("Bad subnet request: a cidr must be specified in the absence of a subnet pool.")
    net = ipaddress.ip_network(cidr)
    hosts_first, hosts_last = net.network_address + 1, net.broadcast_address - (1 if net.version == 4 else 0)
    gateway = attrs.get("gateway_ip", str(hosts_first))
    pools = attrs.get("allocation_pools") or _pools_around_gateway(hosts_first, hosts_last, gateway)
    record = _base(store, attrs)
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
    _apply(record, attrs, skip=("cidr", "ip_version", "prefixlen", "gateway_ip", "allocation_pools", "network_id"))
    _insert(store, "subnets", record)
    network["subnets"].append(record["id"])
    _touch(store, network)
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
    cursors = _indexes(store).ip_cursor
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


_mac_rng = random.Random()


def _new_mac(store: Store) -> str:
    value = _mac_rng.getrandbits(24)
    return f"fa:16:3e:{value >> 16:02x}:{(value >> 8) & 0xFF:02x}:{value & 0xFF:02x}"


def _fixed_ips(store: Store, network: dict[str, Any], requested: list[dict[str, Any]] | None) -> list[dict[str, str]]:
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


def ensure_default_security_group(store: Store, project_id: str | None = None) -> dict[str, Any]:
    """The project's `default` group, created on first need as real Neutron does."""
    project_id = project_id or store.project_id
    for group in store.os["security_groups"].values():
        if group["name"] == "default" and group["project_id"] == project_id:
            return group
    return create_security_group(store, name="default", project_id=project_id,
                                 description="Default security group")


def create_port(store: Store, **attrs: Any) -> dict[str, Any]:
    network = get(store, "networks", attrs.get("network_id") or "")
    record = _base(store, attrs)
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
            "mac_address": attrs.get("mac_address") or _new_mac(store),
            "fixed_ips": _fixed_ips(store, network, attrs.get("fixed_ips")),
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
    _apply(record, attrs, skip=("network_id", "fixed_ips", "security_groups", "mac_address"))
    if record["binding:host_id"]:
        record["binding:vif_type"] = "ovs"
    return _insert(store, "ports", record)


def create_router(store: Store, **attrs: Any) -> dict[str, Any]:
    record = _base(store, attrs)
    record.update(
        {
            "admin_state_up": True,
            "status": "ACTIVE",
            "external_gateway_info": None,
            "availability_zone_hints": [],
            "availability_zones": [],
            "distributed": False,
            "ha": False,
            "flavor_id": None,
            "routes": [],
            "enable_ndp_proxy": None,
            "revision_number": 1,
        }
    )
    gateway = attrs.get("external_gateway_info")
    _apply(record, attrs, skip=("external_gateway_info",))
    _insert(store, "routers", record)
    if gateway:
        set_router_gateway(store, record["id"], gateway)
    return record


def set_router_gateway(store: Store, router_id: str, gateway: dict[str, Any] | None) -> dict[str, Any]:
    """Set, change or (with None / {}) clear the router's external gateway and its gateway port."""
    router = get(store, "routers", router_id)
    for port in lookup(store, "ports", "device_id", router_id):
        if port["device_owner"] == ROUTER_GATEWAY_OWNER:
            _delete(store, "ports", port["id"])
    if not gateway or not gateway.get("network_id"):
        router["external_gateway_info"] = None
        _touch(store, router)
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
    _touch(store, router)
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
        _change(store, "ports", port, device_owner=ROUTER_INTERFACE_OWNERS[0], device_id=router["id"],
                status="ACTIVE")
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
        device_owner=ROUTER_INTERFACE_OWNERS[0],
        device_id=router["id"],
        project_id=router["project_id"],
        status="ACTIVE",
    )
    _touch(store, router)
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


def create_trunk(store: Store, **attrs: Any) -> dict[str, Any]:
    parent = get(store, "ports", attrs.get("port_id") or "")
    if lookup(store, "trunks", "port_id", parent["id"]) or lookup(store, "trunks", "sub_ports.port_id", parent["id"]):
        raise NeutronError(409, "TrunkPortInUse", f"Port {parent['id']} is in use by another trunk.")
    record = _base(store, attrs)
    record.update({"port_id": parent["id"], "admin_state_up": True, "status": "DOWN", "sub_ports": []})
    sub_ports = attrs.get("sub_ports") or []
    _apply(record, attrs, skip=("port_id", "sub_ports"))
    _insert(store, "trunks", record)
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
    _change(store, "trunks", trunk, sub_ports=[*trunk["sub_ports"], *new])
    for sub in new:
        _change(store, "ports", store.os["ports"][sub["port_id"]], device_owner=SUBPORT_OWNER, device_id=trunk_id)
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
    _change(store, "trunks", trunk, sub_ports=[s for s in trunk["sub_ports"] if s["port_id"] not in removing])
    for port_id in removing:
        _release_subport(store, port_id)
    _sync_trunk_details(store, trunk)
    return trunk


def _release_subport(store: Store, port_id: str) -> None:
    # Neutron's trunk plugin hands a removed subport back as a plain port: no owner, no device.
    port = store.os["ports"].get(port_id)
    if port is not None and port["device_owner"] == SUBPORT_OWNER:
        _change(store, "ports", port, device_owner="", device_id="")


def _default_rules(store: Store, group: dict[str, Any]) -> list[dict[str, Any]]:
    rules = [
        {"direction": "egress", "ethertype": "IPv4"},
        {"direction": "egress", "ethertype": "IPv6"},
    ]
    if group["name"] == "default":
        rules += [
            {"direction": "ingress", "ethertype": "IPv4", "remote_group_id": group["id"]},
            {"direction": "ingress", "ethertype": "IPv6", "remote_group_id": group["id"]},
        ]
    return rules


def create_security_group(store: Store, **attrs: Any) -> dict[str, Any]:
    record = _base(store, attrs)
    record.update({"security_group_rules": [], "stateful": True, "shared": False, "revision_number": 1})
    _apply(record, attrs, skip=("security_group_rules",))
    _insert(store, "security_groups", record)
    for rule in _default_rules(store, record):
        create_security_group_rule(store, security_group_id=record["id"], project_id=record["project_id"], **rule)
    return record


def create_security_group_rule(store: Store, **attrs: Any) -> dict[str, Any]:
    group = get(store, "security_groups", attrs.get("security_group_id") or "")
    record = _base(store, attrs)
    del record["name"], record["tags"]
    record.update(
        {
            "security_group_id": group["id"],
            "direction": "ingress",
            "ethertype": "IPv4",
            "protocol": None,
            "port_range_min": None,
            "port_range_max": None,
            "remote_ip_prefix": None,
            "remote_group_id": None,
            "remote_address_group_id": None,
            "normalized_cidr": None,
            "belongs_to_default_sg": group["name"] == "default",
        }
    )
    _apply(record, attrs, skip=("security_group_id", "tags"))
    record.pop("tags", None)
    if record["remote_ip_prefix"]:
        record["normalized_cidr"] = str(ipaddress.ip_network(record["remote_ip_prefix"], strict=False))
    _insert(store, "security_group_rules", record)
    group["security_group_rules"].append(dict(record))
    _touch(store, group)
    return record


def create_floatingip(store: Store, **attrs: Any) -> dict[str, Any]:
    network = get(store, "networks", attrs.get("floating_network_id") or "")
    record = _base(store, attrs)
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
    _apply(record, attrs, skip=("floating_network_id", "floating_ip_address", "port_id", "fixed_ip_address",
                                "subnet_id", "router_id"))
    _insert(store, "floatingips", record)
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
        _change(store, "floatingips", fip, port_id=None, fixed_ip_address=None, router_id=None, status="DOWN",
                port_details=None)
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
    _change(
        store, "floatingips", fip, port_id=port_id, fixed_ip_address=fixed["ip_address"], router_id=router_id,
        status="ACTIVE",
        port_details={
            "name": port["name"], "network_id": port["network_id"], "mac_address": port["mac_address"],
            "admin_state_up": port["admin_state_up"], "status": port["status"], "device_id": port["device_id"],
            "device_owner": port["device_owner"],
        },
    )
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


def set_tags(store: Store, collection: str, rid: str, tags: Iterable[str]) -> list[str]:
    """Replace the record's tags (PUT /v2.0/<collection>/<id>/tags)."""
    record = get(store, collection, rid)
    _change(store, collection, record, tags=_clean_tags(tags))
    return list(record["tags"])


def add_tag(store: Store, collection: str, rid: str, tag: str) -> None:
    record = get(store, collection, rid)
    if tag not in record["tags"]:
        _change(store, collection, record, tags=[*record["tags"], tag])


def remove_tag(store: Store, collection: str, rid: str, tag: str) -> None:
    record = get(store, collection, rid)
    if tag not in record["tags"]:
        raise NeutronError(
            404, "TagNotFound", f"Tag {tag} could not be found."
        )
    _change(store, collection, record, tags=[t for t in record["tags"] if t != tag])


_SINGULAR = {
    "networks": "network",
    "subnets": "subnet",
    "ports": "port",
    "routers": "router",
    "trunks": "trunk",
    "security_groups": "security_group",
    "security_group_rules": "security_group_rule",
    "subnetpools": "subnetpool",
    "floatingips": "floatingip",
}


# --------------------------------------------------------------------------------------------------
# Model functions: delete (with the checks real Neutron makes)
# --------------------------------------------------------------------------------------------------


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
        associate_floatingip(store, fip["id"], None)
    _delete(store, "ports", port_id)


def _l3_owner_exists(store: Store, port: dict[str, Any]) -> bool:
    collection = "floatingips" if port["device_owner"] == FLOATINGIP_OWNER else "routers"
    return port["device_id"] in store.os[collection]


def delete_subnet(store: Store, subnet_id: str) -> None:
    subnet = get(store, "subnets", subnet_id)
    for port in lookup(store, "ports", "fixed_ips.subnet_id", subnet_id):
        if port["device_owner"] != DHCP_OWNER:
            raise NeutronError(
                409, "SubnetInUse",
                f"Unable to complete operation on subnet {subnet_id}: One or more ports have an IP allocation "
                "from this subnet.",
            )
    _remove_subnet(store, subnet)


def _remove_subnet(store: Store, subnet: dict[str, Any]) -> None:
    for port in lookup(store, "ports", "fixed_ips.subnet_id", subnet["id"]):
        _delete(store, "ports", port["id"])
    network = store.os["networks"].get(subnet["network_id"])
    if network is not None and subnet["id"] in network["subnets"]:
        network["subnets"].remove(subnet["id"])
        _touch(store, network)
    _delete(store, "subnets", subnet["id"])
    _indexes(store).ip_cursor.pop(subnet["id"], None)
    if subnet.get("subnetpool_id"):
        # Freed prefixes are handed out again, first fit, like Neutron's allocator does.
        _indexes(store).pool_taken.pop(subnet["subnetpool_id"], None)
        cursors = _indexes(store).prefix_cursor
        for key in [k for k in cursors if k[0].startswith(subnet["subnetpool_id"] + "|")]:
            del cursors[key]


def delete_network(store: Store, network_id: str) -> None:
    """Refused while the network has ports other than DHCP's; its subnets go with it."""
    network = get(store, "networks", network_id)
    in_use = {p["id"] for p in lookup(store, "ports", "network_id", network_id) if p["device_owner"] != DHCP_OWNER}
    if in_use:
        # Neutron names them in creation order (its SQL has no ORDER BY); the store keeps creation order.
        in_use_ordered = [pid for pid in store.os["ports"] if pid in in_use]
        raise NeutronError(
            409, "NetworkInUse",
            f"Unable to complete operation on network {network_id}. There are one or more ports still in use "
            f"on the network, id for these ports is: {','.join(in_use_ordered)}.",
        )
    for port in lookup(store, "ports", "network_id", network_id):
        _delete(store, "ports", port["id"])
    for subnet in lookup(store, "subnets", "network_id", network_id):
        _remove_subnet(store, subnet)
    _delete(store, "networks", network["id"])


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
    _delete(store, "ports", port["id"])
    _touch(store, router)
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
        associate_floatingip(store, fip["id"], None)
    for port in lookup(store, "ports", "device_id", router_id):
        if port["device_owner"] == ROUTER_GATEWAY_OWNER:
            _delete(store, "ports", port["id"])
    _delete(store, "routers", router_id)


def delete_trunk(store: Store, trunk_id: str) -> None:
    """Allowed with subports: they become plain ports again."""
    trunk = get(store, "trunks", trunk_id)
    for sub in trunk["sub_ports"]:
        _release_subport(store, sub["port_id"])
    parent = store.os["ports"].get(trunk["port_id"])
    if parent is not None:
        parent.pop("trunk_details", None)
    _delete(store, "trunks", trunk_id)


def delete_security_group(store: Store, group_id: str) -> None:
    group = get(store, "security_groups", group_id)
    if group["name"] == "default":
        raise NeutronError(409, "SecurityGroupCannotRemoveDefault", "Removing default security group not allowed.")
    if lookup(store, "ports", "security_groups", group_id):
        raise NeutronError(409, "SecurityGroupInUse", f"Security Group {group_id} in use.")
    for rule in lookup(store, "security_group_rules", "security_group_id", group_id):
        _delete(store, "security_group_rules", rule["id"])
    _delete(store, "security_groups", group_id)


def delete_security_group_rule(store: Store, rule_id: str) -> None:
    rule = get(store, "security_group_rules", rule_id)
    group = store.os["security_groups"].get(rule["security_group_id"])
    if group is not None:
        group["security_group_rules"] = [r for r in group["security_group_rules"] if r["id"] != rule_id]
        _touch(store, group)
    _delete(store, "security_group_rules", rule_id)


def delete_subnetpool(store: Store, pool_id: str) -> None:
    get(store, "subnetpools", pool_id)
    if lookup(store, "subnets", "subnetpool_id", pool_id):
        raise NeutronError(
            400, "SubnetPoolDeleteError", "Unable to delete subnet pool: Subnet pool has existing allocations."
        )
    _delete(store, "subnetpools", pool_id)


def delete_floatingip(store: Store, fip_id: str) -> None:
    fip = get(store, "floatingips", fip_id)
    for port in lookup(store, "ports", "device_id", fip["id"]):
        if port["device_owner"] == FLOATINGIP_OWNER:
            _delete(store, "ports", port["id"])
    _delete(store, "floatingips", fip_id)


_DELETERS: dict[str, Callable[[Store, str], None]] = {
    "networks": delete_network,
    "subnets": delete_subnet,
    "ports": delete_port,
    "routers": delete_router,
    "trunks": delete_trunk,
    "security_groups": delete_security_group,
    "security_group_rules": delete_security_group_rule,
    "subnetpools": delete_subnetpool,
    "floatingips": delete_floatingip,
}
_CREATORS: dict[str, Callable[..., dict[str, Any]]] = {
    "networks": create_network,
    "subnets": create_subnet,
    "ports": create_port,
    "routers": create_router,
    "trunks": create_trunk,
    "security_groups": create_security_group,
    "security_group_rules": create_security_group_rule,
    "subnetpools": create_subnetpool,
    "floatingips": create_floatingip,
}


def delete(store: Store, collection: str, rid: str) -> None:
    """Delete with the real API's checks (raises NeutronError as the API would answer)."""
    _DELETERS[collection](store, rid)




# --------------------------------------------------------------------------------------------------
# Listing: filters, tags, sorting, paging (as neutron/api/api_common.py does them)
# --------------------------------------------------------------------------------------------------

# Query parameters that are not attribute filters.
_CONTROL_PARAMS = {"fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse"}
TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")
# Attributes accepted in a create body besides the record's own fields.
_CREATE_ONLY = {"subnets": {"prefixlen"}, "floatingips": {"subnet_id"}}
_READ_ONLY = {"id", "tenant_id", "project_id", "created_at", "updated_at", "revision_number", "status",
              "network_id", "subnets", "mac_address", "tags", "trunk_details", "sub_ports", "port_details",
              "security_group_rules", "floating_network_id", "floating_ip_address", "cidr", "ip_version",
              "subnetpool_id", "security_group_id", "port_id", "prefixes"}
_UPDATABLE_OVERRIDES = {"floatingips": {"port_id", "fixed_ip_address"}, "subnetpools": {"prefixes"}}


@functools.cache
def record_fields(collection: str) -> frozenset[str]:
    """The attribute names a record of the collection has: what may be filtered, sorted, posted."""
    sample = Store(project_id="sample")
    external = create_network(sample, **{"router:external": True})
    create_subnet(sample, network_id=external["id"], cidr="192.0.2.0/24")
    network = create_network(sample)
    subnet = create_subnet(sample, network_id=network["id"], cidr="198.51.100.0/24")
    router = create_router(sample, external_gateway_info={"network_id": external["id"]})
    add_router_interface(sample, router["id"], subnet_id=subnet["id"])
    parent = create_port(sample, network_id=network["id"])
    create_trunk(sample, port_id=parent["id"], sub_ports=[
        {"port_id": create_port(sample, network_id=network["id"])["id"], "segmentation_type": "vlan",
         "segmentation_id": 100}])
    create_subnetpool(sample, prefixes=["203.0.113.0/24"])
    create_floatingip(sample, floating_network_id=external["id"], port_id=parent["id"])
    fields: set[str] = set()
    for record in sample.os[collection].values():
        fields.update(record)
    return frozenset(fields)


def _values(request: Request, name: str) -> list[str]:
    return request.query.get(name, [])


def _tag_values(values: list[str]) -> list[str]:
    """Tags of a tag filter: comma-separated, repeated parameters add to the list."""
    return [t for t in itertools.chain.from_iterable(v.split(",") for v in values) if t]


def _value_matches(value: Any, wanted: list[str]) -> bool:
    if isinstance(value, list):
        return any(_value_matches(v, wanted) for v in value if not isinstance(v, (dict, list)))
    if isinstance(value, bool):
        return str(value).lower() in (w.lower() for w in wanted)
    if value is None:
        return False
    return str(value) in wanted


def _fixed_ips_match(record: dict[str, Any], wanted: list[str]) -> bool:
    """`fixed_ips=ip_address=1.2.3.4&fixed_ips=subnet_id=X`: each key ORs its values, keys AND."""
    constraints: dict[str, list[str]] = {}
    for item in wanted:
        key, _, value = item.partition("=")
        constraints.setdefault(key, []).append(value)
    for key, values in constraints.items():
        if key == "ip_address_substr":
            if not any(v in f.get("ip_address", "") for f in record.get("fixed_ips", []) for v in values):
                return False
        elif not any(f.get(key) in values for f in record.get("fixed_ips", [])):
            return False
    return True


class _Query:
    """A parsed list request: attribute filters, tag filters, sort, page."""

    def __init__(self, store: Store, collection: str, request: Request) -> None:
        self.collection = collection
        query = request.query
        tagging = tag_extension_enabled(store) and collection in TAGGABLE
        known = record_fields(collection) | {"tenant_id", "project_id"}
        self.filters: dict[str, list[str]] = {}
        self.tags: dict[str, list[str]] = {}
        invalid = []
        for name, values in query.items():
            if name in _CONTROL_PARAMS:
                continue
            if name in TAG_FILTERS and tagging:
                self.tags[name] = _tag_values(values)
            elif name in known and not (name == "tags" and not tagging):
                self.filters[name] = values
            else:
                invalid.append(name)
        if invalid:
            raise bad_request(f"[{', '.join(invalid)}] is invalid attribute for filtering")
        if self.tags.get("tags") and self.tags.get("tags-any"):
            # Real Neutron (29) joins the tag table twice for this combination and fails with a
            # database error: the tool must never send it, and the simulator makes that visible.
            raise NeutronError(500, "HTTPInternalServerError",
                               "Request Failed: internal server error while processing your request.")
        self.fields = [f for f in _values(request, "fields") if f]
        sort_keys, sort_dirs = _values(request, "sort_key"), _values(request, "sort_dir")
        if len(sort_keys) != len(sort_dirs) and sort_dirs:
            raise bad_request("The number of sort_keys and sort_dirs must be same")
        absent = [k for k in sort_keys if k not in known]
        if absent:
            raise bad_request(f"{absent} is invalid attribute for sort_keys")
        bad_dirs = [d for d in sort_dirs if d not in ("asc", "desc")]
        if bad_dirs:
            raise bad_request(f"{bad_dirs} is invalid value for sort_dirs, valid value is 'asc' and 'desc'")
        directions = [d == "asc" for d in sort_dirs] or [True] * len(sort_keys)
        self.sorts = list(zip(sort_keys, directions, strict=True))
        limit_text = request.arg("limit")
        try:
            self.limit = int(limit_text) if limit_text not in (None, "") else 0
        except ValueError as exc:
            raise bad_request(f"Invalid input for limit. Reason: '{limit_text}' is not an integer.",
                              "InvalidInput") from exc
        if self.limit < 0:
            raise bad_request(f"Invalid input for limit. Reason: '{limit_text}' should be non-negative.",
                              "InvalidInput")
        self.marker = request.arg("marker")
        self.page_reverse = (request.arg("page_reverse") or "False").lower() == "true"

    def candidates(self, store: Store) -> list[dict[str, Any]]:
        """The records worth testing, narrowed by an index when a filter allows it, in store order."""
        index = _index(store, self.collection)
        records = store.os[self.collection]
        chosen: set[str] | None = None
        for name, values in self.filters.items():
            if name in index.tables:
                ids = set(itertools.chain.from_iterable(index.ids(name, v) for v in values))
                chosen = ids if chosen is None else chosen & ids
        if self.collection == "ports" and "fixed_ips" in self.filters:
            subnets = [v.partition("=")[2] for v in self.filters["fixed_ips"] if v.startswith("subnet_id=")]
            if subnets:
                ids = set(itertools.chain.from_iterable(index.ids("fixed_ips.subnet_id", s) for s in subnets))
                chosen = ids if chosen is None else chosen & ids
        required = self.tags.get("tags")
        if required:
            # Start from the rarest tag: a cluster-wide tag is on every record, a namespace's on few.
            tables = sorted((index.tables["tags"].get(tag, {}) for tag in required), key=len)
            ids = {rid for rid in tables[0] if all(rid in table for table in tables[1:])}
            chosen = ids if chosen is None else chosen & ids
        if self.tags.get("tags-any"):
            ids = set(itertools.chain.from_iterable(index.ids("tags", t) for t in self.tags["tags-any"]))
            chosen = ids if chosen is None else chosen & ids
        if chosen is None:
            return list(records.values())
        order = index.order
        return [records[rid] for rid in sorted(chosen, key=lambda r: order.get(r, -1)) if rid in records]

    def matches(self, record: dict[str, Any]) -> bool:
        for name, values in self.filters.items():
            if name == "fixed_ips":
                if not _fixed_ips_match(record, values):
                    return False
            elif not _value_matches(record.get(name), values):
                return False
        if self.tags:
            tags = set(record.get("tags") or ())
            if "tags" in self.tags and not set(self.tags["tags"]) <= tags:
                return False
            if "tags-any" in self.tags and not tags & set(self.tags["tags-any"]):
                return False
            if "not-tags" in self.tags and self.tags["not-tags"] and set(self.tags["not-tags"]) <= tags:
                return False
            if "not-tags-any" in self.tags and tags & set(self.tags["not-tags-any"]):
                return False
        return True


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, (bool, int, float)):
        return (1, value)
    return (2, str(value))


def _sort(records: list[dict[str, Any]], sorts: list[tuple[str, bool]]) -> list[dict[str, Any]]:
    result = list(records)
    for key, ascending in reversed(sorts):
        result.sort(key=lambda r: _sort_key(r.get(key)), reverse=not ascending)
    return result


def list_records(store: Store, collection: str, request: Request) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The page of matching records and the `<collection>_links` Neutron would answer with."""
    query = _Query(store, collection, request)
    matching = [r for r in query.candidates(store) if query.matches(r)]
    sorts = list(query.sorts)
    if query.limit and not any(k == "id" for k, _ in sorts):
        sorts.append(("id", True))  # Neutron pages in a total order: the primary key breaks ties
    if sorts:
        matching = _sort(matching, sorts)
    if not query.limit:
        return matching, []
    if query.marker:
        marker = store.os[collection].get(query.marker)
        if marker is None:
            raise not_found(collection, query.marker)
        # The page starts after the marker's place in the sort order, whether or not the marker
        # itself passes the filters (Neutron compares sort keys, not list positions).
        ordered = matching if any(r is marker for r in matching) else _sort([*matching, marker], sorts)
        position = next(i for i, r in enumerate(ordered) if r is marker)
        if query.page_reverse:
            page = ordered[max(0, position - query.limit):position]
        else:
            page = ordered[position + 1:position + 1 + query.limit]
    else:
        page = matching[-query.limit:] if query.page_reverse else matching[:query.limit]
    return page, _page_links(request, page, query.limit, query.page_reverse)


_LINK_BASE = "{scheme}://{host}{prefix}{path}"


def _page_links(request: Request, page: list[dict[str, Any]], limit: int, page_reverse: bool) -> list[dict[str, str]]:
    links = []
    if not (len(page) < limit and not page_reverse):
        links.append({"rel": "next", "href": _link(request, page[-1]["id"] if page else None, reverse=False)})
    if not (len(page) < limit and page_reverse):
        links.append({"rel": "previous", "href": _link(request, page[0]["id"] if page else None, reverse=True)})
    return links


def _link(request: Request, marker: str | None, reverse: bool) -> str:
    params = [(k, v) for k, v in parse_qsl(request.query_string, keep_blank_values=True)
              if k not in ("marker", "page_reverse")]
    if marker is not None:
        params.append(("marker", marker))
    if reverse:
        params.append(("page_reverse", "True"))
    host = request.header("host") or "127.0.0.1"
    base = _LINK_BASE.format(scheme="http", host=host, prefix=Neutron.prefix, path=request.path)
    return f"{base}?{urlencode(params)}"


def tag_extension_enabled(store: Store) -> bool:
    return bool(store.settings.get("neutron_tag_extension", True))


# --------------------------------------------------------------------------------------------------
# Extensions (GET /v2.0/extensions): what a Neutron 29 with ml2, router, trunk, segments, tag has
# --------------------------------------------------------------------------------------------------

_EXTENSIONS: list[tuple[str, str, str]] = [
    ("agent", "agent", "The agent management extension."),
    ("allowed-address-pairs", "Allowed Address Pairs", "Provides allowed address pairs"),
    ("binding", "Port Binding", "Expose port bindings of a virtual port to external application"),
    ("binding-extended", "Port Bindings Extended", "Expose port bindings of a virtual port to external application"),
    ("default-subnetpools", "Default Subnetpools", "Provides ability to mark and use a subnetpool as the default."),
    ("dhcp_agent_scheduler", "DHCP Agent Scheduler", "Schedule networks among dhcp agents"),
    ("external-net", "Neutron external network", "Adds external network attribute to network resource."),
    ("extra_dhcp_opt", "Neutron Extra DHCP options", "Extra options configuration for DHCP."),
    ("extraroute", "Neutron Extra Route", "Extra routes configuration for L3 router"),
    ("fip-port-details", "Floating IP Port Details Extension", "Add port_details attribute to Floating IP resource"),
    ("ip-substring-filtering", "IP address substring filtering", "Provides IP address substring filtering"),
    ("filter-validation", "Filter parameters validation", "Provides validation on filter parameters."),
    ("network-ip-availability", "Network IP Availability", "Provides IP availability data for each network."),
    ("network_availability_zone", "Network Availability Zone", "Availability zone support for network."),
    ("pagination", "Pagination support", "Extension that indicates that pagination is enabled."),
    ("port-security", "Port Security", "Provides port security"),
    ("project-id", "project_id field enabled", "Extension that indicates that project_id field is enabled."),
    ("provider", "Provider Network", "Expose mapping of virtual networks to physical networks"),
    ("quotas", "Quota management support", "Expose functions for quotas management per project"),
    ("router", "Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 Neutron networks "
                                    "and access to external networks via a NAT gateway."),
    ("router_availability_zone", "Router Availability Zone", "Availability zone support for router."),
    ("security-group", "security-group", "The security groups extension."),
    ("segment", "Segment", "Segments extension."),
    ("sorting", "Sorting support", "Extension that indicates that sorting is enabled."),
    ("standard-attr-description", "standard-attr-description", "Extension to add descriptions to standard "
                                                               "attributes"),
    ("standard-attr-revisions", "Resource revision numbers", "This extension will display the revision number "
                                                             "of neutron resources."),
    ("standard-attr-timestamp", "Resource timestamps", "Adds created_at and updated_at fields to all Neutron "
                                                       "resources that have Neutron standard attributes."),
    ("subnet_allocation", "Subnet Allocation", "Enables allocation of subnets from a subnet pool"),
    ("subnetpool-prefix-ops", "Subnet Pool Prefix Operations", "Provides support for adjusting the prefix list "
                                                               "of subnet pools"),
    ("trunk", "Trunk Extension", "Provides support for trunk ports"),
    ("trunk-details", "Trunk port details", "Expose trunk port details"),
]
_TAG_EXTENSIONS: list[tuple[str, str, str]] = [
    ("standard-attr-tag", "Tag support for resources with standard attribute: subnet, trunk, network_segment_range, "
                          "router, network, policy, subnetpool, port, security_group, floatingip",
     "Enables to set tag on resources with standard attribute."),
    ("tag-ports-during-bulk-creation", "Tag Ports During Bulk Creation", "Allow to tag ports during bulk creation"),
    ("tag-creation", "Tag support for resources during creation", "Enables to set tag on resources during "
                                                                   "creation."),
]


def extensions(store: Store) -> list[dict[str, Any]]:
    listed = _EXTENSIONS + (_TAG_EXTENSIONS if tag_extension_enabled(store) else [])
    return [
        {"alias": alias, "name": name, "description": description, "updated": "2023-01-01T10:00:00-00:00",
         "links": []}
        for alias, name, description in sorted(listed)
    ]


# --------------------------------------------------------------------------------------------------
# The HTTP API
# --------------------------------------------------------------------------------------------------

# URL segment -> (collection key, singular key)
RESOURCES: dict[str, tuple[str, str]] = {
    "networks": ("networks", "network"),
    "subnets": ("subnets", "subnet"),
    "ports": ("ports", "port"),
    "routers": ("routers", "router"),
    "trunks": ("trunks", "trunk"),
    "security-groups": ("security_groups", "security_group"),
    "security-group-rules": ("security_group_rules", "security_group_rule"),
    "subnetpools": ("subnetpools", "subnetpool"),
    "floatingips": ("floatingips", "floatingip"),
}
_FAULT_TYPES = {
    400: "HTTPBadRequest", 401: "HTTPUnauthorized", 403: "HTTPForbidden", 404: "HTTPNotFound",
    409: "HTTPConflict", 413: "HTTPRequestEntityTooLarge", 429: "HTTPTooManyRequests",
    500: "HTTPInternalServerError", 502: "HTTPBadGateway", 503: "HTTPServiceUnavailable",
    504: "HTTPGatewayTimeout",
}


def _json_response(status: int, body: Any) -> Response:
    # Encoded while the store lock is held: the records may change as soon as the handler returns.
    return Response(status, json.dumps(body).encode())


class Neutron(Service):
    name = "network"
    prefix = "/networking"

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self.route("GET", r"/?", self.versions)
        self.route("GET", r"/v2\.0/?", self.resources)
        self.route("GET", r"/v2\.0/extensions", self.list_extensions)
        self.route("GET", r"/v2\.0/extensions/(?P<alias>[^/]+)", self.show_extension)
        kinds = "|".join(re.escape(k) for k in RESOURCES)
        taggable = "|".join(re.escape(k) for k, (c, _) in RESOURCES.items() if c in TAGGABLE)
        self.route("PUT", r"/v2\.0/routers/(?P<id>[^/]+)/add_router_interface", self.add_interface)
        self.route("PUT", r"/v2\.0/routers/(?P<id>[^/]+)/remove_router_interface", self.remove_interface)
        self.route("PUT", r"/v2\.0/trunks/(?P<id>[^/]+)/add_subports", self.trunk_add_subports)
        self.route("PUT", r"/v2\.0/trunks/(?P<id>[^/]+)/remove_subports", self.trunk_remove_subports)
        self.route("GET", r"/v2\.0/trunks/(?P<id>[^/]+)/get_subports", self.trunk_get_subports)
        self.route("GET", rf"/v2\.0/(?P<kind>{taggable})/(?P<id>[^/]+)/tags", self.get_tags)
        self.route("PUT", rf"/v2\.0/(?P<kind>{taggable})/(?P<id>[^/]+)/tags", self.replace_tags)
        self.route("DELETE", rf"/v2\.0/(?P<kind>{taggable})/(?P<id>[^/]+)/tags", self.delete_all_tags)
        self.route("GET", rf"/v2\.0/(?P<kind>{taggable})/(?P<id>[^/]+)/tags/(?P<tag>[^/]+)", self.check_tag)
        self.route("PUT", rf"/v2\.0/(?P<kind>{taggable})/(?P<id>[^/]+)/tags/(?P<tag>[^/]+)", self.put_tag)
        self.route("DELETE", rf"/v2\.0/(?P<kind>{taggable})/(?P<id>[^/]+)/tags/(?P<tag>[^/]+)", self.delete_tag)
        self.route("GET", rf"/v2\.0/(?P<kind>{kinds})", self.list)
        self.route("POST", rf"/v2\.0/(?P<kind>{kinds})", self.create)
        self.route("GET", rf"/v2\.0/(?P<kind>{kinds})/(?P<id>[^/]+)", self.show)
        self.route("PUT", rf"/v2\.0/(?P<kind>{kinds})/(?P<id>[^/]+)", self.update)
        self.route("DELETE", rf"/v2\.0/(?P<kind>{kinds})/(?P<id>[^/]+)", self.delete)

    # -- framework hooks -----------------------------------------------------------------------
    def dispatch(self, request: Request) -> Response:
        if request.path not in ("", "/") and not keystone.validate_token(self.store, request.header("x-auth-token")):
            return keystone.unauthorized_response()
        if request.path.endswith(".json"):
            request.path = request.path[: -len(".json")]
        return super().dispatch(request)

    def fault_response(self, status: int, retry_after: float | None) -> Response:
        headers = {"Retry-After": str(max(0, math.ceil(retry_after)))} if retry_after is not None else {}
        if status >= 500:
            message = "Request Failed: internal server error while processing your request."
        else:
            message = "The server could not comply with the request (injected fault)."
        body = {"NeutronError": {"type": _FAULT_TYPES.get(status, "HTTPError"), "message": message, "detail": ""}}
        return Response(status, body, headers)

    def not_found(self, request: Request) -> Response:
        return Response(404, {"NeutronError": {"type": "HTTPNotFound", "message": "The resource could not be found.",
                                               "detail": ""}})

    def method_not_allowed(self, request: Request) -> Response:
        return Response(405, {"NeutronError": {"type": "HTTPMethodNotAllowed",
                                               "message": "The server could not comply with the request since it "
                                                          "is either malformed or otherwise incorrect.",
                                               "detail": ""}})

    # -- presentation --------------------------------------------------------------------------
    def _present(self, record: dict[str, Any], fields: list[str] | None = None) -> dict[str, Any]:
        shown = dict(record)
        if not tag_extension_enabled(self.store):
            shown.pop("tags", None)
        if fields:
            shown = {k: v for k, v in shown.items() if k in fields}
        return shown

    def _kind(self, request: Request) -> tuple[str, str]:
        return RESOURCES[request.params["kind"]]

    def _body(self, request: Request, key: str) -> Any:
        try:
            data = request.json()
        except ValueError as exc:
            raise bad_request("Malformed request body") from exc
        if not isinstance(data, dict) or key not in data:
            raise bad_request("Resource body required" if data is None else
                              f"Unable to find '{key}' in request body")
        return data[key]

    # -- discovery -----------------------------------------------------------------------------
    def _base_url(self, request: Request) -> str:
        return f"http://{request.header('host') or '127.0.0.1'}{self.prefix}"

    def versions(self, request: Request) -> Response:
        return Response(200, {"versions": [{"id": "v2.0", "status": "CURRENT",
                                            "links": [{"href": f"{self._base_url(request)}/v2.0/",
                                                       "rel": "self"}]}]})

    def resources(self, request: Request) -> Response:
        base = self._base_url(request)
        return Response(200, {"resources": [
            {"name": singular, "collection": kind, "links": [{"href": f"{base}/v2.0/{kind}", "rel": "self"}]}
            for kind, (_, singular) in RESOURCES.items()]})

    def list_extensions(self, request: Request) -> Response:
        return Response(200, {"extensions": extensions(self.store)})

    def show_extension(self, request: Request) -> Response:
        for extension in extensions(self.store):
            if extension["alias"] == request.params["alias"]:
                return Response(200, {"extension": extension})
        raise NeutronError(404, "HTTPNotFound", f"Extension with alias {request.params['alias']} does not exist")

    # -- CRUD ----------------------------------------------------------------------------------
    def list(self, request: Request) -> Response:
        collection, _ = self._kind(request)
        page, links = list_records(self.store, collection, request)
        fields = [f for f in request.query.get("fields", []) if f]
        body: dict[str, Any] = {collection: [self._present(r, fields) for r in page]}
        if links:
            body[f"{collection}_links"] = links
        return _json_response(200, body)

    def show(self, request: Request) -> Response:
        collection, singular = self._kind(request)
        record = get(self.store, collection, request.params["id"])
        fields = [f for f in request.query.get("fields", []) if f]
        return _json_response(200, {singular: self._present(record, fields)})

    def _create_one(self, collection: str, attrs: Any) -> dict[str, Any]:
        if not isinstance(attrs, dict):
            raise bad_request("Invalid input: the body must be an object")
        allowed = record_fields(collection) | _CREATE_ONLY.get(collection, set()) | {"tenant_id", "project_id"}
        unknown = sorted(set(attrs) - allowed)
        if unknown:
            raise bad_request(f"Unrecognized attribute(s) '{', '.join(unknown)}'")
        if "tags" in attrs and not tag_extension_enabled(self.store):
            raise bad_request("Unrecognized attribute(s) 'tags'")
        return _CREATORS[collection](self.store, **attrs)

    def create(self, request: Request) -> Response:
        collection, singular = self._kind(request)
        data = request.json() if request.body else None
        if isinstance(data, dict) and collection in data:
            created: list[dict[str, Any]] = []
            try:
                for attrs in data[collection]:
                    created.append(self._create_one(collection, attrs))
            except ApiError:
                for record in reversed(created):  # bulk create is all or nothing
                    _DELETERS[collection](self.store, record["id"])
                raise
            return _json_response(201, {collection: [self._present(r) for r in created]})
        record = self._create_one(collection, self._body(request, singular))
        return _json_response(201, {singular: self._present(record)})

    def update(self, request: Request) -> Response:
        collection, singular = self._kind(request)
        record = get(self.store, collection, request.params["id"])
        changes = self._body(request, singular)
        if not isinstance(changes, dict):
            raise bad_request("Invalid input: the body must be an object")
        updatable = (record_fields(collection) - _READ_ONLY) | _UPDATABLE_OVERRIDES.get(collection, set())
        refused = sorted(set(changes) - updatable)
        if refused:
            raise bad_request(f"Cannot update read-only attribute {', '.join(refused)}")
        if collection == "routers" and "external_gateway_info" in changes:
            set_router_gateway(self.store, record["id"], changes.pop("external_gateway_info"))
        if collection == "floatingips" and "port_id" in changes:
            port_id, fixed_ip = changes.pop("port_id"), changes.pop("fixed_ip_address", None)
            associate_floatingip(self.store, record["id"], port_id, fixed_ip)
        if collection == "ports" and "security_groups" in changes:
            for group_id in changes["security_groups"] or []:
                get(self.store, "security_groups", group_id)
        if changes:
            _change(self.store, collection, record, **changes)
        return _json_response(200, {singular: self._present(record)})

    def delete(self, request: Request) -> Response:
        collection, _ = self._kind(request)
        _DELETERS[collection](self.store, request.params["id"])
        return Response(204)

    # -- actions -------------------------------------------------------------------------------
    def _interface_request(self, request: Request) -> tuple[str | None, str | None]:
        data = request.json() if request.body else None
        if not isinstance(data, dict):
            raise bad_request("Bad router request: Either subnet_id or port_id must be specified.")
        return data.get("subnet_id"), data.get("port_id")

    def add_interface(self, request: Request) -> Response:
        subnet_id, port_id = self._interface_request(request)
        port = add_router_interface(self.store, request.params["id"], subnet_id=subnet_id, port_id=port_id)
        router = self.store.os["routers"][request.params["id"]]
        return _json_response(200, router_interface_info(router, port))

    def remove_interface(self, request: Request) -> Response:
        subnet_id, port_id = self._interface_request(request)
        port = remove_router_interface(self.store, request.params["id"], subnet_id=subnet_id, port_id=port_id)
        router = self.store.os["routers"][request.params["id"]]
        return _json_response(200, router_interface_info(router, port))

    def trunk_add_subports(self, request: Request) -> Response:
        trunk = add_subports(self.store, request.params["id"], self._body(request, "sub_ports") or [])
        return _json_response(200, self._present(trunk))

    def trunk_remove_subports(self, request: Request) -> Response:
        trunk = remove_subports(self.store, request.params["id"], self._body(request, "sub_ports") or [])
        return _json_response(200, self._present(trunk))

    def trunk_get_subports(self, request: Request) -> Response:
        trunk = get(self.store, "trunks", request.params["id"])
        return _json_response(200, {"sub_ports": trunk["sub_ports"]})

    # -- tags ----------------------------------------------------------------------------------
    def _tagged(self, request: Request) -> tuple[str, dict[str, Any]]:
        if not tag_extension_enabled(self.store):
            raise NeutronError(404, "HTTPNotFound", "The resource could not be found.")
        collection, _ = self._kind(request)
        return collection, get(self.store, collection, request.params["id"])

    def get_tags(self, request: Request) -> Response:
        _, record = self._tagged(request)
        return _json_response(200, {"tags": sorted(record["tags"])})

    def replace_tags(self, request: Request) -> Response:
        collection, record = self._tagged(request)
        tags = self._body(request, "tags")
        if not isinstance(tags, list) or not all(isinstance(t, str) and 0 < len(t) <= 255 for t in tags):
            raise bad_request(f"Invalid input for tags. Reason: '{tags}' is not a valid list of tags.",
                              "InvalidInput")
        return _json_response(200, {"tags": set_tags(self.store, collection, record["id"], tags)})

    def delete_all_tags(self, request: Request) -> Response:
        collection, record = self._tagged(request)
        set_tags(self.store, collection, record["id"], [])
        return Response(204)

    def check_tag(self, request: Request) -> Response:
        collection, record = self._tagged(request)
        tag = unquote(request.params["tag"])
        if tag not in record["tags"]:
            raise NeutronError(404, "TagNotFound", f"Tag {tag} could not be found.")
        return Response(204)

    def put_tag(self, request: Request) -> Response:
        collection, record = self._tagged(request)
        add_tag(self.store, collection, record["id"], unquote(request.params["tag"]))
        return Response(201)

    def delete_tag(self, request: Request) -> Response:
        collection, record = self._tagged(request)
        remove_tag(self.store, collection, record["id"], unquote(request.params["tag"]))
        return Response(204)
