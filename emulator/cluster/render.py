"""Objects in the shape the API server returns them (what ``kubectl get -o json`` prints).

The CLI builds its tables from these dictionaries, as kubectl builds its tables from API
objects, so ``-o wide`` and ``-o yaml`` can never disagree.
"""
from __future__ import annotations

import copy
import json
import platform
import time
from typing import Any, Callable

from emulator import __version__
from emulator.cluster import controllers, deploystatus, rbac, render_calico, render_services, render_workloads
from emulator.cluster.apimeta import KUBE_VERSION, meta as _meta, timestamp
from emulator.cluster.disruption import pdb_object
from emulator.cluster.dnsview import nginx_serves
from emulator.cluster.nodes import taints_of
from emulator.cluster.store import ClusterState, Record
from emulator.model import defaults
from emulator.model.calico import CALICO_KINDS, tunnel_handle
from emulator.model.cluster import ClusterConfig
from emulator.model.meta import RBAC_KINDS
from emulator.model.network import FLANNEL_VNI
from emulator.model.node import Node


def flannel_annotations(node: Node, config: ClusterConfig) -> dict[str, str]:
    """What flanneld writes on its Node (kube subnet manager): its backend, VTEP and address."""
    data = {"VNI": FLANNEL_VNI, "VtepMAC": node.vtep_mac} if config.flannel_backend == "vxlan" else None
    return {"flannel.alpha.coreos.com/backend-data": json.dumps(data, separators=(",", ":")),
            "flannel.alpha.coreos.com/backend-type": config.flannel_backend,
            "flannel.alpha.coreos.com/kube-subnet-manager": "true",
            "flannel.alpha.coreos.com/public-ip": node.ip}


def calico_annotations(node: Node, state: ClusterState) -> dict[str, str]:
    """What calico-node writes on its Node: the address BIRD peers from, and with VXLAN pools
    its tunnel address."""
    out = {"projectcalico.org/IPv4Address": f"{node.ip}/{node.prefixlen}"}
    tunnel = state.calico_ipam.handles.get(tunnel_handle(node.name)) if state.calico_ipam else None
    if tunnel:
        out["projectcalico.org/IPv4VXLANTunnelAddr"] = tunnel
    return out


def system_annotations(node: Node, state: ClusterState) -> dict[str, str]:
    """What the node's CNI agent writes on it (kept as written: ``nodes.set_metadata``)."""
    if state.config.cni == "calico":
        return calico_annotations(node, state)
    return flannel_annotations(node, state.config) if state.config.kernel_dataplane else {}


def node_annotations(node: Node, state: ClusterState) -> dict[str, str]:
    """The CNI agent's, then what kubectl annotate wrote (a reflector's cluster ID, written at
    ``up`` for the spec's reflectors as calicoctl writes it)."""
    return {**system_annotations(node, state), **state.node_annotations.get(node.name, {})}


def _ready_condition(node: Node, state: ClusterState, ready: bool) -> dict:
    """The Ready condition: Unknown once the node lifecycle controller marked a stopped node
    (``nodelifecycle``); until then a stopped node shows what its kubelet last posted."""
    if node.name in state.unknown:
        return {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
                "message": "Kubelet stopped posting node status.",
                "lastTransitionTime": timestamp(state.unknown[node.name])}
    ready = ready or node.name in state.stopped
    return {"type": "Ready", "status": "True" if ready else "False",
            "reason": "KubeletReady" if ready else "KubeletNotReady",
            "message": "kubelet is posting ready status" if ready else
            ("the node's eth0 is down" if state.config.kernel_dataplane else
             "the node's switch is not connected to the controller")}


def _taint(t, state: ClusterState, node: Node) -> dict:
    out = {"key": t.key, "effect": t.effect}
    if t.effect == "NoExecute" and node.name in state.unknown:  # as the node lifecycle controller stamps it
        out["timeAdded"] = timestamp(state.unknown[node.name])
    return out


