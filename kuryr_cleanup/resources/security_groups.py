"""Security groups: Kuryr's pods group (B13) and the network-policy groups (B16).

B16 is where the vendor procedure is unsafe: it deletes every group whose description starts with
`Kuryr-Kubernetes Network Policy` in the project, other clusters' included. Here a group is deleted
only with evidence that it is this cluster's (S2); the others are listed in the plan with the reason
they are left alone.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from kuryr_cleanup.engine import Finished, Outcome
from kuryr_cleanup.inventory import Inventory
from kuryr_cleanup.kuryr import NP_SG_DESCRIPTION, PODS_SECURITY_GROUP, cluster_tags, cno_name
from kuryr_cleanup.openstack_api import chunks, list_raw, send
from kuryr_cleanup.ownership import Ownership, ownership
from kuryr_cleanup.plan import FAILED, KEPT, PlanItem, Planned
from kuryr_cleanup.resources import networks, ports
from kuryr_cleanup.resources.base import Action, Reader, ResourceKind, Run, Step, refuse_held

# What planning reads of a group; its rules stay encoded until the journal records them.
FIELDS = frozenset({"id", "name", "description", "tags", "project_id", "tenant_id"})


def prefetch(reader: Reader, inv: Inventory) -> None:
    reader.start_list("network", "/security-groups", reader.scoped(), FIELDS)


def discover(reader: Reader, inv: Inventory) -> None:
    inv.security_groups = reader.list("network", "/security-groups", reader.scoped(), FIELDS)
    # Deleting a group deletes every rule, in any group, whose remote_group_id is that group: read those
    # rules of the groups the cleanup may delete (every project's the token can see).
    candidates = []
    for sg in inv.security_groups:
        candidate = _candidate(inv, sg)
        if candidate:
            candidates.append(sg["id"])
        role = ("deleted" if candidate and _group_ownership(inv, sg).ours else
                "ours" if _this_clusters_group(inv, sg) else "foreign")
        inv.group_roles[sg["id"]] = (role, sg.get("name") or "")
    inv.rules_naming_group = rules_naming(reader.conn, reader.policy, candidates)


def rules_naming(conn: Any, policy: Any, group_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Group id -> the rules of other groups that name it as their remote group, a listing per batch
    of groups (a group's rules naming itself go with it and are its own)."""
    by_group: dict[str, list[dict[str, Any]]] = {}
    for batch in chunks(group_ids):
        for rule in list_raw(conn, "network", "/security-group-rules", "security_group_rules", policy,
                             {"remote_group_id": batch}):
            if rule.get("remote_group_id") != rule.get("security_group_id"):
                by_group.setdefault(str(rule["remote_group_id"]), []).append(rule)
    return by_group


def _candidate(inv: Inventory, sg: dict[str, Any]) -> bool:
    name = sg.get("name") or ""
    return (name in (cno_name(inv.infra_id, PODS_SECURITY_GROUP), PODS_SECURITY_GROUP) or sg["id"] in
            inv.np_security_groups or (sg.get("description") or "").startswith(NP_SG_DESCRIPTION))


def _holders(run: Run, item: PlanItem) -> list[str]:
    """Once this cluster's ports are gone, whoever still uses the group is someone else (a user's VM)."""
    users = list_raw(run.conn, "network", "/ports", "ports", run.policy, {"security_groups": item.id})
    return [ports.describe_port(p) for p in users if item.id in (p.get("security_groups") or [])]


REFRESH_SECONDS = 30.0


