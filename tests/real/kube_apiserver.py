"""A real kube-apiserver 1.20.2 on 127.0.0.1, with its etcd and a kube-controller-manager, for tests.

Standard library only (like services.py), so it also runs by hand:

    python3 tests/real/kube_apiserver.py run DIR    # builds once per machine, starts, prints the
                                                    # kubeconfig paths as JSON, stops on Ctrl-C

`KubeCluster(workdir).start()` starts three processes, each in its own session so `stop()` kills the
whole group:
- etcd (Debian's etcd-server 3.4) on two free loopback ports, its data on /dev/shm (tmpfs: every write
  is an fsync, and a test cluster does not need durability);
- kube-apiserver: HTTPS only on 127.0.0.1 (its self-signed certificate, generated into `certs/`, is
  the CA of every kubeconfig), `--token-auth-file` users (below), RBAC, an audit log of every request
  (`audit.log`, level Metadata) that tests read to prove a command made no write;
- kube-controller-manager with only the namespace and garbage-collector controllers: without the first,
  a deleted namespace stays Terminating for ever.

Users (tokens are random per cluster; groups decide the rights):
    admin          system:masters   kuryr-migrate under test
    seed           system:masters   the test bed: seeding, concurrent writers, checks
    controller     system:masters   kube-controller-manager
    limited        (none)           authenticated, no RBAC binding: discovery only, 403 on the rest

The custom resource definitions the tool reads are loaded at start (`CRDS`): Kuryr's four
(openstack.org/v1, no status subresource, as kuryr-kubernetes defines them) and the OpenShift kinds,
all structural with `x-kubernetes-preserve-unknown-fields`, with a status subresource where OpenShift's
have one.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the checkout's `tests` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.real import kube_build  # noqa: E402

READY_TIMEOUT = 120.0
SERVICE_CIDR = "172.30.0.0/16"  # OpenShift's default, so the generated Services' cluster IPs are valid
USERS = {
    "admin": ("kuryr-migrate-admin", "system:masters"),
    "seed": ("test-bed-seed", "system:masters"),
    "controller": ("system:kube-controller-manager", "system:masters"),
    "limited": ("limited-user", ""),
}
# Writes are what tests look for; reads are logged too (paging tests count list calls with `continue`),
# except the controller manager's (its informers list and watch all the time).
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: None
  users: ["system:apiserver"]
- level: None
  users: ["system:kube-controller-manager"]
  verbs: ["get", "list", "watch"]
- level: None
  nonResourceURLs: ["/healthz*", "/readyz*", "/livez*", "/version"]
- level: Metadata
"""
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclass(frozen=True)
class CustomKind:
    group: str
    kind: str
    plural: str
    namespaced: bool
    status: bool  # has a status subresource
    short_names: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.plural}.{self.group}"


CRDS: tuple[CustomKind, ...] = (
    # kuryr-kubernetes' CRDs declare no subresources: Kuryr writes status with a JSON patch on the object.
    CustomKind("openstack.org", "KuryrNetwork", "kuryrnetworks", True, False, ("kns",)),
    CustomKind("openstack.org", "KuryrPort", "kuryrports", True, False, ("kp",)),
    CustomKind("openstack.org", "KuryrLoadBalancer", "kuryrloadbalancers", True, False, ("klb",)),
    CustomKind("openstack.org", "KuryrNetworkPolicy", "kuryrnetworkpolicies", True, False, ("knp",)),
    CustomKind("config.openshift.io", "Infrastructure", "infrastructures", False, True),
    CustomKind("config.openshift.io", "Network", "networks", False, True),
    CustomKind("config.openshift.io", "ClusterOperator", "clusteroperators", False, True, ("co",)),
    CustomKind("config.openshift.io", "ClusterVersion", "clusterversions", False, True),
    CustomKind("operator.openshift.io", "Network", "networks", False, True),
    CustomKind("machineconfiguration.openshift.io", "MachineConfigPool", "machineconfigpools", False, True, ("mcp",)),
    CustomKind("machineconfiguration.openshift.io", "MachineConfig", "machineconfigs", False, False, ("mc",)),
)


class KubeError(RuntimeError):
    """The cluster could not start, or a call the test bed makes failed; the message says where to look."""


