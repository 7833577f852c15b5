"""Keystone v3 under /identity: version discovery, token issue and validation, the service catalog.

Enough of Keystone for keystoneauth (openstacksdk, the `openstack` CLI) to authenticate unmodified:
password and application-credential methods, project-scoped tokens carrying the catalog of the
simulated services, and the few reads the clients make (project, user, domain).

Tokens are random strings remembered in memory per store; the other services check them with
`validate_token` and answer 401 like keystonemiddleware when a request carries no valid token.
"""

from __future__ import annotations

import datetime as _dt
import secrets
import time
import uuid
import weakref
from typing import Any

from kuryr_cleanup.sim.http import ApiError, Request, Response, Service
from kuryr_cleanup.sim.store import Store

# The simulated cloud's one user and project (clouds.yaml, written by the server, names them too).
SIM_USER = "admin"
SIM_PASSWORD = "sim-password"  # a local simulator's throwaway credential, never a real one
SIM_PROJECT = "openshift"

DEFAULT_DOMAIN = {"id": "default", "name": "Default"}
REGION = "RegionOne"
TOKEN_LIFETIME = 24 * 3600  # real seconds: keystoneauth compares expiry with the wall clock
# Stable ids, derived from names so that every run of the simulator has the same user.
USER_ID = uuid.uuid5(uuid.NAMESPACE_URL, "kuryr-migrate-sim/user/admin").hex
ROLES = [
    {"id": uuid.uuid5(uuid.NAMESPACE_URL, f"kuryr-migrate-sim/role/{name}").hex, "name": name}
    for name in ("admin", "member", "reader")
]
# (catalog type, service name, path below the OpenStack port)
CATALOG_SERVICES = (
    ("identity", "keystone", "/identity"),
    ("network", "neutron", "/networking"),
    ("load-balancer", "octavia", "/load-balancer"),
    ("compute", "nova", "/compute/v2.1"),
)

_TOKENS: weakref.WeakKeyDictionary[Store, dict[str, dict[str, Any]]] = weakref.WeakKeyDictionary()


def _tokens(store: Store) -> dict[str, dict[str, Any]]:
    tokens = _TOKENS.get(store)
    if tokens is None:
        tokens = {}
        _TOKENS[store] = tokens
    return tokens


def validate_token(store: Store, token: str | None) -> bool:
    """Whether `token` was issued by this simulator's Keystone and not revoked."""
    return bool(token) and token in _tokens(store)


def unauthorized_response() -> Response:
    """keystonemiddleware's (and Keystone's) 401."""
    body = {"error": {"code": 401, "title": "Unauthorized",
                      "message": "The request you have made requires authentication."}}
    return Response(401, body, {"WWW-Authenticate": 'Keystone uri="http://127.0.0.1/identity"'})


def _error(status: int, title: str, message: str) -> ApiError:
    return ApiError(status, {"error": {"code": status, "title": title, "message": message}})


def _unauthorized(message: str = "The request you have made requires authentication.") -> ApiError:
    return _error(401, "Unauthorized", message)


