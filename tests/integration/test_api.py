"""The cluster's Kubernetes API, driven by the real kubectl and the official Python client."""
from __future__ import annotations

import json
import re
import ssl
import urllib.error
import urllib.request

import pytest
import yaml
from kubernetes import client as kclient, config as kconfig, watch

from emulator.spec.cluster import load_cluster
from tests.cluster import KUBECONFIG, KUBECTL, k8semu, kubectl, module_cluster, poll

pytestmark = pytest.mark.requires_root
cluster = module_cluster("topologies/three-node.yaml")

POLICY = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-web, namespace: demo}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [%s]
"""


def columns(text: str) -> list[list[str]]:
    """A kubectl table as rows of cells (cut at the header's column starts), without AGE."""
    lines = text.rstrip("\n").splitlines()
    starts = [m.start() for m in re.finditer(r"\S+(?: \S+)*", lines[0])]
    rows = [[line[a:b].strip() for a, b in zip(starts, starts[1:] + [None])] for line in lines]
    age = rows[0].index("AGE")
    return [r[:age] + r[age + 1:] for r in rows]


@pytest.mark.parametrize("args", [["nodes", "-o", "wide"], ["pods", "-A", "-o", "wide"], ["svc", "-A"],
                                  ["deploy", "-n", "demo", "-o", "wide"], ["ns"]])
def test_kubectl_get_prints_what_k8semu_get_prints(cluster, args):
    assert columns(kubectl("get", *args).stdout) == columns(k8semu("--cluster", cluster.name, "get", *args).stdout)


def test_up_merged_the_context_and_kubeconfig_prints_it(cluster):
    merged = yaml.safe_load(KUBECONFIG.read_text())
    assert merged["current-context"] == "k8semu-three-node"
    own = yaml.safe_load(k8semu("--cluster", cluster.name, "kubeconfig").stdout)
    assert own["clusters"][0]["cluster"]["server"].startswith("https://127.0.0.1:")
    assert own["clusters"] == [c for c in merged["clusters"] if c["name"] == "k8semu-three-node"]


def test_apply_reapply_configure_delete(cluster):
    assert kubectl("apply", "-f", "-", input=POLICY % "Ingress").stdout.strip() == \
        "networkpolicy.networking.k8s.io/deny-web created"
    assert kubectl("apply", "-f", "-", input=POLICY % "Ingress").stdout.strip() == \
        "networkpolicy.networking.k8s.io/deny-web unchanged"
    assert kubectl("apply", "-f", "-", input=POLICY % "Ingress, Egress").stdout.strip() == \
        "networkpolicy.networking.k8s.io/deny-web configured"
    shown = cluster.get("networkpolicy", "demo")
    assert [p["spec"]["policyTypes"] for p in shown] == [["Ingress", "Egress"]]
    assert "kubectl.kubernetes.io/last-applied-configuration" in shown[0]["metadata"]["annotations"]
    kubectl("delete", "-f", "-", input=POLICY % "Ingress")
    assert cluster.get("networkpolicy", "demo") == []


def test_invalid_object_is_refused_with_its_fields(cluster):
    bad = "apiVersion: v1\nkind: Service\nmetadata: {name: bad, namespace: demo}\n" \
          "spec:\n  selector: {app: web}\n  ports: [{port: 70000}]\n  bogus: 1\n"
    done = kubectl("apply", "-f", "-", input=bad, check=False)
    assert done.returncode == 1
    assert 'The Service "bad" is invalid' in done.stderr
    assert "spec.ports[0].port" in done.stderr and "spec.bogus" in done.stderr
    assert kubectl("get", "svc", "bad", "-n", "demo", check=False).returncode == 1


def test_kubectl_explain_reads_kubernetes_schemas(cluster):
    shown = kubectl("explain", "deployment.spec.strategy.rollingUpdate").stdout
    assert shown.startswith("GROUP:      apps\nKIND:       Deployment\nVERSION:    v1\n")
    assert "FIELD: rollingUpdate <RollingUpdateDeployment>" in shown
    assert "maxSurge\t<IntOrString>" in shown and "The maximum number of pods that can be scheduled" in shown
    pods = kubectl("explain", "pods").stdout
    assert "spec\t<PodSpec>\n    Specification of the desired behavior of the pod." in pods
    assert "selector\t<LabelSelector> -required-" in kubectl("explain", "deploy.spec", "--recursive").stdout
    assert "map[string]Quantity" in kubectl("explain", "pod.spec.containers.resources.limits").stdout
    done = kubectl("explain", "pod.spec.nope", check=False)
    assert done.returncode == 1 and 'field "nope" does not exist' in done.stderr
    typed = kubectl("explain", "service.spec.type").stdout
    assert "ENUM:\n    ClusterIP\n    ExternalName\n    LoadBalancer\n    NodePort\n" in typed, typed


def test_kubectl_discovers_every_resource_in_two_requests(cluster, tmp_path):
    """Aggregated discovery: kubectl asks /api and /apis for the whole list and needs no request
    per group version; what it lists is what the per-version documents list."""
    done = kubectl("api-resources", "--cache-dir", str(tmp_path), "-v=6")
    asked = re.findall(r'verb="GET" url="https://[^/"]+(/[^?"]*)', done.stderr)
    assert asked == ["/api", "/apis"]
    rows = {tuple(line.split()) for line in done.stdout.splitlines()[1:]}
    assert ("pods", "po", "v1", "true", "Pod") in rows
    assert ("deployments", "deploy", "apps/v1", "true", "Deployment") in rows
    assert ("ingressclasses", "networking.k8s.io/v1", "false", "IngressClass") in rows
    assert not any("crd.projectcalico.org" in " ".join(r) for r in rows)  # Calico's CRDs: cni: calico only
    missing = kubectl("get", "ippools", "--cache-dir", str(tmp_path), check=False)
    assert missing.returncode == 1 and 'the server doesn\'t have a resource type "ippools"' in missing.stderr
    assert "No resources found" in kubectl("get", "crd", "--cache-dir", str(tmp_path)).stderr
    legacy = json.loads(kubectl("get", "--raw", "/apis/apps/v1").stdout)
    assert {r["name"] for r in legacy["resources"] if "/" not in r["name"]} == \
        {r[0] for r in rows if "apps/v1" in r}
    assert kubectl("get", "deploy/echo", "-n", "demo", "--cache-dir", str(tmp_path), "-o", "name").stdout == \
        "deployment.apps/echo\n"


def test_apply_removes_a_list_element_dropped_from_the_file(cluster):
    """With schemas served, kubectl apply still merges lists by their keys: a port taken out of
    the file goes, the others stay."""
    svc = ("apiVersion: v1\nkind: Service\nmetadata: {name: two-ports, namespace: demo}\n"
           "spec:\n  selector: {app: web}\n  ports:\n%s")
    both = "  - {name: http, port: 80}\n  - {name: alt, port: 8080}\n"
    kubectl("apply", "-f", "-", input=svc % both)
    assert kubectl("apply", "-f", "-", input=svc % "  - {name: http, port: 80}\n").stdout.strip() == \
        "service/two-ports configured"
    shown = json.loads(kubectl("get", "svc", "two-ports", "-n", "demo", "-o", "json").stdout)
    assert [p["name"] for p in shown["spec"]["ports"]] == ["http"]
    kubectl("delete", "svc", "two-ports", "-n", "demo")


def test_objects_read_back_with_the_api_servers_defaults_and_replace_cleanly(cluster):
    """What the API server fills in is stored: it shows in -o yaml, and an object read and
    written back (kubectl replace, edit) is the same object, without warnings or a new ReplicaSet."""
    pod = json.loads(kubectl("get", "pods", "-n", "demo", "-l", "app=echo", "-o", "json").stdout)["items"][0]
    container = pod["spec"]["containers"][0]
    assert (container["terminationMessagePath"], container["terminationMessagePolicy"]) == \
        ("/dev/termination-log", "File")
    assert container["imagePullPolicy"] in ("Always", "IfNotPresent") and "resources" in container
    assert (pod["spec"]["enableServiceLinks"], pod["spec"]["securityContext"]) == (True, {})
    before = sorted(rs["metadata"]["name"] for rs in cluster.get("replicaset", "demo"))
    shown = kubectl("get", "deployment", "echo", "-n", "demo", "-o", "yaml").stdout
    done = kubectl("replace", "-f", "-", input=shown)
    assert done.stdout.strip() == "deployment.apps/echo replaced" and "Warning" not in done.stderr
    assert sorted(rs["metadata"]["name"] for rs in cluster.get("replicaset", "demo")) == before


def test_pods_carry_what_admission_adds_and_replace_cleanly(cluster):
    """DefaultTolerationSeconds, Priority and ServiceAccount admission (with its kube-api-access
    volume, which holds the pod's token): kubectl describe shows their fields as on a cluster, and
    a pod read and written back is unchanged, without warnings."""
    name = json.loads(kubectl("get", "pods", "-n", "demo", "-l", "app=echo", "-o", "json").stdout)["items"][0]
    name = name["metadata"]["name"]
    shown = kubectl("describe", "pod", name, "-n", "demo").stdout
    assert re.search(r"^Priority:\s+0$", shown, re.M) and re.search(r"^Service Account:\s+default$", shown, re.M)
    assert re.search(r"^Tolerations:\s+node.kubernetes.io/not-ready:NoExecute op=Exists for 300s\n"
                     r"\s+node.kubernetes.io/unreachable:NoExecute op=Exists for 300s$", shown, re.M)
    volume = re.search(r"/var/run/secrets/kubernetes.io/serviceaccount from (kube-api-access-[a-z0-9]{5}) \(ro\)",
                       shown).group(1)
    assert re.search(rf"^  {volume}:\n    Type:\s+Projected .*\n    TokenExpirationSeconds:\s+3607\n"
                     r"    ConfigMapName:\s+kube-root-ca.crt\n(.*\n)*?    DownwardAPI:\s+true$", shown, re.M)
    done = kubectl("replace", "-f", "-", input=kubectl("get", "pod", name, "-n", "demo", "-o", "yaml").stdout)
    assert done.stdout.strip() == f"pod/{name} replaced" and "Warning" not in done.stderr
    done = kubectl("label", "pod", name, "-n", "demo", "checked=yes")  # its ReplicaSet's ownerReferences go back
    assert done.stdout.strip() == f"pod/{name} labeled" and "Warning" not in done.stderr


def test_scale_through_the_scale_subresource(cluster):
    assert kubectl("scale", "deployment/echo", "-n", "demo", "--replicas=3").stdout.strip() == \
        "deployment.apps/echo scaled"
    cluster.wait_running("demo", count=6)
    kubectl("scale", "deployment", "echo", "-n", "demo", "--replicas=2")
    poll(lambda: len([p for p in cluster.get("pods", "demo", "app=echo")
                      if not p["metadata"].get("deletionTimestamp")]) == 2, what="two echo pods")


def test_python_client(cluster):
    api = kclient.CoreV1Api(kconfig.new_client_from_config(str(KUBECONFIG)))
    names = sorted(p.metadata.name for p in api.list_pod_for_all_namespaces().items)
    assert names == sorted(p["metadata"]["name"] for p in cluster.get("pods"))
    assert api.list_namespaced_pod("demo", label_selector="app=client").items
    with pytest.raises(kclient.ApiException) as err:
        api.read_namespaced_pod("nope", "demo")
    assert err.value.status == 404 and json.loads(err.value.body)["reason"] == "NotFound"
    made = api.create_namespace(kclient.V1Namespace(metadata=kclient.V1ObjectMeta(name="made-by-python")))
    assert made.metadata.name == "made-by-python"
    with pytest.raises(kclient.ApiException) as err:
        api.create_namespace(kclient.V1Namespace(metadata=kclient.V1ObjectMeta(name="made-by-python")))
    assert err.value.status == 409 and json.loads(err.value.body)["reason"] == "AlreadyExists"
    api.delete_namespace("made-by-python")
    assert "made-by-python" not in [n.metadata.name for n in api.list_namespace().items]


def test_requests_without_a_client_certificate_are_unauthorized(cluster):
    own = yaml.safe_load(k8semu("--cluster", cluster.name, "kubeconfig").stdout)
    server = own["clusters"][0]["cluster"]["server"]
    ca = (cluster.run / "pki" / "ca.crt").read_text()
    ctx = ssl.create_default_context(cadata=ca)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{server}/api/v1/pods", context=ctx, timeout=5)
    assert err.value.code == 401 and json.loads(err.value.read())["reason"] == "Unauthorized"
    assert urllib.request.urlopen(f"{server}/healthz", context=ctx, timeout=5).read() == b"ok"


def test_kubectl_create_commands_send_protobuf_and_work(cluster):
    """kubectl's typed 'create <kind>' commands and 'expose' (protobuf bodies), then the objects."""
    assert kubectl("create", "namespace", "made").stdout.strip() == "namespace/made created"
    assert kubectl("create", "deployment", "web", "--image=nginx", "--replicas=2", "--port=80",
                   "-n", "made").stdout.strip() == "deployment.apps/web created"
    assert kubectl("expose", "deployment", "web", "--port=80", "-n", "made").stdout.strip() == "service/web exposed"
    assert kubectl("create", "service", "nodeport", "np", "--tcp=80:8080", "-n", "made").stdout.strip() == \
        "service/np created"
    assert kubectl("create", "secret", "generic", "s", "--from-literal=a=b", "-n", "made").stdout.strip() == \
        "secret/s created"
    web = json.loads(kubectl("get", "deployment", "web", "-n", "made", "-o", "json").stdout)
    assert web["spec"]["replicas"] == 2
    assert web["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == 80
    np = json.loads(kubectl("get", "svc", "np", "-n", "made", "-o", "json").stdout)
    assert np["spec"]["type"] == "NodePort" and np["spec"]["ports"][0]["targetPort"] == 8080
    secret = json.loads(kubectl("get", "secret", "s", "-n", "made", "-o", "json").stdout)
    assert secret["data"] == {"a": "Yg=="}
    cluster.wait_running("made", count=2)
    kubectl("delete", "namespace", "made")


def test_logs_and_exec(cluster):
    assert "nginx" in kubectl("logs", "web-b", "-n", "demo", "--tail=50").stdout
    done = kubectl("exec", "client-b", "-n", "demo", "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert (done.returncode, done.stdout, done.stderr.splitlines()[0]) == (3, "out\n", "err")
    assert kubectl("exec", "-i", "client-b", "-n", "demo", "--", "cat", input="through stdin\n").stdout == \
        "through stdin\n"
    assert kubectl("exec", "client-c", "-n", "demo", "-c", "echo", "--", "printenv", "PORT").stdout == "8080\n"
    ip = cluster.pod("web-b", "demo")["status"]["podIP"]
    assert "Welcome to nginx" in kubectl("exec", "client-b", "-n", "demo", "--", "wget", "-qO-", "-T", "5",
                                         f"http://{ip}/").stdout


def test_watch_from_a_list_sees_the_new_pod_run(cluster):
    api = kclient.CoreV1Api(kconfig.new_client_from_config(str(KUBECONFIG)))
    listed = api.list_namespaced_pod("demo", label_selector="app=echo")
    before = {p.metadata.name for p in listed.items}
    kubectl("scale", "deployment/echo", "-n", "demo", "--replicas=3")
    seen = []
    for event in watch.Watch().stream(api.list_namespaced_pod, "demo", label_selector="app=echo",
                                      resource_version=listed.metadata.resource_version, timeout_seconds=20):
        pod = event["object"]
        seen.append((event["type"], pod.metadata.name, pod.status.phase))
        assert int(pod.metadata.resource_version) > int(listed.metadata.resource_version)
        if pod.metadata.name not in before and pod.status.phase == "Running":
            break
    assert seen and seen[0][0] == "ADDED" and seen[0][1] not in before, seen
    assert seen[-1][2] == "Running", seen
    kubectl("scale", "deployment/echo", "-n", "demo", "--replicas=2")
    assert kubectl("rollout", "status", "deployment/echo", "-n", "demo", "--timeout=30s").stdout.strip() == \
        'deployment "echo" successfully rolled out'


def test_watch_from_a_version_older_than_the_history_is_gone(cluster):
    api = kclient.CoreV1Api(kconfig.new_client_from_config(str(KUBECONFIG)))
    with pytest.raises(kclient.ApiException) as err:
        for _ in watch.Watch().stream(api.list_pod_for_all_namespaces, resource_version="1", timeout_seconds=5):
            pass
    assert err.value.status == 410


def test_kubectl_get_watch_prints_rows(cluster):
    """kubectl get -w: the Table watch (one row per event) ends at --request-timeout."""
    done = kubectl("get", "pods", "-n", "demo", "-l", "app=client", "-w", "--request-timeout=2s", check=False)
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "READY", "STATUS"]
    assert {line.split()[0] for line in lines[1:]} == {"client-b", "client-c"}


NO_TOKEN = """apiVersion: v1
kind: Pod
metadata: {name: no-token, namespace: demo}
spec:
  automountServiceAccountToken: false
  nodeName: node-b
  containers: [{name: shell, image: busybox}]
"""


def test_in_cluster_clients_use_their_service_account(cluster):
    """kubectl inside a pod finds the API through the kubernetes Service with the pod's token, and
    may read pods once a RoleBinding grants its ServiceAccount ``view`` (RBAC's 403 before)."""
    ask = ("exec", "client-b", "-n", "demo", "--", KUBECTL, "get", "pods", "-n", "demo", "-o", "name")
    denied = kubectl(*ask, check=False)
    assert 'pods is forbidden: User "system:serviceaccount:demo:default" cannot list resource "pods"' in denied.stderr
    kubectl("create", "rolebinding", "default-view", "--clusterrole=view", "--serviceaccount=demo:default", "-n", "demo")
    try:
        assert "pod/web-b" in kubectl(*ask).stdout.splitlines()
    finally:
        kubectl("delete", "rolebinding", "default-view", "-n", "demo")
    folder = "/var/run/secrets/kubernetes.io/serviceaccount"
    assert kubectl("exec", "client-b", "-n", "demo", "--", "cat", f"{folder}/namespace").stdout == "demo"
    anonymous = kubectl("exec", "client-b", "-n", "demo", "--", "curl", "-sk", "-m", "5",
                        "https://kubernetes.default.svc/api/v1/pods").stdout
    assert json.loads(anonymous)["code"] == 401
    kubectl("apply", "-f", "-", input=NO_TOKEN)
    poll(lambda: cluster.pod("no-token", "demo")["status"]["phase"] == "Running", what="no-token running")
    assert kubectl("exec", "no-token", "-n", "demo", "--", "ls", folder, check=False).returncode != 0
    kubectl("delete", "pod", "no-token", "-n", "demo")


def test_server_dry_run_and_stale_updates(cluster):
    assert kubectl("apply", "-f", "-", "--dry-run=server", input=POLICY % "Ingress").stdout.strip() == \
        "networkpolicy.networking.k8s.io/deny-web created (server dry run)"
    assert cluster.get("networkpolicy", "demo") == []
    kubectl("apply", "-f", "-", input=POLICY % "Ingress")
    current = kubectl("get", "networkpolicy", "deny-web", "-n", "demo", "-o", "json").stdout
    assert kubectl("replace", "-f", "-", input=current).stdout.strip() == \
        "networkpolicy.networking.k8s.io/deny-web replaced"
    done = kubectl("replace", "-f", "-", input=current, check=False)  # the version it names is gone now
    assert done.returncode == 1 and "Error from server (Conflict)" in done.stderr, done.stderr
    kubectl("delete", "-f", "-", input=POLICY % "Ingress")


def test_rollout_history_and_undo(cluster):
    """Old ReplicaSets are kept as revisions; undo brings one back as the next revision."""
    kubectl("create", "deployment", "roll", "--image=nginx:1.25", "--replicas=2", "-n", "demo")
    kubectl("set", "image", "deployment/roll", "nginx=nginx:1.26", "-n", "demo")
    kubectl("set", "image", "deployment/roll", "nginx=nginx:1.27", "-n", "demo")
    kubectl("rollout", "status", "deployment/roll", "-n", "demo", "--timeout=30s")
    history = kubectl("rollout", "history", "deployment/roll", "-n", "demo").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2", "3"]
    assert kubectl("rollout", "undo", "deployment/roll", "-n", "demo").stdout.strip() == \
        "deployment.apps/roll rolled back"
    image = "{.spec.template.spec.containers[0].image} {.metadata.annotations.deployment\\.kubernetes\\.io/revision}"
    assert kubectl("get", "deployment", "roll", "-n", "demo", "-o", f"jsonpath={image}").stdout == "nginx:1.26 4"
    kubectl("rollout", "status", "deployment/roll", "-n", "demo", "--timeout=30s")
    sets = json.loads(kubectl("get", "rs", "-n", "demo", "-l", "app=roll", "-o", "json").stdout)["items"]
    assert sorted(s["spec"]["replicas"] for s in sets) == [0, 0, 2]  # 1.26's ReplicaSet is back, not a new one
    poll(lambda: sorted(p["spec"]["containers"][0]["image"] for p in cluster.get("pods", "demo", "app=roll")
                        if not p["metadata"].get("deletionTimestamp")) == ["nginx:1.26", "nginx:1.26"],
         what="two nginx:1.26 pods")
    kubectl("delete", "deployment", "roll", "-n", "demo")


def test_describe_shows_what_the_controllers_and_the_kubelet_did(cluster):
    """The Events kube-scheduler, the kubelet, the ReplicaSet and Deployment controllers record."""
    pods = json.loads(kubectl("get", "pods", "-n", "demo", "-l", "app=echo", "-o", "json").stdout)["items"]
    pod = pods[0]["metadata"]["name"]
    reasons = [line.split()[1] for line in kubectl("describe", "pod", pod, "-n", "demo").stdout.splitlines()
               if line.strip().startswith("Normal")]
    assert reasons[:4] == ["Scheduled", "Pulled", "Created", "Started"], reasons
    assert "ScalingReplicaSet" in kubectl("describe", "deployment", "echo", "-n", "demo").stdout
    assert f"Created pod: {pod}" in kubectl("get", "events", "-n", "demo").stdout


SSA = """apiVersion: apps/v1
kind: Deployment
metadata: {name: ssa, namespace: demo, labels: {app: ssa%s}}
spec:
  replicas: 1
  selector: {matchLabels: {app: ssa}}
  template:
    metadata: {labels: {app: ssa}}
    spec: {containers: [{name: echo, image: k8semu/echo}]}
"""


def test_server_side_apply_owns_fields_conflicts_and_forces(cluster):
    """kubectl apply --server-side: created and owned by manager kubectl; kubectl scale takes
    spec.replicas, so the next apply of another count is refused naming it, --force-conflicts
    takes it back, and a label the applier stops applying goes."""
    done = kubectl("apply", "--server-side", "-f", "-", input=SSA % ", tier: front")
    assert done.stdout.strip() == "deployment.apps/ssa serverside-applied"
    shown = json.loads(kubectl("get", "deploy", "ssa", "-n", "demo", "-o", "json", "--show-managed-fields").stdout)
    (entry,) = shown["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"], entry["fieldsType"]) == ("kubectl", "Apply", "FieldsV1")
    assert "f:replicas" in entry["fieldsV1"]["f:spec"]
    assert "managedFields" not in json.loads(kubectl("get", "deploy", "ssa", "-n", "demo", "-o", "json").stdout)["metadata"]
    kubectl("scale", "deployment", "ssa", "-n", "demo", "--replicas=2")
    refused = kubectl("apply", "--server-side", "-f", "-", input=SSA % ", tier: front", check=False)
    assert refused.returncode == 1
    assert re.search(r'Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" using '
                     r'apps/v1 at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: \.spec\.replicas', refused.stderr), refused.stderr
    assert "--force-conflicts" in refused.stderr  # kubectl's advice follows the API's Status
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=SSA % "")
    after = json.loads(kubectl("get", "deploy", "ssa", "-n", "demo", "-o", "json", "--show-managed-fields").stdout)
    assert after["spec"]["replicas"] == 1 and after["metadata"]["labels"] == {"app": "ssa"}
    assert [(e["manager"], e["operation"]) for e in after["metadata"]["managedFields"]] == [("kubectl", "Apply")]
    kubectl("delete", "deployment", "ssa", "-n", "demo")


