"""Octavia load balancers (B3), with the floating IPs on their VIPs (resources/floating_ips.py).

An LB in PENDING_* is immutable (409): wait until it settles. One in ERROR can be deleted. Cascade
deletion is asynchronous: the item is done when the LB is gone, which the engine learns from one
listing of the cluster's LBs per poll for all of them, not a GET per LB.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from kuryr_cleanup.engine import READY, RETRY, Finished, Outcome, Waiting
from kuryr_cleanup.inventory import Inventory
from kuryr_cleanup.kuryr import description_tags
from kuryr_cleanup.openstack_api import get_one, list_raw, octavia_version, send
from kuryr_cleanup.ownership import Ownership, ownership
from kuryr_cleanup.plan import DONE, GONE, PlanItem, Planned
from kuryr_cleanup.resources import floating_ips
from kuryr_cleanup.resources.base import Action, Reader, ResourceKind, Run, Step, journaled
from kuryr_cleanup.retrying import http_status

PENDING = ("PENDING_CREATE", "PENDING_UPDATE", "PENDING_DELETE")
# What planning reads of an LB and of its listeners and pools (the rest stays encoded until the
# journal records it).
FIELDS = frozenset({"id", "name", "description", "tags", "project_id", "tenant_id", "vip_port_id",
                    "provisioning_status"})
CHILD_FIELDS = frozenset({"id", "loadbalancers"})


# -- discovery -------------------------------------------------------------------------------------------
def prefetch(reader: Reader, inv: Inventory) -> None:
    """The project's LBs and their listeners and pools: one listing each, whatever the CRs say."""
    reader.start("octavia-version", lambda: octavia_version(reader.conn, reader.policy), retried=True)
    scope = {"project_id": inv.project_id} if inv.project_id else None
    reader.start_list("load_balancer", "/lbaas/loadbalancers", scope, FIELDS)
    for kind in ("listeners", "pools"):
        reader.start_list("load_balancer", f"/lbaas/{kind}", scope, CHILD_FIELDS)


def discover(reader: Reader, inv: Inventory) -> None:
    """By tag and by the tag text in the description, plus those the KuryrLoadBalancers name (their
    tagging may have failed). The description matters on Octavia >= 2.5 too: load balancers made
    before an upgrade across 2.5 carry the cluster tag only there. One listing of the project's LBs
    serves both (it is paged: reads grow with pages, not LBs)."""
    inv.octavia_version = reader.read(lambda: octavia_version(reader.conn, reader.policy), key="octavia-version",
                                      retried=True)
    scope = {"project_id": inv.project_id} if inv.project_id else None
    lbs = {lb["id"]: lb for lb in reader.list("load_balancer", "/lbaas/loadbalancers", scope, FIELDS)
           if inv.tag in (lb.get("tags") or []) or inv.tag in description_tags(lb.get("description"))}
    lbs.update(_by_ids(reader, set(inv.kuryr_lbs) - set(lbs)))
    inv.load_balancers = list(lbs.values())
    if inv.load_balancers:
        _children(reader, inv, set(lbs))


def _by_ids(reader: Reader, ids: set[str]) -> dict[str, dict[str, Any]]:
    """Octavia has no "any of these ids" filter (a real Octavia 19 answers 500 to `id=a&id=b`): a
    few ids are read one by one; more (a re-run remembering thousands) by one listing of all."""
    if len(ids) <= 5:
        found = {i: reader.one("load_balancer", f"/lbaas/loadbalancers/{i}", "loadbalancer") for i in ids}
        return {i: lb for i, lb in found.items() if lb is not None}
    return {lb["id"]: lb for lb in reader.list("load_balancer", "/lbaas/loadbalancers") if lb["id"] in ids}


