"""The simulated Kubernetes API: CRUD, patches, finalizers, lists; routes for discovery and watches.

Served on its own port at the root, as a real apiserver is, so the official `kubernetes` Python
client (typed and dynamic) and `kubectl` work against it unmodified. Semantics follow the apiserver
where they decide whether a migration or cleanup tool is right in real life:
- only the kubeconfig's token may do everything; another token is 401, a user RBAC refuses 403 (`auth`);
- a DELETE of an object with finalizers only sets `deletionTimestamp`; the object goes when an update
  empties `metadata.finalizers`; a pod bound to a node is deleted gracefully and goes when its kubelet
  confirms (`kubelet`);
- PUT checks `metadata.resourceVersion` (stale -> 409 Conflict, the real message);
- a deleted namespace is Terminating at once; its controller deletes the content and the namespace
  goes when none remains (`namespaces`); creating in it answers 403;
- kinds with a status subresource ignore status in main writes, and `/status` writes only status;
- custom resources refuse strategic merge patches (415); a failed JSON-patch `test` answers 422;
- names and field selectors are validated per kind (`validation`);
- errors are `kind: Status` documents with the apiserver's reason, code and message, and paths nothing
  serves get the 404 the apiserver gives them (a Status, or plain text outside the built-in groups).

Objects live in `store.kube` as plain dicts; lists serialize only the requested page (a 2,000
namespace cluster pages through its KuryrPorts in milliseconds). Watches stream JSON lines from a
bounded history of changes fed by `store.kube_listeners`, polling with the store lock released.
"""

from __future__ import annotations

import copy
import datetime as _dt
import random
import string
from typing import Any

from kuryr_cleanup.sim import openshift
from kuryr_cleanup.sim.http import ApiError, Request, Response, Service
from kuryr_cleanup.sim.kube import discovery
from kuryr_cleanup.sim.kube.auth import Authorizer
from kuryr_cleanup.sim.kube.errors import (
    STALE,
    bad_request,
    conflict,
    deleted_status,
    invalid,
    not_found,
    precondition_failed,
    status_details,
    status_error,
    unsupported_media_type,
)
from kuryr_cleanup.sim.kube.kubelet import Kubelets, termination_pending
from kuryr_cleanup.sim.kube.namespaces import Namespaces
from kuryr_cleanup.sim.kube.patches import JsonPatchError, json_patch, merge_patch, strategic_merge_patch
from kuryr_cleanup.sim.kube.resources import (
    BY_RESOURCE,
    BY_STORE_KEY,
    Kind,
    drop_object,
    save_object,
    serialize,
)
from kuryr_cleanup.sim.kube.selectors import (
    decode_continue,
    encode_continue,
    keys_after,
    matches,
    parse_field_selector,
    parse_label_selector,
)
from kuryr_cleanup.sim.kube.validation import check_field_selector, check_name
from kuryr_cleanup.sim.kube.watch import Watches
from kuryr_cleanup.sim.store import Store, iso_now, new_id

