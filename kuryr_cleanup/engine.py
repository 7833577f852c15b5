"""Runs a plan: one bounded worker pool over the dependency graph of steps and items.

- An item starts when every step its step depends on has finished (order) and every item named in
  its `after` has succeeded. Only a failed item named in `after` blocks (its dependents are reported,
  not tried): deleting a security group while the ports that use it could not be deleted would only
  fail again. An item kept at run time (a foreign object holds it) keeps its dependents too.
- Failures are isolated per item: one port that can't go blocks its network, its security group and
  its KuryrNetwork finalizer, not every later step of every namespace.
- Asynchronous deletions (Octavia) don't hold a worker: the action returns a `Waiting`, and the
  engine asks its poller (one list call for every item waiting on that poller) until they are done.
- Ctrl-C stops submitting, lets running calls finish, and leaves the journal and state for a re-run.
- `concurrency` bounds the API calls in flight, not the workers. With `limits` (adaptive.py) each
  request holds a slot of its service, and the engine runs a quarter more workers than the ceiling:
  a worker also waits for the journal's fsync before its write, and that wait should not keep a call
  slot idle. Items are handed out round robin over their services (`service_of`), each service at
  most twice its current limit at once, so a service that is slowed down (fewer slots) does not
  take every worker while another service's items wait.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from kuryr_cleanup import retrying
from kuryr_cleanup.adaptive import Limits
from kuryr_cleanup.plan import BLOCKED, DONE, FAILED, FINAL_OK_STATES, KEPT, PlanItem
from kuryr_cleanup.retrying import describe

# For each ident: "ready"; "retry" to run the action again (e.g. an LB Octavia put in ERROR while
# deleting it); or a short word saying what it is still doing.
Poller = Callable[[set[str]], dict[str, str]]


SWITCH_INTERVAL = 0.0005  # seconds: the interpreter's thread switch interval while a plan runs


@dataclass(frozen=True)
class Finished:
    state: str  # done | gone | failed
    reason: str = ""


@dataclass(frozen=True)
class Waiting:
    """The action was sent; the item finishes when `poller` says `ident` is ready.

    With `retry` the item's action runs again once ready (e.g. an LB left PENDING_UPDATE).
    """

    poller: Poller
    ident: str
    timeout: float
    what: str  # for the timeout message: "to be deleted", "to leave PENDING_UPDATE"
    retry: bool = False


Outcome = Finished | Waiting


READY = "ready"
RELEASED_PARAMS = ("object", "related")  # PlanItem.params a finished item lets go
RETRY = "retry"
MAX_RETRIES = 3


Execute = Callable[[PlanItem], Outcome]
Listener = Callable[[PlanItem], None]


@dataclass
class _Wait:
    item: PlanItem
    waiting: Waiting
    deadline: float


@dataclass
class RunResult:
    items: list[PlanItem]
    interrupted: bool = False
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(i.state not in (FAILED, BLOCKED) for i in self.items)


def _because(reason: str) -> str:
    reason = reason.split(": ", 1)[1] if reason.startswith(("kept: ", "blocked: ")) else reason
    return f" ({reason[:160]})" if reason else ""


class _Graph:
    """Which items may start: event-driven, so a run of tens of thousands of items stays linear.

    An item may start when every step its step depends on has no unfinished item and every item in
    its `after` has finished well; step dependencies order, item dependencies block.
    """

    def __init__(self, items: list[PlanItem], step_deps: dict[str, tuple[str, ...]]) -> None:
        self.step_deps = step_deps
        self.unfinished: dict[str, PlanItem] = {i.key: i for i in items}
        self.finished: dict[str, PlanItem] = {}
        self.ready: deque[PlanItem] = deque()
        self.step_pending: dict[str, int] = {}
        self.parked: dict[str, list[PlanItem]] = {}  # step -> items waiting for their step's dependencies
        self.unmet: dict[str, int] = {}
        self.dependents: dict[str, list[PlanItem]] = {}
        self.dependent_steps: dict[str, set[str]] = {}
        for step, deps in step_deps.items():
            for dep in deps:
                self.dependent_steps.setdefault(dep, set()).add(step)
        for item in items:
            self.step_pending[item.step] = self.step_pending.get(item.step, 0) + 1
            waits_for = [k for k in item.after if k in self.unfinished]
            self.unmet[item.key] = len(waits_for)
            for key in waits_for:
                self.dependents.setdefault(key, []).append(item)
        for item in items:
            self.parked.setdefault(item.step, []).append(item)
        for step in list(self.parked):
            self._release(step)

    def _step_waiting(self, step: str) -> bool:
        return any(self.step_pending.get(dep, 0) for dep in self.step_deps.get(step, ()))

    def _release(self, step: str) -> None:
        """Move a step's parked items on once the steps it depends on have finished."""
        if self._step_waiting(step) or step not in self.parked:
            return
        for item in self.parked.pop(step):
            if self.unmet[item.key] == 0 and item.key in self.unfinished:
                self.ready.append(item)

    def _step_open(self, step: str) -> bool:
        return step not in self.parked and not self._step_waiting(step)

    def finish(self, item: PlanItem, state: str, reason: str = "") -> list[PlanItem]:
        """Record an item's end; returns it and every item that this blocked, in order."""
        if item.key not in self.unfinished:
            return []
        del self.unfinished[item.key]
        result = item.with_state(state, reason)
        self.finished[item.key] = result
        out = [result]
        self.step_pending[item.step] -= 1
        what = f"{item.kind} {item.name or item.id}"
        for dependent in self.dependents.pop(item.key, []):
            if dependent.key not in self.unfinished:
                continue
            if state not in FINAL_OK_STATES:
                out.extend(self.finish(dependent, BLOCKED, f"blocked: {what} {state}" + _because(reason)))
                continue
            if state == KEPT:
                out.extend(self.finish(dependent, KEPT, f"kept: {what} is kept" + _because(reason)))
                continue
            self.unmet[dependent.key] -= 1
            if self.unmet[dependent.key] == 0 and self._step_open(dependent.step):
                self.ready.append(dependent)
        if self.step_pending[item.step] == 0:
            for step in sorted(self.dependent_steps.get(item.step, ())):
                self._release(step)
        return out

    def stuck(self) -> list[PlanItem]:
        return list(self.unfinished.values())


