"""What `migrate`, `reboot`, `verify`, `status` and `run` do between parsing and exit codes.

`run` is one resumable flow: the migration (A0-A9), then the cleanup (B1-B18) through the same
functions `kuryr-migrate cleanup` uses. `run --plan` shows both and sends no write request. Each
function returns the exit code; errors the admin must act on are raised as KuryrMigrateError.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from kuryr_cleanup import cleanup, render
from kuryr_cleanup.context import Context
from kuryr_cleanup.errors import UsageError
from kuryr_cleanup.migration import facts, reboot, runner, verify
from kuryr_cleanup.migration.base import (
    Interrupted,
    MigrationContext,
    MigrationOptions,
    PreflightFailed,
)
from kuryr_cleanup.plan import Plan, StepInfo

EXIT_OK = 0
EXIT_FAILED = 1
Confirm = Callable[[Context, bool, str], None]

# Flags -> MigrationOptions fields (the CLI passes its kwargs; these are popped off).
_OPTION_FIELDS = tuple(MigrationOptions.__dataclass_fields__)


def migration_options(kwargs: dict[str, Any]) -> MigrationOptions:
    values = {name: kwargs.pop(name) for name in _OPTION_FIELDS if name in kwargs}
    if "ssh_options" in values:
        values["ssh_options"] = tuple(values["ssh_options"] or ())
    for name in list(values):
        if values[name] is None and MigrationOptions.__dataclass_fields__[name].default is not None:
            del values[name]
    return MigrationOptions(**values)


class Output:
    """Progress lines: stdout for tables, stderr when stdout carries a JSON document."""

    def __init__(self, json_output: bool) -> None:
        self.json_output = json_output

    def __call__(self, line: str) -> None:
        click.echo(line, err=self.json_output)

    def doc(self, document: dict[str, Any]) -> None:
        click.echo(render.to_json(document))


def make_migration_context(ctx: Context, options: MigrationOptions) -> tuple[MigrationContext, Output]:
    out = Output(ctx.options.output == "json")
    return MigrationContext(ctx, options, say=out), out


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Ctrl-C leaves the state and journal as they are: the same command resumes."""
    try:
        yield
    except KeyboardInterrupt as exc:
        raise Interrupted("interrupted: run the same command again to resume (state and journal are kept)") from exc


def confirm_etcd_backup(mctx: MigrationContext, yes: bool) -> None:
    """The vendor's precondition the tool can't check: a recent etcd backup exists (asked once per run dir)."""
    if mctx.options.etcd_backup_confirmed or mctx.step_state().get("etcd_backup_confirmed"):
        mctx.remember(etcd_backup_confirmed=True)
        return
    state = facts.network_state(mctx)
    if state.switched:
        return  # past the switch: a backup taken now would not be a pre-migration one anyway
    if yes:
        raise UsageError("confirm that a recent etcd backup exists with --etcd-backup-confirmed (--yes does not "
                         "imply it): nothing was changed")
    try:
        ok = click.confirm("Does a recent etcd backup of this cluster exist?", default=False, err=True)
    except click.exceptions.Abort as exc:
        raise UsageError("no etcd backup confirmation (pass --etcd-backup-confirmed): nothing was changed") from exc
    if not ok:
        raise UsageError("take an etcd backup first (see the runbook), then run again: nothing was changed")
    mctx.remember(etcd_backup_confirmed=True)


def _print_plan(out: Output, plan: Plan, title: str, problems: list[str], extra: dict[str, Any] | None = None,
                kind: str = "RunPlan") -> None:
    if out.json_output:
        out.doc(render.plan_document(plan, kind, {"preflightProblems": problems, **(extra or {})}))
        return
    click.echo(render.plan_table(plan, title))
    if problems:
        click.echo("Preflight would refuse to start:")
        for problem in problems:
            click.echo(f"  - {problem}")


def _migration_plan(mctx: MigrationContext) -> tuple[runner.MigrationPlan, Plan]:
    mplan = runner.plan_migration(mctx)
    return mplan, runner.as_plan(mctx.ctx.infra_id, mplan)


