"""Pure functions from plans and results to text, JSON and YAML.

A plan is read by people first (a change-review board, the admin before the prompt): the table
starts with one summary line per step, counting what is done to which kind of resource and why the
rest is kept or skipped (reasons grouped, with counts); the details, every resource with its id and
evidence, follow only when asked for (`--details`; `-o json`/`yaml` always carry them). Every line
stays under 120 characters: long ones wrap at spaces, so no id is ever cut.

Documents are a versioned envelope (`apiVersion: kuryr-migrate/v1`, `kind`), with the same fields
as the table and the journal; tests hold them to that contract.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import yaml

from kuryr_cleanup.plan import BLOCKED, DONE, FAILED, GONE, KEPT, PLANNED, SKIPPED, Plan, PlanItem, StepInfo

API_VERSION = "kuryr-migrate/v1"
WIDTH = 119  # every line of the table output is shorter than 120 characters

# What the plan says it will do to `{things}` ("2,104 ports, 210 networks"), by action name. Actions
# of the migration (A0-A9, R) are named in words already ("add rule", "merge-patch", "wait").
_TO_DO = {
    "delete": "{things} to delete",
    "cascade-delete": "{things} to delete (cascade: with listeners and pools)",
    "remove-finalizer": "finalizer to remove from {things}",
    "unset-subports": "Kuryr subports to unset from {things}",
    "remove-interface": "{things} to remove",
    "release": "{things} to release",
    "disassociate": "{things} to disassociate",
    "check": "{things} to run",
    "verify": "{things} to run",
    "add rule": "{things} to add",
    "write": "{things} to write",
    "merge-patch": "{things} to merge-patch",
    "wait": "{things} to wait for",
    "reboot": "{things} to reboot",
}

# One resource's action, for progress lines, the list of what is left and the script's comments.
_ONE = {
    "delete": "delete {kind} {ref}",
    "cascade-delete": "delete {kind} {ref} (cascade)",
    "remove-finalizer": "remove finalizer from {kind} {ref}",
    "unset-subports": "unset Kuryr subports of {kind} {ref}",
    "release": "release {kind} {ref}",
    "disassociate": "disassociate {kind} {ref}",
    "check": "check: {name}",
    "verify": "verify the {id}",
    "add rule": "add {kind} to {ref}",
    "write": "write {kind} {id}",
    "merge-patch": "merge-patch {kind} {id}: {name}",
    "wait": "wait for {kind} {ref}",
    "reboot": "reboot {kind} {ref}",
}

_IRREGULAR = {"check": "checks", "Service": "Services"}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


# -- words -------------------------------------------------------------------------------------------
def plural(kind: str, n: int) -> str:
    if n == 1 or "." in kind or "/" in kind:  # API kinds with a group read oddly in the plural
        return kind
    if kind in _IRREGULAR:
        return _IRREGULAR[kind]
    if kind.endswith("y") and not kind.endswith(("ay", "ey", "oy")):
        return kind[:-1] + "ies"
    if kind.endswith(("s", "sh", "ch", "x")):
        return kind + "es"
    return kind + "s"


def things(counts: dict[str, int]) -> str:
    """{"port": 2104, "network": 210} -> "2,104 ports, 210 networks"."""
    return ", ".join(f"{n:,} {plural(kind, n)}" for kind, n in counts.items())


def action_words(action: str) -> str:
    """The action as a verb phrase without its object ("remove-finalizer" -> "remove finalizer")."""
    return {"cascade-delete": "delete (cascade)", "remove-interface": "remove router interface"}.get(
        action, action.replace("-", " "))


def _redundant(name: str, ident: str) -> bool:
    """A name that only repeats the id ("subnet <id>" for the interface "<router>:<subnet>")."""
    return not name or name == ident or name.split()[-1] in ident


def ref(item: PlanItem) -> str:
    """The resource as the admin finds it: id, and the name when it says more."""
    return item.id if _redundant(item.name, item.id) else f"{item.id} ({item.name})"


def describe(item: PlanItem) -> str:
    """One resource's action in words, with its id: "delete port <id> (<name>)"."""
    if item.action == "remove-interface" and ":" in item.id:
        router, subnet = item.id.split(":", 1)
        return f"remove subnet {subnet} from router {router}"
    template = _ONE.get(item.action, "{action} {kind} {ref}")
    return template.format(action=action_words(item.action), kind=item.kind, ref=ref(item), id=item.id,
                           name=item.name or item.id)


