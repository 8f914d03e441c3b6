"""RBAC through the real kubectl and Python client: kubeadm's roles and bindings, a
ServiceAccount's token and what its RoleBinding grants, impersonation (``--as``), the escalation
check, exec's create on pods/exec, aggregation, and the review kinds behind ``kubectl auth``."""
from __future__ import annotations

import base64
import json

import pytest
from kubernetes import client as kclient, config as kconfig

from tests.cluster import KUBECONFIG, kubectl, module_cluster, poll

pytestmark = pytest.mark.requires_root
cluster = module_cluster("topologies/default.yaml")

SETUP = """apiVersion: v1
kind: Namespace
metadata: {name: rbac-demo}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: reader, namespace: rbac-demo}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: rbac-demo}
rules:
- {apiGroups: [""], resources: [pods], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: read-pods, namespace: rbac-demo}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects: [{kind: ServiceAccount, name: reader}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-admin, namespace: rbac-demo}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}
subjects: [{kind: User, name: alice}]
"""


@pytest.fixture(scope="module")
def demo(cluster):
    kubectl("apply", "-f", "-", input=SETUP)
    kubectl("run", "sh", "-n", "rbac-demo", "--image=busybox", "--", "sleep", "3600")
    poll(lambda: json.loads(kubectl("get", "pod", "sh", "-n", "rbac-demo", "-o", "json").stdout)["status"]
         .get("phase") == "Running", what="pod sh running")
    return cluster


def as_token(token: str, *args: str, check: bool = True):
    """kubectl with only a bearer token (no client certificate), as an in-cluster client is."""
    view = json.loads(kubectl("config", "view", "--minify", "--raw", "-o", "json").stdout)
    server = view["clusters"][0]["cluster"]["server"]
    ca = KUBECONFIG.parent / "rbac-ca.crt"
    ca.write_bytes(base64.b64decode(view["clusters"][0]["cluster"]["certificate-authority-data"]))
    return kubectl("--kubeconfig=/dev/null", f"--server={server}", f"--certificate-authority={ca}",
                   f"--token={token}", *args, check=check)


def test_a_fresh_cluster_has_the_bootstrap_roles_and_the_admin_is_a_master(cluster):
    roles = kubectl("get", "clusterroles", "-o", "name").stdout.split()
    assert {"clusterrole.rbac.authorization.k8s.io/" + n for n in
            ("admin", "edit", "view", "cluster-admin", "system:basic-user", "system:discovery")} <= set(roles)
    wide = kubectl("get", "clusterrolebinding", "cluster-admin", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    assert wide[1].split()[:2] == ["cluster-admin", "ClusterRole/cluster-admin"] and "system:masters" in wide[1]
    assert kubectl("auth", "whoami").stdout.split() == ["ATTRIBUTE", "VALUE", "Username", "kubernetes-admin",
                                                        "Groups", "[system:masters", "system:authenticated]"]
    assert kubectl("auth", "can-i", "*", "*").stdout == "yes\n"
    view = json.loads(kubectl("get", "clusterrole", "view", "-o", "json").stdout)
    assert {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "ingresses/status", "networkpolicies"],
            "verbs": ["get", "list", "watch"]} in view["rules"]  # gathered from system:aggregate-to-view


