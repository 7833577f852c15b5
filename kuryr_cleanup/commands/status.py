"""`kuryr-migrate status`: where the cluster is: phase, pools, nodes rebooted, Kuryr leftovers."""

from __future__ import annotations

from typing import Any

from kuryr_cleanup import cleanup, render
from kuryr_cleanup.commands.base import UI, Result
from kuryr_cleanup.commands.migrate import migration_context
from kuryr_cleanup.context import Context
from kuryr_cleanup.errors import ExitCode
from kuryr_cleanup.migration import facts, reboot
from kuryr_cleanup.migration.base import MigrationOptions


def status_document(ctx: Context, ui: UI) -> dict[str, Any]:
    ctx.connect()
    mctx = migration_context(ctx, ui, MigrationOptions())
    state = facts.network_state(mctx)
    pools = facts.pools(mctx)
    nodes = facts.nodes(mctx)
    recorded = (ctx.state.get(reboot.STATE_KEY) or {}).get("boot_ids")
    if recorded:
        rebooted: int | None = sum(1 for p in reboot.progress(mctx, nodes) if p.rebooted)
    elif state.finished:
        rebooted = len(nodes)
    else:  # switched without records here: the cluster can't tell (status.networkType is no proof)
        rebooted = 0 if not state.switched else None
    doc: dict[str, Any] = {
        "apiVersion": render.API_VERSION, "kind": "Status", "infraID": ctx.infra_id, "phase": state.phase,
        "networkType": {"spec": state.spec_type, "status": state.status_type}, "migration": state.migration,
        "pools": [{"name": p.name, "updated": p.updated_machines, "machines": p.machines, "settled": p.settled,
                   "degraded": p.degraded} for p in pools],
        "nodes": {"total": len(nodes), "ready": sum(1 for n in nodes if facts.node_ready(n)),
                  "rebootedSinceSwitch": rebooted},
        "lastStep": mctx.step_state().get("last_step"),
    }
    ctx.check_openstack()
    plan = cleanup.make_plan(cleanup.discover(ctx))
    doc["kuryrLeftovers"] = {"actionable": len(plan.actionable()),
                             "byStep": {s.id: sum(1 for i in items if i.actionable)
                                        for s, items in plan.by_step() if any(i.actionable for i in items)}}
    return doc


def status_text(doc: dict[str, Any]) -> str:
    nodes = doc["nodes"]
    rebooted = "unknown" if nodes["rebootedSinceSwitch"] is None else nodes["rebootedSinceSwitch"]
    left = doc["kuryrLeftovers"]
    return "\n".join([
        f"Cluster {doc['infraID']}: {doc['phase']}",
        f"  network type: spec {doc['networkType']['spec']}, status {doc['networkType']['status']}; "
        f"spec.migration {doc['migration']}",
        "  pools: " + ", ".join(f"{p['name']} {p['updated']}/{p['machines']} updated"
                                + (" (Degraded)" if p["degraded"] else "") for p in doc["pools"]),
        f"  nodes: {nodes['ready']}/{nodes['total']} Ready, rebooted since the switch {rebooted}/{nodes['total']}",
        f"  Kuryr leftovers: {left['actionable']} change(s) and deletion(s) left"
        + (" (" + ", ".join(f"{k} {v}" for k, v in left["byStep"].items()) + ")" if left["byStep"] else ""),
    ])


def status_command(ctx: Context, ui: UI) -> Result:
    doc = status_document(ctx, ui)
    return Result(ExitCode.OK, doc, status_text(doc))
