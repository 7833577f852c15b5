"""Neutron listings: filters, tags, sorting, paging (as neutron/api/api_common.py does them)."""

from __future__ import annotations

import bisect
import functools
import itertools
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from kuryr_cleanup.sim.http import Request
from kuryr_cleanup.sim.neutron.networks import create_network, create_subnet, create_subnetpool
from kuryr_cleanup.sim.neutron.ports import create_port, create_trunk
from kuryr_cleanup.sim.neutron.records import (
    PREFIX,
    TAGGABLE,
    NeutronError,
    bad_request,
    index_of,
    not_found,
    tag_extension_enabled,
)
from kuryr_cleanup.sim.neutron.routers import add_router_interface, create_floatingip, create_router
from kuryr_cleanup.sim.store import Store

# Query parameters that are not attribute filters.
_CONTROL_PARAMS = {"fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse"}
TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")
# Attributes accepted in a create body besides the record's own fields.
CREATE_ONLY = {"subnets": {"prefixlen"}, "floatingips": {"subnet_id"}}
READ_ONLY = {"id", "tenant_id", "project_id", "created_at", "updated_at", "revision_number", "status",
             "network_id", "subnets", "mac_address", "tags", "trunk_details", "sub_ports", "port_details",
             "security_group_rules", "floating_network_id", "floating_ip_address", "cidr", "ip_version",
             "subnetpool_id", "security_group_id", "port_id", "prefixes"}
UPDATABLE_OVERRIDES = {"floatingips": {"port_id", "fixed_ip_address"}, "subnetpools": {"prefixes"}}


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

    def candidate_ids(self, store: Store) -> set[str] | None:
        """The ids worth testing, narrowed by an index when a filter allows it (None: every record)."""
        index = index_of(store, self.collection)
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
        return chosen

    def candidates(self, store: Store) -> list[dict[str, Any]]:
        """The records worth testing, narrowed by an index when a filter allows it, in store order."""
        index = index_of(store, self.collection)
        records = store.os[self.collection]
        chosen = self.candidate_ids(store)
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


def list_records(
    store: Store, collection: str, request: Request, visible: Callable[[dict[str, Any]], bool] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The page of matching records (among those `visible` to the caller) and the `<collection>_links`
    Neutron would answer with."""
    query = _Query(store, collection, request)
    if query.limit and not query.page_reverse and all(key == "id" and up for key, up in query.sorts):
        return _id_ordered_page(store, collection, request, query, visible)
    matching = [r for r in query.candidates(store) if query.matches(r) and (visible is None or visible(r))]
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


Page = tuple[list[dict[str, Any]], list[dict[str, str]]]


def _id_ordered_page(store: Store, collection: str, request: Request, query: _Query,
                     visible: Callable[[dict[str, Any]], bool] | None) -> Page:
    """The common case (pages in id order, forwards), without filtering and sorting the whole
    collection for every page: the candidates' ids are sorted, the page starts after the marker's id,
    and records are tested only until the page is full. A 20,000-port listing took seconds a page."""
    records = store.os[collection]
    if query.marker and query.marker not in records:
        raise not_found(collection, query.marker)
    chosen = query.candidate_ids(store)
    ids = sorted(records if chosen is None else chosen)
    start = bisect.bisect_right(ids, query.marker) if query.marker else 0
    page: list[dict[str, Any]] = []
    for rid in itertools.islice(ids, start, None):
        record = records.get(rid)
        if record is not None and query.matches(record) and (visible is None or visible(record)):
            page.append(record)
            if len(page) == query.limit:
                break
    return page, _page_links(request, page, query.limit, False)


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
    base = _LINK_BASE.format(scheme="http", host=host, prefix=PREFIX, path=request.path)
    return f"{base}?{urlencode(params)}"
