"""Cluster objects: what Kuryr's CRs say, Kuryr's finalizers (B1, B4, B7-B10, B17) and the two named
deletions (B2 the gateway Service, B5 the `openshift-kuryr` namespace).

A finalizer removal removes exactly that one entry from metadata.finalizers and nothing else, with
a merge patch that carries the object's resourceVersion: if anything changed the object since it was
read, the API answers 409 and the removal is recomputed from a fresh read (the vendor procedure's
`grep -v | oc replace` rewrites the whole object and can drop concurrent changes).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from kuryr_cleanup import kube as k
from kuryr_cleanup.engine import Finished, Outcome
from kuryr_cleanup.inventory import Inventory
from kuryr_cleanup.kuryr import (
    GATEWAY_SERVICE,
    KLB_FINALIZER,
    KURYR_NAMESPACE,
    KURYRNETWORK_FINALIZER,
    KURYRPORT_FINALIZER,
    NETWORKPOLICY_FINALIZER,
    POD_FINALIZER,
    SERVICE_FINALIZER,
)
from kuryr_cleanup.plan import FAILED, GONE, PlanItem, Planned
from kuryr_cleanup.resources import loadbalancers, networks
from kuryr_cleanup.resources.base import Action, Reader, ResourceKind, Run, Step, journaled
from kuryr_cleanup.retrying import http_status

CONFLICT_ATTEMPTS = 10

# Step -> (kind, finalizer) for every finalizer removal step.
FINALIZERS: dict[str, tuple[k.Kind, str]] = {
    "B1": (k.SERVICE, SERVICE_FINALIZER),
    "B4": (k.KURYR_LOAD_BALANCER, KLB_FINALIZER),
    "B7": (k.POD, POD_FINALIZER),
    "B8": (k.KURYR_PORT, KURYRPORT_FINALIZER),
    "B9": (k.NETWORK_POLICY, NETWORKPOLICY_FINALIZER),
    "B10": (k.KURYR_NETWORK_POLICY, NETWORKPOLICY_FINALIZER),
    "B17": (k.KURYR_NETWORK, KURYRNETWORK_FINALIZER),
}


# -- discovery -------------------------------------------------------------------------------------------
# The biggest lists first: they start first.
LISTED = (k.POD, k.KURYR_PORT, *dict.fromkeys(kind for kind, _f in FINALIZERS.values()), k.NAMESPACE)
NAMED = ((k.NETWORK_CONFIG, "cluster", None), (k.NETWORK_OPERATOR, "cluster", None),
         (k.SERVICE, GATEWAY_SERVICE, KURYR_NAMESPACE), (k.NAMESPACE, KURYR_NAMESPACE, None))


def prefetch(reader: Reader, inv: Inventory) -> None:
    cl = reader.cluster
    for kind in dict.fromkeys(LISTED):
        reader.start(("list", kind), functools.partial(_list, cl, kind))
    for kind, name, namespace in NAMED:
        reader.start(("get", kind, name), functools.partial(cl.get, kind, name, namespace))


def discover(reader: Reader, inv: Inventory) -> None:
    cl = reader.cluster

    def get(kind: k.Kind, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return reader.read(functools.partial(cl.get, kind, name, namespace), key=("get", kind, name))

    net = get(k.NETWORK_CONFIG, "cluster") or {}
    inv.network_type = (net.get("status") or {}).get("networkType")
    operator = get(k.NETWORK_OPERATOR, "cluster") or {}
    inv.migration = (operator.get("spec") or {}).get("migration")

    listed: dict[k.Kind, list[dict[str, Any]]] = {}
    for kind, _finalizer in FINALIZERS.values():
        if kind not in listed:
            listed[kind] = reader.read(functools.partial(_list, cl, kind), key=("list", kind))
    inv.finalizer_objects = {
        step: [o for o in listed[kind] if finalizer in ((o.get("metadata") or {}).get("finalizers") or [])]
        for step, (kind, finalizer) in FINALIZERS.items()
    }
    inv.gateway_service = get(k.SERVICE, GATEWAY_SERVICE, KURYR_NAMESPACE)
    inv.kuryr_namespace = get(k.NAMESPACE, KURYR_NAMESPACE)

    # What Kuryr's CRs point at in the cloud: pointers, to be checked against the cloud's own evidence.
    # Kuryr names a namespace's network `<namespace uid>/<namespace>`: the uid is part of that evidence.
    namespaces = reader.read(functools.partial(_list, cl, k.NAMESPACE), key=("list", k.NAMESPACE))
    uids = {ns["metadata"]["name"]: ns["metadata"].get("uid") for ns in namespaces}
    for kn in listed[k.KURYR_NETWORK]:
        status = kn.get("status") or {}
        namespace = (kn.get("metadata") or {}).get("namespace")
        if status.get("netId"):
            inv.kuryr_networks[status["netId"]] = {"subnet_id": status.get("subnetId"),
                                                   "kuryrnetwork": k.object_ref(kn), "namespace": namespace,
                                                   "namespace_uid": uids.get(namespace or "")}
        if status.get("routerId") and status["routerId"] not in inv.router_ids:
            inv.router_ids.append(status["routerId"])
    for klb in listed[k.KURYR_LOAD_BALANCER]:
        status = klb.get("status") or {}
        lb = status.get("loadbalancer") or {}
        if lb.get("id"):
            pub = status.get("service_pub_ip_info") or {}
            inv.kuryr_lbs[lb["id"]] = {"kuryrloadbalancer": k.object_ref(klb), "alloc_method": pub.get("alloc_method"),
                                       "fip_id": pub.get("ip_id")}
    for knp in listed[k.KURYR_NETWORK_POLICY]:
        sg = (knp.get("status") or {}).get("securityGroupId")
        if sg:
            inv.np_security_groups[sg] = k.object_ref(knp)
    remember(reader, inv)


def _list(cl: k.Cluster, kind: k.Kind) -> list[dict[str, Any]]:
    # Compact: the objects with a finalizer stay in memory until the run ends (journal, metadata).
    return list(cl.list(kind, compact=True))


def remember(reader: Reader, inv: Inventory) -> None:
    """Merge the CRs' facts with earlier runs' (S3): the run removes the CRs, and a re-run after
    that must still find the networks, the router and the allocations they named."""
    state = reader.ctx.state
    inv.kuryr_networks = state.merge_dict("kuryr_networks", inv.kuryr_networks)
    routers = list(dict.fromkeys((state.get("router_ids") or []) + inv.router_ids))
    state.set("router_ids", routers)
    inv.router_ids = routers
    inv.kuryr_lbs = state.merge_dict("kuryr_lbs", inv.kuryr_lbs)
    inv.np_security_groups = state.merge_dict("np_security_groups", inv.np_security_groups)
    state.set("infra_id", inv.infra_id)


# -- actions ------------------------------------------------------------------------------------------------
def _kind(item: PlanItem) -> k.Kind:
    return k.Kind(item.params["api_version"], item.kind, item.params["namespaced"])


def remove_finalizer(run: Run, item: PlanItem) -> Outcome:
    kind = _kind(item)
    cl = run.cluster
    ns = item.params["namespace"]
    name = item.params["object_name"]
    finalizer = item.params["finalizer"]
    obj: dict[str, Any] | None = item.params.get("object")
    for _attempt in range(CONFLICT_ATTEMPTS):
        if obj is None:
            obj = run.call(lambda: cl.get(kind, name, ns))
            if obj is None:
                return Finished(GONE, "already gone")
        meta = obj.get("metadata") or {}
        finalizers = list(meta.get("finalizers") or [])
        if finalizer not in finalizers:
            return Finished(GONE, "finalizer already removed")
        remaining = [f for f in finalizers if f != finalizer]
        patch = {"metadata": {"resourceVersion": meta.get("resourceVersion"), "finalizers": remaining}}
        try:
            return journaled(run, item, functools.partial(cl.patch, kind, name, ns, patch, answer=False),
                             event="change", retry_conflicts=False, obj=obj, finalizer=finalizer)
        except Exception as exc:
            if http_status(exc) != 409:
                raise
            obj = None  # someone changed it: read it again and recompute
    return Finished(FAILED, f"the object kept changing: {CONFLICT_ATTEMPTS} conflicting updates in a row")


def delete_object(run: Run, item: PlanItem) -> Outcome:
    kind = _kind(item)
    return journaled(run, item, lambda: run.cluster.delete(kind, item.params["object_name"], item.params["namespace"]),
                     retry_conflicts=False)


REMOVE_FINALIZER = Action("", "remove-finalizer", "remove finalizer", remove_finalizer)
DELETE = Action("", "delete", "delete", delete_object)


# -- planning -----------------------------------------------------------------------------------------------
def _object_item(action: Action, step: str, kind: k.Kind, obj: dict[str, Any], evidence: str,
                 after: Iterable[str] = (), **params: Any) -> PlanItem:
    """A plan item for one cluster object; it carries the object as read (journal, resourceVersion)."""
    meta = obj["metadata"]
    ref = k.object_ref(obj)
    return action.item(step, ref, ref, evidence, after=after, kind=kind.kind, api_version=kind.api_version,
                       namespaced=kind.namespaced, namespace=meta.get("namespace"), object_name=meta["name"],
                       object=obj, **params)


def _cloud_resource(step: str, obj: dict[str, Any]) -> tuple[str, str] | None:
    """The cloud resource a Kuryr CR's finalizer guards: its removal waits for that resource's item,
    and a failure to delete it blocks the removal (the CR is the record that names it)."""
    if step not in ("B4", "B17"):
        return None  # without decoding the status (kube.compact_object)
    status = obj.get("status") or {}
    if step == "B4" and (status.get("loadbalancer") or {}).get("id"):
        return "load balancer", str(status["loadbalancer"]["id"])
    if step == "B17" and status.get("netId"):
        return "network", str(status["netId"])
    return None


def plan_finalizer_removals(step: str, inv: Inventory, planned: Planned) -> list[PlanItem]:
    kind, finalizer = FINALIZERS[step]
    items = []
    for obj in sorted(inv.finalizer_objects.get(step, []), key=k.object_ref):
        guarded = _cloud_resource(step, obj)
        key = planned.key(*guarded) if guarded else None
        items.append(_object_item(REMOVE_FINALIZER, step, kind, obj, f"carries finalizer {finalizer}",
                                  after=[key] if key else (), finalizer=finalizer))
    return items


def _finalizer_step(step: str, title: str, depends_on: tuple[str, ...] = ()) -> Step:
    kind, finalizer = FINALIZERS[step]
    return Step(step, title, depends_on, functools.partial(plan_finalizer_removals, step),
                what=f"the `{finalizer}` finalizer on every {kind.kind}", evidence="the finalizer")


def plan_gateway_service(inv: Inventory, planned: Planned) -> list[PlanItem]:
    obj = inv.gateway_service
    return [] if obj is None else [_object_item(DELETE, "B2", k.SERVICE, obj, "Kuryr's service-subnet gateway Service")]


def plan_kuryr_namespace(inv: Inventory, planned: Planned) -> list[PlanItem]:
    obj = inv.kuryr_namespace
    return [] if obj is None else [_object_item(DELETE, "B5", k.NAMESPACE, obj, f"Kuryr's namespace {KURYR_NAMESPACE}")]


KIND = ResourceKind(
    "cluster objects",
    steps=(
        _finalizer_step("B1", "Service finalizers"),
        Step("B2", f"Service {KURYR_NAMESPACE}/{GATEWAY_SERVICE}", ("B1",), plan_gateway_service,
             what=f"Service `{KURYR_NAMESPACE}/{GATEWAY_SERVICE}`", evidence="its fixed name and namespace"),
        _finalizer_step("B4", "KuryrLoadBalancer finalizers", (loadbalancers.STEP.id,)),
        Step("B5", f"Namespace {KURYR_NAMESPACE}", ("B2", "B4"), plan_kuryr_namespace,
             what=f"namespace `{KURYR_NAMESPACE}`", evidence="its fixed name"),
        _finalizer_step("B7", "Pod finalizers"),
        _finalizer_step("B8", "KuryrPort finalizers"),
        _finalizer_step("B9", "NetworkPolicy finalizers"),
        _finalizer_step("B10", "KuryrNetworkPolicy finalizers"),
        _finalizer_step("B17", "KuryrNetwork finalizers", (networks.CHECK_STEP.id,)),
    ),
    discover=discover,
    prefetch=prefetch,
)
