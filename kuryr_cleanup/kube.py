"""The OpenShift cluster, through the kubernetes client's dynamic client.

Objects are handled as plain dicts (raw JSON): the dynamic client's ResourceInstance wrapping costs
more than the API call itself on lists of tens of thousands of pods. Lists are paged.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError, NotFoundError, ResourceNotFoundError, api_exception

from kuryr_cleanup.compact import CompactRecord


@dataclass(frozen=True)
class Kind:
    """A Kubernetes kind the tool reads or changes."""

    api_version: str
    kind: str
    namespaced: bool = True


SERVICE = Kind("v1", "Service")
POD = Kind("v1", "Pod")
NAMESPACE = Kind("v1", "Namespace", namespaced=False)
NODE = Kind("v1", "Node", namespaced=False)
NETWORK_POLICY = Kind("networking.k8s.io/v1", "NetworkPolicy")
DAEMON_SET = Kind("apps/v1", "DaemonSet")
KURYR_NETWORK = Kind("openstack.org/v1", "KuryrNetwork")
KURYR_PORT = Kind("openstack.org/v1", "KuryrPort")
KURYR_LOAD_BALANCER = Kind("openstack.org/v1", "KuryrLoadBalancer")
KURYR_NETWORK_POLICY = Kind("openstack.org/v1", "KuryrNetworkPolicy")
INFRASTRUCTURE = Kind("config.openshift.io/v1", "Infrastructure", namespaced=False)
CLUSTER_VERSION = Kind("config.openshift.io/v1", "ClusterVersion", namespaced=False)
LEASE = Kind("coordination.k8s.io/v1", "Lease")
NETWORK_CONFIG = Kind("config.openshift.io/v1", "Network", namespaced=False)
CLUSTER_OPERATOR = Kind("config.openshift.io/v1", "ClusterOperator", namespaced=False)
NETWORK_OPERATOR = Kind("operator.openshift.io/v1", "Network", namespaced=False)
MACHINE_CONFIG_POOL = Kind("machineconfiguration.openshift.io/v1", "MachineConfigPool", namespaced=False)
MACHINE_CONFIG = Kind("machineconfiguration.openshift.io/v1", "MachineConfig", namespaced=False)

MERGE_PATCH = "application/merge-patch+json"

LIST_PAGE_SIZE = 500
_QUERY_NAMES = {"limit": "limit", "_continue": "continue", "label_selector": "labelSelector",
                "field_selector": "fieldSelector"}
REQUEST_TIMEOUT = (10, 120)  # seconds to connect, to read
AUTH_REFRESH = 1.0  # seconds between asks for the credentials


# What a cleanup reads of the cluster objects it holds until the run ends (every Pod, KuryrPort,
# Service and Kuryr CR with a finalizer): the rest (spec, status, labels, annotations, owner references,
# managedFields: several KB per object on a real API server) stays one encoded blob per object until
# the journal records it (compact.CompactRecord).
OBJECT_FIELDS = frozenset({"apiVersion", "kind", "metadata"})
METADATA_FIELDS = frozenset({"name", "namespace", "resourceVersion", "finalizers"})


def compact_object(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` as a CompactRecord, its metadata too (one encoded blob each for what is not at hand)."""
    record = CompactRecord(obj, OBJECT_FIELDS)
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        dict.__setitem__(record, "metadata", CompactRecord(meta, METADATA_FIELDS))
    return record


class KindMissing(Exception):
    """The cluster does not serve this kind (e.g. Kuryr's CRDs are already gone)."""


