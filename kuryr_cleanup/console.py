"""The terminal side of the commands' UI: lines, plans, prompts, progress bars and logs, with click and tqdm.

Progress: on a terminal, a bar per step (tqdm) that fits the terminal's width, with the elapsed
time; otherwise one plain line per state change, the same fields as the journal. Lines go to stdout,
or to stderr when stdout carries a document (JSON, YAML, an HTML page or a script).

Logs: `-v` shows more on stderr (what the tool does, and one line per HTTP request); `-vv` also the
client libraries' own debug output. `--log-file FILE` writes every record as a JSON line, with
credentials scrubbed as in the journal.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import shutil
import sys
from typing import IO, Any

import click
from tqdm import tqdm

from kuryr_cleanup import render
from kuryr_cleanup.errors import UsageError
from kuryr_cleanup.journal import scrub
from kuryr_cleanup.plan import BLOCKED, FAILED, Plan, PlanItem

log = logging.getLogger("kuryr_cleanup")

# The widest label a bar gets, and what the rest of a bar line takes: " 100%|" + bar + "| 2104/2104 [01:02<00:00]".
_LABEL_MAX = 40
_BAR_MIN = 10
_BAR_FORMAT = "{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}]"


def _label_width(width: int, total_digits: int) -> int:
    """What is left for the label once the bar has its minimum and the counters and clock their room."""
    fixed = 6 + 2 + 2 * total_digits + 1 + 10  # percentage, bar ends, n/total, [elapsed]
    return max(8, min(_LABEL_MAX, width - fixed - _BAR_MIN))


def fit(line: str) -> str:
    """A line under 120 characters, wrapped at spaces (a comment line's continuations stay comments)."""
    if len(line) <= render.WIDTH:
        return line
    if line.startswith("# "):
        return "\n".join("# " + part for part in render.wrap(line[2:], 2, render.WIDTH - 2))
    return "\n".join(render.wrap(line, 4))


def cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


class Progress:
    """Progress of a run; called from the engine's scheduling thread only."""

    def __init__(self, plan: Plan, json_output: bool, stream: IO[str] | None = None, width: int | None = None,
                 tty: bool | None = None) -> None:
        self.json_output = json_output
        self.stream = stream or sys.stderr
        self.tty = (self.stream.isatty() if tty is None else tty) and not json_output
        self._bars: dict[str, Any] = {}
        if self.tty:
            titles = {s.id: s.title for s in plan.steps}
            totals: dict[str, int] = {}
            for item in plan.actionable():
                totals[item.step] = totals.get(item.step, 0) + 1
            width = width or shutil.get_terminal_size((100, 24)).columns
            digits = len(str(max(totals.values(), default=1)))
            label = _label_width(width, digits)
            for position, (step, total) in enumerate(totals.items()):
                desc = cut(f"{step:<4} {titles.get(step, '')}", label).ljust(label)
                self._bars[step] = tqdm(total=total, desc=desc, position=position, file=self.stream, leave=True,
                                        unit="item", ncols=width, bar_format=_BAR_FORMAT)

    def __call__(self, item: PlanItem) -> None:
        # Once per state change, tens of thousands of times: no work for a log nobody asked for, and
        # a plain write (click.echo asks the stream whether it is a terminal on every line).
        if log.isEnabledFor(logging.INFO):
            log.info(render.describe(item), extra={"fields": {"step": item.step, "kind": item.kind, "id": item.id,
                                                                "action": item.action, "state": item.state,
                                                                "reason": item.reason}})
        bar = self._bars.get(item.step)
        if bar is None:
            out = sys.stderr if self.json_output else sys.stdout
            line = render.item_line(item) + "\n"
            try:
                out.write(line)
            except UnicodeEncodeError:  # a name the terminal cannot show must not stop the run
                encoding = getattr(out, "encoding", None) or "ascii"
                out.write(line.encode(encoding, "replace").decode(encoding))
            out.flush()
            return
        bar.update(1)
        if item.state in (FAILED, BLOCKED):
            bar.write(render.item_line(item), file=self.stream)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars = {}


class ConsoleUI:
    """The commands' UI on a terminal (or a pipe: CI has no terminal and no standard input).

    `json_output`: stdout carries a document (any output but the table), so lines go to stderr.
    `details`: plans are shown with every resource, not only the summary.
    """

    def __init__(self, json_output: bool, details: bool = False) -> None:
        self.json_output = json_output
        self.details = details

    def say(self, line: str) -> None:
        log.info(line)
        # The simulator's banner (comment lines, before the plan) wraps like the plan; progress lines
        # stay one line per state change, for grep.
        click.echo(fit(line) if line.startswith("# ") else line, err=self.json_output)

    def show(self, text: str) -> None:
        click.echo(text, err=self.json_output)

    def warn(self, line: str) -> None:
        log.warning(line)
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


# -- logs -----------------------------------------------------------------------------------------------
# Credentials that can appear in a log message's text (headers, bodies, URLs): the journal's `scrub`
# handles structured fields by key; these handle text.
_SECRETS_IN_TEXT = (
    re.compile(r"(?i)((?:x-auth-token|x-subject-token|authorization)[\"']?\s*[:=]\s*[\"']?)(?:bearer\s+)?[^\s\"',}]+"),
    re.compile(r"(?i)([\"'](?:password|token|secret|client-key-data|application_credential_secret)[\"']\s*:\s*)"
               r"\"[^\"]*\""),
    re.compile(r"(?i)((?:password|token|secret)=)[^&\s]+"),
)


def scrub_text(text: str) -> str:
    for pattern in _SECRETS_IN_TEXT:
        text = pattern.sub(lambda m: m.group(1) + "<redacted>", text)
    return text


class JsonLines(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and the record's fields (an item's
    step, kind, id, action, state, reason: the journal's fields)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name, "message": scrub_text(record.getMessage()),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(scrub(fields))
        if record.exc_info:
            entry["exception"] = scrub_text(self.formatException(record.exc_info))
        return json.dumps(entry, sort_keys=True, default=str)


class _Scrubbed(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub_text(super().format(record))


# -v: the tool's own detail and one line per HTTP request (urllib3 logs method, path, status; no
# headers, no bodies). -vv: the client libraries' debug output too (request and response bodies).
_REQUEST_LOGGERS = ("urllib3.connectionpool",)
_LIBRARY_LOGGERS = ("keystoneauth", "openstack", "kubernetes")


def configure_logging(verbosity: int, log_file: str | None) -> list[logging.Handler]:
    """Attach the handlers `-v` and `--log-file` ask for; returns them, for `close_logging`."""
    handlers: list[logging.Handler] = []
    if verbosity:
        stderr = logging.StreamHandler(sys.stderr)
        stderr.setFormatter(_Scrubbed("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        stderr.setLevel(logging.DEBUG)
        handlers.append(stderr)
    if log_file:
        try:
            file_handler = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write the log file {log_file}: {exc.strerror or exc}") from exc
        file_handler.setFormatter(JsonLines())
        file_handler.setLevel(logging.DEBUG)
        handlers.append(file_handler)
    if not handlers:
        return handlers
    wanted = ["kuryr_cleanup", *_REQUEST_LOGGERS]
    if verbosity > 1 or log_file:
        wanted += list(_LIBRARY_LOGGERS)
    for name in wanted:
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG if name in ("kuryr_cleanup", *_REQUEST_LOGGERS) or verbosity > 1
                        else logging.INFO)
        for handler in handlers:
            logger.addHandler(handler)
    return handlers


def close_logging(handlers: list[logging.Handler]) -> None:
    for name in ("kuryr_cleanup", *_REQUEST_LOGGERS, *_LIBRARY_LOGGERS):
        logger = logging.getLogger(name)
        for handler in handlers:
            logger.removeHandler(handler)
    for handler in handlers:
        handler.close()
