"""kubernetes-sigs/ingress-controller-conformance, features/ingress_class.feature and
features/load_balancing.feature (release 1.19), transcribed: each Scenario is a test named after
it, in a namespace of its own; requests go from a host outside the cluster to the address the
Ingress status shows, with the scenario's Host header, as the suite sends them."""
from __future__ import annotations

import json


from tests.cluster import Cluster, k8semu, module_cluster, poll

OTHER_PLANES = ("topologies/ingress-flannel.yaml", "topologies/ingress-calico.yaml")  # make slow (the budget)
ingress_cluster = module_cluster("topologies/ingress.yaml", *OTHER_PLANES, slow=OTHER_PLANES)


def status(cluster: Cluster, namespace: str, name: str) -> dict:
    return json.loads(k8semu("--cluster", cluster.name, "get", "ingress", name, "-n", namespace, "-o",
                             "json").stdout)["status"]


def test_an_ingress_with_an_invalid_ingress_class_should_not_send_traffic_to_the_matching_backend_service(
        ingress_cluster: Cluster) -> None:
    ingress_cluster.apply(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: ingress-class}\n---\n"
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: test-ingress-class, namespace: ingress-class}\n"
        "spec:\n  ingressClassName: some-invalid-class-name\n  rules:\n    - host: ingress-class\n      http:\n"
        "        paths: [{path: /, pathType: Prefix, backend: {service: {name: ingress-class-prefix, "
        "port: {number: 8080}}}}]\n")
    # "Then The Ingress status should not contain the IP address or FQDN"
    assert status(ingress_cluster, "ingress-class", "test-ingress-class") == {"loadBalancer": {}}
    table = k8semu("--cluster", ingress_cluster.name, "get", "ingress", "-n", "ingress-class").stdout.splitlines()
    assert table[1].split()[:4] == ["test-ingress-class", "some-invalid-class-name", "ingress-class", "80"]


def test_an_ingress_with_no_rules_should_send_all_requests_to_the_default_backend(ingress_cluster: Cluster) -> None:
    ns = "load-balancing"
    ingress_cluster.apply(
        f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n---\n"
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: echo-service, namespace: {ns}}}\nspec:\n"
        "  replicas: 1\n  selector: {matchLabels: {app: echo-service}}\n  template:\n"
        "    metadata: {labels: {app: echo-service}}\n"
        "    spec: {containers: [{name: e, image: k8semu/echo, env: [{name: PORT, value: '8080'}]}]}\n---\n"
        f"apiVersion: v1\nkind: Service\nmetadata: {{name: echo-service, namespace: {ns}}}\n"
        "spec: {selector: {app: echo-service}, ports: [{port: 8080}]}\n---\n"
        f"apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: load-balancing, namespace: {ns}}}\n"
        "spec: {defaultBackend: {service: {name: echo-service, port: {number: 8080}}}}\n")
    # "Then The Ingress status shows the IP address or FQDN where it is exposed": the suite then
    # dials that address on 80 (and 443 for TLS): here the controller's LoadBalancer address
    address = status(ingress_cluster, ns, "load-balancing")["loadBalancer"]["ingress"][0]["ip"]
    controller = json.loads(k8semu("--cluster", ingress_cluster.name, "get", "svc", "ingress-nginx-controller", "-n",
                                   "ingress-nginx", "-o", "json").stdout)
    assert address == controller["status"]["loadBalancer"]["ingress"][0]["ip"]
    # "Then The backend deployment "echo-service" for the ingress resource is scaled to 10"
    k8semu("--cluster", ingress_cluster.name, "scale", "deployment", "echo-service", "-n", ns, "--replicas=10")
    pods = ingress_cluster.wait_running(ns, count=10, timeout=60)
    ingress_cluster.synced()
    ips = {p["status"]["podIP"] for p in pods}
    script = ("for i in $(seq 100); do curl -s -m 3 -w ' %{http_code}' -H 'Host: load-balancing' "
              f"http://{address}/ | tr -d '\\n'; echo; done")  # one line per reply: body, status

    def all_ten() -> list[tuple[str, str]] | None:
        # nginx picks up the new endpoints on its next reload: poll until it balances over all ten
        out = ingress_cluster.exec("outside", "sh", "-c", script, timeout=120).stdout.splitlines()
        replies = [(line.rsplit(" ", 1)[0], line.rsplit(" ", 1)[1]) for line in out if " " in line]
        seen = {json.loads(body)["pod"] for body, code in replies if code == "200"}
        return replies if len(seen) == 10 else None

    replies = poll(all_ten, timeout=60, what="100 requests to reach the 10 pods")
    # "all the responses status-code must be 200 and the response body should contain the IP
    # address of 10 different Kubernetes pods"
    assert len(replies) == 100 and {code for _, code in replies} == {"200"}
    assert {json.loads(body)["podIP"] for body, _ in replies} == ips
    tls = ingress_cluster.exec("outside", "curl", "-sk", "-m", "3", "-o", "/dev/null", "-w", "%{http_code}",
                               "-H", "Host: load-balancing", f"https://{address}/")
    assert tls.stdout == "200"  # 443 answers on the status address too (nginx's default certificate)


def test_without_an_address_pool_the_status_shows_the_controllers_node_which_answers_on_80_and_443(
        tmp_path) -> None:
    """kind's ingress-nginx: no LoadBalancer, the controller's hostPorts 80 and 443; the status
    shows the node the controller runs on, and the suite's requests to it on 80/443 are served."""
    spec = tmp_path / "nopool.yaml"
    spec.write_text("apiVersion: k8semu.io/v1alpha1\nkind: Cluster\nmetadata: {name: nopool}\nspec:\n"
                    "  nodes: [{name: control-plane, role: control-plane}, {name: worker}]\n"
                    "  ingress: {enabled: true}\n  dns: {enabled: false}\n  externalHosts: [{name: outside}]\n")
    cluster = Cluster(str(spec)).up()
    try:
        cluster.apply(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: echo, labels: {app: echo}}\n"
            "spec: {containers: [{name: e, image: k8semu/echo, env: [{name: PORT, value: '8080'}]}]}\n---\n"
            "apiVersion: v1\nkind: Service\nmetadata: {name: echo}\nspec: {selector: {app: echo}, ports: [{port: 8080}]}\n"
            "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: default-backend}\n"
            "spec: {defaultBackend: {service: {name: echo, port: {number: 8080}}}}\n")
        controller = cluster.get("pods", "ingress-nginx")[0]
        node_ip = {n["metadata"]["name"]: n["status"]["addresses"][0]["address"]
                   for n in cluster.get("nodes")}[controller["spec"]["nodeName"]]
        assert status(cluster, "default", "default-backend") == {"loadBalancer": {"ingress": [{"ip": node_ip}]}}
        cluster.wait_running()
        cluster.synced()
        for url in (f"http://{node_ip}/", f"https://{node_ip}/"):
            reply = poll(lambda url=url: (lambda r: r.returncode == 0 and r)(
                cluster.exec("outside", "curl", "-sk", "-m", "3", url)), timeout=20, what=f"the ingress on {url}")
            assert json.loads(reply.stdout)["pod"] == "echo"
    finally:
        cluster.down()
