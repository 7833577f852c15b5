"""The simulator's state: raw API records, a controllable clock and timed transitions.

Every record is kept exactly as the real API would return it (a Neutron port dict, an Octavia load
balancer dict, a Kubernetes object), so a snapshot of the store is a snapshot of the cloud and the
cluster, and the API modules only route, validate and mutate.

One lock guards everything: requests are short, and a single lock makes the simulator's answers
consistent the way a real database transaction would (a port list never sees half a trunk update).
Delayed behaviour (an Octavia LB going ACTIVE, a node coming back from a reboot) is scheduled on the
store's clock and applied lazily by `tick()`, which the server calls before every request; tests move
the clock forward instead of sleeping.
"""

from __future__ import annotations

import copy
import datetime as _dt
import heapq
import itertools
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kuryr_cleanup.sim.cluster_version import cluster_id_from, make_cluster_version
from kuryr_cleanup.snapshot_format import OPENSTACK_COLLECTIONS, SNAPSHOT_FORMAT, SNAPSHOT_VERSION, check_snapshot

# Named delays in seconds of simulated time. Tests set them to 0 or advance the clock.
DEFAULT_DELAYS: dict[str, float] = {
    "lb_create": 0.2,  # PENDING_CREATE -> ACTIVE
    "lb_update": 0.1,  # PENDING_UPDATE -> ACTIVE
    "lb_delete": 0.2,  # PENDING_DELETE -> gone
    "server_reboot": 0.3,  # Nova REBOOT -> ACTIVE
    "node_boot": 0.3,  # node NotReady -> Ready with a new bootID, after the server is back
    "mco_node": 0.1,  # MCO: one node gets the new rendered config
    "multus_rollout": 0.2,  # CNO: multus DaemonSet rolled out after the switch
    "operator_settle": 0.2,  # ClusterOperators Progressing -> settled
}


def new_id() -> str:
    return str(uuid.uuid4())