_REASON_GROUPS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), g) for p, g in (
    (r"tagged for another cluster \(([^)]*)\)", r"tagged for another cluster (\1)"),
    (r"is a subport of trunk .*tagged for another cluster", "a subport of another cluster's trunk is on it"),
    (r"is the own port of server", "a server's own port is on it"),
    (r"is an installer port", "an installer port is on it"),
    (r"has an interface on subnet", "another router has an interface on it"),
    (r"neither tagged for this cluster nor named like Kuryr", "neither tagged nor named like Kuryr's"),
    (r"the installer's router", "the installer's router"),
    (r"serves subnets that are not Kuryr's", "serves subnets that are not Kuryr's"),
    (r"serves Kuryr networks that are kept", "serves Kuryr networks that are kept"),
    (r"used by ports of Kuryr networks that are kept", "used by ports of Kuryr networks that are kept"),
    (r"Kuryr networks that are kept use it", "subnets of kept Kuryr networks use it"),
    (r"in project \S+, not the cluster's", "in another project"),
    (r"no KuryrNetwork names it", "tagged, but no KuryrNetwork names it"),
    (r"now associated with port", "in use again"),
    (r"user-allocated floating IP", "user-allocated floating IP"),
    (r"no evidence it belongs to this cluster", "no evidence it belongs to this cluster"),
    (r"^\S+ .+? is kept\b", "depends on a resource that is kept"),
    (r"^\S+ .+? (?:failed|blocked)\b", "depends on an item that did not finish"),
))


def reason_group(reason: str) -> str:
    """What many reasons have in common, for the summary: "held by another cluster's router" rather
    than one line per port. Unknown reasons are shortened: ids out, details in parentheses out."""
    text = re.sub(r"^(kept, not emptied|kept|skipped|blocked|failed): ", "", reason.strip())
    for pattern, group in _REASON_GROUPS:
        found = pattern.search(text)
        if found:
            return found.expand(group)
    text = text.split("; ")[0]
    text = re.sub(r"\s*\([^()]*\)", "", _UUID.sub("…", text)).strip()
    return text if len(text) <= 60 else text[:59] + "…"


def wrap(line: str, indent: int = 6, width: int = WIDTH) -> list[str]:
    """Break a long line at spaces (never inside an id) with a hanging indent."""
    if len(line) <= width:
        return [line]
    return textwrap.wrap(line, width=width, subsequent_indent=" " * indent, break_long_words=False,
                         break_on_hyphens=False) or [line]


def step_title(step: StepInfo) -> str:
    """Step titles may have a colon of their own: "Prepare: spec.migration" -> "Prepare (spec.migration)"."""
    head, sep, tail = step.title.partition(": ")
    return f"{head} ({tail})" if sep else step.title


# -- the summary -------------------------------------------------------------------------------------
def _kinds(items: Iterable[PlanItem]) -> dict[str, int]:
    return dict(Counter(i.kind for i in items).most_common())


def step_summary(items: Sequence[PlanItem]) -> str:
    """"2,104 ports, 210 networks to delete; 3 networks kept: held by another cluster's router (2), ..."."""
    if not items:
        return "nothing to do"
    parts: list[str] = []
    planned = [i for i in items if i.state == PLANNED]
    by_phrase: dict[str, list[PlanItem]] = {}
    for item in planned:
        by_phrase.setdefault(_TO_DO.get(item.action, "{things}: " + action_words(item.action)), []).append(item)
    for template, group in by_phrase.items():
        parts.append(template.format(things=things(_kinds(group))))
    for state in (DONE, GONE, KEPT, SKIPPED, FAILED, BLOCKED):
        chosen = [i for i in items if i.state == state]
        for kind in _kinds(chosen):
            of_kind = [i for i in chosen if i.kind == kind]
            label = {GONE: "already gone"}.get(state, state)
            text = f"{things({kind: len(of_kind)})} {label}"
            if state not in (DONE, GONE):
                reasons = Counter(reason_group(i.reason) for i in of_kind if i.reason)
                if reasons:
                    text += ": " + ", ".join(r if n == 1 else f"{r} ({n:,})" for r, n in reasons.most_common())
            parts.append(text)
    return "; ".join(parts)


def _counts_line(items: Sequence[PlanItem]) -> str:
    counts = Counter(i.state for i in items)
    planned = counts.pop(PLANNED, 0)
    words = [f"{planned:,} changes and deletions planned"]
    words += [f"{n:,} {s}" for s, n in counts.items()]
    return "Total: " + ", ".join(words)


def plan_summary(plan: Plan, title: str) -> list[str]:
    lines = wrap(f"{title} for cluster {plan.infra_id}", 2)
    for note in plan.notes:
        lines += wrap(f"note: {note}", 6)
    for step, items in plan.by_step():
        lines += wrap(f"{step.id:<4} {step_title(step)}: {step_summary(items)}", 5)
    lines.append(_counts_line(plan.items))
    return lines


# -- the details ---------------------------------------------------------------------------------------
def _line_of(item: PlanItem) -> str:
    return item.id if _redundant(item.name, item.id) else f"{item.id}  {item.name}"


def detail_lines(plan: Plan) -> list[str]:
    """Every resource, under a header per step and per group of items that share their action, state,
    evidence and reason (one header for 24 finalizers with the same evidence, not 24 copies)."""
    lines: list[str] = []
    for step, items in plan.by_step():
        if not items:
            continue
        lines += wrap(f"{step.id:<4} {step_title(step)}", 5)
        groups: dict[tuple[str, str, str, str, str], list[PlanItem]] = {}
        for item in items:
            groups.setdefault((item.state, item.action, item.kind, item.evidence, item.reason), []).append(item)
        for (state, action, kind, evidence, reason), group in groups.items():
            counted = things({kind: len(group)})
            if state == PLANNED:
                head = _TO_DO.get(action, "{things}: " + action_words(action)).format(things=counted)
            else:
                head = f"{counted} {state}"
            if reason:
                head += f" ({reason})" if state == PLANNED else f": {reason}"
            if evidence:
                head += f"; evidence: {evidence}"
            lines += wrap(f"     {head}", 9)
            for item in group:
                lines += wrap(f"       {_line_of(item)}", 9)
    return lines


