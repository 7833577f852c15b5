"""The `kuryr-migrate` command line: parse, build a context, call a command, render, exit.

No OpenStack or Kubernetes calls here: commands (`kuryr_cleanup.commands`) do the work and return a
result; this module renders it and exits with its code. `KuryrMigrateGroup` is the one place that
turns the tool's errors into one line and their exit code.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from kuryr_cleanup import __version__, render
from kuryr_cleanup.commands.base import Result
from kuryr_cleanup.commands.cleanup import cleanup_command
from kuryr_cleanup.commands.migrate import migrate_command
from kuryr_cleanup.commands.reboot import reboot_command
from kuryr_cleanup.commands.run import run_command
from kuryr_cleanup.commands.simulate import build_simulator, serve, simulate_command
from kuryr_cleanup.commands.snapshot import snapshot_command
from kuryr_cleanup.commands.status import status_command
from kuryr_cleanup.commands.verify import verify_command
from kuryr_cleanup.console import ConsoleUI
from kuryr_cleanup.context import Context, Options
from kuryr_cleanup.errors import KuryrMigrateError, UsageError
from kuryr_cleanup.migration.base import MigrationOptions
from kuryr_cleanup.retrying import RetryPolicy


class KuryrMigrateGroup(click.Group):
    """The one place that turns the tool's errors into one line and an exit code (also under CliRunner)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KuryrMigrateError as exc:
            click.echo(f"kuryr-migrate: error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=KuryrMigrateGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kuryr-migrate")
def cli() -> None:
    """Move an OpenShift cluster on OpenStack from Kuryr to OVN-Kubernetes, then remove what Kuryr
    left behind in OpenStack and in the cluster."""


def connection_options(fn: Any) -> Any:
    """The options every command that talks to the cloud and the cluster takes."""
    options = [
        click.option("--os-cloud", envvar="OS_CLOUD", help="Cloud name in clouds.yaml (default: OS_CLOUD / OS_*)."),
        click.option("--kubeconfig", envvar="KUBECONFIG", type=click.Path(dir_okay=False),
                     help="Kubeconfig file (default: KUBECONFIG, ~/.kube/config)."),
        click.option("--context", "kube_context", help="Kubeconfig context to use."),
        click.option("--infra-id", help="Expected infraID; the run refuses to start if the cluster's differs."),
        click.option("--run-dir", type=click.Path(file_okay=False),
                     help="Where the journal and state live (default: ./kuryr-migrate-runs/<infraID>)."),
        click.option("--concurrency", type=click.IntRange(1, 200), default=20, show_default=True,
                     help="Parallel API calls."),
        click.option("--poll-interval", type=click.FloatRange(0.0, 600.0), default=2.0, show_default=True,
                     help="Seconds between polls of asynchronous work (LB deletion, rollouts, reboots)."),
        click.option("--retry-scale", type=click.FloatRange(0.0, 10.0), default=1.0, hidden=True,
                     help="Multiplies retry backoff waits (rehearsals on the simulator)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def lock_option(fn: Any) -> Any:
    return click.option("--take-over-lock", is_flag=True,
                        help="Take the run lock (Lease kube-system/kuryr-migrate) from a run that is known to be "
                             "dead, without waiting for it to expire.")(fn)


def output_option(fn: Any) -> Any:
    return click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table",
                        show_default=True, help="Output format.")(fn)


def make_context(kwargs: dict[str, Any]) -> Context:
    options = Options(
        os_cloud=kwargs.pop("os_cloud", None),
        kubeconfig=kwargs.pop("kubeconfig", None),
        kube_context=kwargs.pop("kube_context", None),
        infra_id=kwargs.pop("infra_id", None),
        run_dir=kwargs.pop("run_dir", None),
        output=kwargs.pop("output", "table"),
        concurrency=kwargs.pop("concurrency", 20),
        poll_interval=kwargs.pop("poll_interval", 2.0),
        take_over_lock=kwargs.pop("take_over_lock", False),
        retry=RetryPolicy().scaled(kwargs.pop("retry_scale", 1.0)),
    )
    return Context(options)


# Flags -> MigrationOptions fields (popped off the command's kwargs).
_MIGRATION_FIELDS = tuple(MigrationOptions.__dataclass_fields__)


def migration_options(kwargs: dict[str, Any]) -> MigrationOptions:
    values = {name: kwargs.pop(name) for name in _MIGRATION_FIELDS if name in kwargs}
    if "ssh_options" in values:
        values["ssh_options"] = tuple(values["ssh_options"] or ())
    for name in list(values):
        if values[name] is None and MigrationOptions.__dataclass_fields__[name].default is not None:
            del values[name]
    return MigrationOptions(**values)


def emit(result: Result, json_output: bool) -> NoReturn:
    """Render a command's result (the JSON document, or the table text) and exit with its code."""
    if json_output:
        if result.document is not None:
            click.echo(render.to_json(result.document))
    elif result.text:
        click.echo(result.text)
    sys.exit(int(result.exit_code))


def run_in_context(kwargs: dict[str, Any], command: Callable[[Context, ConsoleUI], Result]) -> NoReturn:
    ctx = make_context(kwargs)
    ui = ConsoleUI(ctx.options.output == "json")
    try:
        result = command(ctx, ui)
    finally:
        ctx.close()
    emit(result, ui.json_output)


# -- cleanup ----------------------------------------------------------------------------------------
@cli.command()
@connection_options
@output_option
@click.option("--plan", "plan_only", is_flag=True, help="Show every change and deletion; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@lock_option
@click.option("--force", is_flag=True, help="Clean up even though the cluster is not on OVNKubernetes.")
def cleanup(plan_only: bool, yes: bool, force: bool, **kwargs: Any) -> None:
    """Remove what Kuryr left in OpenStack and in the cluster (SPEC B1-B18)."""
    run_in_context(kwargs, lambda ctx, ui: cleanup_command(ctx, ui, plan_only=plan_only, yes=yes, force=force))


# -- snapshot ---------------------------------------------------------------------------------------
@cli.command()
@connection_options
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False), required=True,
              help="Where to write the snapshot (JSON).")
