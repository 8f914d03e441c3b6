"""kubeadm's control plane as a student finds it in kube-system: on each control-plane node the
static pods ``etcd-<node>``, ``kube-apiserver-<node>``, ``kube-controller-manager-<node>`` and
``kube-scheduler-<node>`` (mirror pods, owned by their Node, on the node's network), with the
command lines kubeadm writes into /etc/kubernetes/manifests, so that ``kubectl -n kube-system
get pod kube-apiserver-control-plane -o yaml | grep service-cluster-ip-range`` and ``kubectl
cluster-info dump | egrep 'service-cluster-ip-range|cluster-cidr'`` show the cluster's ranges.

They stand for k8semu's manager, which serves the API and runs the controllers and the
scheduler: their process only says so (the images are stand-ins, emulator/model/images.py).
Every value in a flag comes from the validated cluster spec. Deleted, a mirror pod comes back,
as the kubelet recreates it from its manifest.
"""
from __future__ import annotations

from emulator.cluster.apimeta import KUBE_VERSION
from emulator.cluster.store import ClusterState
from emulator.model import defaults, naming
from emulator.model.cluster import ClusterConfig
from emulator.model.meta import ObjectMeta
from emulator.model.node import Node
from emulator.model.pod import Container, Pod, PodSpec, Toleration

ETCD_VERSION = "3.5.10-0"  # kubeadm's etcd for Kubernetes 1.29
PKI = "/etc/kubernetes/pki"


def _flags(component: str, node: Node, config: ClusterConfig) -> list[str]:
    ip, services, pods = node.ip, config.services.subnet, config.pods.subnet
    if component == "etcd":
        return ["etcd", f"--advertise-client-urls=https://{ip}:2379", f"--cert-file={PKI}/etcd/server.crt",
                "--client-cert-auth=true", "--data-dir=/var/lib/etcd",
                f"--initial-advertise-peer-urls=https://{ip}:2380", f"--initial-cluster={node.name}=https://{ip}:2380",
                f"--key-file={PKI}/etcd/server.key", f"--listen-client-urls=https://127.0.0.1:2379,https://{ip}:2379",
                "--listen-metrics-urls=http://127.0.0.1:2381", f"--listen-peer-urls=https://{ip}:2380",
                f"--name={node.name}", f"--peer-cert-file={PKI}/etcd/peer.crt", "--peer-client-cert-auth=true",
                f"--peer-key-file={PKI}/etcd/peer.key", f"--peer-trusted-ca-file={PKI}/etcd/ca.crt",
                "--snapshot-count=10000", f"--trusted-ca-file={PKI}/etcd/ca.crt"]
    if component == "kube-apiserver":
        return ["kube-apiserver", f"--advertise-address={ip}", "--allow-privileged=true",
                "--authorization-mode=Node,RBAC", f"--client-ca-file={PKI}/ca.crt",
                "--enable-admission-plugins=NodeRestriction", "--enable-bootstrap-token-auth=true",
                f"--etcd-cafile={PKI}/etcd/ca.crt", f"--etcd-certfile={PKI}/apiserver-etcd-client.crt",
                f"--etcd-keyfile={PKI}/apiserver-etcd-client.key", "--etcd-servers=https://127.0.0.1:2379",
                "--secure-port=6443", f"--service-account-issuer=https://kubernetes.default.svc.{config.cluster_domain}",
                f"--service-account-key-file={PKI}/sa.pub", f"--service-account-signing-key-file={PKI}/sa.key",
                f"--service-cluster-ip-range={services}", f"--tls-cert-file={PKI}/apiserver.crt",
                f"--tls-private-key-file={PKI}/apiserver.key"]
    if component == "kube-controller-manager":
        conf = "/etc/kubernetes/controller-manager.conf"
        return ["kube-controller-manager", "--allocate-node-cidrs=true", f"--authentication-kubeconfig={conf}",
                f"--authorization-kubeconfig={conf}", "--bind-address=127.0.0.1", f"--client-ca-file={PKI}/ca.crt",
                f"--cluster-cidr={pods}", "--cluster-name=kubernetes", f"--cluster-signing-cert-file={PKI}/ca.crt",
                f"--cluster-signing-key-file={PKI}/ca.key", "--controllers=*,bootstrapsigner,tokencleaner",
                f"--kubeconfig={conf}", "--leader-elect=true", f"--node-cidr-mask-size={config.pods.node_mask}",
                f"--requestheader-client-ca-file={PKI}/front-proxy-ca.crt", f"--root-ca-file={PKI}/ca.crt",
                f"--service-account-private-key-file={PKI}/sa.key", f"--service-cluster-ip-range={services}",
                "--use-service-account-credentials=true"]
    conf = "/etc/kubernetes/scheduler.conf"
    return ["kube-scheduler", f"--authentication-kubeconfig={conf}", f"--authorization-kubeconfig={conf}",
            "--bind-address=127.0.0.1", f"--kubeconfig={conf}", "--leader-elect=true"]


COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")


def image(component: str) -> str:
    return f"registry.k8s.io/etcd:{ETCD_VERSION}" if component == "etcd" else \
        f"registry.k8s.io/{component}:{KUBE_VERSION}"


def pod(component: str, node: Node, config: ClusterConfig) -> Pod:
    """One mirror pod as the API shows kubeadm's: hostNetwork, system-node-critical, tolerating
    every NoExecute taint, labelled component=<name>, tier=control-plane."""
    command = _flags(component, node, config)
    container = Container(component, image(component), command=tuple(command))
    raw = {"containers": [{"name": component, "image": image(component), "command": command,
                           "imagePullPolicy": "IfNotPresent"}],
           "hostNetwork": True, "priority": 2000001000, "priorityClassName": "system-node-critical",
           "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
           "tolerations": [{"effect": "NoExecute", "operator": "Exists"}]}
    spec = PodSpec((container,), node_name=node.name, tolerations=(Toleration("", "Exists", "", "NoExecute"),),
                   raw=defaults.pod_spec(raw), host_network=True)
    config_hash = naming.pod_template_hash({"node": node.name, "spec": raw})
    annotations = {"kubernetes.io/config.hash": config_hash, "kubernetes.io/config.mirror": config_hash,
                   "kubernetes.io/config.source": "file"}
    if component == "kube-apiserver":
        annotations["kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"] = f"{node.ip}:6443"
    elif component == "etcd":
        annotations["kubeadm.kubernetes.io/etcd.advertise-client-urls"] = f"https://{node.ip}:2379"
    meta = ObjectMeta(f"{component}-{node.name}", "kube-system", {"component": component, "tier": "control-plane"},
                      annotations)
    return Pod(meta, spec, None, ("Node", node.name))


def pods(config: ClusterConfig) -> list[Pod]:
    """Every control-plane node's four mirror pods."""
    return [pod(c, n, config) for n in config.nodes if n.role == "control-plane" for c in COMPONENTS]


def ensure(state: ClusterState) -> None:
    """Put back a mirror pod that is gone (deleted and ended), as the kubelet does while its
    static pod manifest is on the node; only for a cluster the manager runs (``state.static_pods``)."""
    if not state.static_pods:
        return
    for want in pods(state.config):
        if state.get("Pod", "kube-system", want.meta.name) is None:
            state.put("Pod", want)