def test_a_service_account_token_gets_what_its_role_binding_grants_there_only(demo):
    token = kubectl("create", "token", "reader", "-n", "rbac-demo", "--duration=15m").stdout.strip()
    assert as_token(token, "get", "pods", "-n", "rbac-demo", "-o", "name").stdout.strip() == "pod/sh"
    denied = as_token(token, "get", "pods", "-n", "default", check=False)
    assert denied.returncode == 1 and denied.stderr.strip() == (
        'Error from server (Forbidden): pods is forbidden: User "system:serviceaccount:rbac-demo:reader" cannot list '
        'resource "pods" in API group "" in the namespace "default"')
    assert as_token(token, "auth", "can-i", "delete", "pods", "-n", "rbac-demo", check=False).stdout == "no\n"
    listed = as_token(token, "auth", "can-i", "--list", "-n", "rbac-demo").stdout.splitlines()
    assert ["pods", "[]", "[]", "[get", "list", "watch]"] in [line.split() for line in listed]
    short = kubectl("create", "token", "reader", "-n", "rbac-demo", "--duration=1m", check=False)
    assert "may not specify a duration less than 10 minutes" in short.stderr
    kubectl("create", "serviceaccount", "brief", "-n", "rbac-demo")
    brief = kubectl("create", "token", "brief", "-n", "rbac-demo").stdout.strip()
    assert "system:serviceaccount:rbac-demo:brief" in as_token(brief, "auth", "whoami").stdout
    kubectl("delete", "serviceaccount", "brief", "-n", "rbac-demo")
    gone = as_token(brief, "auth", "whoami", check=False)  # its ServiceAccount is gone: so is the token
    assert gone.returncode == 1 and "Unauthorized" in gone.stderr, gone.stderr
    kubectl("create", "serviceaccount", "brief", "-n", "rbac-demo")  # a namesake, with another uid
    again = as_token(brief, "auth", "whoami", check=False)  # does not inherit the old token
    assert again.returncode == 1 and "Unauthorized" in again.stderr, again.stderr
    kubectl("delete", "serviceaccount", "brief", "-n", "rbac-demo")


def test_impersonation_can_i_and_what_a_namespace_admin_may_grant(demo):
    assert kubectl("auth", "can-i", "create", "deployments", "-n", "rbac-demo", "--as=alice").stdout == "yes\n"
    no = kubectl("auth", "can-i", "create", "deployments", "-n", "default", "--as=alice", check=False)
    assert (no.returncode, no.stdout) == (1, "no\n")
    escalate = kubectl("create", "rolebinding", "sneaky", "--clusterrole=cluster-admin", "--user=alice",
                       "-n", "rbac-demo", "--as=alice", check=False)
    assert escalate.returncode == 1 and escalate.stderr.startswith(
        'error: failed to create rolebinding: rolebindings.rbac.authorization.k8s.io "sneaky" is forbidden: user '
        '"alice" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n'
        '{APIGroups:["*"], Resources:["*"], Verbs:["*"]}'), escalate.stderr
    assert kubectl("create", "rolebinding", "carol-view", "--clusterrole=view", "--user=carol", "-n", "rbac-demo",
                   "--as=alice").returncode == 0
    refused = kubectl("exec", "sh", "-n", "rbac-demo", "--as=carol", "--", "true", check=False)
    assert 'cannot create resource "pods/exec" in API group "" in the namespace "rbac-demo"' in refused.stderr
    assert kubectl("exec", "sh", "-n", "rbac-demo", "--as=alice", "--", "echo", "hi").stdout == "hi\n"
    changed = kubectl("patch", "rolebinding", "carol-view", "-n", "rbac-demo", "--type=merge",
                      "-p", '{"roleRef":{"name":"edit"}}', check=False)
    assert "cannot change roleRef" in changed.stderr
    whoami = kubectl("auth", "whoami", "--as=bob", "--as-group=dev").stdout.split()
    assert whoami == ["ATTRIBUTE", "VALUE", "Username", "bob", "Groups", "[dev", "system:authenticated]"]


def test_a_labelled_cluster_role_is_aggregated_into_view_edit_and_admin(cluster):
    kubectl("apply", "-f", "-", input="""apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: widget-viewer
  labels: {rbac.authorization.k8s.io/aggregate-to-view: "true"}
rules: [{apiGroups: [example.com], resources: [widgets], verbs: [get]}]
""")
    rule = {"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get"]}
    for role in ("view", "edit", "admin"):
        assert rule in json.loads(kubectl("get", "clusterrole", role, "-o", "json").stdout)["rules"], role
    kubectl("delete", "clusterrole", "widget-viewer")
    assert rule not in json.loads(kubectl("get", "clusterrole", "view", "-o", "json").stdout)["rules"]


