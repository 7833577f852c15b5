"""Install, start and stop a real Neutron 29 and a real Octavia 19 on 127.0.0.1, with no Keystone.

Standard library only, so it runs under any Python 3.10+ (the project's venv, CI's, or the system one):

    python3 tests/real/services.py start      # prints the endpoints as JSON
    python3 tests/real/services.py status
    python3 tests/real/services.py stop

Everything lives under tests/real/.cache/ (git-ignored): the service venv (`venv/`, installed from PyPI
once and reused), the private MariaDB (`mariadb/`), Neutron's SQLite file and config (`neutron/`),
Octavia's config and throwaway CA (`octavia/`), logs (`logs/`) and `services.json`, the record of what
runs (pids, ports, URLs) that lets a second caller (another pytest-xdist worker, or `stop` from a shell)
find the services. A file lock serialises callers.

Each start gives empty services: Neutron's SQLite file and Octavia's database are recreated.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from string import Template
from typing import Any

REAL_DIR = Path(__file__).resolve().parent
CONFIG_TEMPLATES = REAL_DIR / "config"
CACHE = REAL_DIR / ".cache"
VENV = CACHE / "venv"
LOGS = CACHE / "logs"
STATE_FILE = CACHE / "services.json"
LOCK_FILE = CACHE / "services.lock"
TIMINGS_LOG = LOGS / "timings.log"

# Majors are what the project is tested against; constraints.txt freezes the rest to a set that worked.
REQUIREMENTS = ["neutron==29.*", "octavia==19.*", "waitress", "PyMySQL"]
CONSTRAINTS = REAL_DIR / "constraints.txt"

READY_TIMEOUT = 180.0


class ServiceError(RuntimeError):
    """A service could not be installed or started; the message names the log to read."""


# ---------------------------------------------------------------- bookkeeping


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(LOCK_FILE, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read_state() -> dict[str, Any]:
    try:
        return dict(json.loads(STATE_FILE.read_text()))
    except (FileNotFoundError, ValueError):
        return {}


def _write_state(state: dict[str, Any]) -> None:
    tmp = STATE_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    tmp.replace(STATE_FILE)


def _record_timing(step: str, seconds: float) -> None:
    LOGS.mkdir(parents=True, exist_ok=True)
    line = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {step} {seconds:.1f}s"
    with open(TIMINGS_LOG, "a") as log:
        log.write(line + "\n")
    print(f"[tests/real] {step}: {seconds:.1f}s", file=sys.stderr)


def _alive(pid: int) -> bool:
    """True if the process exists and is not a zombie (a killed child not yet reaped still answers kill 0)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"(no {path})"


def _spawn(name: str, argv: list[str]) -> int:
    """Start a daemon in its own session (so stop() can kill its whole group) with output to logs/NAME.out."""
    LOGS.mkdir(parents=True, exist_ok=True)
    with open(LOGS / f"{name}.out", "ab") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=CACHE, start_new_session=True
        )
    return proc.pid


def _kill(pid: int, timeout: float = 15.0) -> None:
    """SIGTERM the process group led by pid, then SIGKILL it if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap it if we are its parent
            if not _alive(pid):
                return
            time.sleep(0.1)


def _wait_http_ready(name: str, pid: int, url: str, log: Path) -> None:
    """Poll url until it answers 200; fail early with the log tail if the process dies."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if not _alive(pid):
            raise ServiceError(f"{name} exited during start; {log}:\n{_log_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise ServiceError(f"{name} not ready after {READY_TIMEOUT:.0f}s at {url}; {log}:\n{_log_tail(log)}")


def _render(template: str, target: Path, **values: object) -> None:
    text = Template((CONFIG_TEMPLATES / template).read_text()).substitute(**{k: str(v) for k, v in values.items()})
    target.write_text(text)


def _run(argv: list[str], log_name: str, **kwargs: Any) -> None:
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / log_name
    with open(log, "ab") as out:
        rc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kwargs).returncode
    if rc != 0:
        raise ServiceError(f"{' '.join(argv)} exited {rc}; {log}:\n{_log_tail(log)}")


