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
    cli(prog_name="kuryr-migrate")
