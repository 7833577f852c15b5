"""`kuryr-migrate status`: where the cluster is: phase, pools, nodes rebooted, Kuryr leftovers."""

from __future__ import annotations

import json
from typing import Any

from kuryr_cleanup import cleanup, render
from kuryr_cleanup.commands.base import UI, Result
from kuryr_cleanup.commands.migrate import migration_context
from kuryr_cleanup.context import Context
from kuryr_cleanup.errors import ExitCode
from kuryr_cleanup.migration import facts, reboot
from kuryr_cleanup.migration.base import MigrationOptions
from kuryr_cleanup.plan import StepInfo


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
    doc["kuryrLeftovers"] = {
        "actionable": len(plan.actionable()),
        "byStep": {s.id: sum(1 for i in items if i.actionable) for s, items in plan.by_step()
                   if any(i.actionable for i in items)},
        "steps": [{"id": s.id, "title": s.title, "summary": render.step_summary(items)}
                  for s, items in plan.by_step() if any(i.actionable for i in items)],
    }
    return doc


def _migration(value: Any) -> str:
    if not value:
        return "not set"
    if isinstance(value, dict) and value.get("networkType"):
        return f"to {value['networkType']}"
    return json.dumps(value, sort_keys=True)


def status_text(doc: dict[str, Any]) -> str:
    nodes = doc["nodes"]
    total = nodes["total"]
    rebooted = ("unknown (no boot IDs recorded in this run directory)" if nodes["rebootedSinceSwitch"] is None
                else f"{nodes['rebootedSinceSwitch']}/{total}")
    left = doc["kuryrLeftovers"]
    network = doc["networkType"]
    types = (f"{network['status'] or 'unknown'}" if network["spec"] == network["status"]
             else f"{network['status'] or 'unknown'} (spec: {network['spec'] or 'unknown'})")
    lines = [
        f"Cluster {doc['infraID']}: {doc['phase']}",
        f"  network type: {types}; spec.migration: {_migration(doc['migration'])}",
        "  pools: " + (", ".join(f"{p['name']} {p['updated']}/{p['machines']} updated"
                                 + (" (Degraded)" if p["degraded"] else "") for p in doc["pools"]) or "none"),
        f"  nodes: {nodes['ready']}/{total} Ready; rebooted since the switch: {rebooted}",
    ]
    if doc.get("lastStep"):
        lines.append(f"  last migration step done in this run directory: {doc['lastStep']}")
    if left["actionable"]:
        lines.append(f"  Kuryr leftovers: {left['actionable']:,} changes and deletions left")
        for step in left["steps"]:
            title = render.step_title(StepInfo(step["id"], step["title"]))
            lines += render.wrap(f"    {step['id']:<4} {title}: {step['summary']}", 9)
    else:
        lines.append("  Kuryr leftovers: none")
    return "\n".join(lines)


def status_command(ctx: Context, ui: UI) -> Result:
    doc = status_document(ctx, ui)
    return Result(ExitCode.OK, doc, status_text(doc))