def test_configmaps_through_kubectl(cluster):
    """kubectl create configmap (protobuf), get cm, and an immutable ConfigMap's data refused."""
    done = kubectl("create", "configmap", "game", "-n", "demo", "--from-literal=lives=3", "--from-literal=level=easy")
    assert done.stdout.strip() == "configmap/game created"
    assert columns(kubectl("get", "cm", "game", "-n", "demo").stdout) == [["NAME", "DATA"], ["game", "2"]]
    assert kubectl("get", "configmap", "game", "-n", "demo", "-o", "jsonpath={.data.lives}").stdout == "3"
    kubectl("patch", "cm", "game", "-n", "demo", "-p", '{"immutable": true}')
    refused = kubectl("patch", "cm", "game", "-n", "demo", "-p", '{"data": {"lives": "9"}}', check=False)
    assert refused.returncode == 1 and "field is immutable when `immutable` is set" in refused.stderr
    assert kubectl("get", "cm", "game", "-n", "demo", "-o", "jsonpath={.data.lives}").stdout == "3"
    kubectl("delete", "cm", "game", "-n", "demo")


BOT_POD = """apiVersion: v1
kind: Pod
metadata: {name: bot, namespace: demo}
spec:
  serviceAccountName: bot
  nodeName: node-b
  containers: [{name: shell, image: busybox}]
"""


