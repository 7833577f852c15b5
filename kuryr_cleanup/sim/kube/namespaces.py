"""The namespace controller's part: a deleted namespace deletes its content, stays Terminating
while some remains (saying what, in its conditions), and goes when the last of it is gone."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from kuryr_cleanup.sim.kube.resources import BY_STORE_KEY, Kind, drop_object, save_object
from kuryr_cleanup.sim.store import Store, iso_now


class Namespaces:
    """Terminating namespaces of one store and the content each still waits for."""

    def __init__(self, store: Store, delete_object: Callable[[Kind, dict[str, Any]], object]) -> None:
        self.store = store
        self._delete_object = delete_object  # the API's delete (finalizers respected)
        # Terminating namespace -> keys of the content it still waits for (filled lazily).
        self._content: dict[str, set[tuple[str, str]]] = {}

    def delete(self, ns: dict[str, Any]) -> dict[str, Any]:
        """Mark the namespace Terminating and delete its content; it goes at once if nothing remains."""
        name = ns["metadata"]["name"]
        if not ns["metadata"].get("deletionTimestamp"):
            new = copy.deepcopy(ns)
            new["metadata"]["deletionTimestamp"] = iso_now(self.store.clock.now())
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new.setdefault("status", {})["phase"] = "Terminating"
            save_object(self.store, new)
            ns = new
        remaining = self._remaining(name)
        for store_key, obj_name in sorted(remaining):
            kind = BY_STORE_KEY.get(store_key)
            obj = self.store.kube.get(store_key, {}).get((name, obj_name))
            if kind is not None and obj is not None:
                self._delete_object(kind, obj)
        self._finish_if_empty(name)
        return self.store.kube_get("v1", "Namespace", name) or ns

    def _remaining(self, namespace: str) -> set[tuple[str, str]]:
        content = self._content.get(namespace)
        if content is None:
            content = {
                (store_key, key[1])
                for store_key, objects in self.store.kube.items()
                for key in objects
                if key[0] == namespace
            }
            self._content[namespace] = content
        return content

    def content_gone(self, namespace: str, key: tuple[str, str]) -> None:
        content = self._content.get(namespace)
        if content is None:
            ns = self.store.kube_get("v1", "Namespace", namespace)
            if ns is None or not ns["metadata"].get("deletionTimestamp"):
                return
            content = self._remaining(namespace)
        content.discard(key)
        self._finish_if_empty(namespace)

    def _finish_if_empty(self, namespace: str) -> None:
        """The namespace controller's last step: an empty Terminating namespace goes; a non-empty one
        reports what it still waits for in its conditions."""
        ns = self.store.kube_get("v1", "Namespace", namespace)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        content = self._remaining(namespace)
        if content:
            # Cheap path: something is still there. Refresh the conditions only on the first call.
            if not ns.get("status", {}).get("conditions"):
                self._set_conditions(ns, content)
            return
        # Verify (objects may have been put straight into the store) before letting it go.
        self._content.pop(namespace, None)
        if self._remaining(namespace):
            return
        self._content.pop(namespace, None)
        drop_object(self.store, ns)

    def _set_conditions(self, ns: dict[str, Any], content: set[tuple[str, str]]) -> None:
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
        save_object(self.store, new)

    def forget(self, namespace: str) -> None:
        """The namespace went another way (its finalizers were emptied): stop tracking its content."""
        self._content.pop(namespace, None)
