"""The kubelet: make the sandboxes and processes on the machine match the pods in the store.

Called by the manager every tick. Scheduled pods get sandboxes in one batch; their containers
start once the pod's node's switch holds the pod's flows (the CNI's ADD returns when the data
plane has the pod, as Antrea's does), so a Running pod is a reachable pod. Deleted pods have
their sandboxes torn down in one batch. Exits come from the shim; each container restarts
according to the pod's restartPolicy with a back-off (immediately the first time, then 1 s
doubling up to 30 s: Kubernetes' 10 s..5 min scaled down to suit an emulator).

Every failure is one pod's: a sandbox that cannot be made, a file that cannot be rendered, a
container that cannot be started, are reported as the pod's status and Events and retried with
back-off, while every other pod goes on.
"""
from __future__ import annotations

import os
import shutil
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from emulator.cluster import controllers
from emulator.cluster.store import ClusterState, ContainerStatus, Record
from emulator.errors import K8semuError, RenderError
from emulator.model import images, naming, podfiles
from emulator.model.projection import MountError
from emulator.runtime import containerspec, sandbox
from emulator.runtime.hooks import Termination
from emulator.runtime.kubevolumes import VolumeManager
from emulator.runtime.probes import Probes
from emulator.runtime.proc import signal_alive

BACKOFF_MAX = 30.0
SANDBOX_CHECK = 1.0  # seconds between liveness checks of pods' PID 1


def keep_previous_log(directory: Path, container: str) -> None:
    """A container is about to run again: its log becomes the previous instance's (replacing
    the one before), and the new instance writes a new one, as the kubelet keeps a file per
    instance and serves the last terminated one to ``kubectl logs --previous``."""
    current = directory / naming.container_log(container)
    if current.exists():
        os.replace(current, directory / naming.container_log(container, previous=True))


def backoff(restarts: int) -> float:
    return 0.0 if restarts == 0 else min(BACKOFF_MAX, 2.0 ** (restarts - 1))