class Cluster:
    """Raw-JSON access to the cluster's objects."""

    def __init__(self, api_client: k8s_client.ApiClient) -> None:
        self.api_client = api_client
        self._dynamic: DynamicClient | None = None
        self._resources: dict[Kind, Any] = {}
        self._auth_lock = threading.Lock()
        self._discovery_lock = threading.RLock()
        self._auth_cache: tuple[float, dict[str, str], list[tuple[str, str]]] | None = None

    @property
    def dynamic(self) -> DynamicClient:
        if self._dynamic is None:
            # Its discovery cache would otherwise be /tmp/osrcp-<hash>.json: a predictable, world-readable
            # file (`--plan` writes nothing locally). os.devnull reads as no cache and takes the writes.
            self._dynamic = DynamicClient(self.api_client, cache_file=os.devnull)
        return self._dynamic

    def resource(self, kind: Kind) -> Any:
        found = self._resources.get(kind)
        if found is None:
            with self._discovery_lock:  # discovery reads are shared, and lists run in parallel
                if kind not in self._resources:
                    try:
                        self._resources[kind] = self.dynamic.resources.get(api_version=kind.api_version,
                                                                           kind=kind.kind)
                    except ResourceNotFoundError as exc:
                        raise KindMissing(f"{kind.kind}.{kind.api_version} is not served by this cluster") from exc
                found = self._resources[kind]
        return found

    def _auth(self) -> tuple[dict[str, str], list[tuple[str, str]]]:
        """The credentials' headers (and query parameters), asked of the client at most once a second:
        its kubeconfig loader re-reads the whole configuration on every ask (to renew expiring
        tokens), which cost more than the request."""
        now = time.monotonic()
        with self._auth_lock:
            if self._auth_cache is None or now - self._auth_cache[0] > AUTH_REFRESH:
                headers: dict[str, str] = {}
                query: list[tuple[str, str]] = []
                self.api_client.update_params_for_auth(headers, query, ["BearerToken"], "", "GET", None)
                self._auth_cache = (now, headers, query)
            return self._auth_cache[1], list(self._auth_cache[2])

    def _request(self, method: str, path: str, **params: Any) -> dict[str, Any]:
        """One request, as the dynamic client would send it (its auth, headers, timeout, errors as its
        exceptions), without its layers: building, sanitising and wrapping each request cost more than
        the rest of the call; a cleanup sends tens of thousands of patches."""
        # Bounded: an API server that accepts connections and never answers must not hang the tool.
        timeout = params.pop("_request_timeout", REQUEST_TIMEOUT)
        decode = params.pop("_decode", True)
        body = params.pop("body", None)
        content_type = params.pop("content_type", None)
        query = [(_QUERY_NAMES[name], value) for name, value in params.items() if value is not None]
        api = self.api_client
        auth_headers, auth_query = self._auth()
        headers = {**api.default_headers, "Accept": "application/json", **auth_headers}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        query += auth_query
        url = api.configuration.host + path + ("?" + urlencode(query) if query else "")
        try:
            resp = api.rest_client.request(method.upper(), url, headers=headers, body=body,
                                           _request_timeout=timeout)
            data = resp.read()
            if not 200 <= resp.status <= 299:
                api.response_deserialize(resp, {})  # raises the ApiException, with the body
        except ApiException as exc:
            raise api_exception(exc) from exc
        return json.loads(data) if data and decode else {}

    def list(self, kind: Kind, namespace: str | None = None, label_selector: str | None = None,
             field_selector: str | None = None, limit: int = LIST_PAGE_SIZE,
             compact: bool = False) -> Iterator[dict[str, Any]]:
        """Every object of `kind` (all namespaces unless one is given), page by page; with `compact`,
        as compact records (`compact_object`: for lists of objects kept until the run ends)."""
        try:
            res = self.resource(kind)
        except KindMissing:
            return
        path = res.path(namespace=namespace)
        token: str | None = None
        while True:
            page = self._request(
                "get", path, limit=limit, _continue=token, label_selector=label_selector,
                field_selector=field_selector,
            )
            items = page.get("items") or []
            # A list's items carry no apiVersion and kind: give them theirs, so that an object the
            # journal records can be applied again as it is.
            for item in items:
                item.setdefault("apiVersion", kind.api_version)
                item.setdefault("kind", kind.kind)
            if compact:
                page["items"] = None  # each object goes as soon as it is compacted
                for n, item in enumerate(items):
                    items[n] = None
                    yield compact_object(item)
            else:
                yield from items
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return

    def get(self, kind: Kind, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The object, or None when it (or its kind) does not exist."""
        try:
            res = self.resource(kind)
        except KindMissing:
            return None
        try:
            return self._request("get", res.path(name=name, namespace=namespace))
        except NotFoundError:
            return None

    def patch(self, kind: Kind, name: str, namespace: str | None, patch: Any,
              content_type: str = MERGE_PATCH, answer: bool = True) -> dict[str, Any]:
        """The patched object (`answer=False`: {} instead, for callers that do not read it: decoding
        the whole object the API sends back cost as much as the patch itself)."""
        res = self.resource(kind)
        return self._request(
            "patch", res.path(name=name, namespace=namespace), body=patch, content_type=content_type,
            _decode=answer,
        )

    def create(self, kind: Kind, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        res = self.resource(kind)
        return self._request("post", res.path(namespace=namespace), body=body)

    def replace(self, kind: Kind, name: str, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]:
        """PUT the whole object; its metadata.resourceVersion makes a stale write a 409."""
        res = self.resource(kind)
        return self._request("put", res.path(name=name, namespace=namespace), body=body)

    def delete(self, kind: Kind, name: str, namespace: str | None = None) -> None:
        """Delete; a NotFoundError (404) when it is already gone."""
        res = self.resource(kind)
        self._request("delete", res.path(name=name, namespace=namespace))


def api_status(exc: BaseException) -> int | None:
    """The HTTP status of a kubernetes client error, if it has one."""
    if isinstance(exc, DynamicApiError):
        return int(exc.status) if exc.status else None
    status = getattr(exc, "status", None)
    return int(status) if isinstance(status, int) else None


def object_ref(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name')}" if ns else str(meta.get("name"))