def node_object(node: Node, state: ClusterState, ready: bool = True) -> dict:
    taints = taints_of(state, node)
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": node.name, "uid": f"node-{node.index}", "labels": node.all_labels(),
                     **({"annotations": annotations} if (annotations := node_annotations(node, state)) else {}),
                     "creationTimestamp": timestamp(state.started)},
        "spec": {"podCIDR": node.pod_cidr, "podCIDRs": [node.pod_cidr],
                 **({"unschedulable": True} if node.name in state.cordoned else {}),
                 **({"taints": [_taint(t, state, node) for t in taints]} if taints else {})},
        "status": {
            "addresses": [{"type": "InternalIP", "address": node.ip},
                          {"type": "Hostname", "address": node.name}],
            "conditions": [_ready_condition(node, state, ready)],
            "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux",
                         "osImage": "k8semu (Mininet host)", "kernelVersion": platform.release(),
                         "kubeletVersion": KUBE_VERSION, "kubeProxyVersion": KUBE_VERSION,
                         "containerRuntimeVersion": f"k8semu://{__version__}"}},
    }


def _container_status(pod_rec: Record, name: str, image: str) -> dict:
    cs = pod_rec.status.containers.get(name)
    out: dict[str, Any] = {"name": name, "image": image, "imageID": "",
                           "ready": bool(cs and cs.state == "running" and cs.ready),
                           "started": bool(cs and cs.state == "running"),
                           "restartCount": cs.restart_count if cs else 0}
    if cs and cs.state == "running":
        out["containerID"] = f"k8semu://{cs.pid}"
        out["state"] = {"running": {"startedAt": timestamp(cs.started_at)}}
        if cs.last_state:
            reason, code, started, finished = cs.last_state
            out["lastState"] = {"terminated": {"exitCode": code, "reason": reason}}
    elif cs and cs.state == "terminated":
        last = {"terminated": {"exitCode": cs.exit_code, "reason": cs.reason or ("Error" if cs.exit_code else "Completed"),
                               **({"startedAt": timestamp(cs.started_at)} if cs.started_at else {}),
                               **({"finishedAt": timestamp(cs.finished_at)} if cs.finished_at else {})}}
        if cs.backing_off:  # waiting for the next restart
            out["state"] = {"waiting": {"reason": "CrashLoopBackOff",
                                        "message": f"back-off restarting failed container {name}"}}
            out["lastState"] = last
        else:
            out["state"] = last
    else:
        waiting = {"reason": cs.reason if cs else "ContainerCreating"}
        if cs and cs.reason in ("CreateContainerError", "CreateContainerConfigError") and pod_rec.status.message:
            waiting["message"] = pod_rec.status.message
        out["state"] = {"waiting": waiting}
        if cs and cs.last_state:
            reason, code, started, finished = cs.last_state
            out["lastState"] = {"terminated": {"exitCode": code, "reason": reason}}
    return out


def _owner_uid(rec: Record, state: ClusterState) -> str:
    owner = getattr(rec.obj, "owner", None)
    if owner and owner[0] == "Node":  # a mirror pod's (its Node's uid as node_object gives it)
        node = next((n for n in state.config.nodes if n.name == owner[1]), None)
        return f"node-{node.index}" if node is not None else ""
    found = state.get(owner[0], rec.obj.meta.namespace, owner[1]) if owner else None
    return found.uid if found else ""


def pod_object(rec: Record, state: ClusterState) -> dict:
    pod, st = rec.obj, rec.status
    spec = defaults.pod_defaults(pod.spec.raw or {})
    spec.setdefault("restartPolicy", pod.spec.restart_policy)
    spec.setdefault("dnsPolicy", pod.spec.dns_policy)
    if st.node:
        spec["nodeName"] = st.node
    meta = _meta(rec, owner_uid=_owner_uid(rec, state))
    if rec.deleting:
        meta["deletionTimestamp"] = timestamp(rec.deletion_time or time.time())
        meta["deletionGracePeriodSeconds"] = rec.grace if rec.grace is not None else pod.spec.termination_grace
    status: dict[str, Any] = {"phase": st.phase, "qosClass": pod.spec.qos_class}
    if st.reason and not st.node:
        status["reason"], status["message"] = st.reason, st.message
    ready = st.ready
    conditions = [{"type": "PodScheduled", "status": "True" if st.node else "False",
                   **({"reason": st.reason, "message": st.message} if st.reason else {})}]
    if st.node:
        status["hostIP"] = state.config.node(st.node).ip
        status["hostIPs"] = [{"ip": status["hostIP"]}]
        conditions += [{"type": "Initialized", "status": "True"},
                       {"type": "ContainersReady", "status": str(st.containers_ready)},
                       {"type": "Ready", "status": str(ready)}]
    if st.ip and st.phase != "Pending":
        status["podIP"] = st.ip
        status["podIPs"] = [{"ip": st.ip}]
    if st.start_time:
        status["startTime"] = timestamp(st.start_time)
    status["conditions"] = conditions
    status["containerStatuses"] = [_container_status(rec, c.name, c.image) for c in pod.spec.containers]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def _pod_signature(rec: Record, state: ClusterState) -> tuple:
    """Everything of a pod's record that its rendering shows besides the object itself."""
    st = rec.status
    return (rec.deleting, rec.grace, rec.deletion_time, rec.finalizers, st.phase, st.node, st.ip, st.reason,
            st.message, st.start_time, _owner_uid(rec, state),
            tuple((n, c.state, c.reason, c.restart_count, c.started_at, c.exit_code, c.pid, c.ready, c.finished_at,
                   c.backing_off, c.last_state) for n, c in st.containers.items()))


