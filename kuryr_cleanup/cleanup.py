"""The cleanup of Kuryr's leftovers (SPEC B1-B18): the registry of steps, discovery, the plan, the run.

Each module under `resources/` registers its steps (with the steps they really depend on) and its
part of discovery; this module assembles them and checks the registry (unknown dependency, duplicate
id, cycle). Independent branches overlap (cluster finalizers are removed while Octavia deletes load
balancers). `--plan` and the run share everything up to the first write.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from kuryr_cleanup.context import Context
from kuryr_cleanup.engine import Engine, Listener, RunResult
from kuryr_cleanup.errors import ExitCode, KuryrMigrateError, UsageError
from kuryr_cleanup.inventory import Inventory
from kuryr_cleanup.plan import Plan, PlanItem, Planned, StepInfo
from kuryr_cleanup.resources import (
    cluster_objects,
    floating_ips,
    loadbalancers,
    networks,
    ports,
    routers,
    security_groups,
    subnet_pools,
    trunks,
)
from kuryr_cleanup.resources.base import Reader, ResourceKind, Run, Step, record_result
from kuryr_cleanup.retrying import Failure, call, classify, describe, http_status

# Discovery runs in this order: a later kind reads what an earlier one found (the cluster's CRs name
# the networks, LBs and router; ports are listed on the networks found; trunks carry those ports).
KINDS: tuple[ResourceKind, ...] = (
    cluster_objects.KIND,
    loadbalancers.KIND,
    floating_ips.KIND,
    networks.KIND,
    ports.KIND,
    trunks.KIND,
    routers.KIND,
    security_groups.KIND,
    subnet_pools.KIND,
)


# Listings in flight during discovery. Each holds a decoded page (up to 1,000 ports or 500 Pods) until
# it is compacted: 20 at once peaked ~30 MB higher at L than 6, for no shorter discovery (the tool's
# CPU bounds it; the 40 pages of Pods are the critical path, and they are read one after the other).
DISCOVERY_THREADS = 6


class RegistryError(Exception):
    """The registered steps do not form a valid dependency graph (a programming error)."""


def _step_number(step_id: str) -> tuple[int, str]:
    digits = "".join(c for c in step_id if c.isdigit())
    return (int(digits) if digits else 0, step_id)


class Registry:
    """Every cleanup step, in SPEC order, checked: unique ids, known dependencies, no cycle."""

    def __init__(self, kinds: Sequence[ResourceKind]) -> None:
        self.kinds = tuple(kinds)
        steps: dict[str, Step] = {}
        owner: dict[str, str] = {}

        for kind in self.kinds:
            for step in kind.steps:
                if step.id in steps:
                    raise RegistryError(f"step {step.id} is registered twice ({owner[step.id]}, {kind.name})")
                steps[step.id] = step
                owner[step.id] = kind.name
        for step in steps.values():
            unknown = [d for d in step.depends_on if d not in steps]
            if unknown:
                raise RegistryError(f"step {step.id} depends on unknown step(s) {', '.join(unknown)}")
        self._check_acyclic(steps)
        self.steps = tuple(sorted(steps.values(), key=lambda s: _step_number(s.id)))
        # Planners read what the steps they depend on planned: those must come first.
        position = {s.id: n for n, s in enumerate(self.steps)}
        for step in self.steps:
            late = [d for d in step.depends_on if position[d] > position[step.id]]
            if late:
                raise RegistryError(f"step {step.id} depends on later step(s) {', '.join(late)}")
        self.owner = owner

    @staticmethod
    def _check_acyclic(steps: dict[str, Step]) -> None:
        visiting: set[str] = set()
        done: set[str] = set()

        def visit(step_id: str, path: tuple[str, ...]) -> None:
            if step_id in done:
                return
            if step_id in visiting:
                cycle = path[path.index(step_id):] + (step_id,)
                raise RegistryError(f"steps depend on each other in a cycle: {' -> '.join(cycle)}")
            visiting.add(step_id)
            for dep in steps[step_id].depends_on:
                visit(dep, path + (step_id,))
            visiting.discard(step_id)
            done.add(step_id)

        for step_id in sorted(steps):
            visit(step_id, ())

    def step_infos(self) -> list[StepInfo]:
        return [StepInfo(s.id, s.title) for s in self.steps]

    def dependencies(self) -> dict[str, tuple[str, ...]]:
        return {s.id: s.depends_on for s in self.steps}

    def markdown_table(self) -> str:
        """The step table of docs/cleanup.md (`python -m kuryr_cleanup.cleanup` prints it)."""
        lines = ["| step | what | how ownership is proven (S2) | after | registered by |",
                 "| --- | --- | --- | --- | --- |"]
        for s in self.steps:
            after = ", ".join(s.depends_on) or "-"
            lines.append(f"| {s.id} | {s.what or s.title} | {s.evidence or '-'} | {after} | "
                         f"{self.owner[s.id]} |")
        return "\n".join(lines)


REGISTRY = Registry(KINDS)


def discover(ctx: Context) -> Inventory:
    """One read-only inventory: reads are listings with server-side filters (tags, network ids in
    batches, device owner), paged, so their number grows with pages, not with resources. A read that
    still fails after its retries ends the command in one line: nothing has been changed yet."""
    try:
        return _discover(ctx)
    except KuryrMigrateError:
        raise
    except Exception as exc:
        if classify(exc) in (Failure.TRANSIENT, Failure.PERMANENT) and (http_status(exc) or classify(exc) is
                                                                        Failure.TRANSIENT):
            raise UsageError(f"cannot read the inventory: {describe(exc)}; nothing was changed") from exc
        raise


def _discover(ctx: Context) -> Inventory:
    inv = Inventory(ctx.infra_id, ctx.tag, project_id=ctx.project_id)
    listed = call(ctx.options.retry, lambda: ctx.conn.network.get("/extensions", raise_exc=True).json()["extensions"],
                  retry_conflicts=False)
    extensions = {e["alias"] for e in listed}
    if "standard-attr-tag" not in extensions and "tag" not in extensions:
        raise UsageError("Neutron has no tag extension: ownership of Kuryr resources cannot be proven")
    # Reads that need nothing another kind finds start at once (DISCOVERY_THREADS at a time, each
    # holding a call slot); the kinds then take their answers in registry order.
    threads = max(1, min(DISCOVERY_THREADS, ctx.options.concurrency))
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="discover")
    reader = Reader(ctx, pool)
    try:
        for kind in REGISTRY.kinds:
            if kind.prefetch is not None:
                kind.prefetch(reader, inv)
        for kind in REGISTRY.kinds:
            if kind.discover is not None:
                kind.discover(reader, inv)
    finally:
        reader.close()
        pool.shutdown(wait=True, cancel_futures=True)
    return inv


def make_plan(inv: Inventory) -> Plan:
    items: list[PlanItem] = []
    planned = Planned()
    for step in REGISTRY.steps:  # SPEC order: every step comes after the steps it depends on
        step_items = step.plan(inv, planned)
        planned.add(step_items)
        items.extend(step_items)
    notes = []
    if not inv.octavia_has_tags:
        major, minor = inv.octavia_version
        notes.append(f"Octavia API {major}.{minor} has no tags: load balancers are matched by the cluster tag in "
                     f"their description")
    return Plan(inv.infra_id, REGISTRY.step_infos(), items, notes)


def service_of(item: PlanItem) -> str:
    """The API an item's write goes to (the engine shares workers out between them)."""
    if item.kind[:1].isupper():  # a Kubernetes kind
        return "kube"
    return "load-balancer" if item.kind == "load balancer" else "network"


