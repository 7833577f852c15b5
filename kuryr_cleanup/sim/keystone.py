"""Keystone v3 under /identity: version discovery, token issue and validation, the service catalog.

Enough of Keystone for keystoneauth (openstacksdk, the `openstack` CLI) to authenticate unmodified:
password and application-credential methods, project-scoped tokens carrying the catalog of the
simulated services, and the few reads the clients make (project, user, domain).

Accounts: the cluster's project (`SIM_PROJECT`, `store.project_id`) and any other project of the
scenario (`store.settings["other_projects"]`, name -> id); the cluster's user (`SIM_USER`, a member
and reader of the cluster's project only, as the user in an installer's clouds.yaml is) and a cloud
admin (`SIM_ADMIN_USER`, admin of every project). The other services read who a token is with
`token_context` and decide what it may see from it (an admin token lists every project's resources,
as on a real cloud).

Tokens are random strings remembered in memory per store; the other services check them with
`token_context` and answer 401 like keystonemiddleware when a request carries no valid token.
"""

from __future__ import annotations

import datetime as _dt
import secrets
import time
import uuid
import weakref
from dataclasses import dataclass
from typing import Any

from kuryr_cleanup.sim.http import ApiError, Request, Response, Service
from kuryr_cleanup.sim.store import Store

# The cluster's project and its user (clouds.yaml, written by the server, names them too). The user
# is named `admin` for the clients configured for earlier simulators, but has no admin role.
SIM_USER = "admin"
SIM_PASSWORD = "sim-password"  # a local simulator's throwaway credential, never a real one
SIM_PROJECT = "openshift"
# A cloud administrator: admin of every project (clouds.yaml's `sim-admin` logs in as it).
SIM_ADMIN_USER = "cloud-admin"
SIM_ADMIN_PASSWORD = "sim-admin-password"  # throwaway, as above

DEFAULT_DOMAIN = {"id": "default", "name": "Default"}
REGION = "RegionOne"
TOKEN_LIFETIME = 24 * 3600  # real seconds: keystoneauth compares expiry with the wall clock


def _stable_id(kind: str, name: str) -> str:
    # Ids derived from names, so that every run of the simulator has the same users and roles.
    return uuid.uuid5(uuid.NAMESPACE_URL, f"kuryr-migrate-sim/{kind}/{name}").hex


USER_ID = _stable_id("user", "admin")
ADMIN_USER_ID = _stable_id("user", SIM_ADMIN_USER)
ROLES = [{"id": _stable_id("role", name), "name": name} for name in ("admin", "member", "reader")]
MEMBER_ROLES = [r for r in ROLES if r["name"] != "admin"]


@dataclass(frozen=True)
class User:
    id: str
    name: str
    password: str
    admin: bool  # admin (and member, reader) of every project; else member and reader of the cluster's


USERS = (User(USER_ID, SIM_USER, SIM_PASSWORD, admin=False),
         User(ADMIN_USER_ID, SIM_ADMIN_USER, SIM_ADMIN_PASSWORD, admin=True))


@dataclass(frozen=True)
class AuthContext:
    """Who a token is: what the services decide visibility and ownership by."""

    user_id: str
    project_id: str | None  # None: an unscoped token
    roles: tuple[str, ...]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


def projects(store: Store) -> dict[str, str]:
    """Project name -> id: the cluster's project first, then the scenario's others."""
    return {SIM_PROJECT: store.project_id, **dict(store.settings.get("other_projects") or {})}


def roles_of(user: User, store: Store, project_id: str) -> list[dict[str, str]]:
    """The user's roles on the project (none: no access)."""
    if user.admin:
        return [dict(r) for r in ROLES] if project_id in projects(store).values() else []
    return [dict(r) for r in MEMBER_ROLES] if project_id == store.project_id else []


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


