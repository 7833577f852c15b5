"""The simulated Kubernetes API: discovery, CRUD, patches, finalizers, namespaces, watches.

Served on its own port at the root, as a real apiserver is, so the official `kubernetes` Python
client (typed and dynamic) and `kubectl` work against it unmodified. Semantics follow the apiserver
where they decide whether a migration or cleanup tool is right in real life:
- a DELETE of an object with finalizers only sets `deletionTimestamp`; the object goes when an update
  empties `metadata.finalizers`;
- PUT checks `metadata.resourceVersion` (stale -> 409 Conflict, the real message);
- a deleted namespace deletes its content and stays Terminating while content remains; creating in
  it answers 403;
- kinds with a status subresource ignore status in main writes, and `/status` writes only status;
- custom resources refuse strategic merge patches (415); a failed JSON-patch `test` answers 422;
- errors are `kind: Status` documents with the apiserver's reason, code and message.

Objects live in `store.kube` as plain dicts; lists serialize only the requested page (a 2,000
namespace cluster pages through its KuryrPorts in milliseconds). Watches stream JSON lines from a
bounded history of changes fed by `store.kube_listeners`, polling with the store lock released.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import random
import re
import string
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from kuryr_cleanup.sim import openshift
from kuryr_cleanup.sim.http import ApiError, Request, Response, Service
from kuryr_cleanup.sim.kube_resources import BY_RESOURCE, BY_STORE_KEY, KINDS, Kind, drop_object, group_versions
from kuryr_cleanup.sim.kube_resources import save_object as _save_object
from kuryr_cleanup.sim.store import Store, iso_now, new_id

KUBE_VERSION = {
    "major": "1",
    "minor": "27",
    "gitVersion": openshift.KUBELET_VERSION,
    "gitCommit": "28ed2d7a4a5b8ee1e2b2d81c0b0c9fa07a6b7a1c",
    "gitTreeState": "clean",
    "buildDate": "2024-02-06T16:05:53Z",
    "goVersion": "go1.20.12 X:strictfipsruntime",
    "compiler": "gc",
    "platform": "linux/amd64",
}

WATCH_HISTORY = 50_000  # changes kept for watches that resume from a resourceVersion
WATCH_MAX_SECONDS = 60.0  # one watch connection at most; clients re-watch from their last version
WATCH_POLL_SECONDS = 0.02
PATCH_TYPES_BUILTIN = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
PATCH_TYPES_CUSTOM = ("application/json-patch+json", "application/merge-patch+json")


# -- errors ------------------------------------------------------------------------------------
def status_error(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> ApiError:
    """An apiserver error: a `kind: Status` document with its HTTP code."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        body["details"] = details
    body["code"] = code
    return ApiError(code, body)