def test_service_accounts_and_the_root_ca_in_every_namespace(cluster):
    """As kube-controller-manager keeps them: the default ServiceAccount and kube-root-ca.crt
    (the CA pods get as ca.crt) in every namespace; kubectl create serviceaccount (protobuf), and a
    ServiceAccount that opts out of token mounting decides for the pods that do not say."""
    assert columns(kubectl("get", "sa", "-n", "demo").stdout) == [["NAME", "SECRETS"], ["default", "0"]]
    ca = kubectl("get", "cm", "kube-root-ca.crt", "-n", "demo", "-o", "jsonpath={.data.ca\\.crt}").stdout
    folder = "/var/run/secrets/kubernetes.io/serviceaccount"
    assert ca.startswith("-----BEGIN CERTIFICATE-----")
    assert ca == kubectl("exec", "client-b", "-n", "demo", "--", "cat", f"{folder}/ca.crt").stdout
    refused = kubectl("apply", "-f", "-", input=BOT_POD, check=False)  # the ServiceAccount admission plugin
    assert refused.returncode == 1 and "Error from server (Forbidden)" in refused.stderr
    assert 'pods "bot" is forbidden: error looking up service account demo/bot: serviceaccount "bot" not found' \
        in refused.stderr
    assert kubectl("create", "serviceaccount", "bot", "-n", "demo").stdout.strip() == "serviceaccount/bot created"
    kubectl("patch", "sa", "bot", "-n", "demo", "-p", '{"automountServiceAccountToken": false}')
    kubectl("apply", "-f", "-", input=BOT_POD)
    poll(lambda: cluster.pod("bot", "demo")["status"]["phase"] == "Running", what="the bot pod running")
    assert kubectl("exec", "bot", "-n", "demo", "--", "ls", folder, check=False).returncode != 0
    kubectl("delete", "pod", "bot", "-n", "demo", "--grace-period=0", "--force")
    kubectl("delete", "sa", "bot", "-n", "demo")
    described = kubectl("-n", "kube-system", "describe", "configmaps", "kubeadm-config").stdout  # the course's line
    subnets = [line.strip() for line in described.splitlines() if re.search("podsubnet|servicesubnet", line, re.I)]
    config = load_cluster(cluster.spec)
    assert subnets == [f"podSubnet: {config.pods.subnet}", f"serviceSubnet: {config.services.subnet}"]