def iso_now(ts: float | None = None) -> str:
    """An RFC 3339 timestamp as OpenStack and Kubernetes write them (UTC, seconds precision)."""
    when = _dt.datetime.fromtimestamp(time.time() if ts is None else ts, tz=_dt.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class Clock:
    """Wall time plus an offset that tests and the control API can move forward.

    `per_request`: simulated seconds every API request moves the clock on. With delays much longer
    than a run's wall time, time then passes with the client's calls, not with the machine's speed:
    what overlaps (two nodes down at once) depends on the order of the calls alone, however loaded
    the machine is.
    """

    def __init__(self) -> None:
        self._offset = 0.0
        self.per_request = 0.0

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds

    def request_served(self) -> None:
        self._offset += self.per_request


@dataclass(order=True)
class _Timer:
    due: float
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class Store:
    """All simulator state. Hold `store.lock` while reading or changing anything."""

    def __init__(self, project_id: str | None = None) -> None:
        self.lock = threading.RLock()
        self.clock = Clock()
        self.delays: dict[str, float] = dict(DEFAULT_DELAYS)
        self.project_id = project_id or uuid.uuid4().hex
        self.infra_id: str | None = None
        # OpenStack: collection -> id -> raw API record (insertion ordered: stable listings).
        self.os: dict[str, dict[str, dict[str, Any]]] = {c: {} for c in OPENSTACK_COLLECTIONS}
        # Kubernetes: "<apiVersion>/<kind>" -> (namespace or "", name) -> object.
        self.kube: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
        self._rv = itertools.count(1)
        self._timers: list[_Timer] = []
        self._timer_seq = itertools.count()
        # Free-form settings the API modules read (Octavia API version, Neutron extensions, ...).
        self.settings: dict[str, Any] = {"octavia_version": "2.27", "neutron_tag_extension": True}
        # Per-behaviour fault switches the OpenShift behaviours read (degraded pool, lost node, ...).
        self.behaviour_faults: dict[str, Any] = {}
        # Listeners called after a Kubernetes object changes: (event type, object). Used by watches.
        self.kube_listeners: list[Callable[[str, dict[str, Any]], None]] = []
        # Cross-API events, e.g. Nova emits "server_reboot" (server_id=..., hard=...) and the
        # OpenShift behaviours react by taking the node down and up again.
        self.hooks: dict[str, list[Callable[..., None]]] = {}

    # -- time -------------------------------------------------------------------------------
    def schedule(self, delay: str | float, callback: Callable[[], None]) -> _Timer:
        """Run `callback` (under the lock) once `delay` (a name in `delays`, or seconds) has passed."""
        seconds = self.delays.get(delay, 0.0) if isinstance(delay, str) else float(delay)
        timer = _Timer(self.clock.now() + max(seconds, 0.0), next(self._timer_seq), callback)
        with self.lock:
            heapq.heappush(self._timers, timer)
        return timer

    def tick(self) -> None:
        """Apply every transition whose time has come, in due order."""
        with self.lock:
            now = self.clock.now()
            while self._timers and self._timers[0].due <= now:
                timer = heapq.heappop(self._timers)
                if not timer.cancelled:
                    timer.callback()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.tick()

    def on(self, event: str, callback: Callable[..., None]) -> None:
        self.hooks.setdefault(event, []).append(callback)

    def emit(self, event: str, **kwargs: Any) -> None:
        for callback in list(self.hooks.get(event, [])):
            callback(**kwargs)

    # -- OpenStack records ----------------------------------------------------------------------
    def add(self, collection: str, record: dict[str, Any]) -> dict[str, Any]:
        self.os[collection][record["id"]] = record
        return record

    def get(self, collection: str, rid: str) -> dict[str, Any] | None:
        return self.os[collection].get(rid)

    def remove(self, collection: str, rid: str) -> dict[str, Any] | None:
        return self.os[collection].pop(rid, None)

    def all(self, collection: str) -> Iterable[dict[str, Any]]:
        return self.os[collection].values()

    def where(self, collection: str, **match: Any) -> Iterator[dict[str, Any]]:
        for record in self.os[collection].values():
            if all(record.get(k) == v for k, v in match.items()):
                yield record

    # -- Kubernetes objects ---------------------------------------------------------------------
    def next_resource_version(self) -> str:
        return str(next(self._rv))

    @staticmethod
    def kube_key(api_version: str, kind: str) -> str:
        return f"{api_version}/{kind}"

    def kube_objects(self, api_version: str, kind: str) -> dict[tuple[str, str], dict[str, Any]]:
        return self.kube.setdefault(self.kube_key(api_version, kind), {})

    def kube_put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Insert or replace an object as is (used by loaders and behaviours, not by the API)."""
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", new_id())
        meta.setdefault("creationTimestamp", iso_now(self.clock.now()))
        meta["resourceVersion"] = self.next_resource_version()
        objects = self.kube_objects(obj["apiVersion"], obj["kind"])
        objects[(meta.get("namespace", ""), meta["name"])] = obj
        return obj

    def kube_get(self, api_version: str, kind: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        return self.kube_objects(api_version, kind).get((namespace, name))

    def notify_kube(self, event: str, obj: dict[str, Any]) -> None:
        for listener in list(self.kube_listeners):
            listener(event, obj)

    # -- snapshots ------------------------------------------------------------------------------
    def snapshot(self, source: str = "simulator") -> dict[str, Any]:
        """The whole state in the snapshot format (the same format `kuryr-migrate snapshot` writes)."""
        with self.lock:
            self.tick()
            openstack: dict[str, Any] = {"project_id": self.project_id}
            for name in OPENSTACK_COLLECTIONS:
                openstack[name] = copy.deepcopy(list(self.os[name].values()))
            objects: list[dict[str, Any]] = []
            for key in sorted(self.kube):
                objects.extend(copy.deepcopy(list(self.kube[key].values())))
            return {
                "format": SNAPSHOT_FORMAT,
                "version": SNAPSHOT_VERSION,
                "captured_at": iso_now(),
                "source": source,
                "infra_id": self.infra_id,
                "settings": copy.deepcopy(self.settings),
                "openstack": openstack,
                "kubernetes": {"objects": objects},
            }

    def load_snapshot(self, snap: dict[str, Any]) -> None:
        check_snapshot(snap)
        with self.lock:
            openstack = snap.get("openstack", {})
            self.project_id = openstack.get("project_id") or self.project_id
            self.infra_id = snap.get("infra_id")
            self.settings.update(snap.get("settings") or {})
            for name in OPENSTACK_COLLECTIONS:
                self.os[name] = {r["id"]: copy.deepcopy(r) for r in openstack.get(name, [])}
            self.kube = {}
            for obj in snap.get("kubernetes", {}).get("objects", []):
                obj = copy.deepcopy(obj)
                meta = obj.setdefault("metadata", {})
                key = (meta.get("namespace", ""), meta["name"])
                self.kube_objects(obj["apiVersion"], obj["kind"])[key] = obj
                rv = meta.get("resourceVersion")
                if rv is not None and str(rv).isdigit():
                    # Keep resourceVersions monotonic past what the snapshot holds.
                    while int(rv) >= int(self.next_resource_version()):
                        pass
            for obj_map in self.kube.values():
                for obj in obj_map.values():
                    obj["metadata"].setdefault("resourceVersion", self.next_resource_version())
            if self.infra_id and not self.kube.get(self.kube_key("config.openshift.io/v1", "ClusterVersion")):
                # Every cluster has one, but snapshots recorded before the tool captured it lack it: give
                # the cluster an identity that stays the same for the same infraID.
                self.kube_put(make_cluster_version(cluster_id_from(f"infra-id/{self.infra_id}"),
                                                   iso_now(self.clock.now())))

    def new_instance(self) -> None:
        """This store starts serving as a cluster instance of its own: a fresh ClusterVersion clusterID
        (as every install gets), so two simulators made from the same spec or snapshot, or a rehearsal
        and the real cluster it was recorded from, are never taken for one another."""
        with self.lock:
            for version in self.kube_objects("config.openshift.io/v1", "ClusterVersion").values():
                version.setdefault("spec", {})["clusterID"] = str(uuid.UUID(bytes=os.urandom(16), version=4))

    def ensure_system_namespaces(self) -> None:
        """The namespaces every kube-apiserver makes for itself (a recorded snapshot may lack them)."""
        with self.lock:
            for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
                if ("", name) not in self.kube_objects("v1", "Namespace"):
                    self.kube_put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name},
                                   "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})

