"""The same Kubernetes calls against the real kube-apiserver 1.20.2 and against the simulator's Kubernetes API.

Each sequence is written once as a function of a `Side` (the official kubernetes client's ApiClient,
raw JSON in and out) and records a transcript: one line per call with its status, the `kind: Status`
reason and the facts the sequence cares about (finalizers, deletionTimestamp, labels, event types, page
sizes), and beside it the Status message. Both sides must give the same transcript, compared twice:
without the messages (what a client decides on) and with them. Where the simulator differs, the
comparison is marked xfail(strict=True) with the reason, and docs/real-services.md lists the
difference (what the real server does, what the simulator does) so it can be fixed in the simulator;
fixing it turns the xfail into a failure that asks for the marker to go.

Both sides use the same object names (one random run id), so messages compare as they are; uids,
resourceVersions and timestamps are replaced by placeholders.
"""

from __future__ import annotations

import difflib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.watch.watch import iter_resp_lines

from tests.real.kube_apiserver import USERS, KubeCluster

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
RV_IN_MESSAGE = re.compile(r"\((\d+)\)")
WAIT_SECONDS = 90.0
KP_FINALIZER = "kuryr.openstack.org/kuryrport-finalizer"
OTHER_FINALIZER = "example.com/other"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


def api_client(kubeconfig: Path, token: str | None = None, context: str | None = None) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), context=context, client_configuration=configuration)
    if token is not None:
        configuration.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(configuration)


