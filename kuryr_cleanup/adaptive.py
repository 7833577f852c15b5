"""How many API calls may be in flight, per service: `--concurrency` is the ceiling, and each service's
limit follows what the service can take (AIMD, as TCP and Netflix's concurrency-limits do).

Every request to a service holds one of its slots; the controller learns from each answer:
- latency holding near the service's best (its `baseline`) while the slots were all in use: add a slot
  per round trip (+1/limit per answer), or double per round trip until the first sign of trouble;
- 429 or 503 (the service, its proxy or its rate limiter says "too much"): cut the limit by `backoff`;
- latency rising past `tolerance` x the baseline (requests queue in the service before it starts
  refusing them): cut it by `latency_backoff`;
at most one cut per round trip (the answers to requests sent before a cut say nothing about the new
limit), never below `floor`, never above the ceiling. With `adaptive` off every service gets the ceiling.

The controller takes a clock, so tests drive it without sleeping.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

Clock = Callable[[], float]

OVERLOADED = frozenset({429, 503})


@dataclass(frozen=True)
class Settings:
    ceiling: int = 20  # --concurrency: never more in flight, for one service or all together
    floor: int = 2
    initial: int = 4  # where each service starts (slow start doubles it per round trip)
    backoff: float = 0.5  # limit x this on a 429/503
    latency_backoff: float = 0.8  # limit x this when latency rises past tolerance x baseline
    tolerance: float = 2.0
    baseline_window: float = 30.0  # seconds: the best latency of this window is the service's baseline
    adaptive: bool = True


class ServiceLimit:
    """One service's AIMD limit (not thread-safe: `Limits` holds the lock)."""

    def __init__(self, name: str, settings: Settings, now: float, lock: threading.Lock | None = None) -> None:
        self.name = name
        self.cond = threading.Condition(lock or threading.Lock())  # its waiters; the lock is the Limits' one
        self.settings = settings
        s = settings
        self.limit = float(min(s.ceiling, max(s.floor, s.initial)) if s.adaptive else s.ceiling)
        self.in_flight = 0
        self.slow_start = True
        self.smoothed = 0.0  # EWMA of recent latencies
        self._minima: deque[tuple[float, float]] = deque()  # (bucket start, best latency in it)
        self._last_cut = float("-inf")
        self.cuts = 0
        self.overloads = 0
        self.peak_in_flight = 0
        self.waiting = 0  # requests waiting for a slot

    @property
    def slots(self) -> int:
        return max(1, int(self.limit))

    @property
    def baseline(self) -> float:
        return min((m for _, m in self._minima), default=0.0)

    def _note_latency(self, now: float, latency: float) -> None:
        bucket = self.settings.baseline_window / 6
        start = now - now % bucket
        if self._minima and self._minima[-1][0] == start:
            self._minima[-1] = (start, min(self._minima[-1][1], latency))
        else:
            self._minima.append((start, latency))
        while self._minima and self._minima[0][0] < now - self.settings.baseline_window:
            self._minima.popleft()
        self.smoothed = latency if not self.smoothed else 0.8 * self.smoothed + 0.2 * latency

    def _cut(self, now: float, started: float, factor: float) -> None:
        # One cut per round trip: answers to requests sent before the last cut describe the old limit.
        if started <= self._last_cut:
            return
        s = self.settings
        self.limit = max(float(s.floor), self.limit * factor)
        self.slow_start = False
        self._last_cut = now
        self.cuts += 1

    def observe(self, now: float, started: float, status: int | None, busy: bool = True) -> None:
        """Learn from the answer to a request sent at `started`; `busy`: the slots were all in use (or
        wanted) when it came."""
        s = self.settings
        latency = now - started
        if status in OVERLOADED:
            self.overloads += 1
        if not s.adaptive:
            return
        if status in OVERLOADED:
            self._cut(now, started, s.backoff)
            return
        if status is None or status >= 500:
            return  # a failure says nothing about latency
        self._note_latency(now, latency)
        baseline = self.baseline
        if baseline and self.smoothed > s.tolerance * baseline and latency > s.tolerance * baseline:
            self._cut(now, started, s.latency_backoff)
            return
        if not busy:
            return  # the limit was not what held the calls back: no evidence it should grow
        self.limit = min(float(s.ceiling), self.limit + (1.0 if self.slow_start else 1.0 / self.limit))


class Limits:
    """The per-service limits and the ceiling over all of them; `slot(service)` around each request."""

    def __init__(self, settings: Settings | None = None, clock: Clock = time.monotonic) -> None:
        self.settings = settings or Settings()
        self.clock = clock
        self._lock = threading.Lock()
        self._services: dict[str, ServiceLimit] = {}
        self.in_flight = 0

    def service(self, name: str) -> ServiceLimit:
        with self._lock:
            return self._service(name)

    def _service(self, name: str) -> ServiceLimit:
        svc = self._services.get(name)
        if svc is None:
            svc = self._services[name] = ServiceLimit(name, self.settings, self.clock(), self._lock)
        return svc

    def limit(self, name: str) -> int:
        with self._lock:
            return self._service(name).slots

    def try_acquire(self, name: str) -> bool:
        with self._lock:
            return self._try_acquire(self._service(name))

    def _try_acquire(self, svc: ServiceLimit) -> bool:
        if svc.in_flight >= svc.slots or self.in_flight >= self.settings.ceiling:
            return False
        svc.in_flight += 1
        self.in_flight += 1
        svc.peak_in_flight = max(svc.peak_in_flight, svc.in_flight)
        return True

    def acquire(self, name: str) -> float:
        """Wait for a slot; returns the time it was granted (the request's start)."""
        with self._lock:
            svc = self._service(name)
            while not self._try_acquire(svc):
                svc.waiting += 1
                svc.cond.wait()
                svc.waiting -= 1
            return self.clock()

    def release(self, name: str, started: float, status: int | None) -> None:
        """Give the slot back with what the request's answer said (`status` None: no answer)."""
        with self._lock:
            svc = self._service(name)
            busy = svc.in_flight >= svc.slots - 1 or svc.waiting > 0
            at_ceiling = self.in_flight >= self.settings.ceiling
            svc.in_flight -= 1
            self.in_flight -= 1
            now = self.clock()
            svc.observe(now, started, status, busy)
            # Wake only whom a slot now fits (waking every waiting worker on every answer costs more
            # than the request): this service's, up to its room; another's if the ceiling held it.
            self._wake(svc)
            if at_ceiling:
                for other in self._services.values():
                    if other is not svc:
                        self._wake(other, 1)

    @staticmethod
    def _wake(svc: ServiceLimit, most: int | None = None) -> None:
        room = svc.slots - svc.in_flight
        if room > 0 and svc.waiting:
            svc.cond.notify(min(room, svc.waiting, most or room))

    @contextmanager
    def slot(self, name: str) -> Iterator[Callable[[int | None], None]]:
        """Hold a slot of `name` for one request; call the yielded function with the answer's status."""
        started = self.acquire(name)
        status: list[int | None] = [None]

        def answered(code: int | None) -> None:
            status[0] = code

        try:
            yield answered
        finally:
            self.release(name, started, status[0])

    def report(self) -> dict[str, dict[str, float]]:
        with self._lock:
            return {name: {"limit": svc.limit, "peak_in_flight": svc.peak_in_flight, "cuts": svc.cuts,
                           "overloads": svc.overloads, "baseline_ms": 1000 * svc.baseline}
                    for name, svc in sorted(self._services.items())}


UNLIMITED = Limits(Settings(ceiling=1 << 30, adaptive=False))
