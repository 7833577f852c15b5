"""Cluster objects: Kuryr finalizer removal (B1, B4, B7-B10, B17) and the two deletions (B2, B5).

A finalizer removal removes exactly that one entry from metadata.finalizers and nothing else, with
a merge patch that carries the object's resourceVersion: if anything changed the object since it was
read, the API answers 409 and the removal is recomputed from a fresh read (the vendor procedure's
`grep -v | oc replace` rewrites the whole object and can drop concurrent changes).
"""

from __future__ import annotations

import functools
from typing import Any

from kuryr_cleanup import cluster as k
from kuryr_cleanup.context import Context
from kuryr_cleanup.engine import Finished, Outcome
from kuryr_cleanup.plan import DONE, FAILED, GONE, PlanItem
from kuryr_cleanup.retrying import call, http_status

CONFLICT_ATTEMPTS = 10


def _object_item(step: str, kind: k.Kind, obj: dict[str, Any], action: str, evidence: str,
                 **params: Any) -> PlanItem:
    """A plan item for one cluster object; it carries the object as read (journal, resourceVersion)."""
    meta = obj["metadata"]
    return PlanItem(
        step=step, kind=kind.kind, id=k.object_ref(obj), name=k.object_ref(obj), action=action, evidence=evidence,
        params={"api_version": kind.api_version, "namespaced": kind.namespaced, "namespace": meta.get("namespace"),
                "object_name": meta["name"], "object": obj, **params},
    )


def plan_finalizer_removals(step: str, kind: k.Kind, finalizer: str, objects: list[dict[str, Any]]) -> list[PlanItem]:
    return [_object_item(step, kind, obj, "remove-finalizer", f"carries finalizer {finalizer}", finalizer=finalizer)
            for obj in sorted(objects, key=k.object_ref)]


def _kind(item: PlanItem) -> k.Kind:
    return k.Kind(item.params["api_version"], item.kind, item.params["namespaced"])


def remove_finalizer(ctx: Context, item: PlanItem) -> Outcome:
    kind = _kind(item)
    cl = ctx.cluster
    ns = item.params["namespace"]
    name = item.params["object_name"]
    finalizer = item.params["finalizer"]
    obj: dict[str, Any] | None = item.params.get("object")
    for _attempt in range(CONFLICT_ATTEMPTS):
        if obj is None:
            obj = call(ctx.options.retry, lambda: cl.get(kind, name, ns), retry_conflicts=False)
            if obj is None:
                return Finished(GONE, "already gone")
        meta = obj.get("metadata") or {}
        finalizers = list(meta.get("finalizers") or [])
        if finalizer not in finalizers:
            return Finished(GONE, "finalizer already removed")
        remaining = [f for f in finalizers if f != finalizer]
        patch = {"metadata": {"resourceVersion": meta.get("resourceVersion"), "finalizers": remaining}}
        ctx.journal.write("change", step=item.step, kind=item.kind, id=item.id, action=item.action,
                          finalizer=finalizer, object=obj)
        try:
            call(ctx.options.retry, functools.partial(cl.patch, kind, name, ns, patch), retry_conflicts=False)
        except Exception as exc:
            status = http_status(exc)
            if status == 404:
                ctx.journal.write("result", sync=False, step=item.step, kind=item.kind, id=item.id, result="gone")
                return Finished(GONE, "already gone")
            if status == 409:
                obj = None  # someone changed it: read it again and recompute
                continue
            raise
        ctx.journal.write("result", sync=False, step=item.step, kind=item.kind, id=item.id, result="done")
        return Finished(DONE)
    return Finished(FAILED, f"the object kept changing: {CONFLICT_ATTEMPTS} conflicting updates in a row")


def plan_delete_object(step: str, kind: k.Kind, obj: dict[str, Any] | None, evidence: str) -> list[PlanItem]:
    return [] if obj is None else [_object_item(step, kind, obj, "delete", evidence)]


def delete_object(ctx: Context, item: PlanItem) -> Outcome:
    kind = _kind(item)
    ctx.journal.write("delete", step=item.step, kind=item.kind, id=item.id, action=item.action,
                      object=item.params.get("object"))
    existed = call(
        ctx.options.retry,
        lambda: ctx.cluster.delete(kind, item.params["object_name"], item.params["namespace"]),
        retry_conflicts=False,
    )
    ctx.journal.write("result", sync=False, step=item.step, kind=item.kind, id=item.id,
                      result="done" if existed else "gone")
    return Finished(DONE) if existed else Finished(GONE, "already gone")
