"""The kubelet: make the sandboxes and processes on the machine match the pods in the store.

Called by the manager every tick. New scheduled pods get sandboxes in one batch; deleted pods
have theirs torn down in one batch; every container process is polled and restarted according
to the pod's restartPolicy with a back-off (immediately the first time, then 1 s doubling up to
30 s: Kubernetes' 10 s..5 min scaled down to suit an emulator).
"""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from emulator.cluster import controllers
from emulator.cluster.store import ClusterState, ContainerStatus, Record
from emulator.model import images, podfiles
from emulator.runtime import sandbox
from emulator.runtime.probes import Probes
from emulator.runtime.ovs import Datapath
from emulator.runtime.records import Records

BACKOFF_MAX = 30.0


def kill_leftovers(pgid: int) -> None:
    """A container's main process died: its children (nginx workers) go too, as a cgroup
    kill would do. The process group is ours: we made it with start_new_session."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def backoff(restarts: int) -> float:
    return 0.0 if restarts == 0 else min(BACKOFF_MAX, 2.0 ** (restarts - 1))


@dataclass
class Kubelet:
    state: ClusterState
    records: Records
    datapath: Datapath
    base: Path
    boxes: dict[str, sandbox.Sandbox] = field(default_factory=dict)  # pod key -> sandbox
    probes: Probes = field(default_factory=lambda: Probes())

    def __post_init__(self) -> None:
        self.probes.pause_of = lambda key: self.boxes[key].pause_pid if key in self.boxes else None
        self.probes.workdir_of = self._workdir

    def tick(self) -> bool:
        """One sync pass; returns True if anything changed."""
        changed = self._stop_deleted()
        changed |= self._start_new()
        changed |= self._watch_containers()
        changed |= self._apply_probes()
        return changed

    def _workdir(self, pod_key: str, name: str) -> str | None:
        rec = self.state.get("Pod", *pod_key.split("/", 1))
        box = self.boxes.get(pod_key)
        container = next((c for c in rec.obj.spec.containers if c.name == name), None) if rec else None
        if container is None or box is None:
            return None
        return container.working_dir or str(box.directory / name)

    def _apply_probes(self) -> bool:
        changes = self.probes.tick()
        for pod_key, name, kind, passing in changes:
            rec = self.state.get("Pod", *pod_key.split("/", 1))
            status = rec.status.containers.get(name) if rec else None
            if status is None or status.state != "running":
                continue
            if kind == "readiness":
                status.ready = passing
            elif not passing:  # liveness failed: kill; the watch loop restarts it
                kill_leftovers(status.pid)
        return bool(changes)

    def _spec(self, rec: Record) -> sandbox.SandboxSpec:
        pod, status = rec.obj, rec.status
        node = self.state.config.node(status.node)
        hostname = podfiles.hostname_of(pod)
        cfg = self.state.config
        return sandbox.SandboxSpec(pod.meta.namespace, pod.meta.name, node.index, status.ip,
                                   node.pod_cidr, node.gateway_ip, hostname,
                                   podfiles.hosts_file(hostname, status.ip),
                                   podfiles.resolv_conf(pod, cfg.services.dns_ip, cfg.cluster_domain,
                                                        cfg.upstream_dns))

    def _start_new(self) -> bool:
        todo = [r for r in self.state.pods() if r.status.node and not r.deleting
                and r.obj.key not in self.boxes and r.status.phase == "Pending"]
        if not todo:
            return False
        boxes = sandbox.create([self._spec(r) for r in todo], self.state.config, self.records,
                               self.datapath, self.base)
        for rec, box in zip(todo, boxes):
            self.boxes[rec.obj.key] = box
            rec.status.start_time = time.time()
            for c in rec.obj.spec.containers:
                rec.status.containers[c.name] = ContainerStatus(c.name)
                self._start_container(rec, box, c.name)
            rec.status.phase = "Running"
        return True

    def _start_container(self, rec: Record, box: sandbox.Sandbox, name: str) -> None:
        pod = rec.obj
        container = next(c for c in pod.spec.containers if c.name == name)
        node = self.state.config.node(rec.status.node)
        cdir = box.directory / name
        cdir.mkdir(exist_ok=True)
        env = podfiles.container_env(pod, container, rec.status.ip, node.name, node.ip, str(cdir),
                                     self._service_env(rec))
        status = rec.status.containers[name]
        try:
            argv = images.argv_for(container, self.state.config.images, env, sandbox.python())
            proc = sandbox.start_container(box, name, argv, env, container.working_dir, self.records)
        except (images.UnknownImage, OSError) as exc:
            status.state, status.reason, status.exit_code = "waiting", "CreateContainerError", None
            rec.status.message = str(exc)
            status.next_start = time.time() + backoff(status.restart_count + 1)
            return
        status.state, status.reason, status.pid = "running", "", proc.pid
        status.started_at, status.exit_code = time.time(), None
        status.ready = self.probes.start(rec, name, proc.pid)

    def _service_env(self, rec: Record) -> dict[str, str]:
        """Variables for the Services of the pod's namespace (and ``kubernetes``) that existed
        when the pod was created, as kubelet injects them."""
        pod = rec.obj
        if pod.spec.raw.get("enableServiceLinks") is False:
            candidates = [s for s in self.state.list("Service", "default") if s.obj.meta.name == "kubernetes"]
        else:
            candidates = self.state.list("Service", pod.meta.namespace) + [
                s for s in self.state.list("Service", "default")
                if s.obj.meta.name == "kubernetes" and pod.meta.namespace != "default"]
        entries = []
        for svc in candidates:
            alloc = self.state.alloc.by_service.get(svc.obj.key)
            if svc.created <= rec.created and alloc and alloc.cluster_ip:
                entries.append((svc.obj.meta.name, alloc.cluster_ip,
                                [(p.name, p.protocol, p.port) for p in svc.obj.ports]))
        return podfiles.service_env(entries)

    def _watch_containers(self) -> bool:
        changed = False
        now = time.time()
        for key, box in self.boxes.items():
            rec = self.state.get("Pod", *key.split("/", 1))
            if rec is None or rec.deleting:
                continue
            for name, status in rec.status.containers.items():
                proc = box.containers.get(name)
                if status.state == "running" and proc is not None and proc.poll() is not None:
                    kill_leftovers(proc.pid)
                    self.probes.forget(key, name)
                    status.ready = False
                    status.state, status.exit_code = "terminated", proc.returncode
                    status.reason = "Completed" if proc.returncode == 0 else "Error"
                    status.next_start = now + backoff(status.restart_count)
                    self.records.discard("processes", *[p for p in self.records.items("processes")
                                                        if p[0] == proc.pid])
                    changed = True
                if status.state != "running" and now >= status.next_start and self._should_restart(rec, status):
                    if status.state == "terminated":
                        status.restart_count += 1
                    self._start_container(rec, box, name)
                    changed = True
                elif status.state == "terminated" and self._should_restart(rec, status):
                    status.reason = "CrashLoopBackOff" if status.next_start > now else status.reason
            self._update_phase(rec)
        return changed

    @staticmethod
    def _should_restart(rec: Record, status: ContainerStatus) -> bool:
        policy = rec.obj.spec.restart_policy
        if status.state == "waiting":
            return True
        return policy == "Always" or (policy == "OnFailure" and status.exit_code != 0)

    def _update_phase(self, rec: Record) -> None:
        states = list(rec.status.containers.values())
        if states and all(s.state == "terminated" for s in states) and not any(
                self._should_restart(rec, s) for s in states):
            rec.status.phase = "Succeeded" if all(s.exit_code == 0 for s in states) else "Failed"

    def _stop_deleted(self) -> bool:
        for rec in [r for r in self.state.pods() if r.deleting and r.obj.key not in self.boxes]:
            controllers.forget_pod(self.state, rec)  # deleted before it got a sandbox
        gone = [k for k in self.boxes
                if (r := self.state.get("Pod", *k.split("/", 1))) is None or r.deleting]
        if not gone:
            return False
        for key in gone:
            self.probes.forget(key)
        sandbox.destroy([self.boxes[k] for k in gone], self.records)
        for key in gone:
            del self.boxes[key]
            rec = self.state.get("Pod", *key.split("/", 1))
            if rec is not None:
                controllers.forget_pod(self.state, rec)
        return True

    def shutdown(self) -> None:
        for key in list(self.boxes):
            self.probes.forget(key)
        sandbox.destroy(list(self.boxes.values()), self.records)
        self.boxes.clear()