def _children(reader: Reader, inv: Inventory, lb_ids: set[str]) -> None:
    """Listeners and pools of the LBs to delete: a cascade delete takes them, and the journal keeps
    them. One listing each (by tag where Octavia has tags), not one per LB."""
    params = {"project_id": inv.project_id} if inv.project_id else None
    for kind in ("listeners", "pools"):
        for child in reader.list("load_balancer", f"/lbaas/{kind}", params, CHILD_FIELDS):
            for owner in child.get("loadbalancers") or []:
                if owner.get("id") in lb_ids:
                    inv.lb_children.setdefault(owner["id"], {}).setdefault(kind, []).append(child)


# -- the watch: one listing per poll for every LB being deleted --------------------------------------------
class LoadBalancerWatch:
    """The cluster's LBs as of the last listing, refreshed at most once per poll for every waiter."""

    def __init__(self, run: Run) -> None:
        self.run = run
        inv = run.inv
        self.tag = inv.tag
        untagged = {lb["id"] for lb in inv.load_balancers if inv.tag not in (lb.get("tags") or [])}
        described = {lb["id"] for lb in inv.load_balancers if inv.tag in description_tags(lb.get("description"))}
        # One listing per poll: by tag when every LB carries the tag, or when the few that don't carry it
        # in their description either (their tagging failed: each is read by id). Else the project's whole
        # listing (Octavia < 2.5, or LBs made before an upgrade across 2.5: the tag is in the description).
        by_tag = not (untagged & described)
        self.params: dict[str, Any] | None = {"tags": inv.tag} if by_tag else (
            {"project_id": inv.project_id} if inv.project_id else None)
        self.untagged = untagged if by_tag else set()
        self._lock = threading.Lock()
        self._cache: dict[str, dict[str, Any]] = {}
        self._cache_time = float("-inf")

    def lookup(self, lb_id: str) -> dict[str, Any] | None:
        """The LB as of a listing at most one poll interval old (no GET per LB)."""
        with self._lock:
            fresh = time.monotonic() - self._cache_time < self.run.ctx.options.poll_interval
        found = self._cache if fresh and lb_id not in self.untagged else self.listing({lb_id})
        return found.get(lb_id)

    def listing(self, ids: set[str]) -> dict[str, dict[str, Any]]:
        conn, policy = self.run.conn, self.run.policy
        with self._lock:
            lbs = list_raw(conn, "load_balancer", "/lbaas/loadbalancers", "loadbalancers", policy, self.params)
            found = {lb["id"]: lb for lb in lbs}
            for lb_id in (ids & self.untagged) - set(found):
                one = get_one(conn, "load_balancer", f"/lbaas/loadbalancers/{lb_id}", "loadbalancer", policy)
                if one is not None:
                    found[lb_id] = one
            self._cache = found
            self._cache_time = time.monotonic()
            return found

    def gone(self, ids: set[str]) -> dict[str, str]:
        """Gone: ready. Back in ERROR (Octavia failed the delete): delete it again. Else its status."""
        found = self.listing(ids)
        answer = {}
        for i in ids:
            status = str(found[i].get("provisioning_status")) if i in found else ""
            answer[i] = READY if not status else RETRY if status == "ERROR" else status
        return answer

    def settled(self, ids: set[str]) -> dict[str, str]:
        found = self.listing(ids)
        answer = {}
        for i in ids:
            status = str(found[i].get("provisioning_status")) if i in found else "gone"
            answer[i] = status if status in PENDING else READY
        return answer


# -- actions ---------------------------------------------------------------------------------------------
def cascade_delete(run: Run, item: PlanItem) -> Outcome:
    watch = run.shared(LoadBalancerWatch)
    timeout = run.ctx.options.lb_timeout
    lb = watch.lookup(item.id)
    if lb is None:
        return Finished(GONE, "already gone")
    status = lb.get("provisioning_status")
    if status == "PENDING_DELETE":
        return Waiting(watch.gone, item.id, timeout, "for the LB to be deleted")
    if status in PENDING:
        # Immutable until Octavia finishes what it is doing: come back when it has settled.
        return Waiting(watch.settled, item.id, timeout, f"for the LB to leave {status}", retry=True)
    try:
        outcome = journaled(run, item, lambda: send(run.conn, "load_balancer", "DELETE",
                                                    f"/lbaas/loadbalancers/{item.id}", params={"cascade": "true"}),
                            retry_conflicts=False, obj=lb)
    except Exception as exc:
        if http_status(exc) == 409:  # went PENDING_* between our read and the delete
            return Waiting(watch.settled, item.id, timeout, "for the LB to settle", retry=True)
        raise
    if outcome.state != DONE:
        return outcome
    return Waiting(watch.gone, item.id, timeout, "for the LB to be deleted")


