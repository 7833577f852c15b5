"""Security groups: Kuryr's pods group (B13) and the network-policy groups (B16).

B16 is where the vendor procedure is unsafe: it deletes every group whose description starts with
`Kuryr-Kubernetes Network Policy` in the project, other clusters' included. Here a group is deleted
only with evidence that it is this cluster's (S2); the others are listed in the plan with the reason
they are left alone.
"""

from __future__ import annotations

from kuryr_cleanup.engine import Outcome
from kuryr_cleanup.inventory import Inventory
from kuryr_cleanup.kuryr import NP_SG_DESCRIPTION, PODS_SECURITY_GROUP, cno_name
from kuryr_cleanup.openstack_api import send
from kuryr_cleanup.ownership import ownership
from kuryr_cleanup.plan import PlanItem
from kuryr_cleanup.resources import networks
from kuryr_cleanup.resources.base import Action, Reader, ResourceKind, Run, Step, journaled


def discover(reader: Reader, inv: Inventory) -> None:
    inv.security_groups = reader.list("network", "/security-groups")


def delete(run: Run, item: PlanItem) -> Outcome:
    return journaled(run, item, lambda: send(run.conn, "network", "DELETE", f"/security-groups/{item.id}"))


DELETE = Action("security group", "delete", "delete", delete)


def plan_pods_group(inv: Inventory) -> list[PlanItem]:
    items = []
    prefixed = cno_name(inv.infra_id, PODS_SECURITY_GROUP)
    for sg in inv.security_groups:
        name = sg.get("name") or ""
        if name == prefixed:
            own = ownership(sg, inv.tag, cno=prefixed)
        elif name == PODS_SECURITY_GROUP:  # named before mid-2019: only with our tag
            own = ownership(sg, inv.tag)
        else:
            continue
        items.append(DELETE.item("B13", sg["id"], name, own.evidence, own.state, own.reason, object=sg))
    return items


def plan_policy_groups(inv: Inventory) -> list[PlanItem]:
    items = []
    for sg in sorted(inv.security_groups, key=lambda s: (s.get("name") or "", s["id"])):
        described = (sg.get("description") or "").startswith(NP_SG_DESCRIPTION)
        named_in = inv.np_security_groups.get(sg["id"])
        if not described and not named_in:
            continue
        own = ownership(sg, inv.tag, named_in=named_in and f"KuryrNetworkPolicy {named_in}")
        items.append(DELETE.item("B16", sg["id"], sg.get("name") or "", own.evidence, own.state, own.reason,
                                 object=sg))
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
)