@dataclass
class Kubelet:
    state: ClusterState
    runtime: sandbox.SandboxRuntime
    dataplane_ready: Callable[[Record], bool] = lambda rec: True
    boxes: dict[str, sandbox.Sandbox] = field(default_factory=dict)  # pod key -> sandbox
    probes: Probes = field(default_factory=Probes)
    by_pid: dict[int, tuple[str, str]] = field(default_factory=dict)  # container pid -> (pod key, container)
    retry: dict[str, tuple[int, float]] = field(default_factory=dict)  # pod key -> (failures, not before)
    oom_seen: dict[tuple[str, str], int] = field(default_factory=dict)
    orphans: dict[str, set[int]] = field(default_factory=dict)  # pod key -> PID 1 a dead shim started
    terminating: dict[str, Termination] = field(default_factory=dict)  # pod key -> its termination
    finished: dict[str, Path] = field(default_factory=dict)  # pod key -> folder of a pod that ran to completion
    checked: float = 0.0
    volumes: VolumeManager | None = None
    # the manager's lock let go for the duration (sandboxes are made without it: see _start_new)
    unlocked: Callable[[], AbstractContextManager] = nullcontext
    # containers started (running, and Ready without a readiness probe): told at once, before
    # the rest of the pass (probes, every pod's phase, the controllers), so a watch hears of it
    started: Callable[[], None] = lambda: None

    def __post_init__(self) -> None:
        self.probes.exec_start = self._exec_probe
        self.volumes = VolumeManager(self.state, self.runtime.base)

    @property
    def events(self):
        return self.state.events

    def tick(self) -> bool:
        """One sync pass; returns True if anything changed."""
        changed = self._exits()
        changed |= self._stop_deleted()
        changed |= self._start_new()
        if self._start_containers():
            changed = True
            self.started()
        changed |= self._apply_probes()
        if self.volumes.due():
            self.volumes.refresh([r for r in map(self._rec, self.boxes) if r is not None and not r.deleting])
        for key in self.boxes:
            rec = self._rec(key)
            if rec is not None and not rec.deleting:
                self._update_phase(rec)
        return self._release_finished() or changed

    def _release_finished(self) -> bool:
        """A pod that ran to completion (Succeeded, or Failed with nothing to restart) gives its
        sandbox back, as the kubelet ends a finished pod's sandbox: its namespaces, port, cgroups
        and address go (so a Job of many completions does not fill its nodes); its folder, with
        the containers' logs, stays until the pod is deleted (``kubectl logs job/x``). Not a pod
        with a container's streams kept for attach (``kubectl run -i``): the shim relays its last
        output to the client after the exit, and tearing the sandbox down would cut it short."""
        done = [k for k, r in ((k, self._rec(k)) for k in self.boxes if k not in self.terminating)
                if r is not None and not r.deleting and r.status.phase in ("Succeeded", "Failed")
                and not any(c.attachable for c in r.obj.spec.containers)]
        if not done:  # every tick: nothing to destroy must not cost a save of the run's records
            return False
        for key in done:
            self.probes.forget(key)
            for pid in [p for p, (k, _) in self.by_pid.items() if k == key]:
                self.by_pid.pop(pid)
        self.runtime.destroy([self.boxes[k] for k in done], grace=0, keep_directories=True)
        for key in done:
            self.finished[key] = self.boxes.pop(key).directory
            self.volumes.forget(key)
            self.retry.pop(key, None)
            controllers.release_address(self.state, self._rec(key))
        return bool(done)

    def _rec(self, key: str) -> Record | None:
        return self.state.get("Pod", *key.split("/", 1))

    def _halted(self, rec: Record | None) -> bool:
        """The pod's node is stopped (``k8semu node stop``): its kubelet is gone, so nothing of
        the pod is started, probed or ended until the node starts again."""
        return rec is not None and rec.status.node in self.state.stopped

    # -- exits ---------------------------------------------------------------------------
    def _exits(self) -> bool:
        changed = False
        exits = self.runtime.shim.drain_exits()
        pauses = {(b.pause_pid): key for key, b in self.boxes.items()}
        now = time.time()
        for pid, code in exits:
            if self.probes.deliver(pid, code):
                continue
            if pid in self.by_pid:
                changed |= self._container_exited(*self.by_pid.pop(pid), code, now)
            elif pid in pauses:
                changed |= self._sandbox_died(pauses[pid])
        # the shim reports the death of every PID 1 it started; those a dead shim had started
        # are watched here instead
        if self.orphans and time.monotonic() - self.checked > SANDBOX_CHECK:
            self.checked = time.monotonic()
            for key in list(self.orphans):
                box = self.boxes.get(key)
                if box is None or box.pause_pid not in self.orphans[key]:
                    self.orphans.pop(key, None)
                elif not self.runtime.alive(box):
                    self.orphans.pop(key, None)
                    changed |= self._sandbox_died(key)
        return changed

    def _container_exited(self, key: str, name: str, code: int, now: float) -> bool:
        rec, box = self._rec(key), self.boxes.get(key)
        if rec is None or box is None:
            return False
        status = rec.status.containers.get(name)
        box.containers.pop(name, None)
        self.runtime.cgroups.kill(rec.uid, name)  # its children go too, as a cgroup kill does
        self.probes.forget(key, name)
        if status is None:
            return False
        oom = self.runtime.cgroups.oom_kills(rec.uid, name) > self.oom_seen.get((key, name), 0)
        status.ready = False
        status.state, status.exit_code = "terminated", (137 if oom and code < 0 else (128 - code if code < 0 else code))
        status.reason = "OOMKilled" if oom else ("Completed" if code == 0 else "Error")
        status.finished_at = now
        status.next_start = now + backoff(status.restart_count)
        if oom:
            self.events.warn("Pod", rec.obj.meta.namespace, rec.obj.meta.name, "OOMKilled",
                             f"Container {name} was killed: it exceeded its memory limit")
        return True

    def _sandbox_died(self, key: str) -> bool:
        rec, box = self._rec(key), self.boxes.pop(key, None)
        ending = self.terminating.pop(key, None)
        if ending is not None:
            ending.abandon()
        if box is None:
            return False
        for pid in [p for p, (k, _) in self.by_pid.items() if k == key]:
            self.by_pid.pop(pid)
        self.probes.forget(key)
        self.runtime.destroy([box], grace=0)
        if rec is not None and not rec.deleting:
            self.events.normal("Pod", rec.obj.meta.namespace, rec.obj.meta.name, "SandboxChanged",
                               "Pod sandbox changed, it will be killed and re-created.")
            rec.status.phase = "Pending"
            for status in rec.status.containers.values():
                if status.state == "running":
                    status.state, status.reason, status.exit_code = "terminated", "Error", 137
                status.ready = False
        return True

    def shim_restarted(self) -> None:
        """The shim died and a new one runs: the processes the old one started cannot report
        their exits any more, so they are stopped and restarted through the new shim; the pods'
        PID 1s live on (their namespaces are the pods') and are watched by polling."""
        for key, box in self.boxes.items():
            self.orphans[key] = {box.pause_pid}
        for pid, (key, name) in list(self.by_pid.items()):
            box = self.boxes.get(key)
            start = box.containers.get(name, (pid, None))[1] if box else None
            signal_alive(pid, start)
            self._container_exited(key, name, -9, time.time())
            self.by_pid.pop(pid, None)

    # -- sandboxes -----------------------------------------------------------------------
    def _spec(self, rec: Record) -> sandbox.SandboxSpec:
        pod, status = rec.obj, rec.status
        cfg = self.state.config
        node = cfg.node(status.node)
        shared = {name: str(self.runtime.base / "shared" / name) for name in pod.spec.system_mounts}
        resolv = podfiles.resolv_conf(pod, cfg.services.dns_ip, cfg.cluster_domain, cfg.upstream_dns)
        if pod.spec.host_network:  # the node's namespace, name and hosts file (kubelet copies the node's)
            return sandbox.SandboxSpec(pod.meta.namespace, pod.meta.name, rec.uid, node.index, node.ip,
                                       node.pod_cidr, node.gateway_ip, node.name,
                                       podfiles.node_hosts_file(node.name, node.ip, pod.spec.host_aliases),
                                       resolv, shared, host_netns=naming.node_netns(self.runtime.scope, node.name),
                                       volumes=self.volumes.setup(rec), node=node.name)
        hostname = podfiles.hostname_of(pod)
        return sandbox.SandboxSpec(pod.meta.namespace, pod.meta.name, rec.uid, node.index, status.ip,
                                   node.pod_cidr, node.gateway_ip, hostname,
                                   podfiles.hosts_file(hostname, status.ip, podfiles.pod_fqdn(pod, cfg.cluster_domain),
                                                       pod.spec.host_aliases),
                                   resolv, shared, volumes=self.volumes.setup(rec),
                                   node=node.name, port_mappings=sandbox.port_mappings(pod))

    def _failed(self, rec: Record, reason: str, message: str) -> None:
        failures, _ = self.retry.get(rec.obj.key, (0, 0.0))
        self.retry[rec.obj.key] = (failures + 1, time.monotonic() + backoff(failures + 1))
        rec.status.reason, rec.status.message = reason, message
        self.events.warn("Pod", rec.obj.meta.namespace, rec.obj.meta.name, reason, message)

    def _start_new(self) -> bool:
        now = time.monotonic()
        todo = [r for r in self.state.pods() if r.status.node and not r.deleting and r.obj.key not in self.boxes
                and r.status.phase == "Pending" and self.retry.get(r.obj.key, (0, 0.0))[1] <= now
                and r.status.node not in self.state.stopped]
        if not todo:
            return False
        specs, recs = [], []
        for rec in todo:
            # admitted now: kubelet sets startTime (and starts the pod's probe workers, whose
            # ticks count from here) before it creates the sandbox
            rec.status.start_time = rec.status.start_time or time.time()
            try:
                specs.append(self._spec(rec))
                recs.append(rec)
            except RenderError as exc:  # a volume's source is missing (FailedMount), or a file cannot be written
                self._failed(rec, "FailedMount" if isinstance(exc, MountError) else "FailedCreatePodSandBox", str(exc))
        try:
            # Made without the manager's lock: a batch of sandboxes (namespaces, veths, an OVS
            # transaction that waits for the switch, or the CNI plugins) takes tens of ms per
            # pod, and every API request and watch waited behind it. The runtime reads only the
            # specs made above; what changed meanwhile is sorted out below.
            with self.unlocked():
                results = self.runtime.create(specs)
        except K8semuError as exc:  # the shim is gone: the manager restarts it; retry then
            for rec in recs:
                self._failed(rec, "FailedCreatePodSandBox", str(exc))
            return True
        for rec, result in zip(recs, results):
            current = self._rec(rec.obj.key)
            if current is None or current.uid != rec.uid:  # gone, or another pod of that name, meanwhile
                if not isinstance(result, Exception):
                    self.runtime.destroy([result], grace=0)
                continue
            if isinstance(result, Exception):
                self._failed(rec, "FailedCreatePodSandBox", f"Failed to create pod sandbox: {result}")
                continue
            self.retry.pop(rec.obj.key, None)
            self.boxes[rec.obj.key] = result
            rec.status.reason = rec.status.message = ""
            for c in rec.obj.spec.containers:
                rec.status.containers.setdefault(c.name, ContainerStatus(c.name))
        return True

    # -- containers ----------------------------------------------------------------------
    def _request(self, rec: Record, box: sandbox.Sandbox, name: str) -> dict:
        """What the shim needs to start a container (raises UnknownImage, RenderError)."""
        return containerspec.request(self.state, self.runtime, self.volumes, rec, box, name)

    def _due(self, rec: Record, status: ContainerStatus, now: float) -> bool:
        if status.state == "running" or now < status.next_start:
            return False
        if status.state == "terminated" and not self._should_restart(rec, status):
            return False
        return True

    def _start_containers(self) -> bool:
        now = time.time()
        batch: list[tuple[Record, str, dict]] = []
        for key, box in self.boxes.items():
            rec = self._rec(key)
            if rec is None or rec.deleting or self._halted(rec):
                continue
            due = []
            for name, status in rec.status.containers.items():
                if self._due(rec, status, now):
                    due.append((name, status))
                elif status.state != "running":
                    status.backing_off = status.state == "terminated" and self._should_restart(rec, status)
            if not due or not self.dataplane_ready(rec):
                continue
            for name, status in due:
                if status.state == "terminated" and status.log_kept != status.started_at:
                    keep_previous_log(box.directory, name)  # the instance that ended: kubectl logs -p
                    status.log_kept = status.started_at
                try:
                    batch.append((rec, name, self._request(rec, box, name)))
                except (images.UnknownImage, RenderError, OSError) as exc:
                    self._container_failed(rec, status, name, str(exc), now,
                                           "CreateContainerConfigError" if isinstance(exc, podfiles.ContainerConfigError)
                                           else "CreateContainerError")
        if not batch:
            return False
        try:
            results = self.runtime.start([dict(r) for _, _, r in batch])
        except K8semuError as exc:
            results = [{"error": str(exc)}] * len(batch)
        for (rec, name, request), result in zip(batch, results):
            status = rec.status.containers[name]
            if "error" in result:
                self._container_failed(rec, status, name, result["error"], now)
                continue
            box = self.boxes[rec.obj.key]
            box.containers[name] = (result["pid"], result["start"])
            self.by_pid[result["pid"]] = (rec.obj.key, name)
            self.oom_seen[(rec.obj.key, name)] = self.runtime.cgroups.oom_kills(rec.uid, name)
            if status.state == "terminated":
                status.restart_count += 1
                status.last_state = (status.reason, status.exit_code, status.started_at, status.finished_at)
            status.state, status.reason, status.pid = "running", "", result["pid"]
            status.create_failures, status.backing_off = 0, False
            status.started_at, status.exit_code = now, None
            rec.status.phase = "Running"
            node_netns = naming.node_netns(self.runtime.scope, rec.status.node)
            status.ready = self.probes.start(rec, name, node_netns)
            ns, pod_name = rec.obj.meta.namespace, rec.obj.meta.name
            image = next((c.image for c in rec.obj.spec.containers if c.name == name), "")
            self.events.normal("Pod", ns, pod_name, "Pulled", f'Container image "{image}" already present on machine')
            self.events.normal("Pod", ns, pod_name, "Created", f"Created container {name}")
            self.events.normal("Pod", ns, pod_name, "Started", f"Started container {name}")
        return True

    def _container_failed(self, rec: Record, status: ContainerStatus, name: str, message: str, now: float,
                          reason: str = "CreateContainerError") -> None:
        """It could not be started (kubelet's CreateContainerError, or CreateContainerConfigError
        when a ConfigMap or Secret it needs is missing): retried with back-off, without
        counting a restart."""
        status.state, status.reason, status.exit_code = "waiting", reason, None
        rec.status.message = message
        status.create_failures += 1
        status.next_start = now + backoff(status.create_failures)
        self.events.warn("Pod", rec.obj.meta.namespace, rec.obj.meta.name, "Failed",
                         f"Error: container {name}: {message}")

    def _exec_probe(self, key: str, name: str, argv: list[str]) -> tuple[int, int | None] | None:
        rec, box = self._rec(key), self.boxes.get(key)
        if rec is None or box is None:
            return None
        try:
            request = self._request(rec, box, name)
        except (images.UnknownImage, RenderError, OSError):
            return None
        request.update({"argv": argv, "log": None})
        result = self.runtime.start([request])[0]
        return None if "error" in result else (result["pid"], result["start"])

    def _apply_probes(self) -> bool:
        changes = self.probes.tick()
        for pod_key, name, message in self.probes.take_failures():
            rec = self._rec(pod_key)
            if rec is not None and not rec.deleting and not self._halted(rec):  # kubelet's event, aggregated by the recorder
                self.events.warn("Pod", rec.obj.meta.namespace, rec.obj.meta.name, "Unhealthy",
                                 f"Readiness probe failed: {message}")
        for pod_key, name, kind, passing in changes:
            rec = self._rec(pod_key)
            if self._halted(rec):  # no kubelet to hear it (the result of a probe of a frozen pod)
                continue
            status = rec.status.containers.get(name) if rec else None
            if status is None or status.state != "running":
                continue
            if kind == "readiness":
                status.ready = passing
            elif not passing:  # liveness failed: kill; the exit is reported and it restarts
                self.events.warn("Pod", rec.obj.meta.namespace, rec.obj.meta.name, "Unhealthy",
                                 f"Liveness probe failed; container {name} will be restarted")
                box = self.boxes.get(pod_key)
                if box and name in box.containers:
                    signal_alive(*box.containers[name])
        return bool(changes)

    @staticmethod
    def _should_restart(rec: Record, status: ContainerStatus) -> bool:
        policy = rec.obj.spec.restart_policy
        if status.state == "waiting":
            return True
        return policy == "Always" or (policy == "OnFailure" and status.exit_code != 0)

    def _update_phase(self, rec: Record) -> None:
        """The pod's phase from its containers, and since when it is ready (minReadySeconds)."""
        rec.status.ready_since = (rec.status.ready_since or time.time()) if rec.status.ready else 0.0
        states = list(rec.status.containers.values())
        if states and all(s.state == "terminated" for s in states) and not any(
                self._should_restart(rec, s) for s in states):
            rec.status.phase = "Succeeded" if all(s.exit_code == 0 for s in states) else "Failed"

    # -- teardown ------------------------------------------------------------------------
    def _stop_deleted(self) -> bool:
        """Deleted pods end as the kubelet ends them (``hooks.Termination``): preStop hooks,
        SIGTERM, then, once every process has exited or terminationGracePeriodSeconds have
        passed, SIGKILL and the sandbox goes. Meanwhile the pod is Terminating: its readiness
        probes go on (its EndpointSlice condition ``serving``), its liveness probes stop."""
        for rec in [r for r in self.state.pods() if r.deleting and r.obj.key not in self.boxes]:
            if rec.obj.key in self.finished:  # it ran to completion: its sandbox went then
                shutil.rmtree(self.finished.pop(rec.obj.key), ignore_errors=True)
            self.volumes.remove(rec)  # made before a sandbox that never came (a FailedMount, say)
            controllers.forget_pod(self.state, rec)  # deleted before it got a sandbox, or finished
        now = time.monotonic()
        for key in [k for k in self.boxes if k not in self.terminating and ((r := self._rec(k)) is None or r.deleting)
                    and not self._halted(r)]:
            rec = self._rec(key)
            for c in rec.obj.spec.containers if rec is not None else ():
                self.probes.forget_kind(key, c.name, "liveness")
                self.events.normal("Pod", rec.obj.meta.namespace, rec.obj.meta.name, "Killing",
                                   f"Stopping container {c.name}")
            node_netns = naming.node_netns(self.runtime.scope, rec.status.node) if rec is not None else ""
            self.terminating[key] = Termination.begin(
                rec.obj if rec is not None else None, rec.status.ip if rec is not None else "", node_netns,
                lambda name, argv, key=key: self._exec_probe(key, name, argv), rec.grace if rec is not None else None)
        gone = []
        for key, ending in self.terminating.items():
            if self._halted(self._rec(key)):  # its termination resumes when the node starts again
                continue
            if (rec := self._rec(key)) is not None and rec.grace is not None:
                ending.shorten(rec.grace)
            due = ending.step(now)
            if due == "sigterm":
                self.runtime.terminate([self.boxes[key]])
            elif due == "kill" or (ending.signalled and not self.runtime.running(self.boxes[key])):
                gone.append(key)
        if not gone:
            return False
        for key in gone:
            self.probes.forget(key)
        for key in gone:
            for pid in [p for p, (k, _) in self.by_pid.items() if k == key]:
                self.by_pid.pop(pid)
        self.runtime.destroy([self.boxes[k] for k in gone], grace=0)
        for key in gone:
            del self.boxes[key]
            del self.terminating[key]
            self.volumes.forget(key)
            self.retry.pop(key, None)
            rec = self._rec(key)
            if rec is not None:
                controllers.forget_pod(self.state, rec)
        return True

    def shutdown(self) -> None:
        """The cluster goes down: no preStop hooks, no grace periods (``down`` does not wait)."""
        for ending in self.terminating.values():
            ending.abandon()
        self.terminating.clear()
        for key in list(self.boxes):
            self.probes.forget(key)
        self.runtime.destroy(list(self.boxes.values()), whole_cluster=True)
        self.boxes.clear()
        self.by_pid.clear()
