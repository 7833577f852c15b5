"""The simulated Keystone v3: what keystoneauth (openstacksdk, the `openstack` CLI) needs to log in.

The tool authenticates with a password or an application credential from clouds.yaml, then finds
every service in the token's catalog; the services refuse requests that carry no valid token.
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

from kuryr_cleanup.sim.keystone import SIM_PASSWORD, SIM_PROJECT, SIM_USER

OPENSTACK = str(Path(sys.executable).with_name("openstack"))


def _password_auth(password: str = SIM_PASSWORD, project: str = SIM_PROJECT) -> dict[str, Any]:
    return {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": SIM_USER, "domain": {"name": "Default"}, "password": password}},
            },
            "scope": {"project": {"name": project, "domain": {"name": "Default"}}},
        }
    }


def test_discovery_answers_at_the_root_and_at_v3(sim: Any) -> None:
    root = requests.get(f"{sim.server.os_url}/identity", timeout=10)
    assert root.status_code == 300
    (version,) = root.json()["versions"]["values"]
    assert version["id"].startswith("v3.") and version["status"] == "stable"
    assert version["links"][0]["href"] == f"{sim.server.os_url}/identity/v3/"
    v3 = requests.get(sim.server.auth_url, timeout=10)
    assert v3.status_code == 200 and v3.json()["version"]["id"] == version["id"]


def test_a_password_token_carries_the_project_and_the_catalog_of_every_service(sim: Any) -> None:
    answer = requests.post(f"{sim.server.auth_url}/auth/tokens", json=_password_auth(), timeout=10)
    assert answer.status_code == 201
    assert answer.headers["X-Subject-Token"]
    token = answer.json()["token"]
    assert token["methods"] == ["password"]
    assert token["project"]["id"] == sim.store.project_id and token["project"]["name"] == SIM_PROJECT
    # The cluster's user is a member of its project, as an installer's clouds.yaml user is, not an admin.
    assert {r["name"] for r in token["roles"]} == {"member", "reader"}
    catalog = {service["type"]: service for service in token["catalog"]}
    base = sim.server.os_url
    expected = {
        "identity": f"{base}/identity",
        "network": f"{base}/networking",
        "load-balancer": f"{base}/load-balancer",
        "compute": f"{base}/compute/v2.1",
    }
    assert set(catalog) == set(expected)
    for service_type, url in expected.items():
        endpoints = catalog[service_type]["endpoints"]
        assert {e["interface"] for e in endpoints} == {"public", "internal", "admin"}
        assert {e["url"] for e in endpoints} == {url}
        assert {e["region_id"] for e in endpoints} == {"RegionOne"}


@pytest.mark.parametrize("password, project", [("wrong", SIM_PROJECT), (SIM_PASSWORD, "someone-elses")])
def test_wrong_credentials_or_project_get_401(sim: Any, password: str, project: str) -> None:
    answer = requests.post(f"{sim.server.auth_url}/auth/tokens", json=_password_auth(password, project), timeout=10)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == 401


def test_openstacksdk_logs_in_with_a_password_and_finds_the_services(sim: Any) -> None:
    conn = sim.openstack_sdk()
    assert conn.current_project_id == sim.store.project_id
    assert conn.network.get_endpoint().startswith(f"{sim.server.os_url}/networking")
    assert list(conn.network.networks()) == []


def test_openstacksdk_logs_in_with_an_application_credential(sim: Any) -> None:
    conn = openstack.connect(
        auth_type="v3applicationcredential",
        auth={"auth_url": sim.server.auth_url, "application_credential_id": "c0ffee",
              "application_credential_secret": SIM_PASSWORD},
        region_name="RegionOne",
    )
    assert conn.current_project_id == sim.store.project_id
    assert list(conn.network.ports()) == []
    wrong = openstack.connect(
        auth_type="v3applicationcredential",
        auth={"auth_url": sim.server.auth_url, "application_credential_id": "c0ffee",
              "application_credential_secret": "nope"},
        region_name="RegionOne",
    )
    with pytest.raises(openstack.exceptions.SDKException, match="HTTP 401"):
        wrong.authorize()


def test_a_token_validates_until_it_is_revoked(sim: Any) -> None:
    issued = requests.post(f"{sim.server.auth_url}/auth/tokens", json=_password_auth(), timeout=10)
    token = issued.headers["X-Subject-Token"]
    headers = {"X-Auth-Token": token, "X-Subject-Token": token}
    shown = requests.get(f"{sim.server.auth_url}/auth/tokens", headers=headers, timeout=10)
    assert shown.status_code == 200 and shown.json()["token"]["project"]["id"] == sim.store.project_id
    other = requests.post(f"{sim.server.auth_url}/auth/tokens", json=_password_auth(), timeout=10)
    admin = {"X-Auth-Token": other.headers["X-Subject-Token"], "X-Subject-Token": token}
    assert requests.delete(f"{sim.server.auth_url}/auth/tokens", headers=admin, timeout=10).status_code == 204
    assert requests.get(f"{sim.server.auth_url}/auth/tokens", headers=admin, timeout=10).status_code == 404
    networks = requests.get(f"{sim.server.os_url}/networking/v2.0/networks", headers={"X-Auth-Token": token},
                            timeout=10)
    assert networks.status_code == 401


def test_services_refuse_requests_without_a_valid_token(sim: Any) -> None:
    url = f"{sim.server.os_url}/networking/v2.0/networks"
    assert requests.get(url, timeout=10).status_code == 401
    refused = requests.get(url, headers={"X-Auth-Token": "made-up"}, timeout=10)
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "The request you have made requires authentication."
    # Version discovery is public, as in Neutron.
    assert requests.get(f"{sim.server.os_url}/networking/", timeout=10).status_code == 200


def test_the_openstack_cli_issues_a_token_and_shows_the_project(sim: Any) -> None:
    issued = subprocess.run([OPENSTACK, "token", "issue", "-f", "json"], env=sim.env, capture_output=True,
                            text=True, timeout=120)
    assert issued.returncode == 0, issued.stderr
    assert json.loads(issued.stdout)["project_id"] == sim.store.project_id
    shown = subprocess.run([OPENSTACK, "project", "show", SIM_PROJECT, "-f", "json"], env=sim.env,
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["id"] == sim.store.project_id
