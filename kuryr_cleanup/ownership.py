"""The evidence rules (SPEC S2): why a resource is this cluster's Kuryr's, kept, or another cluster's.

A resource may be touched only with positive evidence: the cluster tag, being named in this
cluster's Kuryr CRs, or a CNO name with this infraID. A resource tagged for another cluster is never
ours, whatever else says so (a name, a description, a CR that points at it); one tagged for this
cluster and another is kept, as ambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kuryr_cleanup.inventory import Inventory
from kuryr_cleanup.kuryr import cluster_tags, description_tags
from kuryr_cleanup.plan import KEPT, PLANNED, SKIPPED


@dataclass
class Ownership:
    """Why a resource may (or may not) be touched."""

    ours: bool
    evidence: str = ""
    reason: str = ""

    @property
    def state(self) -> str:
        """The plan state this gives: planned when ours; skipped when another cluster's; else kept."""
        if self.ours:
            return PLANNED
        return SKIPPED if self.reason.startswith("skipped") else KEPT


def ownership(resource: dict[str, Any], tag: str, named_in: str | None = None, cno: str | None = None,
              description_tag: bool = False) -> Ownership:
    """Evidence that `resource` is this cluster's: our tag, being named in our CRs, or a CNO name.

    `description_tag`: also read the tag text in the description (Octavia < 2.5, or load balancers
    created before an upgrade across 2.5).
    """
    tags = cluster_tags(resource.get("tags"))
    if description_tag:
        tags |= description_tags(resource.get("description"))
    others = sorted(tags - {tag})
    if others and tag not in tags:
        return Ownership(False, reason=f"skipped: tagged for another cluster ({', '.join(others)})")
    if others:  # ours and another cluster's at once: which is it? Not a question to settle by deleting.
        return Ownership(False, reason=f"kept: tagged for this cluster and for another ({', '.join(others)})")
    if tag in cluster_tags(resource.get("tags")):
        return Ownership(True, f"tag {tag}")
    if tag in tags:
        return Ownership(True, f"description carries {tag}")
    if named_in:
        return Ownership(True, f"named in {named_in}")
    if cno:
        return Ownership(True, f"CNO name {cno}")
    return Ownership(False, reason="kept: no evidence it belongs to this cluster")


def kuryr_networks(inv: Inventory) -> dict[str, str]:
    """Network id -> evidence, for the namespace networks that are this cluster's Kuryr networks."""
    owned = {}
    for net_id, net in inv.networks.items():
        own = ownership(net, inv.tag, named_in=f"KuryrNetwork {inv.kuryr_networks[net_id].get('kuryrnetwork')}")
        if own.ours:
            owned[net_id] = own.evidence
    return owned


def trunk_ownership(trunk: dict[str, Any], inv: Inventory) -> Ownership:
    """A node trunk of this cluster, in its project: tagged for it or, its tagging failed, named like its
    nodes' trunks (`<infraID>-...`: the installer names the masters' `<infraID>-master-trunk-N`, the
    machine API a worker's after its machine) with a parent port that is a node's (trunks.discover).
    Anything else (a user VM's trunk, another project's) is never changed: a subport of it on a Kuryr
    network keeps that network (S7)."""
    project = trunk.get("project_id") or trunk.get("tenant_id")
    if inv.project_id and project and project != inv.project_id:
        return Ownership(False, reason=f"kept: a trunk of project {project}, not the cluster's ({inv.project_id})")
    own = ownership(trunk, inv.tag)
    if own.ours or cluster_tags(trunk.get("tags")):
        return own
    parent = inv.node_trunk_parents.get(trunk["id"])
    if parent:
        return Ownership(True, f"named like this cluster's node trunks ({inv.infra_id}-...) and {parent}")
    return Ownership(False, reason="kept: a trunk neither tagged for this cluster nor a node's (named "
                                   f"{inv.infra_id}-..., with a parent port tagged for it or of one of its servers)")
