"""The `kuryr-migrate` command line: parse, build a context, call a command, render, exit.

No OpenStack or Kubernetes calls here: commands (`kuryr_cleanup.commands`) do the work and return a
result; this module renders it and exits with its code. `KuryrMigrateGroup` is the one place that
turns the tool's errors into one line and their exit code.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
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
from kuryr_cleanup.console import ConsoleUI, close_logging, configure_logging, fit
from kuryr_cleanup.context import Context, Options
from kuryr_cleanup.errors import KuryrMigrateError, UsageError
from kuryr_cleanup.migration.base import MigrationOptions
from kuryr_cleanup.plan import Plan, PlanItem, StepInfo
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


def connection_options(fn: Any = None, *, polls: str = "", parallel: bool = False, run_dir: bool = True) -> Any:
    """The options every command that talks to the cloud and the cluster takes. Those that would do
    nothing for a command are hidden there (not in --help, nor completion) but still accepted, so a
    wrapper that passes the same options to every command keeps working: `--poll-interval` for the
    commands that wait (`polls`: what the command polls, said in its help), `--concurrency` for those
    that act in parallel (`parallel`), and `--run-dir` for those that read no run state."""

    def decorate(fn: Any) -> Any:
        options = [
            click.option("--os-cloud", envvar="OS_CLOUD", help="Cloud name in clouds.yaml (default: OS_CLOUD / OS_*)."),
            click.option("--kubeconfig", envvar="KUBECONFIG", type=click.Path(dir_okay=False),
                         help="Kubeconfig file (default: KUBECONFIG, ~/.kube/config)."),
            click.option("--context", "kube_context", help="Kubeconfig context to use."),
            click.option("--infra-id", help="Expected infraID; the run refuses to start if the cluster's differs."),
            click.option("--run-dir", type=click.Path(file_okay=False), hidden=not run_dir,
                         help="Where the journal and state live (default: a directory per cluster under "
                              "~/.local/state/kuryr-migrate)."),
            click.option("--concurrency", type=click.IntRange(1, 200), default=20, show_default=True,
                         hidden=not parallel,
                         help="Most API calls in flight; each service gets what it can take, up to this."),
            click.option("--fixed-concurrency", is_flag=True, hidden=not parallel,
                         help="Keep --concurrency calls in flight per service, whatever their answers (429/503, "
                              "rising latency) say."),
            click.option("--poll-interval", type=click.FloatRange(0.0, 600.0), default=2.0, show_default=True,
                         hidden=not polls, help=f"Seconds between polls of {polls or 'what takes time'}."),
            click.option("--retry-scale", type=click.FloatRange(0.0, 10.0), default=1.0, hidden=True,
                         help="Multiplies retry backoff waits (rehearsals on the simulator)."),
        ]
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate(fn) if fn is not None else decorate


def lock_option(fn: Any) -> Any:
    return click.option("--take-over-lock", is_flag=True,
                        help="Take the run lock (Lease kube-system/kuryr-migrate) from a run that is known to be "
                             "dead, without waiting for it to expire.")(fn)


def lb_timeout_option(fn: Any) -> Any:
    return click.option("--lb-timeout", type=click.FloatRange(1.0, 86400.0), default=1800.0, show_default=True,
                        help="Seconds a load balancer may take to leave PENDING_* or to be deleted; the namespace "
                             "networks wait for the load balancers.")(fn)


# What `--poll-interval` paces, for each command that waits (its help says it).
CLEANUP_POLLS = "the load balancers being deleted (or settling out of PENDING_*)"
REBOOT_POLLS = "the nodes being rebooted, until each is Ready with a new boot ID"
MIGRATION_POLLS = "the machine config pools, the multus rollout, the nodes being rebooted, the verification"

TABLE_FORMATS = ("table", "json", "yaml")


def log_options(fn: Any) -> Any:
    """-v and --log-file: more detail on stderr, and every record as a JSON line in a file."""
    fn = click.option("--log-file", type=click.Path(dir_okay=False), help="Also write a structured log (JSON lines, "
                      "credentials scrubbed) to this file.")(fn)
    return click.option("-v", "--debug", "verbose", count=True, help="More detail on stderr: what the tool does and "
                        "one line per API request (-vv: the client libraries' debug output too).")(fn)


def output_option(fn: Any = None, *, formats: tuple[str, ...] = TABLE_FORMATS, plan: bool = False) -> Any:
    """-o (and, for commands that show a plan, --details), with -v and --log-file."""

    def decorate(fn: Any) -> Any:
        if plan:
            fn = click.option("--details", is_flag=True, help="Show every resource of the plan with its id and "
                              "evidence after the summary (-o json and yaml always have them).")(fn)
        fn = log_options(fn)
        return click.option("-o", "--output", type=click.Choice(list(formats)), default="table", show_default=True,
                            help="Output format." + (" html and script: review artefacts of --plan (a "
                                                     "self-contained page; the equivalent oc/openstack commands)."
                                                     if "html" in formats else
                                                     " script: the equivalent oc/openstack commands of --plan."
                                                     if "script" in formats else ""))(fn)

    return decorate(fn) if fn is not None else decorate


def make_context(kwargs: dict[str, Any]) -> Context:
    options = Options(
        os_cloud=kwargs.pop("os_cloud", None),
        kubeconfig=kwargs.pop("kubeconfig", None),
        kube_context=kwargs.pop("kube_context", None),
        infra_id=kwargs.pop("infra_id", None),
        run_dir=kwargs.pop("run_dir", None),
        output=kwargs.pop("output", "table"),
        concurrency=kwargs.pop("concurrency", 20),
        adaptive=not kwargs.pop("fixed_concurrency", False),
        poll_interval=kwargs.pop("poll_interval", 2.0),
        lb_timeout=kwargs.pop("lb_timeout", 1800.0),
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


def emit(result: Result, output: str | bool = "table") -> NoReturn:
    """Render a command's result (its document as JSON or YAML; else its text: the table, the HTML
    page, the script) and exit with its code. The table ends with the next command to run."""
    output = ("json" if output else "table") if isinstance(output, bool) else output
    if output in ("json", "yaml"):
        if result.document is not None:
            click.echo(render.to_json(result.document) if output == "json" else render.to_yaml(result.document),
                       nl=output == "json")
    elif result.text:
        text = result.text
        if output == "table":
            following = render.next_step(result.document)
            if following:
                text += f"\nnext: {following}"
            if str((result.document or {}).get("kind", "")).endswith("Plan"):
                # A plan is read whole, by people: no line of it is wider than 119 characters.
                text = "\n".join(fit(line) for line in text.splitlines())
        click.echo(text)
    sys.exit(int(result.exit_code))


def with_details(result: Result) -> Result:
    """--details for a plan whose command shows only its summary (the migration's and the reboots'
    plans): every resource, from the plan's document, after the text."""
    doc = result.document or {}
    if "Details:" in result.text or not doc.get("items") or not doc.get("steps"):
        return result
    plan = Plan(str(doc.get("infraID") or ""), [StepInfo(s["id"], s["title"]) for s in doc["steps"]],
                [PlanItem(**item) for item in doc["items"]], list(doc.get("notes") or []))
    result.text += "\n\nDetails:\n" + "\n".join(render.detail_lines(plan))
    return result