def _details(kind: Kind, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if kind.group:
        details["group"] = kind.group
    details["kind"] = kind.plural
    return details


def not_found(kind: Kind, name: str) -> ApiError:
    return status_error(404, "NotFound", f'{kind.resource} "{name}" not found', _details(kind, name))


def conflict(kind: Kind, name: str, why: str) -> ApiError:
    return status_error(
        409, "Conflict", f'Operation cannot be fulfilled on {kind.resource} "{name}": {why}', _details(kind, name)
    )


STALE = "the object has been modified; please apply your changes to the latest version and try again"


def invalid(kind: Kind, name: str, field: str, cause_reason: str, message: str) -> ApiError:
    group_kind = f"{kind.kind}.{kind.group}" if kind.group else kind.kind
    details: dict[str, Any] = {"name": name}
    if kind.group:
        details["group"] = kind.group
    details["kind"] = kind.kind
    details["causes"] = [{"reason": cause_reason, "message": message, "field": field}]
    return status_error(422, "Invalid", f'{group_kind} "{name}" is invalid: {field}: {message}', details)


def bad_request(message: str) -> ApiError:
    return status_error(400, "BadRequest", message)


def unsupported_media_type(accepted: tuple[str, ...]) -> ApiError:
    return status_error(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: " + ", ".join(accepted),
    )


# -- selectors ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        if self.op == "exists":
            return self.key in labels
        if self.op == "!":
            return self.key not in labels
        if self.op in ("=", "in"):
            return self.key in labels and labels[self.key] in self.values
        # "!=" and "notin" match objects without the label too, as in Kubernetes.
        return self.key not in labels or labels[self.key] not in self.values


_SET_REQ = re.compile(r"^\s*([A-Za-z0-9._/-]+)\s+(in|notin)\s*\(([^)]*)\)\s*$")


def _split_selector(text: str) -> list[str]:
    """Split on commas that are not inside a `(...)` value set."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(text: str) -> list[Requirement]:
    reqs = []
    for part in _split_selector(text):
        m = _SET_REQ.match(part)
        if m:
            values = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
            reqs.append(Requirement(m.group(1), m.group(2), values))
        elif "!=" in part:
            key, value = part.split("!=", 1)
            reqs.append(Requirement(key.strip(), "!=", (value.strip(),)))
        elif "==" in part:
            key, value = part.split("==", 1)
            reqs.append(Requirement(key.strip(), "=", (value.strip(),)))
        elif "=" in part:
            key, value = part.split("=", 1)
            reqs.append(Requirement(key.strip(), "=", (value.strip(),)))
        elif part.startswith("!"):
            reqs.append(Requirement(part[1:].strip(), "!"))
        else:
            if not re.fullmatch(r"[A-Za-z0-9._/-]+", part):
                raise bad_request(f"unable to parse requirement: invalid label key {part!r}")
            reqs.append(Requirement(part, "exists"))
    return reqs


def parse_field_selector(text: str) -> list[tuple[str, str, str]]:
    fields = []
    for part in _split_selector(text):
        for op in ("!=", "==", "="):
            if op in part:
                key, value = part.split(op, 1)
                fields.append((key.strip(), "!=" if op == "!=" else "=", value.strip()))
                break
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
    return fields


def _field_value(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, dict):
            return ""
        value = value.get(part)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def matches(obj: dict[str, Any], labels: list[Requirement], fields: list[tuple[str, str, str]]) -> bool:
    if labels:
        obj_labels = obj.get("metadata", {}).get("labels") or {}
        if not all(r.matches(obj_labels) for r in labels):
            return False
    for path, op, value in fields:
        actual = _field_value(obj, path)
        if (actual == value) != (op == "="):
            return False
    return True


# -- patches -----------------------------------------------------------------------------------
def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class JsonPatchError(Exception):
    pass


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise JsonPatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _resolve(doc: Any, parts: list[str], path: str) -> Any:
    for part in parts:
        if isinstance(doc, dict):
            if part not in doc:
                raise JsonPatchError(f"missing path: {path}")
            doc = doc[part]
        elif isinstance(doc, list):
            try:
                doc = doc[int(part)]
            except (ValueError, IndexError) as exc:
                raise JsonPatchError(f"missing path: {path}") from exc
        else:
            raise JsonPatchError(f"missing path: {path}")
    return doc


def _list_index(container: list[Any], key: str, path: str, for_add: bool) -> int:
    if key == "-" and for_add:
        return len(container)
    try:
        index = int(key)
    except ValueError as exc:
        raise JsonPatchError(f"invalid array index {key!r} in {path}") from exc
    limit = len(container) if for_add else len(container) - 1
    if index < 0 or index > limit:
        raise JsonPatchError(f"Unable to access invalid index: {index}")
    return index


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test) applied to `doc` in place."""
    if not isinstance(ops, list):
        raise ValueError("json patch must be a list of operations")

    def add(path: str, value: Any) -> None:
        nonlocal doc
        parts = _pointer(path)
        if not parts:
            doc = value
            return
        parent = _resolve(doc, parts[:-1], path)
        key = parts[-1]
        if isinstance(parent, dict):
            parent[key] = value
        elif isinstance(parent, list):
            parent.insert(_list_index(parent, key, path, True), value)
        else:
            raise JsonPatchError(f"doc is missing path: {path}")

    def remove(path: str) -> Any:
        parts = _pointer(path)
        parent = _resolve(doc, parts[:-1], path)
        key = parts[-1]
        if isinstance(parent, dict):
            if key not in parent:
                raise JsonPatchError(f"remove operation does not apply: doc is missing key: {path}")
            return parent.pop(key)
        if isinstance(parent, list):
            return parent.pop(_list_index(parent, key, path, False))
        raise JsonPatchError(f"remove operation does not apply: doc is missing path: {path}")

    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise ValueError("json patch operations need 'op' and 'path'")
        kind, path = op["op"], op["path"]
        if kind == "add":
            add(path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            remove(path)
        elif kind == "replace":
            parts = _pointer(path)
            if parts:
                _resolve(doc, parts, path)  # replace needs an existing target
                remove(path)
            add(path, copy.deepcopy(op.get("value")))
        elif kind == "move":
            value = remove(op["from"])
            add(path, value)
        elif kind == "copy":
            add(path, copy.deepcopy(_resolve(doc, _pointer(op["from"]), op["from"])))
        elif kind == "test":
            try:
                actual = _resolve(doc, _pointer(path), path)
            except JsonPatchError:
                actual = None
            if actual != op.get("value"):
                raise JsonPatchError(f"testing value {path} failed: test failed")
        else:
            raise ValueError(f"Unexpected kind: {kind}")
    return doc


# Lists merged by key in strategic merge patches (the patchMergeKey tags of the built-in types).
_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "conditions": "type",
    "ownerReferences": "uid",
    "addresses": "type",
    "imagePullSecrets": "name",
    "containerStatuses": "name",
}
_PRIMITIVE_MERGE_LISTS = {"finalizers"}


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """A strategic merge patch for built-in kinds: maps merge, lists with a merge key merge by it,
    `metadata.finalizers` merges as a set, `$patch: replace|delete` and
    `$deleteFromPrimitiveList/<field>` directives work; other lists are replaced."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    result = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key == "$patch" or key.startswith("$setElementOrder/") or key == "$retainKeys":
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in (value or [])]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and key in _PRIMITIVE_MERGE_LISTS:
            merged = list(result.get(key) or [])
            merged.extend(v for v in value if v not in merged)
            result[key] = merged
        elif isinstance(value, list) and key in _MERGE_KEYS and isinstance(result.get(key), list):
            result[key] = _merge_list_by_key(result[key], value, _MERGE_KEYS[key])
        elif isinstance(value, dict):
            merged_value = strategic_merge_patch(result.get(key), value)
            if merged_value is None:
                result.pop(key, None)
            else:
                result[key] = merged_value
        else:
            result[key] = copy.deepcopy(value)
    return result


def _merge_list_by_key(current: list[Any], patch: list[Any], merge_key: str) -> list[Any]:
    merged = list(current)
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            merged.append(copy.deepcopy(item))
            continue
        index = next(
            (i for i, e in enumerate(merged) if isinstance(e, dict) and e.get(merge_key) == item[merge_key]), None
        )
        if item.get("$patch") == "delete":
            if index is not None:
                merged.pop(index)
        elif index is None:
            merged.append(copy.deepcopy(item))
        else:
            merged[index] = strategic_merge_patch(merged[index], item)
    return merged


# -- continue tokens ---------------------------------------------------------------------------
def encode_continue(rv: str, last_key: tuple[str, str]) -> str:
    token = {"v": "meta.k8s.io/v1", "rv": int(rv), "start": f"{last_key[0]}/{last_key[1]}\u0000"}
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode().rstrip("=")


def decode_continue(token: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        start = json.loads(raw)["start"].rstrip("\u0000")
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise bad_request("continue key is not valid: illegal base64 data") from exc
    namespace, _, name = start.partition("/")
    return (namespace, name)


# -- watch history -----------------------------------------------------------------------------
@dataclass
class WatchEvent:
    rv: int
    store_key: str
    namespace: str
    name: str
    type: str
    data: bytes  # the object as it was, serialized at the time of the change


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _random_suffix() -> str:
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=5))


def _spec_part(obj: dict[str, Any], kind: Kind) -> dict[str, Any]:
    """What counts for `metadata.generation`: everything but metadata (and status, if a subresource)."""
    skip = {"metadata", "status"} if kind.has_status or kind.builtin else {"metadata"}
    return {k: v for k, v in obj.items() if k not in skip}


class KubeApi(Service):
    name = "kube"
    prefix = ""

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self.behaviours = openshift.behaviours_for(store)
        self.history: deque[WatchEvent] = deque(maxlen=WATCH_HISTORY)
        self.history_floor = 0  # watches from an older resourceVersion get 410 Expired
        # Terminating namespace -> keys of the content it still waits for (filled lazily).
        self._namespace_content: dict[str, set[tuple[str, str]]] = {}
        store.kube_listeners.append(self._record_change)
        self.route("GET", r"/version/?", self._version)
        self.route("GET", r"/api/?", self._api_versions)
        self.route("GET", r"/apis/?", self._api_groups)
        self.route("GET", r"/api/(?P<version>v1)/?", self._resource_list)
        self.route("GET", r"/apis/(?P<group>[^/]+)/?", self._api_group)
        self.route("GET", r"/apis/(?P<group>[^/]+)/(?P<version>[^/]+)/?", self._resource_list)
        self.route("GET", r"/openapi/v2/?", self._openapi_v2)
        self.route("GET", r"/openapi/v3(/.*)?", self._openapi_v3)
        self.route("*", r"/api/(?P<version>v1)(?P<rest>/.+)", self._resource_request)
        self.route("*", r"/apis/(?P<group>[^/]+)/(?P<version>[^/]+)(?P<rest>/.+)", self._resource_request)

    # -- framework hooks -------------------------------------------------------------------------
    def dispatch(self, request: Request) -> Response:
        self.behaviours.apply_faults()
        return super().dispatch(request)

    def fault_response(self, status: int, retry_after: float | None) -> Response:
        reasons = {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}
        err = status_error(status, reasons.get(status, "Unknown"), "injected fault")
        headers = {"Retry-After": str(max(0, int(retry_after)))} if retry_after is not None else {}
        return Response(status, err.body, headers)

    def not_found(self, request: Request) -> Response:
        err = status_error(404, "NotFound", "the server could not find the requested resource", {})
        return Response(404, err.body)

    def method_not_allowed(self, request: Request) -> Response:
        message = "the server does not allow this method on the requested resource"
        err = status_error(405, "MethodNotAllowed", message, {})
        return Response(405, err.body)

    def control(self, method: str, path: str, data: Any) -> Response | None:
        """Simulator control endpoints of the cluster side (called by the server for /_sim/...).

        POST /_sim/reboot-by-ip {"ip": "10.0.0.5"}: reboot the node with that InternalIP, as
        `ssh core@<ip> sudo shutdown -r` would (tests/bin/ssh calls it).
        """
        if path == "/_sim/reboot-by-ip" and method == "POST":
            ip = (data or {}).get("ip", "")
            with self.store.lock:
                node = self.behaviours.reboot_node_by_ip(str(ip))
            if node is None:
                return Response(404, {"error": {"message": f"no node has InternalIP {ip}"}})
            return Response(202, {"node": node})
        return None

    # -- discovery ---------------------------------------------------------------------------------
    def _version(self, request: Request) -> Response:
        return Response(200, KUBE_VERSION)

    def _api_versions(self, request: Request) -> Response:
        return Response(
            200,
            {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}],
            },
        )

    @staticmethod
    def _group_doc(group: str, versions: list[str]) -> dict[str, Any]:
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}

    def _api_groups(self, request: Request) -> Response:
        groups = [self._group_doc(g, v) for g, v in group_versions().items() if g]
        return Response(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})

    def _api_group(self, request: Request) -> Response:
        group = request.params["group"]
        versions = group_versions().get(group)
        if not group or not versions:
            return self.not_found(request)
        return Response(200, {"kind": "APIGroup", "apiVersion": "v1", **self._group_doc(group, versions)})

    def _resource_list(self, request: Request) -> Response:
        group = request.params.get("group", "")
        version = request.params["version"]
        kinds = [k for k in KINDS if k.group == group and k.version == version]
        if not kinds:
            return self.not_found(request)
        resources: list[dict[str, Any]] = []
        for k in kinds:
            entry: dict[str, Any] = {
                "name": k.plural,
                "singularName": k.singular,
                "namespaced": k.namespaced,
                "kind": k.kind,
                "verbs": k.verbs(),
            }
            if k.short_names:
                entry["shortNames"] = list(k.short_names)
            if k.categories:
                entry["categories"] = list(k.categories)
            resources.append(entry)
            for sub in k.subresources:
                verbs = ["get"] if sub == "log" else ["update"] if sub == "finalize" else ["get", "patch", "update"]
                sub_kind = "Pod" if sub == "log" else k.kind
                resources.append(
                    {"name": f"{k.plural}/{sub}", "singularName": "", "namespaced": k.namespaced,
                     "kind": sub_kind, "verbs": verbs}
                )
        group_version = f"{group}/{version}" if group else version
        return Response(
            200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}
        )

    def _openapi_v2(self, request: Request) -> Response:
        # An empty document: kubectl then skips client-side schema validation instead of failing.
        return Response(200, b"", content_type="application/octet-stream")

    def _openapi_v3(self, request: Request) -> Response:
        return self.not_found(request)

    # -- routing of resource requests -------------------------------------------------------------
    def _resource_request(self, request: Request) -> Response:
        group = request.params.get("group", "")
        version = request.params["version"]
        parts = request.params["rest"].strip("/").split("/")
        namespace: str | None = None
        if len(parts) >= 3 and parts[0] == "namespaces" and (group, version, parts[2]) in BY_RESOURCE:
            namespace, parts = parts[1], parts[2:]
        plural = parts[0]
        kind = BY_RESOURCE.get((group, version, plural))
        if kind is None or len(parts) > 3:
            return self.not_found(request)
        if kind.namespaced and namespace is None and len(parts) > 1:
            return self.not_found(request)
        if not kind.namespaced and namespace is not None:
            return self.not_found(request)
        name = parts[1] if len(parts) > 1 else None
        sub = parts[2] if len(parts) > 2 else None
        if sub is not None and sub not in kind.subresources:
            return self.not_found(request)
        method = request.method
        if name is None:
            if method == "GET":
                return self._list_or_watch(kind, namespace, request)
            if method == "POST":
                return self._create(kind, namespace or "", request)
            if method == "DELETE":
                return self._delete_collection(kind, namespace, request)
            return self.method_not_allowed(request)
        ns = namespace or ""
        if method == "GET":
            if sub == "log":
                return self._log(kind, ns, name, request)
            return self._json(200, self._existing(kind, ns, name))
        if method == "PUT":
            return self._replace(kind, ns, name, sub, request)
        if method == "PATCH":
            return self._patch(kind, ns, name, sub, request)
        if method == "DELETE" and sub is None:
            return self._delete(kind, ns, name, request)
        return self.method_not_allowed(request)

    @staticmethod
    def _json(status: int, obj: Any) -> Response:
        # Serialized here, under the store lock: behaviours may change stored objects afterwards.
        return Response(status, _dumps(obj))

    def _existing(self, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
        obj = self.store.kube_objects(kind.api_version, kind.kind).get((namespace, name))
        if obj is None:
            raise not_found(kind, name)
        return obj

    @staticmethod
    def _body(request: Request) -> Any:
        try:
            return request.json()
        except ValueError as exc:
            raise bad_request(f"the object provided is unrecognized: {exc}") from exc

    # -- list, watch, log ---------------------------------------------------------------------------
    def _list_or_watch(self, kind: Kind, namespace: str | None, request: Request) -> Response:
        labels = parse_label_selector(request.arg("labelSelector") or "")
        fields = parse_field_selector(request.arg("fieldSelector") or "")
        if (request.arg("watch") or "").lower() in ("true", "1"):
            return self._watch(kind, namespace, labels, fields, request)
        objects = self.store.kube_objects(kind.api_version, kind.kind)
        name_filter = next((v for p, op, v in fields if p == "metadata.name" and op == "="), None)
        ns_filter = next((v for p, op, v in fields if p == "metadata.namespace" and op == "="), None)
        if namespace is None and ns_filter is not None:
            namespace = ns_filter
        if name_filter is not None and namespace is not None:
            keys = [(namespace, name_filter)] if (namespace, name_filter) in objects else []
        elif namespace is not None:
            keys = sorted(k for k in objects if k[0] == namespace)
        else:
            keys = sorted(objects)
        token = request.arg("continue")
        if token:
            start = decode_continue(token)
            keys = keys[_bisect_after(keys, start):]
        limit_text = request.arg("limit") or "0"
        limit = int(limit_text) if limit_text.isdigit() else 0
        rv = self.store.next_resource_version()
        page: list[dict[str, Any]] = []
        last_key: tuple[str, str] | None = None
        more = False
        scanned = 0
        for key in keys:
            obj = objects[key]
            scanned += 1
            if not matches(obj, labels, fields):
                continue
            if limit and len(page) == limit:
                more = True
                break
            page.append(obj)
            last_key = key
        meta: dict[str, Any] = {"resourceVersion": rv}
        if more and last_key is not None:
            meta["continue"] = encode_continue(rv, last_key)
            if not labels and not fields:
                meta["remainingItemCount"] = len(keys) - len(page)
        body = {"kind": f"{kind.kind}List", "apiVersion": kind.api_version, "metadata": meta, "items": page}
        if _wants_table(request):
            return self._json(200, _table(body))
        return self._json(200, body)

    def _record_change(self, event: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata", {})
        rv = int(meta.get("resourceVersion") or 0)
        if len(self.history) == self.history.maxlen and self.history:
            self.history_floor = self.history[0].rv
        self.history.append(
            WatchEvent(rv, Store.kube_key(obj["apiVersion"], obj["kind"]), meta.get("namespace") or "",
                       meta.get("name", ""), event, _dumps(obj))
        )

    def _watch(
        self,
        kind: Kind,
        namespace: str | None,
        labels: list[Requirement],
        fields: list[tuple[str, str, str]],
        request: Request,
    ) -> Response:
        rv_text = request.arg("resourceVersion") or ""
        send_initial = (request.arg("sendInitialEvents") or "").lower() == "true"
        bookmarks = (request.arg("allowWatchBookmarks") or "").lower() == "true"
        timeout = min(float(request.arg("timeoutSeconds") or WATCH_MAX_SECONDS), WATCH_MAX_SECONDS)
        name_filter = next((v for p, op, v in fields if p == "metadata.name" and op == "="), None)
        if namespace is None:
            namespace = next((v for p, op, v in fields if p == "metadata.namespace" and op == "="), None)
        store_key = kind.store_key
        initial: list[bytes] = []
        if rv_text in ("", "0") or send_initial:
            objects = self.store.kube_objects(kind.api_version, kind.kind)
            for key in sorted(objects):
                obj = objects[key]
                if namespace is not None and key[0] != namespace:
                    continue
                if matches(obj, labels, fields):
                    initial.append(_dumps({"type": "ADDED", "object": obj}) + b"\n")
            start = int(self.store.next_resource_version())
        else:
            try:
                start = int(rv_text)
            except ValueError as exc:
                raise bad_request(f"invalid resource version: {rv_text}") from exc
            if start < self.history_floor:
                gone = status_error(410, "Expired", f"too old resource version: {start} ({self.history_floor})")
                return Response(200, _dumps({"type": "ERROR", "object": gone.body}) + b"\n")
        if send_initial and bookmarks:
            mark = {"kind": kind.kind, "apiVersion": kind.api_version,
                    "metadata": {"resourceVersion": str(start), "annotations": {"k8s.io/initial-events-end": "true"}}}
            initial.append(_dumps({"type": "BOOKMARK", "object": mark}) + b"\n")
        needs_object = bool(labels) or any(p not in ("metadata.name", "metadata.namespace") for p, _, _ in fields)

        def wanted(event: WatchEvent) -> bool:
            if event.store_key != store_key:
                return False
            if namespace is not None and event.namespace != namespace:
                return False
            if name_filter is not None and event.name != name_filter:
                return False
            return not needs_object or matches(json.loads(event.data), labels, fields)

        return Response(200, stream=self._watch_stream(initial, start, wanted, timeout))

    def _watch_stream(
        self, initial: list[bytes], start: int, wanted: Callable[[WatchEvent], bool], timeout: float
    ) -> Iterator[bytes]:
        yield from initial
        deadline = time.monotonic() + timeout
        last = start
        while time.monotonic() < deadline:
            with self.store.lock:
                self.store.tick()
                fresh: list[WatchEvent] = []
                for event in reversed(self.history):
                    if event.rv <= last:
                        break
                    fresh.append(event)
            if not fresh:
                time.sleep(WATCH_POLL_SECONDS)
                continue
            fresh.reverse()
            last = fresh[-1].rv
            for event in fresh:
                if wanted(event):
                    yield b'{"type":"' + event.type.encode() + b'","object":' + event.data + b"}\n"

    def _log(self, kind: Kind, namespace: str, name: str, request: Request) -> Response:
        self._existing(kind, namespace, name)
        lines = self.behaviours.pod_logs.get((namespace, name), [])
        tail = request.arg("tailLines")
        if tail and tail.isdigit():
            lines = lines[-int(tail):] if int(tail) else []
        text = "".join(line + "\n" for line in lines)
        return Response(200, text.encode(), content_type="text/plain")

    # -- writes ------------------------------------------------------------------------------------
    def _check_namespace(self, kind: Kind, namespace: str, name: str) -> None:
        if not kind.namespaced:
            return
        ns = self.store.kube_get("v1", "Namespace", namespace)
        if ns is None:
            raise status_error(404, "NotFound", f'namespaces "{namespace}" not found',
                               {"name": namespace, "kind": "namespaces"})
        if ns["metadata"].get("deletionTimestamp") or ns.get("status", {}).get("phase") == "Terminating":
            raise status_error(
                403,
                "Forbidden",
                f'{kind.resource} "{name}" is forbidden: unable to create new content in namespace {namespace} '
                "because it is being terminated",
                {**_details(kind, name), "causes": [{"reason": "NamespaceTerminating",
                                                     "message": f"namespace {namespace} is being terminated",
                                                     "field": "metadata.namespace"}]},
            )

    def _create(self, kind: Kind, namespace: str, request: Request) -> Response:
        obj = self._body(request)
        if not isinstance(obj, dict):
            raise bad_request("the object provided is unrecognized (must be a JSON object)")
        obj.setdefault("apiVersion", kind.api_version)
        obj.setdefault("kind", kind.kind)
        if obj["apiVersion"] != kind.api_version or obj["kind"] != kind.kind:
            raise bad_request(
                f"the API version in the data ({obj['apiVersion']}) does not match the expected API version "
                f"({kind.api_version})" if obj["apiVersion"] != kind.api_version
                else f"the kind in the data ({obj['kind']}) does not match the expected kind ({kind.kind})"
            )
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = meta["generateName"] + _random_suffix()
            else:
                raise invalid(kind, "", "metadata.name", "FieldValueRequired",
                              "Required value: name or generateName is required")
        name = meta["name"]
        if kind.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        self._check_namespace(kind, namespace, name)
        objects = self.store.kube_objects(kind.api_version, kind.kind)
        if (namespace if kind.namespaced else "", name) in objects:
            raise status_error(409, "AlreadyExists", f'{kind.resource} "{name}" already exists', _details(kind, name))
        for system_field in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion"):
            meta.pop(system_field, None)
        meta["uid"] = new_id()
        meta["creationTimestamp"] = iso_now(self.store.clock.now())
        meta["generation"] = 1
        if kind.kind == "Namespace":
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        elif kind.kind == "Pod":
            obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        elif kind.has_status:
            obj.pop("status", None)
        if _dry_run(request):
            return self._json(201, obj)
        _save_object(self.store, obj, "ADDED")
        self.behaviours.object_changed(None, obj)
        return self._json(201, obj)

    def _replace(self, kind: Kind, namespace: str, name: str, sub: str | None, request: Request) -> Response:
        body = self._body(request)
        if not isinstance(body, dict):
            raise bad_request("the object provided is unrecognized (must be a JSON object)")
        meta = body.setdefault("metadata", {})
        if meta.get("name") and meta["name"] != name:
            raise bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        old = self._existing(kind, namespace, name)
        rv = meta.get("resourceVersion")
        if not rv and not kind.builtin:
            raise invalid(kind, name, "metadata.resourceVersion", "FieldValueInvalid",
                          "Invalid value: 0x0: must be specified for an update")
        if rv and str(rv) != old["metadata"]["resourceVersion"]:
            raise conflict(kind, name, STALE)
        return self._update(kind, old, body, sub, request)

    def _patch(self, kind: Kind, namespace: str, name: str, sub: str | None, request: Request) -> Response:
        content_type = (request.header("content-type") or "").split(";")[0].strip()
        accepted = PATCH_TYPES_BUILTIN if kind.builtin else PATCH_TYPES_CUSTOM
        if content_type not in accepted:
            raise unsupported_media_type(accepted)
        patch = self._body(request)
        old = self._existing(kind, namespace, name)
        doc = copy.deepcopy(old)
        try:
            if content_type == "application/json-patch+json":
                try:
                    doc = json_patch(doc, patch)
                except JsonPatchError as exc:
                    # The apiserver wraps the patch library's error in NewGenericServerResponse(422, ...,
                    # isUnexpectedResponse=false): the generic text only, empty details.
                    raise status_error(
                        422, "Invalid", "the server rejected our request due to an error in our request", {}
                    ) from exc
            elif content_type == "application/merge-patch+json":
                if not isinstance(patch, dict):
                    raise ValueError("merge patch must be a JSON object")
                doc = merge_patch(doc, patch)
            else:
                if not isinstance(patch, dict):
                    raise ValueError("strategic merge patch must be a JSON object")
                doc = strategic_merge_patch(doc, patch)
        except ValueError as exc:
            raise bad_request(str(exc)) from exc
        if not isinstance(doc, dict):
            raise bad_request("the patched object is not an object")
        new_rv = (doc.get("metadata") or {}).get("resourceVersion")
        if new_rv and str(new_rv) != old["metadata"]["resourceVersion"]:
            raise conflict(kind, name, STALE)
        return self._update(kind, old, doc, sub, request)

    def _update(
        self, kind: Kind, old: dict[str, Any], body: dict[str, Any], sub: str | None, request: Request
    ) -> Response:
        """Apply a full new version `body` of `old` (after PUT or PATCH): system metadata is kept,
        status follows the subresource rules, finalizers decide whether a deleting object goes."""
        old_meta = old["metadata"]
        name = old_meta["name"]
        if sub == "finalize":
            # PUT namespaces/<name>/finalize: only spec.finalizers changes. Emptying it on a Terminating
            # namespace makes it go at once, content or not (the admin's last resort).
            new = copy.deepcopy(old)
            new.setdefault("spec", {})["finalizers"] = list((body.get("spec") or {}).get("finalizers") or [])
            if _dry_run(request):
                return self._json(200, new)
            if old_meta.get("deletionTimestamp") and not new["spec"]["finalizers"]:
                self._namespace_content.pop(name, None)
                drop_object(self.store, new)
                return self._json(200, new)
            _save_object(self.store, new)
            return self._json(200, new)
        if sub == "status":
            new = copy.deepcopy(old)
            if "status" in body:
                new["status"] = body["status"]
            else:
                new.pop("status", None)
        else:
            new = body
            new["apiVersion"], new["kind"] = kind.api_version, kind.kind
            meta = new.setdefault("metadata", {})
            for system_field in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                                 "deletionGracePeriodSeconds", "generation"):
                if system_field in old_meta:
                    meta[system_field] = old_meta[system_field]
                else:
                    meta.pop(system_field, None)
            if kind.has_status:
                if "status" in old:
                    new["status"] = old["status"]
                else:
                    new.pop("status", None)
            if kind.kind == "Namespace":
                new["spec"] = old.get("spec", {})
            added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
            if old_meta.get("deletionTimestamp") and added:
                found = ", ".join(f'"{f}"' for f in sorted(added))
                raise invalid(kind, name, "metadata.finalizers", "FieldValueForbidden",
                              f"Forbidden: no new finalizers can be added if the object is being deleted, "
                              f"found new finalizers []string{{{found}}}")
            if _spec_part(new, kind) != _spec_part(old, kind):
                meta["generation"] = int(old_meta.get("generation") or 1) + 1
        new["metadata"]["resourceVersion"] = old_meta["resourceVersion"]
        if not new["metadata"].get("finalizers"):
            new["metadata"].pop("finalizers", None)
        if new == old:
            return self._json(200, old)  # a no-op write does not bump the resourceVersion
        if _dry_run(request):
            return self._json(200, new)
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            self._remove(old, new)
            return self._json(200, new)
        _save_object(self.store, new)
        self.behaviours.object_changed(old, new)
        return self._json(200, new)

    # -- delete ------------------------------------------------------------------------------------
    def _delete(self, kind: Kind, namespace: str, name: str, request: Request) -> Response:
        obj = self._existing(kind, namespace, name)
        options = self._body(request) or {}
        preconditions = options.get("preconditions") or {}
        meta = obj["metadata"]
        if preconditions.get("uid") and preconditions["uid"] != meta.get("uid"):
            raise conflict(kind, name, f"Precondition failed: UID in precondition: {preconditions['uid']}, "
                                       f"UID in object meta: {meta.get('uid')}")
        if preconditions.get("resourceVersion") and str(preconditions["resourceVersion"]) != meta["resourceVersion"]:
            raise conflict(
                kind, name,
                f"the ResourceVersion in the precondition ({preconditions['resourceVersion']}) does not match the "
                f"ResourceVersion in record ({meta['resourceVersion']}). The object might have been modified",
            )
        if _dry_run(request) or "All" in (options.get("dryRun") or []):
            return self._json(200, obj)
        return self._json(200, self._delete_object(kind, obj))

    def _delete_collection(self, kind: Kind, namespace: str | None, request: Request) -> Response:
        labels = parse_label_selector(request.arg("labelSelector") or "")
        fields = parse_field_selector(request.arg("fieldSelector") or "")
        objects = self.store.kube_objects(kind.api_version, kind.kind)
        victims = [o for k, o in sorted(objects.items()) if (namespace is None or k[0] == namespace)
                   and matches(o, labels, fields)]
        items = victims if _dry_run(request) else [self._delete_object(kind, o) for o in victims]
        rv = self.store.next_resource_version()
        body = {"kind": f"{kind.kind}List", "apiVersion": kind.api_version, "metadata": {"resourceVersion": rv},
                "items": items}
        return self._json(200, body)

    def _delete_object(self, kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
        """Delete now, or mark for deletion while finalizers remain; namespaces delete their content."""
        meta = obj["metadata"]
        if kind.kind == "Namespace":
            return self._delete_namespace(obj)
        if meta.get("finalizers"):
            if not meta.get("deletionTimestamp"):
                new = copy.deepcopy(obj)
                new["metadata"]["deletionTimestamp"] = iso_now(self.store.clock.now())
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                _save_object(self.store, new)
                self.behaviours.object_changed(obj, new)
                return new
            return obj
        self._remove(obj, obj)
        return obj

    def _remove(self, old: dict[str, Any], final: dict[str, Any]) -> None:
        """The object goes for good; a Terminating namespace waiting for it may finish."""
        drop_object(self.store, final)
        self.behaviours.object_changed(old, None)
        namespace = final["metadata"].get("namespace")
        if namespace:
            self._content_gone(namespace, (Store.kube_key(final["apiVersion"], final["kind"]),
                                           final["metadata"]["name"]))

    def _delete_namespace(self, ns: dict[str, Any]) -> dict[str, Any]:
        name = ns["metadata"]["name"]
        if not ns["metadata"].get("deletionTimestamp"):
            new = copy.deepcopy(ns)
            new["metadata"]["deletionTimestamp"] = iso_now(self.store.clock.now())
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new.setdefault("status", {})["phase"] = "Terminating"
            _save_object(self.store, new)
            ns = new
        remaining = self._remaining_content(name)
        for store_key, obj_name in sorted(remaining):
            kind = BY_STORE_KEY.get(store_key)
            obj = self.store.kube.get(store_key, {}).get((name, obj_name))
            if kind is not None and obj is not None:
                self._delete_object(kind, obj)
        self._finish_namespace_if_empty(name)
        return self.store.kube_get("v1", "Namespace", name) or ns

    def _remaining_content(self, namespace: str) -> set[tuple[str, str]]:
        content = self._namespace_content.get(namespace)
        if content is None:
            content = {
                (store_key, key[1])
                for store_key, objects in self.store.kube.items()
                for key in objects
                if key[0] == namespace
            }
            self._namespace_content[namespace] = content
        return content

    def _content_gone(self, namespace: str, key: tuple[str, str]) -> None:
        content = self._namespace_content.get(namespace)
        if content is None:
            ns = self.store.kube_get("v1", "Namespace", namespace)
            if ns is None or not ns["metadata"].get("deletionTimestamp"):
                return
            content = self._remaining_content(namespace)
        content.discard(key)
        self._finish_namespace_if_empty(namespace)

    def _finish_namespace_if_empty(self, namespace: str) -> None:
        """The namespace controller's last step: an empty Terminating namespace goes; a non-empty one
        reports what it still waits for in its conditions."""
        ns = self.store.kube_get("v1", "Namespace", namespace)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        content = self._remaining_content(namespace)
        if content:
            # Cheap path: something is still there. Refresh the conditions only on the first call.
            if not ns.get("status", {}).get("conditions"):
                self._set_namespace_conditions(ns, content)
            return
        # Verify (objects may have been put straight into the store) before letting it go.
        self._namespace_content.pop(namespace, None)
        if self._remaining_content(namespace):
            return
        self._namespace_content.pop(namespace, None)
        drop_object(self.store, ns)

    def _set_namespace_conditions(self, ns: dict[str, Any], content: set[tuple[str, str]]) -> None:
        counts: dict[str, int] = {}
        finalizers: dict[str, int] = {}
        namespace = ns["metadata"]["name"]
        for store_key, obj_name in content:
            kind = BY_STORE_KEY.get(store_key)
            label = kind.resource if kind else store_key
            counts[label] = counts.get(label, 0) + 1
            obj = self.store.kube.get(store_key, {}).get((namespace, obj_name)) or {}
            for f in obj.get("metadata", {}).get("finalizers") or []:
                finalizers[f] = finalizers.get(f, 0) + 1
        now = iso_now(self.store.clock.now())
        new = copy.deepcopy(ns)
        new["status"]["conditions"] = [
            {"type": "NamespaceContentRemaining", "status": "True", "reason": "SomeResourcesRemain",
             "lastTransitionTime": now,
             "message": "Some resources are remaining: " + ", ".join(
                 f"{r} has {n} resource instances" for r, n in sorted(counts.items()))},
            {"type": "NamespaceFinalizersRemaining", "status": "True" if finalizers else "False",
             "reason": "SomeFinalizersRemain" if finalizers else "ContentHasNoFinalizers",
             "lastTransitionTime": now,
             "message": "Some content in the namespace has finalizers remaining: " + ", ".join(
                 f"{f} in {n} resource instances" for f, n in sorted(finalizers.items()))
             if finalizers else "All content-preserving finalizers finished"},
        ]
        _save_object(self.store, new)


def _bisect_after(keys: list[tuple[str, str]], start: tuple[str, str]) -> int:
    import bisect

    return bisect.bisect_right(keys, start)


def _dry_run(request: Request) -> bool:
    return "All" in request.query.get("dryRun", [])


def _wants_table(request: Request) -> bool:
    return "as=Table" in (request.header("accept") or "")


def _table(body: dict[str, Any]) -> dict[str, Any]:
    """The server-side printing kubectl asks for by default: NAME and AGE columns."""
    rows = []
    for obj in body["items"]:
        meta = obj["metadata"]
        rows.append(
            {
                "cells": [meta["name"], meta.get("creationTimestamp", "")],
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta},
            }
        )
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": body["metadata"],
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "description": "Name of the object", "priority": 0},
            {"name": "Created At", "type": "date", "format": "", "description": "creation time", "priority": 0},
        ],
        "rows": rows,
    }
