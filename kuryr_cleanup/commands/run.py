"""`kuryr-migrate run`: the whole job as one resumable flow: the migration (A0-A9), then the cleanup
(B1-B18) through the same code `kuryr-migrate cleanup` uses. `run --plan` shows both and sends no
write request; the cleanup never starts unless A8 passed.
"""

from __future__ import annotations

import contextlib
import time

from kuryr_cleanup import cleanup, lock, render, report_html, script_export
from kuryr_cleanup.commands import cleanup as cleanup_command
from kuryr_cleanup.commands.base import UI, Result, interruptible
from kuryr_cleanup.commands.migrate import (
    migrate,
    migration_context,
    migration_plan,
    plan_result,
    reboot_summary,
    reboot_summary_text,
)
from kuryr_cleanup.context import Context
from kuryr_cleanup.errors import ExitCode
from kuryr_cleanup.migration import facts
from kuryr_cleanup.migration.base import MigrationOptions
from kuryr_cleanup.plan import Plan


def run_command(ctx: Context, ui: UI, options: MigrationOptions, *, plan_only: bool, yes: bool,
                show_plan: bool = False) -> Result:
    mctx = migration_context(ctx, ui, options)
    started = time.monotonic()
    with interruptible():
        ctx.connect()
        mplan, plan = migration_plan(mctx)
        inv = cleanup.discover(ctx)
        cleanup_plan = cleanup.make_plan(inv)
        if plan_only or (show_plan and not ui.json_output):
            whole = Plan(ctx.infra_id, plan.steps + cleanup_plan.steps, plan.items + cleanup_plan.items,
                         plan.notes + cleanup_plan.notes)
            if not facts.network_state(mctx).finished:
                whole.notes.append("the cleanup part (B) is the inventory as it stands now, on a cluster still "
                                   "using Kuryr; it runs only after the migration has been verified (A8)")
            shown = plan_result(whole, "Run plan", mplan.problems, "RunPlan", details=ui.details)
            if ctx.options.output == "html":
                shown.text = report_html.page(whole, ctx.identity(), title="Run plan", problems=mplan.problems,
                                              options=options)
            elif ctx.options.output == "script":
                shown.text = script_export.run_script(plan, cleanup_plan, options, ctx.identity(), mplan.problems)
            if plan_only:
                return shown
            ui.show(shown.text)
        with contextlib.ExitStack() as stack:
            outcomes = migrate(mctx, ui, mplan, plan, yes, "migrate and then delete what is listed above",
                               cleanup_plan, plan_shown=show_plan and not ui.json_output,
                               hold=lambda: stack.enter_context(lock.held(ctx, "run")))
            ui.say(reboot_summary_text(mctx) or "B    the migration is complete; cleaning up Kuryr's leftovers")
            # Rediscover: the plan above was made before the migration; the run re-validates each item.
            inv = cleanup.discover(ctx)
            cleanup_plan = cleanup.make_plan(inv)
            cleanup.check_cluster_migrated(inv, force=False)
            if not cleanup_plan.actionable():
                result = None
                ui.say("B    nothing to clean up: no Kuryr resource of this cluster is left")
            else:
                with lock.held(ctx, "run"):
                    result = cleanup_command.execute_plan(ctx, ui, inv, cleanup_plan)
    elapsed = time.monotonic() - started
    ok = result is None or (cleanup_command.finished(result) and not result.interrupted)
    cleanup_doc = render.plan_document(
        cleanup_plan if result is None else Plan(cleanup_plan.infra_id, cleanup_plan.steps, result.items,
                                                 cleanup_plan.notes), "CleanupResult")
    document = {"apiVersion": render.API_VERSION, "kind": "RunResult", "infraID": ctx.infra_id, "ok": ok,
                "migration": {"steps": [o.__dict__ for o in outcomes]}, "reboot": reboot_summary(mctx),
                "cleanup": cleanup_doc, "elapsedSeconds": round(elapsed, 3)}
    lines = []
    if result is not None:
        lines.append(render.summary_table(result.items, result.elapsed, result.interrupted))
    code = cleanup_command.exit_code(result) if result is not None else ExitCode.OK
    if ok:
        lines.append(f"Done in {elapsed:.1f} s: cluster {ctx.infra_id} is on OVN-Kubernetes and Kuryr's resources are "
                     f"gone.")
    interrupted = result is not None and result.interrupted
    return Result(code, document, cleanup_command.end_lines("\n".join(lines), ctx, interrupted))
