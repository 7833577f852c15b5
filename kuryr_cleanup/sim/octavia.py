"""Octavia v2 (load-balancer): load balancers, listeners, pools, members, health monitors.

What the cleanup depends on is modelled the way a real Octavia 19 behaves:

- Provisioning is asynchronous. A new LB is PENDING_CREATE and goes ACTIVE after the store delay
  "lb_create"; a change to an LB or to one of its children puts the LB in PENDING_UPDATE until
  "lb_update" has passed; a cascade delete puts it in PENDING_DELETE and it (with its children and
  its VIP port) is gone after "lb_delete".
- An LB in any PENDING_* state is immutable: changing or deleting it answers 409, and so does
  changing one of its children. An LB in ERROR can be deleted but not changed.
- Deleting an LB that still has listeners or pools without `cascade=true` answers 400.
- Errors are Octavia's (wsme) documents: {"faultcode", "faultstring", "debuginfo"}.
- Tags exist from API 2.5 on. `store.settings["octavia_version"]` is the version the simulated
  service speaks; below 2.5 the `tags` attribute is absent from every answer, a body carrying it is
  refused, and tag filters are ignored, as on a real Octavia of that age (the cluster tag then lives
  in `description`).
- Lists filter on any attribute, on tags (`tags`, `tags-any`, `not-tags`, `not-tags-any`, repeated
  or comma separated), sort by created_at then id, and page with limit/marker/page_reverse and
  `<collection>_links`, exactly as Octavia's PaginationHelper does (quirks included, see
  `_page`).

The module-level functions (`create_loadbalancer`, `create_listener`, `create_pool`, `create_member`,
`hold_pending`, `delete_loadbalancer_now`) are the model: the scenario generator and the HTTP
handlers both use them. The caller holds `store.lock`.
"""

from __future__ import annotations

import copy
import datetime as _dt
import functools
import itertools
import json
import weakref
from collections.abc import Callable
from typing import Any

from kuryr_cleanup.sim import keystone, neutron
from kuryr_cleanup.sim.http import ApiError, Request, Response, Service
from kuryr_cleanup.sim.store import Store, new_id

# Every minor version a current Octavia lists in its version document, with its release date.
_VERSION_DATES: dict[int, str] = {
    0: "2016-12-11T00:00:00Z",
    1: "2018-04-20T00:00:00Z",
    2: "2018-07-31T00:00:00Z",
    3: "2018-12-18T00:00:00Z",
    4: "2018-12-19T00:00:00Z",
    5: "2019-01-21T00:00:00Z",  # tags
    6: "2019-01-25T00:00:00Z",
    7: "2018-01-25T12:00:00Z",
    8: "2019-02-12T00:00:00Z",
    9: "2019-03-04T00:00:00Z",
    10: "2019-03-05T00:00:00Z",
    11: "2019-06-24T00:00:00Z",
    12: "2019-09-11T00:00:00Z",
    13: "2019-09-13T00:00:00Z",
    14: "2019-11-10T00:00:00Z",
    15: "2020-03-10T00:00:00Z",
    16: "2020-03-15T00:00:00Z",
    17: "2020-04-29T00:00:00Z",
    18: "2020-04-29T01:00:00Z",
    19: "2020-05-12T00:00:00Z",
    20: "2020-08-02T00:00:00Z",
    21: "2020-09-03T00:00:00Z",
    22: "2020-09-04T00:00:00Z",
    23: "2020-09-07T00:00:00Z",
    24: "2020-10-15T00:00:00Z",
    25: "2021-10-02T00:00:00Z",
    26: "2022-08-29T00:00:00Z",
    27: "2023-05-05T00:00:00Z",
    28: "2023-11-08T00:00:00Z",
    29: "2024-10-15T00:00:00Z",
}

TAGS_MIN_VERSION = (2, 5)

# Attributes that only exist from a given API version on: older versions neither return nor accept them.
_VERSIONED_FIELDS: dict[str, dict[str, tuple[int, int]]] = {
    "loadbalancers": {"tags": (2, 5), "flavor_id": (2, 6), "availability_zone": (2, 14),
                      "additional_vips": (2, 26)},
    "listeners": {"tags": (2, 5), "client_ca_tls_container_ref": (2, 8), "client_authentication": (2, 8),
                  "client_crl_container_ref": (2, 8), "allowed_cidrs": (2, 12), "tls_ciphers": (2, 15),
                  "tls_versions": (2, 17), "alpn_protocols": (2, 20), "hsts_max_age": (2, 27),
                  "hsts_include_subdomains": (2, 27), "hsts_preload": (2, 27)},
    "pools": {"tags": (2, 5), "tls_container_ref": (2, 8), "ca_tls_container_ref": (2, 8),
              "crl_container_ref": (2, 8), "tls_enabled": (2, 8), "tls_ciphers": (2, 15),
              "tls_versions": (2, 18), "alpn_protocols": (2, 24)},
    "members": {"tags": (2, 5)},
    "healthmonitors": {"tags": (2, 5), "http_version": (2, 10), "domain_name": (2, 10)},
}

# The singular body key and the human name Octavia puts in its messages ("Load Balancer x not found.").
_RESOURCE_KEY = {
    "loadbalancers": "loadbalancer",
    "listeners": "listener",
    "pools": "pool",
    "members": "member",
    "healthmonitors": "healthmonitor",
}
_RESOURCE_NAME = {
    "loadbalancers": "Load Balancer",
    "listeners": "Listener",
    "pools": "Pool",
    "members": "Member",
    "healthmonitors": "Health Monitor",
}

# Attributes a PUT may change, per collection (what Octavia's *PUT types accept).
_UPDATABLE = {
    "loadbalancers": {"name", "description", "admin_state_up", "vip_qos_policy_id", "tags"},
    "listeners": {"name", "description", "admin_state_up", "connection_limit", "default_pool_id",
                  "default_tls_container_ref", "sni_container_refs", "insert_headers", "timeout_client_data",
                  "timeout_member_connect", "timeout_member_data", "timeout_tcp_inspect", "tags",
                  "client_ca_tls_container_ref", "client_authentication", "client_crl_container_ref",
                  "allowed_cidrs", "tls_ciphers", "tls_versions", "alpn_protocols"},
    "pools": {"name", "description", "admin_state_up", "lb_algorithm", "session_persistence", "tags",
              "tls_container_ref", "ca_tls_container_ref", "crl_container_ref", "tls_enabled", "tls_ciphers",
              "tls_versions", "alpn_protocols"},
    "members": {"name", "admin_state_up", "weight", "backup", "monitor_address", "monitor_port", "tags"},
    "healthmonitors": {"name", "admin_state_up", "delay", "timeout", "max_retries", "max_retries_down",
                       "http_method", "url_path", "expected_codes", "http_version", "domain_name", "tags"},
}

