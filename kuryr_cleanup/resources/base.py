"""What every resource module shares: how it registers its steps, reads the cloud, and acts.

A module (one per kind of resource) declares a `ResourceKind`: the steps it registers (id, title,
the steps it depends on, its planner), its part of discovery, and its `Action`s. A plan item carries
the action that runs it, so nothing dispatches on strings. Every action goes through `journaled`:
journal the full object (fsynced), act, 404 counts as already gone; the run journals each item's
result (done, gone, failed, blocked) through `record_result`.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any, TypeVar

from kuryr_cleanup.context import Context
from kuryr_cleanup.engine import Finished, Outcome
from kuryr_cleanup.inventory import Inventory
from kuryr_cleanup.journal import Journal
from kuryr_cleanup.openstack_api import get_one, list_by_ids, list_raw
from kuryr_cleanup.plan import DONE, FAILED, GONE, PLANNED, PlanItem, Planned
from kuryr_cleanup.retrying import RetryPolicy, call, describe, http_status

T = TypeVar("T")


@dataclass(frozen=True)
class Step:
    """One cleanup step (SPEC B1-B18): what it plans from the inventory, and what must finish first."""

    id: str
    title: str
    depends_on: tuple[str, ...]
    plan: Callable[[Inventory, Planned], list[PlanItem]]
    what: str = ""  # for the admin (docs/cleanup.md's step table is generated from these)
    evidence: str = ""  # how ownership is proven (S2)


@dataclass(frozen=True)
class ResourceKind:
    """A module's registration: its steps and its part of discovery (run in registry order: a later
    kind may read what an earlier one found, e.g. trunks read the ports found on Kuryr networks)."""

    name: str
    steps: tuple[Step, ...] = ()
    discover: Callable[[Reader, Inventory], None] | None = None
    # Reads that need nothing another kind finds, started before any kind's discovery (`Reader.start`):
    # they run while the kinds before this one wait on theirs.
    prefetch: Callable[[Reader, Inventory], None] | None = None


@dataclass(frozen=True, eq=False)
class Action:
    """A change or deletion of one kind of resource: how the plan names it and how it is done."""

    kind: str  # "port", "network", "load balancer"; cluster-object actions take the object's kind
    name: str  # PlanItem.action: "delete", "remove-finalizer", ...
    words: str  # how the plan says it: "delete", "remove finalizer"
    execute: Callable[[Run, PlanItem], Outcome]

    def item(self, step: str, ident: str, name: str, evidence: str, state: str = PLANNED, reason: str = "",
             after: Iterable[str] = (), kind: str | None = None, **params: Any) -> PlanItem:
        # Evidence is the same text for thousands of items ("carries finalizer ...", "inside network
        # ..."), built anew for each: one copy is kept (9 MB at L).
        return PlanItem(step, kind or self.kind, ident, name, self.name, sys.intern(evidence), state, reason,
                        tuple(after), params, op=self)


class Reader:
    """Discovery's reads: listings with server-side filters, paged, each through the retry policy.

    With a pool, independent reads run at once (each still holds a call slot of its service, so at
    most `--concurrency` are in flight): `start` begins a read that a later `read`, `list` or `one`
    with the same key takes over, and `map` runs a batch of reads together. Listings served one after
    the other made discovery wait on hundreds of round trips and the server's time for each page.
    """

    def __init__(self, ctx: Context, pool: Executor | None = None) -> None:
        self.ctx = ctx
        self.policy = ctx.options.retry
        self._pool = pool
        self._started: dict[Hashable, Future[Any]] = {}

    @property
    def conn(self) -> Any:
        return self.ctx.conn

    @property
    def cluster(self) -> Any:
        return self.ctx.cluster

    def read(self, fn: Callable[[], T], key: Hashable | None = None, retried: bool = False) -> T:
        """`fn` through the retry policy (unless it is `retried` itself); or what the read started
        under `key` answered."""
        started = self._started.pop(key, None) if key is not None else None
        if started is not None:
            return started.result()
        return fn() if retried else call(self.policy, fn, retry_conflicts=False)

    def start(self, key: Hashable, fn: Callable[[], Any], retried: bool = False) -> None:
        """Begin `fn` now, in the background, for the `read(..., key=key)` that will want it."""
        self._submit(key, fn if retried else functools.partial(call, self.policy, fn, retry_conflicts=False))

    def _submit(self, key: Hashable, fn: Callable[[], Any]) -> None:
        if self._pool is not None and key not in self._started:
            self._started[key] = self._pool.submit(fn)

    def list_each(self, service: str, path: str, queries: Iterable[dict[str, Any]],
                  keep: frozenset[str] | None = None) -> Iterator[list[dict[str, Any]]]:
        """A listing per query (e.g. per batch of network ids), at once when there is a pool; the
        answers in the queries' order."""
        queries = list(queries)
        for query in queries:
            self.start_list(service, path, query, keep)
        return (self.list(service, path, query, keep) for query in queries)

    def close(self) -> None:
        """Drop reads nobody took (a discovery that stopped early)."""
        for started in self._started.values():
            started.cancel()
        self._started.clear()

    def scoped(self, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """`params` limited to the cluster's project: an admin token lists every project's resources
        unless the query names one, and another project's look-alikes are not this cluster's."""
        project = self.ctx.project_id
        return {**(params or {}), **({"project_id": project} if project else {})}

    @staticmethod
    def _list_key(service: str, path: str, params: dict[str, Any] | None, keep: frozenset[str] | None) -> Hashable:
        frozen = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in (params or {}).items()))
        return ("list", service, path, frozen, keep)

    def start_list(self, service: str, path: str, params: dict[str, Any] | None = None,
                   keep: frozenset[str] | None = None) -> None:
        """Begin the listing a later `list` with the same arguments will want."""
        key = path.rsplit("/", 1)[-1].replace("-", "_")
        self.start(self._list_key(service, path, params, keep),
                   functools.partial(list_raw, self.conn, service, path, key, self.policy, params, keep=keep),
                   retried=True)

    def list(self, service: str, path: str, params: dict[str, Any] | None = None,
             keep: frozenset[str] | None = None) -> list[dict[str, Any]]:
        """Every item (with `keep`: CompactRecords, for what the inventory holds until the run ends)."""
        key = path.rsplit("/", 1)[-1].replace("-", "_")
        started = self._started.pop(self._list_key(service, path, params, keep), None)
        if started is not None:
            return started.result()
        return list_raw(self.conn, service, path, key, self.policy, params, keep=keep)

    def by_ids(self, service: str, path: str, ids: set[str]) -> dict[str, dict[str, Any]]:
        key = path.rsplit("/", 1)[-1].replace("-", "_")
        return list_by_ids(self.conn, service, path, key, self.policy, ids)

    def one(self, service: str, path: str, key: str) -> dict[str, Any] | None:
        return get_one(self.conn, service, path, key, self.policy)