# ---------------------------------------------------------------- installation


def _install_fingerprint() -> str:
    return hashlib.sha256((" ".join(REQUIREMENTS) + CONSTRAINTS.read_text()).encode()).hexdigest()


def ensure_venv() -> Path:
    """Create tests/real/.cache/venv with Neutron and Octavia from PyPI, unless a matching one exists."""
    stamp = VENV / ".kuryr-migrate-installed"
    if stamp.exists() and stamp.read_text() == _install_fingerprint():
        return VENV
    started = time.monotonic()
    if VENV.exists():
        shutil.rmtree(VENV)
    _run([sys.executable, "-m", "venv", str(VENV)], "install.log")
    python = str(VENV / "bin" / "python")
    _run([python, "-m", "pip", "install", "-q", "-c", str(CONSTRAINTS), *REQUIREMENTS], "install.log")
    stamp.write_text(_install_fingerprint())
    _record_timing("install venv (pip)", time.monotonic() - started)
    return VENV


def _system_binary(name: str) -> str | None:
    """Find a Debian binary even when PATH lacks /usr/sbin (mariadbd lives there)."""
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin"]))


def ensure_mariadb_installed() -> None:
    """Install Debian's mariadb-server if mariadbd is missing; only its binaries are used, not its service."""
    if _system_binary("mariadbd") and _system_binary("mariadb-install-db"):
        return
    if os.geteuid() != 0:
        raise ServiceError("mariadb-server is not installed and this is not root: apt-get install -y mariadb-server")
    started = time.monotonic()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "update", "-q"], "install.log", env=env)
    _run(["apt-get", "install", "-y", "-q", "mariadb-server"], "install.log", env=env)
    _record_timing("install mariadb-server (apt-get)", time.monotonic() - started)


# ---------------------------------------------------------------- MariaDB


def _mariadb_ping(port: int) -> bool:
    return (
        subprocess.run(
            ["mariadb-admin", "--no-defaults", "-h127.0.0.1", f"-P{port}", "-uroot", "ping"],
            capture_output=True,
        ).returncode
        == 0
    )


def _start_mariadb(state: dict[str, Any]) -> int:
    """A private mariadbd: own datadir and socket, 127.0.0.1 on a free port; the system service is untouched."""
    current = state.get("mariadb")
    if current and _alive(current["pid"]) and _mariadb_ping(current["port"]):
        return int(current["port"])
    ensure_mariadb_installed()
    started = time.monotonic()
    home = CACHE / "mariadb"
    datadir = home / "data"
    home.mkdir(parents=True, exist_ok=True)
    as_root = ["--user=root"] if os.geteuid() == 0 else []
    if not (datadir / "mysql").exists():
        _run(
            [
                _system_binary("mariadb-install-db") or "mariadb-install-db", "--no-defaults", f"--datadir={datadir}",
                "--auth-root-authentication-method=normal", "--skip-test-db", *as_root,
            ],
            "mariadb-install.log",
        )
    port = _free_port()
    pid = _spawn(
        "mariadb",
        [
            _system_binary("mariadbd") or "mariadbd", "--no-defaults", f"--datadir={datadir}",
            f"--socket={home / 'mysqld.sock'}", f"--pid-file={home / 'mysqld.pid'}", "--bind-address=127.0.0.1",
            f"--port={port}", "--skip-name-resolve", f"--log-error={LOGS / 'mariadb.log'}", "--skip-log-bin",
            # A test database: durability is not worth the fsyncs.
            "--innodb-buffer-pool-size=64M", "--innodb-flush-log-at-trx-commit=0", "--sync-binlog=0", *as_root,
        ],
    )
    deadline = time.monotonic() + 60
    while not _mariadb_ping(port):
        if not _alive(pid) or time.monotonic() > deadline:
            raise ServiceError(f"mariadbd did not start; {LOGS / 'mariadb.log'}:\n{_log_tail(LOGS / 'mariadb.log')}")
        time.sleep(0.2)
    state["mariadb"] = {"pid": pid, "port": port}
    _write_state(state)
    _record_timing("start mariadb", time.monotonic() - started)
    return port


