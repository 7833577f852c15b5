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
from kuryr_cleanup.errors import KuryrMigrateError, UsageError


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


def output_option(fn: Any) -> Any:
    return click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table",
                        show_default=True, help="Output format.")(fn)


def make_context(kwargs: dict[str, Any]) -> Any:
    from kuryr_cleanup.context import Context, Options
    from kuryr_cleanup.retrying import RetryPolicy

    options = Options(
        os_cloud=kwargs.pop("os_cloud", None),
        kubeconfig=kwargs.pop("kubeconfig", None),
        kube_context=kwargs.pop("kube_context", None),
        infra_id=kwargs.pop("infra_id", None),
        run_dir=kwargs.pop("run_dir", None),
        output=kwargs.pop("output", "table"),
        concurrency=kwargs.pop("concurrency", 20),
        poll_interval=kwargs.pop("poll_interval", 2.0),
        retry=RetryPolicy().scaled(kwargs.pop("retry_scale", 1.0)),
    )
    return Context(options)


def confirm_infra_id(ctx: Any, yes: bool, what: str) -> None:
    """Real runs without --yes ask the admin to type the infraID (S1)."""
    if yes:
        return
    try:
        typed = click.prompt(f"Type the infraID ({ctx.infra_id}) to {what}, or anything else to stop", default="",
                             show_default=False, err=True)
    except click.exceptions.Abort as exc:
        raise UsageError("no confirmation (no terminal to ask on?): nothing was changed; pass --yes to proceed "
                         "without asking") from exc
    if typed.strip() != ctx.infra_id:
        raise UsageError("the infraID was not confirmed: nothing was changed")


# -- cleanup ----------------------------------------------------------------------------------------
@cli.command()
@connection_options
@output_option
@click.option("--plan", "plan_only", is_flag=True, help="Show every change and deletion; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Clean up even though the cluster is not on OVNKubernetes.")
def cleanup(plan_only: bool, yes: bool, force: bool, **kwargs: Any) -> None:
    """Remove what Kuryr left in OpenStack and in the cluster (SPEC B1-B18)."""
    from kuryr_cleanup.commands import run_cleanup_command

    ctx = make_context(kwargs)
    try:
        code = run_cleanup_command(ctx, plan_only=plan_only, yes=yes, force=force, confirm=confirm_infra_id)
    finally:
        ctx.close()
    sys.exit(code)


# -- snapshot ---------------------------------------------------------------------------------------
@cli.command()
@connection_options
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False), required=True,
              help="Where to write the snapshot (JSON).")
def snapshot(out: str, **kwargs: Any) -> None:
    """Capture everything Kuryr-related in the cloud and the cluster, read-only, as a snapshot file."""
    from kuryr_cleanup.snapshot import capture, write_snapshot

    ctx = make_context(kwargs)
    data = capture(ctx)
    write_snapshot(data, Path(out))
    os_counts = {k: len(v) for k, v in data["openstack"].items() if isinstance(v, list)}
    click.echo(f"snapshot of {ctx.infra_id} written to {out}: "
               + ", ".join(f"{n} {name}" for name, n in os_counts.items() if n)
               + f", {len(data['kubernetes']['objects'])} cluster objects")


# -- sim ------------------------------------------------------------------------------------------
@cli.group()
def sim() -> None:
    """A local simulated OpenStack cloud and OpenShift cluster, for rehearsals and tests."""


def build_simulator(snapshot: str | None, generate: str | None) -> Any:
    from kuryr_cleanup.sim.generate import ScenarioSpec, generate_scenario
    from kuryr_cleanup.sim.store import Store
    from kuryr_cleanup.snapshot_format import check_snapshot

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
        click.option("--mco-timeout", type=click.FloatRange(0), default=7200.0, show_default=True,
                     help="Seconds to wait for the machine config rollout (A4)."),
        click.option("--node-timeout", type=click.FloatRange(0), default=1800.0, show_default=True,
                     help="Seconds a node may stay NotReady during the rollout before A4 stops (with its log)."),
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