class Session:
    """What every command's run shares: the UI for the output asked for, and the logs."""

    def __init__(self, kwargs: dict[str, Any]) -> None:
        self.output = str(kwargs.get("output") or "table")
        self.details = bool(kwargs.pop("details", False))
        verbose = int(kwargs.pop("verbose", 0) or 0)
        log_file = kwargs.pop("log_file", None)
        self.ui = ConsoleUI(self.output != "table", details=self.details)
        self._handlers = configure_logging(verbose, log_file)
        click_ctx = click.get_current_context(silent=True)
        command = click_ctx.command_path if click_ctx is not None else "kuryr-migrate"
        options = {k: v for k, v in kwargs.items() if v not in (None, False, (), "")}
        logging.getLogger("kuryr_cleanup").info(
            "%s", command, extra={"fields": {"event": "start", "version": __version__, "options": options}})

    def emit(self, result: Result) -> NoReturn:
        logging.getLogger("kuryr_cleanup").info("exit %s", int(result.exit_code),
                                                extra={"fields": {"event": "end", "exitCode": int(result.exit_code)}})
        close_logging(self._handlers)
        self._handlers = []
        emit(with_details(result) if self.details and self.output == "table" else result, self.output)

    def close(self) -> None:
        close_logging(self._handlers)
        self._handlers = []