def _timestamp(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, tz=_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


class Keystone(Service):
    name = "identity"
    prefix = "/identity"

    def __init__(self, store: Store, server: Any) -> None:
        super().__init__()
        self.store = store
        self.server = server
        self.route("GET", r"/?", self.versions)
        self.route("GET", r"/v3/?", self.version)
        self.route("POST", r"/v3/auth/tokens", self.issue_token)
        self.route("GET", r"/v3/auth/tokens", self.show_token)
        self.route("HEAD", r"/v3/auth/tokens", self.check_token)
        self.route("DELETE", r"/v3/auth/tokens", self.revoke_token)
        self.route("GET", r"/v3/auth/catalog", self.show_catalog)
        self.route("GET", r"/v3/auth/projects", self.list_my_projects)
        self.route("GET", r"/v3/projects", self.list_projects)
        self.route("GET", r"/v3/projects/(?P<project_id>[^/]+)", self.show_project)
        self.route("GET", r"/v3/users/(?P<user_id>[^/]+)", self.show_user)
        self.route("GET", r"/v3/domains/(?P<domain_id>[^/]+)", self.show_domain)

    # -- what the store and server say -----------------------------------------------------------
    @property
    def os_url(self) -> str:
        return str(self.server.os_url)

    def _project(self) -> dict[str, Any]:
        return {"id": self.store.project_id, "name": SIM_PROJECT, "domain_id": "default", "description": "",
                "enabled": True, "parent_id": "default", "is_domain": False, "tags": [], "options": {},
                "links": {"self": f"{self.os_url}/identity/v3/projects/{self.store.project_id}"}}

    def _user(self) -> dict[str, Any]:
        return {"id": USER_ID, "name": SIM_USER, "domain_id": "default", "enabled": True,
                "password_expires_at": None, "options": {},
                "links": {"self": f"{self.os_url}/identity/v3/users/{USER_ID}"}}

    def catalog(self) -> list[dict[str, Any]]:
        services = []
        for service_type, service_name, path in CATALOG_SERVICES:
            service_id = uuid.uuid5(uuid.NAMESPACE_URL, f"kuryr-migrate-sim/service/{service_type}").hex
            endpoints = [
                {
                    "id": uuid.uuid5(uuid.NAMESPACE_URL, f"kuryr-migrate-sim/endpoint/{service_type}/{iface}").hex,
                    "interface": iface,
                    "region_id": REGION,
                    "region": REGION,
                    "url": f"{self.os_url}{path}",
                }
                for iface in ("public", "internal", "admin")
            ]
            services.append({"endpoints": endpoints, "id": service_id, "type": service_type, "name": service_name})
        return services

    # -- discovery -------------------------------------------------------------------------------
    def _version_document(self) -> dict[str, Any]:
        return {
            "id": "v3.14",
            "status": "stable",
            "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self", "href": f"{self.os_url}/identity/v3/"}],
            "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
        }

    def versions(self, request: Request) -> Response:
        return Response(300, {"versions": {"values": [self._version_document()]}})

    def version(self, request: Request) -> Response:
        return Response(200, {"version": self._version_document()})

    # -- tokens ----------------------------------------------------------------------------------
    def issue_token(self, request: Request) -> Response:
        try:
            auth = (request.json() or {})["auth"]
            identity = auth["identity"]
            methods = list(identity["methods"])
        except (KeyError, TypeError, ValueError) as exc:
            raise _error(400, "Bad Request", "Invalid input for field 'identity': 'methods' is a required "
                         "property") from exc
        extra: dict[str, Any] = {}
        if methods == ["password"]:
            user = identity.get("password", {}).get("user", {})
            domain = user.get("domain", {})
            right_user = user.get("id") == USER_ID or (
                user.get("name") == SIM_USER and (domain.get("id") == "default" or domain.get("name") == "Default")
            )
            if not right_user or user.get("password") != SIM_PASSWORD:
                raise _unauthorized()
        elif methods == ["application_credential"]:
            # Any application credential id or name of the admin's, as long as the secret is the
            # simulator's password: enough to exercise the clients' application-credential path.
            credential = identity.get("application_credential", {})
            if not (credential.get("id") or credential.get("name")) or credential.get("secret") != SIM_PASSWORD:
                raise _unauthorized()
            extra["application_credential"] = {
                "id": credential.get("id") or uuid.uuid5(uuid.NAMESPACE_URL, str(credential.get("name"))).hex,
                "name": credential.get("name") or "kuryr-migrate",
                "restricted": True,
            }
        elif methods == ["token"]:
            if not validate_token(self.store, identity.get("token", {}).get("id")):
                raise _unauthorized()
        else:
            raise _unauthorized()
        scope = auth.get("scope")
        scoped = "application_credential" in extra or bool(scope)
        if scope:
            project = scope.get("project") if isinstance(scope, dict) else None
            if not project:
                raise _unauthorized("The request you have made requires authentication.")
            domain = project.get("domain", {})
            in_default_domain = domain.get("id") == "default" or domain.get("name") == "Default"
            right_project = project.get("id") == self.store.project_id or (
                project.get("name") == SIM_PROJECT and in_default_domain
            )
            if not right_project:
                wanted = project.get("id") or project.get("name")
                raise _unauthorized(f"User {USER_ID} has no access to project {wanted}")
        token_id = "gAAAAA" + secrets.token_urlsafe(48)
        now = time.time()
        body: dict[str, Any] = {
            "methods": methods,
            "user": {"domain": dict(DEFAULT_DOMAIN), "id": USER_ID, "name": SIM_USER, "password_expires_at": None},
            "audit_ids": [secrets.token_urlsafe(16)],
            "expires_at": _timestamp(now + TOKEN_LIFETIME),
            "issued_at": _timestamp(now),
            **extra,
        }
        if scoped:
            body.update(
                {
                    "project": {"domain": dict(DEFAULT_DOMAIN), "id": self.store.project_id, "name": SIM_PROJECT},
                    "is_domain": False,
                    "roles": [dict(r) for r in ROLES],
                    "catalog": self.catalog(),
                }
            )
        _tokens(self.store)[token_id] = body
        return Response(201, {"token": body}, {"X-Subject-Token": token_id})

    def _subject(self, request: Request) -> tuple[str, dict[str, Any]]:
        if not validate_token(self.store, request.header("x-auth-token")):
            raise _unauthorized()
        subject = request.header("x-subject-token") or ""
        body = _tokens(self.store).get(subject)
        if body is None:
            raise _error(404, "Not Found", f"Could not find token: {subject}.")
        return subject, body

    def show_token(self, request: Request) -> Response:
        subject, body = self._subject(request)
        if request.arg("nocatalog") is not None:
            body = {k: v for k, v in body.items() if k != "catalog"}
        return Response(200, {"token": body}, {"X-Subject-Token": subject})

    def check_token(self, request: Request) -> Response:
        subject, _ = self._subject(request)
        return Response(200, None, {"X-Subject-Token": subject})

    def revoke_token(self, request: Request) -> Response:
        subject, _ = self._subject(request)
        _tokens(self.store).pop(subject, None)
        return Response(204)

    # -- the few reads clients make -------------------------------------------------------------
    def _authenticated(self, request: Request) -> None:
        if not validate_token(self.store, request.header("x-auth-token")):
            raise _unauthorized()

    def show_catalog(self, request: Request) -> Response:
        self._authenticated(request)
        return Response(200, {"catalog": self.catalog(), "links": {"self": f"{self.os_url}/identity/v3/auth/catalog"}})

    def list_my_projects(self, request: Request) -> Response:
        self._authenticated(request)
        return Response(200, {"projects": [self._project()], "links": {"self": None, "next": None, "previous": None}})

    def list_projects(self, request: Request) -> Response:
        self._authenticated(request)
        project = self._project()
        wanted_name, wanted_domain = request.arg("name"), request.arg("domain_id")
        matches = (wanted_name in (None, project["name"])) and (wanted_domain in (None, "default"))
        return Response(200, {"projects": [project] if matches else [],
                              "links": {"self": None, "next": None, "previous": None}})

    def show_project(self, request: Request) -> Response:
        self._authenticated(request)
        project = self._project()
        if request.params["project_id"] not in (project["id"], project["name"]):
            raise _error(404, "Not Found", f"Could not find project: {request.params['project_id']}.")
        return Response(200, {"project": project})

    def show_user(self, request: Request) -> Response:
        self._authenticated(request)
        if request.params["user_id"] != USER_ID:
            raise _error(404, "Not Found", f"Could not find user: {request.params['user_id']}.")
        return Response(200, {"user": self._user()})

    def show_domain(self, request: Request) -> Response:
        self._authenticated(request)
        if request.params["domain_id"] not in ("default", "Default"):
            raise _error(404, "Not Found", f"Could not find domain: {request.params['domain_id']}.")
        return Response(200, {"domain": {**DEFAULT_DOMAIN, "enabled": True, "description": "The default domain",
                                         "tags": [], "options": {},
                                         "links": {"self": f"{self.os_url}/identity/v3/domains/default"}}})