# -- migrate -------------------------------------------------------------------------------------------
def migrate_command(ctx: Context, options: MigrationOptions, *, plan_only: bool, yes: bool,
                    confirm: Confirm) -> int:
    mctx, out = make_migration_context(ctx, options)
    with interruptible():
        ctx.check_openstack()
        mplan, plan = _migration_plan(mctx)
        if plan_only:
            _print_plan(out, plan, "Migration plan", mplan.problems, kind="MigrationPlan")
            return PreflightFailed.exit_code if mplan.problems else EXIT_OK
        outcomes = _migrate(mctx, out, mplan, plan, yes, confirm, "run the migration listed above")
    if out.json_output:
        out.doc({"apiVersion": render.API_VERSION, "kind": "MigrationResult", "infraID": ctx.infra_id, "ok": True,
                 "steps": [o.__dict__ for o in outcomes], "reboot": reboot_summary(mctx)})
    else:
        click.echo("Migration finished: the cluster is on OVN-Kubernetes. " + reboot_summary_text(mctx))
    return EXIT_OK


def _migrate(mctx: MigrationContext, out: Output, mplan: runner.MigrationPlan, plan: Plan, yes: bool,
             confirm: Confirm, what: str, cleanup_plan: Plan | None = None,
             plan_shown: bool = False) -> list[runner.StepOutcome]:
    if mplan.problems:
        raise PreflightFailed(mplan.problems)
    cleanup_left = cleanup_plan is not None and bool(cleanup_plan.actionable())
    if not yes and (not mplan.done or cleanup_left):
        if not plan_shown:
            click.echo(render.plan_table(plan, "Migration plan"), err=out.json_output)
            if cleanup_plan is not None:
                click.echo(render.plan_table(cleanup_plan, "Then the cleanup (as the inventory stands now)"),
                           err=out.json_output)
        confirm(mctx.ctx, yes, what)
    if not mplan.done:
        confirm_etcd_backup(mctx, yes)
    return runner.run_steps(mctx)


def reboot_summary(mctx: MigrationContext) -> dict[str, Any]:
    data = mctx.ctx.state.get(reboot.STATE_KEY) or {}
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


# -- reboot ----------------------------------------------------------------------------------------------
def reboot_command(ctx: Context, options: MigrationOptions, *, plan_only: bool, yes: bool, confirm: Confirm,
                   force: bool = False) -> int:
    mctx, out = make_migration_context(ctx, options)
    with interruptible():
        if options.method == "nova":
            ctx.check_openstack()
        state = facts.network_state(mctx)
        if not state.switched:
            raise UsageError(f"the network type is not switched yet (phase: {state.phase}): the reboot is step A7, "
                             f"after the switch; run `kuryr-migrate migrate`")
        if state.finished and not force:
            raise UsageError("the migration is finished (spec.migration is null): its reboots are done, and a "
                             "reboot now is not part of it; pass --force to reboot the nodes anyway")
        if not (ctx.state.get(reboot.STATE_KEY) or {}).get("boot_ids"):
            click.echo(f"WARNING: no boot IDs are recorded in the run directory {ctx.run_dir}: every node will be "
                       f"rebooted, including any that already rebooted since the switch. If the migration ran with "
                       f"another --run-dir, stop now and use that one.", err=True)
        items, notes = reboot.plan(mctx, "R")
        plan = Plan(ctx.infra_id, [StepInfo("R", "Reboot every node")], items, notes)
        if plan_only or not items:
            _print_plan(out, plan, "Reboot plan", [], kind="RebootPlan")
            if not items and not plan_only:
                click.echo("Nothing to do: every node has rebooted since the switch.", err=out.json_output)
            return EXIT_OK
        if not yes:
            _print_plan(out, plan, "Reboot plan", [], kind="RebootPlan")
        confirm(ctx, yes, "reboot the nodes listed above")
        result = reboot.run(mctx, "R")
    if out.json_output:
        out.doc({"apiVersion": render.API_VERSION, "kind": "RebootResult", "infraID": ctx.infra_id, "ok": True,
                 "rebooted": result.rebooted, "requestedNow": result.requested_now, **reboot_summary(mctx)})
    return EXIT_OK