def run_in_context(kwargs: dict[str, Any], command: Callable[[Context, ConsoleUI], Result]) -> NoReturn:
    session = Session(kwargs)
    try:
        ctx = make_context(kwargs)
        try:
            result = command(ctx, session.ui)
        finally:
            ctx.close()
    except BaseException as exc:
        if not isinstance(exc, SystemExit):
            logging.getLogger("kuryr_cleanup").error("%s", exc, extra={"fields": {"event": "error",
                                                                               "error": type(exc).__name__}})
        session.close()
        raise
    session.emit(result)


def artefacts_need_plan(kwargs: dict[str, Any], plan_only: bool) -> None:
    if kwargs.get("output") in ("html", "script") and not plan_only:
        raise UsageError(f"-o {kwargs['output']} is a review artefact of the plan: add --plan")


def _given(name: str) -> bool:
    """Whether the admin gave the option (on the command line or in the environment), not its default."""
    source = click.get_current_context().get_parameter_source(name)
    return source not in (None, click.core.ParameterSource.DEFAULT)


def _network(flag: str, text: str | None, version: int | None = None) -> None:
    if text is None:
        return
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise UsageError(f"{flag} {text!r} is not a network CIDR: {exc}") from exc
    if version and net.version != version:
        raise UsageError(f"{flag} {text} is not an IPv{version} network")


def refuse_contradictions(fn: Any) -> Any:
    """Refuse, before any read, combinations of options that contradict each other, and admin-given
    values that are wrong whatever the cluster (each one line, exit 2). What depends on the cluster
    (an overlap with its networks, an MTU above its node networks') is checked by A0 and refused the
    same way (BadSetting), before any plan is shown."""

    @functools.wraps(fn)
    def wrapper(**kwargs: Any) -> Any:
        method = kwargs.get("method")
        if method == "ssh" and kwargs.get("hard"):
            raise UsageError("--hard is a Nova reboot type: it does nothing with --method ssh")
        if method == "nova" and (_given("ssh_user") or kwargs.get("ssh_options")):
            raise UsageError("--ssh-user and --ssh-option go with --method ssh (the reboot is through Nova)")
        if kwargs.get("strategy") == "all" and _given("max_unavailable"):
            raise UsageError("--max-unavailable is for --strategy rolling: --strategy all reboots every node at once")
        _network("--cluster-network", kwargs.get("cluster_network"))
        _network("--v4-internal-subnet", kwargs.get("v4_internal_subnet"), 4)
        _network("--v6-internal-subnet", kwargs.get("v6_internal_subnet"), 6)
        mtu = kwargs.get("mtu")
        if mtu is not None and not MIN_MTU <= mtu <= MAX_MTU:
            raise UsageError(f"--mtu {mtu} is not a usable MTU: OVN-Kubernetes needs {MIN_MTU} to {MAX_MTU}")
        return fn(**kwargs)

    return wrapper


# The widest and narrowest MTUs an overlay can have at all (IPv4's minimum; jumbo frames less Geneve's 100 bytes).
MIN_MTU = 576
MAX_MTU = 9100


