"""Security groups (B13 pods group, B16 network-policy groups), subnet pools (B14), the router (B18).

B16 is where the vendor procedure is unsafe: it deletes every group whose description starts with
`Kuryr-Kubernetes Network Policy` in the project, other clusters' included. Here a group is deleted
only with evidence that it is this cluster's (S2); the others are listed in the plan with the reason
they are left alone.
"""

from __future__ import annotations

import functools
from typing import Any

from kuryr_cleanup.context import Context
from kuryr_cleanup.engine import Finished, Outcome
from kuryr_cleanup.inventory import (
    INSTALLER_ROUTER_DESCRIPTION,
    NP_SG_DESCRIPTION,
    ROUTER_INTERFACE_OWNERS,
    Inventory,
    cno_name,
    ownership,
)
from kuryr_cleanup.openstack_api import list_raw, send
from kuryr_cleanup.plan import KEPT, PlanItem
from kuryr_cleanup.resources.deletion import delete_journaled
from kuryr_cleanup.resources.networks import remove_router_interface
from kuryr_cleanup.retrying import call, http_status


def plan_pods_security_group(inv: Inventory) -> list[PlanItem]:
    items = []
    prefixed = cno_name(inv.infra_id, "kuryr-pods-security-group")
    for sg in inv.security_groups:
        name = sg.get("name") or ""
        if name == prefixed:
            own = ownership(sg, inv.tag, cno=prefixed)
        elif name == "kuryr-pods-security-group":  # named before mid-2019: only with our tag
            own = ownership(sg, inv.tag)
        else:
            continue
        items.append(PlanItem("B13", "security group", sg["id"], name, "delete", own.evidence, own.state, own.reason,
                              params={"object": sg}))
    return items


def plan_policy_security_groups(inv: Inventory) -> list[PlanItem]:
    items = []
    for sg in sorted(inv.security_groups, key=lambda s: (s.get("name") or "", s["id"])):
        described = (sg.get("description") or "").startswith(NP_SG_DESCRIPTION)
        named_in = inv.np_security_groups.get(sg["id"])
        if not described and not named_in:
            continue
        own = ownership(sg, inv.tag, named_in=named_in and f"KuryrNetworkPolicy {named_in}")
        items.append(PlanItem("B16", "security group", sg["id"], sg.get("name") or "", "delete", own.evidence,
                              own.state, own.reason, params={"object": sg}))
    return items


def delete_security_group(ctx: Context, item: PlanItem) -> Outcome:
    return delete_journaled(ctx, item, lambda: send(ctx.conn, "network", "DELETE", f"/security-groups/{item.id}"))


def plan_subnet_pools(inv: Inventory) -> list[PlanItem]:
    items = []
    cno = cno_name(inv.infra_id, "kuryr-pod-subnetpool")
    for pool in sorted(inv.subnet_pools, key=lambda p: p.get("name") or ""):
        own = ownership(pool, inv.tag, cno=cno if pool.get("name") == cno else None)
        items.append(PlanItem("B14", "subnet pool", pool["id"], pool.get("name") or "", "delete", own.evidence,
                              own.state, own.reason, params={"object": pool}))
    return items


def delete_subnet_pool(ctx: Context, item: PlanItem) -> Outcome:
    # A pool still in use answers 400 SubnetPoolDeleteError, not 409: nothing to wait for, since the
    # networks using it were deleted by the steps this one depends on.
    return delete_journaled(ctx, item, lambda: send(ctx.conn, "network", "DELETE", f"/subnetpools/{item.id}"))


def kuryr_subnet_ids(inv: Inventory) -> set[str]:
    subnets = {str(v["subnet_id"]) for v in inv.kuryr_networks.values() if v.get("subnet_id")}
    subnets |= {s["id"] for s in inv.service_subnets}
    for net_id in inv.networks:
        for port in inv.ports_by_network.get(net_id, []):
            subnets |= {ip["subnet_id"] for ip in port.get("fixed_ips") or []}
    return subnets


def foreign_interfaces(router_ports: list[dict[str, Any]], kuryr_subnets: set[str]) -> list[str]:
    """Subnets the router still serves that are not Kuryr's (the installer's node subnet, a user's)."""
    foreign = []
    for port in router_ports:
        if (port.get("device_owner") or "") not in ROUTER_INTERFACE_OWNERS:
            continue
        for ip in port.get("fixed_ips") or []:
            if ip["subnet_id"] not in kuryr_subnets:
                foreign.append(ip["subnet_id"])
    return sorted(set(foreign))


def plan_router(inv: Inventory) -> list[PlanItem]:
    items = []
    kuryr_subnets = kuryr_subnet_ids(inv)
    for router_id in inv.router_ids:
        router = inv.routers.get(router_id)
        if router is None:
            continue
        name = router.get("name") or ""
        evidence = "named in KuryrNetwork status.routerId"
        own = ownership(router, inv.tag, named_in="KuryrNetwork status.routerId")
        if not own.ours:
            items.append(PlanItem("B18", "router", router_id, name, "delete", "", own.state, own.reason))
            continue
        if (router.get("description") or "") == INSTALLER_ROUTER_DESCRIPTION:
            items.append(PlanItem("B18", "router", router_id, name, "delete", evidence, KEPT,
                                  f"kept: the installer's router (description {INSTALLER_ROUTER_DESCRIPTION!r})"))
            continue
        foreign = foreign_interfaces(inv.router_ports.get(router_id, []), kuryr_subnets)
        if foreign:
            items.append(PlanItem("B18", "router", router_id, name, "delete", evidence, KEPT,
                                  f"kept: still serves subnets that are not Kuryr's ({', '.join(foreign)})"))
            continue
        items.append(PlanItem("B18", "router", router_id, name, "delete", evidence,
                              params={"object": router, "kuryr_subnets": sorted(kuryr_subnets)}))
    return items


def delete_router(ctx: Context, item: PlanItem) -> Outcome:
    """Re-check just before deleting: a router that gained a non-Kuryr interface since the plan is kept."""
    ports = list_raw(ctx.conn, "network", "/ports", "ports", ctx.options.retry, {"device_id": item.id})
    foreign = foreign_interfaces(ports, set(item.params.get("kuryr_subnets") or []))
    if foreign:
        return Finished(KEPT, f"kept: now serves subnets that are not Kuryr's ({', '.join(foreign)})")
    # Kuryr interfaces left by an earlier failure would make Neutron answer RouterInUse: remove them.
    for port in ports:
        if (port.get("device_owner") or "") in ROUTER_INTERFACE_OWNERS:
            for ip in port.get("fixed_ips") or []:
                ctx.journal.write("change", step=item.step, kind="router interface", id=f"{item.id}:{ip['subnet_id']}",
                                  action="remove-interface", object=port)
                try:
                    remove = functools.partial(remove_router_interface, ctx, item.id, ip["subnet_id"])
                    call(ctx.options.retry, remove, retry_conflicts=True)
                except Exception as exc:
                    if http_status(exc) != 404:
                        raise
    return delete_journaled(ctx, item, lambda: send(ctx.conn, "network", "DELETE", f"/routers/{item.id}"))
