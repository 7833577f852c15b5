"""Runs a plan: one bounded worker pool over the dependency graph of steps and items.

- An item starts when every step its step depends on has finished and every item named in its
  `after` has succeeded. A failed dependency blocks its dependents (they are reported, not tried):
  deleting a security group while the ports that use it could not be deleted would only fail again.
- Failures are isolated per item: independent branches go on.
- Asynchronous deletions (Octavia) don't hold a worker: the executor returns a `Waiting`, and the
  engine asks the group's poller (one list call for all of them) until they are done.
- Ctrl-C stops submitting, lets running calls finish, and leaves the journal and state for a re-run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from kuryr_cleanup.plan import BLOCKED, DONE, FAILED, FINAL_OK_STATES, GONE, PlanItem
from kuryr_cleanup.retrying import describe


@dataclass(frozen=True)
class Finished:
    state: str  # done | gone | failed
    reason: str = ""


@dataclass(frozen=True)
class Waiting:
    """The action was sent; the item finishes when `group`'s poller says `ident` is ready.

    With `retry` the item's executor runs again once ready (e.g. an LB left PENDING_UPDATE).
    """

    group: str
    ident: str
    timeout: float
    what: str  # for the timeout message: "to be deleted", "to leave PENDING_UPDATE"
    retry: bool = False


Outcome = Finished | Waiting


# For each ident: "ready", or a short word saying what it is still doing.
Poller = Callable[[set[str]], dict[str, str]]


Executor = Callable[[PlanItem], Outcome]
Listener = Callable[[PlanItem], None]


@dataclass
class _Wait:
    item: PlanItem
    waiting: Waiting
    deadline: float
    last_status: str = ""


@dataclass
class RunResult:
    items: list[PlanItem]
    interrupted: bool = False
    elapsed: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(i.state not in (FAILED, BLOCKED) for i in self.items)


class Engine:
    def __init__(
        self,
        executors: dict[str, Executor],
        pollers: dict[str, Poller],
        step_deps: dict[str, tuple[str, ...]],
        concurrency: int = 20,
        poll_interval: float = 2.0,
        on_change: Listener | None = None,
    ) -> None:
        self.executors = executors
        self.pollers = pollers
        self.step_deps = step_deps
        self.concurrency = max(1, concurrency)
        self.poll_interval = poll_interval
        self.on_change = on_change or (lambda item: None)
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def _execute(self, item: PlanItem) -> Outcome:
        executor = self.executors.get(f"{item.kind}/{item.action}") or self.executors.get(item.action)
        if executor is None:
            return Finished(FAILED, f"no executor for action {item.action!r}")
        try:
            return executor(item)
        except Exception as exc:  # one resource's failure must not stop independent work
            return Finished(FAILED, describe(exc))

    def run(self, items: Iterable[PlanItem]) -> RunResult:
        started = time.monotonic()
        all_items = list(items)
        todo = [i for i in all_items if i.actionable]
        finished: dict[str, PlanItem] = {}
        step_pending: dict[str, int] = {}
        step_bad: set[str] = set()
        for item in todo:
            step_pending[item.step] = step_pending.get(item.step, 0) + 1
        waiting_items = list(todo)
        running: dict[Future[Outcome], PlanItem] = {}
        waits: dict[str, _Wait] = {}
        interrupted = False
        next_poll = time.monotonic()

        def deps_state(item: PlanItem) -> tuple[bool, str]:
            """(ready, blocking reason)."""
            for dep in self.step_deps.get(item.step, ()):
                if step_pending.get(dep, 0):
                    return False, ""
                if dep in step_bad:
                    return False, f"blocked: step {dep} did not finish cleanly"
            for key in item.after:
                if key in pending_keys:
                    return False, ""
                done = finished.get(key)
                if done is not None and done.state not in FINAL_OK_STATES:
                    return False, f"blocked: {done.action} of {done.kind} {done.name or done.id} {done.state}"
            return True, ""

        def finish(item: PlanItem, state: str, reason: str = "") -> None:
            result = item.with_state(state, reason)
            finished[item.key] = result
            pending_keys.discard(item.key)
            step_pending[item.step] -= 1
            if state not in FINAL_OK_STATES:
                step_bad.add(item.step)
            self.on_change(result)

        pending_keys = {i.key for i in todo}
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="kuryr-migrate")
        try:
            while waiting_items or running or waits:
                if self._stop.is_set():
                    interrupted = True
                    break
                # Release what is ready; block what can no longer run.
                progressed = True
                while progressed:
                    progressed = False
                    still: list[PlanItem] = []
                    for item in waiting_items:
                        ready, blocked = deps_state(item)
                        if blocked:
                            finish(item, BLOCKED, blocked)
                            progressed = True
                        elif ready and len(running) < self.concurrency * 2:
                            running[pool.submit(self._execute, item)] = item
                        else:
                            still.append(item)
                    waiting_items = still
                if not running and not waits and waiting_items:
                    # Nothing can move: a dependency cycle or a dependency outside the plan.
                    for item in waiting_items:
                        finish(item, BLOCKED, "blocked: its dependencies cannot finish")
                    waiting_items = []
                    break
                timeout = max(0.0, next_poll - time.monotonic()) if waits else None
                if running:
                    done, _ = wait(list(running), timeout=timeout if timeout is not None else 0.5,
                                   return_when=FIRST_COMPLETED)
                else:
                    done = set()
                    if timeout:
                        self._stop.wait(timeout)
                for future in done:
                    item = running.pop(future)
                    outcome = future.result()
                    if isinstance(outcome, Waiting):
                        waits[item.key] = _Wait(item, outcome, time.monotonic() + outcome.timeout)
                    else:
                        finish(item, outcome.state, outcome.reason)
                if waits and time.monotonic() >= next_poll:
                    self._poll(waits, finish, waiting_items)
                    next_poll = time.monotonic() + self.poll_interval
        except KeyboardInterrupt:
            interrupted = True
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if interrupted:
            for future, item in running.items():
                if future.done() and not future.cancelled():
                    outcome = future.result()
                    if isinstance(outcome, Finished):
                        finish(item, outcome.state, outcome.reason)
        results = [finished.get(i.key, i) for i in all_items]
        return RunResult(results, interrupted=interrupted, elapsed=time.monotonic() - started)

    def _poll(self, waits: dict[str, _Wait], finish: Callable[[PlanItem, str, str], None],
              requeue: list[PlanItem]) -> None:
        groups: dict[str, set[str]] = {}
        for w in waits.values():
            groups.setdefault(w.waiting.group, set()).add(w.waiting.ident)
        statuses: dict[tuple[str, str], str] = {}
        for group, idents in groups.items():
            try:
                answer = self.pollers[group](idents)
            except Exception as exc:  # a failed poll is retried at the next interval
                answer = {i: f"poll failed ({describe(exc)})" for i in idents}
            for ident in idents:
                statuses[(group, ident)] = answer.get(ident, "ready")
        now = time.monotonic()
        for key in list(waits):
            w = waits[key]
            status = statuses[(w.waiting.group, w.waiting.ident)]
            if status == "ready":
                del waits[key]
                if w.waiting.retry:
                    requeue.append(w.item)
                else:
                    finish(w.item, DONE, "")
            elif now >= w.deadline:
                del waits[key]
                finish(w.item, FAILED, f"timed out waiting {w.waiting.what} (still {status})")
            else:
                w.last_status = status


def gone_or_done(found: bool) -> Finished:
    """404 is success (S3): the resource is already gone."""
    return Finished(DONE) if found else Finished(GONE, "already gone")


def result_summary(items: Iterable[PlanItem]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item.state] = counts.get(item.state, 0) + 1
    return counts