@dataclass
class Side:
    """One server under comparison."""

    name: str
    api: client.ApiClient
    bad_token_api: client.ApiClient
    limited_api: client.ApiClient  # a user without RBAC bindings
    limited_user: str  # its name, which differs between the sides
    run: str  # shared by both sides: the same names on both
    transcript: list[tuple[str, str]] = field(default_factory=list)  # (what is compared, the message)

    # -- calls ------------------------------------------------------------------------------------
    def call(self, method: str, path: str, body: Any = None, content_type: str = "application/json",
             query: dict[str, Any] | None = None, api: client.ApiClient | None = None) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        resp = self.open(method, path, body, headers, query, api)
        data = resp.read()
        try:
            decoded = json.loads(data) if data else None
        except ValueError:
            decoded = data.decode(errors="replace")
        return int(resp.status), decoded

    def open(self, method: str, path: str, body: Any, headers: dict[str, str], query: dict[str, Any] | None = None,
             api: client.ApiClient | None = None, timeout: float | None = None) -> Any:
        """The client's own request path (auth, TLS, serialization); the answer unread (watches stream it)."""
        api = api or self.api
        method, url, headers, body, _ = api.param_serialize(
            method, path, query_params=list((query or {}).items()), header_params=headers, body=body,
            auth_settings=["BearerToken"])
        return api.call_api(method, url, header_params=headers, body=body, _request_timeout=timeout)

    # -- recording --------------------------------------------------------------------------------
    def clean(self, text: str) -> str:
        text = text.replace(f'User "{self.limited_user}"', 'User "<limited>"')
        return RV_IN_MESSAGE.sub("(<rv>)", UUID.sub("<uid>", text))

    def rec(self, label: str, status: int, body: Any, /, **facts: Any) -> None:
        """One call: its status, and the Status document's reason (and message, compared separately)."""
        line = f"{label}: {status}"
        message = ""
        if isinstance(body, dict) and body.get("kind") == "Status":
            line += f" {body.get('reason')}"
            message = self.clean(str(body.get("message")))
            if body.get("code") != status:
                line += f" (code {body.get('code')})"
        elif status >= 400:
            line += " (not a Status)"
            message = self.clean(str(body))[:200]
        for key in sorted(facts):
            line += f" {key}={self.clean(json.dumps(facts[key], sort_keys=True))}"
        self.transcript.append((line, message))

    def note(self, label: str, value: Any, detail: Any = None) -> None:
        self.transcript.append((f"{label}: {self.clean(json.dumps(value, sort_keys=True))}",
                                "" if detail is None else self.clean(json.dumps(detail, sort_keys=True))))

    def lines(self, messages: bool) -> list[str]:
        return [f"{line} | {message}" if messages and message else line for line, message in self.transcript]

    def wait(self, what: str, check: Callable[[], Any], seconds: float = WAIT_SECONDS) -> Any:
        """Poll until check() is truthy (the real server's controllers act asynchronously)."""
        deadline = time.monotonic() + seconds
        while True:
            value = check()
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.2)

    # -- names ------------------------------------------------------------------------------------
    def namespace(self, suffix: str = "") -> str:
        name = f"diff-{self.run}{suffix}"
        status, body = self.call("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
        assert status == 201, (self.name, status, body)
        return name


def meta_facts(body: Any) -> dict[str, Any]:
    meta = (body or {}).get("metadata") or {}
    return {"deleting": bool(meta.get("deletionTimestamp")), "grace": meta.get("deletionGracePeriodSeconds"),
            "finalizers": meta.get("finalizers")}


def kuryr_port(name: str, finalizers: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if finalizers:
        meta["finalizers"] = finalizers
    return {"apiVersion": "openstack.org/v1", "kind": "KuryrPort", "metadata": meta,
            "spec": {"podUid": "00000000-0000-0000-0000-000000000000", "podNodeName": "node-0"}, **extra}


def kp_path(ns: str, name: str = "") -> str:
    return f"/apis/openstack.org/v1/namespaces/{ns}/kuryrports" + (f"/{name}" if name else "")


def cm_path(ns: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{ns}/configmaps" + (f"/{name}" if name else "")


# ---------------------------------------------------------------------------------------- sequences


def finalizer_lifecycle(s: Side, core: bool) -> None:
    """Delete with finalizers: deletionTimestamp, no new finalizers, gone when the list empties."""
    ns = s.namespace()
    path = cm_path(ns) if core else kp_path(ns)
    body = ({"metadata": {"name": "obj", "finalizers": [KP_FINALIZER, OTHER_FINALIZER]}, "data": {"a": "1"}}
            if core else kuryr_port("obj", [KP_FINALIZER, OTHER_FINALIZER]))
    status, created = s.call("POST", path, body)
    s.rec("create", status, created, **meta_facts(created))
    status, got = s.call("DELETE", f"{path}/obj")
    s.rec("delete", status, got, **meta_facts(got))
    status, got = s.call("GET", f"{path}/obj")
    s.rec("get while deleting", status, got, **meta_facts(got))
    status, got = s.call("DELETE", f"{path}/obj")
    s.rec("delete again", status, got, **meta_facts(got))
    status, got = s.call("PATCH", f"{path}/obj", {"metadata": {"finalizers": [KP_FINALIZER, OTHER_FINALIZER,
                                                                              "example.com/new"]}}, MERGE)
    s.rec("add a finalizer while deleting", status, got)
    status, got = s.call("PATCH", f"{path}/obj", [{"op": "test", "path": "/metadata/finalizers/0",
                                                    "value": KP_FINALIZER},
                                                   {"op": "remove", "path": "/metadata/finalizers/0"}], JSON_PATCH)
    s.rec("json-patch remove the first", status, got, **meta_facts(got))
    status, got = s.call("PATCH", f"{path}/obj", {"metadata": {"finalizers": None}}, MERGE)
    s.rec("merge-patch finalizers null", status, got, **meta_facts(got))
    status, got = s.call("GET", f"{path}/obj")
    s.rec("get after", status, got)


def conflicts(s: Side) -> None:
    """resourceVersion preconditions on PUT, PATCH and DELETE."""
    ns = s.namespace()
    status, cm = s.call("POST", cm_path(ns), {"metadata": {"name": "cm"}, "data": {"a": "1"}})
    s.rec("create configmap", status, cm)
    stale = cm["metadata"]["resourceVersion"]
    status, got = s.call("PUT", cm_path(ns, "cm"), {"metadata": {"name": "cm", "resourceVersion": stale},
                                                    "data": {"a": "2"}})
    s.rec("put current", status, got, data=(got or {}).get("data"))
    status, got = s.call("PUT", cm_path(ns, "cm"), {"metadata": {"name": "cm", "resourceVersion": stale},
                                                    "data": {"a": "3"}})
    s.rec("put stale", status, got)
    status, got = s.call("PATCH", cm_path(ns, "cm"), {"metadata": {"resourceVersion": stale}, "data": {"a": "4"}},
                         MERGE)
    s.rec("merge-patch stale", status, got)
    status, got = s.call("PATCH", cm_path(ns, "cm"), [{"op": "test", "path": "/metadata/resourceVersion",
                                                       "value": stale},
                                                      {"op": "replace", "path": "/data/a", "value": "5"}], JSON_PATCH)
    s.rec("json-patch failing test", status, got)
    status, got = s.call("PUT", cm_path(ns, "cm"), {"metadata": {"name": "cm"}, "data": {"a": "6"}})
    s.rec("put without resourceVersion (core)", status, got, data=(got or {}).get("data"))
    status, kp = s.call("POST", kp_path(ns), kuryr_port("kp"))
    s.rec("create KuryrPort", status, kp)
    status, got = s.call("PUT", kp_path(ns, "kp"), kuryr_port("kp"))
    s.rec("put without resourceVersion (CR)", status, got)
    status, got = s.call("PUT", kp_path(ns, "kp"), kuryr_port("kp") | {
        "metadata": {"name": "kp", "resourceVersion": "1"}})
    s.rec("put stale (CR)", status, got)
    status, got = s.call("DELETE", cm_path(ns, "cm"), {"preconditions": {"resourceVersion": stale}})
    s.rec("delete stale precondition", status, got)
    status, got = s.call("DELETE", cm_path(ns, "cm"), {"preconditions": {"uid": str(uuid.uuid4())}})
    s.rec("delete uid precondition", status, got)


def patch_types_core(s: Side) -> None:
    """Merge, JSON and strategic merge patches on built-in kinds."""
    ns = s.namespace()
    status, cm = s.call("POST", cm_path(ns), {"metadata": {"name": "cm", "labels": {"a": "1"},
                                                           "finalizers": ["example.com/one"]}, "data": {"k": "v"}})
    s.rec("create", status, cm)
    status, got = s.call("PATCH", cm_path(ns, "cm"), {"metadata": {"labels": {"b": "2"}}}, MERGE)
    s.rec("merge", status, got, labels=got["metadata"].get("labels"))
    status, got = s.call("PATCH", cm_path(ns, "cm"), [{"op": "add", "path": "/metadata/annotations",
                                                       "value": {"n": "1"}}], JSON_PATCH)
    s.rec("json", status, got, annotations=got["metadata"].get("annotations"))
    status, got = s.call("PATCH", cm_path(ns, "cm"), {"metadata": {"labels": {"c": "3"},
                                                                   "finalizers": ["example.com/two"]}}, STRATEGIC)
    s.rec("strategic: labels merge, finalizers merge as a set", status, got,
          labels=got["metadata"].get("labels"), finalizers=got["metadata"].get("finalizers"))
    status, got = s.call("PATCH", cm_path(ns, "cm"), {"$deleteFromPrimitiveList/finalizers": ["example.com/one"]},
                         STRATEGIC)
    s.rec("strategic: top-level deleteFromPrimitiveList", status, got, finalizers=got["metadata"].get("finalizers"))
    status, got = s.call("PATCH", cm_path(ns, "cm"), {"metadata": {
        "$deleteFromPrimitiveList/finalizers": ["example.com/two"]}}, STRATEGIC)
    s.rec("strategic: metadata deleteFromPrimitiveList", status, got, finalizers=got["metadata"].get("finalizers"))
    status, got = s.call("PATCH", cm_path(ns, "cm"), json.dumps({"data": {"k": "w"}}), "text/plain")
    s.rec("unknown patch type", status, got)
    svc = {"metadata": {"name": "svc"}, "spec": {"ports": [{"name": "a", "port": 80, "protocol": "TCP"}],
                                                 "selector": {"app": "x"}}}
    status, got = s.call("POST", f"/api/v1/namespaces/{ns}/services", svc)
    s.rec("create service", status, got)
    status, got = s.call("PATCH", f"/api/v1/namespaces/{ns}/services/svc", {"spec": {"ports": [
        {"name": "b", "port": 443, "protocol": "TCP"}]}}, STRATEGIC)
    ports = sorted((p.get("name"), p["port"]) for p in ((got or {}).get("spec") or {}).get("ports") or [])
    s.rec("strategic: service ports merge by port", status, got, ports=ports)


def patch_types_custom(s: Side) -> None:
    """Custom resources take merge and JSON patches; a strategic merge patch is 415."""
    ns = s.namespace()
    status, kp = s.call("POST", kp_path(ns), kuryr_port("kp"))
    s.rec("create", status, kp)
    status, got = s.call("PATCH", kp_path(ns, "kp"), {"metadata": {"labels": {"a": "1"}}}, MERGE)
    s.rec("merge", status, got, labels=got["metadata"].get("labels"))
    status, got = s.call("PATCH", kp_path(ns, "kp"), [{"op": "replace", "path": "/spec/podNodeName",
                                                       "value": "node-1"}], JSON_PATCH)
    s.rec("json", status, got, spec=(got or {}).get("spec"), generation=got["metadata"].get("generation"))
    status, got = s.call("PATCH", kp_path(ns, "kp"), {"metadata": {"labels": {"b": "2"}}}, STRATEGIC)
    s.rec("strategic", status, got)


def server_side_apply(s: Side) -> None:
    """application/apply-patch+yaml (server-side apply, beta and on by default in 1.20)."""
    ns = s.namespace()
    status, got = s.call("PATCH", cm_path(ns, "applied"),
                         json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"},
                                     "data": {"k": "v"}}), "application/apply-patch+yaml",
                         query={"fieldManager": "test"})
    s.rec("apply creates", status, got, data=(got or {}).get("data"))


def namespace_termination(s: Side) -> None:
    """A deleted namespace goes Terminating, refuses new content, deletes its content and goes when its
    last object's finalizers are gone."""
    ns = s.namespace("-t")
    status, got = s.call("POST", kp_path(ns), kuryr_port("held", [KP_FINALIZER]))
    s.rec("create held KuryrPort", status, got)
    status, got = s.call("POST", cm_path(ns), {"metadata": {"name": "plain"}})
    s.rec("create plain configmap", status, got)
    status, got = s.call("DELETE", f"/api/v1/namespaces/{ns}")
    s.rec("delete namespace", status, got, phase=((got or {}).get("status") or {}).get("phase"),
          deleting=bool(got["metadata"].get("deletionTimestamp")), spec=(got or {}).get("spec"))
    status, got = s.call("POST", cm_path(ns), {"metadata": {"name": "late"}})
    s.rec("create in a terminating namespace", status, got)

    def plain_gone() -> bool:
        return s.call("GET", cm_path(ns, "plain"))[0] == 404

    s.note("configmap deleted by the namespace's deletion", bool(s.wait("plain gone", plain_gone)))

    def conditions() -> Any:
        got = s.call("GET", f"/api/v1/namespaces/{ns}")[1]
        found = {c["type"]: c for c in (got.get("status") or {}).get("conditions") or []}
        held = found.get("NamespaceFinalizersRemaining")
        return found if held and held.get("status") == "True" else None

    found = s.wait("conditions", conditions) or {}
    s.note("namespace conditions", sorted((t, c["status"], c.get("reason")) for t, c in found.items()),
           sorted((t, c.get("message")) for t, c in found.items()))
    status, got = s.call("GET", kp_path(ns, "held"))
    s.rec("held object", status, got, **meta_facts(got))
    status, got = s.call("PATCH", kp_path(ns, "held"), {"metadata": {"finalizers": None}}, MERGE)
    s.rec("release it", status, got)

    def ns_gone() -> bool:
        return s.call("GET", f"/api/v1/namespaces/{ns}")[0] == 404

    s.note("namespace gone", bool(s.wait("namespace gone", ns_gone)))


def watch_events(s: Side) -> None:
    """Watch from a list's resourceVersion: ADDED, MODIFIED (label), MODIFIED (deletionTimestamp), DELETED."""
    ns = s.namespace()
    status, listing = s.call("GET", kp_path(ns))
    s.rec("list", status, listing, kind=listing.get("kind"), apiVersion=listing.get("apiVersion"))
    events: list[str] = []
    opened = threading.Event()

    def watch() -> None:
        resp = s.open("GET", kp_path(ns), None, {"Accept": "application/json"}, query={
            "watch": "true", "timeoutSeconds": "20", "resourceVersion": listing["metadata"]["resourceVersion"]},
            timeout=30)
        opened.set()
        for line in iter_resp_lines(resp.response):
            event = json.loads(line)
            obj = event["object"]
            meta = obj.get("metadata") or {}
            events.append(f"{event['type']} {meta.get('name')} labels={meta.get('labels')} "
                          f"deleting={bool(meta.get('deletionTimestamp'))} finalizers={meta.get('finalizers')}")
            if event["type"] == "DELETED":
                resp.response.release_conn()
                return

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    opened.wait(10)
    s.rec("create", *s.call("POST", kp_path(ns), kuryr_port("w", [KP_FINALIZER])))
    s.rec("label", *s.call("PATCH", kp_path(ns, "w"), {"metadata": {"labels": {"x": "1"}}}, MERGE))
    s.rec("delete", *s.call("DELETE", kp_path(ns, "w"))[:1], None)
    s.rec("release", *s.call("PATCH", kp_path(ns, "w"), {"metadata": {"finalizers": None}}, MERGE)[:1], None)
    thread.join(30)
    for event in events:
        s.note("event", event)


def bad_token(s: Side) -> None:
    """A token the server does not know: 401 Unauthorized, as a Status."""
    s.rec("list namespaces", *s.call("GET", "/api/v1/namespaces", api=s.bad_token_api))
    s.rec("get a custom resource list", *s.call("GET", "/apis/openstack.org/v1/kuryrports", api=s.bad_token_api))


def refused_user(s: Side) -> None:
    """An authenticated user RBAC gives nothing: discovery is allowed, every resource is 403 with a message
    built from the request's verb, resource, subresource, name and namespace."""
    ns = s.namespace()
    limited = s.limited_api
    s.rec("version", s.call("GET", "/version", api=limited)[0], None)
    s.rec("discovery /api", s.call("GET", "/api", api=limited)[0], None)
    s.rec("discovery of a group", s.call("GET", "/apis/openstack.org/v1", api=limited)[0], None)
    s.rec("list namespaces", *s.call("GET", "/api/v1/namespaces", api=limited))
    s.rec("get a namespace", *s.call("GET", f"/api/v1/namespaces/{ns}", api=limited))
    s.rec("get a cluster-scoped CR", *s.call("GET", "/apis/config.openshift.io/v1/infrastructures/cluster",
                                             api=limited))
    s.rec("list CRs in a namespace", *s.call("GET", kp_path(ns), api=limited))
    s.rec("watch one by name", *s.call("GET", kp_path(ns), query={"watch": "true", "timeoutSeconds": "1",
                                                                   "fieldSelector": "metadata.name=kp"}, api=limited))
    s.rec("create", *s.call("POST", cm_path(ns), {"metadata": {"name": "cm"}}, api=limited))
    s.rec("merge patch", *s.call("PATCH", cm_path(ns, "cm"), {"data": {"a": "1"}}, MERGE, api=limited))
    s.rec("patch a status", *s.call("PATCH", f"/api/v1/namespaces/{ns}/pods/p/status", {"status": {}}, MERGE,
                                    api=limited))
    s.rec("delete", *s.call("DELETE", kp_path(ns, "kp"), api=limited))
    s.rec("delete a collection", *s.call("DELETE", cm_path(ns), api=limited))
    s.rec("finalize a namespace", *s.call("PUT", f"/api/v1/namespaces/{ns}/finalize",
                                          {"metadata": {"name": ns}, "spec": {"finalizers": []}}, api=limited))
    s.rec("a path that is no resource", *s.call("GET", "/logs", api=limited))


def paging(s: Side) -> None:
    """limit/continue, remainingItemCount, a bad continue token; list kind and item kind/apiVersion."""
    ns = s.namespace()
    for i in range(7):
        s.call("POST", cm_path(ns), {"metadata": {"name": f"cm-{i}", "labels": {"odd": str(i % 2)}}})
        s.call("POST", kp_path(ns), kuryr_port(f"kp-{i}"))
    for path in (cm_path(ns), kp_path(ns)):
        token = None
        while True:
            query: dict[str, Any] = {"limit": 3}
            if token:
                query["continue"] = token
            status, page = s.call("GET", path, query=query)
            meta = page.get("metadata") or {}
            items = page.get("items") or []
            s.rec(f"page of {path.rsplit('/', 1)[1]}", status, page, kind=page.get("kind"),
                  apiVersion=page.get("apiVersion"), names=[i["metadata"]["name"] for i in items],
                  more=bool(meta.get("continue")), remaining=meta.get("remainingItemCount"),
                  item_kind=[(i.get("apiVersion"), i.get("kind")) for i in items[:1]])
            token = meta.get("continue")
            if not token:
                break
    status, page = s.call("GET", cm_path(ns), query={"limit": 2, "labelSelector": "odd=1"})
    s.rec("selector page", status, page, names=[i["metadata"]["name"] for i in page["items"]],
          more=bool(page["metadata"].get("continue")), remaining=page["metadata"].get("remainingItemCount"))
    s.rec("bad continue token", *s.call("GET", cm_path(ns), query={"limit": 2, "continue": "not-a-token"}))
    s.rec("field selector on a CR", *s.call("GET", kp_path(ns), query={"fieldSelector": "metadata.name=kp-3"})[:1],
          None)
    s.rec("unsupported field selector on a CR", *s.call("GET", kp_path(ns), query={"fieldSelector": "spec.x=y"}))


def pod_deletion(s: Side) -> None:
    """A pod bound to a node is deleted gracefully (its kubelet confirms); an unbound one goes at once."""
    ns = s.namespace()
    pods = f"/api/v1/namespaces/{ns}/pods"
    spec = {"containers": [{"name": "c", "image": "registry.example.com/c:latest"}]}
    s.rec("create bound pod", *s.call("POST", pods, {"metadata": {"name": "bound"},
                                                      "spec": {**spec, "nodeName": "node-0"}})[:1], None)
    status, got = s.call("DELETE", f"{pods}/bound")
    s.rec("delete bound pod", status, got, **meta_facts(got))
    status, got = s.call("GET", f"{pods}/bound")
    s.rec("get bound pod", status, got, **meta_facts(got))
    s.rec("create unbound pod", *s.call("POST", pods, {"metadata": {"name": "unbound"}, "spec": spec})[:1], None)
    status, got = s.call("DELETE", f"{pods}/unbound")
    s.rec("delete unbound pod", status, got, **meta_facts(got))
    s.rec("get unbound pod", *s.call("GET", f"{pods}/unbound"))
    s.rec("create bound pod with a finalizer and its own grace period", *s.call("POST", pods, {
        "metadata": {"name": "held", "finalizers": [OTHER_FINALIZER]},
        "spec": {**spec, "nodeName": "node-0", "terminationGracePeriodSeconds": 10}})[:1], None)
    status, got = s.call("DELETE", f"{pods}/held", query={"dryRun": "All"})
    s.rec("dry-run delete", status, got, **meta_facts(got))
    status, got = s.call("DELETE", f"{pods}/held")
    s.rec("delete", status, got, **meta_facts(got))
    status, got = s.call("DELETE", f"{pods}/held", {"gracePeriodSeconds": 20})
    s.rec("delete with a longer grace period", status, got, **meta_facts(got))
    status, got = s.call("PATCH", f"{pods}/held", {"metadata": {"finalizers": None}}, MERGE)
    s.rec("remove the finalizer before the kubelet confirms", status, got, **meta_facts(got))
    status, got = s.call("GET", f"{pods}/held")
    s.rec("get", status, got, **meta_facts(got))
    status, got = s.call("DELETE", f"{pods}/held", {"gracePeriodSeconds": 0})
    s.rec("the kubelet confirms (grace 0)", status, got, **meta_facts(got))
    s.rec("get after", *s.call("GET", f"{pods}/held"))
    s.rec("create a pod whose containers ended", *s.call("POST", pods, {
        "metadata": {"name": "ended", "finalizers": [OTHER_FINALIZER]},
        "spec": {**spec, "nodeName": "node-0"}})[:1], None)
    s.rec("its status", *s.call("PATCH", f"{pods}/ended/status", {"status": {"phase": "Succeeded"}}, MERGE)[:1], None)
    status, got = s.call("DELETE", f"{pods}/ended")
    s.rec("delete it", status, got, **meta_facts(got))
    status, got = s.call("PATCH", f"{pods}/ended", {"metadata": {"finalizers": None}}, MERGE)
    s.rec("remove its finalizer", status, got, **meta_facts(got))
    s.rec("get it", *s.call("GET", f"{pods}/ended"))


def delete_answers(s: Side) -> None:
    """What a DELETE answers: a Status of Success once the object went (pods: the pod), the object while it
    waits for finalizers; the object's uid in the Status (placeholders here)."""
    ns = s.namespace()

    def rec(label: str, status: int, body: Any) -> None:
        body = body if isinstance(body, dict) else {}
        details = body.get("details") if body.get("kind") == "Status" else None
        s.rec(label, status, None, answer=body.get("kind"), status=body.get("status"),
              details=sorted(details.items()) if details else None, **meta_facts(body))

    s.call("POST", cm_path(ns), {"metadata": {"name": "cm"}})
    rec("configmap", *s.call("DELETE", cm_path(ns, "cm")))
    s.call("POST", kp_path(ns), kuryr_port("kp"))
    rec("custom resource", *s.call("DELETE", kp_path(ns, "kp")))
    s.call("POST", kp_path(ns), kuryr_port("held", [KP_FINALIZER]))
    rec("custom resource with a finalizer", *s.call("DELETE", kp_path(ns, "held")))
    services = f"/api/v1/namespaces/{ns}/services"
    s.call("POST", services, {"metadata": {"name": "svc"}, "spec": {"ports": [{"port": 80}]}})
    rec("service", *s.call("DELETE", f"{services}/svc"))
    policies = f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies"
    s.call("POST", policies, {"metadata": {"name": "np"}, "spec": {"podSelector": {}}})
    rec("network policy", *s.call("DELETE", f"{policies}/np"))
    s.call("POST", cm_path(ns), {"metadata": {"name": "a", "labels": {"x": "1"}}})
    s.call("POST", cm_path(ns), {"metadata": {"name": "b", "labels": {"x": "1"}, "finalizers": [OTHER_FINALIZER]}})
    status, got = s.call("DELETE", cm_path(ns), query={"labelSelector": "x=1"})
    s.rec("a collection", status, None, kind=got.get("kind"),
          items=[(i["metadata"]["name"], bool(i["metadata"].get("deletionTimestamp"))) for i in got["items"]])


def error_shapes(s: Side) -> None:
    """NotFound, AlreadyExists, a missing namespace, a namespace mismatch, an invalid name."""
    ns = s.namespace()
    s.rec("get missing", *s.call("GET", cm_path(ns, "nope")))
    s.rec("get missing CR", *s.call("GET", kp_path(ns, "nope")))
    s.rec("delete missing", *s.call("DELETE", cm_path(ns, "nope")))
    s.rec("create", *s.call("POST", cm_path(ns), {"metadata": {"name": "dup"}})[:1], None)
    s.rec("create again", *s.call("POST", cm_path(ns), {"metadata": {"name": "dup"}}))
    s.rec("create in a missing namespace", *s.call("POST", cm_path(f"{ns}-missing"), {"metadata": {"name": "x"}}))
    s.rec("create CR in a missing namespace", *s.call("POST", kp_path(f"{ns}-missing"), kuryr_port("x")))
    s.rec("namespace mismatch", *s.call("POST", cm_path(ns), {"metadata": {"name": "y", "namespace": "other"}}))
    s.rec("invalid name", *s.call("POST", cm_path(ns), {"metadata": {"name": "Bad_Name"}}))
    s.rec("unknown kind", *s.call("GET", f"/apis/openstack.org/v1/namespaces/{ns}/nothings"))


def paths_and_validation(s: Side) -> None:
    """Which 404 a path nothing serves gets (a Status from the built-in groups' routes, plain text from the
    rest of /apis, the object's NotFound from the custom resource handler), names each kind validates,
    the field selectors each kind supports, and the 415s of patch types."""
    ns = s.namespace()
    s.call("POST", kp_path(ns), kuryr_port("kp"))
    s.call("POST", cm_path(ns), {"metadata": {"name": "cm"}})
    s.rec("core: unknown resource", *s.call("GET", "/api/v1/nothings"))
    s.rec("core: configmaps have no /status", *s.call("GET", cm_path(ns, "cm") + "/status"))
    s.rec("core: a namespaced kind without its namespace", *s.call("GET", "/api/v1/configmaps/cm"))
    s.rec("core: POST to a name", *s.call("POST", cm_path(ns, "cm"), {"metadata": {"name": "cm"}}))
    s.rec("apps: unknown resource", *s.call("GET", "/apis/apps/v1/nothings"))
    s.rec("unknown group", *s.call("GET", "/apis/nothing.example.com"))
    s.rec("unknown group version", *s.call("GET", "/apis/nothing.example.com/v1/things"))
    s.rec("CR group, unknown version", *s.call("GET", "/apis/openstack.org/v2/kuryrports"))
    s.rec("CR: an existing object's unknown subresource", *s.call("GET", kp_path(ns, "kp") + "/foo"))
    s.rec("CR: a namespaced kind by name without its namespace", *s.call("GET", "/apis/openstack.org/v1/kuryrports/kp"))
    s.rec("CR: a cluster-scoped kind in a namespace", *s.call(
        "GET", f"/apis/config.openshift.io/v1/namespaces/{ns}/infrastructures"))
    s.rec("CR: PATCH a collection", *s.call("PATCH", kp_path(ns), {"metadata": {}}, MERGE))
    s.rec("CR: PATCH every namespace's collection", *s.call("PATCH", "/apis/openstack.org/v1/kuryrports",
                                                            {"metadata": {}}, MERGE))
    s.rec("namespace name with a dot", *s.call("POST", "/api/v1/namespaces", {"metadata": {"name": f"a.{s.run}"}}))
    s.rec("service name starting with a digit", *s.call("POST", f"/api/v1/namespaces/{ns}/services", {
        "metadata": {"name": "1svc"}, "spec": {"ports": [{"port": 80}]}}))
    s.rec("CR name with capitals", *s.call("POST", kp_path(ns), kuryr_port("Kp")))
    s.rec("a name too long and invalid", *s.call("POST", cm_path(ns), {"metadata": {"name": "X" * 254}}))
    s.rec("configmaps by data", *s.call("GET", cm_path(ns), query={"fieldSelector": "data.x=y"}))
    s.rec("nodes by namespace", *s.call("GET", "/api/v1/nodes", query={"fieldSelector": "metadata.namespace=x"}))
    status, got = s.call("GET", f"/api/v1/namespaces/{ns}/pods", query={"fieldSelector": "spec.host=node-0"})
    s.rec("pods by spec.host", status, got, items=len(got.get("items") or []))
    s.rec("namespaces by phase", s.call("GET", "/api/v1/namespaces", query={"fieldSelector": "status.phase=Active"})[0],
          None)


def status_subresource(s: Side) -> None:
    """A CR with a status subresource ignores status on create and main writes; one without keeps it."""
    name = f"diff-{s.run}"
    mcp = "/apis/machineconfiguration.openshift.io/v1/machineconfigpools"
    status, got = s.call("POST", mcp, {"apiVersion": "machineconfiguration.openshift.io/v1",
                                       "kind": "MachineConfigPool", "metadata": {"name": name},
                                       "spec": {"paused": False}, "status": {"machineCount": 3}})
    s.rec("create with status", status, got, status=(got or {}).get("status"),
          generation=(got or {}).get("metadata", {}).get("generation"))
    status, got = s.call("PATCH", f"{mcp}/{name}", {"spec": {"paused": True}, "status": {"machineCount": 4}}, MERGE)
    s.rec("main patch", status, got, spec=got.get("spec"), status=got.get("status"),
          generation=got["metadata"].get("generation"))
    status, got = s.call("PATCH", f"{mcp}/{name}/status", {"spec": {"paused": False},
                                                          "status": {"machineCount": 5}}, MERGE)
    s.rec("status patch", status, got, spec=got.get("spec"), status=got.get("status"),
          generation=got["metadata"].get("generation"))
    s.rec("delete", *s.call("DELETE", f"{mcp}/{name}")[:1], None)
    ns = s.namespace()
    status, got = s.call("POST", kp_path(ns), kuryr_port("kp", status={"vifs": {}}))
    s.rec("create CR without subresource", status, got, status=(got or {}).get("status"))
    status, got = s.call("PATCH", kp_path(ns, "kp"), {"status": {"vifs": {"eth0": {}}}}, MERGE)
    s.rec("status in a main patch", status, got, status=got.get("status"), generation=got["metadata"].get("generation"))
    s.rec("no /status", *s.call("PATCH", kp_path(ns, "kp") + "/status", {"status": {}}, MERGE))


# ---------------------------------------------------------------------------------------- the comparison

SEQUENCES: dict[str, Callable[[Side], None]] = {
    "finalizer lifecycle, custom resource": lambda s: finalizer_lifecycle(s, core=False),
    "finalizer lifecycle, configmap": lambda s: finalizer_lifecycle(s, core=True),
    "resourceVersion conflicts": conflicts,
    "patch types, built-in kinds": patch_types_core,
    "patch types, custom resources": patch_types_custom,
    "server-side apply": server_side_apply,
    "namespace termination": namespace_termination,
    "watch events": watch_events,
    "bad token": bad_token,
    "refused user": refused_user,
    "paging and list shapes": paging,
    "pod deletion": pod_deletion,
    "delete answers": delete_answers,
    "error shapes": error_shapes,
    "unserved paths and validation": paths_and_validation,
    "status subresource": status_subresource,
}
# Where the simulator differs (docs/real-services.md, "kube-apiserver 1.20.2: where the simulator differs"):
# first in status codes, Status reasons and observable facts, then in message texts as well.
DIFFERS: dict[str, str] = {
    # Kept: the tool never uses server-side apply, and a faithful one needs field ownership (managedFields,
    # conflicts between managers, removal of what a manager stopped applying); the simulator says so in a 415.
    "server-side apply": "the simulator does not implement server-side apply: 415 to application/apply-patch+yaml "
                         "(real: applies, 201)",
}
MESSAGES_DIFFER: dict[str, str] = {}


def _params(differs: dict[str, str]) -> Iterator[Any]:
    for name in SEQUENCES:
        marks = [pytest.mark.xfail(strict=True, reason=differs[name])] if name in differs else []
        yield pytest.param(name, marks=marks, id=name.replace(" ", "-").replace(",", ""))


def _sim_kubeconfig_with_token(path: Path, token: str) -> Path:
    config_data = yaml.safe_load(path.read_text())
    for user in config_data["users"]:
        user["user"]["token"] = token
    bad = path.with_name("kubeconfig-bad-token")
    bad.write_text(yaml.safe_dump(config_data))
    return bad


def _compare(sequence: str, real_cluster: KubeCluster, make_sim: Any, messages: bool) -> None:
    run = uuid.uuid4().hex[:8]
    bad = "not-a-valid-token-0123456789"
    real = Side("real", api_client(real_cluster.kubeconfig("seed")),
                api_client(real_cluster.kubeconfig("limited", token=bad)),
                api_client(real_cluster.kubeconfig("limited")), USERS["limited"][0], run)
    sim = make_sim()
    sim_config = Path(sim.env["KUBECONFIG"])
    simulated = Side("sim", api_client(sim_config), api_client(_sim_kubeconfig_with_token(sim_config, bad)),
                     api_client(sim_config, context="sim-limited"), "sim-limited", run)
    for side in (real, simulated):
        SEQUENCES[sequence](side)
    expected, actual = real.lines(messages), simulated.lines(messages)
    if expected != actual:
        diff = "\n".join(difflib.unified_diff(expected, actual, "real kube-apiserver 1.20.2", "simulator",
                                              lineterm=""))
        pytest.fail(f"{sequence}: the simulator differs\n{diff}", pytrace=False)


@pytest.mark.parametrize("sequence", list(_params(DIFFERS)))
def test_simulator_answers_like_the_real_apiserver(sequence: str, shared_kube_cluster: KubeCluster,
                                                   make_sim: Any) -> None:
    """Status codes, Status reasons and what the objects look like afterwards."""
    _compare(sequence, shared_kube_cluster, make_sim, messages=False)


@pytest.mark.parametrize("sequence", list(_params({**MESSAGES_DIFFER, **DIFFERS})))
def test_simulator_messages_match_the_real_apiserver(sequence: str, shared_kube_cluster: KubeCluster,
                                                     make_sim: Any) -> None:
    """The same, and the Status messages word for word (ids, uids and resourceVersions aside)."""
    _compare(sequence, shared_kube_cluster, make_sim, messages=True)
