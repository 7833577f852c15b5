"""The terminal side of the commands' UI: lines, plans, prompts and progress bars, with click and tqdm.

Progress: on a terminal, a bar per step (tqdm); otherwise one plain line per state change, the same
fields as the journal. Lines go to stdout, or to stderr when stdout carries a JSON document.
"""

from __future__ import annotations

import sys
from typing import Any

import click
from tqdm import tqdm

from kuryr_cleanup import render
from kuryr_cleanup.errors import UsageError
from kuryr_cleanup.plan import BLOCKED, FAILED, Plan, PlanItem


class Progress:
    """Progress of a run; called from the engine's scheduling thread only."""

    def __init__(self, plan: Plan, json_output: bool) -> None:
        self.json_output = json_output
        self.tty = sys.stderr.isatty() and not json_output
        self._bars: dict[str, Any] = {}
        if self.tty:
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


class ConsoleUI:
    """The commands' UI on a terminal (or a pipe: CI has no terminal and no standard input)."""

    def __init__(self, json_output: bool) -> None:
        self.json_output = json_output

    def say(self, line: str) -> None:
        click.echo(line, err=self.json_output)

    def show(self, text: str) -> None:
        click.echo(text, err=self.json_output)

    def warn(self, line: str) -> None:
        click.echo(line, err=True)

    def confirm(self, infra_id: str, what: str) -> None:
        """Real runs without --yes ask the admin to type the infraID (S1)."""
        try:
            typed = click.prompt(f"Type the infraID ({infra_id}) to {what}, or anything else to stop", default="",
                                 show_default=False, err=True)
        except click.exceptions.Abort as exc:
            raise UsageError("no confirmation (no terminal to ask on?): nothing was changed; pass --yes to proceed "
                             "without asking") from exc
        if typed.strip() != infra_id:
            raise UsageError("the infraID was not confirmed: nothing was changed")

    def ask(self, question: str) -> bool | None:
        try:
            return bool(click.confirm(question, default=False, err=True))
        except click.exceptions.Abort:
            return None

    def progress(self, plan: Plan) -> Progress:
        return Progress(plan, self.json_output)
