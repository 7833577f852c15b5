"""`kuryr-migrate migrate`: the migration to OVN-Kubernetes (SPEC A0-A9, including the reboots), resumable.

Also what `run` shares with it: the migration context, the etcd-backup question, the reboot summary.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kuryr_cleanup import lock, render, script_export
from kuryr_cleanup.commands.base import UI, Result, interruptible, run_dir_line
from kuryr_cleanup.context import Context
from kuryr_cleanup.errors import ExitCode, UsageError
from kuryr_cleanup.migration import facts, reboot, runner
from kuryr_cleanup.migration.base import MigrationContext, MigrationOptions, PreflightFailed
from kuryr_cleanup.plan import Plan


def migration_context(ctx: Context, ui: UI, options: MigrationOptions) -> MigrationContext:
    return MigrationContext(ctx, options, say=ui.say)


def confirm_etcd_backup(mctx: MigrationContext, ui: UI, yes: bool) -> None:
    """The vendor's precondition the tool can't check: a recent etcd backup exists (asked once per run dir)."""
    if mctx.options.etcd_backup_confirmed or mctx.step_state().get("etcd_backup_confirmed"):
        mctx.remember(etcd_backup_confirmed=True)
        return
    if facts.network_state(mctx).switched:
        return  # past the switch: a backup taken now would not be a pre-migration one anyway
    if yes:
        raise UsageError("confirm that a recent etcd backup exists with --etcd-backup-confirmed (--yes does not "
                         "imply it): nothing was changed")
    answer = ui.ask("Does a recent etcd backup of this cluster exist?")
    if answer is None:
        raise UsageError("no etcd backup confirmation (pass --etcd-backup-confirmed): nothing was changed")
    if not answer:
        raise UsageError("take an etcd backup first (see the runbook), then run again: nothing was changed")
    mctx.remember(etcd_backup_confirmed=True)


def plan_result(plan: Plan, title: str, problems: list[str], kind: str, extra: dict[str, Any] | None = None,
                details: bool = False) -> Result:
    """A plan as the admin reads it (with what preflight would refuse) and as a document; exit 3 when
    preflight would refuse."""
    text = render.plan_table(plan, title, details=details)
    if problems:
        text += "\nPreflight would refuse to start:\n" + "\n".join(f"  - {p}" for p in problems)
    document = render.plan_document(plan, kind, {"preflightProblems": problems, **(extra or {})})
    return Result(PreflightFailed.exit_code if problems else ExitCode.OK, document, text)


def migration_plan(mctx: MigrationContext) -> tuple[runner.MigrationPlan, Plan]:
    mplan = runner.plan_migration(mctx)
    return mplan, runner.as_plan(mctx.ctx.infra_id, mplan)


def migrate(mctx: MigrationContext, ui: UI, mplan: runner.MigrationPlan, plan: Plan, yes: bool, what: str,
            cleanup_plan: Plan | None = None, plan_shown: bool = False,
            hold: Callable[[], object] | None = None) -> list[runner.StepOutcome]:
    """Confirm (unless --yes or nothing is left), then run every step that is not done."""
    if mplan.problems:
        raise PreflightFailed(mplan.problems)
    cleanup_left = cleanup_plan is not None and bool(cleanup_plan.actionable())
    if not yes and (not mplan.done or cleanup_left):
        if not plan_shown:
            ui.show(render.plan_table(plan, "Migration plan"))
            if cleanup_plan is not None:
                ui.show(render.plan_table(cleanup_plan, "Then the cleanup (as the inventory stands now)"))
        ui.confirm(mctx.ctx.infra_id, what)
    if mplan.done:
        return runner.run_steps(mctx)  # checks only: nothing to change, no lock to take
    confirm_etcd_backup(mctx, ui, yes)
    if hold is not None:
        hold()  # the caller holds the lock beyond the migration (`run` goes on with the cleanup)
    with lock.held(mctx.ctx, "migrate"):
        ui.say(run_dir_line(mctx.ctx))
        return runner.run_steps(mctx)


def reboot_summary(mctx: MigrationContext, key: str = reboot.STATE_KEY) -> dict[str, Any]:
    data = mctx.ctx.state.get(key) or {}
    actual = None
    if data.get("started_at") and data.get("finished_at"):
        actual = round(float(data["finished_at"]) - float(data["started_at"]), 3)
    return {"expectedSeconds": data.get("expected_seconds"), "actualSeconds": actual,
            "requested": sorted((data.get("requests") or {}).keys()), "strategy": mctx.options.strategy,
            "method": mctx.options.method}


def reboot_summary_text(mctx: MigrationContext) -> str:
    summary = reboot_summary(mctx)
    if summary["actualSeconds"] is None:
        return ""
    return (f"Reboot outage: expected about {summary['expectedSeconds'] or 0:.0f} s, took "
            f"{summary['actualSeconds']:.1f} s ({len(summary['requested'])} node(s)).")


def migrate_command(ctx: Context, ui: UI, options: MigrationOptions, *, plan_only: bool, yes: bool) -> Result:
    mctx = migration_context(ctx, ui, options)
    with interruptible():
        ctx.connect()
        mplan, plan = migration_plan(mctx)
        if plan_only:
            shown = plan_result(plan, "Migration plan", mplan.problems, "MigrationPlan", details=ui.details)
            if ctx.options.output == "script":
                shown.text = script_export.run_script(plan, None, options, ctx.identity(), mplan.problems)
            return shown
        outcomes = migrate(mctx, ui, mplan, plan, yes, "run the migration listed above")
    document = {"apiVersion": render.API_VERSION, "kind": "MigrationResult", "infraID": ctx.infra_id, "ok": True,
                "steps": [o.__dict__ for o in outcomes], "reboot": reboot_summary(mctx)}
    return Result(ExitCode.OK, document,
                  "Migration finished: the cluster is on OVN-Kubernetes. " + reboot_summary_text(mctx)
                  + "\n" + run_dir_line(ctx))
