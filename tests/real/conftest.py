"""Session fixtures for the `real` tier: a real Neutron 29 and Octavia 19, started by tests/real/services.py,
and a real kube-apiserver 1.20.2 (tests/real/kube_apiserver.py, built once per machine by kube_build.py).

Every test under tests/real/ is marked `real`. Set KURYR_MIGRATE_SKIP_REAL=1 to skip them (the only
reason they skip); otherwise the first test that needs a service installs it (once per machine) and
starts it. Under pytest-xdist each worker registers as a user of the shared services; the last
worker to finish stops them.

Neither service runs Keystone:
- Neutron (auth_strategy noauth) treats a request without X-Project-Id as admin of the project
  `fake_project_id`; creates take `project_id` in the body. Do NOT send X-Project-Id to Neutron:
  it then refuses creates without a body project_id ("Running without keystone AuthN requires that
  project_id is specified").
- Octavia (noauth) needs a project id on creates: `project_id` in the body or an X-Project-Id header.

The kube-apiserver fixtures: `kube_binaries` (session: builds kube-apiserver and kube-controller-manager
from Debian's source if the per-machine cache lacks them; a build that cannot run or fails FAILS the
tests, it never skips them in CI), `kube_cluster` (a fresh etcd + apiserver + controller manager for one
test: the cleanup tests change cluster-wide singletons such as Infrastructure/cluster) and
`shared_kube_cluster` (one per pytest worker, for tests that only touch namespaces of their own).
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.real import kube_build, services
from tests.real.kube_apiserver import KubeCluster

SKIP_VARIABLE = "KURYR_MIGRATE_SKIP_REAL"
REAL_TESTS_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = os.environ.get(SKIP_VARIABLE) == "1"
    for item in items:
        if REAL_TESTS_DIR not in Path(str(item.fspath)).resolve().parents:
            continue
        item.add_marker(pytest.mark.real)
        if skip:
            item.add_marker(pytest.mark.skip(reason=f"{SKIP_VARIABLE}=1: real services tier skipped"))


@pytest.fixture(scope="session")
def real_services_user() -> Iterator[None]:
    """Hold the shared services for this process; the last holder stops them."""
    services.register_user(os.getpid())
    try:
        yield
    finally:
        services.release_user(os.getpid())


@pytest.fixture(scope="session")
def real_neutron_url(real_services_user: None) -> str:
    return services.start_neutron()


@pytest.fixture(scope="session")
def real_octavia_url(real_services_user: None) -> str:
    return services.start_octavia()


@pytest.fixture
def project_id() -> str:
    """A fresh project per test, so tests sharing the services never see each other's resources."""
    return uuid.uuid4().hex


@pytest.fixture
def neutron(real_neutron_url: str) -> Any:
    """openstacksdk connection to the real Neutron (noauth: the endpoint is the whole auth)."""
    import openstack

    return openstack.connect(auth_type="none", auth={"endpoint": real_neutron_url})


@pytest.fixture
def octavia(real_neutron_url: str, real_octavia_url: str, project_id: str) -> Any:
    """openstacksdk connection whose load_balancer proxy talks to the real Octavia as project_id.

    The X-Project-Id header is what Octavia's noauth mode reads; it goes on a connection used only
    for Octavia because Neutron's noauth mode misbehaves with it (see the module docstring).
    """
    import openstack

    conn = openstack.connect(
        auth_type="none", auth={"endpoint": real_neutron_url}, load_balancer_endpoint_override=real_octavia_url
    )
    conn.session.additional_headers["X-Project-Id"] = project_id
    return conn


@pytest.fixture(scope="session")
def openstack_cli() -> str:
    """The `openstack` CLI of the environment running the tests (PATH may not include its venv)."""
    beside_python = Path(sys.executable).parent / "openstack"
    found = str(beside_python) if beside_python.exists() else shutil.which("openstack")
    if found is None:
        pytest.fail("the openstack CLI (python-openstackclient, a test dependency) is not installed")
    return found


@pytest.fixture
def real_cli_env(real_neutron_url: str, real_octavia_url: str) -> dict[str, str]:
    """Environment for the `openstack` CLI as a subprocess against the real services."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(
        OS_AUTH_TYPE="none",
        OS_ENDPOINT=real_neutron_url,
        OS_LOAD_BALANCER_ENDPOINT_OVERRIDE=real_octavia_url,
    )
    return env


# ---------------------------------------------------------------- kube-apiserver


@pytest.fixture(scope="session")
def kube_binaries() -> dict[str, str]:
    """kube-apiserver, kube-controller-manager and etcd; built on first use (~10-15 min on 2 CPUs, once per
    machine; pytest-xdist workers wait for the one that builds).

    A missing toolchain skips only outside CI, and only when it cannot be installed (not root); in CI
    (CI=true) it fails, like a failed build always does.
    """
    try:
        return kube_build.build()
    except kube_build.ToolchainMissing as error:
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"kube-apiserver toolchain missing in CI: {error}", pytrace=False)
        pytest.skip(f"kube-apiserver toolchain missing: {error}")
    except kube_build.BuildError as error:
        pytest.fail(f"kube-apiserver build failed: {error}", pytrace=False)


@pytest.fixture
def kube_cluster(kube_binaries: dict[str, str], tmp_path: Path) -> Iterator[KubeCluster]:
    """A fresh, empty real cluster (CRDs loaded) for one test."""
    cluster = KubeCluster(tmp_path / "kube").start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def shared_kube_cluster(kube_binaries: dict[str, str], tmp_path_factory: pytest.TempPathFactory
                        ) -> Iterator[KubeCluster]:
    """One real cluster for this pytest worker's tests that keep to namespaces of their own."""
    cluster = KubeCluster(tmp_path_factory.mktemp("kube-shared")).start()
    try:
        yield cluster
    finally:
        cluster.stop()
