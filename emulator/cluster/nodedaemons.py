"""The per-node daemons a student finds on a real cluster, as DaemonSets: the data plane's own agent
in kube-system (``cni: flannel``: kube-proxy there and flannel in kube-flannel; ``cni: calico``:
kube-proxy and calico-node there) and, with an
address pool, MetalLB's speaker in metallb-system, as their manifests install them.

``k8semu-agent`` stands for the data plane of the ``openflow`` CNI: on each node an Open vSwitch
bridge that k8semu's OpenFlow controller programs, which serves Services too (kube-proxy's job,
as AntreaProxy does with proxyAll), so such a cluster has no kube-proxy DaemonSet, as a
kube-proxy-free Antrea or Cilium cluster has none; a ``cni: flannel`` cluster has kubeadm's
kube-proxy DaemonSet and ConfigMap and kube-flannel.yml's objects instead. Its ConfigMap says how the data plane is set up (Antrea's
``antrea-config`` has the same role). MetalLB's speaker stands for the node agent that answers
ARP for the LoadBalancer addresses. Both are hostNetwork pods tolerating every taint, whose images
are stand-ins (emulator/model/images.py): their process says what does their work. Every value
comes from the validated cluster spec.
"""
from __future__ import annotations

import json

import yaml

from emulator.cluster.apimeta import KUBE_VERSION
from emulator.model import defaults, rbacsystem
from emulator.model.cluster import ClusterConfig
from emulator.model.config import ConfigMap
from emulator.model.meta import Namespace, ObjectMeta
from emulator.model.network import FLANNEL_PORT, FLANNEL_VNI, VXLAN_PORT, VXLAN_VNI
from emulator.model.pod import Container, PodSpec, PodTemplate, Toleration
from emulator.model.selectors import LabelSelector
from emulator.model.workload import DaemonSet

AGENT_IMAGE = "k8semu/openflow-agent:v0.1.0"
AGENT_LABELS = {"app": "k8semu", "component": "openflow-agent"}
METALLB_VERSION = "v0.13.12"
METALLB_NAMESPACE = "metallb-system"


def _template(labels: dict[str, str], name: str, image: str, host_network: bool,
              node_selector: dict[str, str] | None = None, account: str = "") -> PodTemplate:
    raw = defaults.pod_spec({"containers": [{"name": name, "image": image}], "hostNetwork": host_network,
                             "tolerations": [{"operator": "Exists"}], "priorityClassName": "system-node-critical",
                             "terminationGracePeriodSeconds": 0,
                             **({"nodeSelector": dict(node_selector)} if node_selector else {}),
                             **({"serviceAccountName": account} if account else {})})
    spec = PodSpec((Container(name, image),), tolerations=(Toleration(operator="Exists"),), host_network=host_network,
                   raw=raw, termination_grace=0, node_selector=dict(node_selector or {}))
    return PodTemplate(dict(labels), {}, spec, {"metadata": {"labels": dict(labels)}, "spec": raw})


def agent_config(config: ClusterConfig) -> dict[str, object]:
    return {"cni": "openflow", "trafficEncapMode": "encap", "tunnelType": "vxlan", "tunnelPort": VXLAN_PORT,
            "tunnelVNI": VXLAN_VNI, "podMTU": config.pod_mtu, "podCIDR": config.pods.subnet,
            "serviceCIDR": config.services.subnet, "proxy": "openflow", "networkPolicy": "openflow",
            "proxyAll": not config.kube_proxy,  # Antrea's antreaProxy.proxyAll: false beside kube-proxy
            "kubeProxy": f"{config.kube_proxy} (beside the OpenFlow pipeline, which serves the pods' Service traffic; "
                         "kube-proxy the nodes' own and the outside's, as AntreaProxy without proxyAll)"
                         if config.kube_proxy else
                         "none (the OpenFlow pipeline serves Services on every node, as AntreaProxy with proxyAll)"}


def openflow_agent(config: ClusterConfig) -> list:
    """kube-system's ``k8semu-agent`` DaemonSet, one pod per node, and its ConfigMap."""
    meta = ObjectMeta("k8semu-agent", "kube-system", dict(AGENT_LABELS))
    return [ConfigMap(ObjectMeta("k8semu-config", "kube-system", dict(AGENT_LABELS)),
                      {"k8semu-agent.conf": yaml.safe_dump(agent_config(config), sort_keys=False)}),
            DaemonSet(meta, LabelSelector(dict(AGENT_LABELS)),
                      _template(AGENT_LABELS, "openflow-agent", AGENT_IMAGE, True), max_unavailable=1)]


def metallb(config: ClusterConfig) -> list:
    """MetalLB's ``speaker`` DaemonSet in metallb-system, as its native manifest installs it, when
    the cluster has an address pool. Not its ``controller`` Deployment: the manager assigns the
    addresses, and a pod of it on one node would change where the scheduler spreads the user's."""
    if not config.lb_pool:
        return []
    speaker = {"app": "metallb", "component": "speaker"}
    return [Namespace(ObjectMeta(METALLB_NAMESPACE, "", {"app": "metallb"})),
            DaemonSet(ObjectMeta("speaker", METALLB_NAMESPACE, dict(speaker)), LabelSelector(dict(speaker)),
                      _template(speaker, "speaker", f"quay.io/metallb/speaker:{METALLB_VERSION}", True))]


