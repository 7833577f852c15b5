"""The kubelets' part in deleting a pod: a pod bound to a node goes when its kubelet says so.

A DELETE of a pod bound to a node only starts its graceful termination (deletionTimestamp = now +
grace, `deletionGracePeriodSeconds` = the grace period, 30 s by default); the kubelet stops the
containers and confirms with a DELETE of grace 0, after which the pod goes (or, with finalizers left,
waits for them with a zero grace period). Here the kubelet of a Ready node confirms once the
containers stopped: the `pod_stop` delay of simulated time (0 by default: at once), at most the grace
period. A node that is NotReady (rebooting, lost) confirms nothing until it is Ready again, and
a pod bound to a node that does not exist waits for one of that name (as on a real apiserver without
its pod garbage collector: nobody confirms).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from kuryr_cleanup.sim.openshift.nodes import node_is_ready
from kuryr_cleanup.sim.store import Store

POD_STOP_DELAY = "pod_stop"  # a named delay of the store: seconds from the DELETE to the kubelet's confirmation

PodKey = tuple[str, str, str]  # namespace, name, uid


def termination_pending(pod: dict[str, Any]) -> bool:
    """Deleted gracefully and not yet confirmed by its kubelet."""
    meta = pod["metadata"]
    return bool(meta.get("deletionTimestamp")) and bool(meta.get("deletionGracePeriodSeconds"))


class Kubelets:
    """Every node's kubelet, as far as confirming pod deletions goes."""

    def __init__(self, store: Store, confirm: Callable[[dict[str, Any]], object]) -> None:
        self.store = store
        self._confirm = confirm  # the API's DELETE with grace 0
        self._waiting: dict[str, set[PodKey]] = {}  # node name -> pods waiting for it to be Ready
        store.delays.setdefault(POD_STOP_DELAY, 0.0)
        store.kube_listeners.append(self._node_changed)
        with store.lock:
            # A recorded cluster may hold pods whose termination no kubelet confirmed yet.
            for pod in list(store.kube_objects("v1", "Pod").values()):
                if termination_pending(pod):
                    self.terminating(pod)

    def terminating(self, pod: dict[str, Any]) -> None:
        """`pod` was deleted gracefully: its kubelet stops the containers, then confirms."""
        meta = pod["metadata"]
        if not (pod.get("spec") or {}).get("nodeName"):
            return
        key = (meta.get("namespace") or "", meta["name"], meta.get("uid") or "")
        delay = min(self.store.delays.get(POD_STOP_DELAY, 0.0), float(meta.get("deletionGracePeriodSeconds") or 0))
        if delay <= 0:
            self._stopped(key)  # the containers stop at once: the pod goes within the same sync or request
        else:
            self.store.schedule(delay, functools.partial(self._stopped, key))

    def _stopped(self, key: PodKey) -> None:
        namespace, name, uid = key
        pod = self.store.kube_get("v1", "Pod", name, namespace)
        if pod is None or (pod["metadata"].get("uid") or "") != uid or not termination_pending(pod):
            return
        node_name = str(pod["spec"]["nodeName"])
        node = self.store.kube_get("v1", "Node", node_name)
        if node is None or not node_is_ready(node):
            self._waiting.setdefault(node_name, set()).add(key)
            return
        self._confirm(pod)

    def _node_changed(self, event: str, obj: dict[str, Any]) -> None:
        if obj.get("kind") != "Node" or obj.get("apiVersion") != "v1" or event == "DELETED":
            return
        name = obj["metadata"]["name"]
        if name not in self._waiting or not node_is_ready(obj):
            return
        for key in sorted(self._waiting.pop(name)):
            # After the write that made the node Ready, not inside it: each confirmation is a write too.
            self.store.schedule(0.0, functools.partial(self._stopped, key))
