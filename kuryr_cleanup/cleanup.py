"""The cleanup of Kuryr's leftovers (SPEC B1-B18): the steps as data, the plan, the run.

The SPEC order is the dependency order; each step names the steps it really depends on, so
independent branches overlap (cluster finalizers are removed while Octavia deletes load balancers).
`--plan` and the run share everything up to the first write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kuryr_cleanup import cluster as k
from kuryr_cleanup.context import Context
from kuryr_cleanup.engine import Engine, Executor, Listener, Outcome, Poller, RunResult
from kuryr_cleanup.errors import KuryrMigrateError
from kuryr_cleanup.inventory import (
    KLB_FINALIZER,
    KURYR_NAMESPACE,
    KURYRNETWORK_FINALIZER,
    KURYRPORT_FINALIZER,
    NETWORKPOLICY_FINALIZER,
    POD_FINALIZER,
    SERVICE_FINALIZER,
    Discovery,
    Inventory,
)
from kuryr_cleanup.plan import BLOCKED, FAILED, Plan, PlanItem, StepInfo
from kuryr_cleanup.resources import finalizers, loadbalancers, networks, security


@dataclass(frozen=True)
class CleanupStep:
    id: str
    title: str
    depends_on: tuple[str, ...]
    plan: Callable[[Inventory], list[PlanItem]]


def _finalizer_step(step: str, title: str, kind: k.Kind, finalizer: str, deps: tuple[str, ...] = ()) -> CleanupStep:
    return CleanupStep(
        step, title, deps,
        lambda inv: finalizers.plan_finalizer_removals(step, kind, finalizer, inv.finalizer_objects.get(step, [])),
    )


STEPS: tuple[CleanupStep, ...] = (
    _finalizer_step("B1", "Service finalizers", k.SERVICE, SERVICE_FINALIZER),
    CleanupStep("B2", "Service openshift-kuryr/service-subnet-gateway-ip", ("B1",),
                lambda inv: finalizers.plan_delete_object("B2", k.SERVICE, inv.gateway_service,
                                                          "Kuryr's service-subnet gateway Service")),
    CleanupStep("B3", "Octavia load balancers and their floating IPs", (), loadbalancers.plan),
    _finalizer_step("B4", "KuryrLoadBalancer finalizers", k.KURYR_LOAD_BALANCER, KLB_FINALIZER, ("B3",)),
    CleanupStep("B5", "Namespace openshift-kuryr", ("B2", "B4"),
                lambda inv: finalizers.plan_delete_object("B5", k.NAMESPACE, inv.kuryr_namespace,
                                                          f"Kuryr's namespace {KURYR_NAMESPACE}")),
    CleanupStep("B6", "Kuryr service network, its ports and router interface", ("B3",),
                networks.plan_service_network),
    _finalizer_step("B7", "Pod finalizers", k.POD, POD_FINALIZER),
    _finalizer_step("B8", "KuryrPort finalizers", k.KURYR_PORT, KURYRPORT_FINALIZER),
    _finalizer_step("B9", "NetworkPolicy finalizers", k.NETWORK_POLICY, NETWORKPOLICY_FINALIZER),
    _finalizer_step("B10", "KuryrNetworkPolicy finalizers", k.KURYR_NETWORK_POLICY, NETWORKPOLICY_FINALIZER),
    CleanupStep("B11", "Trunk subports", (), networks.plan_subports),
    # After B3 too: amphora LBs have member ports on the pod subnets; deleting them under a cascade
    # delete in progress can push the LB to ERROR (the vendor order has B3 first for this reason).
    CleanupStep("B12", "Namespace networks: ports, router interfaces, networks", ("B3", "B11"),
                networks.plan_namespace_networks),
    CleanupStep("B13", "Kuryr pods security group", ("B6", "B12"), security.plan_pods_security_group),
    CleanupStep("B14", "Subnet pools", ("B6", "B12"), security.plan_subnet_pools),
    CleanupStep("B15", "Check: no Kuryr network remains", ("B12",), networks.plan_check),
    CleanupStep("B16", "Network-policy security groups", ("B6", "B12"), security.plan_policy_security_groups),
    _finalizer_step("B17", "KuryrNetwork finalizers", k.KURYR_NETWORK, KURYRNETWORK_FINALIZER, ("B15",)),
    CleanupStep("B18", "Kuryr router", ("B6", "B12"), security.plan_router),
)


def step_infos() -> list[StepInfo]:
    return [StepInfo(s.id, s.title) for s in STEPS]


def discover(ctx: Context) -> Inventory:
    return Discovery(ctx).run()


def make_plan(inv: Inventory) -> Plan:
    items: list[PlanItem] = []
    for step in STEPS:
        items.extend(step.plan(inv))
    notes = []
    if not inv.octavia_has_tags:
        major, minor = inv.octavia_version
        notes.append(f"Octavia API {major}.{minor} has no tags: load balancers are matched by the cluster tag in "
                     f"their description")
    return Plan(inv.infra_id, step_infos(), items, notes)


class CleanupRefused(KuryrMigrateError):
    exit_code = 3


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


def executors(ctx: Context, inv: Inventory) -> tuple[dict[str, Executor], dict[str, Poller]]:
    watch = loadbalancers.LoadBalancerWatch(ctx, inv)

    def bind(fn: Callable[[Context, PlanItem], Outcome]) -> Executor:
        return lambda item: fn(ctx, item)

    table: dict[str, Executor] = {
        "remove-finalizer": bind(finalizers.remove_finalizer),
        "delete": bind(finalizers.delete_object),  # cluster objects; cloud kinds are keyed by kind below
        "load balancer/cascade-delete": lambda item: loadbalancers.cascade_delete(ctx, watch, item),
        "floating IP/release": bind(loadbalancers.release_floating_ip),
        "floating IP/disassociate": bind(loadbalancers.disassociate_floating_ip),
        "trunk/unset-subports": bind(networks.unset_subports),
        "port/delete": bind(networks.delete_port),
        "router interface/remove-interface": bind(networks.remove_interface),
        "network/delete": bind(networks.delete_network),
        "check/check": lambda item: networks.check_networks_gone(ctx, inv, item),
        "security group/delete": bind(security.delete_security_group),
        "subnet pool/delete": bind(security.delete_subnet_pool),
        "router/delete": bind(security.delete_router),
    }
    pollers: dict[str, Poller] = {"lb-gone": watch.gone, "lb-settled": watch.settled}
    return table, pollers


def execute(ctx: Context, inv: Inventory, plan: Plan, on_change: Listener | None = None,
            engine_hook: Callable[[Engine], None] | None = None) -> RunResult:
    table, pollers = executors(ctx, inv)

    def record(item: PlanItem) -> None:
        # Successes are journaled by the actions themselves; failures and blocks are journaled here.
        if item.state in (FAILED, BLOCKED):
            ctx.journal.write("result", sync=False, step=item.step, kind=item.kind, id=item.id,
                              action=item.action, result=item.state, reason=item.reason)
        if on_change:
            on_change(item)

    engine = Engine(
        table, pollers, {s.id: s.depends_on for s in STEPS},
        concurrency=ctx.options.concurrency, poll_interval=ctx.options.poll_interval, on_change=record,
    )
    if engine_hook:
        engine_hook(engine)
    # What only the Kuryr CRs know goes to disk before the first change: the run may remove them.
    ctx.state.save()
    ctx.journal.write("run-start", command="cleanup", infra_id=inv.infra_id,
                      planned=len(plan.actionable()), steps=[s.id for s in STEPS])
    result = engine.run(plan.items)
    ctx.journal.write("run-end", command="cleanup", interrupted=result.interrupted,
                      counts={state: sum(1 for i in result.items if i.state == state)
                              for state in {i.state for i in result.items}})
    return result