ENV_POD = """apiVersion: v1
kind: Pod
metadata: {name: envy, namespace: demo}
spec:
  nodeName: node-b
  containers:
    - name: shell
      image: busybox
      envFrom: [{configMapRef: {name: settings}}, {secretRef: {name: creds}, prefix: SECRET_}]
      env: [{name: LIVES, valueFrom: {configMapKeyRef: {name: settings, key: lives}}}]
"""


def test_a_containers_environment_from_configmaps_and_secrets(cluster):
    """As the kubelet does it: a ConfigMap the environment names is missing -> the container
    waits in CreateContainerConfigError, saying which; once it exists the container starts with
    every key of envFrom (the Secret's decoded, with its prefix) and the valueFrom key."""
    kubectl("apply", "-f", "-", input=ENV_POD)

    def waiting() -> dict:
        statuses = cluster.pod("envy", "demo")["status"].get("containerStatuses") or [{}]
        return statuses[0].get("state", {}).get("waiting", {})
    poll(lambda: waiting().get("reason") == "CreateContainerConfigError", what="CreateContainerConfigError")
    assert waiting()["message"] == 'configmap "settings" not found'
    kubectl("create", "configmap", "settings", "-n", "demo", "--from-literal=lives=3", "--from-literal=level=easy")
    kubectl("create", "secret", "generic", "creds", "-n", "demo", "--from-literal=user=admin")
    poll(lambda: cluster.pod("envy", "demo")["status"]["phase"] == "Running", timeout=30, what="envy running")
    env = set(kubectl("exec", "envy", "-n", "demo", "--", "env").stdout.splitlines())
    assert {"lives=3", "level=easy", "SECRET_user=admin", "LIVES=3"} <= env
    kubectl("delete", "pod", "envy", "-n", "demo", "--grace-period=0", "--force")
    kubectl("delete", "cm", "settings", "-n", "demo")
    kubectl("delete", "secret", "creds", "-n", "demo")