# ---------------------------------------------------------------- Neutron


def _neutron_ready(entry: dict[str, Any] | None) -> bool:
    if not entry or not _alive(entry["pid"]):
        return False
    try:
        with urllib.request.urlopen(entry["url"] + "/v2.0/networks?limit=1", timeout=5) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def start_neutron() -> str:
    """Start (or find running) the real Neutron API; return its endpoint URL (no /v2.0)."""
    with _locked():
        state = _read_state()
        if _neutron_ready(state.get("neutron")):
            return str(state["neutron"]["url"])
        ensure_venv()
        if state.get("neutron"):
            _kill(state["neutron"]["pid"])
        started = time.monotonic()
        home = CACHE / "neutron"
        if home.exists():
            shutil.rmtree(home)  # a fresh, empty Neutron for every start
        (home / "lock").mkdir(parents=True)
        port = _free_port()
        values = {
            "port": port,
            "state_dir": home,
            "log_dir": LOGS,
            "api_paste": VENV / "etc" / "neutron" / "api-paste.ini",
        }
        _render("neutron.conf.in", home / "neutron.conf", **values)
        _render("ml2_conf.ini.in", home / "ml2_conf.ini", **values)
        url = f"http://127.0.0.1:{port}"
        pid = _spawn(
            "neutron", [str(VENV / "bin" / "python"), str(REAL_DIR / "neutron_server.py"), str(home), "127.0.0.1",
                        str(port)]
        )
        state["neutron"] = {"pid": pid, "url": url}
        _write_state(state)
        _wait_http_ready("neutron", pid, url + "/v2.0/networks", LOGS / "neutron-api.log")
        _record_timing("start neutron", time.monotonic() - started)
        return url


# ---------------------------------------------------------------- Octavia


def start_octavia() -> str:
    """Start (or find running) the real Octavia API + worker and its MariaDB; return its endpoint URL."""
    with _locked():
        state = _read_state()
        current = state.get("octavia")
        if current and _alive(current["pid"]):
            with contextlib.suppress(ServiceError):
                _wait_http_ready("octavia", current["pid"], current["url"] + "/", LOGS / "octavia.log")
                return str(current["url"])
        ensure_venv()
        if current:
            _kill(current["pid"])
        db_port = _start_mariadb(state)
        started = time.monotonic()
        subprocess.run(
            ["mariadb", "--no-defaults", "-h127.0.0.1", f"-P{db_port}", "-uroot", "-e",
             "DROP DATABASE IF EXISTS octavia; CREATE DATABASE octavia"],
            check=True, capture_output=True,
        )
        home = CACHE / "octavia"
        (home / "lock").mkdir(parents=True, exist_ok=True)
        port = _free_port()
        config = home / "octavia.conf"
        _render(
            "octavia.conf.in", config, port=port, db_port=db_port, state_dir=home, cert_dir=home / "certs", log_dir=LOGS
        )
        _run([str(VENV / "bin" / "octavia-db-manage"), "--config-file", str(config), "upgrade", "head"],
             "octavia-db-manage.log")
        url = f"http://127.0.0.1:{port}"
        pid = _spawn(
            "octavia",
            [str(VENV / "bin" / "python"), str(REAL_DIR / "octavia_server.py"), str(config), str(home / "certs"),
             "127.0.0.1", str(port)],
        )
        state["octavia"] = {"pid": pid, "url": url}
        _write_state(state)
        _wait_http_ready("octavia", pid, url + "/", LOGS / "octavia.log")
        _record_timing("start octavia (db schema + api/worker)", time.monotonic() - started)
        return url