def snapshot(out: str, **kwargs: Any) -> None:
    """Capture everything Kuryr-related in the cloud and the cluster, read-only, as a snapshot file."""
    run_in_context(kwargs, lambda ctx, ui: snapshot_command(ctx, ui, Path(out)))


# -- sim ------------------------------------------------------------------------------------------
@cli.group()
def sim() -> None:
    """A local simulated OpenStack cloud and OpenShift cluster, for rehearsals and tests."""


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
    store = build_simulator(snapshot, generate)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ui = ConsoleUI(json_output=False)
    serve(ui, store, port=port, kube_port=kube_port, workdir=workdir, latency_ms=latency, faults=faults, stop=stop)


# -- migration (A0-A9, R), verify, status, run -------------------------------------------------------
def settings_options(fn: Any) -> Any:
    """A3/A5 settings, validated in preflight before anything is changed."""
    options = [
        click.option("--mtu", type=click.IntRange(1, 65535), help="OVN-Kubernetes MTU (default: the smallest node "
                     "network MTU in Neutron minus 100)."),
        click.option("--geneve-port", type=click.IntRange(1, 65535), help="Geneve UDP port (default 6081; never "
                     "Kuryr's VXLAN 4789)."),
        click.option("--v4-internal-subnet", metavar="CIDR",
                     help="OVN's internal IPv4 subnet (default 100.64.0.0/16)."),
        click.option("--v6-internal-subnet", metavar="CIDR", help="OVN's internal IPv6 subnet (default fd98::/48)."),
        click.option("--cluster-network", metavar="CIDR", help="A new cluster network for the switch (with "
                     "--host-prefix)."),
        click.option("--host-prefix", type=click.IntRange(1, 128), help="Per-node prefix length of --cluster-network."),
        click.option("--etcd-backup-confirmed", is_flag=True, help="A recent etcd backup exists (else you are asked)."),
        click.option("--backup-file", type=click.Path(dir_okay=False), help="Where A1 writes Network.config "
                     "(default: <run dir>/cluster-kuryr.yaml; never overwritten)."),
        click.option("--mco-timeout", type=click.FloatRange(0), default=1800.0, show_default=True,
                     help="Seconds one node's machine config update may take (A4). The wait's ceiling is this times "
                          "the updates the largest pool makes in a row (its nodes / its maxUnavailable)."),
        click.option("--node-timeout", type=click.FloatRange(0), default=1800.0, show_default=True,
                     help="Seconds without any pool progressing, or with a node NotReady, before A4 stops, naming the "
                          "node being updated with its machine-config-daemon log."),
        click.option("--multus-timeout", type=click.FloatRange(0), default=1800.0, show_default=True,
                     help="Seconds to wait for the multus rollout (A6)."),
        click.option("--verify-timeout", type=click.FloatRange(0), default=900.0, show_default=True,
                     help="Seconds A8 waits for the cluster to become healthy before it stops the run."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def reboot_options(fn: Any) -> Any:
    """How R reboots the nodes."""
    options = [
        click.option("--method", type=click.Choice(["nova", "ssh"]), default="nova", show_default=True,
                     help="Reboot through Nova (servers matched by providerID) or `ssh core@<InternalIP>`."),
        click.option("--strategy", type=click.Choice(["rolling", "all"]), default="rolling", show_default=True,
                     help="rolling: control plane one at a time, workers in batches; all: every node at once."),
        click.option("--max-unavailable", type=click.IntRange(1), default=1, show_default=True,
                     help="Workers rebooted at a time (rolling)."),
        click.option("--hard", is_flag=True, help="Nova HARD reboot instead of SOFT."),
        click.option("--ssh-user", default="core", show_default=True, help="SSH user (--method ssh)."),
        click.option("--ssh-option", "ssh_options", multiple=True, metavar="OPTS",
                     help="Passed to ssh, e.g. '-i key' or '-o StrictHostKeyChecking=no' (repeatable)."),
        click.option("--reboot-timeout", type=click.FloatRange(0), default=1800.0, show_default=True,
                     help="Seconds a batch of nodes may take to come back Ready with a new boot ID."),
        click.option("--reboot-estimate", type=click.FloatRange(0), default=300.0, show_default=True,
                     help="Seconds one reboot takes, for the expected outage in the plan."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@cli.command()
@connection_options
@output_option
@settings_options
@reboot_options
@click.option("--plan", "plan_only", is_flag=True, help="Show every step and change; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@lock_option
def migrate(plan_only: bool, yes: bool, **kwargs: Any) -> None:
    """Migrate the cluster from Kuryr to OVN-Kubernetes (SPEC A0-A9), resumable."""
    options = migration_options(kwargs)
    run_in_context(kwargs, lambda ctx, ui: migrate_command(ctx, ui, options, plan_only=plan_only, yes=yes))


@cli.command()
@connection_options
@output_option
@reboot_options
@click.option("--plan", "plan_only", is_flag=True, help="Show the reboots and the expected outage; reboot nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@lock_option
@click.option("--force", is_flag=True, help="Reboot every node even though the migration is finished "
              "(spec.migration null).")
@click.option("--node", "nodes", multiple=True, metavar="NAME",
              help="Reboot this node again, even if it rebooted since the switch or the migration is finished "
                   "(repeatable): the cure for a node whose pods are in error (verify names them).")
def reboot(plan_only: bool, yes: bool, force: bool, nodes: tuple[str, ...], **kwargs: Any) -> None:
    """Reboot every node not yet rebooted since the switch (SPEC R), or the --node ones again; resumable."""
    options = migration_options(kwargs)
    run_in_context(kwargs, lambda ctx, ui: reboot_command(ctx, ui, options, plan_only=plan_only, yes=yes,
                                                          force=force, nodes=nodes))


@cli.command()
@connection_options
@output_option
def verify(**kwargs: Any) -> None:
    """Check the cluster on OVN-Kubernetes (SPEC A8); exit 1 on any failure."""
    run_in_context(kwargs, verify_command)


@cli.command()
@connection_options
@output_option
def status(**kwargs: Any) -> None:
    """Where the cluster is: phase, pools, nodes rebooted, Kuryr leftovers remaining."""
    run_in_context(kwargs, status_command)


@cli.command()
@connection_options
@output_option
@settings_options
@reboot_options
@click.option("--plan", "plan_only", is_flag=True, help="Show the migration, the reboots and the cleanup; change "
              "nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@lock_option
@click.option("--simulate", is_flag=True, help="Rehearse on a simulator started in this process (seeded from "
              "SNAPSHOT, or --generate).")
@click.option("--generate", metavar="SPEC", help="With --simulate: generate the cluster, e.g. namespaces=20.")
@click.argument("snapshot_file", required=False, type=click.Path(dir_okay=False, exists=True), metavar="[SNAPSHOT]")
def run(plan_only: bool, yes: bool, simulate: bool, generate: str | None, snapshot_file: str | None,
        **kwargs: Any) -> None:
    """The whole job: migrate (A0-A9), then clean up Kuryr's leftovers (B1-B18); resumable."""
    if (generate or snapshot_file) and not simulate:
        raise UsageError("SNAPSHOT and --generate go with --simulate")
    options = migration_options(kwargs)
    if simulate:
        store = build_simulator(snapshot_file, generate)
        ui = ConsoleUI(kwargs.get("output") == "json")
        emit(simulate_command(store, make_context, kwargs, ui, options, plan_only=plan_only, yes=yes), ui.json_output)
    run_in_context(kwargs, lambda ctx, ui: run_command(ctx, ui, options, plan_only=plan_only, yes=yes))


def _terminate(signum: int, frame: Any) -> None:
    # SIGTERM (a service manager, `kill`, a CI timeout) stops like Ctrl-C: the running call finishes,
    # state and journal stay valid, and the exit code (130) says to run the same command again.
    raise KeyboardInterrupt


def main() -> None:
    """Entry point: run the CLI and map our errors to one line and an exit code."""
    signal.signal(signal.SIGTERM, _terminate)
    cli(prog_name="kuryr-migrate")
