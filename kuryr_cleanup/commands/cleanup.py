"""`kuryr-migrate cleanup`: discover, plan, confirm, run, report (SPEC B1-B18)."""

from __future__ import annotations

import gc

from kuryr_cleanup import cleanup, lock, render, report_html, script_export
from kuryr_cleanup.commands.base import UI, Result, run_dir_line, run_engine_with_signals
from kuryr_cleanup.context import Context
from kuryr_cleanup.engine import RunResult
from kuryr_cleanup.errors import ExitCode
from kuryr_cleanup.inventory import Inventory
from kuryr_cleanup.plan import PLANNED, Plan


def plan_result(ctx: Context, ui: UI, plan: Plan) -> Result:
    """The plan in the form asked for: the table (summary, details on request), or a review artefact:
    the self-contained HTML page, or the equivalent `oc`/`openstack` script."""
    document = render.plan_document(plan)
    output = ctx.options.output
    if output == "html":
        return Result(ExitCode.OK, document, report_html.page(plan, ctx.identity(), title="Cleanup plan"))
    if output == "script":
        return Result(ExitCode.OK, document, script_export.script(plan, ctx.identity()))
    return Result(ExitCode.OK, document, render.plan_table(plan, details=ui.details))


def cleanup_command(ctx: Context, ui: UI, *, plan_only: bool, yes: bool, force: bool) -> Result:
    ctx.connect()
    # The inventory and the plan (millions of objects at scale, none in a reference cycle) live until
    # the run ends: the cyclic garbage collector's full collections would scan them again and again
    # while they are built (9 full collections at M), and during the run. Built without it, then
    # frozen out of its sight.
    gc.disable()
    try:
        inv = cleanup.discover(ctx)
        plan = cleanup.make_plan(inv)
    finally:
        gc.freeze()
        gc.enable()
    if plan_only:
        return plan_result(ctx, ui, plan)
    cleanup.check_cluster_migrated(inv, force)
    if not plan.actionable():
        return Result(ExitCode.OK, render.plan_document(plan, "CleanupResult", {"ok": True}),
                      render.plan_table(plan) + "\nNothing to do: no Kuryr resource of this cluster is left.")
    if not yes:
        # The summary is the last thing above the prompt (with --details, it is repeated after them).
        ui.show(render.plan_table(plan, details=ui.details))
        ui.confirm(ctx.infra_id, "delete what is listed above")
    with lock.held(ctx, "cleanup"):
        ui.say(run_dir_line(ctx))
        result = execute_plan(ctx, ui, inv, plan)
    done = report(plan, result)
    done.text = end_lines(done.text, ctx, result.interrupted)
    return done


def end_lines(text: str, ctx: Context, interrupted: bool) -> str:
    """What a mutating command prints last: where the journal is, then, after an interruption, how to
    resume (the very last line, where the eye lands)."""
    text += "\n" + run_dir_line(ctx)
    if interrupted:
        text += "\n" + render.RESUME_LINE
    return text


def execute_plan(ctx: Context, ui: UI, inv: Inventory, plan: Plan) -> RunResult:
    progress = ui.progress(plan)
    try:
        return run_engine_with_signals(
            lambda hook: cleanup.execute(ctx, inv, plan, on_change=progress, engine_hook=hook)
        )
    finally:
        progress.close()


def finished(result: RunResult) -> bool:
    return result.ok and not any(i.state == PLANNED for i in result.items)


def exit_code(result: RunResult) -> int:
    if result.interrupted:
        return ExitCode.INTERRUPTED
    return ExitCode.OK if finished(result) else ExitCode.LEFT


def report(plan: Plan, result: RunResult) -> Result:
    done_plan = Plan(plan.infra_id, plan.steps, result.items, plan.notes)
    document = render.plan_document(done_plan, "CleanupResult", {"ok": finished(result),
                                                                   "interrupted": result.interrupted,
                                                                   "elapsedSeconds": round(result.elapsed, 3)})
    return Result(exit_code(result), document, render.summary_table(result.items, result.elapsed, result.interrupted))
