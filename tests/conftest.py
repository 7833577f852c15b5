"""Shared fixtures: a simulator started in-process on 127.0.0.1 for each test that asks for one."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kuryr_cleanup.sim.server import SimServer
from kuryr_cleanup.sim.store import Store

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"


class Sim:
    """A running simulator plus what a test needs to drive clients at it and inspect it."""

    def __init__(self, server: SimServer, workdir: Path) -> None:
        self.server = server
        self.store = server.store
        self.workdir = workdir
        server.write_client_config(workdir)
        # The environment an admin would export; tests pass it to subprocesses (openstack, kubectl).
        self.env = {**os.environ, **server.environment(workdir)}
        for name in [k for k in self.env if k.startswith("OS_") and k not in ("OS_CLOUD", "OS_CLIENT_CONFIG_FILE")]:
            del self.env[name]

    def control(self, method: str, path: str, data: Any = None) -> Any:
        body = json.dumps(data).encode() if data is not None else None
        req = urllib.request.Request(f"{self.server.os_url}/_sim/{path}", data=body, method=method)
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def requests(self) -> list[dict[str, Any]]:
        return list(self.control("GET", "requests")["requests"])

    def writes(self) -> list[dict[str, Any]]:
        """Requests that change the cloud or the cluster (a Keystone token request changes neither)."""
        return [r for r in self.requests() if r["method"] not in ("GET", "HEAD")
                and not (r["service"] == "identity" and r["path"].endswith("/auth/tokens"))]

    def clear_requests(self) -> None:
        self.control("DELETE", "requests")

    def state(self) -> dict[str, Any]:
        return dict(self.control("GET", "state"))

    def openstack_sdk(self) -> Any:
        import openstack

        return openstack.connect(
            auth_url=self.server.auth_url,
            username="admin",
            password="sim-password",
            project_name="openshift",
            user_domain_name="Default",
            project_domain_name="Default",
            region_name="RegionOne",
        )


@pytest.fixture
def make_sim(tmp_path: Path) -> Iterator[Any]:
    """Factory: make_sim(snapshot=path|dict, generate='spec', store=Store) -> a started Sim."""
    started: list[SimServer] = []

    def factory(snapshot: str | Path | dict[str, Any] | None = None, generate: str | None = None,
                store: Store | None = None, delays: dict[str, float] | None = None) -> Sim:
        from kuryr_cleanup.sim.generate import ScenarioSpec, generate_scenario

        if store is None:
            store = Store()
            if snapshot is not None:
                data = snapshot if isinstance(snapshot, dict) else json.loads(Path(snapshot).read_text())
                store.load_snapshot(data)
            elif generate is not None:
                generate_scenario(store, ScenarioSpec.parse(generate))
        if delays:
            store.delays.update(delays)
        server = SimServer(store).start()
        started.append(server)
        workdir = tmp_path / f"sim{len(started)}"
        return Sim(server, workdir)

    yield factory
    for server in started:
        server.stop()


@pytest.fixture
def sim(make_sim: Any) -> Sim:
    """An empty simulated cloud and cluster."""
    return make_sim(store=Store())
