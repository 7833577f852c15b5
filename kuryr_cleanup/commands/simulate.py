"""The simulator as a command: `run --simulate` (the whole job rehearsed against a simulator started in
this process) and `sim serve` (the simulator in the foreground, for the admin's own tools)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kuryr_cleanup.commands.base import UI, Result
from kuryr_cleanup.commands.run import run_command
from kuryr_cleanup.context import Context
from kuryr_cleanup.errors import UsageError
from kuryr_cleanup.migration.base import MigrationOptions
from kuryr_cleanup.sim.faults import parse_capacity, parse_faults
from kuryr_cleanup.sim.generate import ScenarioSpec, generate_scenario
from kuryr_cleanup.sim.server import SIM_CLOUD, SimServer
from kuryr_cleanup.sim.store import Store
from kuryr_cleanup.snapshot_format import check_snapshot

SIMULATED_POLL_INTERVAL = 0.05


def build_simulator(snapshot: str | None, generate: str | None) -> Store:
    store = Store()
    if snapshot and generate:
        raise UsageError("give either --snapshot or --generate, not both")
    if snapshot:
        try:
            data = json.loads(Path(snapshot).read_text())
            check_snapshot(data)
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot load snapshot {snapshot}: {exc}") from exc
        store.load_snapshot(data)
    else:
        try:
            spec = ScenarioSpec.parse(generate or "")
        except ValueError as exc:
            raise UsageError(f"bad --generate scenario: {exc}") from exc
        generate_scenario(store, spec)
    return store


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def simulate_command(store: Store, make_context: Callable[[dict[str, Any]], Context], kwargs: dict[str, Any],
                     ui: UI, options: MigrationOptions, *, plan_only: bool, yes: bool) -> Result:
    """Start the simulator in this process, point the tool at it, and run the whole job against it."""
    infra_id = store.infra_id or "sim"
    if not kwargs.get("run_dir"):
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        kwargs["run_dir"] = str(Path("kuryr-migrate-runs") / f"{infra_id}-simulated-{stamp}")
    run_dir = Path(kwargs["run_dir"])
    try:
        server = SimServer(store).start()
    except OSError as exc:
        raise UsageError(f"cannot start the simulator on 127.0.0.1: {exc}") from exc
    try:
        paths = server.write_client_config(run_dir)
        kwargs.update(os_cloud=SIM_CLOUD, kubeconfig=str(paths["kubeconfig"]), kube_context=None)
        if kwargs.get("poll_interval") in (None, 2.0):
            kwargs["poll_interval"] = SIMULATED_POLL_INTERVAL
        if kwargs.get("retry_scale") in (None, 1.0):
            kwargs["retry_scale"] = 0.01
        # Simulated reboots take a fraction of a second: estimate them so, and no etcd exists to back up.
        options.etcd_backup_confirmed = True
        if options.reboot_estimate == MigrationOptions.reboot_estimate:
            options.reboot_estimate = store.delays.get("server_reboot", 0.3) + store.delays.get("node_boot", 0.3)
        ui.say(f"# simulated cloud and cluster {infra_id}: OpenStack at {server.os_url}, Kubernetes at "
               f"{server.kube_url}; run directory {run_dir}")
        ui.say(f"# try your own tools on it meanwhile: OS_CLIENT_CONFIG_FILE={paths['clouds']} "
               f"OS_CLOUD={SIM_CLOUD} KUBECONFIG={paths['kubeconfig']}")
        with _environment({"OS_CLIENT_CONFIG_FILE": str(paths["clouds"].resolve()), "OS_CLOUD": SIM_CLOUD}):
            ctx = make_context(kwargs)
            try:
                # Show the whole plan first, as a newcomer would want to see it, then run it.
                return run_command(ctx, ui, options, plan_only=plan_only, yes=yes, show_plan=True)
            finally:
                ctx.close()
    finally:
        server.stop()


def serve(ui: UI, store: Store, *, port: int, kube_port: int, workdir: str, latency_ms: float,
          faults: str | None, stop: threading.Event, capacity: str | None = None) -> None:
    """Serve until `stop` is set (Ctrl-C or SIGTERM, wired by the CLI)."""
    try:
        rules = parse_faults(faults or "")
        capacities = parse_capacity(capacity or "")
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    try:
        server = SimServer(store, port=port, kube_port=kube_port)
    except OSError as exc:
        raise UsageError(f"cannot listen on 127.0.0.1: {exc}") from exc
    server.faults.latency = latency_ms / 1000.0
    server.faults.set_rules(rules)
    server.faults.set_capacity(capacities)
    server.write_client_config(workdir)
    server.start()
    lines = [f"# simulator for cluster {store.infra_id}: OpenStack at {server.os_url}, Kubernetes at {server.kube_url}"]
    lines += [f"export {name}={value}" for name, value in server.environment(workdir).items()]
    ui.show("\n".join(lines))
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        ui.warn("# simulator stopped")