FLANNEL_VERSION = "v0.25.6"
FLANNEL_NAMESPACE = rbacsystem.FLANNEL_NAMESPACE


def flannel(config: ClusterConfig) -> list:
    """kube-flannel.yml's objects a student looks at: the ``kube-flannel`` namespace, the
    ``kube-flannel-cfg`` ConfigMap's net-conf.json (the network and backend flanneld reads; its
    cni-conf.json is left out: the nodes' conflist is the bridge plugin's config itself, see
    docs/dataplanes.md) and the ``kube-flannel-ds`` DaemonSet."""
    labels = {"app": "flannel", "k8s-app": "flannel", "tier": "node"}
    backend = {"Type": config.flannel_backend}
    if config.flannel_backend == "vxlan":
        backend.update({"VNI": FLANNEL_VNI, "Port": FLANNEL_PORT})
    net_conf = json.dumps({"Network": config.pods.subnet, "EnableNFTables": False, "Backend": backend}, indent=2)
    return [rbacsystem.flannel_namespace(),
            ConfigMap(ObjectMeta("kube-flannel-cfg", FLANNEL_NAMESPACE, dict(labels)), {"net-conf.json": net_conf + "\n"}),
            DaemonSet(ObjectMeta("kube-flannel-ds", FLANNEL_NAMESPACE, dict(labels)), LabelSelector({"app": "flannel"}),
                      _template(labels, "kube-flannel", f"docker.io/flannel/flannel:{FLANNEL_VERSION}", True,
                                account="flannel"),
                      max_unavailable=1)]


CALICO_VERSION = "v3.29.1"


def calico(config: ClusterConfig) -> list:
    """calico.yaml's objects a student looks at (the manifest install, kube-system): the
    ``calico-config`` ConfigMap (BIRD as the backend, the veth MTU, the CNI network config the
    nodes have at /etc/cni/net.d/10-calico.conflist) and the ``calico-node`` DaemonSet."""
    labels = {"k8s-app": "calico-node"}
    pools = config.calico.pools if config.calico else ()
    cni = json.dumps({"name": "k8s-pod-network", "cniVersion": "1.0.0",
                      "plugins": [{"type": "calico", "datastore_type": "kubernetes", "mtu": "__CNI_MTU__",
                                   "nodename": "__KUBERNETES_NODE_NAME__", "ipam": {"type": "calico-ipam"},
                                   "policy": {"type": "k8s"}},
                                  {"type": "portmap", "snat": True, "capabilities": {"portMappings": True}}]}, indent=2)
    data = {"typha_service_name": "none", "calico_backend": "bird", "veth_mtu": str(config.pod_mtu),
            "cni_network_config": cni + "\n",
            "ip_pools": yaml.safe_dump([{"name": p.name, "cidr": p.cidr, "blockSize": p.block_size,
                                         "encapsulation": p.encapsulation, "natOutgoing": p.nat_outgoing}
                                        for p in pools], sort_keys=False)}
    return [ConfigMap(ObjectMeta("calico-config", "kube-system"), data),
            DaemonSet(ObjectMeta("calico-node", "kube-system", dict(labels)), LabelSelector(dict(labels)),
                      _template(labels, "calico-node", f"docker.io/calico/node:{CALICO_VERSION}", True,
                                {"kubernetes.io/os": "linux"}, account="calico-node"),
                      max_unavailable=1)]


def kube_proxy_config(config: ClusterConfig) -> str:
    """kubeadm's ``kube-proxy`` ConfigMap's config.conf, with what this cluster runs."""
    period = f"{config.min_sync_period:g}s"
    conf = {"apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
            "bindAddress": "0.0.0.0", "clusterCIDR": config.pods.subnet, "mode": config.kube_proxy,
            "iptables": {"masqueradeAll": False, "masqueradeBit": 14, "minSyncPeriod": period, "syncPeriod": "30s"},
            "nftables": {"masqueradeAll": False, "masqueradeBit": 14, "minSyncPeriod": period, "syncPeriod": "30s"},
            "clientConnection": {"kubeconfig": "/var/lib/kube-proxy/kubeconfig.conf"}}
    return yaml.safe_dump(conf, sort_keys=False)


def kube_proxy(config: ClusterConfig) -> list:
    """kubeadm's ``kube-proxy`` DaemonSet and ConfigMap in kube-system (wherever kube-proxy runs)."""
    labels = {"k8s-app": "kube-proxy"}
    return [ConfigMap(ObjectMeta("kube-proxy", "kube-system", {"app": "kube-proxy"}),
                      {"config.conf": kube_proxy_config(config)}),
            DaemonSet(ObjectMeta("kube-proxy", "kube-system", dict(labels)), LabelSelector(dict(labels)),
                      _template(labels, "kube-proxy", f"registry.k8s.io/kube-proxy:{KUBE_VERSION}", True,
                                {"kubernetes.io/os": "linux"}, account="kube-proxy"),  # as kubeadm's manifest
                      max_unavailable=1)]


def node_daemons(config: ClusterConfig) -> list:
    if config.cni == "calico":
        return kube_proxy(config) + calico(config) + metallb(config)
    if config.kernel_dataplane:
        return kube_proxy(config) + flannel(config) + metallb(config)
    if config.kube_proxy:  # beside the controller, as Antrea runs with kube-proxy
        return kube_proxy(config) + openflow_agent(config) + metallb(config)
    return openflow_agent(config) + metallb(config)
