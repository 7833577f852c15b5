"""The `kuryr-migrate` command line: parse, build a context, call the engine, render.

No SDK calls here: commands hand their work to the library and get a result back; `main` is the one
place that maps errors to messages and exit codes.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from kuryr_cleanup import __version__
from kuryr_cleanup.errors import UsageError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kuryr-migrate")
def cli() -> None:
    """Move an OpenShift cluster on OpenStack from Kuryr to OVN-Kubernetes, then remove what Kuryr
    left behind in OpenStack and in the cluster."""


# -- sim ------------------------------------------------------------------------------------------
@cli.group()
def sim() -> None:
    """A local simulated OpenStack cloud and OpenShift cluster, for rehearsals and tests."""


def build_simulator(snapshot: str | None, generate: str | None) -> Any:
    from kuryr_cleanup.sim.generate import ScenarioSpec, generate_scenario
    from kuryr_cleanup.sim.store import Store, check_snapshot

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
            raise UsageError(f"bad --generate spec: {exc}") from exc
        generate_scenario(store, spec)
    return store


@sim.command("serve")
@click.option("--snapshot", "snapshot", type=click.Path(dir_okay=False), help="Seed from a snapshot file.")
@click.option("--generate", "generate", metavar="SPEC", help="Generate a scenario, e.g. namespaces=50,pods=4.")
@click.option("--port", type=int, default=0, show_default=True, help="OpenStack APIs port (0: any free).")
@click.option("--kube-port", type=int, default=0, show_default=True, help="Kubernetes API port (0: any free).")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False),
    default="sim-workdir",
    show_default=True,
    help="Where clouds.yaml and kubeconfig are written.",
)
@click.option("--latency", type=float, default=0.0, help="Milliseconds added to every API call.")
@click.option("--faults", "faults", metavar="SPEC", help="Fault rules (JSON or short form, see docs).")
def sim_serve(
    snapshot: str | None,
    generate: str | None,
    port: int,
    kube_port: int,
    workdir: str,
    latency: float,
    faults: str | None,
) -> None:
    """Serve the simulator in the foreground on 127.0.0.1 until Ctrl-C or SIGTERM."""
    from kuryr_cleanup.sim.faults import parse_faults
    from kuryr_cleanup.sim.server import SimServer

    store = build_simulator(snapshot, generate)
    try:
        rules = parse_faults(faults or "")
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    try:
        server = SimServer(store, port=port, kube_port=kube_port)
    except OSError as exc:
        raise UsageError(f"cannot listen on 127.0.0.1: {exc}") from exc
    server.faults.latency = latency / 1000.0
    server.faults.set_rules(rules)
    server.write_client_config(workdir)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.start()
    click.echo(f"# simulator for cluster {store.infra_id}: OpenStack at {server.os_url}, Kubernetes at "
               f"{server.kube_url}")
    for name, value in server.environment(workdir).items():
        click.echo(f"export {name}={value}")
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        click.echo("# simulator stopped", err=True)


def main() -> None:
    """Entry point: run the CLI and map our errors to one line and an exit code."""
    try:
        cli.main(standalone_mode=False)
    except UsageError as exc:
        click.echo(f"kuryr-migrate: error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("kuryr-migrate: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
