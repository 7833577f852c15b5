"""Projects and roles: what a project member's token and a cloud admin's token each see.

A real admin token lists every project's Neutron and Octavia resources unless the query names the
project, while Nova lists the token's project unless asked for all projects. A tool run with admin
credentials must cope with that; these tests pin the simulator to it (scenario option `other-project`:
a second project full of look-alikes of the cluster's resources).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import openstack
import openstack.exceptions
import pytest
import requests

from kuryr_cleanup.sim.keystone import (
    SIM_ADMIN_PASSWORD,
    SIM_ADMIN_USER,
    SIM_PASSWORD,
    SIM_PROJECT,
    SIM_USER,
)
from kuryr_cleanup.sim.server import SIM_ADMIN_CLOUD

OPENSTACK = str(Path(sys.executable).with_name("openstack"))


def connect(sim: Any, admin: bool, project: str = SIM_PROJECT) -> Any:
    return openstack.connect(
        auth_url=sim.server.auth_url, username=SIM_ADMIN_USER if admin else SIM_USER,
        password=SIM_ADMIN_PASSWORD if admin else SIM_PASSWORD, project_name=project,
        user_domain_name="Default", project_domain_name="Default", region_name="RegionOne",
    )


@pytest.fixture(scope="module")
def two_projects(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from kuryr_cleanup.sim.generate import ScenarioSpec, generate_scenario
    from kuryr_cleanup.sim.server import SimServer
    from kuryr_cleanup.sim.store import Store
    from tests.conftest import Sim

    store = Store()
    generate_scenario(store, ScenarioSpec.parse("namespaces=2,other-project"))
    server = SimServer(store).start()
    try:
        sim = Sim(server, tmp_path_factory.mktemp("projects"))
        sim.ours = store.project_id
        sim.theirs = store.settings["other_projects"]["team-b"]
        yield sim
    finally:
        server.stop()


def test_tokens_carry_the_roles_of_their_user_on_their_project(two_projects: Any) -> None:
    member, admin = connect(two_projects, admin=False), connect(two_projects, admin=True)
    assert member.current_project_id == admin.current_project_id == two_projects.ours
    assert set(member.session.auth.get_access(member.session).role_names) == {"member", "reader"}
    assert "admin" in admin.session.auth.get_access(admin.session).role_names
    assert connect(two_projects, admin=True, project="team-b").current_project_id == two_projects.theirs
    with pytest.raises(openstack.exceptions.SDKException, match="401"):
        connect(two_projects, admin=False, project="team-b").authorize()


def test_a_member_sees_its_project_and_the_external_network_only(two_projects: Any) -> None:
    conn = connect(two_projects, admin=False)
    networks = list(conn.network.networks())
    assert {n.project_id for n in networks if not n.is_router_external} == {two_projects.ours}
    assert [n.name for n in networks if n.is_router_external] == ["external"]
    infra = two_projects.store.infra_id
    assert [g.project_id for g in conn.network.security_groups(name=f"{infra}-kuryr-pods-security-group")] == [
        two_projects.ours]
    assert {p.project_id for p in conn.network.ports()} <= {two_projects.ours, ""}
    theirs = next(n for n in two_projects.store.os["networks"].values() if n["name"] == "team-b-net")
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.network.get_network(theirs["id"])
    assert [lb.project_id for lb in conn.load_balancer.load_balancers(name="ns-1/web")] == [two_projects.ours]
    assert "team-b-vm" not in {s.name for s in conn.compute.servers()}


def test_an_admin_lists_every_projects_resources_unless_it_names_the_project(two_projects: Any) -> None:
    conn = connect(two_projects, admin=True)
    infra = two_projects.store.infra_id
    look_alikes = list(conn.network.security_groups(name=f"{infra}-kuryr-pods-security-group"))
    assert sorted(g.project_id for g in look_alikes) == sorted([two_projects.ours, two_projects.theirs])
    for key in ("project_id", "tenant_id"):
        ours = list(conn.network.security_groups(name=f"{infra}-kuryr-pods-security-group",
                                                 **{key: two_projects.ours}))
        assert [g.project_id for g in ours] == [two_projects.ours]
    assert {n.name for n in conn.network.networks()} >= {"team-b-net", f"{infra}-kuryr-service-network"}
    assert len([n for n in conn.network.networks() if n.name == f"{infra}-kuryr-service-network"]) == 2
    lbs = list(conn.load_balancer.load_balancers(name="ns-1/web"))
    assert sorted(lb.project_id for lb in lbs) == sorted([two_projects.ours, two_projects.theirs])
    assert [lb.project_id for lb in conn.load_balancer.load_balancers(name="ns-1/web",
                                                                       project_id=two_projects.ours)] == [
        two_projects.ours]


def test_nova_lists_the_tokens_project_even_for_an_admin_unless_asked_for_all(two_projects: Any) -> None:
    admin, member = connect(two_projects, admin=True), connect(two_projects, admin=False)
    assert "team-b-vm" not in {s.name for s in admin.compute.servers()}
    # project_id without all_tenants is ignored, as Nova does.
    assert "team-b-vm" not in {s.name for s in admin.compute.servers(project_id=two_projects.theirs)}
    everything = {s.name for s in admin.compute.servers(all_projects=True)}
    assert "team-b-vm" in everything and any(name.startswith(two_projects.store.infra_id) for name in everything)
    assert [s.name for s in admin.compute.servers(all_projects=True, project_id=two_projects.theirs)] == [
        "team-b-vm"]
    with pytest.raises(openstack.exceptions.ForbiddenException):
        list(member.compute.servers(all_projects=True))
    theirs = next(s for s in two_projects.store.os["servers"].values() if s["name"] == "team-b-vm")
    assert admin.compute.get_server(theirs["id"]).name == "team-b-vm"
    with pytest.raises(openstack.exceptions.NotFoundException):
        member.compute.get_server(theirs["id"])


def test_a_member_can_neither_read_nor_create_in_another_project(two_projects: Any) -> None:
    member = connect(two_projects, admin=False)
    session = requests.Session()
    session.headers["X-Auth-Token"] = member.session.get_token()
    base = two_projects.server.os_url
    created = session.post(f"{base}/networking/v2.0/networks",
                           json={"network": {"name": "sneaky", "project_id": two_projects.theirs}}, timeout=10)
    assert created.status_code == 400
    assert created.json()["NeutronError"]["message"] == ("Specifying 'project_id' other than the authenticated "
                                                         "project in request is not allowed for the current user.")
    mine = session.post(f"{base}/networking/v2.0/networks", json={"network": {"name": "mine"}}, timeout=10)
    assert mine.status_code == 201 and mine.json()["network"]["project_id"] == two_projects.ours
    theirs = next(lb for lb in two_projects.store.os["loadbalancers"].values()
                  if lb["project_id"] == two_projects.theirs)
    shown = session.get(f"{base}/load-balancer/v2/lbaas/loadbalancers/{theirs['id']}", timeout=10)
    assert shown.status_code == 403
    assert shown.json()["faultstring"] == "Policy does not allow this request to be performed."
    listed = session.get(f"{base}/load-balancer/v2/lbaas/loadbalancers", params={"project_id": two_projects.theirs},
                         timeout=10)
    assert listed.status_code == 403


def test_the_admin_cloud_in_clouds_yaml_works_with_the_openstack_cli(two_projects: Any) -> None:
    env = {**two_projects.env, "OS_CLOUD": SIM_ADMIN_CLOUD}
    listed = subprocess.run([OPENSTACK, "network", "list", "-f", "json", "-c", "Name"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "team-b-net" in {n["Name"] for n in json.loads(listed.stdout)}
    own = subprocess.run([OPENSTACK, "network", "list", "-f", "json", "-c", "Name", "--project", SIM_PROJECT],
                         env=env, capture_output=True, text=True, timeout=120)
    assert own.returncode == 0, own.stderr
    assert "team-b-net" not in {n["Name"] for n in json.loads(own.stdout)}
