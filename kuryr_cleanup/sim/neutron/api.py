"""The Neutron v2.0 HTTP API under /networking: discovery, extensions, CRUD, actions, tags."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from kuryr_cleanup.sim import keystone
from kuryr_cleanup.sim.http import ApiError, Request, Response, Service
from kuryr_cleanup.sim.neutron import dvr, policy
from kuryr_cleanup.sim.neutron.listing import (
    CREATE_ONLY,
    READ_ONLY,
    UPDATABLE_OVERRIDES,
    list_records,
    record_fields,
)
from kuryr_cleanup.sim.neutron.networks import (
    create_network,
    create_subnet,
    create_subnetpool,
    delete_network,
    delete_subnet,
    delete_subnetpool,
)
from kuryr_cleanup.sim.neutron.ports import (
    add_subports,
    create_port,
    create_trunk,
    delete_port,
    delete_trunk,
    remove_subports,
)
from kuryr_cleanup.sim.neutron.records import (
    PREFIX,
    TAGGABLE,
    NeutronError,
    add_tag,
    bad_request,
    change,
    get,
    not_found,
    remove_tag,
    set_tags,
    tag_extension_enabled,
)
from kuryr_cleanup.sim.neutron.routers import (
    add_router_interface,
    associate_floatingip,
    create_floatingip,
    create_router,
    delete_floatingip,
    delete_router,
    remove_router_interface,
    router_interface_info,
    set_router_gateway,
)
from kuryr_cleanup.sim.neutron.security_groups import (
    create_security_group,
    create_security_group_rule,
    delete_security_group,
    delete_security_group_rule,
)
from kuryr_cleanup.sim.store import Store

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


# With DVR (neutron_lib/api/definitions/dvr.py).
_DVR_EXTENSIONS: list[tuple[str, str, str]] = [
    ("dvr", "Distributed Virtual Router", "Enables configuration of Distributed Virtual Routers."),
]


def extensions(store: Store) -> list[dict[str, Any]]:
    listed = _EXTENSIONS + (_TAG_EXTENSIONS if tag_extension_enabled(store) else [])
    listed += _DVR_EXTENSIONS if dvr.routers_distributed_by_default(store) else []
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
    prefix = PREFIX

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
        if request.path not in ("", "/"):
            request.auth = keystone.token_context(self.store, request.header("x-auth-token"))
            if request.auth is None:
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
    def _get(self, request: Request, collection: str, rid: str) -> dict[str, Any]:
        """The record, if the caller may see it; else the collection's NotFound, as for no record at all."""
        record = get(self.store, collection, rid)
        if not policy.visible(self.store, collection, record, request.auth):
            raise not_found(collection, rid)
        return record

    def list(self, request: Request) -> Response:
        collection, _ = self._kind(request)
        context = request.auth
        visible = None if policy.sees_everything(context) else (
            lambda record: policy.visible(self.store, collection, record, context))
        page, links = list_records(self.store, collection, request, visible)
        fields = [f for f in request.query.get("fields", []) if f]
        body: dict[str, Any] = {collection: [self._present(r, fields) for r in page]}
        if links:
            body[f"{collection}_links"] = links
        return _json_response(200, body)

    def show(self, request: Request) -> Response:
        collection, singular = self._kind(request)
        record = self._get(request, collection, request.params["id"])
        fields = [f for f in request.query.get("fields", []) if f]
        return _json_response(200, {singular: self._present(record, fields)})

    def _create_one(self, collection: str, attrs: Any, request: Request) -> dict[str, Any]:
        if not isinstance(attrs, dict):
            raise bad_request("Invalid input: the body must be an object")
        allowed = record_fields(collection) | CREATE_ONLY.get(collection, set()) | {"tenant_id", "project_id"}
        unknown = sorted(set(attrs) - allowed)
        if unknown:
            raise bad_request(f"Unrecognized attribute(s) '{', '.join(unknown)}'")
        if "tags" in attrs and not tag_extension_enabled(self.store):
            raise bad_request("Unrecognized attribute(s) 'tags'")
        return _CREATORS[collection](self.store, **policy.owner_for_create(self.store, attrs, request.auth))

    def create(self, request: Request) -> Response:
        collection, singular = self._kind(request)
        data = request.json() if request.body else None
        if isinstance(data, dict) and collection in data:
            created: list[dict[str, Any]] = []
            try:
                for attrs in data[collection]:
                    created.append(self._create_one(collection, attrs, request))
            except ApiError:
                for record in reversed(created):  # bulk create is all or nothing
                    _DELETERS[collection](self.store, record["id"])
                raise
            return _json_response(201, {collection: [self._present(r) for r in created]})
        record = self._create_one(collection, self._body(request, singular), request)
        return _json_response(201, {singular: self._present(record)})

    def update(self, request: Request) -> Response:
        collection, singular = self._kind(request)
        record = self._get(request, collection, request.params["id"])
        changes = self._body(request, singular)
        if not isinstance(changes, dict):
            raise bad_request("Invalid input: the body must be an object")
        updatable = (record_fields(collection) - READ_ONLY) | UPDATABLE_OVERRIDES.get(collection, set())
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
            change(self.store, collection, record, **changes)
        return _json_response(200, {singular: self._present(record)})

    def delete(self, request: Request) -> Response:
        collection, _ = self._kind(request)
        self._get(request, collection, request.params["id"])
        _DELETERS[collection](self.store, request.params["id"])
        return Response(204)

    # -- actions -------------------------------------------------------------------------------
    def _interface_request(self, request: Request) -> tuple[str | None, str | None]:
        data = request.json() if request.body else None
        if not isinstance(data, dict):
            raise bad_request("Bad router request: Either subnet_id or port_id must be specified.")
        return data.get("subnet_id"), data.get("port_id")

    def add_interface(self, request: Request) -> Response:
        self._get(request, "routers", request.params["id"])
        subnet_id, port_id = self._interface_request(request)
        port = add_router_interface(self.store, request.params["id"], subnet_id=subnet_id, port_id=port_id)
        router = self.store.os["routers"][request.params["id"]]
        return _json_response(200, router_interface_info(router, port))

    def remove_interface(self, request: Request) -> Response:
        self._get(request, "routers", request.params["id"])
        subnet_id, port_id = self._interface_request(request)
        port = remove_router_interface(self.store, request.params["id"], subnet_id=subnet_id, port_id=port_id)
        router = self.store.os["routers"][request.params["id"]]
        return _json_response(200, router_interface_info(router, port))

    def trunk_add_subports(self, request: Request) -> Response:
        self._get(request, "trunks", request.params["id"])
        trunk = add_subports(self.store, request.params["id"], self._body(request, "sub_ports") or [])
        return _json_response(200, self._present(trunk))

    def trunk_remove_subports(self, request: Request) -> Response:
        self._get(request, "trunks", request.params["id"])
        trunk = remove_subports(self.store, request.params["id"], self._body(request, "sub_ports") or [])
        return _json_response(200, self._present(trunk))

    def trunk_get_subports(self, request: Request) -> Response:
        trunk = self._get(request, "trunks", request.params["id"])
        return _json_response(200, {"sub_ports": trunk["sub_ports"]})

    # -- tags ----------------------------------------------------------------------------------
    def _tagged(self, request: Request) -> tuple[str, dict[str, Any]]:
        if not tag_extension_enabled(self.store):
            raise NeutronError(404, "HTTPNotFound", "The resource could not be found.")
        collection, _ = self._kind(request)
        return collection, self._get(request, collection, request.params["id"])

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
