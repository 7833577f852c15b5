"""Neutron security groups and their rules."""

from __future__ import annotations

import ipaddress
from typing import Any

from kuryr_cleanup.sim.neutron.records import (
    NeutronError,
    apply_attrs,
    get,
    insert,
    lookup,
    new_record,
    remove_record,
    touch,
)
from kuryr_cleanup.sim.store import Store


def ensure_default_security_group(store: Store, project_id: str | None = None) -> dict[str, Any]:
    """The project's `default` group, created on first need as real Neutron does."""
    project_id = project_id or store.project_id
    for group in store.os["security_groups"].values():
        if group["name"] == "default" and group["project_id"] == project_id:
            return group
    return create_security_group(store, name="default", project_id=project_id,
                                 description="Default security group")


def _default_rules(store: Store, group: dict[str, Any]) -> list[dict[str, Any]]:
    rules = [
        {"direction": "egress", "ethertype": "IPv4"},
        {"direction": "egress", "ethertype": "IPv6"},
    ]
    if group["name"] == "default":
        rules += [
            {"direction": "ingress", "ethertype": "IPv4", "remote_group_id": group["id"]},
            {"direction": "ingress", "ethertype": "IPv6", "remote_group_id": group["id"]},
        ]
    return rules


def create_security_group(store: Store, **attrs: Any) -> dict[str, Any]:
    record = new_record(store, attrs)
    record.update({"security_group_rules": [], "stateful": True, "shared": False, "revision_number": 1})
    apply_attrs(record, attrs, skip=("security_group_rules",))
    insert(store, "security_groups", record)
    for rule in _default_rules(store, record):
        create_security_group_rule(store, security_group_id=record["id"], project_id=record["project_id"], **rule)
    return record


def create_security_group_rule(store: Store, **attrs: Any) -> dict[str, Any]:
    group = get(store, "security_groups", attrs.get("security_group_id") or "")
    record = new_record(store, attrs)
    del record["name"], record["tags"]
    record.update(
        {
            "security_group_id": group["id"],
            "direction": "ingress",
            "ethertype": "IPv4",
            "protocol": None,
            "port_range_min": None,
            "port_range_max": None,
            "remote_ip_prefix": None,
            "remote_group_id": None,
            "remote_address_group_id": None,
            "normalized_cidr": None,
            "belongs_to_default_sg": group["name"] == "default",
        }
    )
    apply_attrs(record, attrs, skip=("security_group_id", "tags"))
    record.pop("tags", None)
    if record["remote_ip_prefix"]:
        record["normalized_cidr"] = str(ipaddress.ip_network(record["remote_ip_prefix"], strict=False))
    insert(store, "security_group_rules", record)
    group["security_group_rules"].append(dict(record))
    touch(store, group)
    return record


def delete_security_group(store: Store, group_id: str) -> None:
    group = get(store, "security_groups", group_id)
    if group["name"] == "default":
        raise NeutronError(409, "SecurityGroupCannotRemoveDefault", "Removing default security group not allowed.")
    if lookup(store, "ports", "security_groups", group_id):
        raise NeutronError(409, "SecurityGroupInUse", f"Security Group {group_id} in use.")
    for rule in lookup(store, "security_group_rules", "security_group_id", group_id):
        remove_record(store, "security_group_rules", rule["id"])
    # Other groups' rules that allow traffic from this group go too: the rules' remote_group_id is a
    # foreign key to it with ON DELETE CASCADE, and the ORM's `source_rules` backref deletes them
    # (neutron/db/models/securitygroup.py); their groups' revision goes up (revises_on_change).
    for rule in lookup(store, "security_group_rules", "remote_group_id", group_id):
        delete_security_group_rule(store, rule["id"])
    remove_record(store, "security_groups", group_id)


def delete_security_group_rule(store: Store, rule_id: str) -> None:
    rule = get(store, "security_group_rules", rule_id)
    group = store.os["security_groups"].get(rule["security_group_id"])
    if group is not None:
        group["security_group_rules"] = [r for r in group["security_group_rules"] if r["id"] != rule_id]
        touch(store, group)
    remove_record(store, "security_group_rules", rule_id)
