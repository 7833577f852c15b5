"""A real Octavia 19 (amphora provider, noop drivers) through openstacksdk: the LB state machine.

The VIP subnet need not exist in Neutron: the noop network driver invents the VIP port and address.
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

import openstack.exceptions
import pytest

from tests.real import services

VIP_SUBNET = "22222222-2222-2222-2222-222222222222"
WAIT_SECONDS = 60


def octavia_fault(exc: openstack.exceptions.HttpException) -> str:
    """Octavia's error bodies are WSME faults: {"faultcode", "faultstring", "debuginfo"}."""
    assert exc.response is not None
    body = exc.response.json()
    assert set(body) == {"faultcode", "faultstring", "debuginfo"}, body
    return str(body["faultstring"])


def wait_active(conn: Any, lb_id: str) -> Any:
    return conn.load_balancer.wait_for_load_balancer(lb_id, status="ACTIVE", interval=0.2, wait=WAIT_SECONDS)


def wait_gone(conn: Any, lb_id: str) -> None:
    """Poll until Octavia answers 404 for the LB (deleted LBs are not listed nor shown)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while conn.load_balancer.find_load_balancer(lb_id, ignore_missing=True) is not None:
        assert time.monotonic() < deadline, f"load balancer {lb_id} still there after {WAIT_SECONDS}s"
        time.sleep(0.1)


def test_lb_create_wait_active_then_cascade_delete(octavia: Any, project_id: str) -> None:
    lb = octavia.load_balancer.create_load_balancer(name="kuryr-demo/svc", vip_subnet_id=VIP_SUBNET,
                                                    project_id=project_id, tags=["openshiftClusterID=abc-123"])
    assert (lb.provisioning_status, lb.operating_status) == ("PENDING_CREATE", "OFFLINE")
    assert lb.project_id == project_id
    lb = wait_active(octavia, lb.id)
    # No health manager: operating_status never leaves OFFLINE.
    assert lb.operating_status == "OFFLINE"

    listener = octavia.load_balancer.create_listener(load_balancer_id=lb.id, protocol="TCP", protocol_port=80)
    assert listener.project_id == project_id  # children inherit the LB's project
    wait_active(octavia, lb.id)
    pool = octavia.load_balancer.create_pool(listener_id=listener.id, protocol="TCP", lb_algorithm="ROUND_ROBIN")
    wait_active(octavia, lb.id)
    octavia.load_balancer.create_member(pool, address="10.128.4.10", protocol_port=8080, subnet_id=VIP_SUBNET)
    wait_active(octavia, lb.id)

    with pytest.raises(openstack.exceptions.BadRequestException) as raised:
        octavia.load_balancer.delete_load_balancer(lb.id, ignore_missing=False)
    assert octavia_fault(raised.value) == f"Validation failure: Cannot delete Load Balancer {lb.id} - it has children"

    octavia.load_balancer.delete_load_balancer(lb.id, ignore_missing=False, cascade=True)
    wait_gone(octavia, lb.id)
    assert octavia.load_balancer.find_listener(listener.id, ignore_missing=True) is None
    assert octavia.load_balancer.find_pool(pool.id, ignore_missing=True) is None


def test_changes_to_a_pending_lb_are_refused(octavia: Any, project_id: str) -> None:
    lb = octavia.load_balancer.create_load_balancer(name="pending", vip_subnet_id=VIP_SUBNET, project_id=project_id)
    # ACTIVE comes 1-3 s after create: these calls land while it is PENDING_CREATE.
    with pytest.raises(openstack.exceptions.ConflictException) as raised:
        octavia.load_balancer.delete_load_balancer(lb.id, ignore_missing=False)
    assert octavia_fault(raised.value) == f"Invalid state PENDING_CREATE of loadbalancer resource {lb.id}"
    with pytest.raises(openstack.exceptions.ConflictException) as raised:
        octavia.load_balancer.create_listener(load_balancer_id=lb.id, protocol="TCP", protocol_port=80)
    assert octavia_fault(raised.value) == f"Load Balancer {lb.id} is immutable and cannot be updated."

    wait_active(octavia, lb.id)
    octavia.load_balancer.delete_load_balancer(lb.id, ignore_missing=False)
    with pytest.raises(openstack.exceptions.ConflictException) as raised:
        octavia.load_balancer.delete_load_balancer(lb.id, ignore_missing=False, cascade=True)
    assert octavia_fault(raised.value) == f"Invalid state PENDING_DELETE of loadbalancer resource {lb.id}"
    wait_gone(octavia, lb.id)
    with pytest.raises(openstack.exceptions.ResourceNotFound) as missing:
        octavia.load_balancer.delete_load_balancer(lb.id, ignore_missing=False)
    assert octavia_fault(missing.value) == f"Load Balancer {lb.id} not found."


def test_an_error_lb_is_deleted_like_an_active_one(octavia: Any, project_id: str) -> None:
    lb = octavia.load_balancer.create_load_balancer(name="broken", vip_subnet_id=VIP_SUBNET, project_id=project_id)
    wait_active(octavia, lb.id)
    listener = octavia.load_balancer.create_listener(load_balancer_id=lb.id, protocol="TCP", protocol_port=80)
    wait_active(octavia, lb.id)
    services.force_load_balancer_status(lb.id, "ERROR")
    assert octavia.load_balancer.get_load_balancer(lb.id).provisioning_status == "ERROR"
    # ERROR does not lift the children rule ...
    with pytest.raises(openstack.exceptions.BadRequestException) as raised:
        octavia.load_balancer.delete_load_balancer(lb.id, ignore_missing=False)
    assert octavia_fault(raised.value) == f"Validation failure: Cannot delete Load Balancer {lb.id} - it has children"
    # ... and cascade works from ERROR.
    octavia.load_balancer.delete_load_balancer(lb.id, ignore_missing=False, cascade=True)
    wait_gone(octavia, lb.id)
    assert octavia.load_balancer.find_listener(listener.id, ignore_missing=True) is None


def test_lb_tag_filters(octavia: Any, project_id: str) -> None:
    mine = octavia.load_balancer.create_load_balancer(name="mine", vip_subnet_id=VIP_SUBNET, project_id=project_id,
                                                      tags=["openshiftClusterID=abc-123", "kuryr"])
    other = octavia.load_balancer.create_load_balancer(name="other", vip_subnet_id=VIP_SUBNET, project_id=project_id,
                                                       tags=["openshiftClusterID=other"])

    def names(**filters: str) -> set[str]:
        return {lb.name for lb in octavia.load_balancer.load_balancers(project_id=project_id, **filters)}

    assert names(tags="openshiftClusterID=abc-123,kuryr") == {"mine"}
    assert names(any_tags="openshiftClusterID=abc-123,openshiftClusterID=other") == {"mine", "other"}
    assert names(not_tags="openshiftClusterID=abc-123") == {"other"}
    assert names(not_any_tags="kuryr,openshiftClusterID=other") == set()
    # Unlike Neutron, Octavia accepts tags and tags-any together.
    assert names(tags="kuryr", any_tags="openshiftClusterID=abc-123") == {"mine"}
    for lb in (mine, other):
        wait_active(octavia, lb.id)
        octavia.load_balancer.delete_load_balancer(lb.id, cascade=True)
    for lb in (mine, other):
        wait_gone(octavia, lb.id)


def test_openstack_cli_lists_load_balancers(
    octavia: Any, project_id: str, openstack_cli: str, real_cli_env: dict[str, str]
) -> None:
    lb = octavia.load_balancer.create_load_balancer(name="cli-visible", vip_subnet_id=VIP_SUBNET,
                                                    project_id=project_id)
    listed = subprocess.run(
        [openstack_cli, "loadbalancer", "show", lb.id, "-f", "value", "-c", "project_id"],
        env=real_cli_env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == [project_id]
    wait_active(octavia, lb.id)
    octavia.load_balancer.delete_load_balancer(lb.id, cascade=True)
    wait_gone(octavia, lb.id)