def pods_rendered(state: ClusterState, recs: list[Record], every: bool) -> list[dict]:
    """The pods as the API shows them, each rendered again only when its object or something
    ``_pod_signature`` covers has changed. Why: every list and every change seen by a watch
    rendered every pod, a third of the API's time on a 1,000-pod cluster. The renderings are
    shared: their readers copy before they change one (the watch hub only stamps its
    resourceVersion). ``every``: ``recs`` is every pod, so renderings of pods gone are dropped."""
    cache = state.rendered
    out = []
    for rec in recs:
        sig = _pod_signature(rec, state)
        hit = cache.get(rec.uid)
        if hit is None or hit[0] is not rec.obj or hit[1] != sig:
            hit = (rec.obj, sig, pod_object(rec, state))
            cache[rec.uid] = hit
        out.append(hit[2])
    if every and len(cache) > len(recs):
        live = {rec.uid for rec in recs}
        for uid in [u for u in cache if u not in live]:
            del cache[uid]
    return out


def _owned_pods(state: ClusterState, rs_names: set[str], namespace: str) -> list[Record]:
    return [p for p in state.pods(namespace) if p.obj.owner and p.obj.owner[1] in rs_names
            and not p.deleting]


def workload_object(kind: str, rec: Record, state: ClusterState) -> dict:
    obj = rec.obj
    ns = obj.meta.namespace
    if kind == "Deployment":
        rs_names = {r.obj.meta.name for r in state.list("ReplicaSet", ns)
                    if r.obj.owner == ("Deployment", obj.meta.name)}
    else:
        rs_names = {obj.meta.name}
    pods = _owned_pods(state, rs_names, ns)
    ready, now = sum(1 for p in pods if p.status.ready), time.time()
    available = sum(1 for p in pods if p.status.available(obj.min_ready, now))
    template: dict[str, Any] = {"metadata": {"labels": dict(obj.template.labels)},
                                "spec": copy.deepcopy(obj.template.spec.raw)}
    if obj.template.annotations:
        template["metadata"]["annotations"] = dict(obj.template.annotations)
    status: dict[str, Any] = {"replicas": len(pods), "readyReplicas": ready, "availableReplicas": available,
                              "observedGeneration": 1}
    if kind == "Deployment":  # the pods of the current template's ReplicaSet (kubectl rollout status)
        counts = deploystatus.counts(state, rec)
        status["updatedReplicas"] = counts.updated
        status["unavailableReplicas"] = max(0, obj.replicas - available)
        tracked = state.deployments.get((ns, obj.meta.name))
        if tracked is not None:  # Available and Progressing, as the deployment controller last set them
            status["conditions"] = [c.to_dict(timestamp) for c in tracked.conditions.values()]
    else:
        status["fullyLabeledReplicas"] = len(pods)
    meta = _meta(rec, owner_uid=_owner_uid(rec, state))
    spec: dict[str, Any] = {"replicas": obj.replicas, "selector": obj.selector.to_dict(), "template": template}
    if kind == "Deployment":  # the revision of its newest ReplicaSet, as kube-controller-manager annotates it
        revisions = [controllers.revision_of(r.obj) for r in state.list("ReplicaSet", ns) if r.obj.meta.name in rs_names]
        meta.setdefault("annotations", {})[controllers.REVISION] = str(max(revisions, default=0))
        spec["revisionHistoryLimit"] = obj.revision_history_limit
        spec["progressDeadlineSeconds"] = obj.progress_deadline
        if obj.min_ready:
            spec["minReadySeconds"] = obj.min_ready
        spec["strategy"] = {"type": obj.strategy}
        if obj.strategy == "RollingUpdate":
            spec["strategy"]["rollingUpdate"] = {"maxSurge": obj.max_surge, "maxUnavailable": obj.max_unavailable}
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec,
            "status": {k: v for k, v in status.items() if v or k == "replicas"}}


