"""Nova v2.1 (compute): what the node reboot (spec R) and the admin's `openstack server ...` need.

Version discovery with microversions (2.1 .. MAX_MICROVERSION, negotiated through the
`OpenStack-API-Version` header as openstacksdk does), servers list (`/servers`, `/servers/detail`,
filters including Nova's regular-expression `name` match, limit/marker paging with
`servers_links`), show, the reboot action, and read-only flavors (derived from the servers, for
clients that ask for flavor names below microversion 2.47).

Reboot follows Nova's state checks (nova/compute/api.py): a SOFT reboot needs vm_state active and no
task in progress; a HARD reboot is also allowed from stopped, paused, suspended and error, and
while a soft reboot is under way (that is how an admin escalates), but not during another hard
reboot. An accepted reboot answers 202, shows status REBOOT (HARD_REBOOT), emits the store event
"server_reboot" (server_id=..., hard=...) for the OpenShift behaviours, and the server is ACTIVE
again after the store delay "server_reboot". Refusals are 409 conflictingRequest with Nova's text.

`create_server(store, **attrs)` is the model function the scenario generator uses; the caller holds
`store.lock`.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import re
from typing import Any

from kuryr_cleanup.sim import keystone
from kuryr_cleanup.sim.http import ApiError, Request, Response, Service
from kuryr_cleanup.sim.store import Store, iso_now, new_id

MIN_MICROVERSION = (2, 1)
MAX_MICROVERSION = (2, 96)
_VERSION_UPDATED = "2013-07-23T11:33:21Z"
_MAX_LIMIT = 1000  # Nova's [api] max_limit default

# Status shown by the API for each vm_state (nova/api/openstack/common.py, without task overrides).
_STATUS_OF_VM_STATE = {
    "active": "ACTIVE",
    "building": "BUILD",
    "stopped": "SHUTOFF",
    "paused": "PAUSED",
    "suspended": "SUSPENDED",
    "error": "ERROR",
    "shelved_offloaded": "SHELVED_OFFLOADED",
    "deleted": "DELETED",
}
_VM_STATE_OF_STATUS = {status: vm_state for vm_state, status in _STATUS_OF_VM_STATE.items()}
_POWER_STATE_OF_VM_STATE = {"active": 1, "stopped": 4, "paused": 3, "suspended": 7, "error": 0, "building": 0}

# nova/compute/vm_states.py and task_states.py: who may reboot, and when.
_ALLOW_SOFT_REBOOT = ("active",)
_ALLOW_HARD_REBOOT = ("active", "stopped", "paused", "suspended", "error")
_TASKS_ALLOWING_HARD_REBOOT = (None, "rebooting", "reboot_pending", "reboot_started", "resuming",
                               "rebooting_hard", "unpausing", "pausing", "suspending")

_instance_numbers: itertools.count[int] = itertools.count(1)


# -- errors ----------------------------------------------------------------------------------------
_FAULT_NAMES = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound", 405: "badMethod",
                409: "conflictingRequest", 413: "overLimit", 415: "badMediaType", 429: "overLimit",
                501: "notImplemented", 503: "serviceUnavailable"}


def nova_error(status: int, message: str) -> ApiError:
    """An error as Nova's API answers it: {"<faultName>": {"code", "message"}}."""
    return ApiError(status, {_FAULT_NAMES.get(status, "computeFault"): {"code": status, "message": message}})


def _server_not_found(server_id: str) -> ApiError:
    return nova_error(404, f"Instance {server_id} could not be found.")