class Engine:
    def __init__(
        self,
        execute: Execute,
        step_deps: dict[str, tuple[str, ...]],
        concurrency: int = 20,
        poll_interval: float = 2.0,
        on_change: Listener | None = None,
        limits: Limits | None = None,
        service_of: Callable[[PlanItem], str] | None = None,
    ) -> None:
        self.execute = execute
        self.step_deps = step_deps
        self.concurrency = max(1, concurrency)
        self.poll_interval = poll_interval
        self.on_change = on_change or (lambda item: None)
        self.limits = limits
        self.service_of = service_of or (lambda item: "")
        # Without limits the workers are what bounds the calls in flight. With them, a quarter more
        # workers than call slots: while some wait for the journal's fsync, others use the slots. More
        # (twice the slots was measured) only adds threads waiting for a slot: at M, 2.7 s more CPU.
        self.workers = self.concurrency + max(2, self.concurrency // 4) if limits is not None else self.concurrency
        self._stop = threading.Event()
        self._retries: dict[str, int] = {}

    def _room(self, service: str) -> int:
        """How many of a service's items may be handed to workers at once."""
        if self.limits is None:
            return self.concurrency
        return 2 * self.limits.limit(service)

    def stop(self) -> None:
        self._stop.set()

    def _execute(self, item: PlanItem) -> Outcome:
        try:
            return self.execute(item)
        except Exception as exc:  # one resource's failure must not stop independent work
            return Finished(FAILED, describe(exc))

    def run(self, items: Iterable[PlanItem]) -> RunResult:
        # Tens of workers each wait on the network, then want the interpreter for a fraction of a
        # millisecond: at the default 5 ms switch interval an answer can wait that long for its thread to
        # run, which at ~1,000 calls a second is most of a call's latency again.
        interval = sys.getswitchinterval()
        sys.setswitchinterval(min(interval, SWITCH_INTERVAL))
        try:
            return self._run(items)
        finally:
            sys.setswitchinterval(interval)

    def _run(self, items: Iterable[PlanItem]) -> RunResult:
        started = time.monotonic()
        all_items = list(items)
        graph = _Graph([i for i in all_items if i.actionable], self.step_deps)
        # Workers' outcomes, and (None, statuses) when a poll has answered.
        done_queue: queue.SimpleQueue[tuple[PlanItem | None, Any]] = queue.SimpleQueue()
        waits: dict[str, _Wait] = {}
        in_flight = 0
        interrupted = False
        next_poll = time.monotonic()
        polling = False
        queues: dict[str, deque[PlanItem]] = {}  # ready items by service, handed out round robin
        busy: Counter[str] = Counter()  # items with a worker, by service

        def dispatch() -> None:
            nonlocal in_flight
            while graph.ready:
                item = graph.ready.popleft()
                queues.setdefault(self.service_of(item), deque()).append(item)
            progressed = True
            while progressed and in_flight < self.workers:
                progressed = False
                for service, waiting in queues.items():
                    if in_flight >= self.workers:
                        break
                    if not waiting or busy[service] >= self._room(service):
                        continue
                    pool.submit(work, waiting.popleft())
                    busy[service] += 1
                    in_flight += 1
                    progressed = True

        def finish(item: PlanItem, state: str, reason: str = "") -> None:
            for result in graph.finish(item, state, reason):
                self.on_change(result)
                # The object was kept for the journal's record before the change: a finished item
                # needs it no more (tens of thousands of them would stay in memory to the end).
                for heavy in RELEASED_PARAMS:
                    result.params.pop(heavy, None)

        def work(item: PlanItem) -> None:
            done_queue.put((item, self._execute(item)))

        def ask(groups: dict[Poller, set[str]]) -> None:
            done_queue.put((None, self._ask(groups)))

        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="kuryr-migrate")
        # Polls run beside the loop: listing thousands of LBs being deleted takes a while, and the loop
        # must go on handing out work meanwhile.
        poll_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kuryr-migrate-poll")
        try:
            while graph.unfinished:
                if self._stop.is_set():
                    interrupted = True
                    break
                dispatch()
                if not in_flight and not waits:
                    for item in graph.stuck():  # a dependency that can never finish
                        finish(item, BLOCKED, "blocked: its dependencies cannot finish")
                    continue
                timeout = max(0.0, next_poll - time.monotonic()) if waits and not polling else 0.5
                batch: list[tuple[PlanItem | None, Any]] = []
                if in_flight or polling:
                    try:
                        batch.append(done_queue.get(timeout=timeout))
                    except queue.Empty:
                        pass
                elif timeout:
                    self._stop.wait(timeout)
                while True:
                    try:
                        batch.append(done_queue.get_nowait())
                    except queue.Empty:
                        break
                for done, outcome in batch:
                    if done is None:  # a poll answered
                        polling = False
                        self._apply(outcome, waits, finish, graph.ready)
                        next_poll = time.monotonic() + self.poll_interval
                        continue
                    in_flight -= 1
                    busy[self.service_of(done)] -= 1
                    if isinstance(outcome, Waiting):
                        waits[done.key] = _Wait(done, outcome, time.monotonic() + outcome.timeout)
                    else:
                        finish(done, outcome.state, outcome.reason)
                if waits and not polling and time.monotonic() >= next_poll:
                    groups: dict[Poller, set[str]] = {}
                    for w in waits.values():
                        groups.setdefault(w.waiting.poller, set()).add(w.waiting.ident)
                    poll_pool.submit(ask, groups)
                    polling = True
        except KeyboardInterrupt:
            interrupted = True
        finally:
            if interrupted:
                retrying.abort_waits()  # workers sleeping between retries give up at once
            pool.shutdown(wait=True, cancel_futures=True)
            poll_pool.shutdown(wait=True, cancel_futures=True)
            retrying.allow_waits()
        if interrupted:
            # Record what the running calls did before they were allowed to finish.
            while True:
                try:
                    done_item, done_outcome = done_queue.get_nowait()
                except queue.Empty:
                    break
                if done_item is not None and isinstance(done_outcome, Finished):
                    finish(done_item, done_outcome.state, done_outcome.reason)
        results = [graph.finished.get(i.key, i) for i in all_items]
        return RunResult(results, interrupted=interrupted, elapsed=time.monotonic() - started)

    @staticmethod
    def _ask(groups: dict[Poller, set[str]]) -> dict[tuple[Poller, str], str]:
        """Ask each poller once about every item waiting on it."""
        statuses: dict[tuple[Poller, str], str] = {}
        for poller, idents in groups.items():
            try:
                answer = poller(idents)
            except Exception as exc:  # a failed poll is retried at the next interval
                answer = {i: f"poll failed ({describe(exc)})" for i in idents}
            for ident in idents:
                statuses[(poller, ident)] = answer.get(ident, "ready")
        return statuses

    def _apply(self, statuses: dict[tuple[Poller, str], str], waits: dict[str, _Wait],
               finish: Callable[[PlanItem, str, str], None], requeue: deque[PlanItem]) -> None:
        """What a poll said, for the items that were waiting when it was asked."""
        now = time.monotonic()
        for key in list(waits):
            w = waits[key]
            status = statuses.get((w.waiting.poller, w.waiting.ident))
            if status is None:
                continue  # began waiting after the poll was asked: the next one tells
            if status == READY:
                del waits[key]
                if w.waiting.retry:
                    requeue.append(w.item)
                else:
                    finish(w.item, DONE, "")
            elif status == RETRY:
                del waits[key]
                self._retries[key] = self._retries.get(key, 0) + 1
                if self._retries[key] > MAX_RETRIES:
                    finish(w.item, FAILED, f"still failing {w.waiting.what} after {MAX_RETRIES} new attempts")
                else:
                    requeue.append(w.item)
            elif now >= w.deadline:
                del waits[key]
                finish(w.item, FAILED, f"timed out waiting {w.waiting.what} (still {status})")
