"""The components' RBAC without a cluster: kube-apiserver's bootstrap roles of the nodes, the
scheduler and each controller with their bindings and ServiceAccounts, kubeadm's objects, and the
ServiceAccounts kube-proxy, CoreDNS and the CNI agent run as, on each data plane."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from emulator.cluster import addons, nodedaemons, rbac
from emulator.cluster.admit import admit_cluster
from emulator.cluster.store import ClusterState
from emulator.model import rbacsystem
from emulator.model.rbac import SA_PREFIX, Attributes

ROOT = Path(__file__).resolve().parents[2]


def _as(account: str, verb: str, resource: str, group: str = "", namespace: str = "", subresource: str = "",
        name: str = "") -> Attributes:
    ns = account.split(":")[0]
    return Attributes(SA_PREFIX + account, ("system:serviceaccounts", f"system:serviceaccounts:{ns}",
                                            "system:authenticated"),
                      verb, True, group, resource, subresource, namespace, name)


def _state(topology: str) -> ClusterState:
    return ClusterState(admit_cluster(ROOT / "topologies" / topology))


def test_every_controller_role_is_bound_to_its_service_account_in_kube_system():
    st = _state("default.yaml")
    for name in rbacsystem.CONTROLLER_ROLES:
        role = st.get("ClusterRole", "", rbacsystem.CONTROLLER + name)
        binding = st.get("ClusterRoleBinding", "", rbacsystem.CONTROLLER + name)
        assert role is not None and binding is not None, name
        assert role.obj.meta.labels == {"kubernetes.io/bootstrapping": "rbac-defaults"}
        assert [(s.kind, s.namespace, s.name) for s in binding.obj.subjects] == [("ServiceAccount", "kube-system", name)]
        account = st.get("ServiceAccount", "kube-system", name)
        assert (account is None) == (name in rbacsystem.CLOUD_CONTROLLERS), name  # no cloud-controller-manager here
    for role in rbacsystem.cluster_roles():
        for rule in role.rules:  # as kube-apiserver stores them: verbs sorted
            assert list(rule.verbs) == sorted(rule.verbs), (role.meta.name, rule)


def test_what_the_controllers_and_components_may_do_is_upstreams():
    policy = rbac.policy_of(_state("default.yaml"))
    slices = dict(resource="endpointslices", group="discovery.k8s.io")
    assert policy.decide(_as("kube-system:endpointslice-controller", "create", namespace="demo", **slices))[0]
    assert not policy.decide(_as("kube-system:endpointslice-controller", "delete", "pods", namespace="demo"))[0]
    assert policy.decide(_as("kube-system:deployment-controller", "create", "replicasets", "apps", "demo"))[0]
    assert not policy.decide(_as("kube-system:deployment-controller", "create", "pods", namespace="demo"))[0]
    assert policy.decide(_as("kube-system:generic-garbage-collector", "delete", "anything", "any.group", "demo"))[0]
    assert policy.decide(_as("kube-system:disruption-controller", "get", "deployments", "apps", "demo", "scale"))[0]
    assert policy.decide(_as("kube-system:coredns", "watch", **slices))[0]  # kubeadm's system:coredns
    assert not policy.decide(_as("kube-system:coredns", "get", "secrets", namespace="kube-system"))[0]
    # kube-apiserver's own: the components' users (their client certificates on a kubeadm node)
    proxy = Attributes("system:kube-proxy", ("system:authenticated",), "list", True, "discovery.k8s.io", "endpointslices")
    assert policy.decide(proxy)[0] and not policy.decide(replace(proxy, verb="create"))[0]
    scheduler = Attributes("system:kube-scheduler", ("system:authenticated",), "create", True, "", "pods", "binding",
                           "demo", "web")
    assert policy.decide(scheduler)[0]
    node = Attributes("system:node:worker-1", ("system:nodes", "system:authenticated"), "get", True, "", "secrets",
                      namespace="demo")
    assert not policy.decide(node)[0]  # system:node is bound to no one: the Node authorizer's job
    assert policy.decide(replace(node, resource="configmaps", name="kubeadm-config", namespace="kube-system"))[0]
    assert not policy.decide(replace(node, resource="configmaps", name="other", namespace="kube-system"))[0]


@pytest.mark.parametrize("topology,expect", [
    ("default.yaml", {("kube-system", "coredns")}),  # the OpenFlow pipeline serves Services: no kube-proxy
    ("services-kube-proxy.yaml", {("kube-system", "coredns"), ("kube-system", "kube-proxy")}),
    ("flannel.yaml", {("kube-system", "coredns"), ("kube-system", "kube-proxy"), ("kube-flannel", "flannel")}),
    ("calico.yaml", {("kube-system", "coredns"), ("kube-system", "kube-proxy"), ("kube-system", "calico-node")}),
])
def test_the_components_that_run_have_their_service_accounts_and_roles(topology, expect):
    cfg = admit_cluster(ROOT / "topologies" / topology)
    made = rbacsystem.identities(cfg)
    accounts = {(o.meta.namespace, o.meta.name) for o in made if type(o).__name__ == "ServiceAccount"}
    assert accounts == expect
    no_dns = rbacsystem.identities(replace(cfg, dns=replace(cfg.dns, enabled=False)))
    assert ("kube-system", "coredns") not in {(o.meta.namespace, o.meta.name) for o in no_dns}
    st = ClusterState(cfg)
    policy = rbac.policy_of(st)
    for namespace, name in expect:
        rec = st.get("ServiceAccount", namespace, name)
        assert rec is not None and rec.id == 0  # made with the state, off the data plane's ids
    # the pods run as them: kubeadm's manifests, kube-flannel.yml, calico.yaml
    accounts_of = {o.meta.name: o.template.spec.raw.get("serviceAccountName", "default")
                   for o in nodedaemons.node_daemons(cfg) + addons.cluster_dns(cfg) if hasattr(o, "template")}
    assert accounts_of["coredns"] == "coredns"
    if ("kube-system", "kube-proxy") in expect:
        assert accounts_of["kube-proxy"] == "kube-proxy"
        assert policy.decide(_as("kube-system:kube-proxy", "watch", "endpointslices", "discovery.k8s.io"))[0]
        assert not policy.decide(_as("kube-system:kube-proxy", "create", "pods", namespace="default"))[0]
    if cfg.cni == "flannel":
        assert accounts_of["kube-flannel-ds"] == "flannel"
        assert policy.decide(_as("kube-flannel:flannel", "patch", "nodes", subresource="status", name="worker-1"))[0]
        assert not policy.decide(_as("kube-flannel:flannel", "patch", "nodes", name="worker-1"))[0]
    if cfg.cni == "calico":
        assert accounts_of["calico-node"] == "calico-node"
        assert policy.decide(_as("kube-system:calico-node", "list", "ippools", "crd.projectcalico.org"))[0]
        assert not policy.decide(_as("kube-system:calico-node", "delete", "ippools", "crd.projectcalico.org"))[0]


def test_the_seeded_objects_leave_the_data_planes_ids_alone():
    """The components' objects take no id and no draw of the seeded generator: what the data
    plane is given (uids, ClusterIPs, flow ids) is what it was before they existed."""
    cfg = admit_cluster(ROOT / "topologies" / "flannel.yaml")
    st = ClusterState(cfg)
    seeded = [r for r in st.records.values() if type(r.obj).__name__ in ("ServiceAccount", "Namespace")
              and r.obj.meta.name in {o.meta.name for o in rbacsystem.identities(cfg)
                                      + rbacsystem.controller_accounts()}]
    assert seeded and all(r.id == 0 for r in seeded)
    assert st.get("Namespace", "", rbacsystem.FLANNEL_NAMESPACE).id == 0  # made with its ServiceAccount