class RulesWatch:
    """The rules naming any of the cleanup's groups as remote group, as of a listing at most 30 s (or a
    poll interval) old: one listing per batch of groups, not a read per group (reads grow with pages)."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.groups = sorted(g for g, (role, _name) in run.inv.group_roles.items() if role == "deleted")
        self._lock = threading.Lock()
        self._time = float("-inf")
        self._by_group: dict[str, list[dict[str, Any]]] = {}

    def naming(self, sg_id: str) -> list[dict[str, Any]]:
        with self._lock:
            # The window that matters is the one between the plan and the groups' turn (after every
            # network: minutes at scale); the groups then go in a burst, served by one listing.
            if time.monotonic() - self._time >= max(self.run.ctx.options.poll_interval, REFRESH_SECONDS):
                self._by_group = rules_naming(self.run.conn, self.run.policy, self.groups)
                self._time = time.monotonic()
            return list(self._by_group.get(sg_id, []))


def delete(run: Run, item: PlanItem) -> Outcome:
    # Neutron takes, with the group, every rule that names it as remote group, and says nothing: one
    # made since the plan by someone else keeps the group (S7), found here rather than lost.
    ours, foreign = _split_rules(run.inv, run.shared(RulesWatch).naming(item.id))
    if foreign:
        return Finished(FAILED, f"not deleted: {_shown(foreign)}")
    if ours:  # as they are now (made since the plan too): the journal keeps them with the group
        item.params["related"] = {"rules_naming_it": ours}
    return refuse_held(run, item, lambda: send(run.conn, "network", "DELETE", f"/security-groups/{item.id}"),
                       _holders)


def _shown(found: list[str]) -> str:
    return "; ".join(found[:3]) + (f"; and {len(found) - 3} more" if len(found) > 3 else "")


DELETE = Action("security group", "delete", "delete", delete)


def _ports_by_group(inv: Inventory) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Each security group's ports (with their network), in network then port order: one pass over
    the ports for all the groups (2,000 policy groups x 20,000 ports took minutes one group at a time)."""
    index: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for net_id, net_ports in inv.ports_by_network.items():
        for port in net_ports:
            for sg_id in dict.fromkeys(port.get("security_groups") or []):
                index.setdefault(sg_id, []).append((net_id, port))
    return index


def _users(inv: Inventory, planned: Planned, sg_id: str,
           by_group: dict[str, list[tuple[str, dict[str, Any]]]] | None = None) -> tuple[list[str], list[str]]:
    """The keys of the port deletions the group waits for, and the kept networks whose ports use it."""
    keys, kept = [], set()
    for net_id, port in (by_group if by_group is not None else _ports_by_group(inv)).get(sg_id, []):
        key = planned.key("port", port["id"])
        if key:
            keys.append(key)
        else:
            network = planned.get("network", net_id)
            if network is not None and network.state == KEPT:
                kept.add(network.name or net_id)
    return keys, sorted(kept)


