"""The manager: the long-lived process that holds one cluster.

``k8semu up`` starts it (``python -m emulator.api CLUSTER-DIR SPEC [BASE]``, which runs
``lifetime.main`` with the API server) in its own session, after allocating the cluster's slot
and writing its records. It checks the
machine, builds the fabric, starts and supervises its helpers (the SDN controller, the shim
that makes pods, external DNS servers), applies the manifests and then loops: run the kubelet,
publish the network view when it changes; its answers to requests (``runtime/requests.py``)
reach every client through the API server. SIGTERM or a ``down`` request tears
everything down from the records and exits. Startup failures are written to ``error.txt`` for
the CLI to show, and whatever was made is removed.

No single object can stop it: requests that fail raise errors for their caller only, and a pod,
policy or Ingress that cannot be realised is reported on that object (status and Events).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, Callable

from emulator.cluster import addons, controllers, cronjobs, deploystatus, dnsview, jobs, nodedaemons, nodelifecycle
from emulator.cluster.dataplane import network_view
from emulator.cluster.store import ClusterState
from emulator.errors import RuntimeFailure
from emulator.ingress import options as ingress_options
from emulator.model import corefile, naming
from emulator.model.cluster import ClusterConfig
from emulator.model.corefile import hosts_corefile
from emulator.pipeline.build import describe_cookie
from emulator.pipeline.cookie import Category, split
from emulator.runtime import caliconet, cleanup, fabric, flannelnet, impair, ovs
from emulator.runtime.cni import Plugins
from emulator.runtime.cgroups import Cgroups
from emulator.runtime.components import ComponentFaults
from emulator.runtime.confirm import Confirmation
from emulator.runtime.gcpacing import Collector
from emulator.runtime.kubelet import Kubelet
from emulator.runtime.nodeagent import NodeAgent
from emulator.runtime.impair import Faults
from emulator.runtime.pacing import ExitWatch, Pacer
from emulator.runtime.proxier import Proxier
from emulator.runtime.proc import start_time
from emulator.runtime.records import SOCKET_PATH_MAX, Records
from emulator.runtime.requests import Requests
from emulator.runtime.sandbox import SandboxRuntime
from emulator.runtime.shimclient import Shim
from emulator.runtime.supervisor import Supervisor

TICK = 0.05
IDLE_TICK = 0.2
ACTIVE_WINDOW = 2.0  # seconds after the last change during which ticks stay quick


class Manager(Requests, ComponentFaults, Confirmation):
    def __init__(self, config: ClusterConfig, records: Records) -> None:
        self.config, self.records = config, records
        self.run = records.path.parent
        self.records.add("processes", [os.getpid(), start_time(os.getpid()), "manager"])
        self.state = ClusterState(config, scope=records.scope)
        self.lock = threading.RLock()
        self.status_lock = threading.Lock()  # the controller's status cache (read by requests without the lock)
        self.wake = threading.Event()
        # called with the lock held after each pass (with whether it changed anything) and after
        # each change a request made (True): the API's watches see changes without a second lock
        self.observers: list[Callable[[bool], None]] = []
        self.told: int | None = None  # Events recorded when this pass told the observers (None: not yet)
        self.stopping = threading.Event()
        self.phase = "starting"
        self.published = -1
        self.last_view = None
        self.pod_generation: dict[str, int] = {}  # pod key -> first view generation holding it
        self.snapshots: dict[str, tuple[Any, int]] = {}  # shared file -> (content, generation)
        self.corefile_text: str | None = None  # the coredns ConfigMap's Corefile last projected
        self.ingress_config: dict[str, str] = {}  # the ingress-nginx controller ConfigMap's data last published
        self.kubelet: Kubelet | None = None
        self.proxier: Proxier | None = None  # kube-proxy's rules on every node (kernel planes; openflow with kubeProxy)
        self.cni: Plugins | None = None  # cni: flannel: the conflist's plugins
        self.shim: Shim | None = None
        self.agent = NodeAgent(config, records.scope)
        self.supervisor = Supervisor(records, self._helper_report)
        self.faults, self.fault_pods = Faults(config, records.scope), {}  # issue #16: impair, partition, heal
        self._components_init()  # issue #16: k8semu fault kill|stop|start
        self.controller_status: dict = {}
        self.controller_seen: tuple = ()
        self.reported: set = set()  # the controller's problems already turned into Events
        self.generations: dict[str, int] = {}
        self.started = time.monotonic()
        self.switches_warned = False
        self.last_change = time.monotonic()
        self.pacer = Pacer(TICK, IDLE_TICK)
        self.collector = Collector()  # short garbage-collector pauses (runtime/gcpacing.py)

    # -- start-up -----------------------------------------------------------------------
    def start(self) -> None:
        """Bring the cluster up. What takes time runs side by side: the controller (os-ken
        takes the longest to import) starts first, Open vSwitch's daemons start on a thread,
        and both get ready while the nodes and links are made; the bridges are created once
        OVS answers and the controller listens (a switch that finds no controller retries only
        a second later); pods start on the first ticks, while the switches are still receiving
        their flows (their containers wait for them)."""
        started = time.monotonic()
        fabric.preflight(self.config)
        for sub in ("shared/dns", "shared/ingress", "pods", "attach"):
            (self.run / sub).mkdir(parents=True, exist_ok=True)
        if self.config.kernel_dataplane:
            datapath = self._build_kernel_plane()
        else:
            datapath = self._build_openflow_plane()
        built = time.monotonic()
        self.agent.sync(self.last_view)
        impair.apply_spec(self.faults)  # spec.impairments, before any pod: a lab starts impaired
        runtime = SandboxRuntime(self.config, self.records, self.run, self.shim, self.cgroups, datapath.tx_offload_off,
                                 self.cni)
        self.kubelet = Kubelet(self.state, runtime, self._dataplane_ready, unlocked=self._unlocked, started=self._tell)
        self.kubelet.probes.watch = ExitWatch(self.wake.set, self.pacer.not_before).watch
        for ext in self.config.external_hosts:
            if ext.dns_server:
                self.supervisor.add(f"dns {ext.name}", self._external_dns(ext))
        self._publish_snapshots()
        with self.lock:
            self.state.static_pods = True  # kubeadm's control-plane pods, kept by the reconcile loop
            controllers.apply(self.state, addons.cluster_dns(self.config))
            controllers.apply(self.state, addons.ingress_nginx(self.config))
            controllers.apply(self.state, nodedaemons.node_daemons(self.config))
            controllers.apply(self.state, list(self.config.manifests))
            self._sync_corefile()
        self.phase = "running"
        print(f"[INFO] started in {time.monotonic() - started:.2f}s (fabric {built - self.started:.2f}s); "
              "pods follow", flush=True)

    def _build_openflow_plane(self) -> ovs.Datapath:
        """The controller (os-ken takes the longest to import) starts first, Open vSwitch's
        daemons on a thread, and both get ready while the nodes and links are made. With
        ``kubeProxy.mode`` kube-proxy's rules are loaded beside it by the proxier's thread (a
        node's generation is then the older of its switch's and its kube-proxy's)."""
        socket_path = ovs.controller_socket(self.config.name)
        if len(str(socket_path)) > SOCKET_PATH_MAX:
            raise RuntimeFailure(f"{socket_path} is longer than a Unix socket path may be")
        if os.path.lexists(socket_path):
            raise RuntimeFailure(f"{socket_path} exists and is not k8semu's (cluster {self.config.name!r} did not "
                                 "create it); nothing of it was changed")
        self.records.add("files", str(socket_path))
        self.ofp_socket = socket_path
        self._publish(force=True)
        ovs.ensure_run_dir()
        self.supervisor.add("controller", self._launch_controller)
        self.started = time.monotonic()
        with ThreadPoolExecutor(1, thread_name_prefix="ovs") as pool:
            ovs_started = pool.submit(ovs.ensure_running, self.config.name)
            self._start_runtime()

            def switches_can_connect() -> ovs.Datapath:
                datapath = ovs_started.result()
                self._controller_listening()
                return datapath
            datapath = fabric.Fabric(self.config, self.records, f"unix:{socket_path}").build(switches_can_connect)
        if self.config.kube_proxy:
            self.proxier = Proxier(self.config, self.records.scope, self.wake.set)
            self.proxier.start()
            self._publish(force=True)
        return datapath

    def _build_kernel_plane(self) -> ovs.Datapath:
        """``cni: flannel`` or ``calico``: no switch and no controller. The nodes with Flannel's
        or Calico's plumbing, the CNI plugins for pods, kube-proxy's rules loaded by the
        proxier's thread (and, calico, BIRD's routes confirmed by it)."""
        self.started = time.monotonic()
        self._start_runtime()
        datapath = fabric.Fabric(self.config, self.records, "").build(lambda: ovs.Datapath("none", False))
        routing = None
        if self.config.cni == "calico":  # BIRD on every node, its routes part of each node's generation
            self.cni = caliconet.plugins(self.config, self.run)
            routing = caliconet.Routing(self.config, self.records.scope, self.run, self.supervisor, self.wake.set)
            routing.start(network_view(self.state).bgp)  # BIRD starts with its sessions
        else:
            self.cni = flannelnet.plugins(self.config, self.run)
        self.cni.check_installed()
        self.proxier = Proxier(self.config, self.records.scope, self.wake.set, routing=routing)
        self.proxier.start()
        self._publish(force=True)
        return datapath

    def _start_runtime(self) -> None:
        self.cgroups = Cgroups(self.config.name, on_make=lambda path: self.records.add("cgroups", path, save=False))
        self.cgroups.setup()
        self._start_shim()

    def _controller_listening(self, timeout: float = 30) -> None:
        """Wait until the controller listens on its socket (the switches connect at once then).

        Raises:
            RuntimeFailure: it did not within ``timeout`` seconds (its log says why).
        """
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.ofp_socket):
            if time.monotonic() > deadline:
                raise RuntimeFailure(f"the controller did not listen within {timeout}s "
                                     f"(see {self.run / 'controller.log'})")
            self.supervisor.check()
            time.sleep(0.01)

    def _start_shim(self) -> None:
        self.shim = Shim(str(self.run / "shim.log"), on_exit=self.wake.set)
        self.records.add("processes", [self.shim.pid, start_time(self.shim.pid), "shim"])

    def _launch_controller(self) -> subprocess.Popen:
        with open(self.run / "controller.log", "ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "emulator.controller", "--view", str(self.run / "view.json"),
                 "--status", str(self.run / "controller.json"), "--socket", str(self.ofp_socket)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def _external_dns(self, ext):
        """An upstream DNS server outside the cluster: k8semu's server, authoritative for the
        names the spec gives it (NXDOMAIN for anything else), logging every query."""
        corefile = self.run / f"{ext.name}.Corefile"
        corefile.write_text(hosts_corefile(list(ext.dns_records)))
        netns = naming.node_netns(self.records.scope, ext.name)

        def launch() -> subprocess.Popen:
            with open(self.run / f"{ext.name}.dns.log", "ab") as log:
                return subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-m", "emulator.dns.server",
                                         "-conf", str(corefile)], stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        return launch

    def _helper_report(self, name: str, message: str) -> None:
        self.state.events.warn("Component", "kube-system", name.replace(" ", "-"), "BackOff", message, "k8semu-manager")
        print(f"[WARN] {message}", flush=True)

    def _publish(self, force: bool = False) -> bool:
        """Write the network view when what it says has changed (and bump its generation);
        True if it had."""
        view = network_view(self.state, generation=0)
        if not force and view == self.last_view:
            return False
        self.last_view = view
        self.state.generation += 1
        view = replace(view, generation=self.state.generation)  # computed once, then stamped
        tmp = self.run / "view.tmp"
        tmp.write_text(view.to_json())
        tmp.replace(self.run / "view.json")
        self.published = view.generation
        live = set()
        for pod in view.pods:
            key = f"{pod.namespace}/{pod.name}"
            live.add(key)
            self.pod_generation.setdefault(key, view.generation)
        for key in [k for k in self.pod_generation if k not in live]:
            del self.pod_generation[key]
        if self.kubelet is not None:  # the nodes exist
            self.agent.sync(view)
        if self.proxier is not None:
            self.proxier.update(view)
        return True

    def _write_shared(self, name: str, content: dict) -> None:
        old = self.snapshots.get(name)
        if old and old[0] == content:
            return
        generation = (old[1] if old else 0) + 1
        self.snapshots[name] = (content, generation)
        tmp = self.run / "shared" / name / "cluster.tmp"
        tmp.write_text(json.dumps({**content, "generation": generation}))
        tmp.replace(self.run / "shared" / name / "cluster.json")

    def _publish_snapshots(self) -> None:
        snap = dnsview.snapshot(self.state)
        self._write_shared("dns", {k: v for k, v in snap.items() if k != "ingresses"})
        config = self.state.get("ConfigMap", ingress_options.NAMESPACE, ingress_options.NAME)
        data = dict(config.obj.data) if config is not None else {}
        if data != self.ingress_config:  # what the controller will log, as Events on the ConfigMap too
            self.ingress_config = data
            for problem in ingress_options.parse(data).problems:
                self.state.events.warn("ConfigMap", ingress_options.NAMESPACE, ingress_options.NAME, "InvalidKey",
                                       problem, "ingress-nginx-controller")
        self._write_shared("ingress", {"services": snap["services"], "ingresses": snap["ingresses"],
                                       "controller_config": data})

    def _sync_corefile(self) -> None:
        """The coredns ConfigMap's Corefile, as the kubelet projects it into the coredns pods
        (whose ``reload`` plugin picks it up, or keeps the running one if it does not load). What
        is written is the parsed Corefile written back (corefile.render), never the ConfigMap's
        text; one that does not parse is not written: a Warning Event on the ConfigMap says why,
        and the pods keep the Corefile they run. A ConfigMap deleted leaves the last one in place."""
        rec = self.state.get("ConfigMap", "kube-system", addons.COREDNS_CONFIGMAP)
        text = rec.obj.data.get("Corefile") if rec is not None else None
        if text is None or text == self.corefile_text:
            return
        self.corefile_text = text
        try:
            rendered = corefile.render(corefile.parse(text, "Corefile"))
        except corefile.CorefileError as exc:
            self.state.events.warn("ConfigMap", "kube-system", addons.COREDNS_CONFIGMAP, "InvalidCorefile",
                                   f"{exc}; the coredns pods keep the Corefile they run", "k8semu-manager")
            return
        tmp = self.run / "shared" / "dns" / "Corefile.tmp"
        tmp.write_text(rendered)
        tmp.replace(self.run / "shared" / "dns" / "Corefile")

    def _report_problems(self) -> None:
        """Flows the controller refused become Warning events on the objects that own them."""
        view = self.last_view
        current = {(cookie, message) for problems in self.controller_status.get("problems", {}).values()
                   for cookie, message in problems}
        new, self.reported = current - self.reported, current  # each once, not once per tick
        for cookie, message in sorted(new):
            category, object_id = split(cookie)
            owner = describe_cookie(view, cookie) if view else "?"
            if category == Category.POLICY and view:
                rule = next((r for r in view.policies.rules if r.id == object_id), None)
                if rule:
                    ns, _, name = rule.owner.split(" ")[0].partition("/")
                    self.state.events.warn("NetworkPolicy", ns, name, "FailedToProgram", message, "k8semu-controller")
                    continue
            self.state.events.warn("Component", "kube-system", "k8semu-controller", "FailedToProgram",
                                   f"{owner}: {message}", "k8semu-controller")

    # -- main loop ------------------------------------------------------------------------
    def serve(self) -> None:
        (self.run / "ready").write_text(str(os.getpid()))
        while not self.stopping.is_set():
            with self.lock:
                self.pacer.begin()
                changed = True
                self.told = None
                try:
                    changed = self._tick()
                except Exception:  # a bug: say so (log and an Event), keep the cluster serving
                    text = traceback.format_exc()
                    print(f"[ERROR] manager tick failed:\n{text}", flush=True)
                    self.state.events.warn("Component", "kube-system", "k8semu-manager", "InternalError",
                                           text.strip().splitlines()[-1], "k8semu-manager")
                # told mid-pass (below): again only for what came after (an Event, say)
                late = self.told is None or self.told != self.state.events.recorded
                for observe in self.observers:
                    observe(changed and late)
                self.collector.after_pass()
                self.pacer.end()
            # quick ticks while things change, slower ones when all is still, sooner when a probe
            # is due (a request, a process exit, a probe's exit or the controller confirming a
            # view wakes the loop at once)
            quiet = time.monotonic() - self.last_change > ACTIVE_WINDOW
            self.wake.wait(self.pacer.timeout(quiet, self.kubelet.probes.next_due() if self.kubelet else None))
            self.wake.clear()

    def _tell(self) -> None:
        """The watches hear now of what changed so far in this pass (a container started)."""
        for observe in self.observers:
            observe(True)
        self.told = self.state.events.recorded

    def _tick(self) -> bool:
        # every change made between ticks (API requests) is published by its request: the view
        # that the kubelet acts on below is current
        self._supervise()
        changed = self.kubelet.tick()
        # a pod started, ended or changed readiness (a rollout's next step, the endpoints), or a
        # CronJob's time, a Job's deadline or time to live has come
        now = time.time()
        if changed or cronjobs.due(self.state, now) or jobs.due(self.state, now) or deploystatus.due(self.state, now) \
                or nodelifecycle.due(self.state, now) == 0:
            controllers.reconcile(self.state)
        else:
            controllers.reconcile_endpoints(self.state)
        if changed:  # the watches hear of what the kubelet and the controllers did before the
            # network view of every pod is built and published (tens of ms on 1,000 pods)
            self._tell()
        if self.agent.check_health():
            changed = True
            self.agent.sync(network_view(self.state))
        changed |= self._publish()
        if changed:
            self.last_change = time.monotonic()
        if self.agent.stale:
            self.agent.flush_stale(self.switch_generations())
        self._publish_snapshots()
        self._sync_corefile()
        self._report_problems()
        self._check_switches()
        return changed

    def _supervise(self) -> None:
        for name in self.supervisor.check():
            if name == "controller":
                self.last_view = None  # republish: the new controller confirms a fresh generation
        if self.shim is not None and not self.shim.alive():
            self._helper_report("shim", f"the pod runtime (shim, pid {self.shim.pid}) died; restarting it "
                                        "and the containers it had started")
            self.records.discard("processes", *[p for p in self.records.items("processes") if p[0] == self.shim.pid])
            self._start_shim()
            self.kubelet.runtime.shim = self.shim
            self.kubelet.shim_restarted()

    def shutdown(self) -> list[str]:
        started = time.monotonic()
        for node in list(self.state.stopped):  # a stopped node's frozen pods end as fast as the others
            self.signal_node_pods(node, signal.SIGCONT)
        self.thaw_components()
        if self.kubelet:
            self.kubelet.shutdown()
        if self.proxier is not None:
            self.proxier.stop()
        pods = time.monotonic()
        self.supervisor.stop_all()
        self.agent.health.close()
        if self.shim:
            self.shim.close()
        helpers = time.monotonic()
        notes = cleanup.teardown(self.records)
        print(f"[INFO] teardown: pods {pods - started:.2f}s, helpers {helpers - pods:.2f}s, "
              f"fabric and Open vSwitch {time.monotonic() - helpers:.2f}s", flush=True)
        return notes
