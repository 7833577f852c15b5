"""Runs the registered steps: plan them all (read-only), or run each in order, checking before and after.

The plan and the run come from the same checks. Every run starts from what the cluster says, so a
second run after an interruption (Ctrl-C, a crash, a failed wait) picks up at the first step that is
not done; the run state only adds what the cluster can't tell (boot IDs before the reboots).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kuryr_cleanup.migration.base import (
    BadSetting,
    MigrationContext,
    MigrationStep,
    MigrationStopped,
    PreflightFailed,
    StepCheck,
)
from kuryr_cleanup.migration.steps import STEPS
from kuryr_cleanup.plan import Plan, PlanItem, StepInfo


@dataclass
class MigrationPlan:
    checks: list[tuple[MigrationStep, StepCheck]]
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def items(self) -> list[PlanItem]:
        return [i for _, check in self.checks for i in check.items]

    @property
    def done(self) -> bool:
        return all(check.done for _, check in self.checks)


def plan_migration(mctx: MigrationContext, steps: tuple[MigrationStep, ...] = STEPS) -> MigrationPlan:
    """Every step's check, without changing anything. An admin-given value the cluster rules out
    stops here (BadSetting), before any plan is shown: the plan for a value that can't be used
    would be read, and reviewed, for nothing."""
    result = MigrationPlan([])
    for step in steps:
        try:
            check = step.check(mctx)
        except MigrationStopped as exc:
            result.problems.append(str(exc))
            check = StepCheck(False, summary=str(exc))
        if check.bad_values:
            raise BadSetting(list(check.bad_values))
        result.checks.append((step, check))
        result.problems.extend(check.problems)
        result.notes.extend(check.notes)
    return result


def as_plan(infra_id: str, mplan: MigrationPlan) -> Plan:
    items = list(mplan.items)
    return Plan(infra_id, [StepInfo(s.id, s.title) for s, _ in mplan.checks], items, list(mplan.notes))


@dataclass
class StepOutcome:
    id: str
    title: str
    state: str  # "done" (already), "applied"
    summary: str


def run_steps(mctx: MigrationContext, steps: tuple[MigrationStep, ...] = STEPS) -> list[StepOutcome]:
    """Run each step that is not done; re-check it after; stop at the first that can't finish."""
    outcomes = []
    mctx.ctx.journal.write("run-start", command="migrate", steps=[s.id for s in steps])
    for step in steps:
        check = step.check(mctx)
        if check.bad_values:
            raise BadSetting(list(check.bad_values))
        if check.problems:
            raise PreflightFailed(list(check.problems))
        if check.done:
            mctx.remember(last_step=step.id)
            mctx.say(f"{step.id:<4} done: {check.summary}")
            outcomes.append(StepOutcome(step.id, step.title, "done", check.summary))
            continue
        mctx.say(f"{step.id:<4} {step.title}: {check.summary}")
        started = time.monotonic()
        step.apply(mctx, check)
        after = step.check(mctx)
        if not after.done:
            raise MigrationStopped(f"{step.id} ({step.title}) did not complete: {after.summary}")
        mctx.remember(last_step=step.id)
        mctx.ctx.journal.write("step-done", step=step.id, seconds=round(time.monotonic() - started, 3))
        outcomes.append(StepOutcome(step.id, step.title, "applied", after.summary))
    if steps and steps[-1].id == "A9":
        mctx.remember(finished=True)
    mctx.ctx.journal.write("run-end", command="migrate", steps=[o.id for o in outcomes])
    return outcomes