CASCADE_DELETE = Action("load balancer", "cascade-delete", "delete (cascade)", cascade_delete)


# -- planning --------------------------------------------------------------------------------------------
def lb_ownership(inv: Inventory, lb: dict[str, Any]) -> Ownership:
    """The cluster tag (in the tags or, as a whole token, in the description), or named by a
    KuryrLoadBalancer and Kuryr-shaped (S7: a CR is a pointer, not proof): Kuryr names the LB it makes
    for a Service `<namespace>/<service>`, as the KuryrLoadBalancer is named."""
    cr = inv.kuryr_lbs.get(lb["id"], {})
    ref = cr.get("kuryrloadbalancer")
    own = ownership(lb, inv.tag, named_in=ref and f"KuryrLoadBalancer {ref}", description_tag=True)
    project = lb.get("project_id") or lb.get("tenant_id")
    if own.ours and inv.project_id and project and project != inv.project_id:
        return Ownership(False, reason=f"kept: in project {project}, not the cluster's ({inv.project_id})")
    if own.ours and own.evidence.startswith("named in") and lb.get("name") != ref:
        return Ownership(False, reason=f"kept: KuryrLoadBalancer {ref} names it, but it is neither tagged for this "
                                       f"cluster nor named {ref!r} as the load balancers Kuryr makes are")
    return own


def plan(inv: Inventory, planned: Planned) -> list[PlanItem]:
    items: list[PlanItem] = []
    for lb in sorted(inv.load_balancers, key=lambda lb: (lb.get("name") or "", lb["id"])):
        cr = inv.kuryr_lbs.get(lb["id"], {})
        own = lb_ownership(inv, lb)
        name = lb.get("name") or ""
        if not own.ours:
            items.append(CASCADE_DELETE.item("B3", lb["id"], name, "", own.state, own.reason))
            continue
        after: tuple[str, ...] = ()
        fip = inv.floating_ips_by_port.get(lb.get("vip_port_id") or "")
        if fip is not None:
            fip_item = floating_ips.plan_for_load_balancer("B3", fip, cr, lb)
            items.append(fip_item)
            after = (fip_item.key,)
        items.append(CASCADE_DELETE.item("B3", lb["id"], name, own.evidence, after=after, object=lb,
                                         related=inv.lb_children.get(lb["id"], {})))
    return items + floating_ips.plan_orphans("B3", inv)


def vip_ports(inv: Inventory) -> set[str]:
    """Octavia removes a load balancer's VIP port with the LB (B3, which comes first); deleting it
    directly would race Octavia, and a VIP port of an LB that is not ours must stay."""
    return {str(lb["vip_port_id"]) for lb in inv.load_balancers if lb.get("vip_port_id")}


def our_vip_ports(inv: Inventory) -> set[str]:
    """The VIP ports of the load balancers B3 deletes: any other VIP port on a Kuryr network is
    another owner's load balancer, which keeps the network (S7)."""
    return {str(lb["vip_port_id"]) for lb in inv.load_balancers
            if lb.get("vip_port_id") and lb_ownership(inv, lb).ours}


STEP = Step("B3", "Octavia load balancers and their floating IPs", (), plan,
            what="Octavia load balancers (cascade), after releasing Kuryr's floating IP on the VIP; Kuryr's "
                 "floating IPs whose LB is already gone",
            evidence="the cluster tag; on Octavia < 2.5 the tag in the description (as a whole token); or named "
                     "in a KuryrLoadBalancer")
KIND = ResourceKind("load balancers", steps=(STEP,), discover=discover, prefetch=prefetch)
