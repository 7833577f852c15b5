"""Octavia load balancers and the floating IPs on their VIPs (B3).

An LB in PENDING_* is immutable (409): wait until it settles. One in ERROR can be deleted. Cascade
deletion is asynchronous: the item is done when the LB is gone, which the engine learns from one
listing of the cluster's LBs per poll for all of them, not a GET per LB.

Floating IPs: Kuryr allocates one for a LoadBalancer Service when the admin gave none
(`service_pub_ip_info.alloc_method == pool`, FIP description `kuryr_lb`): that one is released.
One the admin allocated (`user`) is only disassociated, so it survives for reuse. The vendor procedure
deletes the LBs and leaks Kuryr's floating IPs.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from kuryr_cleanup.context import Context
from kuryr_cleanup.engine import READY, RETRY, Finished, Outcome, Waiting
from kuryr_cleanup.inventory import KURYR_FIP_DESCRIPTION, Inventory, ownership
from kuryr_cleanup.openstack_api import get_one, list_raw, send
from kuryr_cleanup.plan import DONE, GONE, KEPT, PlanItem
from kuryr_cleanup.resources.deletion import delete_journaled
from kuryr_cleanup.retrying import call, http_status

PENDING = ("PENDING_CREATE", "PENDING_UPDATE", "PENDING_DELETE")


def plan(inv: Inventory) -> list[PlanItem]:
    items: list[PlanItem] = []
    for lb in sorted(inv.load_balancers, key=lambda lb: (lb.get("name") or "", lb["id"])):
        cr = inv.kuryr_lbs.get(lb["id"], {})
        own = ownership(lb, inv.tag, named_in=cr.get("kuryrloadbalancer") and f"KuryrLoadBalancer "
                        f"{cr['kuryrloadbalancer']}", description_tag=not inv.octavia_has_tags)
        name = lb.get("name") or ""
        if not own.ours:
            items.append(PlanItem("B3", "load balancer", lb["id"], name, "cascade-delete", "", own.state, own.reason))
            continue
        after: tuple[str, ...] = ()
        fip = inv.floating_ips_by_port.get(lb.get("vip_port_id") or "")
        if fip is not None:
            fip_item = plan_floating_ip(fip, cr, lb)
            items.append(fip_item)
            after = (fip_item.key,)
        items.append(
            PlanItem("B3", "load balancer", lb["id"], name, "cascade-delete", own.evidence, after=after,
                     params={"object": lb, "related": inv.lb_children.get(lb["id"], {})})
        )
    return items + plan_orphan_floating_ips(inv)


def plan_orphan_floating_ips(inv: Inventory) -> list[PlanItem]:
    """Kuryr's floating IPs whose LB is gone already: released unless someone has put them to use."""
    by_fip = {str(v.get("fip_id")): v for v in inv.kuryr_lbs.values() if v.get("fip_id")}
    items = []
    for fip in sorted(inv.orphan_kuryr_fips, key=lambda f: f.get("floating_ip_address") or ""):
        cr = by_fip.get(fip["id"], {})
        address = fip.get("floating_ip_address") or ""
        evidence = (f"allocated by Kuryr for KuryrLoadBalancer {cr.get('kuryrloadbalancer')} (alloc_method pool); "
                    f"its load balancer is gone")
        if fip.get("port_id"):
            items.append(PlanItem("B3", "floating IP", fip["id"], address, "release", evidence, KEPT,
                                  f"kept: now associated with port {fip['port_id']}"))
        else:
            items.append(PlanItem("B3", "floating IP", fip["id"], address, "release", evidence,
                                  params={"object": fip}))
    return items


def plan_floating_ip(fip: dict[str, Any], cr: dict[str, Any], lb: dict[str, Any]) -> PlanItem:
    address = fip.get("floating_ip_address") or ""
    # Released only when it is the very address Kuryr allocated: a user's FIP later moved onto the
    # same VIP must survive even though the Service's record says `pool`.
    method = cr.get("alloc_method")
    recorded = method == "pool" and fip["id"] == cr.get("fip_id")
    described = method in ("pool", None) and fip.get("description") == KURYR_FIP_DESCRIPTION
    if recorded or described:
        evidence = f"on the VIP of LB {lb['id']}; allocated by Kuryr"
        evidence += (" (KuryrLoadBalancer service_pub_ip_info)" if recorded
                     else f" (description {KURYR_FIP_DESCRIPTION})")
        return PlanItem("B3", "floating IP", fip["id"], address, "release", evidence, params={"object": fip})
    return PlanItem(
        "B3", "floating IP", fip["id"], address, "disassociate",
        f"on the VIP of LB {lb['id']}; allocated by the user (alloc_method {cr.get('alloc_method') or 'unknown'})",
        reason="kept: user-allocated floating IP, only disassociated", params={"object": fip},
    )