def _split_rules(inv: Inventory, rules: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Rules of other groups that name one of ours as their remote group, which Neutron deletes with it:
    (this cluster's, to journal with the group; why the group is kept, for anyone else's)."""
    ours, foreign = [], []
    for rule in rules:
        # A group not listed (another project's) is someone else's.
        role, name = inv.group_roles.get(str(rule.get("security_group_id")), ("foreign", ""))
        if role in ("deleted", "ours"):
            # This cluster's own groups (the installer's `<infraID>-master`, ..., or a group the cleanup
            # may delete too, which the plan may yet keep): the rule goes with ours, journaled with it.
            ours.append(rule)
            continue
        label = name or rule.get("security_group_id")
        project = rule.get("project_id") or rule.get("tenant_id") or "?"
        foreign.append(f"rule {rule['id']} of security group {label} ({rule.get('security_group_id')}, project "
                       f"{project}) allows traffic from it, and would go with it: remove that rule first")
    return ours, foreign


INSTALLER_GROUPS = ("master", "worker")  # the installer's node groups: `<infraID>-master`, `<infraID>-worker`


def _this_clusters_group(inv: Inventory, group: dict[str, Any]) -> bool:
    """Tagged for this cluster (and no other), or, untagged, one of the installer's node groups in the
    cluster's project: a name alone is no evidence, another cluster's tag or another project never."""
    tags = cluster_tags(group.get("tags"))
    project = group.get("project_id") or group.get("tenant_id")
    if inv.project_id and project and project != inv.project_id:
        return False
    if tags:
        return tags == {inv.tag}
    return (group.get("name") or "") in {f"{inv.infra_id}-{role}" for role in INSTALLER_GROUPS}


def _group_item(step: str, inv: Inventory, planned: Planned, sg: dict[str, Any], own: Ownership,
                by_group: dict[str, list[tuple[str, dict[str, Any]]]] | None = None) -> PlanItem:
    name = sg.get("name") or ""
    if not own.ours:
        return DELETE.item(step, sg["id"], name, own.evidence, own.state, own.reason)
    keys, kept = _users(inv, planned, sg["id"], by_group)
    if kept:
        return DELETE.item(step, sg["id"], name, own.evidence, KEPT,
                           f"kept: used by ports of Kuryr networks that are kept ({', '.join(kept[:5])})")
    rules, foreign = _split_rules(inv, inv.rules_naming_group.get(sg["id"], []))
    if foreign:  # S7: a foreign object that holds one of ours keeps it
        return DELETE.item(step, sg["id"], name, own.evidence, KEPT, f"kept: {_shown(foreign)}")
    evidence = own.evidence + (f"; {len(rules)} rule(s) of this cluster's groups that name it go with it "
                               f"(journaled)" if rules else "")
    extra: dict[str, Any] = {"related": {"rules_naming_it": rules}} if rules else {}
    return DELETE.item(step, sg["id"], name, evidence, after=keys, object=sg, **extra)


def _group_ownership(inv: Inventory, sg: dict[str, Any]) -> Ownership:
    """B13's rule for the pods group, B16's for the policy groups."""
    name = sg.get("name") or ""
    prefixed = cno_name(inv.infra_id, PODS_SECURITY_GROUP)
    if name == prefixed:
        return ownership(sg, inv.tag, cno=prefixed)
    if name == PODS_SECURITY_GROUP:  # named before mid-2019: only with our tag
        return ownership(sg, inv.tag)
    described = (sg.get("description") or "").startswith(NP_SG_DESCRIPTION)
    named_in = inv.np_security_groups.get(sg["id"])
    own = ownership(sg, inv.tag, named_in=named_in and f"KuryrNetworkPolicy {named_in}")
    if own.ours and not described:
        # A CR is a pointer, not proof (S7): Kuryr describes every group it makes for a policy.
        return Ownership(False, reason=f"kept: KuryrNetworkPolicy {named_in} names it, but it is not described "
                                       f"{NP_SG_DESCRIPTION!r} as the groups Kuryr makes are")
    return own


def plan_pods_group(inv: Inventory, planned: Planned) -> list[PlanItem]:
    pods = (cno_name(inv.infra_id, PODS_SECURITY_GROUP), PODS_SECURITY_GROUP)
    return [_group_item("B13", inv, planned, sg, _group_ownership(inv, sg)) for sg in inv.security_groups
            if (sg.get("name") or "") in pods]


def plan_policy_groups(inv: Inventory, planned: Planned) -> list[PlanItem]:
    items = []
    by_group = _ports_by_group(inv)
    pods = (cno_name(inv.infra_id, PODS_SECURITY_GROUP), PODS_SECURITY_GROUP)
    for sg in sorted(inv.security_groups, key=lambda s: (s.get("name") or "", s["id"])):
        if (sg.get("name") or "") in pods or not _candidate(inv, sg):
            continue
        items.append(_group_item("B16", inv, planned, sg, _group_ownership(inv, sg), by_group))
    return items


KIND = ResourceKind(
    "security groups",
    steps=(
        Step("B13", "Kuryr pods security group", networks.NETWORK_STEPS, plan_pods_group,
             what="security group `<infraID>-kuryr-pods-security-group`",
             evidence="CNO name (legacy name only with the tag)"),
        Step("B16", "Network-policy security groups", networks.NETWORK_STEPS, plan_policy_groups,
             what="network-policy security groups",
             evidence="the cluster tag (with the `Kuryr-Kubernetes Network Policy` description), or named by a "
                      "KuryrNetworkPolicy"),
    ),
    discover=discover,
    prefetch=prefetch,
)
