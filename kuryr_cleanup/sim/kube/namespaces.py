"""The namespace controller's part: a deleted namespace is Terminating at once; the controller then
deletes its content, keeps it Terminating while some remains (saying what, in its conditions), and
lets it go when the last of it is gone."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

from kuryr_cleanup.sim.kube.resources import BY_STORE_KEY, Kind, drop_object, save_object
from kuryr_cleanup.sim.store import Store, iso_now

NAMESPACE_SYNC_DELAY = "namespace_sync"  # a named delay of the store: from the DELETE to the controller's sync


class Namespaces:
    """Terminating namespaces of one store and the content each still waits for."""

    def __init__(self, store: Store, delete_object: Callable[[Kind, dict[str, Any]], object]) -> None:
        self.store = store
        self._delete_object = delete_object  # the API's delete (finalizers respected)
        # Terminating namespace -> keys of the content it still waits for (filled lazily).
        self._content: dict[str, set[tuple[str, str]]] = {}
        self._resync: set[str] = set()  # namespaces whose conditions are to be brought up to date
        store.delays.setdefault(NAMESPACE_SYNC_DELAY, 0.0)

    def delete(self, ns: dict[str, Any]) -> dict[str, Any]:
        """Mark the namespace Terminating; its controller deletes the content later (the `namespace_sync`
        delay: 0 is the next tick, as a real namespace controller acts after the DELETE has answered)."""
        if ns["metadata"].get("deletionTimestamp"):
            return ns
        new = copy.deepcopy(ns)
        new["metadata"]["deletionTimestamp"] = iso_now(self.store.clock.now())
        new.setdefault("status", {})["phase"] = "Terminating"
        save_object(self.store, new)
        meta = new["metadata"]
        self.store.schedule(NAMESPACE_SYNC_DELAY, functools.partial(self._sync, meta["name"], meta.get("uid")))
        return new

    def _sync(self, name: str, uid: str | None) -> None:
        """The namespace controller: delete every object in the namespace (finalizers respected, pods
        gracefully), then let the namespace go if nothing remains."""
        ns = self.store.kube_get("v1", "Namespace", name)
        if ns is None or ns["metadata"].get("uid") != uid or not ns["metadata"].get("deletionTimestamp"):
            return
        for store_key, obj_name in sorted(self._remaining(name)):
            kind = BY_STORE_KEY.get(store_key)
            obj = self.store.kube.get(store_key, {}).get((name, obj_name))
            if kind is not None and obj is not None:
                self._delete_object(kind, obj)
        self._finish_if_empty(name)

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
            # What remains changed: the controller's next sync (once per tick, however many objects went)
            # says so in the conditions.
            if namespace not in self._resync:
                self._resync.add(namespace)
                self.store.schedule(0.0, functools.partial(self._sync_conditions, namespace))
            return
        # Verify (objects may have been put straight into the store) before letting it go.
        self._content.pop(namespace, None)
        if self._remaining(namespace):
            self._finish_if_empty(namespace)
            return
        self._content.pop(namespace, None)
        drop_object(self.store, ns)

    def _sync_conditions(self, namespace: str) -> None:
        self._resync.discard(namespace)
        ns = self.store.kube_get("v1", "Namespace", namespace)
        content = self._content.get(namespace)
        if ns is None or not ns["metadata"].get("deletionTimestamp") or not content:
            return
        new = copy.deepcopy(ns)
        if _update_conditions(new.setdefault("status", {}), self._content_conditions(namespace, content),
                              iso_now(self.store.clock.now())):
            save_object(self.store, new)

    def _content_conditions(self, namespace: str, content: set[tuple[str, str]]) -> dict[str, tuple[str, str, str]]:
        """The namespace deleter's conditions (pkg/controller/namespace/deletion): type -> status, reason,
        message; every deletion step succeeded, so only what remains is told."""
        counts: dict[str, int] = {}
        finalizers: dict[str, int] = {}
        for store_key, obj_name in content:
            kind = BY_STORE_KEY.get(store_key)
            # "%s.%s" of resource and group: the core group's resources end with a dot ("pods.").
            label = f"{kind.plural}.{kind.group}" if kind else store_key
            counts[label] = counts.get(label, 0) + 1
            obj = self.store.kube.get(store_key, {}).get((namespace, obj_name)) or {}
            for f in obj.get("metadata", {}).get("finalizers") or []:
                finalizers[f] = finalizers.get(f, 0) + 1
        conditions = dict(_OK_CONDITIONS)
        conditions["NamespaceContentRemaining"] = (
            "True", "SomeResourcesRemain", "Some resources are remaining: " + ", ".join(
                sorted(f"{r} has {n} resource instances" for r, n in counts.items())))
        if finalizers:
            conditions["NamespaceFinalizersRemaining"] = (
                "True", "SomeFinalizersRemain", "Some content in the namespace has finalizers remaining: " + ", ".join(
                    sorted(f"{f} in {n} resource instances" for f, n in finalizers.items())))
        return conditions

    def forget(self, namespace: str) -> None:
        """The namespace went another way (its finalizers were emptied): stop tracking its content."""
        self._content.pop(namespace, None)


# The conditions the namespace deleter keeps, in its order, with their "all went well" variant.
_OK_CONDITIONS: dict[str, tuple[str, str, str]] = {
    "NamespaceDeletionDiscoveryFailure": ("False", "ResourcesDiscovered", "All resources successfully discovered"),
    "NamespaceDeletionGroupVersionParsingFailure": ("False", "ParsedGroupVersions",
                                                    "All legacy kube types successfully parsed"),
    "NamespaceDeletionContentFailure": ("False", "ContentDeleted",
                                        "All content successfully deleted, may be waiting on finalization"),
    "NamespaceContentRemaining": ("False", "ContentRemoved", "All content successfully removed"),
    "NamespaceFinalizersRemaining": ("False", "ContentHasNoFinalizers", "All content-preserving finalizers finished"),
}


def _update_conditions(status: dict[str, Any], wanted: dict[str, tuple[str, str, str]], now: str) -> bool:
    """The deleter's updateConditions: add missing ones, change changed ones (a new lastTransitionTime only
    when the status flips); whether anything changed."""
    conditions: list[dict[str, Any]] = status.setdefault("conditions", [])
    changed = False
    for ctype, (cstatus, reason, message) in wanted.items():
        old = next((c for c in conditions if c.get("type") == ctype), None)
        if old is None:
            conditions.append({"type": ctype, "status": cstatus, "lastTransitionTime": now, "reason": reason,
                               "message": message})
            changed = True
        elif (old.get("status"), old.get("reason"), old.get("message")) != (cstatus, reason, message):
            if old.get("status") != cstatus:
                old["lastTransitionTime"] = now
            old.update(status=cstatus, reason=reason, message=message)
            changed = True
    return changed