def release_floating_ip(ctx: Context, item: PlanItem) -> Outcome:
    return delete_journaled(ctx, item, lambda: send(ctx.conn, "network", "DELETE", f"/floatingips/{item.id}"))


def disassociate_floating_ip(ctx: Context, item: PlanItem) -> Outcome:
    ctx.journal.write("change", step=item.step, kind=item.kind, id=item.id, action="disassociate",
                      object=item.params["object"])
    try:
        fip = get_one(ctx.conn, "network", f"/floatingips/{item.id}", "floatingip", ctx.options.retry)
        if fip is None:
            return Finished(GONE, "already gone")
        if not fip.get("port_id"):
            return Finished(GONE, "already disassociated")
        body = {"floatingip": {"port_id": None}}
        call(ctx.options.retry, lambda: send(ctx.conn, "network", "PUT", f"/floatingips/{item.id}", body),
             retry_conflicts=True)
    except Exception as exc:
        if http_status(exc) == 404:
            return Finished(GONE, "already gone")
        raise
    ctx.journal.write("result", sync=False, step=item.step, kind=item.kind, id=item.id, result="done")
    return Finished(DONE, "kept: user-allocated floating IP, disassociated")


class LoadBalancerWatch:
    """The cluster's LBs as of the last listing, refreshed at most once per poll for every waiter."""

    def __init__(self, ctx: Context, inv: Inventory) -> None:
        self.ctx = ctx
        self.tag = inv.tag
        self.has_tags = inv.octavia_has_tags
        # LBs the tagged listing misses (tagging failed; KuryrLoadBalancer evidence). Before Octavia 2.5
        # the listing is unfiltered and covers every LB.
        self.untagged = {lb["id"] for lb in inv.load_balancers
                         if self.has_tags and inv.tag not in (lb.get("tags") or [])}
        self._lock = threading.Lock()
        self._cache: dict[str, dict[str, Any]] = {}
        self._cache_time = float("-inf")

    def lookup(self, lb_id: str) -> dict[str, Any] | None:
        """The LB as of a listing at most one poll interval old (no GET per LB)."""
        with self._lock:
            fresh = time.monotonic() - self._cache_time < self.ctx.options.poll_interval
        found = self._cache if fresh and lb_id not in self.untagged else self.listing({lb_id})
        return found.get(lb_id)

    def listing(self, ids: set[str]) -> dict[str, dict[str, Any]]:
        policy = self.ctx.options.retry
        with self._lock:
            # With tags the listing is just the cluster's LBs; before Octavia 2.5 it is every LB.
            params = {"tags": self.tag} if self.has_tags else None
            lbs = list_raw(self.ctx.conn, "load_balancer", "/lbaas/loadbalancers", "loadbalancers", policy, params)
            found = {lb["id"]: lb for lb in lbs}
            for lb_id in (ids & self.untagged) - set(found):
                one = get_one(self.ctx.conn, "load_balancer", f"/lbaas/loadbalancers/{lb_id}", "loadbalancer", policy)
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


def cascade_delete(ctx: Context, watch: LoadBalancerWatch, item: PlanItem) -> Outcome:
    policy = ctx.options.retry
    lb = watch.lookup(item.id)
    if lb is None:
        return Finished(GONE, "already gone")
    status = lb.get("provisioning_status")
    if status == "PENDING_DELETE":
        return Waiting("lb-gone", item.id, ctx.options.lb_timeout, "for the LB to be deleted")
    if status in PENDING:
        # Immutable until Octavia finishes what it is doing: come back when it has settled.
        return Waiting("lb-settled", item.id, ctx.options.lb_timeout, f"for the LB to leave {status}", retry=True)
    ctx.journal.write("delete", step=item.step, kind=item.kind, id=item.id, action="cascade-delete", object=lb,
                      related=item.params.get("related"))
    try:
        call(policy, lambda: send(ctx.conn, "load_balancer", "DELETE", f"/lbaas/loadbalancers/{item.id}",
                                  params={"cascade": "true"}), retry_conflicts=False)
    except Exception as exc:
        code = http_status(exc)
        if code == 404:
            return Finished(GONE, "already gone")
        if code == 409:  # went PENDING_* between our read and the delete
            return Waiting("lb-settled", item.id, ctx.options.lb_timeout, "for the LB to settle", retry=True)
        raise
    ctx.journal.write("result", sync=False, step=item.step, kind=item.kind, id=item.id, result="deleting")
    return Waiting("lb-gone", item.id, ctx.options.lb_timeout, "for the LB to be deleted")
