"""The plan as one self-contained HTML page: a review artefact for a change-review board
(`kuryr-migrate cleanup --plan -o html > plan.html`, `kuryr-migrate run --plan -o html`).

Self-contained: inline CSS, no script, no image, no font, no link to anything outside the page, so it
can be mailed, attached to a change request and opened on a machine without network. It carries the
cluster's identity (infraID, cluster ID, OpenStack project), the summary per step, every resource to
change or delete with the evidence that it is this cluster's Kuryr's and the commands that would do
the same by hand (for the migration and the reboots too: the vendor's `oc patch`, `oc get mcp`,
`oc rollout status`, `openstack server reboot`), and what is kept or skipped and why.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from html import escape
from typing import Any

from kuryr_cleanup import __version__, render, script_export
from kuryr_cleanup.kuryr import cluster_tag
from kuryr_cleanup.migration.base import MigrationOptions
from kuryr_cleanup.plan import KEPT, PLANNED, SKIPPED, Plan, PlanItem, StepInfo

_CSS = """
:root { --ink: #1d2330; --muted: #5b6475; --line: #d9dde5; --soft: #f4f6f9; --del: #a1260d; --keep: #1f6f43;
        --skip: #6b5a00; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink);
       margin: 0 auto; padding: 24px 32px 64px; max-width: 1400px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 32px 0 8px; border-bottom: 2px solid var(--line);
     padding-bottom: 4px; } h3 { font-size: 15px; margin: 0; display: inline; }