def test_the_python_client_reads_rbac_and_asks_access_reviews(demo):
    api = kconfig.new_client_from_config(str(KUBECONFIG))
    names = {r.metadata.name for r in kclient.RbacAuthorizationV1Api(api).list_cluster_role().items}
    assert {"admin", "edit", "view"} <= names
    bindings = kclient.RbacAuthorizationV1Api(api).list_namespaced_role_binding("rbac-demo").items
    assert {b.metadata.name: b.role_ref.name for b in bindings}["read-pods"] == "pod-reader"
    review = kclient.V1SubjectAccessReview(spec=kclient.V1SubjectAccessReviewSpec(
        user="system:serviceaccount:rbac-demo:reader", groups=["system:serviceaccounts"],
        resource_attributes=kclient.V1ResourceAttributes(verb="list", resource="pods", namespace="rbac-demo")))
    answer = kclient.AuthorizationV1Api(api).create_subject_access_review(review)
    assert answer.status.allowed and answer.status.reason == (
        'RBAC: allowed by RoleBinding "read-pods/rbac-demo" of Role "pod-reader" to ServiceAccount "reader/rbac-demo"')


def test_the_components_run_as_their_own_service_accounts_with_kubeadms_roles(cluster):
    """kube-apiserver's controller, node and scheduler roles, kubeadm's bindings, and CoreDNS's
    pods holding a token of their ``coredns`` ServiceAccount that gets what ``system:coredns``
    grants (this cluster's Services are served by the OpenFlow pipeline: no kube-proxy account)."""
    accounts = set(kubectl("get", "serviceaccounts", "-n", "kube-system", "-o", "name").stdout.split())
    assert {"serviceaccount/" + n for n in ("coredns", "default", "endpointslice-controller", "token-cleaner",
                                            "generic-garbage-collector")} <= accounts
    assert "serviceaccount/kube-proxy" not in accounts and "serviceaccount/service-controller" not in accounts
    bindings = kubectl("get", "clusterrolebinding", "system:controller:endpoint-controller", "system:coredns",
                       "system:node-proxier", "-o", "wide").stdout.splitlines()
    assert [line.split() for line in bindings[1:]] == [
        ["system:controller:endpoint-controller", "ClusterRole/system:controller:endpoint-controller",
         bindings[1].split()[2], "kube-system/endpoint-controller"],
        ["system:coredns", "ClusterRole/system:coredns", bindings[2].split()[2], "kube-system/coredns"],
        ["system:node-proxier", "ClusterRole/system:node-proxier", bindings[3].split()[2], "system:kube-proxy"]]
    proxier = kubectl("describe", "clusterrole", "system:node-proxier").stdout
    assert [line.split() for line in proxier.splitlines() if "endpointslices" in line] == [
        ["endpointslices.discovery.k8s.io", "[]", "[]", "[list", "watch]"]]
    pods = kubectl("get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns", "-o",
                   "jsonpath={.items[*].spec.serviceAccountName}").stdout.split()
    assert pods and set(pods) == {"coredns"}
    token = kubectl("exec", "-n", "kube-system", "deploy/coredns", "--", "cat",
                    "/var/run/secrets/kubernetes.io/serviceaccount/token").stdout.strip()
    assert "Username    system:serviceaccount:kube-system:coredns" in as_token(token, "auth", "whoami").stdout
    slices = as_token(token, "get", "endpointslices", "-A", "-o", "name").stdout.split()
    assert any(name.startswith("endpointslice.discovery.k8s.io/kube-dns-") for name in slices)
    denied = as_token(token, "get", "secrets", "-n", "kube-system", check=False)
    assert denied.returncode == 1 and ('User "system:serviceaccount:kube-system:coredns" cannot list resource '
                                       '"secrets" in API group "" in the namespace "kube-system"') in denied.stderr
    controller = kubectl("create", "token", "deployment-controller", "-n", "kube-system").stdout.strip()
    assert as_token(controller, "auth", "can-i", "create", "replicasets.apps", "-n", "default").stdout == "yes\n"
    assert as_token(controller, "auth", "can-i", "create", "pods", "-n", "default", check=False).stdout == "no\n"
