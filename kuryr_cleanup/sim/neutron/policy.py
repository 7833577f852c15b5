"""Who may see which Neutron record: the project scoping a real Neutron applies to a token.

An admin token sees every project's records (a listing without a `project_id`/`tenant_id` filter
returns them all, which is what a tool run with cloud-admin credentials must be ready for). Any other
token sees, as Neutron's model query hooks and RBAC let it:
- its project's records;
- networks that are shared or external, and their subnets (access_as_shared / access_as_external);
- ports on its project's networks whatever their owner (router gateway, floating IP and DVR ports
  have project_id "": `_port_filter_hook` in neutron/db/db_base_plugin_v2.py lets a network owner
  see them);
- shared subnet pools, and the rules of its security groups.
A record it cannot see is, to it, a record that does not exist (404 NotFound), as on a real cloud.
"""

from __future__ import annotations

from typing import Any

from kuryr_cleanup.sim.keystone import AuthContext
from kuryr_cleanup.sim.neutron.records import bad_request
from kuryr_cleanup.sim.store import Store


def project_of(store: Store, context: AuthContext | None) -> str:
    """The project a request acts for (an unscoped token: the cluster's)."""
    return (context.project_id if context is not None else None) or store.project_id


def sees_everything(context: AuthContext | None) -> bool:
    return context is None or context.is_admin


def visible(store: Store, collection: str, record: dict[str, Any], context: AuthContext | None) -> bool:
    if sees_everything(context):
        return True
    project = project_of(store, context)
    if record.get("project_id") == project:
        return True
    if collection == "networks":
        return bool(record.get("shared") or record.get("router:external"))
    if collection == "subnets":
        network = store.os["networks"].get(record.get("network_id") or "")
        return network is not None and bool(network.get("shared") or network.get("router:external")
                                            or network.get("project_id") == project)
    if collection == "ports":
        network = store.os["networks"].get(record.get("network_id") or "")
        return network is not None and network.get("project_id") == project
    if collection == "subnetpools":
        return bool(record.get("shared"))
    if collection == "security_group_rules":
        group = store.os["security_groups"].get(record.get("security_group_id") or "")
        return group is not None and group.get("project_id") == project
    return False


def owner_for_create(store: Store, attrs: dict[str, Any], context: AuthContext | None) -> dict[str, Any]:
    """The create attributes with the owner filled in: the token's project unless an admin names
    another (neutron_lib.api.attributes: only an admin may set a project other than its own)."""
    project = project_of(store, context)
    wanted = attrs.get("project_id") or attrs.get("tenant_id")
    if wanted and wanted != project and not sees_everything(context):
        raise bad_request("Specifying 'project_id' other than the authenticated project in request is not "
                          "allowed for the current user.")
    return {**attrs, "project_id": wanted or project}