class Run:
    """What actions need while a plan runs: the connections, the journal, the inventory, and objects
    shared by every action of a kind (one per run, e.g. the load-balancer watch)."""

    def __init__(self, ctx: Context, inv: Inventory) -> None:
        self.ctx = ctx
        self.inv = inv
        self._shared: dict[Callable[..., Any], Any] = {}
        self._lock = threading.Lock()

    @property
    def conn(self) -> Any:
        return self.ctx.conn

    @property
    def cluster(self) -> Any:
        return self.ctx.cluster

    @property
    def journal(self) -> Journal:
        return self.ctx.journal

    @property
    def policy(self) -> RetryPolicy:
        return self.ctx.options.retry

    def shared(self, factory: Callable[[Run], T]) -> T:
        with self._lock:
            if factory not in self._shared:
                self._shared[factory] = factory(self)
            return self._shared[factory]

    def call(self, fn: Callable[[], T], retry_conflicts: bool = False) -> T:
        return call(self.policy, fn, retry_conflicts=retry_conflicts)


_ITEM_OBJECT = object()


def journaled(run: Run, item: PlanItem, act: Callable[[], Any], *, event: str = "delete",
              retry_conflicts: bool = True, missing_ok: bool = True, obj: Any = _ITEM_OBJECT,
              kind: str | None = None, ident: str | None = None, action: str | None = None,
              gone: str = "already gone", **details: Any) -> Finished:
    """Journal the full object before the write (fsynced), then send it through the retry policy.

    404 is success (`gone`) unless `missing_ok` is False (the caller must tell "the resource is
    gone" from "a part of the request is": a subport someone already removed). 409s, a dependency
    still going away, are retried until the dependency deadline when `retry_conflicts`. Anything
    else is raised: the engine reports it as the item's failure and `record_result` journals it.
    """
    record: dict[str, Any] = {"step": item.step, "kind": kind or item.kind, "id": ident or item.id,
                              "action": action or item.action,
                              "object": item.params.get("object") if obj is _ITEM_OBJECT else obj}
    if item.params.get("related") is not None:
        record["related"] = item.params["related"]
    run.journal.write(event, **record, **details)
    try:
        call(run.policy, act, retry_conflicts=retry_conflicts)
    except Exception as exc:
        if missing_ok and http_status(exc) == 404:
            return Finished(GONE, gone)
        raise
    return Finished(DONE)


class Held(Exception):
    """A write refused (409) because something that is not being cleaned up holds the resource."""

    def __init__(self, cause: BaseException, holders: list[str]) -> None:
        super().__init__(describe(cause))
        self.cause = cause
        self.holders = holders


def refuse_held(run: Run, item: PlanItem, act: Callable[[], Any],
                holders: Callable[[Run, PlanItem], list[str]], **journal_args: Any) -> Finished:
    """`journaled`, for a resource that can only be in use by foreign objects once the items it
    depends on are done (S7): on a 409, ask what holds it; if something does, fail at once naming it
    (a 600 s retry would not make a user's VM let go); if nothing is found, it was a dependency still
    going away, and the 409 is retried within the policy's bounds."""

    def attempt() -> Finished:
        try:
            return journaled(run, item, act, retry_conflicts=False, **journal_args)
        except Exception as exc:
            if http_status(exc) != 409:
                raise
            found = holders(run, item)
            if found:
                raise Held(exc, found) from exc
            raise

    try:
        return call(run.policy, attempt, retry_conflicts=True)
    except Held as held:
        shown = "; ".join(held.holders[:3]) + (f"; and {len(held.holders) - 3} more" if len(held.holders) > 3 else "")
        return Finished(FAILED, f"{held}; held by {shown}: remove or detach that, then run again")


def record_result(journal: Journal, item: PlanItem) -> None:
    """Journal how an item ended (done, gone, kept, failed with the reason, blocked by what)."""
    journal.write("result", sync=False, step=item.step, kind=item.kind, id=item.id, action=item.action,
                  result=item.state, reason=item.reason)