# -- the model -------------------------------------------------------------------------------------
def create_server(store: Store, **attrs: Any) -> dict[str, Any]:
    """A server as Nova's `GET /servers/<id>` shows it at the highest microversion.

    Useful attrs: name, status ("ACTIVE", "SHUTOFF", "ERROR", ...), addresses
    ({network name: [{"addr", "version", "OS-EXT-IPS:type", "OS-EXT-IPS-MAC:mac_addr"}]}), metadata,
    flavor (a name or Nova's embedded-flavor dict), image (an id or Nova's image dict), host,
    key_name, security_groups (names), tags.
    """
    now = iso_now(store.clock.now())
    server_id = attrs.pop("id", None) or new_id()
    name = attrs.pop("name", "") or ""
    status = str(attrs.pop("status", "ACTIVE")).upper()
    vm_state = attrs.pop("OS-EXT-STS:vm_state", None) or _VM_STATE_OF_STATUS.get(status, "active")
    project_id = attrs.pop("tenant_id", None) or attrs.pop("project_id", None) or store.project_id
    host = attrs.pop("host", None) or attrs.pop("OS-EXT-SRV-ATTR:host", None) or "compute-0"
    flavor = attrs.pop("flavor", None) or "m1.xlarge"
    if isinstance(flavor, str):
        flavor = {"vcpus": 4, "ram": 16384, "disk": 40, "ephemeral": 0, "swap": 0, "original_name": flavor,
                  "extra_specs": {}}
    image = attrs.pop("image", None)
    if isinstance(image, str):
        image = {"id": image}
    groups = attrs.pop("security_groups", None) or ["default"]
    number = next(_instance_numbers)
    record: dict[str, Any] = {
        "id": server_id,
        "name": name,
        "status": status,
        "tenant_id": project_id,
        "user_id": attrs.pop("user_id", None) or store.project_id[:16] + "0" * 16,
        "metadata": dict(attrs.pop("metadata", None) or {}),
        "hostId": hashlib.sha224((project_id + host).encode()).hexdigest(),
        "image": image if image is not None else "",
        "flavor": flavor,
        "created": now,
        "updated": now,
        "addresses": copy.deepcopy(attrs.pop("addresses", None) or {}),
        "accessIPv4": "",
        "accessIPv6": "",
        "OS-DCF:diskConfig": "MANUAL",
        "progress": 0,
        "OS-EXT-AZ:availability_zone": attrs.pop("availability_zone", None) or "nova",
        "config_drive": "",
        "key_name": attrs.pop("key_name", None),
        "OS-SRV-USG:launched_at": now.rstrip("Z") + ".000000",
        "OS-SRV-USG:terminated_at": None,
        "security_groups": [g if isinstance(g, dict) else {"name": g} for g in groups],
        "OS-EXT-SRV-ATTR:host": host,
        "OS-EXT-SRV-ATTR:instance_name": f"instance-{number:08x}",
        "OS-EXT-SRV-ATTR:hypervisor_hostname": f"{host}.localdomain",
        "OS-EXT-SRV-ATTR:reservation_id": f"r-{new_id()[:8]}",
        "OS-EXT-SRV-ATTR:launch_index": 0,
        "OS-EXT-SRV-ATTR:hostname": re.sub(r"[^a-z0-9-]", "-", name.lower()) or f"server-{server_id}",
        "OS-EXT-SRV-ATTR:kernel_id": "",
        "OS-EXT-SRV-ATTR:ramdisk_id": "",
        "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
        "OS-EXT-SRV-ATTR:user_data": None,
        "OS-EXT-STS:task_state": attrs.pop("OS-EXT-STS:task_state", None),
        "OS-EXT-STS:vm_state": vm_state,
        "OS-EXT-STS:power_state": _POWER_STATE_OF_VM_STATE.get(vm_state, 0),
        "os-extended-volumes:volumes_attached": [],
        "locked": False,
        "locked_reason": None,
        "description": attrs.pop("description", None),
        "tags": list(attrs.pop("tags", None) or []),
        "trusted_image_certificates": None,
        "host_status": "UP",
        "server_groups": [],
        "pinned_availability_zone": None,
    }
    record.update(attrs)
    return store.add("servers", record)


