"""Put a generated cluster's Kubernetes objects into a real kube-apiserver, through its API.

The simulator's generator makes the whole scenario (cloud and cluster) in one Store; the simulator keeps
serving its OpenStack side, and `seed_kube` replays its Kubernetes side onto a `KubeCluster`:
- the apiserver gives every object its own uid: references to uids (`ownerReferences`, KuryrPort
  `spec.podUid`, ...) are rewritten to the new ones, so objects go in dependency waves (an object after
  every object whose uid it names);
- `status` goes through `/status` for kinds with a status subresource (a create ignores it there); Kuryr's
  CRs have none, so their status goes in with the create;
- objects the apiserver makes itself (namespaces `default`, `kube-system`, ..., Service
  `default/kubernetes`) are merge-patched to the generated labels, annotations and finalizers instead;
- objects the generated cluster has as being deleted are created, then deleted (they keep their finalizers).

What the test bed cannot reproduce, and what stands in for it:
- No kubelet: a DELETE of a pod bound to a node only starts its graceful termination (30 s, then the
  kubelet would confirm with a zero grace period). `KubeletStandIn` confirms at once, as a kubelet whose
  containers stopped would; without it the namespace controller would wait for ever on such pods.
- Generated ownerReferences whose uid names no generated object are pointed at the generated owner with
  that kind and name (the CNO's multus DaemonSet names an operator Network uid of its own), or dropped
  when there is none (machine-config-daemon pods name a DaemonSet the generator does not make): the real
  garbage collector would otherwise delete those dependents at once. `SeededKube.repaired_owners` lists them.
- LoadBalancer Services' generated node ports can collide; such a Service is created with the node ports
  the apiserver allocates.
"""

from __future__ import annotations

import concurrent.futures
import copy
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from kuryr_cleanup.sim.kube.resources import BY_STORE_KEY
from kuryr_cleanup.sim.store import Store
from tests.real.kube_apiserver import CRDS, KubeCluster, KubeError

SYSTEM_METADATA = ("uid", "resourceVersion", "creationTimestamp", "generation", "deletionTimestamp",
                   "deletionGracePeriodSeconds", "managedFields", "selfLink")
BUILTIN_STATUS = {"Pod", "Service", "Node", "DaemonSet"}
WORKERS = 8


