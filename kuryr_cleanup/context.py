"""Connections (openstacksdk, kubernetes), the infraID, the cluster tag, the run directory, options.

Connecting works like the ecosystem's own tools: `--os-cloud` / OS_CLOUD / clouds.yaml / OS_* through
openstacksdk, `--kubeconfig` / KUBECONFIG / `--context` through the kubernetes client. Every way this
can go wrong becomes a one-line UsageError before anything is changed.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openstack
import yaml
from keystoneauth1 import exceptions as ksa_exc
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from openstack import exceptions as os_exc
from requests.adapters import HTTPAdapter

from kuryr_cleanup import openstack_api
from kuryr_cleanup.adaptive import Limits, Settings
from kuryr_cleanup.errors import UsageError
from kuryr_cleanup.journal import JOURNAL_FILE, STATE_FILE, Journal, RunState, StateError
from kuryr_cleanup.kube import CLUSTER_VERSION, INFRASTRUCTURE, KURYR_LOAD_BALANCER, KURYR_NETWORK, Cluster
from kuryr_cleanup.kuryr import KURYRLOADBALANCER_PROJECT, KURYRNETWORK_PROJECT, cluster_tag
from kuryr_cleanup.retrying import RetryPolicy, call, describe, http_status


@dataclass
class Options:
    os_cloud: str | None = None
    kubeconfig: str | None = None
    kube_context: str | None = None
    infra_id: str | None = None
    run_dir: str | None = None
    concurrency: int = 20
    adaptive: bool = True  # per-service limits follow the services' answers (adaptive.py), up to concurrency
    output: str = "table"
    poll_interval: float = 2.0
    take_over_lock: bool = False
    lb_timeout: float = 1800.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)


def _first_current_context(paths: list[str]) -> str | None:
    """The current-context of the first file that sets one, as kubectl takes it.

    The client's KubeConfigMerger lets a later file's current-context replace an earlier one's
    (kubernetes 37), where kubectl keeps the first: with `KUBECONFIG=admin:extra` an `extra` that
    sets its own current-context would silently point the tool at another cluster than `oc` uses.
    """
    for path in paths:
        try:
            with open(path, encoding="utf-8") as fh:
                data = yaml.safe_load(fh)
        except (OSError, yaml.YAMLError):
            return None  # the client reports the unreadable file itself
        current = data.get("current-context") if isinstance(data, dict) else None
        if current:
            return str(current)
    return None



_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_INFRA_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")

class Context:
    """Everything a command needs to talk to the cloud and the cluster, created lazily."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self._journal: Journal | None = None
        self._state: RunState | None = None
        self._infra_id: str | None = None
        self._infra_uid = ""
        self._cluster_id: str | None = None
        self.run_lock: Any = None  # the lock.RunLock this command holds, if any

    @functools.cached_property
    def limits(self) -> Limits:
        """The calls in flight per service (OpenStack's and the cluster's), at most `concurrency`."""
        return Limits(Settings(ceiling=self.options.concurrency, adaptive=self.options.adaptive))

    # -- OpenStack ------------------------------------------------------------------------------
    @functools.cached_property
    def conn(self) -> Any:
        cloud = self.options.os_cloud or os.environ.get("OS_CLOUD")
        try:
            conn = openstack.connect(cloud=cloud) if cloud else openstack.connect()
        except os_exc.ConfigException as exc:
            if cloud:
                raise UsageError(f"unknown cloud {cloud!r}: {describe(exc)}") from exc
            raise UsageError(f"no OpenStack cloud configured (set --os-cloud or OS_CLOUD): {describe(exc)}") from exc
        except Exception as exc:  # keystoneauth raises many shapes for bad auth settings
            raise UsageError(f"cannot configure the OpenStack connection: {describe(exc)}") from exc
        # Every worker shares these connections, at most `concurrency` calls at once: size the pools
        # to match (kept-alive connections are reused; urllib3's default of 10 would open and drop
        # connections beyond it, and warn). The session's pool serves openstacksdk's own calls
        # (authentication, discovery, the migration's reads); RawClient's the cleanup's.
        size = max(10, self.options.concurrency + 4)
        try:
            for prefix in ("http://", "https://"):
                conn.session.session.mount(prefix, HTTPAdapter(pool_connections=4, pool_maxsize=size))
        except AttributeError:  # pragma: no cover - session layout differs in some SDK versions
            pass
        raw = openstack_api.client(conn)
        raw.limits = self.limits
        raw.pool_size = size
        return conn

    @property
    def project_id(self) -> str | None:
        """The OpenStack project the token is scoped to (the cluster's), when the cloud says."""
        try:
            project = self.conn.current_project_id
        except Exception:  # noqa: BLE001 - an unscoped or noauth session has none
            return None
        # None (noauth, a system- or domain-scoped token) must not become the project "None": every
        # listing scoped to it would find nothing, and the run would say there is nothing to do.
        return str(project) if project else None

    def connect(self, openstack: bool = True) -> None:
        """Prove every API this command needs answers, before anything else: an unreachable or
        refusing API is one line and exit 2 within the connect timeout, not a traceback a minute later."""
        self.infra_id  # noqa: B018 - reads Infrastructure/cluster through the probe policy
        if openstack:
            self.check_openstack()
            self.check_project()

    def check_openstack(self) -> None:
        """One read that proves the cloud is reachable and the credentials work."""
        try:
            call(self.options.retry.probe(), lambda: list(self.conn.network.extensions()), retry_conflicts=False)
        except UsageError:
            raise
        except ksa_exc.ConnectionError as exc:
            raise UsageError(f"cannot reach OpenStack: {describe(exc)}") from exc
        except Exception as exc:
            status = http_status(exc)
            if status in (401, 403) or isinstance(exc, ksa_exc.Unauthorized):
                raise UsageError(f"OpenStack refused the credentials or permission: {describe(exc)}") from exc
            raise UsageError(f"cannot use OpenStack: {describe(exc)}") from exc

    def check_project(self) -> None:
        """Refuse credentials scoped to another project than the one the cluster's Kuryr CRs name.

        With them every OpenStack step finds nothing of the cluster's (listings are scoped to the
        token's project; the CRs' networks, read by id, are another project's), while the cluster side
        (finalizers, openshift-kuryr) runs in full: the leftovers would be orphaned, the CRs that named
        them gone, and the run directory bound to the wrong project. One paged listing per kind, which
        stops at the first CR naming the token's project (Kuryr's annotation project driver may put
        some namespaces in projects of their own: one CR in the token's is enough). No CRs left (a
        re-run after the cleanup removed them): nothing to check.
        """
        project = self.project_id
        if not project:
            return
        named: dict[str, list[str]] = {}  # project -> the fields that name it

        def scan() -> bool:
            named.clear()
            for kind, key in ((KURYR_NETWORK, KURYRNETWORK_PROJECT), (KURYR_LOAD_BALANCER, KURYRLOADBALANCER_PROJECT)):
                for obj in self.cluster.list(kind):
                    value = (obj.get("spec") or {}).get(key)
                    if not value:
                        continue
                    if value == project:
                        return True
                    fields = named.setdefault(str(value), [])
                    if f"{kind.kind} spec.{key}" not in fields:
                        fields.append(f"{kind.kind} spec.{key}")
            return False

        try:
            if call(self.options.retry.probe(), scan, retry_conflicts=False):
                return
        except UsageError:
            raise
        except Exception as exc:
            if http_status(exc) in (401, 403):
                host = self.cluster.api_client.configuration.host
                raise UsageError(f"the cluster API at {host} refused access: {describe(exc)}") from exc
            raise UsageError(f"cannot read the cluster's Kuryr resources: {describe(exc)}") from exc
        if not named:
            return
        theirs = sorted(named)
        where = ", ".join(theirs)
        fields = ", ".join(dict.fromkeys(f for p in theirs for f in named[p]))
        plural = "s" if len(theirs) > 1 else ""
        raise UsageError(
            f"this cluster's Kuryr resources are in project{plural} {where} ({fields}), but the OpenStack "
            f"credentials are scoped to project {project}{self._project_name()}: use credentials scoped to "
            f"{'one of them' if plural else 'it'} (in clouds.yaml, auth: project_id: {theirs[0]})")

    def _project_name(self) -> str:
        """` ('name')` of the token's project, as the token says (no request), for the message."""
        try:
            name = self.conn.session.auth.get_access(self.conn.session).project_name
        except Exception:  # noqa: BLE001 - only a nicety of the message
            return ""
        return f" ({name!r})" if name else ""

    # -- Kubernetes -----------------------------------------------------------------------------
    @functools.cached_property
    def cluster(self) -> Cluster:
        """The cluster API, configured as kubectl would be: `--kubeconfig` or KUBECONFIG may list several
        files (`a:b:c`), merged by the kubernetes client's KubeConfigMerger (the first file to name a
        cluster, user or context wins; files that do not exist are skipped, as kubectl skips them)."""
        paths = self.options.kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        files = [os.path.expanduser(p) for p in paths.split(os.pathsep) if p]
        present = [f for f in files if os.path.exists(f)]
        if not present:
            raise UsageError(f"cannot read kubeconfig {paths}")
        for path in present:
            if not os.path.isfile(path) or not os.access(path, os.R_OK):
                raise UsageError(f"cannot read kubeconfig {path}")
        configuration = client.Configuration()
        try:
            config.load_kube_config(
                config_file=os.pathsep.join(present),
                context=self.options.kube_context or _first_current_context(present),
                client_configuration=configuration,
            )
        except Exception as exc:  # ConfigException, YAML errors, missing context...
            raise UsageError(f"cannot use kubeconfig {paths}: {' '.join(str(exc).split())}") from exc
        configuration.connection_pool_maxsize = max(10, self.options.concurrency + 4)
        configuration.retries = 2
        api_client = client.ApiClient(configuration)
        _hold_slots(api_client, self.limits)
        return Cluster(api_client)

    def check_cluster(self) -> dict[str, Any]:
        """Read Infrastructure/cluster: proves the API is reachable and we may read it."""
        try:
            infra = call(self.options.retry.probe(), lambda: self.cluster.get(INFRASTRUCTURE, "cluster"),
                         retry_conflicts=False)
        except UsageError:
            raise
        except Exception as exc:
            status = http_status(exc)
            host = self.cluster.api_client.configuration.host
            if status in (401, 403):
                raise UsageError(f"the cluster API at {host} refused access: {describe(exc)}") from exc
            if status is None:
                raise UsageError(f"cannot reach the cluster API at {host}: {type(exc).__name__}") from exc
            raise UsageError(f"cannot read the cluster's Infrastructure: {describe(exc)}") from exc
        if infra is None:
            raise UsageError("the cluster has no Infrastructure 'cluster' object: is this an OpenShift cluster?")
        return infra

    # -- identity of the cluster ------------------------------------------------------------------
    @property
    def cluster_id(self) -> str:
        """The cluster instance: ClusterVersion `spec.clusterID`, a UUID made at install and never
        reused (infraIDs repeat: a reinstalled cluster, a rehearsal on a snapshot, the simulator's
        default). Clusters without a ClusterVersion fall back to Infrastructure's `metadata.uid`."""
        if self._cluster_id is None:
            self.infra_id  # noqa: B018 - the probe: one clear line if the API can't be used
            version = call(self.options.retry.probe(), lambda: self.cluster.get(CLUSTER_VERSION, "version"),
                           retry_conflicts=False)
            cluster_id = ((version or {}).get("spec") or {}).get("clusterID")
            if cluster_id and not _UUID.fullmatch(str(cluster_id)):
                # The installer makes a UUID; anything else was written by hand, and ends up in run
                # directories, journals and exported scripts.
                raise UsageError(f"ClusterVersion spec.clusterID {str(cluster_id)!r} is not a UUID: not a cluster "
                                 f"this tool can vouch for")
            self._cluster_id = str(cluster_id or f"infrastructure/{self._infra_uid}")
        return self._cluster_id

    @property
    def infra_id(self) -> str:
        if self._infra_id is None:
            infra = self.check_cluster()
            self._infra_uid = str((infra.get("metadata") or {}).get("uid") or "")
            actual = (infra.get("status") or {}).get("infrastructureName")
            if not actual:
                raise UsageError("Infrastructure/cluster has no status.infrastructureName")
            if not _INFRA_ID.fullmatch(str(actual)):
                # The installer's infraID is a DNS label (`<name>-<5 random>`): it goes into tags, names,
                # paths and exported scripts, so nothing else is taken for one.
                raise UsageError(f"Infrastructure status.infrastructureName {str(actual)!r} is not an installer "
                                 f"infraID (letters, digits, '-', '.', '_'; at most 63)")
            given = self.options.infra_id
            if given and given != actual:
                raise UsageError(
                    f"wrong infraID: --infra-id is {given!r} but this cluster's infrastructureName is {actual!r}"
                )
            self._infra_id = actual
        return self._infra_id

    @property
    def tag(self) -> str:
        return cluster_tag(self.infra_id)

    def identity(self) -> dict[str, str]:
        """What a run directory is bound to (SPEC S6): the cluster instance, its infraID, and the
        OpenStack project when this command talks to OpenStack."""
        found = {"clusterID": self.cluster_id, "infraID": self.infra_id}
        if "conn" in self.__dict__ and self.project_id:
            found["projectID"] = self.project_id
        return found

    # -- run directory ----------------------------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        """`--run-dir`, or a per-user state directory keyed by the cluster's identity (not a folder
        relative to wherever the admin stands, where another cluster's run may already be)."""
        if self.options.run_dir:
            return Path(self.options.run_dir)
        base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "kuryr-migrate"
        return base / f"{self.infra_id}-{self.cluster_id.rsplit('/', 1)[-1][:8]}"

    @property
    def journal(self) -> Journal:
        if self._journal is None:
            self._journal = Journal(self.run_dir / JOURNAL_FILE)
        return self._journal

    @property
    def state(self) -> RunState:
        if self._state is None:
            try:
                state = RunState(self.run_dir / STATE_FILE)
            except StateError as exc:
                raise UsageError(str(exc)) from exc
            # A run directory holds one cluster instance's facts (S6): another cluster's network,
            # router and LB ids would count as "named in this cluster's CRs" and be deleted, and its
            # boot IDs would make this cluster's nodes look rebooted.
            self.bind(state)
            self._state = state
        return self._state

    def bind(self, state: RunState) -> None:
        identity = self.identity()
        recorded = dict(state.get("identity") or {})
        if recorded and not (recorded.get("clusterID") and recorded.get("infraID")):
            raise UsageError(f"the run directory {self.run_dir} records a cluster identity without its clusterID or "
                             f"infraID: it cannot be proven to be this cluster's; use another --run-dir")
        if not recorded and state.data:
            legacy = state.get("infra_id")
            raise UsageError(
                f"the run directory {self.run_dir} holds a run of cluster {legacy or 'unknown'} recorded without the "
                f"cluster's identity (ClusterVersion spec.clusterID): it cannot be proven to be this cluster's "
                f"({identity['infraID']}, clusterID {identity['clusterID']}); use another --run-dir")
        mismatch = [key for key, value in identity.items() if recorded.get(key) and recorded[key] != value]
        if mismatch == ["projectID"]:
            # The same cluster, other credentials: say so, not the same cluster twice.
            raise UsageError(
                f"the run directory {self.run_dir} belongs to cluster {recorded.get('infraID')!r} (clusterID "
                f"{recorded.get('clusterID')}) in project {recorded['projectID']}, but this command's credentials "
                f"are scoped to project {identity['projectID']}: use credentials scoped to "
                f"{recorded['projectID']}, or another --run-dir")
        if mismatch:
            def show(ident: dict[str, str]) -> str:
                extra = ", ".join(f"{k} {ident[k]}" for k in ("clusterID", "projectID") if ident.get(k))
                return f"cluster {ident.get('infraID')!r}" + (f" ({extra})" if extra else "")
            raise UsageError(f"the run directory {self.run_dir} belongs to {show(recorded)}, not to this one, "
                             f"{show(identity)}: use another --run-dir")
        state.set("identity", {**recorded, **identity})
        state.set("infra_id", identity["infraID"])

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()


def _hold_slots(api_client: Any, limits: Limits) -> None:
    """Every request of the kubernetes client holds a slot of the "kube" service's limit."""
    rest = api_client.rest_client
    send = rest.request

    def request(*args: Any, **kwargs: Any) -> Any:
        with limits.slot("kube") as answered:
            try:
                resp = send(*args, **kwargs)
            except ApiException as exc:
                answered(exc.status)
                raise
            answered(resp.status)
            return resp

    rest.request = request
