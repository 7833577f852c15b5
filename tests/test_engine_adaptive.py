"""Adaptive concurrency: each service gets as many calls in flight as it can take, up to --concurrency.

Driven by a fake clock and a model of a service (no sleeping, no server): requests are served at a
base latency up to `parallel` in flight, queue beyond that (latency grows with the requests in flight),
and are refused with a 503 beyond `hard`.
"""

from __future__ import annotations

import heapq
import threading
from dataclasses import dataclass, field

from kuryr_cleanup.adaptive import Limits, Settings
from kuryr_cleanup.engine import Engine, Finished, Waiting
from kuryr_cleanup.plan import DONE, PlanItem
from kuryr_cleanup.sim.faults import Faults, parse_capacity


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class ModelService:
    """A service's answers under load, as the simulator's capacity model gives them."""

    base: float = 0.02
    parallel: int = 8
    hard: int | None = 12
    in_flight: int = 0
    refused: int = 0
    served: int = 0
    queue: list[tuple[float, int, int]] = field(default_factory=list)  # (done at, seq, status)

    def latency(self) -> float:
        return self.base * max(1.0, self.in_flight / self.parallel)


def drive(limits: Limits, clock: FakeClock, model: ModelService, requests: int, name: str = "network") -> float:
    """Send `requests` requests through `limits` to `model` as fast as the limit allows; return the
    simulated time they took. A refused request is sent again (as the retry policy would)."""
    started_at = clock.now
    starts: dict[int, float] = {}
    seq = 0
    to_send = requests
    while to_send or model.queue:
        while to_send and limits.try_acquire(name):
            to_send -= 1
            seq += 1
            starts[seq] = clock.now
            if model.hard is not None and model.in_flight >= model.hard:
                model.refused += 1
                heapq.heappush(model.queue, (clock.now + 0.001, seq, 503))
                continue
            model.in_flight += 1
            heapq.heappush(model.queue, (clock.now + model.latency(), seq, 200))
        done_at, done_seq, status = heapq.heappop(model.queue)
        clock.now = max(clock.now, done_at)
        if status == 200:
            model.in_flight -= 1
            model.served += 1
        else:
            to_send += 1
        limits.release(name, starts.pop(done_seq), status)
    return clock.now - started_at


def test_a_fast_service_gets_the_whole_ceiling_and_never_more() -> None:
    clock = FakeClock()
    limits = Limits(Settings(ceiling=20, initial=4), clock=clock)
    model = ModelService(parallel=1000, hard=None)
    drive(limits, clock, model, 2000)
    assert limits.limit("network") == 20
    assert limits.service("network").peak_in_flight == 20


def test_limits_start_low_and_double_per_round_trip_until_trouble() -> None:
    clock = FakeClock()
    limits = Limits(Settings(ceiling=64, initial=4), clock=clock)
    elapsed = drive(limits, clock, ModelService(parallel=1000, hard=None), 200)
    assert limits.limit("network") == 64
    # 4, 8, 16, 32, 64 in flight, then the last 76: 7 round trips (a fixed 64 takes 4).
    assert elapsed <= 7 * 0.02 + 1e-9


def test_refusals_cut_the_limit_once_per_round_trip_and_never_below_the_floor() -> None:
    clock = FakeClock()
    limits = Limits(Settings(ceiling=20, initial=20, floor=3), clock=clock)
    for _ in range(20):  # twenty 503s answered together: one cut
        limits.try_acquire("network")
    for _ in range(20):
        limits.release("network", clock.now - 0.02, 503)
    assert limits.limit("network") == 10
    for _ in range(10):  # one more cut per round trip, down to the floor
        clock.now += 1.0
        assert limits.try_acquire("network")
        limits.release("network", clock.now - 0.02, 503)
    assert limits.limit("network") == 3
    assert limits.service("network").overloads == 30


def test_a_service_past_its_capacity_gets_about_what_it_can_serve_with_few_refusals() -> None:
    """The admin's case: Neutron serves 8 requests at once and its proxy refuses beyond 12. A fixed 20
    keeps hitting the hard limit; the adaptive limit settles where latency holds, and the run takes
    about as long as with the best fixed setting."""
    runs = {}
    for name, settings in {"adaptive": Settings(ceiling=20), "fixed 20": Settings(ceiling=20, adaptive=False),
                           "fixed 8": Settings(ceiling=8, adaptive=False)}.items():
        clock = FakeClock()
        limits = Limits(settings, clock=clock)
        model = ModelService(parallel=8, hard=12)
        runs[name] = (drive(limits, clock, model, 4000), model.refused, limits)
    adaptive, fixed20, fixed8 = runs["adaptive"], runs["fixed 20"], runs["fixed 8"]
    assert fixed8[0] <= adaptive[0] / 0.9  # at least 90% of the best fixed setting's throughput
    assert adaptive[1] < fixed20[1] / 10  # far fewer 503s than a fixed 20
    assert 4 <= adaptive[2].limit("network") <= 16


