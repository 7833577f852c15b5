"""Latency, injected failures, services' capacity and the request log.

Fault rules let tests and admins rehearse what production does to a long cleanup: a 503 from a busy
Neutron, a 429 with Retry-After from a rate limiter, a connection dropped by a load balancer. A
capacity model makes a service behave like a real one under load: past the requests it serves in
parallel they queue (latency grows with the requests in flight), past a hard limit its front end
refuses them (503), as haproxy in front of neutron-server does when its queue is full.
"""

from __future__ import annotations

import fnmatch
import json
import random
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

DROP = 0  # status meaning: close the connection without answering
HANG = -1  # status meaning: hold the request unanswered until released (then drop it): tests kill the
# client while it waits, to prove a run interrupted at that exact write converges when run again


@dataclass
class FaultRule:
    """Answer matching requests with `status` (0: drop the connection) instead of serving them.

    `service` is one of identity, network, load-balancer, compute, kube (or *); `path` is an
    fnmatch pattern on the path below the service prefix (e.g. `/v2.0/ports/*`); `count` bounds how
    many times the rule fires (None: forever); `probability` makes it fire at random.
    """

    service: str = "*"
    method: str = "*"
    path: str = "*"
    status: int = 503
    probability: float = 1.0
    count: int | None = None
    retry_after: float | None = None
    after: int = 0  # let this many matching requests through before the rule starts firing
    fired: int = field(default=0)
    seen: int = field(default=0)

    def matches(self, service: str, method: str, path: str) -> bool:
        if self.count is not None and self.fired >= self.count:
            return False
        return (
            fnmatch.fnmatchcase(service, self.service)
            and fnmatch.fnmatchcase(method.upper(), self.method.upper())
            and fnmatch.fnmatchcase(path, self.path)
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k not in ("fired", "seen")}
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fault rule keys: {', '.join(sorted(unknown))}")
        return cls(**known)


def parse_faults(text: str) -> list[FaultRule]:
    """Rules from JSON (a list of objects) or from the short form
    `service:METHOD:path=status[xCOUNT][@PROBABILITY][,retry-after=S]`, rules separated by `;`.

    Example: `network:DELETE:/v2.0/ports/*=503x3;load-balancer:*:*=429,retry-after=1`.
    """
    text = text.strip()
    if not text:
        return []
    if text.startswith("[") or text.startswith("{"):
        data = json.loads(text)
        if isinstance(data, dict):
            data = [data]
        return [FaultRule.from_dict(d) for d in data]
    rules = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        try:
            rule, _, retry = part.partition(",retry-after=")
            where, _, what = rule.rpartition("=")
            service, method, path = where.split(":", 2)
            what, _, probability = what.partition("@")
            what, _, count = what.partition("x")
            status = {"drop": DROP, "hang": HANG}[what] if what in ("drop", "hang") else int(what)
            rules.append(FaultRule(service, method, path, status, float(probability or 1.0),
                                   int(count) if count else None, float(retry) if retry else None))
        except ValueError as exc:
            raise ValueError(f"bad fault rule {part!r}: expected service:METHOD:path=status") from exc
    return rules


@dataclass
class Capacity:
    """One service's capacity: `parallel` requests are served at the base latency; with more in
    flight each takes latency x in_flight / parallel (they queue for the service's workers); beyond
    `limit` in flight (None: never) the request is refused with a 503."""

    parallel: int
    limit: int | None = None
    in_flight: int = 0
    peak: int = 0
    refused: int = 0
    served: int = 0

    def __post_init__(self) -> None:
        if self.parallel < 1 or (self.limit is not None and self.limit < self.parallel):
            raise ValueError(f"capacity {self.parallel}:{self.limit}: need 1 <= parallel <= limit")


def parse_capacity(text: str | dict[str, Any]) -> dict[str, Capacity]:
    """`service=PARALLEL[:LIMIT]`, comma separated (e.g. `network=8:16,load-balancer=4:8`), or JSON
    `{"network": {"parallel": 8, "limit": 16}}`."""
    if isinstance(text, str) and text.strip().startswith("{"):
        text = json.loads(text)
    if isinstance(text, dict):
        return {name: Capacity(int(v["parallel"]), None if v.get("limit") is None else int(v["limit"]))
                for name, v in text.items()}
    found = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            service, _, numbers = part.partition("=")
            parallel, _, limit = numbers.partition(":")
            found[service.strip()] = Capacity(int(parallel), int(limit) if limit else None)
        except ValueError as exc:
            raise ValueError(f"bad capacity {part!r}: expected service=PARALLEL[:LIMIT] ({exc})") from exc
    return found


@dataclass
class LoggedRequest:
    t: float
    service: str
    method: str
    path: str
    query: str
    status: int


class Faults:
    """The simulator's fault rules, latency and request log (thread-safe)."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._lock = threading.Lock()
        self.rules: list[FaultRule] = []
        self.latency = 0.0  # seconds added to every API call
        self.capacity: dict[str, Capacity] = {}
        self.log: list[LoggedRequest] = []
        self._rng = rng or random.Random(0)
        self.released = threading.Event()  # set to let HANG requests go (they are then dropped)

    def set_rules(self, rules: list[FaultRule]) -> None:
        with self._lock:
            self.rules = list(rules)

    def add_rules(self, rules: list[FaultRule]) -> None:
        with self._lock:
            self.rules.extend(rules)

    def pick(self, service: str, method: str, path: str) -> FaultRule | None:
        """The rule that fires for this request, if any (counts it as fired)."""
        with self._lock:
            for rule in self.rules:
                if not rule.matches(service, method, path):
                    continue
                rule.seen += 1
                if rule.seen > rule.after and self._rng.random() < rule.probability:
                    rule.fired += 1
                    return rule
        return None

    def set_capacity(self, capacity: dict[str, Capacity]) -> None:
        with self._lock:
            self.capacity = dict(capacity)

    def describe_capacity(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {name: asdict(c) for name, c in self.capacity.items()}

    def admit(self, service: str) -> float | None:
        """Count a request to `service` in: the latency it takes, or None when the service refuses it
        (then it is not counted in; else `leave` must follow)."""
        with self._lock:
            cap = self.capacity.get(service)
            if cap is None:
                return self.latency
            if cap.limit is not None and cap.in_flight >= cap.limit:
                cap.refused += 1
                return None
            cap.in_flight += 1
            cap.served += 1
            cap.peak = max(cap.peak, cap.in_flight)
            return self.latency * max(1.0, cap.in_flight / cap.parallel)

    def leave(self, service: str) -> None:
        with self._lock:
            cap = self.capacity.get(service)
            if cap is not None and cap.in_flight > 0:
                cap.in_flight -= 1

    def record(self, entry: LoggedRequest) -> None:
        with self._lock:
            self.log.append(entry)

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(e) for e in self.log]

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(r) for r in self.rules]
