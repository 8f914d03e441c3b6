"""hostNetwork pods without root: the API server's defaulting and validation of their ports,
the node's address as pod IP, no switch port or policy for them, the gateway hairpin for
Service endpoints outside the pod network, and what kubelet writes into them."""
from __future__ import annotations

from pathlib import Path

import pytest

from emulator.cli.plan import simulate
from emulator.cluster import controllers
from emulator.cluster.dataplane import network_view
from emulator.cluster.policies import compile_policies
from emulator.cluster.store import ContainerStatus
from emulator.errors import SpecError
from emulator.model import podfiles
from emulator.pipeline import fields
from emulator.pipeline.build import flows_for_node
from emulator.spec.loader import load_text
from emulator.spec.manifests import parse_documents

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"


def pod(name: str = "hn", ports: str = "[{containerPort: 9376}]", extra: str = "") -> str:
    return (f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{app: hn}}}}\n"
            f"spec:\n  hostNetwork: true\n  nodeName: worker-2\n{extra}"
            f"  containers: [{{name: c, image: k8semu/echo, ports: {ports}}}]\n")


def objects(text: str) -> list:
    return parse_documents(load_text(text, "hn.yaml")).objects


def test_a_host_network_pods_host_port_defaults_to_its_container_port() -> None:
    """The API server's SetDefaults_Pod: hostPort = containerPort on the host network."""
    (p,) = objects(pod())
    assert p.spec.host_network and p.spec.host_ports == (("TCP", "", 9376, 9376),)


def test_a_host_port_other_than_the_container_port_is_refused_on_the_host_network() -> None:
    with pytest.raises(SpecError, match="must match `containerPort` when `hostNetwork` is true"):
        objects(pod(ports="[{containerPort: 9376, hostPort: 9377}]"))


def test_hostnetwork_must_be_a_boolean() -> None:
    with pytest.raises(SpecError, match="expected bool"):
        objects(pod().replace("hostNetwork: true", "hostNetwork: 'yes'"))


def test_the_pod_takes_its_nodes_address_and_is_no_pod_of_the_switch() -> None:
    """Its IP is the node's; the view has no port or flows for it and no policy applies to it or
    admits it as a peer; as a Service endpoint it is outside the pod network, and only the flow
    from the gateway to it (DNAT, then SNAT) differs from a pod endpoint's."""
    state = simulate(str(TOPOLOGIES / "services.yaml"), seed=0)
    service = ("apiVersion: v1\nkind: Service\nmetadata: {name: hn}\n"
               "spec: {type: NodePort, selector: {app: hn}, ports: [{port: 80, targetPort: 9376}]}\n")
    policy = ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: all}\n"
              "spec: {podSelector: {}, ingress: [{from: [{podSelector: {}}]}]}\n")
    controllers.apply(state, objects(pod() + "---\n" + service + "---\n" + policy))
    rec = next(r for r in state.pods() if r.obj.meta.name == "hn")
    assert rec.status.ip == "172.18.0.4" and rec.status.node == "worker-2"
    for r in state.pods():
        r.status.phase = "Running"
        r.status.containers = {c.name: ContainerStatus(c.name, "running", ready=True) for c in r.obj.spec.containers}
    controllers.reconcile(state)
    view = network_view(state)
    assert "hn" not in {p.name for p in view.pods}
    (svc,) = [s for s in view.services if s.name == "hn"]
    assert [(e.ip, e.pod_network) for e in svc.endpoints] == [("172.18.0.4", False)]
    assert all(e.pod_network for s in view.services if s.name == "web" for e in s.endpoints)
    policies = compile_policies(state)
    assert "172.18.0.4" not in policies.isolated_ingress
    assert not any("172.18.0.4/32" in r.peers for r in policies.rules)
    flows = flows_for_node(view, "worker-2")
    gateway = [f for f in flows if f.table == "EndpointDNAT" and fields.FROM_GATEWAY.match in f.match]
    # the node-address endpoints only: this pod's and the API server's (the kubernetes Service)
    assert sorted(f.note.split()[4] for f in gateway) == ["172.18.0.2", "172.18.0.4"]


def test_kubelet_gives_a_host_network_pod_its_nodes_files() -> None:
    """ClusterFirst on the host network is the node's resolver (kubelet); ClusterFirstWithHostNet
    the cluster DNS. /etc/hosts is the node's, under kubelet's host-network header."""
    (plain,) = objects(pod())
    (with_net,) = objects(pod(extra="  dnsPolicy: ClusterFirstWithHostNet\n"))
    assert "10.96.0.10" not in podfiles.resolv_conf(plain, "10.96.0.10", "cluster.local")
    assert podfiles.resolv_conf(with_net, "10.96.0.10", "cluster.local").startswith(
        "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\n")
    hosts = podfiles.node_hosts_file("worker-2", "172.18.0.4", (("10.9.9.9", ("foo.example",)),))
    assert hosts.startswith("# Kubernetes-managed hosts file (host network).\n127.0.0.1\tlocalhost\n")
    assert "172.18.0.4\tworker-2\n" in hosts and hosts.endswith("# Entries added by HostAliases.\n10.9.9.9\tfoo.example\n")
    env = podfiles.container_env(plain, plain.spec.containers[0], "172.18.0.4", "worker-2", "172.18.0.4", "/d")
    assert env["HOSTNAME"] == "worker-2"


def test_marks_of_one_register_combine_into_one_match() -> None:
    assert fields.marks(fields.FROM_GATEWAY, fields.HAIRPIN_MARK) == ("reg0", (0x12, 0x1F))
    with pytest.raises(ValueError):
        fields.marks(fields.FROM_GATEWAY, fields.AFFINITY_HIT)
