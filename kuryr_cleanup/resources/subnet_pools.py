"""Subnet pools (B14): those carrying the cluster tag, and the CNO's `<infraID>-kuryr-pod-subnetpool`."""

from __future__ import annotations

from kuryr_cleanup.engine import Outcome
from kuryr_cleanup.inventory import Inventory
from kuryr_cleanup.kuryr import POD_SUBNETPOOL, cno_name
from kuryr_cleanup.openstack_api import send
from kuryr_cleanup.ownership import ownership
from kuryr_cleanup.plan import KEPT, PlanItem, Planned
from kuryr_cleanup.resources import networks
from kuryr_cleanup.resources.base import Action, Reader, ResourceKind, Run, Step, journaled


def _queries(reader: Reader, inv: Inventory) -> list[dict[str, str]]:
    return [reader.scoped({"tags": inv.tag}), reader.scoped({"name": cno_name(inv.infra_id, POD_SUBNETPOOL)})]


def prefetch(reader: Reader, inv: Inventory) -> None:
    for query in _queries(reader, inv):
        reader.start_list("network", "/subnetpools", query)


def discover(reader: Reader, inv: Inventory) -> None:
    by_tag, by_name = _queries(reader, inv)
    pools = {p["id"]: p for p in reader.list("network", "/subnetpools", by_tag)}
    for pool in reader.list("network", "/subnetpools", by_name):
        pools.setdefault(pool["id"], pool)
    inv.subnet_pools = list(pools.values())


def delete(run: Run, item: PlanItem) -> Outcome:
    # A pool still in use answers 400 SubnetPoolDeleteError, not 409: nothing to wait for, since the
    # networks using it were deleted by the steps this one depends on.
    return journaled(run, item, lambda: send(run.conn, "network", "DELETE", f"/subnetpools/{item.id}"))


DELETE = Action("subnet pool", "delete", "delete", delete)


def plan(inv: Inventory, planned: Planned) -> list[PlanItem]:
    items = []
    cno = cno_name(inv.infra_id, POD_SUBNETPOOL)
    for pool in sorted(inv.subnet_pools, key=lambda p: p.get("name") or ""):
        own = ownership(pool, inv.tag, cno=cno if pool.get("name") == cno else None)
        name = pool.get("name") or ""
        if not own.ours:
            items.append(DELETE.item("B14", pool["id"], name, own.evidence, own.state, own.reason))
            continue
        # The networks whose subnets were allocated from the pool must go first.
        users = {net_id for net_id, subnets in inv.subnets_by_network.items()
                 if any(s.get("subnetpool_id") == pool["id"] for s in subnets)}
        kept = sorted(i.name or i.id for i in (planned.get("network", n) for n in users)
                      if i is not None and i.state == KEPT)
        if kept:
            items.append(DELETE.item("B14", pool["id"], name, own.evidence, KEPT,
                                     f"kept: subnets of Kuryr networks that are kept use it ({', '.join(kept[:5])})"))
            continue
        after = [k for k in (planned.key("network", n) for n in sorted(users)) if k]
        items.append(DELETE.item("B14", pool["id"], name, own.evidence, after=after, object=pool))
    return items


KIND = ResourceKind(
    "subnet pools",
    steps=(Step("B14", "Subnet pools", networks.NETWORK_STEPS, plan, what="subnet pools",
                evidence="the cluster tag, or CNO name `<infraID>-kuryr-pod-subnetpool`"),),
    discover=discover,
    prefetch=prefetch,
)