def namespace_object(rec: Record) -> dict:
    meta = _meta(rec, namespaced=False)
    meta["labels"] = rec.obj.labels()
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta,
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


def secret_object(rec: Record) -> dict:
    out = {"apiVersion": "v1", "kind": "Secret", "metadata": _meta(rec), "type": rec.obj.type}
    if rec.obj.data:
        out["data"] = dict(rec.obj.data)
    return out


def config_map_object(rec: Record) -> dict:
    out = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(rec)}
    cm = rec.obj
    if cm.data:
        out["data"] = dict(cm.data)
    if cm.binary_data:
        out["binaryData"] = dict(cm.binary_data)
    if cm.immutable:
        out["immutable"] = True
    return out


def service_account_object(rec: Record) -> dict:
    out = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(rec)}
    if rec.obj.automount is not None:
        out["automountServiceAccountToken"] = rec.obj.automount
    return out


def ingress_class_object(rec: Record) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": _meta(rec, namespaced=False),
            "spec": {"controller": rec.obj.controller}}


CALICO_OBJECTS = {kind for kind, _ in CALICO_KINDS}
RENDER_WORKLOADS = {"StatefulSet": render_workloads.statefulset_object, "DaemonSet": render_workloads.daemonset_object,
                    "Job": render_workloads.job_object, "CronJob": render_workloads.cronjob_object}


# kinds ``objects`` renders as a whole (their objects read one another or shared facts); the
# others are rendered one object at a time
AGGREGATE_KINDS = frozenset({"Node", "Ingress", "NetworkPolicy", "PodDisruptionBudget", "Service", "Endpoints",
                             "EndpointSlice", "Namespace", "ControllerRevision", "IngressClass",
                             "CustomResourceDefinition", *RBAC_KINDS, *CALICO_OBJECTS})


def objects(state: ClusterState, kind: str, namespace: str | None,
            node_ready: dict[str, bool] | None = None, name: str | None = None) -> list[dict]:
    """Every object of ``kind`` (in ``namespace``, or all namespaces when None), API-shaped;
    with ``name``, only that one (a list of one, or none). A kind whose objects are rendered
    one by one renders only that one (a GET of one Deployment among many does not render the
    others and look up every pod's owner); the others render their kind and pick it out."""
    if name is not None:
        if kind not in AGGREGATE_KINDS:
            rec = state.get(kind, namespace or "", name)
            return [] if rec is None else _one_by_one(state, kind, [rec], every=False)
        return [o for o in objects(state, kind, namespace, node_ready)
                if o["metadata"]["name"] == name and (namespace is None or o["metadata"].get("namespace", "") == namespace)]
    if kind == "Node":
        return [node_object(n, state, (node_ready or {}).get(n.name, True)) for n in state.current_nodes()]
    if kind == "Ingress":
        serves, ips = nginx_serves(state), ingress_status_ips(state)  # once per listing, not per Ingress
        return [ingress_object(r, serves, ips) for r in sorted(state.list(kind, namespace),
                                                               key=lambda r: (r.obj.meta.namespace, r.obj.meta.name))]
    if kind == "NetworkPolicy":
        return [policy_object(r, state)
                for r in sorted(state.list(kind, namespace), key=lambda r: (r.obj.meta.namespace, r.obj.meta.name))]
    if kind == "PodDisruptionBudget":
        return [pdb_object(r, state)
                for r in sorted(state.list(kind, namespace), key=lambda r: (r.obj.meta.namespace, r.obj.meta.name))]
    if kind in ("Service", "Endpoints", "EndpointSlice"):
        return render_services.objects(state, kind, namespace)
    if kind == "Namespace":
        return [namespace_object(r) for r in state.list("Namespace")]
    if kind == "ControllerRevision":
        return render_workloads.controller_revisions(state, namespace)
    if kind == "IngressClass":
        return [ingress_class_object(r) for r in sorted(state.list(kind), key=lambda r: r.obj.meta.name)]
    if kind in RBAC_KINDS:
        return rbac.objects(state, kind, namespace)
    if kind in CALICO_OBJECTS:
        return render_calico.objects(state, kind)
    if kind == "CustomResourceDefinition":
        return render_calico.custom_resource_definitions(state)
    recs = sorted(state.list(kind, namespace), key=lambda r: (r.obj.meta.namespace, r.obj.meta.name))
    return _one_by_one(state, kind, recs, every=namespace is None)


