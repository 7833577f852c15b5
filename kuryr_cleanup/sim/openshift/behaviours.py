"""The OpenShift operators' behaviours a migration observes: the MCO, the CNO, the kubelet's reboots.

Behaviours (`OpenShiftBehaviours`) react to API writes and to Nova reboots on the store's clock:
- MCO: `Network.operator spec.migration` set -> every pool renders a new MachineConfig (whose
  `configure-ovs.sh` argument is the migration's network type), goes Updating, and its nodes take the
  config one at a time (desiredConfig, state Working, reboot, currentConfig, state Done) -> Updated.
  A paused pool (spec.paused) gets the new config rendered but no node moves (Updating=False, "Pool is
  paused; will not update to ..."), as the real node controller only syncs a paused pool's status;
  unpausing starts the rollout, pausing stops it after the node in progress.
- CNO: `Network.config spec.networkType` switched -> as soon as the CNO has processed it (the next
  tick) `status.networkType` says the new type, as a real CNO may report it long before any node has
  rebooted; the multus DaemonSet rolls out, ClusterOperators go Progressing then settle, and the
  `network` operator settles once every node has rebooted since the switch (boot IDs recorded at the
  switch, kept in `store.settings` so a snapshot keeps them).
- Reboot: Nova's `server_reboot` event or `/_sim/reboot-by-ip` -> the node goes NotReady, then Ready
  with a new bootID after the "server_reboot" + "node_boot" delays; each transition is recorded in
  `reboot_transitions` (what tests judge the reboot strategies by).

Faults (`store.behaviour_faults`, set with PUT /_sim/behaviours; each value a name or a list):
- `degraded_pool`: pool name(s) whose rollout stops with the first node Degraded.
- `lost_node`: node name(s) that never come back from a reboot (NotReady for good).
- `degraded_operator`: ClusterOperator name(s) that report Degraded=True and never settle.
- `crashloop_pod`: "<namespace>/<name>" of pod(s) kept in CrashLoopBackOff.
"""

from __future__ import annotations

import copy
import datetime as _dt
import functools
import uuid
import weakref
from collections.abc import Iterable
from typing import Any

from kuryr_cleanup.sim.kube import resources as kube_resources
from kuryr_cleanup.sim.openshift.machine_config import (
    ANN_CURRENT,
    ANN_DESIRED,
    ANN_REASON,
    ANN_STATE,
    MC_API,
    MCO_NAMESPACE,
    make_rendered_machine_config,
    pool_conditions,
    rendered_config_name,
)
from kuryr_cleanup.sim.openshift.nodes import new_boot_id, node_ip, node_is_ready, node_ready_conditions, node_role
from kuryr_cleanup.sim.openshift.objects import CONFIG_API, MULTUS_NAMESPACE, OPERATOR_API, condition
from kuryr_cleanup.sim.store import Store, iso_now

# Operators that roll out again when the cluster network type changes.
OPERATORS_PROGRESSING_ON_SWITCH: tuple[str, ...] = ("network", "dns", "ingress", "kube-apiserver", "monitoring")


def _names(value: Any) -> set[str]:
    if value is None or value is False:
        return set()
    if isinstance(value, str):
        return {value}
    if isinstance(value, Iterable):
        return {str(v) for v in value}
    return set()


_BEHAVIOURS: weakref.WeakKeyDictionary[Store, OpenShiftBehaviours] = weakref.WeakKeyDictionary()


def behaviours_for(store: Store) -> OpenShiftBehaviours:
    """The one behaviour engine of `store` (subscribed to its events once)."""
    engine = _BEHAVIOURS.get(store)
    if engine is None:
        engine = OpenShiftBehaviours(store)
        _BEHAVIOURS[store] = engine
    return engine


