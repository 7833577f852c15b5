"""Floating IPs on the VIPs of Kuryr's load balancers (released or disassociated in B3).

Kuryr allocates one for a LoadBalancer Service when the admin gave none
(`service_pub_ip_info.alloc_method == pool`, FIP description `kuryr_lb`): that one is released.
One the admin allocated (`user`) is only disassociated, so it survives for reuse. The vendor procedure
deletes the LBs and leaks Kuryr's floating IPs.
"""

from __future__ import annotations

from typing import Any

from kuryr_cleanup.engine import Finished, Outcome
from kuryr_cleanup.inventory import Inventory
from kuryr_cleanup.kuryr import KURYR_FIP_DESCRIPTION
from kuryr_cleanup.openstack_api import chunks, get_one, send
from kuryr_cleanup.plan import DONE, GONE, KEPT, PlanItem
from kuryr_cleanup.resources.base import Action, Reader, ResourceKind, Run, journaled


# -- discovery -------------------------------------------------------------------------------------------
def discover(reader: Reader, inv: Inventory) -> None:
    """The FIPs on the VIP ports of the LBs found (one listing per batch of ports), and Kuryr's own
    FIPs whose LB is already gone (a partial earlier cleanup)."""
    lbs = {lb["id"] for lb in inv.load_balancers}
    vip_ports = {str(lb["vip_port_id"]) for lb in inv.load_balancers if lb.get("vip_port_id")}
    batches = [{"port_id": batch} for batch in chunks(sorted(vip_ports))]
    for listed in reader.list_each("network", "/floatingips", batches):
        for fip in listed:
            inv.floating_ips_by_port[fip["port_id"]] = fip
    seen = {f["id"] for f in inv.floating_ips_by_port.values()}
    recorded = {str(v["fip_id"]) for lb_id, v in inv.kuryr_lbs.items()
                if v.get("alloc_method") == "pool" and v.get("fip_id") and lb_id not in lbs}
    inv.orphan_kuryr_fips = list(reader.by_ids("network", "/floatingips", recorded - seen).values())


# -- actions ---------------------------------------------------------------------------------------------
def release(run: Run, item: PlanItem) -> Outcome:
    return journaled(run, item, lambda: send(run.conn, "network", "DELETE", f"/floatingips/{item.id}"))


def disassociate(run: Run, item: PlanItem) -> Outcome:
    fip = get_one(run.conn, "network", f"/floatingips/{item.id}", "floatingip", run.policy)
    if fip is None:
        return Finished(GONE, "already gone")
    if not fip.get("port_id"):
        return Finished(GONE, "already disassociated")
    body = {"floatingip": {"port_id": None}}
    outcome = journaled(run, item, lambda: send(run.conn, "network", "PUT", f"/floatingips/{item.id}", body),
                        event="change", obj=fip)
    if outcome.state == DONE:
        return Finished(DONE, "kept: user-allocated floating IP, disassociated")
    return outcome


RELEASE = Action("floating IP", "release", "release", release)
DISASSOCIATE = Action("floating IP", "disassociate", "disassociate", disassociate)


# -- planning --------------------------------------------------------------------------------------------
def plan_for_load_balancer(step: str, fip: dict[str, Any], cr: dict[str, Any], lb: dict[str, Any]) -> PlanItem:
    address = fip.get("floating_ip_address") or ""
    # Released only when the address itself says Kuryr allocated it (description kuryr_lb, S7: the
    # KuryrLoadBalancer's record is a pointer, not proof) and the record does not say the user did;
    # anything else (a user's FIP later moved onto the same VIP) is only disassociated and survives.
    method = cr.get("alloc_method")
    recorded = method == "pool" and fip["id"] == cr.get("fip_id")
    described = method in ("pool", None) and fip.get("description") == KURYR_FIP_DESCRIPTION
    if described:
        evidence = f"on the VIP of LB {lb['id']}; allocated by Kuryr (description {KURYR_FIP_DESCRIPTION}"
        evidence += ", KuryrLoadBalancer service_pub_ip_info)" if recorded else ")"
        return RELEASE.item(step, fip["id"], address, evidence, object=fip)
    return DISASSOCIATE.item(
        step, fip["id"], address,
        f"on the VIP of LB {lb['id']}; allocated by the user (alloc_method {cr.get('alloc_method') or 'unknown'})",
        reason="kept: user-allocated floating IP, only disassociated", object=fip,
    )


def plan_orphans(step: str, inv: Inventory) -> list[PlanItem]:
    """Kuryr's floating IPs whose LB is gone already: released unless someone has put them to use."""
    by_fip = {str(v.get("fip_id")): v for v in inv.kuryr_lbs.values() if v.get("fip_id")}
    items = []
    for fip in sorted(inv.orphan_kuryr_fips, key=lambda f: f.get("floating_ip_address") or ""):
        cr = by_fip.get(fip["id"], {})
        address = fip.get("floating_ip_address") or ""
        evidence = (f"allocated by Kuryr for KuryrLoadBalancer {cr.get('kuryrloadbalancer')} (alloc_method pool); "
                    f"its load balancer is gone")
        if fip.get("port_id"):
            items.append(RELEASE.item(step, fip["id"], address, evidence, KEPT,
                                      f"kept: now associated with port {fip['port_id']}"))
        elif fip.get("description") != KURYR_FIP_DESCRIPTION:
            items.append(RELEASE.item(step, fip["id"], address, evidence, KEPT,
                                      f"kept: a KuryrLoadBalancer names it, but it is not described "
                                      f"{KURYR_FIP_DESCRIPTION!r} as the floating IPs Kuryr allocates are"))
        else:
            items.append(RELEASE.item(step, fip["id"], address, evidence, object=fip))
    return items


# The FIP items belong to the load balancers' step (B3): a FIP goes before its LB.
KIND = ResourceKind("floating IPs", discover=discover)