def reboot_server(store: Store, server_id: str, hard: bool = False) -> dict[str, Any]:
    """Start a reboot as Nova's API does (409 when the state forbids it); ACTIVE again after "server_reboot"."""
    server = store.get("servers", server_id)
    if server is None:
        raise _server_not_found(server_id)
    vm_state = server.get("OS-EXT-STS:vm_state")
    task_state = server.get("OS-EXT-STS:task_state")
    allowed_vm_states = _ALLOW_HARD_REBOOT if hard else _ALLOW_SOFT_REBOOT
    allowed_tasks = _TASKS_ALLOWING_HARD_REBOOT if hard else (None,)
    if vm_state not in allowed_vm_states:
        raise _conflict(server_id, "vm_state", vm_state)
    if task_state not in allowed_tasks:
        raise _conflict(server_id, "task_state", task_state)
    started_status = "HARD_REBOOT" if hard else "REBOOT"
    server.update(
        {
            "status": started_status,
            "OS-EXT-STS:task_state": "reboot_started_hard" if hard else "reboot_started",
            "updated": iso_now(store.clock.now()),
        }
    )
    store.emit("server_reboot", server_id=server_id, hard=hard)

    def back_up() -> None:
        current = store.get("servers", server_id)
        if current is None or current["OS-EXT-STS:task_state"] not in ("reboot_started", "reboot_started_hard"):
            return
        if current["status"] != started_status:
            return  # a later reboot (a soft one escalated to hard) owns the transition now
        current.update(
            {
                "status": "ACTIVE",
                "OS-EXT-STS:vm_state": "active",
                "OS-EXT-STS:task_state": None,
                "OS-EXT-STS:power_state": 1,
                "updated": iso_now(store.clock.now()),
            }
        )

    store.schedule("server_reboot", back_up)
    return server


def _conflict(server_id: str, attr: str, state: Any) -> ApiError:
    # nova/api/openstack/common.py raise_http_conflict_for_instance_invalid_state
    return nova_error(409, f"Cannot 'reboot' instance {server_id} while it is in {attr} {state}")


# -- microversions ---------------------------------------------------------------------------------
def _parse_version(text: str) -> tuple[int, int]:
    major, _, minor = text.strip().partition(".")
    return int(major), int(minor)


