"""Pointing kuryr-migrate at the real Neutron/Octavia plus a simulated cluster, and judging what it did.

- `RealTarget` writes the clouds.yaml an admin of this test bed would use (auth_type none: Neutron's URL
  is the endpoint; Octavia through `load_balancer_endpoint_override`) next to the simulator's kubeconfig.
- `EmptyCompute` answers Nova's version document and an empty server list: `kuryr-migrate snapshot`
  lists servers, and there is no Nova here (with auth_type none every service without an override
  resolves to the Neutron URL, which answers 404 to /servers/detail).
- `project_view` keeps only the records of one project, so resources of tests running at the same time
  on the shared services (noauth is admin: listings show every project) don't enter comparisons.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from kuryr_cleanup.cli import cli

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
FAST = ["--poll-interval", "0.2", "--retry-scale", "0.2"]


class EmptyCompute:
    """A Nova that has no servers: version discovery and `GET /v2.1/servers/detail` only, on 127.0.0.1."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                url = f"http://{self.headers.get('Host')}/v2.1/"
                version = {"id": "v2.1", "status": "CURRENT", "version": "2.1", "min_version": "2.1",
                           "links": [{"rel": "self", "href": url}]}
                path = self.path.split("?")[0].rstrip("/")
                if path == "":
                    body: Any = {"versions": [version]}
                elif path == "/v2.1":
                    body = {"version": version}
                elif path == "/v2.1/servers/detail":
                    body = {"servers": []}
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v2.1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class RealTarget:
    """The environment for kuryr-migrate: real OpenStack through clouds.yaml, the simulated cluster's kubeconfig."""

    def __init__(self, workdir: Path, neutron_url: str, octavia_url: str, compute_url: str, kubeconfig: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        clouds = workdir / "real-clouds.yaml"
        clouds.write_text(
            "clouds:\n"
            "  real:\n"
            "    auth_type: none\n"
            f"    auth: {{endpoint: '{neutron_url}'}}\n"
            f"    load_balancer_endpoint_override: '{octavia_url}'\n"
            f"    compute_endpoint_override: '{compute_url}'\n"
        )
        self.env = {"OS_CLIENT_CONFIG_FILE": str(clouds), "OS_CLOUD": "real", "KUBECONFIG": kubeconfig}

    def run(self, *args: str, run_dir: str = "run") -> Result:
        argv = list(args)
        if args and args[0] == "cleanup":
            argv += ["--run-dir", str(self.workdir / run_dir)]
        return CliRunner().invoke(cli, argv, env=self.env, catch_exceptions=False)

    def snapshot(self, name: str) -> dict[str, Any]:
        path = self.workdir / f"{name}.json"
        result = self.run("snapshot", "--all", "-o", str(path))
        assert result.exit_code == 0, result.output
        return dict(json.loads(path.read_text()))


def project_view(snap: dict[str, Any], project_id: str) -> dict[str, Any]:
    """The snapshot with only `project_id`'s OpenStack records (ports also when on the project's networks:
    Neutron gives router gateway and floating-IP ports an empty project)."""
    os_ = snap["openstack"]
    networks = {n["id"] for n in os_["networks"] if n.get("project_id") == project_id}
    view: dict[str, Any] = {"project_id": project_id}
    for collection, records in os_.items():
        if not isinstance(records, list):
            continue
        view[collection] = [r for r in records if r.get("project_id") == project_id
                            or (collection == "ports" and r.get("network_id") in networks)]
    return {**snap, "openstack": view}


def all_ids(snap: dict[str, Any]) -> set[str]:
    return {r["id"] for records in snap["openstack"].values() if isinstance(records, list) for r in records}


def plan_items(plan: dict[str, Any], known_ids: set[str]) -> list[tuple[str, str, str, str, str, str]]:
    """(step, kind, id, name, action, state) of every item about this project or the cluster: items about
    another project's resources (visible because noauth is admin) are left out."""
    out = []
    for item in plan["items"]:
        parts = str(item["id"]).split(":")
        if all(UUID.match(p) for p in parts) and not all(p in known_ids for p in parts):
            continue
        out.append((item["step"], item["kind"], item["id"], item["name"], item["action"], item["state"]))
    return sorted(out)
