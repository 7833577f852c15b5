"""What the CLI commands do, between parsing and exit codes: discover, plan, confirm, run, report.

Each function returns the exit code; errors the admin must act on are raised as KuryrMigrateError
and turned into one line by `cli.main`.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from typing import Any

import click

from kuryr_cleanup import cleanup, render
from kuryr_cleanup.context import Context
from kuryr_cleanup.engine import Engine, RunResult
from kuryr_cleanup.plan import BLOCKED, FAILED, PLANNED, Plan, PlanItem

EXIT_OK = 0
EXIT_LEFT = 1  # the run ended with work left (failed, blocked or interrupted items)
EXIT_INTERRUPTED = 130


class Progress:
    """Progress of a run: on a terminal, a bar per step (tqdm); otherwise one plain line per state
    change, the same fields as the journal. Called from the engine's scheduling thread only."""

    def __init__(self, plan: Plan, json_output: bool) -> None:
        self.json_output = json_output
        self.tty = sys.stderr.isatty() and not json_output
        self._bars: dict[str, Any] = {}
        if self.tty:
            from tqdm import tqdm

            titles = {s.id: s.title for s in plan.steps}
            totals: dict[str, int] = {}
            for item in plan.actionable():
                totals[item.step] = totals.get(item.step, 0) + 1
            for position, (step, total) in enumerate(totals.items()):
                self._bars[step] = tqdm(total=total, desc=f"{step:<4} {titles.get(step, '')[:48]:<48}",
                                        position=position, file=sys.stderr, leave=True, unit="item",
                                        dynamic_ncols=True)

    def __call__(self, item: PlanItem) -> None:
        bar = self._bars.get(item.step)
        if bar is None:
            click.echo(render.item_line(item), err=self.json_output)
            return
        bar.update(1)
        if item.state in (FAILED, BLOCKED):
            bar.write(render.item_line(item), file=sys.stderr)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars = {}


def run_engine_with_signals(run: Callable[[Callable[[Engine], None]], RunResult]) -> RunResult:
    """SIGTERM stops the run cleanly, as Ctrl-C does: running calls finish, the journal stays valid."""
    engines: list[Engine] = []
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: Any) -> None:
        for engine in engines:
            engine.stop()

    try:
        signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread (tests driving the CLI in a thread)
        pass
    try:
        return run(engines.append)
    finally:
        try:
            signal.signal(signal.SIGTERM, previous)
        except ValueError:
            pass


def run_cleanup_command(ctx: Context, *, plan_only: bool, yes: bool, force: bool,
                        confirm: Callable[[Context, bool, str], None]) -> int:
    json_output = ctx.options.output == "json"
    ctx.check_openstack()
    inv = cleanup.discover(ctx)
    plan = cleanup.make_plan(inv)
    if plan_only:
        emit_plan(plan, json_output)
        return EXIT_OK
    cleanup.check_cluster_migrated(inv, force)
    if not plan.actionable():
        if json_output:
            click.echo(render.to_json(render.plan_document(plan, "CleanupResult", {"ok": True})))
        else:
            click.echo(render.plan_table(plan))
            click.echo("Nothing to do: no Kuryr resource of this cluster is left.")
        return EXIT_OK
    if not yes:
        click.echo(render.plan_table(plan), err=json_output)
    confirm(ctx, yes, "delete what is listed above")
    result = execute_plan(ctx, inv, plan, json_output)
    return report(plan, result, json_output)


def emit_plan(plan: Plan, json_output: bool) -> None:
    if json_output:
        click.echo(render.to_json(render.plan_document(plan)))
    else:
        click.echo(render.plan_table(plan))


def execute_plan(ctx: Context, inv: Any, plan: Plan, json_output: bool) -> RunResult:
    progress = Progress(plan, json_output)
    try:
        return run_engine_with_signals(
            lambda hook: cleanup.execute(ctx, inv, plan, on_change=progress, engine_hook=hook)
        )
    finally:
        progress.close()


def report(plan: Plan, result: RunResult, json_output: bool) -> int:
    ok = result.ok and not any(i.state == PLANNED for i in result.items)
    if json_output:
        done_plan = Plan(plan.infra_id, plan.steps, result.items, plan.notes)
        click.echo(render.to_json(render.plan_document(
            done_plan, "CleanupResult", {"ok": ok, "interrupted": result.interrupted,
                                         "elapsedSeconds": round(result.elapsed, 3)})))
    else:
        click.echo(render.summary_table(result.items, result.elapsed, result.interrupted))
    if result.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if ok else EXIT_LEFT