OVN_VIP_PORT_PREFIX = "ovn-lb-vip-"  # ovn-octavia-provider's LB_VIP_PORT_PREFIX

PENDING_STATUSES = ("PENDING_CREATE", "PENDING_UPDATE", "PENDING_DELETE")
_MUTABLE_STATUSES = ("ACTIVE",)
_DELETABLE_STATUSES = ("ACTIVE", "ERROR")

_PAGINATION_MAX_LIMIT = 1000  # Octavia's [api_settings] pagination_max_limit default
_PAGINATION_ARGS = ("limit", "marker", "sort", "sort_key", "sort_dir", "fields", "page_reverse")
_TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")


# -- errors ----------------------------------------------------------------------------------------
def octavia_error(status: int, message: str) -> ApiError:
    """An error as Octavia's API (pecan + wsme) answers it."""
    fault = "Client" if status < 500 else "Server"
    return ApiError(status, {"faultcode": fault, "faultstring": message, "debuginfo": None})


def _not_found(collection: str, rid: str) -> ApiError:
    return octavia_error(404, f"{_RESOURCE_NAME[collection]} {rid} not found.")


def _lb_pending_state(lb: dict[str, Any]) -> ApiError:
    return octavia_error(409, f"Invalid state {lb['provisioning_status']} of loadbalancer resource {lb['id']}")


def _lb_immutable(lb: dict[str, Any]) -> ApiError:
    # Children (listeners, pools, members, monitors) report the parent LB this way.
    return octavia_error(409, f"Load Balancer {lb['id']} is immutable and cannot be updated.")


def _forbidden() -> ApiError:
    return octavia_error(403, "Policy does not allow this request to be performed.")


def _validation(detail: str) -> ApiError:
    return octavia_error(400, f"Validation failure: {detail}")


# -- versions --------------------------------------------------------------------------------------
def api_version(store: Store) -> tuple[int, int]:
    """The API version the simulated Octavia speaks (store.settings["octavia_version"], e.g. "2.27")."""
    text = str(store.settings.get("octavia_version") or "2.27").lstrip("v")
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


def supports_tags(store: Store) -> bool:
    return api_version(store) >= TAGS_MIN_VERSION


