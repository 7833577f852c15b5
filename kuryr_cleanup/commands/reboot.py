"""`kuryr-migrate reboot`: reboot every node not yet rebooted since the switch (SPEC R), resumable;
or, with `--node`, reboot chosen nodes again (the cure for a node whose pods are in error, A8)."""

from __future__ import annotations

from kuryr_cleanup import lock, render
from kuryr_cleanup.commands.base import UI, Result, interruptible, run_dir_line
from kuryr_cleanup.commands.migrate import migration_context, plan_result, reboot_summary
from kuryr_cleanup.context import Context
from kuryr_cleanup.errors import ExitCode, UsageError
from kuryr_cleanup.migration import facts, reboot
from kuryr_cleanup.migration.base import MigrationContext, MigrationOptions
from kuryr_cleanup.plan import Plan, StepInfo


def reboot_command(ctx: Context, ui: UI, options: MigrationOptions, *, plan_only: bool, yes: bool,
                   force: bool = False, nodes: tuple[str, ...] = ()) -> Result:
    mctx = migration_context(ctx, ui, options)
    with interruptible():
        ctx.connect(openstack=options.method == "nova")
        state = facts.network_state(mctx)
        if not state.switched:
            raise UsageError(f"the network type is not switched yet (phase: {state.phase}): the reboot is step A7, "
                             f"after the switch; run `kuryr-migrate migrate`")
        if nodes:
            return _reboot_again(mctx, ui, frozenset(nodes), plan_only=plan_only, yes=yes)
        if state.finished and not force:
            raise UsageError("the migration is finished (spec.migration is null): its reboots are done, and a "
                             "reboot now is not part of it; pass --node NAME to reboot chosen nodes again, or "
                             "--force to reboot every node anyway")
        if not (ctx.state.get(reboot.STATE_KEY) or {}).get("boot_ids"):
            ui.warn(f"WARNING: no boot IDs are recorded in the run directory {ctx.run_dir}: every node will be "
                    f"rebooted, including any that already rebooted since the switch. If the migration ran with "
                    f"another --run-dir, stop now and use that one.")
        items, notes = reboot.plan(mctx, "R")
        plan = Plan(ctx.infra_id, [StepInfo("R", "Reboot every node")], items, notes)
        if plan_only or not items:
            result = plan_result(plan, "Reboot plan", [], "RebootPlan", details=ui.details)
            if not items and not plan_only:
                result.text += "\nNothing to do: every node has rebooted since the switch."
            return result
        if not yes:
            ui.show(render.plan_table(plan, "Reboot plan"))
            ui.confirm(ctx.infra_id, "reboot the nodes listed above")
        with lock.held(ctx, "reboot"):
            ui.say(run_dir_line(ctx))
            done = reboot.run(mctx, "R")
    document = {"apiVersion": render.API_VERSION, "kind": "RebootResult", "infraID": ctx.infra_id, "ok": True,
                "rebooted": done.rebooted, "requestedNow": done.requested_now, **reboot_summary(mctx)}
    return Result(ExitCode.OK, document, run_dir_line(ctx))


def _reboot_again(mctx: MigrationContext, ui: UI, names: frozenset[str], *, plan_only: bool, yes: bool) -> Result:
    """Reboot the chosen nodes once more, whatever the migration's own record says, as safely as A7
    (Nova by default, rolling, the other control-plane nodes Ready first), even after A9."""
    ctx = mctx.ctx
    known = {facts.node_name(n) for n in facts.nodes(mctx)}
    unknown = sorted(names - known)
    if unknown:
        raise UsageError(f"no node named {', '.join(unknown)} in the cluster (oc get nodes): nothing was rebooted")
    resume = reboot.resumes_again(mctx, names)
    items, notes = reboot.plan(mctx, "R", key=reboot.AGAIN_KEY, only=names, fresh=not resume)
    plan = Plan(ctx.infra_id, [StepInfo("R", "Reboot the chosen nodes again")], items, notes)
    if plan_only or not items:
        return plan_result(plan, "Reboot plan", [], "RebootPlan", details=ui.details)
    if not yes:
        ui.show(render.plan_table(plan, "Reboot plan"))
        ui.confirm(ctx.infra_id, "reboot the nodes listed above")
    with lock.held(ctx, "reboot"):
        ui.say(run_dir_line(ctx))
        reboot.start_again(mctx, names)
        done = reboot.run(mctx, "R", key=reboot.AGAIN_KEY, only=names)
    document = {"apiVersion": render.API_VERSION, "kind": "RebootResult", "infraID": ctx.infra_id, "ok": True,
                "rebooted": done.rebooted, "requestedNow": done.requested_now,
                **reboot_summary(mctx, reboot.AGAIN_KEY)}
    return Result(ExitCode.OK, document, f"Rebooted again: {', '.join(sorted(done.rebooted))}.\n" + run_dir_line(ctx))
