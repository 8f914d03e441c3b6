"""The manager: the long-lived process that holds one cluster.

``k8semu up`` starts it (``python -m emulator.runtime.manager SPEC``) in its own session. It
builds the fabric, starts the controller, applies the manifests and then loops: run the
kubelet, publish the network view when it changes, answer the CLI. SIGTERM or a ``down``
request tears everything down from the records and exits. Startup failures are written to
``error.txt`` for the CLI to show, and whatever was made is removed.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

from emulator.cluster import addons, controllers, dnsview, render
from emulator.cluster.store import ClusterState
from emulator.model.corefile import DEFAULT_COREFILE
from emulator.errors import K8semuError, NotFoundError, RuntimeFailure
from emulator.model.cluster import ClusterConfig
from emulator.cluster.dataplane import network_view
from emulator.runtime import api, cleanup, ovs
from emulator.runtime.fabric import Fabric
from emulator.runtime.kubelet import Kubelet
from emulator.runtime.nodeagent import NodeAgent
from emulator.runtime.proc import start_time, stop_all
from emulator.runtime.records import Records, run_dir

TICK = 0.05


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Manager:
    def __init__(self, config: ClusterConfig, run: Path) -> None:
        self.config, self.run = config, run
        self.records = Records.create(run, config.name)
        self.records.add("processes", [os.getpid(), start_time(os.getpid()), "manager"])
        self.state = ClusterState(config)
        self.lock = threading.RLock()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.phase = "starting"
        self.published = -1
        self.last_view = None
        self.kubelet: Kubelet | None = None
        self.agent = NodeAgent(config)

    # -- start-up -----------------------------------------------------------------------
    def start(self) -> None:
        datapath = ovs.ensure_running()
        self.port = free_port()
        Fabric(self.config, self.records, datapath, self.port).build()
        self._publish(force=True)
        self.start_controller()
        self.wait_synced(30)
        self.kubelet = Kubelet(self.state, self.records, datapath, self.run)
        corefile, snapshot = self.write_dns_config()
        with self.lock:
            controllers.apply(self.state, addons.cluster_dns(self.config, str(corefile), str(snapshot)))
            controllers.apply(self.state, addons.ingress_nginx(self.config, str(snapshot)))
            controllers.apply(self.state, list(self.config.manifests))
        self.phase = "running"

    def start_controller(self) -> None:
        log = open(self.run / "controller.log", "ab")
        ctl = subprocess.Popen(
            [sys.executable, "-m", "emulator.controller", "--view", str(self.run / "view.json"),
             "--status", str(self.run / "controller.json"), "--port", str(self.port)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.records.add("processes", [ctl.pid, start_time(ctl.pid), "controller"])

    def stop_controller(self) -> str:
        """A fault for scenarios: the switches keep their flows (fail_mode=secure) meanwhile."""
        entries = [p for p in self.records.items("processes") if p[2] == "controller"]
        stop_all([(p[0], p[1]) for p in entries])
        self.records.discard("processes", *entries)
        (self.run / "controller.json").unlink(missing_ok=True)
        return f"controller stopped (pid {', '.join(str(p[0]) for p in entries)})"

    def write_dns_config(self) -> tuple[Path, Path]:
        """The Corefile (a ConfigMap on a real cluster) and the first cluster snapshot."""
        directory = self.run / "dns"
        directory.mkdir(exist_ok=True)
        corefile = directory / "Corefile"
        text = self.config.dns.corefile or DEFAULT_COREFILE.replace("cluster.local", self.config.cluster_domain)
        corefile.write_text(text)
        self.dns_snapshot = None
        self._publish_dns()
        return corefile, directory / "cluster.json"

    def _publish_dns(self) -> None:
        snap = dnsview.snapshot(self.state)
        if snap != self.dns_snapshot:
            tmp = self.run / "dns" / "cluster.tmp"
            tmp.write_text(json.dumps(snap))
            tmp.replace(self.run / "dns" / "cluster.json")
            self.dns_snapshot = snap

    def synced(self) -> bool:
        try:
            status = json.loads((self.run / "controller.json").read_text())
        except (OSError, ValueError):
            return False
        got = status.get("synced", {})
        return all(got.get(str(n.dpid), -1) >= self.published for n in self.config.nodes)

    def wait_synced(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.synced():
            if time.monotonic() > deadline:
                raise RuntimeFailure(f"switches did not connect to the controller within "
                                     f"{timeout}s (see {self.run / 'controller.log'})")
            time.sleep(0.01)

    def _publish(self, force: bool = False) -> None:
        """Write the network view when what it says has changed (and bump its generation)."""
        view = network_view(self.state, generation=0)
        if not force and view == self.last_view:
            return
        self.last_view = view
        self.state.generation += 1
        view = replace(view, generation=self.state.generation)  # computed once, then stamped
        tmp = self.run / "view.tmp"
        tmp.write_text(view.to_json())
        tmp.replace(self.run / "view.json")
        self.published = view.generation
        self.agent.sync(view)

    # -- main loop ------------------------------------------------------------------------
    def serve(self) -> None:
        listener = api.make_listener(self.run)
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        (self.run / "ready").write_text(str(os.getpid()))
        while not self.stopping.is_set():
            with self.lock:
                self._publish()  # flows first, so a new pod's port is programmed when it starts
                self.kubelet.tick()
                controllers.reconcile_endpoints(self.state)
                if self.agent.check_health():
                    self.agent.sync(network_view(self.state))
                self._publish()
                self._publish_dns()
            self.wake.wait(TICK)
            self.wake.clear()
        listener.close()

    def _accept(self, listener) -> None:
        while not self.stopping.is_set():
            try:
                conn = listener.accept()
            except (OSError, EOFError):
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn) -> None:
        with conn:
            try:
                request = conn.recv()
                conn.send({"result": self.dispatch(request)})
            except K8semuError as exc:
                conn.send({"error": exc})
            except Exception as exc:  # a bug: report it to the CLI rather than hang it
                conn.send({"error": K8semuError(f"manager error: {exc!r}\n{traceback.format_exc()}")})

    def dispatch(self, req: dict) -> Any:
        op = req["op"]
        if op == "down":
            self.stopping.set()
            self.wake.set()
            return "stopping"
        with self.lock:
            result = self._dispatch_locked(op, req)
            if op in ("apply", "delete", "scale"):
                self._publish()  # the view (and its generation) include the change when we answer
        self.wake.set()
        return result

    def _dispatch_locked(self, op: str, req: dict) -> Any:
        st = self.state
        if op == "status":
            pods = st.pods()
            return {"cluster": self.config.name, "phase": self.phase, "pid": os.getpid(),
                    "nodes": [n.name for n in self.config.nodes], "pods": len(pods),
                    "external_hosts": [h.name for h in self.config.external_hosts],
                    "running": sum(1 for p in pods if p.status.phase == "Running" and p.status.ready),
                    "generation": st.generation, "synced": self.synced(),
                    "file": self.config.file, "run": str(self.run)}
        if op == "controller_stop":
            return self.stop_controller()
        if op == "controller_start":
            self.start_controller()
            self.last_view = None  # republish, so the new controller has a fresh generation to confirm
            self._publish()
            self.wait_synced(30)
            return "controller started; every switch reconnected and in sync"
        if op == "get":
            return render.objects(st, req["kind"], req.get("namespace"), self.agent.ready)
        if op == "apply":
            return controllers.apply(st, req["objects"])
        if op == "delete":
            return controllers.delete(st, req["kind"], req["namespace"], req["name"])
        if op == "scale":
            return controllers.scale(st, req["kind"], req["namespace"], req["name"], req["replicas"])
        if op == "pod":
            rec = st.find_pod(req["name"], req.get("namespace"))
            box = self.kubelet.boxes.get(rec.obj.key) if rec else None
            if rec is None or box is None:
                raise NotFoundError(f'pods "{req["name"]}" not found' if rec is None else
                                    f'pod {req["name"]} has no sandbox yet (phase {rec.status.phase})')
            return {"namespace": rec.obj.meta.namespace, "name": rec.obj.meta.name,
                    "pause_pid": box.pause_pid, "dir": str(box.directory),
                    "containers": [c.name for c in rec.obj.spec.containers],
                    "workdirs": {c.name: c.working_dir or str(box.directory / c.name) for c in rec.obj.spec.containers},
                    "pids": {n: p.pid for n, p in box.containers.items() if p.poll() is None}}
        raise K8semuError(f"unknown request {op!r}")

    def shutdown(self) -> None:
        if self.kubelet:
            self.kubelet.shutdown()
        cleanup.teardown(self.records)


def main(argv: list[str]) -> int:
    from emulator.spec.cluster import load_cluster
    run = run_dir()
    run.mkdir(parents=True, exist_ok=True)
    manager = None
    try:
        config = load_cluster(argv[0])
        manager = Manager(config, run)
        signal.signal(signal.SIGTERM, lambda *_: (manager.stopping.set(), manager.wake.set()))
        signal.signal(signal.SIGINT, lambda *_: (manager.stopping.set(), manager.wake.set()))
        manager.start()
        manager.serve()
    except BaseException as exc:  # noqa: B902 - always tear down, then report
        message = str(exc) if isinstance(exc, K8semuError) else traceback.format_exc()
        log = run / "controller.log"
        if log.exists() and "controller" in message:
            message += "\ncontroller.log (last lines):\n" + "\n".join(log.read_text().splitlines()[-15:])
        (run / "error.txt").write_text(message)
        if manager:
            manager.shutdown()
        end_own_children()
        return 1
    manager.shutdown()
    end_own_children()
    shutil.rmtree(run, ignore_errors=True)  # everything it made is gone; so is the record
    return 0


def end_own_children() -> None:
    """Short-lived helpers still running (a probe's curl, an arping) are in our process group,
    which we lead: signal the group, ignoring the signal ourselves."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        os.killpg(os.getpgid(0), signal.SIGTERM)
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