# -- cleanup ----------------------------------------------------------------------------------------
@cli.command(short_help="Remove Kuryr's leftovers in OpenStack and the cluster (after the migration).")
@connection_options(polls=CLEANUP_POLLS, parallel=True)
@output_option(formats=(*TABLE_FORMATS, "html", "script"), plan=True)
@click.option("--plan", "plan_only", is_flag=True, help="Show every change and deletion; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@lock_option
@lb_timeout_option
@click.option("--force", is_flag=True, help="Clean up even though the cluster is not on OVN-Kubernetes (pods "
              "still on Kuryr lose their network).")
def cleanup(plan_only: bool, yes: bool, force: bool, **kwargs: Any) -> None:
    """Remove what Kuryr left behind in OpenStack and in the cluster.

    Automates the vendor's "cleaning up resources after migration": the Kuryr finalizers on Services,
    pods, network policies and Kuryr's own resources, the Octavia load balancers, the openshift-kuryr
    namespace, the Kuryr subports on the nodes' trunks, the namespaces' ports, router interfaces and
    networks, the Kuryr security groups, the subnet pools and the Kuryr router. Only what carries this
    cluster's tag or is named by its Kuryr resources is touched; other clusters' never are. Runs once
    the cluster is on OVN-Kubernetes; running it again finishes an interrupted cleanup.
    """
    artefacts_need_plan(kwargs, plan_only)
    run_in_context(kwargs, lambda ctx, ui: cleanup_command(ctx, ui, plan_only=plan_only, yes=yes, force=force))


# -- snapshot ---------------------------------------------------------------------------------------
@cli.command(short_help="Capture this cluster's Kuryr-related resources, read-only, to a file.")
@connection_options(run_dir=False)
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False), required=True,
              help="Where to write the snapshot (JSON, readable by you only).")
@click.option("--all", "whole_project", is_flag=True,
              help="Capture every resource of the OpenStack project, other clusters' too (default: only this "
                   "cluster's and what hangs off them).")
@log_options
def snapshot(out: str, whole_project: bool, **kwargs: Any) -> None:
    """Capture this cluster's Kuryr-related resources in the cloud and its objects, read-only, as a snapshot
    file (MachineConfigs reduced to what the migration reads: no node files, no pull secret)."""
    run_in_context(kwargs, lambda ctx, ui: snapshot_command(ctx, ui, Path(out), whole_project=whole_project))


# -- sim ------------------------------------------------------------------------------------------
@cli.group(short_help="A local simulated cloud and cluster, for rehearsals and tests.")
def sim() -> None:
    """A local simulated OpenStack cloud and OpenShift cluster, for rehearsals and tests."""


@sim.command("serve", short_help="Serve the simulator on 127.0.0.1 until Ctrl-C or SIGTERM.")
@click.option("--snapshot", "snapshot", type=click.Path(dir_okay=False), help="Seed from a snapshot file.")
@click.option("--generate", "generate", metavar="SCENARIO",
              help="Generate a scenario: what to put in the cloud and cluster, e.g. namespaces=50,pods=4.")
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
@click.option("--faults", "faults", metavar="RULES", help="Fault rules (JSON or short form, see docs).")
@click.option("--capacity", "capacity", metavar="LIMITS",
              help="Services that slow down and refuse under load, e.g. network=8:16 (see docs/scale.md).")
def sim_serve(
    snapshot: str | None,
    generate: str | None,
    port: int,
    kube_port: int,
    workdir: str,
    latency: float,
    faults: str | None,
    capacity: str | None,
) -> None:
    """Serve the simulator in the foreground on 127.0.0.1 until Ctrl-C or SIGTERM."""
    store = build_simulator(snapshot, generate)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ui = ConsoleUI(json_output=False)
    serve(ui, store, port=port, kube_port=kube_port, workdir=workdir, latency_ms=latency, faults=faults,
          capacity=capacity, stop=stop)


