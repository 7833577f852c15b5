"""Who is calling the simulated Kubernetes API, and what they may do: bearer tokens and a small RBAC.

As a kube-apiserver with `--token-auth-file` and RBAC (checked on 1.20.2):
- an `Authorization: Bearer` token the server does not know is 401 `Unauthorized` on every path,
  discovery and `/version` included;
- no token at all is the user `system:anonymous`; a default RBAC gives it `/version` and the health
  paths only (403 elsewhere). The simulator serves plain HTTP, over which kubectl (client-go) never
  sends credentials, so here `system:anonymous` is bound to cluster-admin by default
  (`Authorizer.anonymous_admin`), the way the old insecure port of kube-apiserver let everything through;
  a test that wants the real default sets it to False;
- an authenticated user without RBAC bindings (`LIMITED_TOKEN`) may read discovery (`/api`, `/apis`,
  `/openapi`, ...) and is refused every resource with the apiserver's 403 message, built from the
  request's attributes the way the apiserver's RequestInfoFactory parses them (verb, resource,
  subresource, name, namespace), so a refused watch says `watch` and a delete of a collection says
  `deletecollection`;
- the kubeconfig's token (`ADMIN_TOKEN`, in `system:masters`) may do everything.
Authentication and authorization come before routing: a refused user learns nothing about what exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs

from kuryr_cleanup.sim.http import ApiError, Request
from kuryr_cleanup.sim.kube.errors import status_error

ADMIN_TOKEN = "sim-token"
LIMITED_TOKEN = "sim-limited-token"


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...]

    @property
    def admin(self) -> bool:
        return "system:masters" in self.groups

    @property
    def authenticated(self) -> bool:
        return "system:authenticated" in self.groups


ANONYMOUS = User("system:anonymous", ("system:unauthenticated",))
USERS: dict[str, User] = {
    ADMIN_TOKEN: User("sim-admin", ("system:masters", "system:authenticated")),
    LIMITED_TOKEN: User("sim-limited", ("system:authenticated",)),
}

# Non-resource paths of the default cluster roles: system:public-info-viewer (everyone) and
# system:discovery (authenticated users). A trailing "*" matches any rest of the path.
PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version", "/version/")
DISCOVERY_PATHS = (*PUBLIC_PATHS, "/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*")
_METHOD_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch",
                 "DELETE": "delete"}
_NAMESPACE_SUBRESOURCES = ("status", "finalize")


@dataclass(frozen=True)
class RequestInfo:
    """What the apiserver's authorizer sees of a request (k8s.io/apiserver's RequestInfo)."""

    path: str
    verb: str
    resource_request: bool = False
    group: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""


def request_info(method: str, path: str, query: str) -> RequestInfo:
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) < 3 or parts[0] not in ("api", "apis") or (parts[0] == "apis" and len(parts) < 4):
        return RequestInfo(path, method.lower())
    prefix, parts = parts[0], parts[1:]
    group = ""
    if prefix == "apis":
        group, parts = parts[0], parts[1:]
    parts = parts[1:]  # the version
    verb = _METHOD_VERBS.get(method, "")
    if parts[0] in ("watch", "proxy") and len(parts) > 1:
        verb, parts = parts[0], parts[1:]
    namespace = ""
    if parts[0] == "namespaces" and len(parts) > 1:
        namespace = parts[1]
        if len(parts) > 2 and parts[2] not in _NAMESPACE_SUBRESOURCES:
            parts = parts[2:]
    resource = parts[0]
    name = parts[1] if len(parts) > 1 else ""
    subresource = parts[2] if len(parts) > 2 else ""
    args = parse_qs(query, keep_blank_values=True)
    if not name and verb == "get":
        watch = (args.get("watch") or [""])[0].lower()
        verb = "watch" if watch not in ("", "false", "0") else "list"
        for selector in (args.get("fieldSelector") or [""])[0].split(","):
            key, op, value = selector.partition("==") if "==" in selector else selector.partition("=")
            if op and key.strip() == "metadata.name" and "!" not in key and value and "/" not in value:
                name = value.strip()
    if not name and verb == "delete":
        verb = "deletecollection"
    return RequestInfo(path, verb, True, group, namespace, resource, subresource, name)


def _path_allowed(path: str, allowed: tuple[str, ...]) -> bool:
    return any(path == p or (p.endswith("*") and path.startswith(p[:-1])) for p in allowed)


class Authorizer:
    """The tokens one simulated apiserver knows; tests may add users to `users`."""

    def __init__(self, anonymous_admin: bool = True) -> None:
        self.users: dict[str, User] = dict(USERS)
        self.anonymous_admin = anonymous_admin

    def authenticate(self, request: Request) -> User:
        header = (request.header("authorization") or "").strip()
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if not header or scheme.lower() != "bearer" or not token:
            return ANONYMOUS
        user = self.users.get(token)
        if user is None:
            raise status_error(401, "Unauthorized", "Unauthorized")
        return user

    def check(self, request: Request) -> None:
        """Raise the apiserver's 401 or 403 unless the caller may make this request."""
        user = self.authenticate(request)
        if user.admin or (user is ANONYMOUS and self.anonymous_admin):
            return
        info = request_info(request.method, request.path, request.query_string)
        if not info.resource_request:
            if _path_allowed(info.path, DISCOVERY_PATHS if user.authenticated else PUBLIC_PATHS):
                return
            raise status_error(403, "Forbidden", f'forbidden: User "{user.name}" cannot {info.verb} path "{info.path}"',
                               {})
        raise forbidden(user, info)


def forbidden(user: User, info: RequestInfo) -> ApiError:
    resource = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
    scope = f'in the namespace "{info.namespace}"' if info.namespace else "at the cluster scope"
    why = (f'User "{user.name}" cannot {info.verb} resource "{resource}" in API group "{info.group}" {scope}')
    qualified = f"{info.resource}.{info.group}" if info.group else info.resource
    subject = f'{qualified} "{info.name}"' if info.name else qualified
    details: dict[str, str] = {}
    if info.name:
        details["name"] = info.name
    if info.group:
        details["group"] = info.group
    details["kind"] = info.resource
    return status_error(403, "Forbidden", f"{subject} is forbidden: {why}", details)