class OpenShiftBehaviours:
    """The MCO, the CNO and the kubelet's reboots, as far as a migration can observe them.

    Callbacks run under `store.lock` (API writes, `store.tick()` timers, Nova's events). Every change
    goes through `kube_resources.save_object`, so watches (kubectl rollout status) see it.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        # (namespace, pod name) -> log lines (the machine-config-daemon pods' logs).
        self.pod_logs: dict[tuple[str, str], list[str]] = {}
        # Rollout generations: a newer rollout of a pool (or reboot of a node) supersedes older timers.
        self._pool_rollout: dict[str, int] = {}
        self._node_reboot: dict[str, int] = {}
        # Every reboot's transitions in order: {"t": simulated time, "node": name, "event": "down"|"up"},
        # "down" when the reboot was requested (Nova or SSH), "up" when the node is Ready on a new boot ID.
        # Tests judge the reboot strategies by it (how many nodes were down at once, and which).
        self.reboot_transitions: list[dict[str, Any]] = []
        store.on("server_reboot", self.on_server_reboot)

    # -- small accessors ---------------------------------------------------------------------------
    def _get(self, api_version: str, kind: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        return self.store.kube_get(api_version, kind, name, namespace)

    def _nodes(self) -> list[dict[str, Any]]:
        return [self.store.kube_objects("v1", "Node")[k] for k in sorted(self.store.kube_objects("v1", "Node"))]

    def _save(self, obj: dict[str, Any]) -> None:
        kube_resources.save_object(self.store, obj)

    def _faulty(self, fault: str, name: str) -> bool:
        return name in _names(self.store.behaviour_faults.get(fault))

    def _timestamp(self) -> str:
        return iso_now(self.store.clock.now())

    def mcd_log(self, node_name: str, message: str, source: str = "daemon.go:1000") -> None:
        """Append a line, formatted like klog, to the machine-config-daemon pod log of `node_name`."""
        pods = self.store.kube_objects("v1", "Pod")
        for (namespace, pod_name), pod in pods.items():
            if namespace == MCO_NAMESPACE and pod.get("spec", {}).get("nodeName") == node_name \
                    and pod_name.startswith("machine-config-daemon"):
                when = _dt.datetime.fromtimestamp(self.store.clock.now(), tz=_dt.timezone.utc)
                stamp = when.strftime("I%m%d %H:%M:%S.%f")
                self.pod_logs.setdefault((namespace, pod_name), []).append(f"{stamp}    2736 {source}] {message}")
                return

    # -- reacting to API writes ------------------------------------------------------------------
    def object_changed(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        """Called by the API after every write (old None: created; new None: gone)."""
        obj = new or old
        if obj is not None and new is not None and obj.get("kind") == "MachineConfigPool":
            was_paused = bool(((old or {}).get("spec") or {}).get("paused"))
            if was_paused and not (new.get("spec") or {}).get("paused") and self._pending_nodes(new):
                self._start_rollout(new)
            return
        if obj is None or obj["metadata"].get("name") != "cluster" or obj.get("kind") != "Network" or new is None:
            return
        old_spec = (old or {}).get("spec") or {}
        new_spec = new.get("spec") or {}
        if obj["apiVersion"] == OPERATOR_API and old_spec.get("migration") != new_spec.get("migration"):
            self.roll_machine_configs()
        elif obj["apiVersion"] == CONFIG_API and old_spec.get("networkType") != new_spec.get("networkType"):
            self.switch_network_type(str(new_spec.get("networkType")))

    # -- MCO ------------------------------------------------------------------------------------------
    def mco_network_type(self) -> str:
        """The network type the MCO renders for: the migration's target while one is set."""
        operator = self._get(OPERATOR_API, "Network", "cluster") or {}
        migration = (operator.get("spec") or {}).get("migration") or {}
        if migration.get("networkType"):
            return str(migration["networkType"])
        config = self._get(CONFIG_API, "Network", "cluster") or {}
        return str((config.get("spec") or {}).get("networkType") or "Kuryr")

    def pool_nodes(self, role: str) -> list[dict[str, Any]]:
        return [n for n in self._nodes() if node_role(n) == role]

    def roll_machine_configs(self) -> None:
        """Render each pool's config for the current target and start rolling it to the nodes."""
        network_type = self.mco_network_type()
        for pool in list(self.store.kube_objects(MC_API, "MachineConfigPool").values()):
            role = pool["metadata"]["name"]
            target = rendered_config_name(role, network_type)
            if self._get(MC_API, "MachineConfig", target) is None:
                mc = make_rendered_machine_config(role, network_type, pool["metadata"].get("uid"))
                mc["metadata"]["uid"] = str(uuid.uuid4())
                mc["metadata"]["creationTimestamp"] = self._timestamp()
                mc["metadata"]["generation"] = 1
                kube_resources.save_object(self.store, mc, "ADDED")
            if pool["spec"]["configuration"]["name"] == target:
                continue
            pool = _copy(pool)
            pool["spec"]["configuration"]["name"] = target
            pool["metadata"]["generation"] = int(pool["metadata"].get("generation") or 1) + 1
            self._start_rollout(pool)

    def _start_rollout(self, pool: dict[str, Any]) -> None:
        """The node controller starts moving the pool's nodes to its config, unless the pool is paused
        (then the new config is rendered but waits; unpausing starts it)."""
        role = pool["metadata"]["name"]
        pool = _copy(pool)
        self._refresh_pool(pool, updating=True)
        self._save(pool)
        self._pool_rollout[role] = self._pool_rollout.get(role, 0) + 1
        if not pool["spec"].get("paused"):
            token = self._pool_rollout[role]
            self.store.schedule("mco_node", functools.partial(self._mco_step, role, token))

    def _pending_nodes(self, pool: dict[str, Any]) -> list[dict[str, Any]]:
        """The pool's nodes not on its config yet."""
        target = pool["spec"]["configuration"]["name"]
        return [n for n in self.pool_nodes(pool["metadata"]["name"])
                if n["metadata"].get("annotations", {}).get(ANN_CURRENT) != target]

    def _refresh_pool(self, pool: dict[str, Any], updating: bool, degraded_message: str = "") -> None:
        role = pool["metadata"]["name"]
        target = pool["spec"]["configuration"]["name"]
        nodes = self.pool_nodes(role)
        updated = sum(1 for n in nodes if n["metadata"].get("annotations", {}).get(ANN_CURRENT) == target)
        ready = sum(1 for n in nodes if node_is_ready(n))
        degraded = sum(1 for n in nodes if n["metadata"].get("annotations", {}).get(ANN_STATE) == "Degraded")
        status = pool.setdefault("status", {})
        if not updating and not degraded_message:
            status["configuration"] = _copy(pool["spec"]["configuration"])
        status_config = (status.get("configuration") or {}).get("name", target)
        status.update(
            {
                "conditions": pool_conditions(
                    target, status_config, updating=updating, degraded_message=degraded_message,
                    when=self._timestamp(), paused=bool(pool["spec"].get("paused")),
                ),
                "degradedMachineCount": degraded,
                "machineCount": len(nodes),
                "observedGeneration": pool["metadata"].get("generation", 1),
                "readyMachineCount": min(ready, updated),
                "unavailableMachineCount": len(nodes) - ready,
                "updatedMachineCount": updated,
            }
        )

    def _mco_step(self, role: str, token: int) -> None:
        """Move the next node of the pool to the pool's config (one at a time, maxUnavailable 1)."""
        if self._pool_rollout.get(role) != token:
            return
        pool = self._get(MC_API, "MachineConfigPool", role)
        if pool is None:
            return
        target = pool["spec"]["configuration"]["name"]
        pending = self._pending_nodes(pool)
        pool = _copy(pool)
        if pending and pool["spec"].get("paused"):
            # Paused in the middle of a rollout: the node controller only syncs the status.
            self._refresh_pool(pool, updating=True)
            self._save(pool)
            return
        if not pending:
            self._refresh_pool(pool, updating=False)
            self._save(pool)
            return
        node = _copy(pending[0])
        name = node["metadata"]["name"]
        annotations = node["metadata"].setdefault("annotations", {})
        annotations[ANN_DESIRED] = target
        if self._faulty("degraded_pool", role):
            reason = f'failed to drain node: {name} after 1 hour: error when evicting pods/"router-default" -n ' \
                     '"openshift-ingress": global timeout reached: 1m30s'
            annotations[ANN_STATE] = "Degraded"
            annotations[ANN_REASON] = reason
            self._save(node)
            self.mcd_log(name, f"Marking Degraded due to: {reason}", "daemon.go:640")
            self._refresh_pool(pool, updating=True, degraded_message=f'Node {name} is reporting: "{reason}"')
            self._save(pool)
            return
        annotations[ANN_STATE] = "Working"
        annotations["machineconfiguration.openshift.io/desiredDrain"] = f"drain-{target}"
        node["spec"]["unschedulable"] = True
        node["spec"]["taints"] = [t for t in node["spec"].get("taints") or []
                                  if t.get("key") != "node.kubernetes.io/unschedulable"]
        node["spec"]["taints"].append({"effect": "NoSchedule", "key": "node.kubernetes.io/unschedulable",
                                       "timeAdded": self._timestamp()})
        self._save(node)
        current = annotations.get(ANN_CURRENT)
        self.mcd_log(name, f"Starting update from {current} to {target}", "update.go:2118")
        self.mcd_log(name, "Update prepared; requesting cordon and drain via annotation to controller",
                     "update.go:2118")
        self._refresh_pool(pool, updating=True)
        self._save(pool)
        self.store.schedule("mco_node", lambda: self._mco_node_done(role, token, name, target))

    def _mco_node_done(self, role: str, token: int, name: str, target: str) -> None:
        """The daemon wrote the config and rebooted; the node comes back on the new config."""
        if self._pool_rollout.get(role) != token:
            return
        node = self._get("v1", "Node", name)
        if node is None:
            return
        node = _copy(node)
        self.mcd_log(name, "Rebooting node", "update.go:2118")
        if self._faulty("lost_node", name):
            self._set_not_ready(node)
            self._save(node)
            pool = self._get(MC_API, "MachineConfigPool", role)
            if pool is not None:
                pool = _copy(pool)
                self._refresh_pool(pool, updating=True)
                self._save(pool)
            return
        annotations = node["metadata"]["annotations"]
        annotations[ANN_CURRENT] = target
        annotations[ANN_STATE] = "Done"
        annotations[ANN_REASON] = ""
        annotations["machineconfiguration.openshift.io/desiredDrain"] = f"uncordon-{target}"
        annotations["machineconfiguration.openshift.io/lastAppliedDrain"] = f"uncordon-{target}"
        node["spec"].pop("unschedulable", None)
        node["spec"]["taints"] = [t for t in node["spec"].get("taints") or []
                                  if t.get("key") != "node.kubernetes.io/unschedulable"]
        if not node["spec"]["taints"]:
            del node["spec"]["taints"]
        node["status"]["nodeInfo"]["bootID"] = new_boot_id()
        node["status"]["conditions"] = node_ready_conditions(True, self._timestamp())
        self._save(node)
        self.mcd_log(name, f"Update completed for config {target} and node has been successfully uncordoned",
                     "update.go:2118")
        self._mco_step(role, token)

    # -- CNO -------------------------------------------------------------------------------------------
    def switch_network_type(self, network_type: str) -> None:
        """Network.config spec.networkType changed: the status follows once the CNO processed it (not
        after the reboots), multus rolls, operators progress; the network operator settles once every
        node has rebooted (boot IDs recorded now)."""
        self.store.settings["cno_switch"] = {
            "networkType": network_type,
            "bootIDs": {n["metadata"]["name"]: n["status"]["nodeInfo"].get("bootID") for n in self._nodes()},
            "done": False,
        }
        multus = self._get("apps/v1", "DaemonSet", "multus", MULTUS_NAMESPACE)
        if multus is not None:
            multus = _copy(multus)
            generation = int(multus["metadata"].get("generation") or 1) + 1
            multus["metadata"]["generation"] = generation
            multus["metadata"].setdefault("annotations", {})["deprecated.daemonset.template.generation"] = str(
                generation
            )
            status = multus.setdefault("status", {})
            desired = int(status.get("desiredNumberScheduled") or 0)
            status.update(
                {
                    "observedGeneration": generation,
                    "updatedNumberScheduled": 0,
                    "numberAvailable": max(desired - 1, 0),
                    "numberUnavailable": min(desired, 1),
                    "numberReady": max(desired - 1, 0),
                }
            )
            self._save(multus)
            self.store.schedule("multus_rollout", lambda: self._multus_rolled_out(generation))
        self.store.schedule(0.0, lambda: self._report_network_type(network_type))
        for name in OPERATORS_PROGRESSING_ON_SWITCH:
            self._set_operator_progressing(name, f"Deployment of the {network_type} network is in progress")
            if name != "network":
                self.store.schedule("operator_settle", functools.partial(self._settle_operator, name))
        self._check_network_switch_complete()

    def _multus_rolled_out(self, generation: int) -> None:
        multus = self._get("apps/v1", "DaemonSet", "multus", MULTUS_NAMESPACE)
        if multus is None or multus["metadata"].get("generation") != generation:
            return
        multus = _copy(multus)
        status = multus["status"]
        desired = int(status.get("desiredNumberScheduled") or 0)
        status.update({"updatedNumberScheduled": desired, "numberAvailable": desired, "numberReady": desired,
                       "currentNumberScheduled": desired})
        status.pop("numberUnavailable", None)
        self._save(multus)

    def _set_operator_progressing(self, name: str, message: str) -> None:
        operator = self._get(CONFIG_API, "ClusterOperator", name)
        if operator is None:
            return
        operator = _copy(operator)
        _set_condition(operator, "Progressing", "True", "Deploying", message, self._timestamp())
        self._save(operator)

    def _settle_operator(self, name: str) -> None:
        operator = self._get(CONFIG_API, "ClusterOperator", name)
        if operator is None:
            return
        operator = _copy(operator)
        _set_condition(operator, "Progressing", "False", "AsExpected", "", self._timestamp())
        self._save(operator)
        self.apply_faults()

    def _check_network_switch_complete(self) -> None:
        switch = self.store.settings.get("cno_switch")
        if not switch or switch.get("done"):
            return
        boot_ids = switch.get("bootIDs") or {}
        for node in self._nodes():
            name = node["metadata"]["name"]
            if node["status"]["nodeInfo"].get("bootID") == boot_ids.get(name) or not node_is_ready(node):
                return
        switch["done"] = True
        self.store.schedule("operator_settle", lambda: self._settle_operator("network"))

    def _report_network_type(self, network_type: str) -> None:
        """The CNO has processed the switch: Network.config's status says the new type (and cluster
        network) right away, while nodes are still running the old plugin until they reboot."""
        config = self._get(CONFIG_API, "Network", "cluster")
        if config is None or (config.get("spec") or {}).get("networkType") != network_type:
            return
        config = _copy(config)
        config.setdefault("status", {})["networkType"] = network_type
        config["status"]["clusterNetwork"] = _copy(config["spec"].get("clusterNetwork") or [])
        self._save(config)

    # -- reboots -------------------------------------------------------------------------------------
    def on_server_reboot(self, server_id: str, hard: bool = False, **_: Any) -> None:
        """Nova accepted a reboot of `server_id`: the node backed by it goes down and comes back."""
        provider_id = f"openstack:///{server_id}"
        for node in self._nodes():
            if node.get("spec", {}).get("providerID") == provider_id:
                self.reboot_node(node["metadata"]["name"])
                return
        # A node without a providerID still runs on its server: the installer names both alike.
        server = self.store.get("servers", server_id) or {}
        if server.get("name") and self._get("v1", "Node", str(server["name"])) is not None:
            self.reboot_node(str(server["name"]))

    def reboot_node_by_ip(self, ip: str) -> str | None:
        """The SSH path (`sudo shutdown -r`): reboot the node whose InternalIP is `ip`."""
        for node in self._nodes():
            if node_ip(node) == ip:
                self.reboot_node(node["metadata"]["name"])
                return str(node["metadata"]["name"])
        return None

    def reboot_node(self, name: str) -> None:
        node = self._get("v1", "Node", name)
        if node is None:
            return
        node = _copy(node)
        self._set_not_ready(node)
        self._save(node)
        self.reboot_transitions.append({"t": self.store.clock.now(), "node": name, "event": "down"})
        self.mcd_log(name, "Shutting down for reboot", "daemon.go:1523")
        self._node_reboot[name] = self._node_reboot.get(name, 0) + 1
        token = self._node_reboot[name]
        if self._faulty("lost_node", name):
            return
        delay = self.store.delays.get("server_reboot", 0.0) + self.store.delays.get("node_boot", 0.0)
        self.store.schedule(delay, lambda: self._node_booted(name, token))

    def _set_not_ready(self, node: dict[str, Any]) -> None:
        node["status"]["conditions"] = node_ready_conditions(False, self._timestamp())
        taints = [t for t in node["spec"].get("taints") or [] if t.get("key") != "node.kubernetes.io/unreachable"]
        taints.append({"effect": "NoSchedule", "key": "node.kubernetes.io/unreachable", "timeAdded": self._timestamp()})
        taints.append({"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "timeAdded": self._timestamp()})
        node["spec"]["taints"] = taints

    def _node_booted(self, name: str, token: int) -> None:
        if self._node_reboot.get(name) != token or self._faulty("lost_node", name):
            return
        node = self._get("v1", "Node", name)
        if node is None:
            return
        node = _copy(node)
        node["status"]["conditions"] = node_ready_conditions(True, self._timestamp())
        node["status"]["nodeInfo"]["bootID"] = new_boot_id()
        taints = [t for t in node["spec"].get("taints") or [] if t.get("key") != "node.kubernetes.io/unreachable"]
        if taints:
            node["spec"]["taints"] = taints
        else:
            node["spec"].pop("taints", None)
        self._save(node)
        self.reboot_transitions.append({"t": self.store.clock.now(), "node": name, "event": "up"})
        self.mcd_log(name, "Starting MachineConfigDaemon", "start.go:112")
        self._heal_pods_on(name)
        self._check_network_switch_complete()

    # -- faults ---------------------------------------------------------------------------------------
    def apply_faults(self) -> None:
        """Hold the faulty objects in their broken state (cheap when no fault is set)."""
        faults = self.store.behaviour_faults
        if not faults:
            return
        for ref in _names(faults.get("crashloop_pod")):
            namespace, _, name = ref.partition("/")
            pod = self._get("v1", "Pod", name, namespace)
            if pod is not None and not _is_crashlooping(pod):
                pod = _copy(pod)
                _crashloop(pod, self._timestamp())
                self._save(pod)
        for name in _names(faults.get("degraded_operator")):
            operator = self._get(CONFIG_API, "ClusterOperator", name)
            if operator is not None and _condition_status(operator, "Degraded") != "True":
                operator = _copy(operator)
                _set_condition(operator, "Degraded", "True", "RolloutHung",
                               f"{name} operator is degraded: DaemonSet rollout is not making progress",
                               self._timestamp())
                self._save(operator)

    def _heal_pods_on(self, node_name: str) -> None:
        """Pods crash-looping on a rebooted node recover unless a fault still holds them."""
        crashloop = _names(self.store.behaviour_faults.get("crashloop_pod"))
        for (namespace, name), pod in list(self.store.kube_objects("v1", "Pod").items()):
            if pod.get("spec", {}).get("nodeName") != node_name or f"{namespace}/{name}" in crashloop:
                continue
            if _is_crashlooping(pod):
                pod = _copy(pod)
                now = self._timestamp()
                for cs in pod["status"].get("containerStatuses") or []:
                    cs["state"] = {"running": {"startedAt": now}}
                    cs["ready"] = True
                _set_condition(pod, "Ready", "True", "", "", now)
                self._save(pod)


def _copy(obj: Any) -> Any:
    return copy.deepcopy(obj)


def _condition_status(obj: dict[str, Any], ctype: str) -> str | None:
    for cond in obj.get("status", {}).get("conditions") or []:
        if cond.get("type") == ctype:
            return str(cond.get("status"))
    return None


def _set_condition(obj: dict[str, Any], ctype: str, status: str, reason: str, message: str, when: str) -> None:
    conditions = obj.setdefault("status", {}).setdefault("conditions", [])
    for cond in conditions:
        if cond.get("type") == ctype:
            if cond.get("status") != status:
                cond["lastTransitionTime"] = when
            cond["status"] = status
            if reason:
                cond["reason"] = reason
            if message:
                cond["message"] = message
            else:
                cond.pop("message", None)
            return
    conditions.append(condition(ctype, status, reason, message, when))


def _is_crashlooping(pod: dict[str, Any]) -> bool:
    for cs in pod.get("status", {}).get("containerStatuses") or []:
        if (cs.get("state") or {}).get("waiting", {}).get("reason") == "CrashLoopBackOff":
            return True
    return False


def _crashloop(pod: dict[str, Any], when: str) -> None:
    status = pod.setdefault("status", {})
    status["phase"] = "Running"
    statuses = status.get("containerStatuses") or [
        {"name": c.get("name", "main"), "image": c.get("image", ""), "imageID": "", "restartCount": 0}
        for c in pod.get("spec", {}).get("containers") or [{"name": "main"}]
    ]
    for cs in statuses:
        cs.setdefault("image", "")
        cs.setdefault("imageID", "")
        cs["containerID"] = f"cri-o://{uuid.uuid4().hex}{uuid.uuid4().hex}"
        cs["ready"] = False
        cs["started"] = False
        cs["restartCount"] = int(cs.get("restartCount") or 0) + 5
        cs["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": when}}
        cs["state"] = {"waiting": {"reason": "CrashLoopBackOff",
                                   "message": f"back-off 5m0s restarting failed container={cs['name']} "
                                              f"pod={pod['metadata']['name']}_{pod['metadata'].get('namespace', '')}"}}
    status["containerStatuses"] = statuses
    _set_condition(pod, "Ready", "False", "ContainersNotReady",
                   "containers with unready status: [" + " ".join(c["name"] for c in statuses) + "]", when)
