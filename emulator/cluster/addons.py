"""Cluster add-ons that kubeadm installs: CoreDNS (a Deployment, its ``coredns`` ConfigMap and
the kube-dns Service).

The coredns pods run k8semu's DNS server (image ``registry.k8s.io/coredns/coredns``), read their
Corefile (the ConfigMap's, as the manager projects it) and watch the cluster snapshot the manager writes
beside it, both in the run directory's ``shared/dns``, which only these pods see (read-only);
the ingress controller likewise sees only ``shared/ingress``, which holds TLS keys. Like kubeadm's: dnsPolicy Default, tolerations for the
control plane, readiness on :8181/ready, liveness on :8080/health.
"""
from __future__ import annotations

from emulator.model import defaults
from emulator.model.cluster import ClusterConfig
from emulator.model.config import ConfigMap
from emulator.model.corefile import default_corefile
from emulator.model.ingress import IngressClass
from emulator.model.meta import Namespace, ObjectMeta
from emulator.model.naming import SHARED_IN_POD
from emulator.model.pod import Container, ContainerPort, PodSpec, PodTemplate, Probe, Toleration
from emulator.model.selectors import LabelSelector
from emulator.model.service import Service, ServicePort
from emulator.model.workload import Deployment

COREDNS_IMAGE = "registry.k8s.io/coredns/coredns:v1.11.1"
COREDNS_CONFIGMAP = "coredns"  # kube-system/coredns: its Corefile is what the coredns pods run
DNS_LABELS = {"k8s-app": "kube-dns"}


DNS_DIR = f"{SHARED_IN_POD}/dns"  # the Corefile and the cluster snapshot, as the coredns pods see them
INGRESS_DIR = f"{SHARED_IN_POD}/ingress"


def _ports(container: Container) -> list[dict]:
    """The container's ports as its manifest lists them (what ``kubectl get -o yaml`` shows)."""
    return [{"name": p.name, "containerPort": p.container_port, "protocol": p.protocol,
             **({"hostPort": p.host_port} if p.host_port else {})} for p in container.ports]


def cluster_dns(config: ClusterConfig) -> list:
    """The CoreDNS Deployment, its ``coredns`` ConfigMap (kubeadm's Corefile, or the cluster
    spec's) and the kube-dns Service, or nothing if DNS is disabled."""
    if not config.dns.enabled:
        return []
    corefile, snapshot = f"{DNS_DIR}/Corefile", f"{DNS_DIR}/cluster.json"
    container = Container(
        "coredns", COREDNS_IMAGE, args=("-conf", corefile, "-snapshot", snapshot),
        ports=(ContainerPort(53, "dns", "UDP"), ContainerPort(53, "dns-tcp", "TCP"),
               ContainerPort(9153, "metrics", "TCP")),
        readiness=Probe("httpGet", 8181, "/ready", period=1, failure_threshold=3),
        liveness=Probe("httpGet", 8080, "/health", initial_delay=10, period=10, failure_threshold=5))
    raw_spec = defaults.pod_spec({
        "containers": [{"name": "coredns", "image": COREDNS_IMAGE, "args": ["-conf", corefile, "-snapshot", snapshot],
                        "ports": _ports(container),
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, "periodSeconds": 1},
                        "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}, "initialDelaySeconds": 10,
                                          "failureThreshold": 5}}],
        "dnsPolicy": "Default", "priorityClassName": "system-cluster-critical",
        "serviceAccountName": "coredns"})  # its ServiceAccount: cluster/nodedaemons.py identities
    spec = PodSpec((container,), tolerations=(Toleration("node-role.kubernetes.io/control-plane", "Exists"),
                                              Toleration("CriticalAddonsOnly", "Exists")),
                   dns_policy="Default", raw=raw_spec, system_mounts=("dns",))
    template = PodTemplate(dict(DNS_LABELS), {}, spec, {"metadata": {"labels": DNS_LABELS}, "spec": raw_spec})
    deployment = Deployment(ObjectMeta("coredns", "kube-system", dict(DNS_LABELS)), config.dns.replicas,
                            LabelSelector(dict(DNS_LABELS)), template)
    service = Service(ObjectMeta("kube-dns", "kube-system", {**DNS_LABELS, "kubernetes.io/name": "CoreDNS"}),
                      selector=dict(DNS_LABELS), cluster_ip=config.services.dns_ip,
                      ports=(ServicePort(53, "UDP", "dns", 53), ServicePort(53, "TCP", "dns-tcp", 53),
                             ServicePort(9153, "TCP", "metrics", 9153)))
    configmap = ConfigMap(ObjectMeta(COREDNS_CONFIGMAP, "kube-system"),
                          {"Corefile": config.dns.corefile or default_corefile(config.cluster_domain)})
    return [configmap, deployment, service]


