"""What every command shares: the result it returns, the UI it talks through, clean interruption."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from kuryr_cleanup.engine import Engine, RunResult
from kuryr_cleanup.errors import ExitCode, Interrupted
from kuryr_cleanup.plan import Plan


def run_dir_line(ctx: Any) -> str:
    return f"Run directory: {ctx.run_dir} (journal.jsonl: every change; state.json: what a re-run needs)"


@dataclass
class Result:
    """What a command did: its exit code, the `-o json` document, and the table text."""

    exit_code: int = ExitCode.OK
    document: dict[str, Any] | None = None
    text: str = ""


class Progress(Protocol):
    def __call__(self, item: Any) -> None: ...

    def close(self) -> None: ...


class UI(Protocol):
    """How a command talks to the admin while it works (the CLI implements it with click)."""

    json_output: bool  # stdout carries a document (JSON, YAML, a page, a script): lines go to stderr
    details: bool  # plans are shown with every resource, not only their summary

    def say(self, line: str) -> None:
        """A progress line (on stderr when stdout carries a JSON document)."""

    def show(self, text: str) -> None:
        """A block the admin reads before deciding (a plan before its prompt)."""

    def warn(self, line: str) -> None:
        """A warning, always on stderr."""

    def confirm(self, infra_id: str, what: str) -> None:
        """Ask the admin to type the infraID; raise UsageError when they don't (nothing changed)."""

    def ask(self, question: str) -> bool | None:
        """A yes/no question; None when there is no one to ask (no terminal)."""

    def progress(self, plan: Plan) -> Progress:
        """A listener for the items of a running plan."""


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Ctrl-C leaves the state and journal as they are: the same command resumes."""
    try:
        yield
    except KeyboardInterrupt as exc:
        raise Interrupted("interrupted: run the same command again to resume (state and journal are kept)") from exc


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