# -- verify ----------------------------------------------------------------------------------------------
def verify_command(ctx: Context) -> int:
    mctx, out = make_migration_context(ctx, MigrationOptions())
    report = verify.run_checks(mctx)
    if out.json_output:
        out.doc(verify.report_document(report, ctx.infra_id))
    else:
        click.echo(f"Verification of cluster {ctx.infra_id}")
        for line in verify.report_lines(report):
            click.echo(line)
        click.echo("All checks pass." if report.ok else "Verification FAILED: do not clean up yet.")
    return EXIT_OK if report.ok else EXIT_FAILED


# -- status ----------------------------------------------------------------------------------------------
def status_document(ctx: Context, with_leftovers: bool = True) -> dict[str, Any]:
    mctx, _ = make_migration_context(ctx, MigrationOptions())
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
    if with_leftovers:
        ctx.check_openstack()
        plan = cleanup.make_plan(cleanup.discover(ctx))
        doc["kuryrLeftovers"] = {"actionable": len(plan.actionable()),
                                 "byStep": {s.id: sum(1 for i in items if i.actionable)
                                            for s, items in plan.by_step() if any(i.actionable for i in items)}}
    return doc


def status_command(ctx: Context) -> int:
    doc = status_document(ctx)
    if ctx.options.output == "json":
        click.echo(render.to_json(doc))
        return EXIT_OK
    click.echo(f"Cluster {doc['infraID']}: {doc['phase']}")
    click.echo(f"  network type: spec {doc['networkType']['spec']}, status {doc['networkType']['status']}; "
               f"spec.migration {doc['migration']}")
    click.echo("  pools: " + ", ".join(f"{p['name']} {p['updated']}/{p['machines']} updated"
                                       + (" (Degraded)" if p["degraded"] else "") for p in doc["pools"]))
    nodes = doc["nodes"]
    rebooted = "unknown" if nodes["rebootedSinceSwitch"] is None else nodes["rebootedSinceSwitch"]
    click.echo(f"  nodes: {nodes['ready']}/{nodes['total']} Ready, rebooted since the switch {rebooted}/"
               f"{nodes['total']}")
    left = doc["kuryrLeftovers"]
    click.echo(f"  Kuryr leftovers: {left['actionable']} change(s) and deletion(s) left"
               + (" (" + ", ".join(f"{k} {v}" for k, v in left["byStep"].items()) + ")" if left["byStep"] else ""))
    return EXIT_OK


# -- run -------------------------------------------------------------------------------------------------
def run_command(ctx: Context, options: MigrationOptions, *, plan_only: bool, yes: bool, confirm: Confirm,
                show_plan: bool = False) -> int:
    """A0-A9, then the cleanup: one resumable flow; the cleanup never starts unless A8 passed."""
    from kuryr_cleanup import commands

    mctx, out = make_migration_context(ctx, options)
    started = time.monotonic()
    with interruptible():
        ctx.check_openstack()
        mplan, plan = _migration_plan(mctx)
        inv = cleanup.discover(ctx)
        cleanup_plan = cleanup.make_plan(inv)
        if plan_only or (show_plan and not out.json_output):
            whole = Plan(ctx.infra_id, plan.steps + cleanup_plan.steps, plan.items + cleanup_plan.items,
                         plan.notes + cleanup_plan.notes)
            if not facts.network_state(mctx).finished:
                whole.notes.append("the cleanup part (B) is the inventory as it stands now, on a cluster still "
                                   "using Kuryr; it runs only after the migration has been verified (A8)")
            _print_plan(out, whole, "Run plan", mplan.problems)
            if plan_only:
                return PreflightFailed.exit_code if mplan.problems else EXIT_OK
        outcomes = _migrate(mctx, out, mplan, plan, yes, confirm,
                            "migrate and then delete what is listed above", cleanup_plan,
                            plan_shown=show_plan and not out.json_output)
        out(reboot_summary_text(mctx) or "B    the migration is complete; cleaning up Kuryr's leftovers")
        # Rediscover: the plan above was made before the migration; the run re-validates each item.
        inv = cleanup.discover(ctx)
        cleanup_plan = cleanup.make_plan(inv)
        cleanup.check_cluster_migrated(inv, force=False)
        if not cleanup_plan.actionable():
            result = None
            out("B    nothing to clean up: no Kuryr resource of this cluster is left")
        else:
            result = commands.execute_plan(ctx, inv, cleanup_plan, out.json_output)
    elapsed = time.monotonic() - started
    ok = result is None or (result.ok and not result.interrupted and not any(i.actionable for i in result.items))
    if out.json_output:
        cleanup_doc = render.plan_document(
            cleanup_plan if result is None else Plan(cleanup_plan.infra_id, cleanup_plan.steps, result.items,
                                                     cleanup_plan.notes), "CleanupResult")
        out.doc({"apiVersion": render.API_VERSION, "kind": "RunResult", "infraID": ctx.infra_id, "ok": ok,
                 "migration": {"steps": [o.__dict__ for o in outcomes]}, "reboot": reboot_summary(mctx),
                 "cleanup": cleanup_doc, "elapsedSeconds": round(elapsed, 3)})
    elif result is not None:
        click.echo(render.summary_table(result.items, result.elapsed, result.interrupted))
    if result is not None and result.interrupted:
        return commands.EXIT_INTERRUPTED
    if not ok:
        return commands.EXIT_LEFT
    if not out.json_output:
        click.echo(f"Done in {elapsed:.1f} s: cluster {ctx.infra_id} is on OVN-Kubernetes and Kuryr's resources are "
                   f"gone.")
    return EXIT_OK