def _one_by_one(state: ClusterState, kind: str, recs: list[Record], every: bool) -> list[dict]:
    """Kinds whose objects render each on its own (the rest of ``objects``); ``every``: ``recs``
    is every object of the kind."""
    if kind == "Pod":
        return pods_rendered(state, recs, every)
    if kind == "Secret":
        return [secret_object(r) for r in recs]
    if kind == "ConfigMap":
        return [config_map_object(r) for r in recs]
    if kind == "ServiceAccount":
        return [service_account_object(r) for r in recs]
    if kind in RENDER_WORKLOADS:
        children = controllers.by_owner(state) if len(recs) > 1 else None
        return [RENDER_WORKLOADS[kind](r, state, children) for r in recs]
    return [workload_object(kind, r, state) for r in recs]


def as_list(items: list[dict]) -> dict:
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


def _rules(rules, peer_key: str) -> list[dict]:
    out = []
    for rule in rules:
        item: dict = {}
        peers = []
        for peer in rule.peers:
            entry: dict = {}
            if peer.pod_selector is not None:
                entry["podSelector"] = peer.pod_selector.to_dict()
            if peer.namespace_selector is not None:
                entry["namespaceSelector"] = peer.namespace_selector.to_dict()
            if peer.ip_block is not None:
                entry["ipBlock"] = {"cidr": peer.ip_block.cidr, **({"except": list(peer.ip_block.excepts)}
                                                                    if peer.ip_block.excepts else {})}
            peers.append(entry)
        if peers:
            item[peer_key] = peers
        if rule.ports:
            item["ports"] = [{"protocol": p.protocol, **({"port": p.port} if p.port is not None else {}),
                              **({"endPort": p.end_port} if p.end_port else {})} for p in rule.ports]
        out.append(item)
    return out


def policy_object(rec: Record, state: ClusterState) -> dict:
    """A NetworkPolicy as the API server returns it, plus (in status) the pods it selects now."""
    pol = rec.obj
    spec: dict = {"podSelector": pol.pod_selector.to_dict(), "policyTypes": list(pol.policy_types)}
    if pol.ingress:
        spec["ingress"] = _rules(pol.ingress, "from")
    if pol.egress:
        spec["egress"] = _rules(pol.egress, "to")
    selected = sorted(p.obj.meta.name for p in state.pods(pol.meta.namespace)
                      if not p.deleting and pol.pod_selector.matches(p.obj.meta.labels))
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": _meta(rec), "spec": spec,
            "status": {"k8semu.io/selectedPods": selected}}


def ingress_status_ips(state: ClusterState) -> list[str]:
    """The addresses ingress-nginx publishes: its Service's LoadBalancer address (its
    ``--publish-service``, which the deploy manifests set), answering on 80 and 443; else the
    nodes its pods run on, where its hostPorts 80 and 443 answer (kind's manifest)."""
    published = state.alloc.by_service.get("ingress-nginx/ingress-nginx-controller")
    if published and published.lb_ip:
        return [published.lb_ip]
    controllers = [p for p in state.pods("ingress-nginx") if p.status.node and not p.deleting]
    return sorted({state.config.node(p.status.node).ip for p in controllers})


def ingress_object(rec: Record, serves: Callable[[Any], bool], status_ips: list[str]) -> dict:
    """``serves``: ``nginx_serves``'s predicate; ``status_ips``: ``ingress_status_ips``."""
    ing = rec.obj

    def backend(b):
        return {"service": {"name": b.service, "port": {"number" if isinstance(b.port, int) else "name": b.port}}}
    spec: dict = {}
    if ing.class_name:
        spec["ingressClassName"] = ing.class_name
    if ing.default_backend:
        spec["defaultBackend"] = backend(ing.default_backend)
    spec["rules"] = [{**({"host": r.host} if r.host else {}),
                      "http": {"paths": [{"path": p.path, "pathType": p.path_type, "backend": backend(p.backend)}
                                         for p in r.paths]}} for r in ing.rules]
    if ing.tls:
        spec["tls"] = [{"hosts": list(h), "secretName": s} for h, s in ing.tls]
    status: dict = {}
    if serves(ing):  # another class's controller writes its own status
        status = {"ingress": [{"ip": ip} for ip in status_ips]}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": _meta(rec), "spec": spec,
            "status": {"loadBalancer": status}}
