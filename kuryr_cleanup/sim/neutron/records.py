"""Neutron records: the errors, the indexes every lookup goes through, and what all records share.

Lookups that a 2,000-namespace scenario (20,000+ ports) makes hot (ports by network, by subnet, by
device, records by tag) go through indexes kept by the model functions (`insert`, `change`,
`remove_record`); see `_Indexes`. The caller holds `store.lock`.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from kuryr_cleanup.sim.http import ApiError
from kuryr_cleanup.sim.store import Store, iso_now, new_id

PREFIX = "/networking"  # where the server mounts Neutron (as devstack does)

# Device owners of ports that belong to the L3 service (l3_db's router_device_owners and, on DVR, l3_dvr_db's):
# the port API refuses to delete them while their router or floating IP exists (ServicePortInUse); they
# go with their router interface, gateway or floating IP.
ROUTER_INTERFACE_OWNERS = (
    "network:router_interface",
    "network:router_interface_distributed",
    "network:ha_router_replicated_interface",
)
DVR_INTERFACE_OWNER = "network:router_interface_distributed"
ROUTER_GATEWAY_OWNER = "network:router_gateway"
FLOATINGIP_OWNER = "network:floatingip"
CENTRALIZED_SNAT_OWNER = "network:router_centralized_snat"
AGENT_GATEWAY_OWNER = "network:floatingip_agent_gateway"
L3_OWNERS = (*ROUTER_INTERFACE_OWNERS, ROUTER_GATEWAY_OWNER, FLOATINGIP_OWNER, CENTRALIZED_SNAT_OWNER,
             AGENT_GATEWAY_OWNER)
DHCP_OWNER = "network:dhcp"
DISTRIBUTED_OWNER = "network:distributed"  # ML2/OVN's metadata ports
# Ports Neutron deletes itself with their network or subnet (neutron/common/_constants.py).
AUTO_DELETE_PORT_OWNERS = (DHCP_OWNER, DISTRIBUTED_OWNER, AGENT_GATEWAY_OWNER)
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
    "security_group_rules": {"security_group_id": _scalar("security_group_id"),
                             "remote_group_id": _scalar("remote_group_id")},
    "subnetpools": {},
    "floatingips": {"port_id": _scalar("port_id"), "router_id": _scalar("router_id")},
}
for _name in TAGGABLE:
    _INDEXED[_name]["tags"] = _each("tags")


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


def indexes_of(store: Store) -> _Indexes:
    indexes = _STORE_INDEXES.get(store)
    if indexes is None:
        indexes = _Indexes()
        _STORE_INDEXES[store] = indexes
    return indexes


def index_of(store: Store, collection: str) -> _CollectionIndex:
    return indexes_of(store).of(store, collection)


def insert(store: Store, collection: str, record: dict[str, Any]) -> dict[str, Any]:
    index = index_of(store, collection)
    store.add(collection, record)
    index.add(record)
    return record


def remove_record(store: Store, collection: str, rid: str) -> dict[str, Any] | None:
    index = index_of(store, collection)
    record = store.remove(collection, rid)
    if record is not None:
        index.discard(record)
    return record


def change(store: Store, collection: str, record: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """Change fields of a stored record, keeping the indexes right and bumping the revision."""
    index = index_of(store, collection)
    index.discard(record, forget=False)
    record.update(changes)
    index.add(record)
    touch(store, record)
    return record


def touch(store: Store, record: dict[str, Any]) -> None:
    record["updated_at"] = iso_now(store.clock.now())
    record["revision_number"] = int(record.get("revision_number", 0)) + 1


def lookup(store: Store, collection: str, attribute: str, value: Any) -> list[dict[str, Any]]:
    """Records whose indexed `attribute` holds `value` (e.g. ports by "network_id"), in store order."""
    index = index_of(store, collection)
    records = store.os[collection]
    return [records[rid] for rid in list(index.ids(attribute, value)) if rid in records]


def get(store: Store, collection: str, rid: str) -> dict[str, Any]:
    """The record, or the collection's NotFound error."""
    record = store.os[collection].get(rid)
    if record is None:
        raise not_found(collection, rid)
    return record


# --------------------------------------------------------------------------------------------------
# What every record has
# --------------------------------------------------------------------------------------------------


def new_record(store: Store, attrs: dict[str, Any]) -> dict[str, Any]:
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


def apply_attrs(record: dict[str, Any], attrs: dict[str, Any], skip: Iterable[str] = ()) -> None:
    """Copy the caller's create attributes over the defaults (ids and derived fields excepted)."""
    skipped = {"id", "tenant_id", "project_id", *skip}
    for key, value in attrs.items():
        if key not in skipped:
            record[key] = value
    record["tags"] = clean_tags(record.get("tags") or [])


def clean_tags(tags: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(str(t) for t in tags))


def set_tags(store: Store, collection: str, rid: str, tags: Iterable[str]) -> list[str]:
    """Replace the record's tags (PUT /v2.0/<collection>/<id>/tags)."""
    record = get(store, collection, rid)
    change(store, collection, record, tags=clean_tags(tags))
    return list(record["tags"])


def add_tag(store: Store, collection: str, rid: str, tag: str) -> None:
    record = get(store, collection, rid)
    if tag not in record["tags"]:
        change(store, collection, record, tags=[*record["tags"], tag])


def remove_tag(store: Store, collection: str, rid: str, tag: str) -> None:
    record = get(store, collection, rid)
    if tag not in record["tags"]:
        raise NeutronError(
            404, "TagNotFound", f"Tag {tag} could not be found."
        )
    change(store, collection, record, tags=[t for t in record["tags"] if t != tag])


def tag_extension_enabled(store: Store) -> bool:
    return bool(store.settings.get("neutron_tag_extension", True))