def crd_manifest(kind: CustomKind) -> dict[str, Any]:
    version: dict[str, Any] = {
        "name": "v1", "served": True, "storage": True,
        "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
    }
    if kind.status:
        version["subresources"] = {"status": {}}
    names: dict[str, Any] = {"plural": kind.plural, "singular": kind.kind.lower(), "kind": kind.kind,
                             "listKind": f"{kind.kind}List"}
    if kind.short_names:
        names["shortNames"] = list(kind.short_names)
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.name},
        "spec": {"group": kind.group, "scope": "Namespaced" if kind.namespaced else "Cluster",
                 "names": names, "versions": [version]},
    }


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"(no {path})"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _kill(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM the process group led by pid, then SIGKILL it if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            if not _alive(pid):
                return
            time.sleep(0.05)


class ApiResponse:
    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = headers

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class KubeCluster:
    """etcd + kube-apiserver + kube-controller-manager under `workdir`, on 127.0.0.1 only."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.tokens = {user: secrets.token_hex(16) for user in USERS}
        self.pids: dict[str, int] = {}
        self.port = 0
        self.etcd_dir: Path | None = None
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------------ paths and clients
    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.workdir / "certs" / "apiserver.crt"

    @property
    def audit_log(self) -> Path:
        return self.workdir / "audit.log"

    def log(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    def kubeconfig(self, user: str = "admin", token: str | None = None) -> Path:
        """A kubeconfig file for `user` (or any token, e.g. a wrong one); written once per user/token."""
        path = self.workdir / "kubeconfigs" / (f"{user}.yaml" if token is None else f"token-{token[:12]}.yaml")
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            config = {
                "apiVersion": "v1", "kind": "Config", "current-context": "real",
                "clusters": [{"name": "real", "cluster": {"server": self.url,
                                                           "certificate-authority": str(self.ca_file)}}],
                "users": [{"name": user, "user": {"token": token if token is not None else self.tokens[user]}}],
                "contexts": [{"name": "real", "context": {"cluster": "real", "user": user}}],
            }
            path.write_text(json.dumps(config, indent=1))  # JSON is YAML
            path.chmod(0o600)
        return path

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def request(self, method: str, path: str, body: Any = None, user: str = "seed",
                content_type: str = "application/json", token: str | None = None,
                timeout: float = 60.0) -> ApiResponse:
        """One raw API call; never raises for an HTTP status (tests look at the status themselves)."""
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {token if token is not None else self.tokens[user]}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.ssl_context()) as resp:
                return ApiResponse(resp.status, resp.read(), dict(resp.headers))
        except urllib.error.HTTPError as err:
            return ApiResponse(err.code, err.read(), dict(err.headers))

    def call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201), **kwargs: Any) -> Any:
        """A raw API call that must succeed; returns the decoded body."""
        resp = self.request(method, path, body, **kwargs)
        if resp.status not in ok:
            raise KubeError(f"{method} {path}: {resp.status} {resp.body[:400]!r}")
        return resp.json()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> KubeCluster:
        binaries = kube_build.build()
        atexit.register(self.stop)  # a test session that dies still takes its daemons with it
        started = time.monotonic()
        for sub in ("certs", "logs"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        self._write_auth_files()
        try:
            etcd_url = self._start_etcd(binaries["etcd"])
            self.timings["etcd"] = time.monotonic() - started
            self._start_apiserver(binaries["kube-apiserver"], etcd_url)
            self.timings["kube-apiserver"] = time.monotonic() - started
            self._start_controller_manager(binaries["kube-controller-manager"])
            self._load_crds()
            self.timings["crds"] = time.monotonic() - started
        except BaseException:
            self.stop()
            raise
        kube_build.record_timing("start etcd + kube-apiserver + kube-controller-manager + CRDs",
                                 time.monotonic() - started)
        return self

    def stop(self) -> None:
        atexit.unregister(self.stop)
        for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
            pid = self.pids.pop(name, None)
            if pid:
                _kill(pid)
        if self.etcd_dir is not None:
            shutil.rmtree(self.etcd_dir, ignore_errors=True)
            self.etcd_dir = None

    def __enter__(self) -> KubeCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, name: str, argv: list[str]) -> int:
        with open(self.log(name), "ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=self.workdir, start_new_session=True)
        self.pids[name] = proc.pid
        return proc.pid

    def _wait(self, name: str, ready: Any, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(self.pids[name]):
                raise KubeError(f"{name} exited during start; {self.log(name)}:\n{_log_tail(self.log(name))}")
            with contextlib.suppress(OSError, ssl.SSLError, urllib.error.URLError, KubeError):
                if ready():
                    return
            time.sleep(0.1)
        raise KubeError(f"{name} not ready after {timeout:.0f}s; {self.log(name)}:\n{_log_tail(self.log(name))}")

    def _write_auth_files(self) -> None:
        lines = []
        for user, (name, groups) in USERS.items():
            lines.append(f'{self.tokens[user]},{name},{name}' + (f',"{groups}"' if groups else ""))
        tokens = self.workdir / "tokens.csv"
        tokens.write_text("\n".join(lines) + "\n")
        tokens.chmod(0o600)
        (self.workdir / "audit-policy.yaml").write_text(AUDIT_POLICY)
        key = self.workdir / "certs" / "service-account.key"
        if not key.exists():
            # Required by 1.20 (--service-account-signing-key-file); nothing here uses service accounts.
            subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)

    def _start_etcd(self, etcd: str) -> str:
        shm = Path("/dev/shm")
        self.etcd_dir = Path(tempfile.mkdtemp(prefix="kuryr-migrate-etcd-", dir=shm if shm.is_dir() else None))
        client, peer = _free_port(), _free_port()
        url = f"http://127.0.0.1:{client}"
        self._spawn("etcd", [
            etcd, "--name", "test", "--data-dir", str(self.etcd_dir),
            "--listen-client-urls", url, "--advertise-client-urls", url,
            "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls",
            f"http://127.0.0.1:{peer}", "--initial-cluster", f"test=http://127.0.0.1:{peer}",
            "--listen-metrics-urls", "", "--log-level", "warn", "--logger", "zap",
        ])

        def healthy() -> bool:
            with urllib.request.urlopen(url + "/health", timeout=2) as resp:
                return bool(json.loads(resp.read()).get("health") == "true")

        self._wait("etcd", healthy)
        return url

    def _start_apiserver(self, binary: str, etcd_url: str) -> None:
        self.port = _free_port()
        certs = self.workdir / "certs"
        self._spawn("kube-apiserver", [
            binary,
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1", f"--secure-port={self.port}", "--insecure-port=0",
            f"--cert-dir={certs}",
            f"--token-auth-file={self.workdir / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--service-account-key-file={certs / 'service-account.key'}",
            f"--service-account-signing-key-file={certs / 'service-account.key'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            # No kubelets, no endpoints to reconcile (avoids a warning loop about a loopback address).
            "--endpoint-reconciler-type=none",
            # No token controller runs, so ServiceAccount admission would refuse every pod.
            "--disable-admission-plugins=ServiceAccount",
            f"--audit-log-path={self.audit_log}",
            f"--audit-policy-file={self.workdir / 'audit-policy.yaml'}",
            "--audit-log-maxsize=0",
            "--allow-privileged=true",
            "--v=1",
        ])

        def ready() -> bool:
            if not self.ca_file.exists():
                return False
            return self.request("GET", "/readyz", timeout=5).status == 200

        self._wait("kube-apiserver", ready)

    def _start_controller_manager(self, binary: str) -> None:
        self._spawn("kube-controller-manager", [
            binary,
            f"--kubeconfig={self.kubeconfig('controller')}",
            "--controllers=namespace,garbagecollector",
            "--leader-elect=false",
            "--use-service-account-credentials=false",
            # It serves nothing the tests need: no ports.
            "--port=0", "--secure-port=0",
            "--concurrent-namespace-syncs=2", "--concurrent-gc-syncs=5",
            "--v=1",
        ])
        time.sleep(0.2)
        if not _alive(self.pids["kube-controller-manager"]):
            log = self.log("kube-controller-manager")
            raise KubeError(f"kube-controller-manager exited during start; {log}:\n{_log_tail(log)}")

    def _load_crds(self) -> None:
        for kind in CRDS:
            self.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd_manifest(kind))

        def established() -> bool:
            for kind in CRDS:
                crd = self.call("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{kind.name}")
                conditions = {c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions") or []}
                if conditions.get("Established") != "True":
                    return False
            # Discovery lags the Established condition by a moment; the tool finds kinds through it.
            groups = {kind.group for kind in CRDS}
            return all(self.request("GET", f"/apis/{group}/v1").status == 200 for group in groups)

        self._wait("kube-apiserver", established, timeout=60)

    # ------------------------------------------------------------------ audit log
    def audit_events(self) -> list[dict[str, Any]]:
        try:
            text = self.audit_log.read_text()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def audit_mark(self) -> int:
        """A position in the audit log: `audit_since(mark)` gives what came after."""
        try:
            return self.audit_log.stat().st_size
        except FileNotFoundError:
            return 0

    def audit_since(self, mark: int, user: str | None = None) -> list[dict[str, Any]]:
        with open(self.audit_log, "rb") as log:
            log.seek(mark)
            lines = log.read().decode().splitlines()
        events = [json.loads(line) for line in lines if line.strip()]
        if user is not None:
            name = USERS[user][0]
            events = [e for e in events if (e.get("user") or {}).get("username") == name]
        return events


def writes(events: list[dict[str, Any]]) -> list[str]:
    """`VERB URI` of every write among audit events."""
    return [f"{e['verb']} {e['requestURI']}" for e in events if e.get("verb") in WRITE_VERBS]


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "run":
        print(f"usage: {argv[0]} run WORKDIR", file=sys.stderr)
        return 2
    cluster = KubeCluster(Path(argv[2]).resolve())
    try:
        cluster.start()
    except (KubeError, kube_build.BuildError) as error:
        print(f"cannot start: {error}", file=sys.stderr)
        return 1
    print(json.dumps({"url": cluster.url, "timings": cluster.timings,
                      "kubeconfigs": {u: str(cluster.kubeconfig(u)) for u in USERS}}, indent=2), flush=True)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
