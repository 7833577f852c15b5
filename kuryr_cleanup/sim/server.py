"""The simulator's HTTP servers: one port for the OpenStack APIs, one for the Kubernetes API.

Both bind 127.0.0.1 only. OpenStack services are mounted under path prefixes (/identity,
/networking, /load-balancer, /compute) as devstack does; the Kubernetes API gets its own port
because clients expect /api and /apis at the root. Control endpoints for tests and admins live under
/_sim/ on the OpenStack port.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from kuryr_cleanup.sim import keystone, neutron, nova, octavia
from kuryr_cleanup.sim.faults import DROP, HANG, FaultRule, Faults, LoggedRequest, parse_capacity, parse_faults
from kuryr_cleanup.sim.http import Request, Response, Service
from kuryr_cleanup.sim.keystone import SIM_ADMIN_PASSWORD, SIM_ADMIN_USER, SIM_PASSWORD, SIM_PROJECT, SIM_USER
from kuryr_cleanup.sim.kube.api import KubeApi
from kuryr_cleanup.sim.kube.auth import ADMIN_TOKEN, LIMITED_TOKEN
from kuryr_cleanup.sim.store import Store

LOOPBACK = "127.0.0.1"
SIM_CLOUD = "sim"
SIM_ADMIN_CLOUD = "sim-admin"  # the cloud's administrator, scoped to the cluster's project


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, sim: SimServer, services: list[Service], port: int) -> None:
        self.sim = sim
        self.services = sorted(services, key=lambda s: len(s.prefix), reverse=True)
        super().__init__((LOOPBACK, port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every keep-alive response.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _serve(self) -> None:
        sim = self.server.sim
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        if parts.path.startswith("/_sim/"):
            self._send(sim.control(self.command, parts.path, parts.query, body))
            return
        service = next((s for s in self.server.services if parts.path.startswith(s.prefix)), None)
        if service is None:
            self._send(Response(404, {"error": {"message": f"nothing is served at {parts.path}"}}))
            return
        sub_path = parts.path[len(service.prefix) :] or "/"
        request = Request(self.command, sub_path, parts.query, headers, body)
        rule = sim.faults.pick(service.name, self.command, sub_path)
        latency = sim.faults.admit(service.name)
        if latency is None:  # over the service's capacity: refused at once
            sim.faults.record(LoggedRequest(time.time(), service.name, self.command, sub_path, parts.query, 503))
            self._send(service.fault_response(503, None))
            return
        try:
            self._answer(sim, service, request, rule, latency, sub_path, parts.query)
        finally:
            sim.faults.leave(service.name)

    def _answer(self, sim: SimServer, service: Service, request: Request, rule: FaultRule | None,
                latency: float, sub_path: str, query: str) -> None:
        if latency:
            time.sleep(latency)
        if rule is not None:
            sim.faults.record(
                LoggedRequest(time.time(), service.name, self.command, sub_path, query, rule.status)
            )
            if rule.status == HANG:
                sim.faults.released.wait(120)
            if rule.status in (DROP, HANG):
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            response = service.fault_response(rule.status, rule.retry_after)
            self._send(response)
            return
        with sim.store.lock:
            sim.store.clock.request_served()
            sim.store.tick()
            response = service.dispatch(request)
        sim.faults.record(
            LoggedRequest(time.time(), service.name, self.command, sub_path, query, response.status)
        )
        self._send(response)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.stream is not None:
            self.send_header("Content-Type", response.content_type)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for chunk in response.stream:
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            return
        payload = response.encoded()
        if payload or response.body is not None:
            self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve


class SimServer:
    """The simulated cloud and cluster, served on 127.0.0.1."""

    def __init__(self, store: Store | None = None, port: int = 0, kube_port: int = 0) -> None:
        self.store = store or Store()
        self.faults = Faults()
        self.keystone = keystone.Keystone(self.store, self)
        self.openstack_services: list[Service] = [
            self.keystone,
            neutron.Neutron(self.store),
            octavia.Octavia(self.store),
            nova.Nova(self.store),
        ]
        self.kube_api = KubeApi(self.store)
        self._os_http = _Server(self, self.openstack_services, port)
        self._kube_http = _Server(self, [self.kube_api], kube_port)
        self._threads: list[threading.Thread] = []

    @property
    def os_url(self) -> str:
        return f"http://{LOOPBACK}:{self._os_http.server_address[1]}"

    @property
    def auth_url(self) -> str:
        return f"{self.os_url}{self.keystone.prefix}/v3"

    @property
    def kube_url(self) -> str:
        return f"http://{LOOPBACK}:{self._kube_http.server_address[1]}"

    def start(self) -> SimServer:
        # A kube-apiserver makes default, kube-system, kube-public and kube-node-lease when it starts.
        self.store.ensure_system_namespaces()
        self.store.new_instance()
        for http in (self._os_http, self._kube_http):
            t = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        for http in (self._os_http, self._kube_http):
            http.shutdown()
            http.server_close()
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- client configuration -----------------------------------------------------------------
    def clouds_yaml(self) -> dict[str, Any]:
        def cloud(username: str, password: str) -> dict[str, Any]:
            return {
                "auth": {
                    "auth_url": self.auth_url,
                    "username": username,
                    "password": password,
                    "project_name": SIM_PROJECT,
                    "user_domain_name": "Default",
                    "project_domain_name": "Default",
                },
                "region_name": "RegionOne",
                "interface": "public",
                "identity_api_version": 3,
            }

        # `sim`: the cluster's own user, as an installer's clouds.yaml has it. `sim-admin`: a cloud
        # admin in the same project, whose token lists every project's resources in Neutron and Octavia.
        return {"clouds": {SIM_CLOUD: cloud(SIM_USER, SIM_PASSWORD),
                           SIM_ADMIN_CLOUD: cloud(SIM_ADMIN_USER, SIM_ADMIN_PASSWORD)}}

    def kubeconfig(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "sim", "cluster": {"server": self.kube_url}}],
            "users": [{"name": "sim-admin", "user": {"token": ADMIN_TOKEN}},
                      {"name": "sim-limited", "user": {"token": LIMITED_TOKEN}}],
            # `--context sim-limited`: a user RBAC refuses (403 on every resource, discovery allowed).
            "contexts": [{"name": "sim", "context": {"cluster": "sim", "user": "sim-admin"}},
                         {"name": "sim-limited", "context": {"cluster": "sim", "user": "sim-limited"}}],
            "current-context": "sim",
        }

    def write_client_config(self, workdir: str | Path) -> dict[str, Path]:
        """Write clouds.yaml and a kubeconfig into `workdir`; return their paths."""
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        clouds = workdir / "clouds.yaml"
        kubeconfig = workdir / "kubeconfig"
        for path, data in ((clouds, self.clouds_yaml()), (kubeconfig, self.kubeconfig())):
            tmp = path.with_suffix(".tmp")
            tmp.write_text(yaml.safe_dump(data, sort_keys=False))
            os.chmod(tmp, 0o600)
            tmp.replace(path)
        return {"clouds": clouds, "kubeconfig": kubeconfig}

    def environment(self, workdir: str | Path) -> dict[str, str]:
        """The variables an admin exports to point the ecosystem's tools at this simulator."""
        workdir = Path(workdir).resolve()
        return {
            "OS_CLIENT_CONFIG_FILE": str(workdir / "clouds.yaml"),
            "OS_CLOUD": SIM_CLOUD,
            "KUBECONFIG": str(workdir / "kubeconfig"),
        }

    # -- control API (/_sim/...) --------------------------------------------------------------
    def control(self, method: str, path: str, query: str, body: bytes) -> Response:
        data = json.loads(body) if body else None
        if path == "/_sim/requests":
            if method == "DELETE":
                self.faults.clear_log()
                return Response(204)
            return Response(200, {"requests": self.faults.requests()})
        if path == "/_sim/state":
            return Response(200, self.store.snapshot())
        if path == "/_sim/faults":
            if method in ("PUT", "POST"):
                rules = parse_faults(json.dumps(data) if not isinstance(data, str) else data)
                if method == "PUT":
                    self.faults.set_rules(rules)
                else:
                    self.faults.add_rules(rules)
            return Response(200, {"faults": self.faults.describe()})
        if path == "/_sim/faults/release" and method == "POST":
            self.faults.released.set()
            return Response(200, {"released": True})
        if path == "/_sim/capacity":
            if method in ("PUT", "POST"):
                self.faults.set_capacity(parse_capacity(data or {}))
            return Response(200, {"capacity": self.faults.describe_capacity()})
        if path == "/_sim/latency" and method in ("PUT", "POST"):
            self.faults.latency = float((data or {}).get("seconds", 0.0))
            return Response(200, {"seconds": self.faults.latency})
        if path == "/_sim/delays":
            if method in ("PUT", "POST"):
                with self.store.lock:
                    self.store.delays.update({k: float(v) for k, v in (data or {}).items()})
            return Response(200, {"delays": self.store.delays})
        if path == "/_sim/clock" and method == "POST":
            asked = data or {}
            with self.store.lock:
                if "per_request" in asked:
                    self.store.clock.per_request = float(asked["per_request"])
            self.store.advance(float(asked.get("advance", 0.0)))
            return Response(200, {"now": self.store.clock.now(), "per_request": self.store.clock.per_request})
        if path == "/_sim/behaviours":
            if method in ("PUT", "POST"):
                with self.store.lock:
                    self.store.behaviour_faults.update(data or {})
            return Response(200, {"behaviours": self.store.behaviour_faults})
        handler = getattr(self.kube_api, "control", None)
        if handler is not None:
            answer = handler(method, path, data)
            if answer is not None:
                return answer
        return Response(404, {"error": {"message": f"no control endpoint {path}"}})