@dataclass(frozen=True)
class Resource:
    api_version: str
    kind: str
    plural: str
    namespaced: bool
    status: bool  # /status subresource

    def path(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if sub:
            base += f"/{sub}"
        return base


def resource_of(api_version: str, kind: str) -> Resource:
    for crd in CRDS:
        if f"{crd.group}/v1" == api_version and crd.kind == kind:
            return Resource(api_version, kind, crd.plural, crd.namespaced, crd.status)
    known = BY_STORE_KEY.get(f"{api_version}/{kind}")
    if known is None:
        raise KubeError(f"the test bed does not know where {kind} ({api_version}) lives")
    return Resource(api_version, kind, known.plural, known.namespaced, kind in BUILTIN_STATUS)


def resource_for(obj: dict[str, Any]) -> Resource:
    return resource_of(obj["apiVersion"], obj["kind"])


@dataclass
class SeededKube:
    """What went in: the objects as the apiserver holds them, and the generated uid -> real uid map."""

    uids: dict[str, str] = field(default_factory=dict)
    objects: list[dict[str, Any]] = field(default_factory=list)
    repaired_owners: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _clean(obj: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(obj)
    meta = body["metadata"]
    for key in SYSTEM_METADATA:
        meta.pop(key, None)
    return body


def _referenced_uids(obj: dict[str, Any], uids: set[str]) -> set[str]:
    own = obj["metadata"].get("uid")
    text = json.dumps({k: v for k, v in obj.items() if k != "metadata"} | {
        "metadata": {k: v for k, v in obj["metadata"].items() if k != "uid"}})
    return {u for u in uids if u != own and u in text}


def _waves(objects: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Namespaces first, then objects in rounds: each after the objects whose uids it names."""
    uid_of = {o["metadata"]["uid"]: o for o in objects if o["metadata"].get("uid")}
    by_name = {(o["apiVersion"], o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]):
               o["metadata"].get("uid") for o in objects}
    refs = {id(o): _referenced_uids(o, set(uid_of)) for o in objects}
    for o in objects:
        for ref in o["metadata"].get("ownerReferences") or []:
            if ref.get("uid") not in uid_of:  # resolved by kind and name when seeded (see the module's doc)
                namespaced = resource_of(ref["apiVersion"], ref["kind"]).namespaced
                namespace = o["metadata"].get("namespace", "") if namespaced else ""
                owner = by_name.get((ref["apiVersion"], ref["kind"], namespace, ref["name"]))
                if owner:
                    refs[id(o)].add(owner)
    namespaces = [o for o in objects if o["kind"] == "Namespace"]
    done = {o["metadata"].get("uid") for o in namespaces}
    waves = [namespaces]
    rest = [o for o in objects if o["kind"] != "Namespace"]
    while rest:
        wave = [o for o in rest if refs[id(o)] <= done]
        if not wave:
            raise KubeError(f"uid references form a cycle among {len(rest)} objects")
        waves.append(wave)
        done |= {o["metadata"].get("uid") for o in wave}
        placed = {id(o) for o in wave}
        rest = [o for o in rest if id(o) not in placed]
    return waves


class _Seeder:
    def __init__(self, cluster: KubeCluster, objects: list[dict[str, Any]]) -> None:
        self.cluster = cluster
        self.objects = objects
        self.uids: dict[str, str] = {}
        self.lock = threading.Lock()
        self.result: list[dict[str, Any]] = []
        self.repaired: list[str] = []
        self.by_kind_name = {(o["apiVersion"], o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
                             for o in objects}

    def rewrite(self, obj: dict[str, Any]) -> dict[str, Any]:
        body = _clean(obj)
        text = json.dumps(body)
        with self.lock:
            for old, new in self.uids.items():
                if old in text:
                    text = text.replace(old, new)
            body = json.loads(text)
            real_uids = set(self.uids.values())
        namespace = body["metadata"].get("namespace", "")
        kept = []
        for ref in body["metadata"].get("ownerReferences") or []:
            if ref.get("uid") in real_uids:
                kept.append(ref)
                continue
            owner_res = resource_of(ref["apiVersion"], ref["kind"])
            owner_ns = namespace if owner_res.namespaced else ""
            owner = self.by_kind_name.get((ref["apiVersion"], ref["kind"], owner_ns, ref["name"]))
            what = f"{obj['kind']} {namespace}/{obj['metadata']['name']} -> {ref['kind']} {ref['name']}"
            with self.lock:
                if owner is None:
                    self.repaired.append(f"{what}: dropped (not generated)")
                    continue
                if owner["metadata"].get("uid") not in self.uids:
                    raise KubeError(f"{what}: the owner is not seeded yet")
                ref["uid"] = self.uids[owner["metadata"]["uid"]]
                self.repaired.append(f"{what}: uid of the generated owner")
            kept.append(ref)
        if "ownerReferences" in body["metadata"]:
            body["metadata"]["ownerReferences"] = kept
            if not kept:
                del body["metadata"]["ownerReferences"]
        return body

    def put(self, obj: dict[str, Any]) -> None:
        res = resource_for(obj)
        meta = obj["metadata"]
        namespace = meta.get("namespace")
        name = meta["name"]
        body = self.rewrite(obj)
        status = body.get("status") if (res.status or obj["kind"] == "Namespace") else None
        if res.status or obj["kind"] == "Namespace":
            body.pop("status", None)
        created = self.cluster.request("POST", res.path(namespace), body)
        if created.status != 201 and self.cluster.request("GET", res.path(namespace, name)).status == 200:
            # Made by the apiserver itself: take the generated labels, annotations and finalizers. (For
            # Service default/kubernetes the create answers 422, its cluster IP being taken, not 409.)
            patch = {"metadata": {k: body["metadata"].get(k) for k in ("labels", "annotations", "finalizers")}}
            live = self.cluster.call("PATCH", res.path(namespace, name), patch,
                                     content_type="application/merge-patch+json")
        elif created.status == 422 and obj["kind"] == "Service" and "nodePort" in created.body.decode():
            for port in body["spec"].get("ports") or []:
                port.pop("nodePort", None)
            live = self.cluster.call("POST", res.path(namespace), body)
        elif created.status != 201:
            raise KubeError(f"create {obj['kind']} {namespace}/{name}: {created.status} {created.body[:600]!r}")
        else:
            live = created.json()
        if status and obj["kind"] != "Namespace":
            live = self.cluster.call("PATCH", res.path(namespace, name, "status"), {"status": status},
                                     content_type="application/merge-patch+json")
        if meta.get("deletionTimestamp"):
            live = self.cluster.call("DELETE", res.path(namespace, name), ok=(200, 202))
        with self.lock:
            if meta.get("uid"):
                self.uids[meta["uid"]] = live["metadata"]["uid"]
            self.result.append(live)

    def run(self) -> None:
        with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
            for wave in _waves(self.objects):
                for future in [pool.submit(self.put, obj) for obj in wave]:
                    future.result()


def kube_objects(store: Store) -> list[dict[str, Any]]:
    with store.lock:
        return [copy.deepcopy(obj) for key in sorted(store.kube) for obj in store.kube[key].values()]


def seed_kube(cluster: KubeCluster, objects: list[dict[str, Any]]) -> SeededKube:
    """Create `objects` (a generated cluster's, as the Store holds them) in the real cluster."""
    started = time.monotonic()
    seeder = _Seeder(cluster, objects)
    seeder.run()
    if len(seeder.result) != len(objects):
        raise KubeError(f"seeded {len(seeder.result)} of {len(objects)} objects")
    return SeededKube(seeder.uids, seeder.result, seeder.repaired, time.monotonic() - started)


def create_many(cluster: KubeCluster, path: str, bodies: list[dict[str, Any]]) -> None:
    """POST many objects in parallel (e.g. 1,200 pods for paging)."""
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        for future in [pool.submit(cluster.call, "POST", path, body) for body in bodies]:
            future.result()


class KubeletStandIn:
    """Confirms pods' graceful deletion at once, as a kubelet does once the containers stopped.

    A DELETE of a pod bound to a node sets deletionTimestamp with a 30 s grace period and leaves the pod
    to its kubelet, which kills the containers and DELETEs it again with gracePeriodSeconds=0. There is
    no kubelet here: this thread watches pods and sends that second DELETE (the pod then goes as soon
    as its finalizers are gone, as on a real node).
    """

    def __init__(self, cluster: KubeCluster) -> None:
        self.cluster = cluster
        self.stopped = threading.Event()
        self.confirmed: list[str] = []
        self._thread = threading.Thread(target=self._run, name="kubelet-stand-in", daemon=True)

    def __enter__(self) -> KubeletStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self._thread.join(timeout=10)

    def _confirm(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        if not meta.get("deletionTimestamp") or meta.get("deletionGracePeriodSeconds") == 0:
            return
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
        resp = self.cluster.request("DELETE", path, {"kind": "DeleteOptions", "apiVersion": "v1",
                                                     "gracePeriodSeconds": 0})
        if resp.status in (200, 202):
            self.confirmed.append(f"{meta['namespace']}/{meta['name']}")

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                listing = self.cluster.call("GET", "/api/v1/pods")
                for pod in listing["items"]:
                    self._confirm(pod)
                rv = listing["metadata"]["resourceVersion"]
                self._watch(rv)
            except (KubeError, OSError, ValueError, urllib.error.URLError):
                self.stopped.wait(0.5)

    def _watch(self, rv: str) -> None:
        req = urllib.request.Request(
            f"{self.cluster.url}/api/v1/pods?watch=true&resourceVersion={rv}&timeoutSeconds=5",
            headers={"Authorization": f"Bearer {self.cluster.tokens['seed']}"})
        with urllib.request.urlopen(req, timeout=15, context=self.cluster.ssl_context()) as stream:
            for line in stream:
                if self.stopped.is_set():
                    return
                event = json.loads(line)
                if event.get("type") in ("ADDED", "MODIFIED"):
                    self._confirm(event["object"])