def plan_table(plan: Plan, title: str = "Cleanup plan", details: bool = False) -> str:
    """The summary; with `details`, every resource after it, and the summary again at the end (the
    last thing the admin reads before the prompt)."""
    summary = plan_summary(plan, title)
    if not details:
        return "\n".join(summary + ["Every resource with its id and evidence: --details (or -o json, -o html)."])
    return "\n".join(summary + ["", "Details:"] + detail_lines(plan) + ["", "In short:"] + summary)


# -- documents ---------------------------------------------------------------------------------------
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
    """`json.dumps(doc, indent=2, sort_keys=True)`, the same text, faster for big plans: with an
    indent, json encodes in Python (2.5 s for the 85,000 items of a large cleanup); the items, flat
    objects of strings, are written here with the C string encoder."""
    items = doc.get("items")
    if not isinstance(items, list) or not all(_flat_strings(i) for i in items):
        return json.dumps(doc, indent=2, sort_keys=True)
    marker = "\x00items\x00"
    text = json.dumps({**doc, "items": marker}, indent=2, sort_keys=True)
    if not items:
        body = "[]"
    else:
        pad = "\n" + " " * 6
        body = "[\n    " + ",\n    ".join(
            "{" + ",".join(f"{pad}{_string(key)}: {_string(item[key])}" for key in sorted(item)) + "\n    }"
            if item else "{}" for item in items) + "\n  ]"
    return text.replace(_string(marker), body, 1)


_string = json.encoder.encode_basestring_ascii


def _flat_strings(value: Any) -> bool:
    return type(value) is dict and all(type(k) is str and type(v) is str for k, v in value.items())


def to_yaml(doc: dict[str, Any]) -> str:
    return str(yaml.safe_dump(doc, sort_keys=True, default_flow_style=False, allow_unicode=True, width=WIDTH))


# -- progress and results -----------------------------------------------------------------------------
def item_line(item: PlanItem) -> str:
    """One line per state change: step, state, the action with the resource's id, the reason."""
    line = f"{item.step:<4} {item.state:<7} {describe(item)}"
    if item.reason:
        line += f": {item.reason}"
    return "\n".join(wrap(line, 13))


RESUME_LINE = "Interrupted: run the same command again to finish the job (state and journal are kept)."


def summary_table(items: list[PlanItem], elapsed: float, interrupted: bool) -> str:
    """What a run did and what is left. The line saying how to resume is not here: it goes last of
    all, after the run directory (`RESUME_LINE`)."""
    counts = Counter(i.state for i in items if i.state != PLANNED or interrupted)
    shown = ", ".join(f"{n:,} {'not started' if s == PLANNED else s}" for s, n in counts.most_common())
    lines = [f"Summary ({elapsed:.1f} s): {shown or 'nothing'}"]
    left = [i for i in items if i.state in (FAILED, BLOCKED, PLANNED)]
    if left:
        lines.append(f"Left to do ({len(left):,}):")
        for item in left[:200]:
            lines += ["  " + part for part in item_line(item).splitlines()]
        if len(left) > 200:
            lines.append(f"  ... and {len(left) - 200:,} more (see -o json or the journal)")
    return "\n".join(lines)


# -- what to do next ----------------------------------------------------------------------------------
def next_step(doc: dict[str, Any] | None) -> str | None:
    """The command an admin runs after this one, from the document the command returned."""
    if not doc:
        return None
    kind = doc.get("kind")
    ok = doc.get("ok", True)
    if kind == "CleanupPlan":
        return "kuryr-migrate cleanup   (shows this summary again and asks for the infraID)"
    if kind == "MigrationPlan":
        return None if doc.get("preflightProblems") else "kuryr-migrate migrate"
    if kind == "RunPlan":
        return None if doc.get("preflightProblems") else "kuryr-migrate run"
    if kind == "RebootPlan":
        return "kuryr-migrate reboot"
    if kind == "MigrationResult" and ok:
        return "kuryr-migrate cleanup --plan"
    if kind == "RebootResult" and ok:
        return "kuryr-migrate migrate   (verifies and finishes the migration)"
    if kind == "VerifyReport":
        return "kuryr-migrate cleanup --plan" if ok else None
    if kind == "Status":
        phase = str(doc.get("phase") or "")
        left = (doc.get("kuryrLeftovers") or {}).get("actionable")
        if phase == "migrated":
            return "kuryr-migrate cleanup --plan" if left else None
        return "kuryr-migrate migrate --plan" if phase.startswith("on Kuryr") else "kuryr-migrate migrate"
    return None