def test_rising_latency_backs_off_before_any_refusal() -> None:
    clock = FakeClock()
    limits = Limits(Settings(ceiling=40), clock=clock)
    model = ModelService(parallel=8, hard=None)  # never refuses: only latency says it is full
    drive(limits, clock, model, 4000)
    assert limits.service("network").cuts > 0
    assert limits.limit("network") < 40


def test_fixed_concurrency_ignores_the_answers() -> None:
    clock = FakeClock()
    limits = Limits(Settings(ceiling=20, adaptive=False), clock=clock)
    model = ModelService(parallel=8, hard=12)
    drive(limits, clock, model, 500)
    assert limits.limit("network") == 20
    assert model.refused > 0 and limits.service("network").overloads == model.refused


def test_the_ceiling_bounds_every_service_together() -> None:
    limits = Limits(Settings(ceiling=10, initial=10), clock=FakeClock())
    granted = sum(limits.try_acquire(s) for s in ("network", "kube", "load-balancer") for _ in range(10))
    assert granted == 10 and limits.in_flight == 10


def item(step: str, kind: str, n: int) -> PlanItem:
    return PlanItem(step, kind, f"{kind}-{n}", f"{kind}-{n}", "delete", "test")


def test_a_slowed_down_service_does_not_take_every_worker() -> None:
    """Ports (network) are held by a service at its floor; the cluster's finalizers go on meanwhile."""
    limits = Limits(Settings(ceiling=4, initial=1, floor=1), clock=FakeClock())
    release_ports = threading.Event()
    finalizers_done = threading.Event()
    kube_items = [item("B7", "Pod", n) for n in range(20)]
    finished: list[str] = []

    def execute(it: PlanItem) -> Finished:
        if it.kind == "port":
            assert release_ports.wait(10), "ports were held for too long"
        return Finished(DONE)

    def on_change(it: PlanItem) -> None:
        finished.append(it.kind)
        if finished.count("Pod") == len(kube_items):
            finalizers_done.set()
            release_ports.set()

    engine = Engine(execute, {"B7": (), "B12": ()}, concurrency=4, on_change=on_change, limits=limits,
                    service_of=lambda it: "network" if it.kind == "port" else "kube")
    result = engine.run([item("B12", "port", n) for n in range(20)] + kube_items)
    assert finalizers_done.is_set()
    assert result.ok and len(finished) == 40
    assert finished[:20] == ["Pod"] * 20  # while the ports held their two workers (2 x their limit)


def test_the_simulated_service_slows_down_past_its_capacity_and_refuses_past_its_limit() -> None:
    faults = Faults()
    faults.latency = 0.02
    faults.set_capacity(parse_capacity("network=2:3"))
    assert [faults.admit("network") for _ in range(4)] == [0.02, 0.02, 0.03, None]
    assert faults.admit("kube") == 0.02  # no capacity model: the plain latency
    faults.leave("network")
    assert faults.admit("network") == 0.03
    assert faults.describe_capacity()["network"] == {"parallel": 2, "limit": 3, "in_flight": 3, "peak": 3,
                                                         "refused": 1, "served": 4}


def test_a_slow_poll_does_not_hold_back_other_work() -> None:
    """Listing thousands of LBs being deleted takes a while: the finalizers go on meanwhile."""
    others_done = threading.Event()
    polls: list[int] = []
    kube_items = [item("B7", "Pod", n) for n in range(10)]

    def poller(idents: set[str]) -> dict[str, str]:
        polls.append(len(idents))
        assert others_done.wait(10), "the other items waited for the poll"
        return {i: "ready" for i in idents}

    def execute(it: PlanItem) -> Finished | Waiting:
        if it.kind == "load balancer":
            return Waiting(poller, it.id, 60, "to be deleted")
        return Finished(DONE)

    finished: list[str] = []

    def on_change(it: PlanItem) -> None:
        finished.append(it.kind)
        if finished.count("Pod") == len(kube_items):
            others_done.set()

    engine = Engine(execute, {"B3": (), "B7": ()}, concurrency=1, poll_interval=0.0, on_change=on_change)
    result = engine.run([item("B3", "load balancer", 0), *kube_items])
    assert result.ok and finished[-1] == "load balancer" and polls