def _format(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def requested_microversion(request: Request) -> tuple[int, int]:
    """The microversion a request asks for (2.1 when it asks for none), or 406 like Nova."""
    raw = None
    header = request.header("openstack-api-version")
    if header:
        for part in header.split(","):
            service, _, value = part.strip().partition(" ")
            if service.lower() == "compute":
                raw = value.strip()
    if raw is None:
        raw = request.header("x-openstack-nova-api-version")
    if not raw:
        return MIN_MICROVERSION
    if raw.lower() == "latest":
        return MAX_MICROVERSION
    try:
        version = _parse_version(raw)
    except ValueError as exc:
        raise nova_error(400, f"API Version String {raw} is of invalid format. Must be of format "
                              "MajorNum.MinorNum.") from exc
    if not MIN_MICROVERSION <= version <= MAX_MICROVERSION:
        raise nova_error(406, f"Version {raw} is not supported by the API. Minimum is "
                              f"{_format(MIN_MICROVERSION)} and maximum is {_format(MAX_MICROVERSION)}.")
    return version


# -- the API ---------------------------------------------------------------------------------------
_V21 = r"/v2\.1"
_ID = r"(?P<id>[^/]+)"


class Nova(Service):
    """The Nova v2.1 API under /compute (the catalog points compute at /compute/v2.1)."""

    name = "compute"
    prefix = "/compute"

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self.route("GET", r"/?", self.versions)
        self.route("GET", _V21 + r"/?", self.version)
        self.route("GET", _V21 + r"/servers/?", self.list_servers)
        self.route("GET", _V21 + r"/servers/detail/?", self.list_servers_detail)
        self.route("GET", _V21 + rf"/servers/{_ID}/?", self.show_server)
        self.route("POST", _V21 + rf"/servers/{_ID}/action/?", self.server_action)
        self.route("GET", _V21 + r"/flavors/?", self.list_flavors)
        self.route("GET", _V21 + r"/flavors/detail/?", self.list_flavors_detail)
        self.route("GET", _V21 + rf"/flavors/{_ID}/?", self.show_flavor)

    # -- plumbing ------------------------------------------------------------------------------
    def fault_response(self, status: int, retry_after: float | None) -> Response:
        headers = {"Retry-After": str(max(0, int(-(-retry_after // 1))))} if retry_after is not None else {}
        err = nova_error(status, "Injected fault: the server could not complete the request.")
        return Response(status, err.body, headers)

    def not_found(self, request: Request) -> Response:
        return Response(404, nova_error(404, "The resource could not be found.").body)

    def method_not_allowed(self, request: Request) -> Response:
        return Response(405, nova_error(405, "The method specified is not allowed for this resource.").body)

    def dispatch(self, request: Request) -> Response:
        if request.path.rstrip("/") in ("", "/v2.1"):
            return super().dispatch(request)  # version discovery needs no token, as in Nova
        request.auth = keystone.token_context(self.store, request.header("x-auth-token"))
        if request.auth is None:
            return keystone.unauthorized_response()
        try:
            version = requested_microversion(request)
        except ApiError as err:
            return Response(err.status, err.body)
        request.headers["x-sim-microversion"] = _format(version)
        response = super().dispatch(request)
        response.headers.update(
            {
                "OpenStack-API-Version": f"compute {_format(version)}",
                "X-OpenStack-Nova-API-Version": _format(version),
                "Vary": "OpenStack-API-Version, X-OpenStack-Nova-API-Version",
            }
        )
        return response

    def _base_url(self, request: Request) -> str:
        host = request.header("host") or "127.0.0.1"
        return f"http://{host}{self.prefix}"

    @staticmethod
    def _microversion(request: Request) -> tuple[int, int]:
        return _parse_version(request.header("x-sim-microversion") or _format(MIN_MICROVERSION))

    # -- versions ------------------------------------------------------------------------------
    def _v21(self, request: Request) -> dict[str, Any]:
        return {
            "id": "v2.1",
            "status": "CURRENT",
            "version": _format(MAX_MICROVERSION),
            "min_version": _format(MIN_MICROVERSION),
            "updated": _VERSION_UPDATED,
            "links": [{"rel": "self", "href": f"{self._base_url(request)}/v2.1/"}],
        }

    def versions(self, request: Request) -> Response:
        v20 = {
            "id": "v2.0",
            "status": "DEPRECATED",
            "version": "",
            "min_version": "",
            "updated": "2025-07-04T12:00:00Z",
            "links": [{"rel": "self", "href": f"{self._base_url(request)}/v2/"}],
        }
        return Response(200, {"versions": [v20, self._v21(request)]})

    def version(self, request: Request) -> Response:
        doc = self._v21(request)
        doc["links"].append({"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"})
        doc["media-types"] = [{"base": "application/json",
                               "type": "application/vnd.openstack.compute+json;version=2.1"}]
        return Response(200, {"version": doc})

    # -- servers -------------------------------------------------------------------------------
    def _links(self, request: Request, collection: str, rid: str) -> list[dict[str, str]]:
        base = self._base_url(request)
        return [
            {"rel": "self", "href": f"{base}/v2.1/{collection}/{rid}"},
            {"rel": "bookmark", "href": f"{base}/{collection}/{rid}"},
        ]

    def server_view(self, request: Request, server: dict[str, Any]) -> dict[str, Any]:
        """The server as the requested microversion shows it (a copy, encoded after the lock is released)."""
        shown = copy.deepcopy(server)
        shown["links"] = self._links(request, "servers", server["id"])
        version = self._microversion(request)
        if isinstance(shown.get("image"), dict) and "id" in shown["image"]:
            shown["image"]["links"] = [{"rel": "bookmark",
                                        "href": f"{self._base_url(request)}/images/{shown['image']['id']}"}]
        if version < (2, 47):
            # Before 2.47 the flavor is a reference, not the embedded copy.
            flavor_id = _flavor_id(shown.get("flavor") or {})
            shown["flavor"] = {"id": flavor_id, "links": [{"rel": "bookmark",
                                                            "href": f"{self._base_url(request)}/flavors/{flavor_id}"}]}
        for field, since in (("locked", (2, 9)), ("description", (2, 19)), ("tags", (2, 26)),
                             ("trusted_image_certificates", (2, 63)), ("locked_reason", (2, 73)),
                             ("server_groups", (2, 71)), ("host_status", (2, 16)),
                             ("pinned_availability_zone", (2, 96)), ("OS-EXT-SRV-ATTR:hostname", (2, 3)),
                             ("OS-EXT-SRV-ATTR:reservation_id", (2, 3)), ("OS-EXT-SRV-ATTR:launch_index", (2, 3)),
                             ("OS-EXT-SRV-ATTR:kernel_id", (2, 3)), ("OS-EXT-SRV-ATTR:ramdisk_id", (2, 3)),
                             ("OS-EXT-SRV-ATTR:root_device_name", (2, 3)), ("OS-EXT-SRV-ATTR:user_data", (2, 3))):
            if version < since:
                shown.pop(field, None)
        return shown

    # -- who sees what (nova/api/openstack/compute/servers.py: _get_servers) ------------------------
    def _project(self, request: Request) -> str:
        context = request.auth
        return (context.project_id if context is not None else None) or self.store.project_id

    def _server(self, request: Request, server_id: str) -> dict[str, Any]:
        """The server, if the token's project owns it or the token is an admin's; else "not found"."""
        server = self.store.get("servers", server_id)
        admin = request.auth is None or request.auth.is_admin
        if server is None or (not admin and server.get("tenant_id") != self._project(request)):
            raise _server_not_found(server_id)
        return server

    def _selected_servers(self, request: Request) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        query = request.query
        servers = list(self.store.all("servers"))
        # Without all_tenants a listing is the token's project's, admin or not: Nova then drops the
        # project_id/tenant_id filters and puts the context's project in their place. all_tenants is
        # for admins only (policy os_compute_api:servers:[detail:]get_all_tenants).
        all_tenants = "all_tenants" in query and (_last(query, "all_tenants") or "").lower() not in (
            "0", "false", "f", "no", "n", "off")
        if all_tenants:
            if request.auth is not None and not request.auth.is_admin:
                detail = "detail:" if request.path.rstrip("/").endswith("/detail") else "index:"
                raise nova_error(403, f"Policy doesn't allow os_compute_api:servers:{detail}get_all_tenants to be "
                                      "performed.")
        else:
            servers = [s for s in servers if s.get("tenant_id") == self._project(request)]
        name = _last(query, "name")
        if name:
            try:
                pattern = re.compile(name)
            except re.error:
                pattern = re.compile(re.escape(name))
            # Nova matches `name` as an unanchored regular expression (MySQL REGEXP / re.search).
            servers = [s for s in servers if pattern.search(s.get("name") or "")]
        status = _last(query, "status")
        if status:
            servers = [s for s in servers if s["status"] == status.upper()]
        ip = _last(query, "ip")
        if ip:
            ip_pattern = re.compile(ip)
            servers = [s for s in servers if any(ip_pattern.search(a.get("addr", ""))
                                                 for addrs in s.get("addresses", {}).values() for a in addrs)]
        for filter_name, field in (("host", "OS-EXT-SRV-ATTR:host"), ("node", "OS-EXT-SRV-ATTR:hypervisor_hostname"),
                                   ("vm_state", "OS-EXT-STS:vm_state"), ("task_state", "OS-EXT-STS:task_state"),
                                   ("availability_zone", "OS-EXT-AZ:availability_zone"), ("key_name", "key_name")):
            wanted = _last(query, filter_name)
            if wanted:
                servers = [s for s in servers if str(s.get(field)) == wanted]
        project = _last(query, "project_id") or _last(query, "tenant_id")
        if project and all_tenants:
            servers = [s for s in servers if s.get("tenant_id") == project]
        tags = _last(query, "tags")
        if tags:
            wanted_tags = set(tags.split(","))
            servers = [s for s in servers if wanted_tags <= set(s.get("tags") or [])]
        # Nova's default order: newest first (created_at desc, then id desc).
        sort_dir = (_last(query, "sort_dir") or "desc").lower()
        sort_key = _last(query, "sort_key") or "created"
        field = {"created_at": "created", "updated_at": "updated", "display_name": "name"}.get(sort_key, sort_key)
        servers.sort(key=lambda s: (str(s.get(field) or ""), s["id"]), reverse=sort_dir == "desc")
        marker = _last(query, "marker")
        if marker is not None:
            ids = [s["id"] for s in servers]
            if marker not in ids:
                raise nova_error(400, f"marker [{marker}] not found")
            servers = servers[ids.index(marker) + 1:]
        raw_limit = _last(query, "limit")
        try:
            limit = min(int(raw_limit), _MAX_LIMIT) if raw_limit is not None else _MAX_LIMIT
        except ValueError as exc:
            raise nova_error(400, f"Invalid input for query parameters limit. Value: {raw_limit}.") from exc
        if limit < 0:
            raise nova_error(400, f"Invalid input for query parameters limit. Value: {raw_limit}.")
        page = servers[:limit]
        links: list[dict[str, str]] = []
        if page and len(page) == limit:
            params = [f"{k}={v[-1]}" for k, v in query.items() if k != "marker"]
            params.append(f"marker={page[-1]['id']}")
            links.append({"rel": "next", "href": f"{self._base_url(request)}{request.path}?{'&'.join(params)}"})
        return page, links

    def list_servers(self, request: Request) -> Response:
        page, links = self._selected_servers(request)
        body: dict[str, Any] = {
            "servers": [{"id": s["id"], "name": s["name"], "links": self._links(request, "servers", s["id"])}
                        for s in page]
        }
        if links:
            body["servers_links"] = links
        return Response(200, body)

    def list_servers_detail(self, request: Request) -> Response:
        page, links = self._selected_servers(request)
        body: dict[str, Any] = {"servers": [self.server_view(request, s) for s in page]}
        if links:
            body["servers_links"] = links
        return Response(200, body)

    def show_server(self, request: Request) -> Response:
        server = self._server(request, request.params["id"])
        return Response(200, {"server": self.server_view(request, server)})

    def server_action(self, request: Request) -> Response:
        server_id = request.params["id"]
        self._server(request, server_id)
        try:
            body = request.json()
        except ValueError as exc:
            raise nova_error(400, "Malformed request body") from exc
        if not isinstance(body, dict) or len(body) != 1:
            raise nova_error(400, "Malformed request body")
        action, args = next(iter(body.items()))
        if action != "reboot":
            raise nova_error(400, f"There is no such action: {action}")
        reboot_type = (args or {}).get("type") if isinstance(args, dict) else None
        if not isinstance(reboot_type, str) or reboot_type.upper() not in ("SOFT", "HARD"):
            raise nova_error(400, f"Invalid input for field/attribute type. Value: {reboot_type}. "
                                  f"'{reboot_type}' is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']")
        reboot_server(self.store, server_id, hard=reboot_type.upper() == "HARD")
        return Response(202)

    # -- flavors (derived from the servers' embedded flavors) ----------------------------------
    def _flavors(self) -> dict[str, dict[str, Any]]:
        flavors: dict[str, dict[str, Any]] = {}
        for server in self.store.all("servers"):
            embedded = server.get("flavor") or {}
            flavor_id = _flavor_id(embedded)
            flavors.setdefault(
                flavor_id,
                {
                    "id": flavor_id,
                    "name": embedded.get("original_name", flavor_id),
                    "vcpus": embedded.get("vcpus", 0),
                    "ram": embedded.get("ram", 0),
                    "disk": embedded.get("disk", 0),
                    "OS-FLV-EXT-DATA:ephemeral": embedded.get("ephemeral", 0),
                    "swap": embedded.get("swap", 0) or "",
                    "rxtx_factor": 1.0,
                    "os-flavor-access:is_public": True,
                    "OS-FLV-DISABLED:disabled": False,
                    "description": None,
                    "extra_specs": embedded.get("extra_specs", {}),
                },
            )
        return flavors

    def _flavor_view(self, request: Request, flavor: dict[str, Any]) -> dict[str, Any]:
        shown = dict(flavor, links=self._links(request, "flavors", flavor["id"]))
        version = self._microversion(request)
        if version < (2, 55):
            shown.pop("description", None)
        if version < (2, 61):
            shown.pop("extra_specs", None)
        return shown

    def list_flavors(self, request: Request) -> Response:
        return Response(200, {"flavors": [{"id": f["id"], "name": f["name"],
                                           "links": self._links(request, "flavors", f["id"])}
                                          for f in self._flavors().values()]})

    def list_flavors_detail(self, request: Request) -> Response:
        return Response(200, {"flavors": [self._flavor_view(request, f) for f in self._flavors().values()]})

    def show_flavor(self, request: Request) -> Response:
        flavor = self._flavors().get(request.params["id"])
        if flavor is None:
            raise nova_error(404, f"Flavor {request.params['id']} could not be found.")
        return Response(200, {"flavor": self._flavor_view(request, flavor)})


def _flavor_id(embedded: dict[str, Any]) -> str:
    return str(embedded.get("id") or embedded.get("original_name") or "unknown")


def _last(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None