def token_context(store: Store, token: str | None) -> AuthContext | None:
    """Who `token` is, or None if this Keystone did not issue it (or it was revoked)."""
    body = _tokens(store).get(token or "")
    if body is None:
        return None
    project = body.get("project") or {}
    return AuthContext(body["user"]["id"], project.get("id"), tuple(r["name"] for r in body.get("roles", [])))


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

    def _project(self, name: str, project_id: str) -> dict[str, Any]:
        return {"id": project_id, "name": name, "domain_id": "default", "description": "",
                "enabled": True, "parent_id": "default", "is_domain": False, "tags": [], "options": {},
                "links": {"self": f"{self.os_url}/identity/v3/projects/{project_id}"}}

    def _user(self, user: User) -> dict[str, Any]:
        return {"id": user.id, "name": user.name, "domain_id": "default", "enabled": True,
                "password_expires_at": None, "options": {},
                "links": {"self": f"{self.os_url}/identity/v3/users/{user.id}"}}

    def _visible_projects(self, context: AuthContext) -> list[dict[str, Any]]:
        """The projects the token's user has a role on (an admin: every one)."""
        user = next(u for u in USERS if u.id == context.user_id)
        return [self._project(name, pid) for name, pid in projects(self.store).items()
                if roles_of(user, self.store, pid)]

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
        scope = auth.get("scope")
        if methods == ["password"]:
            wanted = identity.get("password", {}).get("user", {})
            domain = wanted.get("domain", {})
            in_default_domain = domain.get("id") == "default" or domain.get("name") == "Default"
            user = next((u for u in USERS if wanted.get("id") == u.id
                         or (wanted.get("name") == u.name and in_default_domain)), None)
            if user is None or wanted.get("password") != user.password:
                raise _unauthorized()
        elif methods == ["application_credential"]:
            # Any application credential id or name of the cluster's user, as long as the secret is its
            # password: enough to exercise the clients' application-credential path. It is scoped to the
            # cluster's project, as an application credential is to the project it was made in.
            credential = identity.get("application_credential", {})
            if not (credential.get("id") or credential.get("name")) or credential.get("secret") != SIM_PASSWORD:
                raise _unauthorized()
            user = USERS[0]
            extra["application_credential"] = {
                "id": credential.get("id") or uuid.uuid5(uuid.NAMESPACE_URL, str(credential.get("name"))).hex,
                "name": credential.get("name") or "kuryr-migrate",
                "restricted": True,
            }
            scope = {"project": {"id": self.store.project_id}}
        elif methods == ["token"]:
            context = token_context(self.store, identity.get("token", {}).get("id"))
            if context is None:
                raise _unauthorized()
            user = next(u for u in USERS if u.id == context.user_id)
        else:
            raise _unauthorized()
        project_body: dict[str, Any] | None = None
        roles: list[dict[str, str]] = []
        if scope:
            project = scope.get("project") if isinstance(scope, dict) else None
            if not project:
                raise _unauthorized("The request you have made requires authentication.")
            domain = project.get("domain", {})
            in_default_domain = domain.get("id") == "default" or domain.get("name") == "Default"
            found = next(((name, pid) for name, pid in projects(self.store).items()
                          if project.get("id") == pid or (project.get("name") == name and in_default_domain)), None)
            roles = roles_of(user, self.store, found[1]) if found else []
            if found is None or not roles:
                wanted_project = project.get("id") or project.get("name")
                raise _unauthorized(f"User {user.id} has no access to project {wanted_project}")
            project_body = {"domain": dict(DEFAULT_DOMAIN), "id": found[1], "name": found[0]}
        token_id = "gAAAAA" + secrets.token_urlsafe(48)
        now = time.time()
        body: dict[str, Any] = {
            "methods": methods,
            "user": {"domain": dict(DEFAULT_DOMAIN), "id": user.id, "name": user.name, "password_expires_at": None},
            "audit_ids": [secrets.token_urlsafe(16)],
            "expires_at": _timestamp(now + TOKEN_LIFETIME),
            "issued_at": _timestamp(now),
            **extra,
        }
        if project_body is not None:
            body.update({"project": project_body, "is_domain": False, "roles": roles, "catalog": self.catalog()})
        _tokens(self.store)[token_id] = body
        return Response(201, {"token": body}, {"X-Subject-Token": token_id})

    def _subject(self, request: Request) -> tuple[str, dict[str, Any]]:
        if token_context(self.store, request.header("x-auth-token")) is None:
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
    def _authenticated(self, request: Request) -> AuthContext:
        context = token_context(self.store, request.header("x-auth-token"))
        if context is None:
            raise _unauthorized()
        return context

    def show_catalog(self, request: Request) -> Response:
        self._authenticated(request)
        return Response(200, {"catalog": self.catalog(), "links": {"self": f"{self.os_url}/identity/v3/auth/catalog"}})

    def list_my_projects(self, request: Request) -> Response:
        context = self._authenticated(request)
        return Response(200, {"projects": self._visible_projects(context),
                              "links": {"self": None, "next": None, "previous": None}})

    def list_projects(self, request: Request) -> Response:
        context = self._authenticated(request)
        wanted_name, wanted_domain = request.arg("name"), request.arg("domain_id")
        found = [p for p in self._visible_projects(context)
                 if wanted_name in (None, p["name"]) and wanted_domain in (None, "default")]
        return Response(200, {"projects": found, "links": {"self": None, "next": None, "previous": None}})

    def show_project(self, request: Request) -> Response:
        context = self._authenticated(request)
        wanted = request.params["project_id"]
        found = [p for p in self._visible_projects(context) if wanted in (p["id"], p["name"])]
        if not found:
            if wanted in projects(self.store) or wanted in projects(self.store).values():
                raise _error(403, "Forbidden", "You are not authorized to perform the requested action: "
                             "identity:get_project.")
            raise _error(404, "Not Found", f"Could not find project: {wanted}.")
        return Response(200, {"project": found[0]})

    def show_user(self, request: Request) -> Response:
        context = self._authenticated(request)
        user = next((u for u in USERS if u.id == request.params["user_id"]), None)
        if user is None:
            raise _error(404, "Not Found", f"Could not find user: {request.params['user_id']}.")
        if user.id != context.user_id and not context.is_admin:
            raise _error(403, "Forbidden", "You are not authorized to perform the requested action: "
                         "identity:get_user.")
        return Response(200, {"user": self._user(user)})

    def show_domain(self, request: Request) -> Response:
        self._authenticated(request)
        if request.params["domain_id"] not in ("default", "Default"):
            raise _error(404, "Not Found", f"Could not find domain: {request.params['domain_id']}.")
        return Response(200, {"domain": {**DEFAULT_DOMAIN, "enabled": True, "description": "The default domain",
                                         "tags": [], "options": {},
                                         "links": {"self": f"{self.os_url}/identity/v3/domains/default"}}})