class CleanupRefused(KuryrMigrateError):
    exit_code = ExitCode.REFUSED


def check_cluster_migrated(inv: Inventory, force: bool) -> None:
    """Cleaning up under a cluster still on Kuryr would cut every pod off its network; so would cleaning
    up mid-migration (status.networkType may already say OVNKubernetes before the nodes rebooted)."""
    if force:
        return
    if inv.network_type != "OVNKubernetes":
        raise CleanupRefused(
            f"the cluster's network type is {inv.network_type or 'unknown'}, not OVNKubernetes: cleaning up Kuryr's "
            f"resources now would break pod networking (migrate first, or pass --force if you know why)"
        )
    if inv.migration:
        raise CleanupRefused(
            "the migration is still under way (Network.operator spec.migration is set): finish it first "
            "(kuryr-migrate migrate), or pass --force if you know why"
        )


def execute(ctx: Context, inv: Inventory, plan: Plan, on_change: Listener | None = None,
            engine_hook: Callable[[Engine], None] | None = None) -> RunResult:
    inv.release_listings()
    run = Run(ctx, inv)

    def record(item: PlanItem) -> None:
        record_result(ctx.journal, item)
        if on_change:
            on_change(item)

    engine = Engine(lambda item: item.op.execute(run, item), REGISTRY.dependencies(),
                    concurrency=ctx.options.concurrency, poll_interval=ctx.options.poll_interval, on_change=record,
                    limits=ctx.limits, service_of=service_of)
    if engine_hook:
        engine_hook(engine)
    # What only the Kuryr CRs know goes to disk before the first change: the run may remove them.
    ctx.state.save()
    ctx.journal.write("run-start", command="cleanup", infra_id=inv.infra_id,
                      planned=len(plan.actionable()), steps=[s.id for s in REGISTRY.steps])
    result = engine.run(plan.items)
    ctx.journal.write("run-end", command="cleanup", interrupted=result.interrupted,
                      counts={state: sum(1 for i in result.items if i.state == state)
                              for state in {i.state for i in result.items}})
    return result



if __name__ == "__main__":
    print(REGISTRY.markdown_table())