INGRESS_IMAGE = "registry.k8s.io/ingress-nginx/controller:v1.9.4"
INGRESS_LABELS = {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"}


def ingress_nginx(config: ClusterConfig) -> list:
    """ingress-nginx as its deploy manifest for bare metal installs it: a namespace, the default
    IngressClass ``nginx``, the controller's ConfigMap, the controller Deployment and a NodePort Service (80 -> 30080,
    443 -> 30443), a LoadBalancer Service when the cluster has an address pool (else hostPorts
    80 and 443 on the controller, as kind's manifest)."""
    if not config.ingress.enabled:
        return []
    snapshot = f"{INGRESS_DIR}/cluster.json"
    # without an address pool, hostPorts 80 and 443 on the controller's node, as kind's
    # ingress-nginx manifest has them: the node addresses its Ingresses' status shows answer there
    http, https = (0, 0) if config.lb_pool else (80, 443)
    container = Container("controller", INGRESS_IMAGE, args=("-snapshot", snapshot),
                          ports=(ContainerPort(80, "http", "TCP", http), ContainerPort(443, "https", "TCP", https)),
                          readiness=Probe("tcpSocket", 80, period=1, failure_threshold=3))
    raw = defaults.pod_spec({"containers": [{"name": "controller", "image": INGRESS_IMAGE, "args": ["-snapshot", snapshot],
                                             "ports": _ports(container), "readinessProbe": {"tcpSocket": {"port": 80},
                                                                                            "periodSeconds": 1}}]})
    spec = PodSpec((container,), raw=raw, system_mounts=("ingress",))
    template = PodTemplate(dict(INGRESS_LABELS), {}, spec, {"metadata": {"labels": INGRESS_LABELS}, "spec": raw})
    ns = "ingress-nginx"
    return [
        Namespace(ObjectMeta(ns, "", {"app.kubernetes.io/name": "ingress-nginx"})),
        # the controller's ConfigMap, as the deploy manifest has it: its keys change the nginx.conf
        # the controller renders (ingress/options.py)
        ConfigMap(ObjectMeta("ingress-nginx-controller", ns, dict(INGRESS_LABELS)), {"allow-snippet-annotations": "false"}),
        IngressClass(ObjectMeta("nginx", "", dict(INGRESS_LABELS),
                                {"ingressclass.kubernetes.io/is-default-class": "true"})),
        Deployment(ObjectMeta("ingress-nginx-controller", ns, dict(INGRESS_LABELS)), 1,
                   LabelSelector(dict(INGRESS_LABELS)), template),
        # with an address pool, a LoadBalancer Service (it has the NodePorts too), as on a cloud
        Service(ObjectMeta("ingress-nginx-controller", ns, dict(INGRESS_LABELS)),
                type="LoadBalancer" if config.lb_pool else "NodePort",
                selector=dict(INGRESS_LABELS),
                ports=(ServicePort(80, "TCP", "http", "http", config.ingress.node_port),
                       ServicePort(443, "TCP", "https", "https", config.ingress.tls_node_port))),
    ]