def _exit_after(ctx: Any, run: Any) -> None:
    try:
        code = run()
    finally:
        ctx.close()
    sys.exit(code)


@cli.command()
@connection_options
@output_option
@settings_options
@reboot_options
@click.option("--plan", "plan_only", is_flag=True, help="Show every step and change; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def migrate(plan_only: bool, yes: bool, **kwargs: Any) -> None:
    """Migrate the cluster from Kuryr to OVN-Kubernetes (SPEC A0-A9), resumable."""
    from kuryr_cleanup.workflow import migrate_command, migration_options

    options = migration_options(kwargs)
    ctx = make_context(kwargs)
    _exit_after(ctx, lambda: migrate_command(ctx, options, plan_only=plan_only, yes=yes, confirm=confirm_infra_id))


@cli.command()
@connection_options
@output_option
@reboot_options
@click.option("--plan", "plan_only", is_flag=True, help="Show the reboots and the expected outage; reboot nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Reboot even though the migration is finished (spec.migration null).")
def reboot(plan_only: bool, yes: bool, force: bool, **kwargs: Any) -> None:
    """Reboot every node not yet rebooted since the switch (SPEC R), resumable."""
    from kuryr_cleanup.workflow import migration_options, reboot_command

    options = migration_options(kwargs)
    ctx = make_context(kwargs)
    _exit_after(ctx, lambda: reboot_command(ctx, options, plan_only=plan_only, yes=yes, confirm=confirm_infra_id,
                                            force=force))


@cli.command()
@connection_options
@output_option
def verify(**kwargs: Any) -> None:
    """Check the cluster on OVN-Kubernetes (SPEC A8); exit 1 on any failure."""
    from kuryr_cleanup.workflow import verify_command

    ctx = make_context(kwargs)
    _exit_after(ctx, lambda: verify_command(ctx))


@cli.command()
@connection_options
@output_option
def status(**kwargs: Any) -> None:
    """Where the cluster is: phase, pools, nodes rebooted, Kuryr leftovers remaining."""
    from kuryr_cleanup.workflow import status_command

    ctx = make_context(kwargs)
    _exit_after(ctx, lambda: status_command(ctx))


@cli.command()
@connection_options
@output_option
@settings_options
@reboot_options
@click.option("--plan", "plan_only", is_flag=True, help="Show the migration, the reboots and the cleanup; change "
              "nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--simulate", is_flag=True, help="Rehearse on a simulator started in this process (seeded from "
              "SNAPSHOT, or --generate).")
@click.option("--generate", metavar="SPEC", help="With --simulate: generate the cluster, e.g. namespaces=20.")
@click.argument("snapshot_file", required=False, type=click.Path(dir_okay=False, exists=True), metavar="[SNAPSHOT]")
def run(plan_only: bool, yes: bool, simulate: bool, generate: str | None, snapshot_file: str | None,
        **kwargs: Any) -> None:
    """The whole job: migrate (A0-A9), then clean up Kuryr's leftovers (B1-B18); resumable."""
    from kuryr_cleanup.workflow import migration_options, run_command, simulate_command

    if (generate or snapshot_file) and not simulate:
        raise UsageError("SNAPSHOT and --generate go with --simulate")
    options = migration_options(kwargs)
    if simulate:
        store = build_simulator(snapshot_file, generate)
        code = simulate_command(store, make_context, kwargs, options, plan_only=plan_only, yes=yes,
                                confirm=confirm_infra_id)
        sys.exit(code)
    ctx = make_context(kwargs)
    _exit_after(ctx, lambda: run_command(ctx, options, plan_only=plan_only, yes=yes, confirm=confirm_infra_id))


def _terminate(signum: int, frame: Any) -> None:
    # SIGTERM (a service manager, `kill`, a CI timeout) stops like Ctrl-C: the running call finishes,
    # state and journal stay valid, and the exit code (130) says to run the same command again.
    raise KeyboardInterrupt


def main() -> None:
    """Entry point: run the CLI and map our errors to one line and an exit code."""
    signal.signal(signal.SIGTERM, _terminate)
    cli(prog_name="kuryr-migrate")
