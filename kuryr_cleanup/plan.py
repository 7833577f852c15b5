"""The plan: every change and deletion the tool would make, as plain frozen data.

The same items are printed by `--plan`, confirmed by the admin, executed by the engine and written
to the journal; printers are pure functions of them (render.py).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# Item states. `planned` items become done / gone (already gone: success) / failed / blocked
# (a dependency failed) when run; `skipped` and `kept` items are decided at planning time, with a
# reason, and never touched.
PLANNED = "planned"
DONE = "done"
GONE = "gone"
FAILED = "failed"
BLOCKED = "blocked"
SKIPPED = "skipped"
KEPT = "kept"
FINAL_OK_STATES = frozenset({DONE, GONE, SKIPPED, KEPT})


@dataclass(frozen=True)
class PlanItem:
    """One action on one resource."""

    step: str  # SPEC step, e.g. "B12"
    kind: str  # "port", "network", "load balancer", "Pod", ...
    id: str
    name: str
    action: str  # "delete", "remove finalizer", "unset subports", ...
    evidence: str  # why this resource is this cluster's Kuryr's (S2)
    state: str = PLANNED
    reason: str = ""  # for skips, kept resources and failures
    after: tuple[str, ...] = ()  # keys of the items that must finish first (beyond step order)
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    # The resources.base.Action that carries the item out (None for items another runner handles:
    # the migration's). Not shown, not compared.
    op: Any = field(default=None, compare=False, hash=False, repr=False)

    @functools.cached_property
    def key(self) -> str:  # cached: the engine looks items up by key tens of times each
        return f"{self.step}|{self.action}|{self.kind}|{self.id}"

    @property
    def actionable(self) -> bool:
        return self.state == PLANNED

    @property
    def words(self) -> str:
        """How the plan says the action ("remove finalizer", "delete (cascade)")."""
        return str(self.op.words) if self.op is not None else self.action

    def with_state(self, state: str, reason: str = "") -> PlanItem:
        return dataclasses.replace(self, state=state, reason=reason)

    def public(self) -> dict[str, Any]:
        """The fields shown to the admin and written to JSON output (no internal parameters)."""
        return {
            "step": self.step,
            "kind": self.kind,
            "id": self.id,
            "name": self.name,
            "action": self.action,
            "evidence": self.evidence,
            "state": self.state,
            "reason": self.reason,
        }


class Planned:
    """The items planned so far, in step order, by the resource they act on: a planner reads what
    the steps it depends on decided (is this network deleted or kept? which item deletes this port?)."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], PlanItem] = {}

    def add(self, items: list[PlanItem]) -> None:
        for item in items:
            self._items[(item.kind, item.id)] = item

    def get(self, kind: str, ident: str) -> PlanItem | None:
        return self._items.get((kind, ident))

    def key(self, kind: str, ident: str) -> str | None:
        """The key of the planned (actionable) item acting on that resource, if there is one."""
        item = self._items.get((kind, ident))
        return item.key if item is not None and item.actionable else None


@dataclass(frozen=True)
class StepInfo:
    id: str
    title: str


@dataclass
class Plan:
    """Items in step order, plus the facts the plan was made from."""

    infra_id: str
    steps: list[StepInfo]
    items: list[PlanItem]
    notes: list[str] = field(default_factory=list)

    def by_step(self) -> Iterator[tuple[StepInfo, list[PlanItem]]]:
        grouped: dict[str, list[PlanItem]] = {s.id: [] for s in self.steps}
        for item in self.items:
            grouped.setdefault(item.step, []).append(item)
        for step in self.steps:
            yield step, grouped.get(step.id, [])

    def actionable(self) -> list[PlanItem]:
        return [i for i in self.items if i.actionable]
