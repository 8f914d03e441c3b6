"""kubernetes/kubernetes test/e2e/network/service.go and loadbalancer.go, transcribed where
k8semu failed them; each test is named after the e2e test it follows. The others are covered
by tests/integration/test_services.py (docs/conformance.md maps every one)."""
from __future__ import annotations

import json

import pytest

from tests.cluster import Cluster, k8semu, module_cluster

services_cluster = module_cluster("topologies/services.yaml")


def service(name: str, labels: str = "", extra: str = "") -> str:
    meta = f"{{name: {name}{', labels: {' + labels + '}' if labels else ''}}}"
    return (f"apiVersion: v1\nkind: Service\nmetadata: {meta}\n"
            f"spec: {{selector: {{app: web}}, ports: [{{port: 80}}]{extra}}}\n")


def cluster_ip(cluster: Cluster, name: str) -> str:
    return json.loads(k8semu("--cluster", cluster.name, "get", "svc", name, "-o", "json").stdout)["spec"]["clusterIP"]


def answers(cluster: Cluster, ip: str) -> bool:
    return cluster.exec("client", "curl", "-s", "-o", "/dev/null", "-m", "2", f"http://{ip}/").returncode == 0


LABELS = ["service.kubernetes.io/service-proxy-name: foo-bar", "service.kubernetes.io/headless: ''"]


@pytest.mark.parametrize("label", LABELS)
def test_should_implement_service_kubernetes_io_service_proxy_name_and_headless(
        services_cluster: Cluster, label: str) -> None:
    """e2e: "should implement service.kubernetes.io/service-proxy-name" and "... /headless":
    kube-proxy leaves a Service carrying the label alone; removing the label serves it."""
    name = "skip-" + label.split("/")[1].split(":")[0]
    services_cluster.apply(service(name, label))
    services_cluster.apply(service("plain"))
    services_cluster.synced()
    assert answers(services_cluster, cluster_ip(services_cluster, "plain"))
    assert not answers(services_cluster, cluster_ip(services_cluster, name))
    services_cluster.apply(service(name))  # the label removed
    services_cluster.synced()
    assert answers(services_cluster, cluster_ip(services_cluster, name))


def test_loadbalancer_class_of_another_implementation_gets_no_address(services_cluster: Cluster) -> None:
    """loadbalancer.go "should not have a LoadBalancer IP for a Service of another
    loadBalancerClass": the built-in pool (k8semu's MetalLB) serves class-less Services only."""
    services_cluster.apply(service("other-class", extra=", type: LoadBalancer, loadBalancerClass: example.com/other"))
    services_cluster.apply(service("default-class", extra=", type: LoadBalancer"))
    got = {s["metadata"]["name"]: s for s in services_cluster.get("svc", "default")}
    assert got["other-class"]["status"]["loadBalancer"] == {}
    assert got["other-class"]["spec"]["loadBalancerClass"] == "example.com/other"
    assert got["default-class"]["status"]["loadBalancer"]["ingress"][0]["ip"].startswith("10.50.100.")