def force_load_balancer_status(lb_id: str, provisioning_status: str) -> None:
    """Write an LB's provisioning_status straight into Octavia's database.

    With noop drivers and a valid CA no API call ends in ERROR; tests that need an ERROR (or stuck
    PENDING_*) load balancer make one this way.
    """
    state = _read_state()
    if "mariadb" not in state:
        raise ServiceError("Octavia's MariaDB is not running")
    statement = (
        f"UPDATE load_balancer SET provisioning_status = {_sql_string(provisioning_status)}"
        f" WHERE id = {_sql_string(lb_id)}"
    )
    subprocess.run(
        ["mariadb", "--no-defaults", "-h127.0.0.1", f"-P{state['mariadb']['port']}", "-uroot", "octavia", "-e",
         statement],
        check=True, capture_output=True,
    )


def set_load_balancer_vip(lb_id: str, port_id: str, address: str, network_id: str | None = None) -> None:
    """Point an LB's VIP at a real Neutron port (what a real network driver would have allocated).

    The noop network driver invents VIP ports Neutron does not have; the seeding creates the port in
    Neutron and records it here so `vip_port_id` names a port that exists, as on a real cloud.
    """
    state = _read_state()
    if "mariadb" not in state:
        raise ServiceError("Octavia's MariaDB is not running")
    network = f", network_id = {_sql_string(network_id)}" if network_id else ""
    statement = (
        f"UPDATE vip SET port_id = {_sql_string(port_id)}, ip_address = {_sql_string(address)}{network}"
        f" WHERE load_balancer_id = {_sql_string(lb_id)}"
    )
    subprocess.run(
        ["mariadb", "--no-defaults", "-h127.0.0.1", f"-P{state['mariadb']['port']}", "-uroot", "octavia", "-e",
         statement],
        check=True, capture_output=True,
    )


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


# ---------------------------------------------------------------- users and stop


def register_user(pid: int) -> None:
    """Note that process pid uses the services (pytest-xdist workers each hold the session fixtures)."""
    with _locked():
        state = _read_state()
        state["users"] = sorted({*state.get("users", []), pid})
        _write_state(state)


def release_user(pid: int) -> bool:
    """Forget pid; stop everything and return True if no living user is left."""
    with _locked():
        state = _read_state()
        users = [u for u in state.get("users", []) if u != pid and _alive(u)]
        state["users"] = users
        _write_state(state)
        # Services started by hand (`services.py start`) outlive the test sessions that used them.
        if users or state.get("started_by_hand"):
            return False
        _stop_locked(state)
        return True


def _stop_locked(state: dict[str, Any]) -> None:
    for name in ("octavia", "neutron", "mariadb"):
        entry = state.pop(name, None)
        if entry:
            _kill(int(entry["pid"]))
    state["users"] = []
    state.pop("started_by_hand", None)
    _write_state(state)


def stop() -> None:
    """Stop every service this module started (by the pids recorded in services.json)."""
    with _locked():
        _stop_locked(_read_state())


def status() -> dict[str, Any]:
    state = _read_state()
    return {
        name: {**entry, "alive": _alive(int(entry["pid"]))}
        for name, entry in state.items()
        if isinstance(entry, dict) and "pid" in entry
    }


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "status"
    if command == "start":
        endpoints = {"neutron": start_neutron(), "octavia": start_octavia()}
        with _locked():
            state = _read_state()
            state["started_by_hand"] = True
            _write_state(state)
        print(json.dumps(endpoints, indent=2))
    elif command == "stop":
        stop()
    elif command == "status":
        print(json.dumps(status(), indent=2, sort_keys=True))
    elif command == "install":
        ensure_venv()
        ensure_mariadb_installed()
    else:
        print(f"usage: {argv[0]} start|stop|status|install", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
