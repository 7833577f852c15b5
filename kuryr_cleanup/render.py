"""Pure functions from plans and results to text and JSON.

JSON output is a versioned envelope (`apiVersion: kuryr-migrate/v1`, `kind`), with the same fields
as the table and the journal; tests hold it to that contract.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

from kuryr_cleanup.plan import BLOCKED, FAILED, KEPT, PLANNED, SKIPPED, Plan, PlanItem

API_VERSION = "kuryr-migrate/v1"

_ACTION_WORDS = {
    "remove-finalizer": "remove finalizer",
    "cascade-delete": "delete (cascade)",
    "unset-subports": "unset subports",
    "remove-interface": "remove from router",
    "release": "release",
    "disassociate": "disassociate",
}


def action_words(action: str) -> str:
    return _ACTION_WORDS.get(action, action)


def item_line(item: PlanItem) -> str:
    """One line per state change: step, state, action, kind, name/id, reason."""
    what = f"{item.kind} {item.name}" if item.name and item.name != item.id else f"{item.kind} {item.id}"
    if item.name and item.name != item.id:
        what += f" ({item.id})"
    line = f"{item.step:<4} {item.state:<8} {action_words(item.action)} {what}"
    if item.reason:
        line += f": {item.reason}"
    return line


def _counts_text(items: Iterable[PlanItem]) -> str:
    counts = Counter("to do" if i.state == PLANNED else i.state for i in items)
    order = ["to do", "done", "gone", KEPT, SKIPPED, FAILED, BLOCKED]
    return ", ".join(f"{counts[s]} {s}" for s in order if counts.get(s))


def plan_table(plan: Plan, title: str = "Cleanup plan") -> str:
    lines = [f"{title} for cluster {plan.infra_id}"]
    for note in plan.notes:
        lines.append(f"note: {note}")
    total = 0
    for step, items in plan.by_step():
        total += sum(1 for i in items if i.state == PLANNED)
        if not items:
            lines.append(f"{step.id:<4} {step.title}: nothing to do")
            continue
        lines.append(f"{step.id:<4} {step.title}: {_counts_text(items)}")
        for item in items:
            label = "" if item.state == PLANNED else f"[{item.state}] "
            what = f"{item.kind} {item.id}" + (f" {item.name}" if item.name and item.name != item.id else "")
            line = f"       {label}{action_words(item.action)} {what}"
            if item.evidence:
                line += f"  <- {item.evidence}"
            if item.reason:
                line += f"  ({item.reason})"
            lines.append(line)
    lines.append(f"Total: {total} changes and deletions planned")
    return "\n".join(lines)


def plan_document(plan: Plan, kind: str = "CleanupPlan", extra: dict[str, Any] | None = None) -> dict[str, Any]:
    steps = []
    for step, items in plan.by_step():
        steps.append({"id": step.id, "title": step.title, "counts": dict(Counter(i.state for i in items))})
    doc = {
        "apiVersion": API_VERSION,
        "kind": kind,
        "infraID": plan.infra_id,
        "notes": list(plan.notes),
        "steps": steps,
        "items": [i.public() for i in plan.items],
        "summary": dict(Counter(i.state for i in plan.items)),
    }
    if extra:
        doc.update(extra)
    return doc


def to_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True)


def summary_table(items: list[PlanItem], elapsed: float, interrupted: bool) -> str:
    counts = Counter(i.state for i in items)
    lines = [f"Summary ({elapsed:.1f} s): " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing")]
    if interrupted:
        lines.append("Interrupted: run the same command again to finish the job.")
    left = [i for i in items if i.state in (FAILED, BLOCKED, PLANNED)]
    if left:
        lines.append(f"Left to do ({len(left)}):")
        lines.extend("  " + item_line(i) for i in left[:200])
        if len(left) > 200:
            lines.append(f"  ... and {len(left) - 200} more (see -o json or the journal)")
    return "\n".join(lines)