PATCH_TYPES_BUILTIN = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
PATCH_TYPES_CUSTOM = ("application/json-patch+json", "application/merge-patch+json")
APPLY_PATCH = "application/apply-patch+yaml"
POD = BY_STORE_KEY["v1/Pod"]


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
        self.authorizer = Authorizer()
        self.watches = Watches(store)
        self.namespaces = Namespaces(store, self._delete_object)
        self.kubelets = Kubelets(store, lambda pod: self._delete_object(POD, pod, 0))
        self.route("GET", r"/version/?", discovery.version)
        self.route("GET", r"/api/?", discovery.api_versions)
        self.route("GET", r"/apis/?", discovery.api_groups)
        self.route("GET", r"/api/(?P<version>v1)/?", discovery.resource_list)
        self.route("GET", r"/apis/(?P<group>[^/]+)/?", discovery.api_group)
        self.route("GET", r"/apis/(?P<group>[^/]+)/(?P<version>[^/]+)/?", discovery.resource_list)
        self.route("GET", r"/openapi/v2/?", discovery.openapi_v2)
        self.route("GET", r"/openapi/v3(/.*)?", discovery.openapi_v3)
        self.route("*", r"/api/(?P<version>v1)(?P<rest>/.+)", self._resource_request)
        self.route("*", r"/apis/(?P<group>[^/]+)/(?P<version>[^/]+)(?P<rest>/.+)", self._resource_request)

    # -- framework hooks -------------------------------------------------------------------------
    def dispatch(self, request: Request) -> Response:
        try:
            self.authorizer.check(request)
        except ApiError as err:
            return Response(err.status, err.body, headers=dict(err.headers))
        self.behaviours.apply_faults()
        return super().dispatch(request)

    def fault_response(self, status: int, retry_after: float | None) -> Response:
        reasons = {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}
        err = status_error(status, reasons.get(status, "Unknown"), "injected fault")
        headers = {"Retry-After": str(max(0, int(retry_after)))} if retry_after is not None else {}
        return Response(status, err.body, headers)

    def not_found(self, request: Request) -> Response:
        return discovery.path_not_found(request.path)

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
        if kind is None:
            return self.not_found(request)
        if kind.namespaced and namespace is None and len(parts) > 1:
            return self.not_found(request)
        if not kind.namespaced and namespace is not None:
            return self.not_found(request)
        name = parts[1] if len(parts) > 1 else None
        sub = parts[2] if len(parts) > 2 else None
        if len(parts) > 3 or (sub is not None and sub not in kind.subresources):
            if not kind.builtin and name:
                # The custom resource handler answers any subresource it does not serve with the object's
                # NotFound (whether the object exists or not).
                raise not_found(kind, name)
            return self.not_found(request)
        method = request.method
        if name is None:
            if method == "GET":
                return self._list_or_watch(kind, namespace, request)
            if method == "POST":
                return self._create(kind, namespace or "", request)
            if method == "DELETE":
                return self._delete_collection(kind, namespace, request)
            if not kind.builtin and method in ("PUT", "PATCH"):
                # The CRD handler serves a namespaced kind across namespaces for reads only.
                if kind.namespaced and namespace is None:
                    return self.not_found(request)
                raise bad_request("name must be provided")
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
        return Response(status, serialize(obj))

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
        fields = check_field_selector(kind, parse_field_selector(request.arg("fieldSelector") or ""))
        if (request.arg("watch") or "").lower() in ("true", "1"):
            return self.watches.watch(kind, namespace, labels, fields, request)
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
            keys = keys[keys_after(keys, start):]
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
            page.append(_list_item(kind, obj))
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
                {**status_details(kind, name), "causes": [{"reason": "NamespaceTerminating",
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
        check_name(kind, name)
        objects = self.store.kube_objects(kind.api_version, kind.kind)
        if (namespace if kind.namespaced else "", name) in objects:
            raise status_error(409, "AlreadyExists", f'{kind.resource} "{name}" already exists',
                               status_details(kind, name))
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
        save_object(self.store, obj, "ADDED")
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
        if not rv and not kind.allows_unconditional_update:
            raise invalid(kind, name, "metadata.resourceVersion", "FieldValueInvalid",
                          "Invalid value: 0x0: must be specified for an update", by_resource=not kind.builtin)
        if rv and str(rv) != old["metadata"]["resourceVersion"]:
            raise conflict(kind, name, STALE)
        return self._update(kind, old, body, sub, request)

    def _patch(self, kind: Kind, namespace: str, name: str, sub: str | None, request: Request) -> Response:
        content_type = (request.header("content-type") or "").split(";")[0].strip()
        if content_type == APPLY_PATCH:
            raise status_error(415, "UnsupportedMediaType",
                               f"the simulator does not implement server-side apply ({APPLY_PATCH})")
        if kind.builtin and content_type not in PATCH_TYPES_BUILTIN:
            # Refused by the go-restful route (its Consumes list) before the patch handler runs.
            raise status_error(415, "UnsupportedMediaType", "415: Unsupported Media Type")
        if content_type not in PATCH_TYPES_CUSTOM and not kind.builtin:
            raise unsupported_media_type((*PATCH_TYPES_CUSTOM, APPLY_PATCH))
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
                self.namespaces.forget(name)
                drop_object(self.store, new)
                return self._json(200, new)
            save_object(self.store, new)
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
        if (new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers")
                and not termination_pending(new)):
            # The last finalizer went (a pod whose kubelet has not confirmed yet stays until it does).
            self._remove(old)
            return self._json(200, new)
        save_object(self.store, new)
        self.behaviours.object_changed(old, new)
        return self._json(200, new)

    # -- delete ------------------------------------------------------------------------------------
    def _delete(self, kind: Kind, namespace: str, name: str, request: Request) -> Response:
        obj = self._existing(kind, namespace, name)
        options = self._body(request) or {}
        preconditions = options.get("preconditions") or {}
        meta = obj["metadata"]
        # rest.BeforeDelete checks these first and names the object by its Kind.
        if preconditions.get("uid") and preconditions["uid"] != meta.get("uid"):
            raise precondition_failed(
                kind, name, f"the UID in the precondition ({preconditions['uid']}) does not match the UID in record "
                            f"({meta.get('uid')}). The object might have been deleted and then recreated")
        if preconditions.get("resourceVersion") and str(preconditions["resourceVersion"]) != meta["resourceVersion"]:
            raise precondition_failed(
                kind, name,
                f"the ResourceVersion in the precondition ({preconditions['resourceVersion']}) does not match the "
                f"ResourceVersion in record ({meta['resourceVersion']}). The object might have been modified",
            )
        dry_run = _dry_run(request) or "All" in (options.get("dryRun") or [])
        grace = _grace_period(options, request)
        if kind.kind == "Namespace":
            return self._json(200, obj if dry_run else self.namespaces.delete(obj))
        final, gone = self._delete_object(kind, obj, grace, dry_run)
        if gone and kind.kind != "Pod":
            # Only pods' storage returns the deleted object; the other kinds answer a Status.
            return self._json(200, deleted_status(kind, final))
        return self._json(200, final)

    def _delete_collection(self, kind: Kind, namespace: str | None, request: Request) -> Response:
        labels = parse_label_selector(request.arg("labelSelector") or "")
        fields = check_field_selector(kind, parse_field_selector(request.arg("fieldSelector") or ""))
        objects = self.store.kube_objects(kind.api_version, kind.kind)
        victims = [o for k, o in sorted(objects.items()) if (namespace is None or k[0] == namespace)
                   and matches(o, labels, fields)]
        options = self._body(request) or {}
        dry_run = _dry_run(request) or "All" in (options.get("dryRun") or [])
        grace = _grace_period(options, request)
        for obj in victims:
            self._delete_object(kind, obj, grace, dry_run)
        items = [_list_item(kind, o) for o in victims]  # the apiserver answers the list it read before deleting
        rv = self.store.next_resource_version()
        body = {"kind": f"{kind.kind}List", "apiVersion": kind.api_version, "metadata": {"resourceVersion": rv},
                "items": items}
        return self._json(200, body)

    def _delete_object(self, kind: Kind, obj: dict[str, Any], grace: int | None = None,
                       dry_run: bool = False) -> tuple[dict[str, Any], bool]:
        """One object's DELETE (the namespace controller's too): the object as it ends, and whether it went.

        As the apiserver's generic store: an object with finalizers is only marked (deletionTimestamp,
        grace 0); a pod is deleted gracefully (its kubelet confirms, see `kubelet`); the rest goes now."""
        if kind.kind == "Namespace":
            return self.namespaces.delete(obj), False
        new, goes = self._planned_deletion(kind, obj, grace)
        if dry_run:
            return new or obj, goes
        final = obj
        if new is not None:
            save_object(self.store, new)
            self.behaviours.object_changed(obj, new)
            final = new
        if goes:
            self._remove(final)
        elif new is not None and kind.kind == "Pod" and termination_pending(new):
            self.kubelets.terminating(new)
        return final, goes

    def _planned_deletion(self, kind: Kind, obj: dict[str, Any],
                          requested: int | None) -> tuple[dict[str, Any] | None, bool]:
        """What a DELETE does (k8s.io/apiserver's rest.BeforeDelete and the pod strategy): the object as it
        is to be stored (None: unchanged) and whether it then goes for good."""
        meta = obj["metadata"]
        finalizers = bool(meta.get("finalizers"))
        graceful = kind.kind == "Pod"
        if meta.get("deletionTimestamp"):
            pending = meta.get("deletionGracePeriodSeconds")
            if not pending:
                return None, not finalizers
            if not graceful or requested is None or requested >= int(pending):
                return None, False  # graceful deletion pending: only a shorter grace period changes it
            new = copy.deepcopy(obj)
            when = _parse_time(meta["deletionTimestamp"]) - int(pending) + requested
            new["metadata"]["deletionTimestamp"] = iso_now(when)
            new["metadata"]["deletionGracePeriodSeconds"] = requested
            return new, requested == 0 and not finalizers
        if not graceful and not finalizers:
            return None, True
        period = _pod_grace_period(obj, requested) if graceful else 0
        new = copy.deepcopy(obj)
        new["metadata"]["deletionTimestamp"] = iso_now(self.store.clock.now() + period)
        new["metadata"]["deletionGracePeriodSeconds"] = period
        if int(meta.get("generation") or 0) > 0:
            new["metadata"]["generation"] = int(meta["generation"]) + 1
        return new, period == 0 and not finalizers

    def _remove(self, stored: dict[str, Any]) -> None:
        """The object goes for good; a Terminating namespace waiting for it may finish.

        `stored` is the object as last stored: what the DELETED event carries, as etcd's previous value
        (when an update removed the last finalizer, the finalizers are still listed there)."""
        drop_object(self.store, stored)
        self.behaviours.object_changed(stored, None)
        namespace = stored["metadata"].get("namespace")
        if namespace:
            self.namespaces.content_gone(namespace, (Store.kube_key(stored["apiVersion"], stored["kind"]),
                                           stored["metadata"]["name"]))


def _list_item(kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
    """A list item as the apiserver sends it: the items of a built-in kind's typed list carry no
    apiVersion and kind (a custom resource's, unstructured, do)."""
    if not kind.builtin:
        return obj
    return {k: v for k, v in obj.items() if k != "apiVersion" and k != "kind"}


def _grace_period(options: dict[str, Any], request: Request) -> int | None:
    """DeleteOptions.gracePeriodSeconds, from the body or the query."""
    value = options.get("gracePeriodSeconds")
    if value is None:
        value = request.arg("gracePeriodSeconds")
    try:
        return None if value is None else max(0, int(value))
    except (TypeError, ValueError) as exc:
        raise bad_request(f"invalid gracePeriodSeconds: {value}") from exc


def _pod_grace_period(pod: dict[str, Any], requested: int | None) -> int:
    """The pod strategy's CheckGracefulDelete: the requested period, else the pod's own (30 s by default);
    0 for a pod no node runs (unscheduled) or whose containers have all ended."""
    spec = pod.get("spec") or {}
    period = requested if requested is not None else int(spec.get("terminationGracePeriodSeconds", 30))
    if not spec.get("nodeName") or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        period = 0
    return period


def _parse_time(text: str) -> float:
    return _dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()


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