# -- run --simulate -----------------------------------------------------------------------------------------
SIMULATED_POLL_INTERVAL = 0.05


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def simulate_command(store: Any, make_context: Callable[[dict[str, Any]], Context], kwargs: dict[str, Any],
                     options: MigrationOptions, *, plan_only: bool, yes: bool, confirm: Confirm) -> int:
    """Start the simulator in this process, point the tool at it, and run the whole job against it."""
    from kuryr_cleanup.sim.server import SIM_CLOUD, SimServer

    infra_id = store.infra_id or "sim"
    if not kwargs.get("run_dir"):
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        kwargs["run_dir"] = str(Path("kuryr-migrate-runs") / f"{infra_id}-simulated-{stamp}")
    run_dir = Path(kwargs["run_dir"])
    try:
        server = SimServer(store).start()
    except OSError as exc:
        raise UsageError(f"cannot start the simulator on 127.0.0.1: {exc}") from exc
    try:
        paths = server.write_client_config(run_dir)
        kwargs.update(os_cloud=SIM_CLOUD, kubeconfig=str(paths["kubeconfig"]), kube_context=None)
        if kwargs.get("poll_interval") in (None, 2.0):
            kwargs["poll_interval"] = SIMULATED_POLL_INTERVAL
        if kwargs.get("retry_scale") in (None, 1.0):
            kwargs["retry_scale"] = 0.01
        # Simulated reboots take a fraction of a second: estimate them so, and no etcd exists to back up.
        options.etcd_backup_confirmed = True
        if options.reboot_estimate == MigrationOptions.reboot_estimate:
            options.reboot_estimate = store.delays.get("server_reboot", 0.3) + store.delays.get("node_boot", 0.3)
        echo_err = kwargs.get("output") == "json"
        click.echo(f"# simulated cloud and cluster {infra_id}: OpenStack at {server.os_url}, Kubernetes at "
                   f"{server.kube_url}; run directory {run_dir}", err=echo_err)
        click.echo(f"# try your own tools on it meanwhile: OS_CLIENT_CONFIG_FILE={paths['clouds']} "
                   f"OS_CLOUD={SIM_CLOUD} KUBECONFIG={paths['kubeconfig']}", err=echo_err)
        with _environment({"OS_CLIENT_CONFIG_FILE": str(paths["clouds"].resolve()), "OS_CLOUD": SIM_CLOUD}):
            ctx = make_context(kwargs)
            try:
                # Show the whole plan first, as a newcomer would want to see it, then run it.
                return run_command(ctx, options, plan_only=plan_only, yes=yes, confirm=confirm, show_plan=True)
            finally:
                ctx.close()
    finally:
        server.stop()