# -- migration (A0-A9, R), verify, status, run -------------------------------------------------------
def settings_options(fn: Any) -> Any:
    """The optional OVN-Kubernetes settings and the switch's cluster network (A3, A5): checked against
    the cluster before any plan is shown (a bad value: exit 2)."""
    options = [
        click.option("--mtu", type=click.IntRange(1, 65535), help="MTU of the Geneve overlay; at most the smallest "
                     "node network MTU minus 100 (default: the Cluster Network Operator picks it)."),
        click.option("--geneve-port", type=click.IntRange(1, 65535), help="UDP port of the Geneve overlay (default "
                     "6081; never Kuryr's VXLAN 4789)."),
        click.option("--v4-internal-subnet", metavar="CIDR",
                     help="IPv4 range OVN-Kubernetes uses internally (default 100.64.0.0/16); must not overlap "
                          "the cluster's networks."),
        click.option("--v6-internal-subnet", metavar="CIDR", help="IPv6 range OVN-Kubernetes uses internally (default "
                     "fd98::/48)."),
        click.option("--cluster-network", metavar="CIDR", help="A new cluster network (pod network) to switch "
                     "to, with --host-prefix (default: the current one; the service network can't change)."),
        click.option("--host-prefix", type=click.IntRange(1, 128), help="Per-node prefix length of --cluster-network."),
        click.option("--etcd-backup-confirmed", is_flag=True, help="A recent etcd backup exists (else you are asked)."),
        click.option("--backup-file", type=click.Path(dir_okay=False), help="Where the backup of Network.config "
                     "goes (default: <run dir>/cluster-kuryr.yaml; never overwritten)."),
        click.option("--mco-timeout", type=click.FloatRange(0), default=1800.0, show_default=True,
                     help="Seconds one node's machine config update may take. The wait for the machine config pools "
                          "lasts at most this times the updates the largest pool makes in a row (its nodes / its "
                          "maxUnavailable)."),
        click.option("--node-timeout", type=click.FloatRange(0), default=1800.0, show_default=True,
                     help="Seconds without any pool progressing, or with a node NotReady, before the wait for the "
                          "machine config pools stops, naming the node being updated with its machine-config-daemon "
                          "log."),
        click.option("--multus-timeout", type=click.FloatRange(0), default=1800.0, show_default=True,
                     help="Seconds to wait for the multus rollout after the switch."),
        click.option("--verify-timeout", type=click.FloatRange(0), default=900.0, show_default=True,
                     help="Seconds the verification waits for the cluster to become healthy before it stops the run "
                          "(the cleanup never starts then)."),
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


@cli.command(short_help="Migrate the network plugin from Kuryr to OVN-Kubernetes, reboots included.")
@connection_options(polls=MIGRATION_POLLS)
@output_option(formats=(*TABLE_FORMATS, "script"), plan=True)
@settings_options
@reboot_options
@refuse_contradictions
@click.option("--plan", "plan_only", is_flag=True, help="Show every step and change; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@lock_option
def migrate(plan_only: bool, yes: bool, **kwargs: Any) -> None:
    """Migrate the cluster's network plugin from Kuryr to OVN-Kubernetes, resumable.

    Automates the vendor's "migrating to the OVN-Kubernetes network plugin": checks the cluster first
    (operators and machine config pools healthy, UDP 6081 open between the nodes), backs up
    Network.config (cluster-kuryr.yaml), sets spec.migration on Network.operator, applies the MTU,
    Geneve port and internal subnets you give, waits until every machine config pool is updated,
    switches spec.networkType, waits for the multus rollout, reboots every node, verifies the cluster
    and clears spec.migration. Then run `kuryr-migrate cleanup`.
    """
    artefacts_need_plan(kwargs, plan_only)
    options = migration_options(kwargs)
    run_in_context(kwargs, lambda ctx, ui: migrate_command(ctx, ui, options, plan_only=plan_only, yes=yes))


@cli.command(short_help="Reboot the nodes not yet rebooted since the switch (or --node ones again).")
@connection_options(polls=REBOOT_POLLS)
@output_option(plan=True)
@reboot_options
@refuse_contradictions
@click.option("--plan", "plan_only", is_flag=True, help="Show the reboots and the expected outage; reboot nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@lock_option
@click.option("--force", is_flag=True, help="Reboot every node even though the migration is finished "
              "(spec.migration null).")
@click.option("--node", "nodes", multiple=True, metavar="NAME",
              help="Reboot this node again, even if it rebooted since the switch or the migration is finished "
                   "(repeatable): the cure for a node whose pods are in error (verify names them).")
def reboot(plan_only: bool, yes: bool, force: bool, nodes: tuple[str, ...], **kwargs: Any) -> None:
    """Reboot every node not yet rebooted since the switch to OVN-Kubernetes, resumable.

    The vendor's "reboot each node in your cluster" step, through Nova (`openstack server reboot`) or
    SSH (`ssh core@<node> sudo shutdown -r`): rolling by default, the control plane one node at a time
    so etcd keeps quorum. With --node, those nodes again: the vendor's cure for a node whose pods are
    in an error state.
    """
    options = migration_options(kwargs)
    run_in_context(kwargs, lambda ctx, ui: reboot_command(ctx, ui, options, plan_only=plan_only, yes=yes,
                                                          force=force, nodes=nodes))


@cli.command(short_help="Check the cluster after the switch, as the vendor's verification does.")
@connection_options
@output_option
def verify(**kwargs: Any) -> None:
    """Check the cluster after the switch, as the vendor's verification does; exit 1 on any failure.

    The network type is OVNKubernetes, every node is Ready, no pod is in an error state and every
    cluster operator is Available, not Progressing and not Degraded (oc get network.config/cluster,
    oc get nodes, oc get pods, oc get co).
    """
    run_in_context(kwargs, verify_command)


@cli.command(short_help="Show where the cluster is: migration phase, pools, reboots, leftovers.")
@connection_options
@output_option
def status(**kwargs: Any) -> None:
    """Show where the cluster is: migration phase, machine config pools, nodes rebooted, Kuryr leftovers."""
    run_in_context(kwargs, status_command)


@cli.command(short_help="The whole job: migrate, reboot every node, then clean up; resumable.")
@connection_options(polls=f"{MIGRATION_POLLS}, and {CLEANUP_POLLS}", parallel=True)
@output_option(formats=(*TABLE_FORMATS, "html", "script"), plan=True)
@settings_options
@reboot_options
@refuse_contradictions
@click.option("--plan", "plan_only", is_flag=True, help="Show the migration, the reboots and the cleanup; change "
              "nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@lock_option
@lb_timeout_option
@click.option("--simulate", is_flag=True, help="Rehearse on a simulator started in this process (seeded from "
              "SNAPSHOT, or --generate).")
@click.option("--generate", metavar="SCENARIO", help="With --simulate: generate the cluster, e.g. namespaces=20.")
@click.argument("snapshot_file", required=False, type=click.Path(dir_okay=False, exists=True), metavar="[SNAPSHOT]")
def run(plan_only: bool, yes: bool, simulate: bool, generate: str | None, snapshot_file: str | None,
        **kwargs: Any) -> None:
    """The whole job: migrate to OVN-Kubernetes, reboot the nodes, remove Kuryr's leftovers; resumable.

    The vendor's two procedures end to end: "migrating to the OVN-Kubernetes network plugin" (see
    `migrate`), then, once the cluster is verified, "cleaning up resources after migration" (see
    `cleanup`). Running it again after an interruption picks up where it stopped; --plan shows every
    change and deletion and changes nothing.
    """
    if (generate or snapshot_file) and not simulate:
        raise UsageError("SNAPSHOT and --generate go with --simulate")
    artefacts_need_plan(kwargs, plan_only)
    options = migration_options(kwargs)
    if simulate:
        store = build_simulator(snapshot_file, generate)
        session = Session(kwargs)
        try:
            result = simulate_command(store, make_context, kwargs, session.ui, options, plan_only=plan_only, yes=yes)
        except BaseException:
            session.close()
            raise
        session.emit(result)
    run_in_context(kwargs, lambda ctx, ui: run_command(ctx, ui, options, plan_only=plan_only, yes=yes))


def _terminate(signum: int, frame: Any) -> None:
    # SIGTERM (a service manager, `kill`, a CI timeout) stops like Ctrl-C: the running call finishes,
    # state and journal stay valid, and the exit code (130) says to run the same command again.
    raise KeyboardInterrupt


def main() -> None:
    """Entry point: run the CLI and map our errors to one line and an exit code."""
    signal.signal(signal.SIGTERM, _terminate)
    cli(prog_name="kuryr-migrate")
