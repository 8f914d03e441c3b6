"""What the manager answers: one typed method per request, called by the API server's handlers
(the Kubernetes resources and k8semu's own endpoints, ``emulator/api/ops.py``) on their worker
threads. Every client (kubectl, the k8semu verbs, the shell, the scenario runner, tests and
benchmarks) reaches these through that one API.

A method that changes objects holds the manager's lock, publishes the network view before it
returns (the generation it reports includes the change) and wakes the loop; reads hold the lock
without waking it (pollers would spin it); ``generations`` and ``down`` take no lock at all, so
a poller never waits behind a pass over every pod.
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from emulator.cluster import addons, controllers, nodes, policies, rbac, render
from emulator.errors import K8semuError, NotFoundError
from emulator.model import calicoipam, faults, naming, podfiles
from emulator.model.netview import NetworkView
from emulator.runtime import flannelnet, tracer, underlay
from emulator.runtime.impair import Link
from emulator.runtime.sandbox import capability_names


def _labelled(pods: list, labels: dict[str, str]) -> list:
    return [p for p in pods if all(p.obj.meta.labels.get(k) == v for k, v in labels.items())]


class Requests:
    """Mixed into ``Manager`` (whose state, lock and helpers it uses): its answers to requests."""

    # -- reads ----------------------------------------------------------------------------
    def status_report(self) -> dict:
        """The cluster at a glance (``k8semu status``, ``up`` waiting for readiness)."""
        with self.lock:
            st = self.state
            # a pod that ran to completion (a Job's) no longer runs: not counted as one to wait for
            completed = [p for p in st.pods() if p.status.phase in ("Succeeded", "Failed")]
            pods = [p for p in st.pods() if p.status.phase not in ("Succeeded", "Failed")]
            helpers = {h.name: {"pid": h.proc.pid if h.proc else None, "restarts": h.restarts, "held": h.held,
                                "running": bool(h.proc and h.proc.poll() is None)}
                       for h in self.supervisor.helpers.values()}
            hosts = underlay.host_names(self.config)  # nodes, external hosts, the underlay router (k8semu exec _router)
            return {"cluster": self.config.name, "phase": self.phase, "pid": os.getpid(),
                    "nodes": [n.name for n in self.config.nodes], "pods": len(pods), "completed": len(completed),
                    "control_plane": [n.name for n in self.config.nodes if n.role == "control-plane"],
                    "external_hosts": [h.name for h in self.config.external_hosts],
                    "running": sum(1 for p in pods if p.status.phase == "Running" and p.status.ready),
                    "generation": st.generation, "synced": self.synced(), "switches": self.switch_generations(),
                    "helpers": helpers, "file": self.config.file, "run": str(self.run),
                    "slot": self.records.scope.slot, "cni": self.config.cni, "kubeProxy": self.config.kube_proxy,
                    "node_roots": ({n.name: str(flannelnet.node_root(self.run, n.name)) for n in self.config.nodes}
                                   if self.config.kernel_dataplane else {}),
                    "netns": {n: naming.node_netns(self.records.scope, n) for n in hosts},
                    # cni: calico: what a node's kernel still lacks of the routes BIRD must give it
                    "stopped": [f["target"] for f in self.component_faults()],  # k8semu fault stop
                    "routes_behind": dict(self.proxier.routing.behind) if self.proxier and self.proxier.routing else {},
                    "bridges": {} if self.config.kernel_dataplane else
                    {n.name: naming.node_bridge(self.records.scope, n.index) for n in self.config.nodes},
                    # the add-ons ``up``'s progress names: [ready, total] pods of each
                    "addons": {name: [sum(1 for p in mine if p.status.ready), len(mine)]
                               for name, mine in (("dns", _labelled(pods, addons.DNS_LABELS)),
                                                  ("ingress", _labelled(pods, addons.INGRESS_LABELS)))}}

    def generation_report(self) -> dict:
        """{"published": the latest view's generation, "switches": {node: generation confirmed}},
        without the lock: answered at once, even while the manager is busy."""
        return {"published": self.published, "switches": self.switch_generations()}

    def ipam_report(self) -> dict:
        """cni: calico: the IP pools, their blocks with affinities and usage, borrowed addresses.

        Raises:
            NotFoundError: the cluster runs another CNI (its pods' addresses are per-node ranges).
        """
        with self.lock:
            if self.state.calico_ipam is None:
                raise NotFoundError(f"cluster {self.config.name} runs cni: {self.config.cni}: its pod addresses come "
                                    "from each node's podCIDR (kubectl get nodes -o wide), not from Calico's IPAM")
            return calicoipam.report(self.state.calico_ipam)

    def network_plugin(self) -> str:
        """The cluster's ``spec.network.cni``: which data plane's resources the API serves."""
        return self.config.cni

    def objects(self, kind: str, namespace: str | None = None, name: str | None = None) -> list[dict]:
        """Every object of ``kind`` (in ``namespace``, or all) as the API renders it; with
        ``name``, that one (or none)."""
        with self.lock:
            return render.objects(self.state, kind, namespace, self.agent.ready, name)

    def policy(self) -> rbac.Policy:
        """The RBAC bindings with their rules (cluster/rbac.py): read without the lock while no
        RBAC object changed, rebuilt under it after one did, so authorizing a request does not
        wait for a pass."""
        current = self.state.policy
        if current is None:
            with self.lock:
                if self.state.policy is None:
                    self.state.policy = rbac.policy_of(self.state)
                current = self.state.policy
        return current

    def service_account_uid(self, namespace: str, account: str) -> str:
        """The ServiceAccount's uid ("" when there is none), read without the lock as below."""
        rec = self.state.kinds.get("ServiceAccount", {}).get((namespace, account))
        return rec.uid if rec is not None else ""

    def token_holders_exist(self, namespace: str, account: str, account_uid: str, pod: str, pod_uid: str) -> bool:
        """The ServiceAccount a token names exists, and so does the pod it is bound to (the same
        ones, by uid: not a namesake made since), as kube-apiserver checks before accepting it.
        Read without the lock (one dict lookup each, atomic under the GIL), so authenticating
        never waits for a pass."""
        kinds = self.state.kinds
        if not account_uid or self.service_account_uid(namespace, account) != account_uid:
            return False
        if not pod:
            return True
        rec = kinds.get("Pod", {}).get((namespace, pod))
        return rec is not None and rec.uid == pod_uid

    def role_rules(self, kind: str, namespace: str, name: str) -> tuple | None:
        """The rules of a Role or ClusterRole (None: no such role), for the API's escalation check."""
        with self.lock:
            return rbac.role_rules(self.state, kind, namespace, name)

    def event_records(self, namespace: str | None = None) -> list[dict]:
        """The Events recorded (in ``namespace``, or all), with the uid of the object each is about."""
        with self.lock:
            st = self.state
            uids = {key: rec.uid for key, rec in st.records.items()}  # (kind, namespace, name) -> uid
            return [{**vars(e), "uid": uids.get((e.kind, e.namespace, e.name), "")} for e in st.events.all(namespace)]

    def pod_info(self, name: str, namespace: str | None = None) -> dict:
        """What ``exec``, ``logs``, ``attach``, ``port-forward`` and ``probe`` need to enter a pod
        as its containers do.

        Raises:
            NotFoundError: no such pod, or it has no sandbox yet.
        """
        with self.lock:
            rec = self.state.find_pod(name, namespace)
            box = self.kubelet.boxes.get(rec.obj.key) if rec and self.kubelet else None
            finished = self.kubelet.finished.get(rec.obj.key) if rec and self.kubelet and box is None else None
            if finished is not None:  # ran to completion: its logs remain, nothing runs
                return {"namespace": rec.obj.meta.namespace, "name": rec.obj.meta.name, "dir": str(finished),
                        "containers": [c.name for c in rec.obj.spec.containers], "finished": rec.status.phase}
            if rec is None or box is None:
                raise NotFoundError(f'pods "{name}" not found' if rec is None else
                                    f'pod {name} has no sandbox yet (phase {rec.status.phase})')
            runtime = self.kubelet.runtime
            containers = {}
            for c in rec.obj.spec.containers:
                _, inside = runtime.container_dir(box, c.name)
                pid = box.containers.get(c.name, (None, None))[0]
                sec, pod_sec = c.security, rec.obj.spec.security
                uid = sec.run_as_user if sec.run_as_user is not None else pod_sec.run_as_user
                gid = sec.run_as_group if sec.run_as_group is not None else pod_sec.run_as_group
                containers[c.name] = {"pid": pid, "workdir": c.working_dir or inside, "fallback": inside,
                                      "caps": capability_names(c, pod_sec), "uid": uid,
                                      "gid": gid if gid is not None else uid,
                                      "cgroups": runtime.cgroups.container(rec.uid, c.name, c.resources),
                                      "attach": runtime.attach_path(rec.uid, c.name) if c.attachable else None}
            return {"namespace": rec.obj.meta.namespace, "name": rec.obj.meta.name, "pause_pid": box.pause_pid,
                    "pause_start": box.pause_start, "netns": box.netns, "dir": str(box.directory),
                    "containers": [c.name for c in rec.obj.spec.containers], "details": containers,
                    "pids": {n: p for n, (p, _) in box.containers.items()}, "cni": box.cni_result}

    # -- changes --------------------------------------------------------------------------
    @contextmanager
    def _unlocked(self) -> Iterator[None]:
        """Let the lock go for slow work on the machine that reads nothing of the store (the
        kubelet making sandboxes), then take it back. Held more than once (a nested call), it
        stays held: slower, never wrong."""
        self.lock.release()
        try:
            yield
        finally:
            self.lock.acquire()

    @contextmanager
    def _changing(self) -> Iterator[None]:
        """Hold the lock for a change; afterwards tell the observers (the API's watches), then
        publish the view (the answer's generation includes the change) and wake the loop. The
        watches hear first, as kube-apiserver's watchers hear of a write once it is stored,
        before any node acts on it: publishing the network view of 1,000 pods takes longer
        than telling them."""
        with self.lock:
            yield
            for observe in self.observers:
                observe(True)
            self._publish()
            self.last_change = time.monotonic()
        self.wake.set()

    def set_root_ca(self, pem: str) -> None:
        """The API server's CA, which the controllers publish in every namespace as
        ``kube-root-ca.crt`` (set before the cluster starts)."""
        with self.lock:
            self.state.root_ca = pem

    def _change(self, do: Callable[[], Any]) -> Any:
        with self._changing():
            return do()

    def apply(self, objects: list) -> list[str]:
        """``kubectl apply`` of model objects; kubectl's lines. Raises: SpecError."""
        return self._change(lambda: controllers.apply(self.state, objects))

    def create(self, objects: list) -> list[str]:
        """Raises: AlreadyExistsError, SpecError."""
        return self._change(lambda: controllers.create(self.state, objects))

    def delete(self, kind: str, namespace: str, name: str, grace: int | None = None,
               propagation: str = "Background") -> str:
        """Raises: NotFoundError."""
        return self._change(lambda: controllers.delete(self.state, kind, namespace, name, grace, propagation))

    def scale(self, kind: str, namespace: str, name: str, replicas: int) -> str:
        """Raises: NotFoundError, SpecError."""
        return self._change(lambda: controllers.scale(self.state, kind, namespace, name, replicas))

    def cordon(self, node: str, unschedulable: bool) -> str:
        """Raises: NotFoundError."""
        def do() -> str:
            line = nodes.cordon(self.state, node, unschedulable)
            controllers.reconcile(self.state)  # uncordoned: pending pods may go there now
            return line
        return self._change(do)

    def node_metadata(self, node: str, labels: dict, annotations: dict) -> bool:
        """``kubectl label``/``annotate node``; whether anything changed. Raises: NotFoundError, SpecError."""
        def do() -> bool:
            system = render.system_annotations(self.state.config.node(node), self.state) \
                if node in {n.name for n in self.state.config.nodes} else {}
            changed = nodes.set_metadata(self.state, node, labels, annotations, system)
            controllers.reconcile(self.state)  # a DaemonSet or a pending pod may select the node now
            return changed
        return self._change(do)

    def evict(self, namespace: str, name: str) -> str:
        """The Eviction subresource. Raises: NotFoundError, TooManyRequestsError."""
        def do() -> str:
            line = nodes.evict_pod(self.state, namespace, name)
            controllers.reconcile(self.state)  # its controller makes a replacement now
            return line
        return self._change(do)

    def drain(self, node: str, force: bool, pod_selector: str = "", ignore_daemonsets: bool = False) -> dict:
        """One eviction pass (``Client.drain`` repeats it for what a budget holds back).

        Raises:
            K8semuError: as ``nodes.drain``.
        """
        def do() -> dict:
            done = nodes.drain(self.state, node, force, pod_selector, ignore_daemonsets)
            controllers.reconcile(self.state)  # the evicted pods' controllers make replacements now
            return done
        return self._change(do)

    # -- faults (issue #16) -------------------------------------------------------------------
    def _link(self, text: str, namespace: str) -> Link:
        """The link ``text`` names (``node/``, ``external/``, ``pod/`` or a bare host name).

        Raises:
            K8semuError: a malformed name; NotFoundError: no such host or pod sandbox.
        """
        try:
            ref = faults.parse_link(text, namespace)
        except ValueError as exc:
            raise K8semuError(str(exc)) from None
        if ref.kind != "pod":
            return self.faults.host_link(ref)
        rec = self.state.find_pod(ref.name, ref.namespace)
        box = self.kubelet.boxes.get(rec.obj.key) if rec and self.kubelet else None
        if rec is None or box is None:
            raise NotFoundError(f'pods "{ref.name}" not found in namespace {ref.namespace}' if rec is None else
                                f"pod {ref.name} has no sandbox yet (phase {rec.status.phase})")
        if rec.obj.spec.host_network:
            raise K8semuError(f"pod {ref.name} uses hostNetwork: its eth0 is node {rec.status.node}'s "
                              f"(k8semu impair node/{rec.status.node})")
        self.fault_pods[ref] = rec.uid
        return self.faults.pod_link(ref, box.netns, rec.status.node)

    def _prune_faults(self) -> None:
        """Forget the impairments of pods that are gone (or replaced under the same name): they
        went with the pod's namespace and veth."""
        for ref, uid in list(self.fault_pods.items()):
            rec = self.state.find_pod(ref.name, ref.namespace)
            if rec is None or rec.uid != uid or rec.obj.key not in (self.kubelet.boxes if self.kubelet else {}):
                self.faults.forget_pod(ref)
                del self.fault_pods[ref]

    def impair(self, link: str, namespace: str, values: dict) -> str:
        """``k8semu impair``: give a link exactly these impairments (``{"bandwidth": "50Mbit"}``).

        Raises:
            K8semuError: a bad value (named), delay etc. without sch_netem, or the kernel refused.
        """
        with self.lock:
            self._prune_faults()
            found = self._link(link, namespace)
            try:
                imp = faults.impairment(found.ref, values)
            except ValueError as exc:
                raise K8semuError(f"{found.ref}: {exc}") from None
            return self.faults.impair(imp, found)

    def partition(self, name: str, a: list, b: list, one_way: bool) -> str:
        """Drop everything between two sets of nodes or external hosts (or from ``a`` to ``b``).

        Raises:
            K8semuError: a bad name or set; the name is in use.
        """
        with self.lock:
            try:
                part = faults.partition(name, a, b, one_way, self.faults.hosts())
            except ValueError as exc:
                raise K8semuError(f"partition: {exc}") from None
            return self.faults.partition(part)

    def heal(self, what: str, namespace: str = "default") -> list[str]:
        """Undo an impairment (its link, as ``impair`` names it), a partition
        (``partition/NAME``) or ``all``.

        Raises:
            K8semuError: a malformed name; NotFoundError: nothing by that name is in force.
        """
        with self.lock:
            self._prune_faults()
            if what != "all" and not what.startswith("partition/"):
                try:
                    ref = faults.parse_link(what, namespace)
                except ValueError as exc:
                    raise K8semuError(str(exc)) from None
                what = str(self.faults.host_link(ref).ref if ref.kind == "" else ref)
            return self.faults.heal(what)

    def impairments(self) -> dict:
        """The impairments and partitions in force."""
        with self.lock:
            self._prune_faults()
            return self.faults.report()

    # -- the emulator itself ----------------------------------------------------------------
    def _has_controller(self) -> None:
        """Raises: NotFoundError on a kernel data plane, which has no SDN controller."""
        if self.config.kernel_dataplane:
            raise NotFoundError(f"cluster {self.config.name} runs cni: {self.config.cni}: it has no SDN controller "
                                "(its nodes' kube-proxy rules are loaded by the manager)")

    def controller_stop(self) -> str:
        self._has_controller()
        with self.lock:
            line = self.supervisor.hold("controller")
        self.wake.set()
        return line

    def controller_start(self) -> str:
        """Start the SDN controller again and return once every switch has reconnected and
        confirmed the current view (waited for without the lock)."""
        self._has_controller()
        with self.lock:
            self.supervisor.release("controller")
            self.last_view = None  # republish, so the new controller has a fresh generation to confirm
            self._publish()
        self.wake.set()
        self.wait_synced(30)
        return "controller started; every switch reconnected and in sync"

    def trace(self, source: str, destination: str, namespace: str = "default", protocol: str = "",
              port: int | None = None, endpoint: str = "", live: bool = False) -> dict:
        """``k8semu trace``: follow one packet of a new connection through the switches
        (``runtime.tracer``; on flannel and calico one real packet through netfilter,
        ``runtime.tracekernel``); the tables are read without the lock.

        Raises:
            K8semuError: a request that cannot be traced; NotFoundError: no such source.
        """
        req = tracer.Request(source, destination, namespace, protocol, port, endpoint, live=live)
        where, view, source_pod = self._trace_inputs(req)
        result = tracer.trace(view, where, req, source_pod)
        drop = result["hops"][-1] if result["verdict"] == "dropped" and result["hops"] else {}
        if drop.get("owner") == "networkpolicy isolation":  # name the policies, as describe would
            ingress = drop.get("table") == "IngressRule"
            ip = (result.get("endpoint") or result["destination"]).split(":")[0] if ingress else \
                (source_pod.pod.ip if source_pod else "")
            with self.lock:
                names = policies.isolating(self.state, ip, "Ingress" if ingress else "Egress")
            if names:
                drop["text"] += (f"; {ip} is isolated for {'ingress' if ingress else 'egress'} by "
                                 f"{', '.join(names)} and no rule of theirs admits this packet")
                result["where"] += f" (isolated by {', '.join(names)})"
        return result

    def counters(self) -> dict:
        """{"tables": {node: {table: packets matched}}} (the web view's moving counters); empty on
        a kernel data plane, whose rules are iptables/nftables chains."""
        if self.config.kernel_dataplane:
            return {"tables": {}, "note": f"cni: {self.config.cni} has no OpenFlow tables"}
        with self.lock:
            scope = self.records.scope
            bridges = {n.name: naming.node_bridge(scope, n.index) for n in self.config.nodes}
        return {"tables": tracer.table_counters(tracer.Where(bridges, {}, {}, {}))}

    def _trace_inputs(self, req: tracer.Request) -> tuple:
        """(where, view, source pod) for a trace, read under the lock."""
        with self.lock:
            scope = self.records.scope
            kernel = self.config.kernel_dataplane
            where = tracer.Where(
                {} if kernel else {n.name: naming.node_bridge(scope, n.index) for n in self.config.nodes},
                {n.name: naming.vxlan_device(scope, n.index) for n in self.config.nodes},
                {n: naming.node_netns(scope, n) for n in [x.name for x in self.config.nodes]
                 + [h.name for h in self.config.external_hosts]},
                {h.name: h.ip for h in self.config.external_hosts},
                {r.status.ip: b.netns for r in self.state.pods()
                 if r.status.ip and not r.obj.spec.host_network and not r.status.released
                 and (b := self.kubelet.boxes.get(r.obj.key) if self.kubelet else None)},
                tuple(n.name for n in self.config.nodes), kernel, bool(self.config.kube_proxy))
            view = NetworkView.from_json((self.run / "view.json").read_text())
            source_pod = None
            kind, _, name = req.source.rpartition("/")
            rec = self.state.find_pod(name, req.namespace) if kind in ("", "pod", "pods") else None
            box = self.kubelet.boxes.get(rec.obj.key) if rec and self.kubelet else None
            pod_view = next((p for p in view.pods if rec and p.namespace == rec.obj.meta.namespace
                             and p.name == rec.obj.meta.name), None)
            if kind in ("pod", "pods") and (box is None or pod_view is None):
                raise NotFoundError(f'pods "{name}" not found or not running in namespace {req.namespace}')
            if box is not None and pod_view is not None:
                cfg = self.config
                source_pod = tracer.SourcePod(pod_view, box.netns, podfiles.resolv_conf(
                    rec.obj, cfg.services.dns_ip, cfg.cluster_domain, cfg.upstream_dns))
        return where, view, source_pod

    def down(self) -> str:
        """Ask the loop to end; the teardown follows once it has (the caller waits for the
        manager's exit)."""
        self.stopping.set()
        self.wake.set()
        return "stopping"