# -- timestamps and timers -------------------------------------------------------------------------
def _now(store: Store) -> str:
    """Octavia's timestamps: ISO 8601 without a zone suffix, seconds precision (wsme datetime)."""
    when = _dt.datetime.fromtimestamp(store.clock.now(), tz=_dt.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S")


# The pending transition of each LB, so a new one (or hold_pending) replaces the old one. Kept beside
# the store rather than in it: timers are not part of a snapshot.
_lb_timers: weakref.WeakKeyDictionary[Store, dict[str, Any]] = weakref.WeakKeyDictionary()


def _set_lb_timer(store: Store, lb_id: str, delay: str | float | None, callback: Callable[[], None]) -> None:
    timers = _lb_timers.setdefault(store, {})
    old = timers.pop(lb_id, None)
    if old is not None:
        old.cancelled = True
    if delay is None:
        return

    def fire() -> None:
        if timers.get(lb_id) is timer:
            del timers[lb_id]
        callback()

    timer = store.schedule(delay, fire)
    timers[lb_id] = timer


# -- lookups ---------------------------------------------------------------------------------------
def _get(store: Store, collection: str, rid: str) -> dict[str, Any]:
    record = store.get(collection, rid)
    if record is None:
        raise _not_found(collection, rid)
    return record


def _pool_of_member(store: Store, member_id: str) -> dict[str, Any] | None:
    # The member document has no pool_id; the pool lists its members.
    for pool in store.all("pools"):
        if any(m["id"] == member_id for m in pool.get("members", [])):
            return pool
    return None


def _lb_of(store: Store, collection: str, record: dict[str, Any]) -> dict[str, Any] | None:
    """The load balancer a record belongs to (itself for an LB)."""
    if collection == "loadbalancers":
        return record
    if collection in ("listeners", "pools"):
        lbs = record.get("loadbalancers") or []
        return store.get("loadbalancers", lbs[0]["id"]) if lbs else None
    if collection == "members":
        pool = _pool_of_member(store, record["id"])
        return _lb_of(store, "pools", pool) if pool else None
    if collection == "healthmonitors":
        pools = record.get("pools") or []
        pool = store.get("pools", pools[0]["id"]) if pools else None
        return _lb_of(store, "pools", pool) if pool else None
    return None


def _children(store: Store, lb: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every child of an LB as (collection, record): listeners, pools, their members and monitors."""
    found: list[tuple[str, dict[str, Any]]] = []
    for ref in lb.get("listeners", []):
        listener = store.get("listeners", ref["id"])
        if listener is not None:
            found.append(("listeners", listener))
    for ref in lb.get("pools", []):
        pool = store.get("pools", ref["id"])
        if pool is None:
            continue
        found.append(("pools", pool))
        for member_ref in pool.get("members", []):
            member = store.get("members", member_ref["id"])
            if member is not None:
                found.append(("members", member))
        if pool.get("healthmonitor_id"):
            monitor = store.get("healthmonitors", pool["healthmonitor_id"])
            if monitor is not None:
                found.append(("healthmonitors", monitor))
    return found


def _touch(store: Store, record: dict[str, Any], **changes: Any) -> None:
    record.update(changes)
    record["updated_at"] = _now(store)


# -- the model -------------------------------------------------------------------------------------
def create_loadbalancer(store: Store, **attrs: Any) -> dict[str, Any]:
    """Create an LB and its VIP port in Neutron, as Octavia's API does.

    `vip_subnet_id` or `vip_network_id` (the network's first IPv4 subnet is used) or `vip_port_id`
    (an existing port) say where the VIP goes. `provisioning_status` may be given (e.g. "ACTIVE",
    "ERROR"); otherwise the LB is PENDING_CREATE and goes ACTIVE after the store delay "lb_create".
    """
    lb_id = attrs.pop("id", None) or new_id()
    project_id = attrs.pop("project_id", None) or attrs.pop("tenant_id", None) or store.project_id
    attrs.pop("tenant_id", None)
    vip_port_id = attrs.pop("vip_port_id", None)
    vip_subnet_id = attrs.pop("vip_subnet_id", None)
    vip_network_id = attrs.pop("vip_network_id", None)
    vip_address = attrs.pop("vip_address", None)
    status = attrs.pop("provisioning_status", None)
    if vip_port_id:
        port = store.get("ports", vip_port_id)
        if port is None:
            raise octavia_error(400, f"Port {vip_port_id} not found.")
        vip_network_id = port["network_id"]
        fixed = port.get("fixed_ips") or [{}]
        vip_subnet_id = vip_subnet_id or fixed[0].get("subnet_id")
        vip_address = vip_address or fixed[0].get("ip_address")
    else:
        vip_subnet_id, vip_network_id = _vip_subnet_and_network(store, vip_subnet_id, vip_network_id)
        fixed_ip: dict[str, Any] = {"subnet_id": vip_subnet_id}
        if vip_address:
            fixed_ip["ip_address"] = vip_address
        port = neutron.create_port(store, network_id=vip_network_id, fixed_ips=[fixed_ip], project_id=project_id,
                                   **_vip_port_attrs(lb_id, attrs.get("provider")))
        vip_port_id = port["id"]
        vip_address = (port.get("fixed_ips") or [{}])[0].get("ip_address", vip_address)
    record: dict[str, Any] = {
        "id": lb_id,
        "name": attrs.pop("name", "") or "",
        "description": attrs.pop("description", "") or "",
        "provisioning_status": status or "PENDING_CREATE",
        "operating_status": attrs.pop("operating_status", None)
        or ("ONLINE" if status == "ACTIVE" else "OFFLINE"),
        "admin_state_up": attrs.pop("admin_state_up", True),
        "project_id": project_id,
        "created_at": _now(store),
        "updated_at": None,
        "vip_address": vip_address,
        "vip_port_id": vip_port_id,
        "vip_subnet_id": vip_subnet_id,
        "vip_network_id": vip_network_id,
        "vip_qos_policy_id": attrs.pop("vip_qos_policy_id", None),
        "listeners": [],
        "pools": [],
        "provider": attrs.pop("provider", None) or "amphora",
        "flavor_id": attrs.pop("flavor_id", None),
        "availability_zone": attrs.pop("availability_zone", None),
        "additional_vips": attrs.pop("additional_vips", None) or [],
        "tags": list(attrs.pop("tags", None) or []),
    }
    record.update(attrs)
    store.add("loadbalancers", record)
    if record["provisioning_status"] == "PENDING_CREATE":
        _settle_later(store, lb_id, "lb_create")
    return record


def _vip_port_attrs(lb_id: str, provider: str | None) -> dict[str, Any]:
    """How each provider names and owns the VIP port it asks Neutron for.

    Octavia (amphora): "octavia-lb-<id>", device_owner "Octavia", device_id "lb-<id>", admin down.
    ovn-octavia-provider creates it itself: "ovn-lb-vip-<id>", no device_owner or device_id, admin up.
    """
    if provider == "ovn":
        return {"name": f"{OVN_VIP_PORT_PREFIX}{lb_id}", "admin_state_up": True}
    return {"name": f"octavia-lb-{lb_id}", "device_owner": "Octavia", "device_id": f"lb-{lb_id}",
            "admin_state_up": False}


def _owns_vip_port(lb_id: str, port: dict[str, Any]) -> bool:
    """Whether the LB's provider allocated this port (a user-given vip_port_id stays when the LB goes)."""
    amphora_port = port.get("device_owner") == "Octavia" and port.get("device_id") == f"lb-{lb_id}"
    return amphora_port or port.get("name") == f"{OVN_VIP_PORT_PREFIX}{lb_id}"


def _vip_subnet_and_network(store: Store, subnet_id: str | None, network_id: str | None) -> tuple[str, str]:
    if subnet_id:
        subnet = store.get("subnets", subnet_id)
        if subnet is None:
            raise octavia_error(400, f"Subnet {subnet_id} not found.")
        if network_id and subnet["network_id"] != network_id:
            raise _validation(f"Subnet {subnet_id} is not in network {network_id}.")
        return subnet_id, subnet["network_id"]
    if not network_id:
        raise _validation("VIP must contain one of: vip_port_id, vip_network_id, vip_subnet_id.")
    if store.get("networks", network_id) is None:
        raise octavia_error(400, f"Network {network_id} not found.")
    subnets = [s for s in store.all("subnets") if s["network_id"] == network_id]
    if not subnets:
        raise _validation("Supplied network does not contain a subnet.")
    # Octavia prefers the network's first IPv4 subnet.
    chosen = next((s for s in subnets if s.get("ip_version") == 4), subnets[0])
    return chosen["id"], network_id


def _base_child(store: Store, attrs: dict[str, Any], lb: dict[str, Any] | None) -> dict[str, Any]:
    """The attributes every Octavia child object carries (its project is its load balancer's)."""
    status = attrs.pop("provisioning_status", None) or "ACTIVE"
    return {
        "id": attrs.pop("id", None) or new_id(),
        "name": attrs.pop("name", "") or "",
        "provisioning_status": status,
        "operating_status": attrs.pop("operating_status", None) or ("ONLINE" if status == "ACTIVE" else "OFFLINE"),
        "admin_state_up": attrs.pop("admin_state_up", True),
        "project_id": (attrs.pop("project_id", None) or attrs.pop("tenant_id", None)
                       or (lb or {}).get("project_id") or store.project_id),
        "created_at": _now(store),
        "updated_at": None,
        "tags": list(attrs.pop("tags", None) or []),
    }


def create_listener(store: Store, **attrs: Any) -> dict[str, Any]:
    """A listener on `loadbalancer_id` (ACTIVE unless `provisioning_status` is given); the LB lists it."""
    attrs.pop("tenant_id", None)
    lb = _get(store, "loadbalancers", attrs.pop("loadbalancer_id"))
    protocol_port = int(attrs.pop("protocol_port"))
    for ref in lb["listeners"]:
        other = store.get("listeners", ref["id"])
        if other is not None and other["protocol_port"] == protocol_port:
            raise octavia_error(
                409, f"Another Listener on this Load Balancer is already using protocol_port {protocol_port}"
            )
    base = _base_child(store, attrs, lb)
    record: dict[str, Any] = {
        **base,
        "description": attrs.pop("description", "") or "",
        "protocol": attrs.pop("protocol", "TCP"),
        "protocol_port": protocol_port,
        "connection_limit": attrs.pop("connection_limit", -1),
        "default_tls_container_ref": attrs.pop("default_tls_container_ref", None),
        "sni_container_refs": attrs.pop("sni_container_refs", None) or [],
        "default_pool_id": attrs.pop("default_pool_id", None),
        "l7policies": [],
        "insert_headers": attrs.pop("insert_headers", None) or {},
        "loadbalancers": [{"id": lb["id"]}],
        "timeout_client_data": attrs.pop("timeout_client_data", 50000),
        "timeout_member_connect": attrs.pop("timeout_member_connect", 5000),
        "timeout_member_data": attrs.pop("timeout_member_data", 50000),
        "timeout_tcp_inspect": attrs.pop("timeout_tcp_inspect", 0),
        "client_ca_tls_container_ref": attrs.pop("client_ca_tls_container_ref", None),
        "client_authentication": attrs.pop("client_authentication", "NONE"),
        "client_crl_container_ref": attrs.pop("client_crl_container_ref", None),
        "allowed_cidrs": attrs.pop("allowed_cidrs", None),
        "tls_ciphers": attrs.pop("tls_ciphers", None),
        "tls_versions": attrs.pop("tls_versions", None),
        "alpn_protocols": attrs.pop("alpn_protocols", None),
        "hsts_max_age": attrs.pop("hsts_max_age", None),
        "hsts_include_subdomains": attrs.pop("hsts_include_subdomains", False),
        "hsts_preload": attrs.pop("hsts_preload", False),
    }
    record.update(attrs)
    if record["default_pool_id"]:
        pool = _get(store, "pools", record["default_pool_id"])
        pool.setdefault("listeners", []).append({"id": record["id"]})
    store.add("listeners", record)
    lb["listeners"].append({"id": record["id"]})
    return record


def create_pool(store: Store, **attrs: Any) -> dict[str, Any]:
    """A pool on `loadbalancer_id`, or on `listener_id` (whose default pool it becomes)."""
    attrs.pop("tenant_id", None)
    listener = None
    listener_id = attrs.pop("listener_id", None)
    lb_id = attrs.pop("loadbalancer_id", None)
    if listener_id:
        listener = _get(store, "listeners", listener_id)
        if listener.get("default_pool_id"):
            raise octavia_error(409, "This listener already has a default pool")
        lb_id = lb_id or listener["loadbalancers"][0]["id"]
    if not lb_id:
        raise _validation("Pool requires one of: loadbalancer_id, listener_id.")
    lb = _get(store, "loadbalancers", lb_id)
    base = _base_child(store, attrs, lb)
    record: dict[str, Any] = {
        **base,
        "description": attrs.pop("description", "") or "",
        "protocol": attrs.pop("protocol", "TCP"),
        "lb_algorithm": attrs.pop("lb_algorithm", "ROUND_ROBIN"),
        "session_persistence": attrs.pop("session_persistence", None),
        "loadbalancers": [{"id": lb["id"]}],
        "listeners": [{"id": listener["id"]}] if listener else [],
        "members": [],
        "healthmonitor_id": None,
        "tls_container_ref": attrs.pop("tls_container_ref", None),
        "ca_tls_container_ref": attrs.pop("ca_tls_container_ref", None),
        "crl_container_ref": attrs.pop("crl_container_ref", None),
        "tls_enabled": attrs.pop("tls_enabled", False),
        "tls_ciphers": attrs.pop("tls_ciphers", None),
        "tls_versions": attrs.pop("tls_versions", None),
        "alpn_protocols": attrs.pop("alpn_protocols", None),
    }
    record.update(attrs)
    store.add("pools", record)
    lb["pools"].append({"id": record["id"]})
    if listener is not None:
        listener["default_pool_id"] = record["id"]
    return record


def create_member(store: Store, pool_id: str, **attrs: Any) -> dict[str, Any]:
    """A member of `pool_id` (`address`, `protocol_port`, optional `subnet_id`)."""
    attrs.pop("tenant_id", None)
    attrs.pop("pool_id", None)
    pool = _get(store, "pools", pool_id)
    address = attrs.pop("address")
    protocol_port = int(attrs.pop("protocol_port"))
    for ref in pool["members"]:
        other = store.get("members", ref["id"])
        if other is not None and (other["address"], other["protocol_port"]) == (address, protocol_port):
            raise octavia_error(
                409, f"Another member on this pool is already using ip {address} on protocol_port {protocol_port}"
            )
    base = _base_child(store, attrs, _lb_of(store, "pools", pool))
    if not pool.get("healthmonitor_id") and "operating_status" not in attrs:
        base["operating_status"] = "NO_MONITOR"
    record: dict[str, Any] = {
        **base,
        "address": address,
        "protocol_port": protocol_port,
        "weight": attrs.pop("weight", 1),
        "backup": attrs.pop("backup", False),
        "subnet_id": attrs.pop("subnet_id", None),
        "monitor_address": attrs.pop("monitor_address", None),
        "monitor_port": attrs.pop("monitor_port", None),
    }
    record.update(attrs)
    store.add("members", record)
    pool["members"].append({"id": record["id"]})
    return record


def create_healthmonitor(store: Store, **attrs: Any) -> dict[str, Any]:
    """A health monitor on `pool_id` (one per pool)."""
    attrs.pop("tenant_id", None)
    pool = _get(store, "pools", attrs.pop("pool_id"))
    if pool.get("healthmonitor_id"):
        raise octavia_error(409, "This pool already has a health monitor")
    base = _base_child(store, attrs, _lb_of(store, "pools", pool))
    monitor_type = attrs.pop("type", "TCP")
    http = monitor_type in ("HTTP", "HTTPS")
    record: dict[str, Any] = {
        **base,
        "type": monitor_type,
        "delay": attrs.pop("delay", 5),
        "timeout": attrs.pop("timeout", 5),
        "max_retries": attrs.pop("max_retries", 3),
        "max_retries_down": attrs.pop("max_retries_down", 3),
        "http_method": attrs.pop("http_method", "GET" if http else None),
        "url_path": attrs.pop("url_path", "/" if http else None),
        "expected_codes": attrs.pop("expected_codes", "200" if http else None),
        "http_version": attrs.pop("http_version", None),
        "domain_name": attrs.pop("domain_name", None),
        "pools": [{"id": pool["id"]}],
    }
    record.update(attrs)
    store.add("healthmonitors", record)
    pool["healthmonitor_id"] = record["id"]
    return record


def _settle_later(store: Store, lb_id: str, delay: str | float | None) -> None:
    """After `delay`, the LB and its pending children settle: ACTIVE, or gone if PENDING_DELETE."""

    def settle() -> None:
        lb = store.get("loadbalancers", lb_id)
        if lb is None:
            return
        if lb["provisioning_status"] == "PENDING_DELETE":
            delete_loadbalancer_now(store, lb_id)
            return
        for collection, child in _children(store, lb):
            if child["provisioning_status"] == "PENDING_DELETE":
                _remove_child(store, collection, child)
            elif child["provisioning_status"] in PENDING_STATUSES:
                _touch(store, child, provisioning_status="ACTIVE")
                if child.get("operating_status") == "OFFLINE":
                    child["operating_status"] = "ONLINE"
        if lb["provisioning_status"] in PENDING_STATUSES:
            _touch(store, lb, provisioning_status="ACTIVE")
            if lb["operating_status"] == "OFFLINE":
                lb["operating_status"] = "ONLINE"

    _set_lb_timer(store, lb_id, delay, settle)


def hold_pending(store: Store, lb_id: str, status: str = "PENDING_UPDATE", seconds: float | None = None) -> None:
    """Test control: put an LB in `status` (a PENDING_* state, or ERROR) for `seconds` of simulated time.

    Afterwards it settles as Octavia's worker would: PENDING_CREATE/PENDING_UPDATE -> ACTIVE,
    PENDING_DELETE -> gone. `seconds=None` holds it there until something else changes it (an LB
    stuck forever, as after a lost controller worker).
    """
    lb = _get(store, "loadbalancers", lb_id)
    _touch(store, lb, provisioning_status=status)
    if status == "ERROR":
        _set_lb_timer(store, lb_id, None, lambda: None)
        return
    _settle_later(store, lb_id, seconds)


def delete_loadbalancer_now(store: Store, lb_id: str) -> None:
    """Remove an LB, its children and its VIP port at once (what the worker does at the end of a delete)."""
    lb = store.get("loadbalancers", lb_id)
    if lb is None:
        return
    for collection, child in _children(store, lb):
        store.remove(collection, child["id"])
    store.remove("loadbalancers", lb_id)
    _set_lb_timer(store, lb_id, None, lambda: None)
    port_id = lb.get("vip_port_id")
    port = store.get("ports", port_id) if port_id else None
    if port is not None and _owns_vip_port(lb_id, port):
        _release_port(store, port)


def _release_port(store: Store, port: dict[str, Any]) -> None:
    """Delete the VIP port through Neutron's model: a floating IP on it is disassociated, not deleted."""
    neutron.delete_port(store, port["id"])


def _remove_child(store: Store, collection: str, record: dict[str, Any]) -> None:
    """Forget a child and every reference to it (its own children go with a pool)."""
    rid = record["id"]
    store.remove(collection, rid)
    if collection == "listeners":
        for lb in store.all("loadbalancers"):
            lb["listeners"] = [r for r in lb["listeners"] if r["id"] != rid]
        for pool in store.all("pools"):
            pool["listeners"] = [r for r in pool.get("listeners", []) if r["id"] != rid]
    elif collection == "pools":
        for ref in record.get("members", []):
            store.remove("members", ref["id"])
        if record.get("healthmonitor_id"):
            store.remove("healthmonitors", record["healthmonitor_id"])
        for lb in store.all("loadbalancers"):
            lb["pools"] = [r for r in lb["pools"] if r["id"] != rid]
        for listener in store.all("listeners"):
            if listener.get("default_pool_id") == rid:
                listener["default_pool_id"] = None
    elif collection == "members":
        for pool in store.all("pools"):
            pool["members"] = [r for r in pool.get("members", []) if r["id"] != rid]
    elif collection == "healthmonitors":
        for pool in store.all("pools"):
            if pool.get("healthmonitor_id") == rid:
                pool["healthmonitor_id"] = None


# -- the API ---------------------------------------------------------------------------------------
_V2 = r"/v2(?:\.0)?"
_ID = r"(?P<id>[^/]+)"


class Octavia(Service):
    """The Octavia v2 API under /load-balancer (the catalog points load-balancer here)."""

    name = "load-balancer"
    prefix = "/load-balancer"

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self.route("GET", r"/?", self.versions)
        self.route("GET", _V2 + r"/?", self.v2_root)
        for collection in ("loadbalancers", "listeners", "pools", "healthmonitors"):
            base = f"{_V2}/lbaas/{collection}"
            self.route("GET", base + r"/?", functools.partial(self.list_resources, collection))
            self.route("POST", base + r"/?", functools.partial(self.create_resource, collection))
            self.route("GET", base + rf"/{_ID}/?", functools.partial(self.show_resource, collection))
            self.route("PUT", base + rf"/{_ID}/?", functools.partial(self.update_resource, collection))
            self.route("DELETE", base + rf"/{_ID}/?", functools.partial(self.delete_resource, collection))
        members = _V2 + r"/lbaas/pools/(?P<pool_id>[^/]+)/members"
        self.route("GET", members + r"/?", functools.partial(self.list_resources, "members"))
        self.route("POST", members + r"/?", functools.partial(self.create_resource, "members"))
        self.route("GET", members + rf"/{_ID}/?", functools.partial(self.show_resource, "members"))
        self.route("PUT", members + rf"/{_ID}/?", functools.partial(self.update_resource, "members"))
        self.route("DELETE", members + rf"/{_ID}/?", functools.partial(self.delete_resource, "members"))
        self.route("GET", _V2 + rf"/lbaas/loadbalancers/{_ID}/status(?:es)?/?", self.status_tree)

    # -- errors in Octavia's format ------------------------------------------------------------
    def fault_response(self, status: int, retry_after: float | None) -> Response:
        headers = {"Retry-After": str(max(0, int(-(-retry_after // 1))))} if retry_after is not None else {}
        messages = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
                    503: "Service Unavailable", 504: "Gateway Timeout"}
        err = octavia_error(status, messages.get(status, "injected fault"))
        return Response(status, err.body, headers)

    def not_found(self, request: Request) -> Response:
        return Response(404, octavia_error(404, "The resource could not be found.").body)

    def method_not_allowed(self, request: Request) -> Response:
        return Response(405, octavia_error(405, "The method specified is not allowed for this resource.").body)

    def dispatch(self, request: Request) -> Response:
        if request.path.rstrip("/") not in ("", "/v2", "/v2.0"):
            request.auth = keystone.token_context(self.store, request.header("x-auth-token"))
            if request.auth is None:
                return keystone.unauthorized_response()
        return super().dispatch(request)

    # -- who sees what (octavia/api/v2/controllers/base.py: _auth_get_all, _auth_validate_action) ------
    def _project(self, request: Request) -> str:
        context = request.auth
        return (context.project_id if context is not None else None) or self.store.project_id

    def _sees_every_project(self, request: Request) -> bool:
        return request.auth is None or request.auth.is_admin

    def _authorize(self, request: Request, record: dict[str, Any]) -> None:
        """Another project's object is forbidden to a non-admin (403, not 404, as Octavia answers)."""
        if not self._sees_every_project(request) and record.get("project_id") != self._project(request):
            raise _forbidden()

    # -- versions ------------------------------------------------------------------------------
    def _base_url(self, request: Request) -> str:
        host = request.header("host") or "127.0.0.1"
        return f"http://{host}{self.prefix}"

    def versions(self, request: Request) -> Response:
        """The version document ksa/openstacksdk discover the endpoint with: v2.0 .. the current v2.x."""
        major, current = api_version(self.store)
        base = self._base_url(request) + "/"
        versions = []
        for minor in range(0, current + 1):
            versions.append(
                {
                    "id": f"v{major}.{minor}",
                    "status": "CURRENT" if minor == current else "SUPPORTED",
                    "updated": _VERSION_DATES.get(minor, _VERSION_DATES[max(_VERSION_DATES)]),
                    "links": [{"href": base + "v2", "rel": "self"}],
                }
            )
        return Response(200, {"versions": versions})

    def v2_root(self, request: Request) -> Response:
        return self.versions(request)

    # -- generic collection handlers -----------------------------------------------------------
    def _records(self, collection: str, request: Request) -> list[dict[str, Any]]:
        if collection == "members":
            pool = _get(self.store, "pools", request.params["pool_id"])
            self._authorize(request, pool)
            ids = [r["id"] for r in pool.get("members", [])]
            return [m for m in (self.store.get("members", i) for i in ids) if m is not None]
        records = list(self.store.all(collection))
        if self._sees_every_project(request):
            return records  # an admin lists every project's objects unless it filters by project_id
        wanted = request.arg("project_id")
        if wanted is not None and wanted != self._project(request):
            raise _forbidden()
        return [r for r in records if r.get("project_id") == self._project(request)]

    def view(self, collection: str, record: dict[str, Any], deep: bool = True) -> dict[str, Any]:
        """A record as this API version shows it (a copy: the answer is encoded after the lock is
        released; a shallow one when the caller encodes it at once)."""
        shown = copy.deepcopy(record) if deep else dict(record)
        version = api_version(self.store)
        for field, since in _VERSIONED_FIELDS.get(collection, {}).items():
            if version < since:
                shown.pop(field, None)
        if collection == "loadbalancers" and shown.get("flavor_id") is None and "flavor_id" in shown:
            shown["flavor_id"] = ""
        return shown

    def list_resources(self, collection: str, request: Request) -> Response:
        records = self._records(collection, request)
        query = request.query
        records = _filter(self.store, collection, records, query)
        page, links = _page(self.store, collection, records, query, self._base_url(request) + request.path)
        shown = [self.view(collection, r, deep=False) for r in page]
        fields = _fields(query)
        if fields:
            shown = [{k: v for k, v in r.items() if k in fields} for r in shown]
        # Encoded now, under the store lock, instead of deep-copying every record of the page.
        return Response(200, json.dumps({collection: shown, f"{collection}_links": links}).encode())

    def show_resource(self, collection: str, request: Request) -> Response:
        record = self._find(collection, request)
        shown = self.view(collection, record)
        fields = _fields(request.query)
        if fields:
            shown = {k: v for k, v in shown.items() if k in fields}
        return Response(200, {_RESOURCE_KEY[collection]: shown})

    def _find(self, collection: str, request: Request) -> dict[str, Any]:
        rid = request.params["id"]
        record = self.store.get(collection, rid)
        if record is None:
            raise _not_found(collection, rid)
        self._authorize(request, record)
        if collection == "members":
            pool = _get(self.store, "pools", request.params["pool_id"])
            if not any(r["id"] == rid for r in pool.get("members", [])):
                raise _not_found(collection, rid)
        return record

    def _body(self, collection: str, request: Request) -> dict[str, Any]:
        key = _RESOURCE_KEY[collection]
        try:
            data = request.json()
        except ValueError as exc:
            raise octavia_error(400, f"Invalid JSON: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get(key), dict):
            raise octavia_error(400, f"Missing argument: \"{key}\"")
        body: dict[str, Any] = dict(data[key])
        unknown = [f for f, since in _VERSIONED_FIELDS.get(collection, {}).items()
                   if f in body and api_version(self.store) < since]
        if unknown:
            # wsme refuses attributes the type does not have (yet).
            raise octavia_error(400, f"Unknown attribute for argument {key}: {', '.join(sorted(unknown))}")
        tags = body.get("tags")
        if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
            raise octavia_error(400, f"Invalid input for field/attribute tags. Value: '{tags}'.")
        return body

    def create_resource(self, collection: str, request: Request) -> Response:
        body = self._body(collection, request)
        store = self.store
        if collection == "loadbalancers":
            body.pop("provisioning_status", None)  # not settable through the API
            body.pop("operating_status", None)
            if body.get("listeners") or body.get("pools"):
                raise octavia_error(501, "Fully populated load balancer creation is not simulated.")
            body.pop("listeners", None)
            body.pop("pools", None)
            if not (body.get("vip_subnet_id") or body.get("vip_network_id") or body.get("vip_port_id")):
                raise octavia_error(
                    400, "Validation failure: VIP must contain one of: vip_port_id, vip_network_id, vip_subnet_id."
                )
            body.pop("tenant_id", None)
            body["project_id"] = body.get("project_id") or self._project(request)
            self._authorize(request, body)
            record = create_loadbalancer(store, **body)
            return Response(201, {"loadbalancer": self.view(collection, record)})

        lb = self._parent_lb_for_create(collection, body, request)
        self._authorize(request, lb)
        body.pop("project_id", None)  # a child belongs to its load balancer's project
        body.pop("tenant_id", None)
        if lb["provisioning_status"] not in _MUTABLE_STATUSES:
            raise _lb_immutable(lb)
        body.pop("provisioning_status", None)
        body.pop("operating_status", None)
        body["provisioning_status"] = "PENDING_CREATE"
        body["operating_status"] = "OFFLINE"
        if collection == "listeners":
            for required in ("protocol", "protocol_port"):
                if required not in body:
                    raise octavia_error(400, f"Invalid input for field/attribute {required}. Value: 'None'. "
                                             "Mandatory field missing.")
            record = create_listener(store, **body)
        elif collection == "pools":
            record = create_pool(store, **body)
        elif collection == "members":
            for required in ("address", "protocol_port"):
                if required not in body:
                    raise octavia_error(400, f"Invalid input for field/attribute {required}. Value: 'None'. "
                                             "Mandatory field missing.")
            record = create_member(store, request.params["pool_id"], **body)
        else:
            record = create_healthmonitor(store, **body)
        _touch(store, lb, provisioning_status="PENDING_UPDATE")
        _settle_later(store, lb["id"], "lb_update")
        return Response(201, {_RESOURCE_KEY[collection]: self.view(collection, record)})

    def _parent_lb_for_create(self, collection: str, body: dict[str, Any], request: Request) -> dict[str, Any]:
        store = self.store
        if collection == "listeners":
            lb_id = body.get("loadbalancer_id")
            if not lb_id:
                raise octavia_error(400, "Invalid input for field/attribute loadbalancer_id. Value: 'None'. "
                                         "Mandatory field missing.")
            return _get(store, "loadbalancers", lb_id)
        if collection == "pools":
            if body.get("listener_id"):
                listener = _get(store, "listeners", body["listener_id"])
                return _get(store, "loadbalancers", listener["loadbalancers"][0]["id"])
            if body.get("loadbalancer_id"):
                return _get(store, "loadbalancers", body["loadbalancer_id"])
            raise _validation("Must provide at least one of: loadbalancer_id, listener_id")
        if collection == "members":
            pool = _get(store, "pools", request.params["pool_id"])
        else:
            if not body.get("pool_id"):
                raise octavia_error(400, "Invalid input for field/attribute pool_id. Value: 'None'. "
                                         "Mandatory field missing.")
            pool = _get(store, "pools", body["pool_id"])
        lb = _lb_of(store, "pools", pool)
        if lb is None:
            raise _not_found("loadbalancers", pool["loadbalancers"][0]["id"] if pool.get("loadbalancers") else "")
        return lb

    def update_resource(self, collection: str, request: Request) -> Response:
        record = self._find(collection, request)
        body = self._body(collection, request)
        store = self.store
        lb = _lb_of(store, collection, record)
        if lb is not None and lb["provisioning_status"] not in _MUTABLE_STATUSES:
            raise _lb_pending_state(lb) if collection == "loadbalancers" else _lb_immutable(lb)
        changes = {k: v for k, v in body.items() if k in _UPDATABLE[collection]}
        if collection == "listeners" and changes.get("default_pool_id"):
            _get(store, "pools", changes["default_pool_id"])
        if "tags" in changes:
            changes["tags"] = list(changes["tags"] or [])
        _touch(store, record, **changes)
        if collection != "loadbalancers":
            record["provisioning_status"] = "PENDING_UPDATE"
        if lb is not None:
            _touch(store, lb, provisioning_status="PENDING_UPDATE")
            _settle_later(store, lb["id"], "lb_update")
        return Response(200, {_RESOURCE_KEY[collection]: self.view(collection, record)})

    def delete_resource(self, collection: str, request: Request) -> Response:
        record = self._find(collection, request)
        store = self.store
        if collection == "loadbalancers":
            cascade = (request.arg("cascade") or "false").strip().lower() in ("1", "t", "true", "on", "y", "yes")
            if (record["listeners"] or record["pools"]) and not cascade:
                raise _validation(f"Cannot delete Load Balancer {record['id']} - it has children")
            if record["provisioning_status"] not in _DELETABLE_STATUSES:
                raise _lb_pending_state(record)
            _touch(store, record, provisioning_status="PENDING_DELETE")
            for _collection, child in _children(store, record):
                _touch(store, child, provisioning_status="PENDING_DELETE")
            _settle_later(store, record["id"], "lb_delete")
            return Response(204)
        lb = _lb_of(store, collection, record)
        if lb is not None and lb["provisioning_status"] not in _MUTABLE_STATUSES:
            raise _lb_immutable(lb)
        _touch(store, record, provisioning_status="PENDING_DELETE")
        if lb is None:
            _remove_child(store, collection, record)
            return Response(204)
        _touch(store, lb, provisioning_status="PENDING_UPDATE")
        _settle_later(store, lb["id"], "lb_update")
        return Response(204)

    def status_tree(self, request: Request) -> Response:
        lb = _get(self.store, "loadbalancers", request.params["id"])
        self._authorize(request, lb)
        listeners = []
        for ref in lb["listeners"]:
            listener = self.store.get("listeners", ref["id"])
            if listener is None:
                continue
            pools = []
            pool_ids = [listener["default_pool_id"]] if listener.get("default_pool_id") else []
            for pool in (self.store.get("pools", p) for p in pool_ids):
                if pool is None:
                    continue
                members = [
                    {k: m[k] for k in ("id", "name", "address", "protocol_port", "operating_status",
                                       "provisioning_status")}
                    for m in (self.store.get("members", r["id"]) for r in pool["members"]) if m is not None
                ]
                pools.append({k: pool[k] for k in ("id", "name", "operating_status", "provisioning_status")}
                             | {"members": members})
            listeners.append({k: listener[k] for k in ("id", "name", "operating_status", "provisioning_status")}
                             | {"pools": pools})
        tree = {k: lb[k] for k in ("id", "name", "operating_status", "provisioning_status")} | {"listeners": listeners}
        return Response(200, {"statuses": {"loadbalancer": tree}})


# -- filtering, sorting, paging (Octavia's PaginationHelper) ---------------------------------------
# API attribute names that filter on something else than a top-level key of the record.
_NON_FILTERABLE = {"listeners", "pools", "members", "loadbalancers", "l7policies", "additional_vips",
                   "sni_container_refs", "insert_headers", "session_persistence", "tags"}


def _tag_list(values: list[str]) -> list[str]:
    return [t for t in itertools.chain.from_iterable(v.split(",") for v in values) if t]


def _matches(value: Any, wanted: str) -> bool:
    if isinstance(value, bool):
        return wanted.strip().lower() in (("1", "t", "true", "on", "y", "yes") if value else
                                          ("0", "f", "false", "off", "n", "no"))
    if value is None:
        return wanted in ("", "None", "null")
    return str(value) == wanted


def _filter(store: Store, collection: str, records: list[dict[str, Any]],
            query: dict[str, list[str]]) -> list[dict[str, Any]]:
    filters: dict[str, str] = {}
    tag_filters: dict[str, list[str]] = {}
    known = set().union(*(r.keys() for r in records)) if records else None
    for name, values in query.items():
        if name in _PAGINATION_ARGS:
            continue
        if name in _TAG_FILTERS:
            tag_filters[name] = _tag_list(values)
            continue
        if name == "loadbalancer_id" and collection in ("listeners", "pools"):
            filters[name] = values[-1]
            continue
        if name in _NON_FILTERABLE or (known is not None and name not in known and name != "id"):
            raise octavia_error(400, "One or more arguments are either duplicate or invalid")
        if len(values) > 1:
            # Seen on a real Octavia 19: `?id=a&id=b` is no "any of" filter (as Neutron's is) but a
            # 500 that keystoneauth reports as "Unrecognized schema in response body".
            raise octavia_error(500, "Internal Server Error")
        filters[name] = values[-1]
    if not supports_tags(store):
        tag_filters = {}  # an Octavia older than 2.5 has no tags to filter on
    selected = []
    for record in records:
        if not _record_matches(record, filters):
            continue
        tags = set(record.get("tags") or [])
        if "tags" in tag_filters and not set(tag_filters["tags"]) <= tags:
            continue
        if "tags-any" in tag_filters and not tags & set(tag_filters["tags-any"]):
            continue
        if "not-tags" in tag_filters and tag_filters["not-tags"] and set(tag_filters["not-tags"]) <= tags:
            continue
        if "not-tags-any" in tag_filters and tags & set(tag_filters["not-tags-any"]):
            continue
        selected.append(record)
    return selected


def _record_matches(record: dict[str, Any], filters: dict[str, str]) -> bool:
    for name, wanted in filters.items():
        if name == "loadbalancer_id":
            if not any(ref["id"] == wanted for ref in record.get("loadbalancers", [])):
                return False
            continue
        if not _matches(record.get(name), wanted):
            return False
    return True


def _fields(query: dict[str, list[str]]) -> set[str]:
    return set(_tag_list(query.get("fields", [])))


def _sort_keys(query: dict[str, list[str]]) -> list[tuple[str, str]]:
    keys: list[tuple[str, str]] = []
    sort = query.get("sort", [None])[-1]
    sort_key = query.get("sort_key", [None])[-1]
    if sort:
        for part in sort.split(","):
            name, _, direction = part.partition(":")
            keys.append((name, _sort_dir(direction or "asc")))
    elif sort_key:
        names = sort_key.split(",")
        dirs = (query.get("sort_dir", [""])[-1] or "").split(",") if query.get("sort_dir") else []
        dirs += ["asc"] * (len(names) - len(dirs))
        keys = [(n, _sort_dir(d or "asc")) for n, d in zip(names, dirs, strict=False)]
    for default in ("created_at", "id"):
        if default not in [k for k, _ in keys]:
            keys.append((default, "asc"))
    return keys


def _sort_dir(direction: str) -> str:
    direction = direction.lower()
    if direction not in ("asc", "desc"):
        raise octavia_error(400, f"Supplied sort direction '{direction}' is not valid.")
    return direction


def _compare(a: dict[str, Any], b: dict[str, Any], keys: list[tuple[str, str]]) -> int:
    for name, direction in keys:
        va, vb = a.get(name), b.get(name)
        va = "" if va is None else va
        vb = "" if vb is None else vb
        if va == vb:
            continue
        try:
            less = va < vb
        except TypeError:
            less = str(va) < str(vb)
        result = -1 if less else 1
        return result if direction == "asc" else -result
    return 0


def _sorted(records: list[dict[str, Any]], keys: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """`records` in the order `_compare` gives, by a stable sort per key (last key first): a sort with a
    comparison function took seconds for each page of 4,000 load balancers."""
    ordered = list(records)
    for name, direction in reversed(keys):
        values: list[Any] = ["" if r.get(name) is None else r.get(name) for r in ordered]
        try:
            order = sorted(range(len(ordered)), key=lambda i: values[i], reverse=direction == "desc")
        except TypeError:  # mixed types: compared as text, as _compare does
            text = [str(v) for v in values]
            order = sorted(range(len(ordered)), key=text.__getitem__, reverse=direction == "desc")
        ordered = [ordered[i] for i in order]
    return ordered


def _limit(query: dict[str, list[str]]) -> int | None:
    raw = query.get("limit", [None])[-1]
    if raw is None:
        return _PAGINATION_MAX_LIMIT
    try:
        if raw == "infinite" or int(raw) < 1:
            return None
        return min(int(raw), _PAGINATION_MAX_LIMIT)
    except ValueError as exc:
        raise octavia_error(400, f"Supplied pagination limit '{raw}' is not valid.") from exc


def _page(store: Store, collection: str, records: list[dict[str, Any]], query: dict[str, list[str]],
          path_url: str) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """One page and its links, as Octavia computes them.

    Octavia quirks kept on purpose: with page_reverse=True the page holds the records *before* the
    marker but still in ascending order, counted from the start; and a "next" link is given whenever
    the page is full (so the last page of an exact multiple is followed by an empty one).
    """
    keys = _sort_keys(query)
    for name, _ in keys:
        if records and name not in records[0] and name != "id":
            raise octavia_error(400, f"Supplied sort key '{name}' is not valid.")

    ordered = _sorted(records, keys)
    limit = _limit(query)
    marker_id = query.get("marker", [None])[-1]
    page_reverse = query.get("page_reverse", ["False"])[-1] == "True"
    if marker_id is not None:
        marker = store.get(collection, marker_id)
        if marker is None:
            raise octavia_error(400, f"Supplied pagination marker '{marker_id}' is not valid.")
        if page_reverse:
            ordered = [r for r in ordered if _compare(r, marker, keys) < 0]
        else:
            ordered = [r for r in ordered if _compare(r, marker, keys) > 0]
    page = ordered if limit is None else ordered[:limit]
    links: list[dict[str, str]] = []
    if page:
        params = [f"limit={limit}"]
        for name in ("sort", "sort_key"):
            if query.get(name):
                params.append(f"{name}={query[name][-1]}")
        if marker_id:
            previous = params + [f"marker={page[0]['id']}", "page_reverse=True"]
            links.append({"href": f"{path_url}?{'&'.join(previous)}", "rel": "previous"})
        if limit is None or len(page) >= limit:
            following = params + [f"marker={page[-1]['id']}"]
            links.append({"href": f"{path_url}?{'&'.join(following)}", "rel": "next"})
    return page, links