code, .mono { font: 12.5px/1.4 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
dl.identity { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 12px 0; }
dl.identity dt { color: var(--muted); } dl.identity dd { margin: 0; font-family: ui-monospace, monospace; }
.total { font-size: 16px; font-weight: 600; margin: 8px 0 0; }
.notes li, .problems li { margin: 2px 0; } .problems { color: var(--del); font-weight: 600; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 16px; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; position: sticky; top: 0; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.planned { color: var(--del); font-weight: 600; } td.kept { color: var(--keep); } td.skipped { color: var(--skip); }
td.cmd code { white-space: pre-wrap; word-break: break-all; color: #23395b; }
td.id code { white-space: nowrap; }
details.step { border: 1px solid var(--line); border-radius: 6px; margin: 10px 0; padding: 8px 12px; }
details.step > summary { cursor: pointer; } details.step p.what { margin: 4px 0 0 0; color: var(--muted); }
.state { display: inline-block; padding: 0 6px; border-radius: 4px; font-size: 12px; font-weight: 600; }
.state.planned { background: #fbe3dd; color: var(--del); } .state.kept { background: #dcf1e4; color: var(--keep); }
.state.skipped { background: #f7efc6; color: var(--skip); }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
@media print { details.step { break-inside: avoid; } th { position: static; } }
"""

_OPEN_UP_TO = 200  # steps with more items start folded (their rows are in the page all the same)


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _name(item: PlanItem) -> str:
    return "" if item.name == item.id else item.name


def _command(item: PlanItem, tag: str, options: MigrationOptions | None) -> str:
    """What an admin would type for `item`: the vendor's commands for a migration or reboot item (how
    a node is rebooted depends on the options: without them, none is shown), else the cleanup's."""
    if item.state != PLANNED:
        return ""
    try:
        if item.step.startswith(("A", "R")):
            return "\n".join(script_export.migration_by_hand(item, options)) if options is not None else ""
        return "\n".join(script_export.by_hand(item, tag))
    except (KeyError, ValueError):
        return ""


def _summary_table(plan: Plan) -> list[str]:
    rows = ['<table id="summary"><thead><tr><th>step</th><th>what</th><th>to do</th><th>kept</th><th>skipped</th>'
            "<th>in words</th></tr></thead><tbody>"]
    for step, items in plan.by_step():
        counts = Counter(i.state for i in items)
        cells = "".join(f'<td class="n {state}" data-state="{state}">{counts.get(state, 0):,}</td>'
                        for state in (PLANNED, KEPT, SKIPPED))
        rows.append(f'<tr id="summary-{_e(step.id)}" data-step="{_e(step.id)}"><td>{_e(step.id)}</td>'
                    f"<td>{_e(step.title)}</td>{cells}<td>{_e(render.step_summary(items))}</td></tr>")
    rows.append("</tbody></table>")
    return rows


def _step_section(step: StepInfo, items: list[PlanItem], tag: str, options: MigrationOptions | None) -> list[str]:
    counts = Counter(i.state for i in items)
    opened = " open" if len(items) <= _OPEN_UP_TO else ""
    out = [f'<details class="step" id="step-{_e(step.id)}"{opened}><summary><h3>{_e(step.id)} {_e(step.title)}</h3> '
           f"({', '.join(f'{n:,} {s}' for s, n in counts.items()) or 'nothing to do'})</summary>",
           f'<p class="what">{_e(render.step_summary(items))}</p>']
    todo = [(i, _command(i, tag, options)) for i in items if i.state == PLANNED]
    if todo:
        commands = any(command for _, command in todo)
        out.append('<table class="items"><thead><tr><th>action</th><th>kind</th><th>id</th><th>name</th>'
                   "<th>evidence (why it is this cluster's)</th>" + ("<th>command</th>" if commands else "")
                   + "</tr></thead><tbody>")
        for item, command in todo:
            note = f"<br><em>{_e(item.reason)}</em>" if item.reason else ""
            out.append(f'<tr class="item planned" data-id="{_e(item.id)}" data-kind="{_e(item.kind)}">'
                       f"<td>{_e(render.action_words(item.action))}</td><td>{_e(item.kind)}</td>"
                       f'<td class="id"><code>{_e(item.id)}</code></td><td>{_e(_name(item))}</td>'
                       f"<td>{_e(item.evidence)}{note}</td>"
                       + (f'<td class="cmd"><code>{_e(command)}</code></td>' if commands else "") + "</tr>")
        out.append("</tbody></table>")
    left = [i for i in items if i.state != PLANNED]
    if left:
        out.append('<table class="left"><thead><tr><th>state</th><th>kind</th><th>id</th><th>name</th>'
                   "<th>why it is left alone</th><th>evidence</th></tr></thead><tbody>")
        for item in left:
            out.append(f'<tr class="item {_e(item.state)}" data-id="{_e(item.id)}" data-kind="{_e(item.kind)}">'
                       f'<td><span class="state {_e(item.state)}">{_e(item.state)}</span></td><td>{_e(item.kind)}</td>'
                       f'<td class="id"><code>{_e(item.id)}</code></td><td>{_e(_name(item))}</td>'
                       f"<td>{_e(item.reason)}</td><td>{_e(item.evidence)}</td></tr>")
        out.append("</tbody></table>")
    out.append("</details>")
    return out


def page(plan: Plan, identity: dict[str, str], title: str = "Cleanup plan", problems: list[str] | None = None,
         now: dt.datetime | None = None, options: MigrationOptions | None = None) -> str:
    """The page; `options` (the run's migration and reboot options) gives the migration's items their
    commands."""
    infra_id = identity.get("infraID") or plan.infra_id
    tag = cluster_tag(infra_id)
    stamp = (now or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds")
    counts = Counter(i.state for i in plan.items)
    total = (f"{counts.get(PLANNED, 0):,} changes and deletions planned; {counts.get(KEPT, 0):,} kept; "
             f"{counts.get(SKIPPED, 0):,} skipped")
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{_e(title)}: {_e(infra_id)}</title><style>{_CSS}</style></head><body>",
           f"<header><h1>{_e(title)} for cluster <code>{_e(infra_id)}</code></h1>",
           '<dl class="identity">',
           f'<dt>infraID</dt><dd id="infra-id">{_e(infra_id)}</dd>',
           f'<dt>cluster ID</dt><dd id="cluster-id">{_e(identity.get("clusterID", "unknown"))}</dd>',
           f'<dt>OpenStack project</dt><dd id="project-id">{_e(identity.get("projectID", "unknown"))}</dd>',
           f'<dt>cluster tag</dt><dd>{_e(tag)}</dd>',
           f"<dt>generated</dt><dd>{_e(stamp)} by kuryr-migrate {_e(__version__)} (read-only: --plan)</dd></dl>",
           f'<p class="total" id="total" data-planned="{counts.get(PLANNED, 0)}" data-kept="{counts.get(KEPT, 0)}" '
           f'data-skipped="{counts.get(SKIPPED, 0)}">{_e(total)}</p></header>']
    if problems:
        out.append('<h2>Preflight would refuse to start</h2><ul class="problems" id="problems">'
                   + "".join(f"<li>{_e(p)}</li>" for p in problems) + "</ul>")
    if plan.notes:
        out.append('<h2>Notes</h2><ul class="notes" id="notes">' + "".join(f"<li>{_e(n)}</li>" for n in plan.notes)
                   + "</ul>")
    out.append("<h2>Summary</h2>")
    out += _summary_table(plan)
    groups = [("Migration to OVN-Kubernetes (A0-A9, reboots R)", ("A", "R")), ("Cleanup of Kuryr's leftovers (B1-B18)",
                                                                             ("B",))]
    by_step = list(plan.by_step())
    for heading, prefixes in groups:
        steps = [(s, items) for s, items in by_step if s.id.startswith(prefixes)]
        if not steps:
            continue
        section = "migration" if "A" in prefixes else "cleanup"
        out.append(f'<section id="{section}"><h2>{_e(heading)}</h2>')
        for step, items in steps:
            out += _step_section(step, items, tag, options)
        out.append("</section>")
    script = "run" if any(i.step.startswith(("A", "R")) for i in plan.items) else "cleanup"
    out.append("<footer>Commands are what an administrator would type to do the same by hand "
               f"(<code>kuryr-migrate {script} --plan -o script</code> writes them all as one script, with the "
               "waits). "
               "The tool itself re-validates every item just before acting and journals each object first."
               "</footer></body></html>")
    return "\n".join(out) + "\n"
