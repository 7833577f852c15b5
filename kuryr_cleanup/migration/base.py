"""What every migration step shares: options, the migration context, the step contract and its errors.

A step (SPEC A0-A9) is data registered in `steps.STEPS`: `check(mctx)` reads the cluster and says
whether the step is already done and, if not, what it would do as PlanItems (so `--plan` lists the
same changes the run makes); `apply(mctx, check)` does only what is missing (writes, or waits), and
the runner checks again afterwards: completion is confirmed by asking the cluster, never assumed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kuryr_cleanup.context import Context
from kuryr_cleanup.errors import ExitCode, KuryrMigrateError, UsageError
from kuryr_cleanup.plan import PlanItem
from kuryr_cleanup.retrying import Failure, classify, describe

OVN = "OVNKubernetes"
KURYR = "Kuryr"


class PreflightFailed(KuryrMigrateError):
    """A0 found conditions that make starting unsafe; nothing was changed."""

    exit_code = ExitCode.REFUSED

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("preflight failed, nothing was changed:\n" + "\n".join(f"  - {p}" for p in problems))


class BadSetting(UsageError):
    """A value the admin gave that this cluster rules out (an `--mtu` above its node networks', a
    `--cluster-network` on its machine network): refused as bad input, before any plan is shown."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems) + " (nothing was changed)")


class MigrationStopped(KuryrMigrateError):
    """A step could not finish (a Degraded pool, a node that never came back, a failed verification).

    The run stops before anything later (the cleanup above all); the state is kept, so running the
    same command again after fixing the cause resumes here.
    """

    exit_code = ExitCode.STOPPED


@dataclass
class MigrationOptions:
    """The admin's choices for A0-A9 and R (flags of `migrate`, `run`, `reboot`, `verify`)."""

    etcd_backup_confirmed: bool = False
    backup_file: str | None = None
    # A3 / A5
    mtu: int | None = None
    geneve_port: int | None = None
    v4_internal_subnet: str | None = None
    v6_internal_subnet: str | None = None
    cluster_network: str | None = None
    host_prefix: int | None = None
    # R
    method: str = "nova"
    strategy: str = "rolling"
    max_unavailable: int = 1
    hard: bool = False
    ssh_user: str = "core"
    ssh_options: tuple[str, ...] = ()
    reboot_estimate: float = 300.0  # seconds one node takes to reboot, for the expected outage
    # waits (seconds)
    mco_timeout: float = 1800.0  # per node update: A4's ceiling is this times the largest pool's updates in a row
    node_timeout: float = 1800.0  # A4: no pool progressing, or a node NotReady, this long is a stall
    multus_timeout: float = 1800.0
    reboot_timeout: float = 1800.0
    verify_timeout: float = 900.0


@dataclass(frozen=True)
class StepCheck:
    """What a step found: done, or the items it would apply; notes explain (shown in the plan)."""

    done: bool
    items: tuple[PlanItem, ...] = ()
    notes: tuple[str, ...] = ()
    summary: str = ""  # one line: "already done: ..." or what will happen
    problems: tuple[str, ...] = ()  # reasons the step must not go ahead (A0 refuses with all of them)
    bad_values: tuple[str, ...] = ()  # admin-given values the cluster rules out: BadSetting before any plan


@dataclass(frozen=True)
class MigrationStep:
    id: str
    title: str
    check: Callable[[MigrationContext], StepCheck]
    apply: Callable[[MigrationContext, StepCheck], None]


Say = Callable[[str], None]


@dataclass
class MigrationContext:
    """The tool's Context plus the migration options, the progress printer and the clock of waits."""

    ctx: Context
    options: MigrationOptions
    say: Say = print
    # Facts computed once per command (Neutron MTU, node networks), kept between steps.
    cache: dict[str, Any] = field(default_factory=dict)
    sleep: Callable[[float], None] = time.sleep

    @property
    def cluster(self) -> Any:
        return self.ctx.cluster

    @property
    def poll_interval(self) -> float:
        return self.ctx.options.poll_interval

    def step_state(self) -> dict[str, Any]:
        return dict(self.ctx.state.get("migration") or {})

    def remember(self, **values: Any) -> None:
        """Merge facts into the run state's `migration` section and save it (fsynced, atomic)."""
        self.ctx.state.merge_dict("migration", values)
        self.ctx.state.save()


def item(step: str, kind: str, ident: str, action: str, evidence: str = "", name: str = "",
         reason: str = "", **params: Any) -> PlanItem:
    return PlanItem(step=step, kind=kind, id=ident, name=name or ident, action=action, evidence=evidence,
                    reason=reason, params=params)


class ProgressLine:
    """Prints a waiting step's progress only when it changes (one line per state change).

    `key` is what counts as the state when the text carries more (an elapsed time): the line is
    printed when the key changes, and again after `heartbeat` seconds without a change, so a long
    quiet wait still shows it is alive.
    """

    def __init__(self, say: Say, step: str, heartbeat: float | None = None) -> None:
        self.say = say
        self.step = step
        self.heartbeat = heartbeat
        self.last = ""
        self.printed_at = 0.0

    def __call__(self, text: str, key: str | None = None) -> None:
        state = text if key is None else key
        now = time.monotonic()
        stale = self.heartbeat is not None and now - self.printed_at >= self.heartbeat
        if state != self.last or stale:
            self.say(f"{self.step:<4} {text}")
            self.last = state
            self.printed_at = now


def duration(seconds: float) -> str:
    """`45 s`, `12 min 04 s`, `2 h 05 min`: how long a wait has taken, in the admin's units."""
    whole = int(seconds)
    if seconds < 10 and seconds != whole:
        return f"{seconds:.1f} s"
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def wait_until(mctx: MigrationContext, timeout: float, probe: Callable[[], bool],
               report: Callable[[str], None] | None = None) -> bool:
    """Poll `probe` every poll interval until it returns True (True) or `timeout` passes (False).

    A transient failure inside the probe (connection refused or dropped, 5xx, 429: what an API
    server being rebooted answers) counts as "not yet": only the deadline decides. With
    `--strategy all` every control-plane node is down for minutes at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if probe():
                return True
        except Exception as exc:
            if classify(exc) is not Failure.TRANSIENT:
                raise
            (report or mctx.say)(f"API unreachable ({describe(exc)}): still waiting")
        if time.monotonic() >= deadline:
            return False
        mctx.sleep(max(0.0, min(mctx.poll_interval, deadline - time.monotonic())))
