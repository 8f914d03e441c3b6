"""The RBAC objects of the cluster's own components, as kube-apiserver's bootstrap policy and
kubeadm make them: the roles of the nodes, the scheduler, kube-controller-manager and each of
its controllers (``system:controller:*``, bound to a ServiceAccount of kube-system named after
the controller, as kubeadm runs kube-controller-manager with ``--use-service-account-credentials``),
kube-proxy's (``system:node-proxier``) and the DNS's, the certificate approvers' and the
monitoring ones; and, with the component that uses them, what its install adds: kubeadm's
``kubeadm:node-proxier`` binding and ``kube-proxy`` Role, kubeadm's ``system:coredns`` role, the
``flannel`` and ``calico-node`` roles of kube-flannel.yml and calico.yaml, each with its
ServiceAccount, which the component's pods run as.

Unlike the user-facing roles (model/rbacdefaults.py), whose rules are limited to the resources
this API serves, these keep upstream's rules whole (leases, persistent volumes, CSRs, ...), so
``kubectl describe clusterrole system:node`` reads as on a cluster; a rule on a resource that is
not served grants access to nothing. Written out here from the roles a cluster serves (this is
data, in the order ``kubectl get clusterrole -o yaml`` shows it: verbs and resources sorted).
"""
from __future__ import annotations

from emulator.model.cluster import ClusterConfig
from emulator.model.config import ServiceAccount
from emulator.model.meta import Namespace, ObjectMeta
from emulator.model.rbac import GROUP, ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject
from emulator.model.rbacdefaults import AUTOUPDATE, BOOTSTRAP_LABELS

SYSTEM = "kube-system"
CONTROLLER = "system:controller:"
NODE_TOKEN_GROUP = "system:bootstrappers:kubeadm:default-node-token"  # kubeadm's bootstrap tokens
FLANNEL_NAMESPACE = "kube-flannel"


def _r(verbs: str, groups: str, resources: str = "", names: str = "", urls: str = "") -> PolicyRule:
    """A rule from space-separated words; ``core`` is the legacy group ("")."""
    return PolicyRule(tuple(verbs.split()), tuple("" if g == "core" else g for g in groups.split()),
                      tuple(resources.split()), tuple(names.split()), tuple(urls.split()))


EVENTS = _r("create patch update", "core events.k8s.io", "events")
READ = "get list watch"

# kube-apiserver's bootstrap ClusterRoles for components (besides the user-facing ones)
COMPONENT_ROLES: dict[str, tuple[PolicyRule, ...]] = {
    "system:certificates.k8s.io:certificatesigningrequests:nodeclient": (
        _r("create", "certificates.k8s.io", "certificatesigningrequests/nodeclient"),),
    "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient": (
        _r("create", "certificates.k8s.io", "certificatesigningrequests/selfnodeclient"),),
    "system:certificates.k8s.io:kube-apiserver-client-approver": (
        _r("approve", "certificates.k8s.io", "signers", "kubernetes.io/kube-apiserver-client"),),
    "system:certificates.k8s.io:kube-apiserver-client-kubelet-approver": (
        _r("approve", "certificates.k8s.io", "signers", "kubernetes.io/kube-apiserver-client-kubelet"),),
    "system:certificates.k8s.io:kubelet-serving-approver": (
        _r("approve", "certificates.k8s.io", "signers", "kubernetes.io/kubelet-serving"),),
    "system:certificates.k8s.io:legacy-unknown-approver": (
        _r("approve", "certificates.k8s.io", "signers", "kubernetes.io/legacy-unknown"),),
    "system:heapster": (_r(READ, "core", "events namespaces nodes pods"), _r(READ, "extensions", "deployments")),
    "system:kube-aggregator": (_r(READ, "core", "endpoints services"),),
    "system:kube-controller-manager": (
        EVENTS, _r("create", "coordination.k8s.io", "leases"),
        _r("get update", "coordination.k8s.io", "leases", "kube-controller-manager"),
        _r("create", "core", "secrets serviceaccounts"), _r("delete", "core", "secrets"),
        _r("get", "core", "configmaps namespaces secrets serviceaccounts"),
        _r("update", "core", "secrets serviceaccounts"), _r("create", "authentication.k8s.io", "tokenreviews"),
        _r("create", "authorization.k8s.io", "subjectaccessreviews"), _r("list watch", "*", "*"),
        _r("create", "core", "serviceaccounts/token")),
    "system:kube-dns": (_r("list watch", "core", "endpoints services"),),
    "system:kube-scheduler": (
        EVENTS, _r("create", "coordination.k8s.io", "leases"),
        _r("get update", "coordination.k8s.io", "leases", "kube-scheduler"), _r(READ, "core", "nodes"),
        _r("delete " + READ, "core", "pods"), _r("create", "core", "bindings pods/binding"),
        _r("patch update", "core", "pods/status"), _r(READ, "core", "replicationcontrollers services"),
        _r(READ, "apps extensions", "replicasets"), _r(READ, "apps", "statefulsets"),
        _r(READ, "policy", "poddisruptionbudgets"), _r(READ, "core", "persistentvolumeclaims persistentvolumes"),
        _r("create", "authentication.k8s.io", "tokenreviews"),
        _r("create", "authorization.k8s.io", "subjectaccessreviews"), _r(READ, "storage.k8s.io", "csinodes"),
        _r(READ, "core", "namespaces"), _r(READ, "storage.k8s.io", "csidrivers"),
        _r(READ, "storage.k8s.io", "csistoragecapacities")),
    "system:kubelet-api-admin": (_r(READ, "core", "nodes"), _r("proxy", "core", "nodes"),
                                 _r("*", "core", "nodes/log nodes/metrics nodes/proxy nodes/stats")),
    "system:monitoring": (_r("get", "", urls="/healthz /healthz/* /livez /livez/* /metrics /metrics/slis /readyz "
                                             "/readyz/*"),),
    "system:node": (
        _r("create", "authentication.k8s.io", "tokenreviews"),
        _r("create", "authorization.k8s.io", "localsubjectaccessreviews subjectaccessreviews"),
        _r(READ, "core", "services"), _r("create " + READ, "core", "nodes"), _r("patch update", "core", "nodes/status"),
        _r("patch update", "core", "nodes"), _r("create patch update", "core", "events"), _r(READ, "core", "pods"),
        _r("create delete", "core", "pods"), _r("patch update", "core", "pods/status"),
        _r("create", "core", "pods/eviction"), _r(READ, "core", "configmaps secrets"),
        _r("get", "core", "persistentvolumeclaims persistentvolumes"), _r("get", "core", "endpoints"),
        _r("create " + READ, "certificates.k8s.io", "certificatesigningrequests"),
        _r("create delete get patch update", "coordination.k8s.io", "leases"),
        _r("get", "storage.k8s.io", "volumeattachments"), _r("create", "core", "serviceaccounts/token"),
        _r("get patch update", "core", "persistentvolumeclaims/status"), _r(READ, "storage.k8s.io", "csidrivers"),
        _r("create delete get patch update", "storage.k8s.io", "csinodes"), _r(READ, "node.k8s.io", "runtimeclasses")),
    "system:node-bootstrapper": (_r("create " + READ, "certificates.k8s.io", "certificatesigningrequests"),),
    "system:node-problem-detector": (_r("get", "core", "nodes"), _r("patch", "core", "nodes/status"), EVENTS),
    "system:node-proxier": (_r("list watch", "core", "endpoints services"), _r(READ, "core", "nodes"), EVENTS,
                            _r("list watch", "discovery.k8s.io", "endpointslices")),
    "system:persistent-volume-provisioner": (
        _r("create delete " + READ, "core", "persistentvolumes"),
        _r("get list update watch", "core", "persistentvolumeclaims"), _r(READ, "storage.k8s.io", "storageclasses"),
        _r("watch", "core", "events"), EVENTS),
    "system:service-account-issuer-discovery": (_r("get", "", urls="/.well-known/openid-configuration "
                                                                   "/openid/v1/jwks"),),
    "system:volume-scheduler": (_r("get list patch update watch", "core", "persistentvolumes"),
                                _r(READ, "storage.k8s.io", "storageclasses"),
                                _r("get list patch update watch", "core", "persistentvolumeclaims")),
}

_APPS = "apps extensions"
# kube-controller-manager's controllers, each with its role (system:controller:<name>)
CONTROLLER_ROLES: dict[str, tuple[PolicyRule, ...]] = {
    "attachdetach-controller": (
        _r("list watch", "core", "persistentvolumeclaims persistentvolumes"), _r(READ, "core", "nodes"),
        _r("patch update", "core", "nodes/status"), _r("list watch", "core", "pods"), EVENTS,
        _r("create delete " + READ, "storage.k8s.io", "volumeattachments"), _r(READ, "storage.k8s.io", "csidrivers"),
        _r(READ, "storage.k8s.io", "csinodes")),
    "certificate-controller": (
        _r("delete " + READ, "certificates.k8s.io", "certificatesigningrequests"),
        _r("update", "certificates.k8s.io", "certificatesigningrequests/approval certificatesigningrequests/status"),
        _r("approve", "certificates.k8s.io", "signers", "kubernetes.io/kube-apiserver-client-kubelet"),
        _r("sign", "certificates.k8s.io", "signers", "kubernetes.io/kube-apiserver-client "
           "kubernetes.io/kube-apiserver-client-kubelet kubernetes.io/kubelet-serving kubernetes.io/legacy-unknown"),
        _r("create", "authorization.k8s.io", "subjectaccessreviews"), EVENTS),
    "clusterrole-aggregation-controller": (_r("escalate get list patch update watch", GROUP, "clusterroles"),),
    "cronjob-controller": (
        _r("get list update watch", "batch", "cronjobs"), _r("create delete get list patch update watch", "batch", "jobs"),
        _r("update", "batch", "cronjobs/status"), _r("update", "batch", "cronjobs/finalizers"),
        _r("delete list watch", "core", "pods"), EVENTS),
    "daemon-set-controller": (
        _r(READ, _APPS, "daemonsets"), _r("update", _APPS, "daemonsets/status"), _r("update", _APPS, "daemonsets/finalizers"),
        _r("list watch", "core", "nodes"), _r("create delete list patch watch", "core", "pods"),
        _r("create", "core", "pods/binding"), _r("create delete get list patch update watch", "apps", "controllerrevisions"),
        EVENTS),
    "deployment-controller": (
        _r("get list update watch", _APPS, "deployments"), _r("update", _APPS, "deployments/status"),
        _r("update", _APPS, "deployments/finalizers"),
        _r("create delete get list patch update watch", _APPS, "replicasets"),
        _r("get list update watch", "core", "pods"), EVENTS),
    "disruption-controller": (
        _r(READ, _APPS, "deployments"), _r(READ, _APPS, "replicasets"), _r(READ, "core", "replicationcontrollers"),
        _r(READ, "policy", "poddisruptionbudgets"), _r(READ, "apps", "statefulsets"),
        _r("update", "policy", "poddisruptionbudgets/status"), _r("patch update", "core", "pods/status"),
        _r("get", "*", "*/scale"), EVENTS),
    "endpoint-controller": (
        _r(READ, "core", "pods services"), _r("create delete get list update watch", "core", "endpoints"),
        _r("create", "core", "endpoints/restricted"), EVENTS),
    "endpointslice-controller": (
        _r(READ, "core", "nodes pods services"), _r("update", "core", "services/finalizers"),
        _r("create delete get list update watch", "discovery.k8s.io", "endpointslices"), EVENTS),
    "endpointslicemirroring-controller": (
        _r(READ, "core", "endpoints services"), _r("update", "core", "services/finalizers"),
        _r("update", "core", "endpoints/finalizers"),
        _r("create delete get list update watch", "discovery.k8s.io", "endpointslices"), EVENTS),
    "ephemeral-volume-controller": (
        _r(READ, "core", "pods"), _r("update", "core", "pods/finalizers"),
        _r("create " + READ, "core", "persistentvolumeclaims"), EVENTS),
    "expand-controller": (
        _r("get list patch update watch", "core", "persistentvolumes"),
        _r("patch update", "core", "persistentvolumeclaims/status"), _r(READ, "core", "persistentvolumeclaims"), EVENTS),
    "generic-garbage-collector": (_r("delete get list patch update watch", "*", "*"), EVENTS),
    "horizontal-pod-autoscaler": (
        _r(READ, "autoscaling", "horizontalpodautoscalers"), _r("update", "autoscaling", "horizontalpodautoscalers/status"),
        _r("get update", "*", "*/scale"), _r("list watch", "core", "pods"), _r("list watch", "metrics.k8s.io", "pods"),
        _r(READ, "custom.metrics.k8s.io", "*"), _r(READ, "external.metrics.k8s.io", "*"), EVENTS),
    "job-controller": (
        _r("get list patch update watch", "batch", "jobs"), _r("update", "batch", "jobs/status"),
        _r("update", "batch", "jobs/finalizers"), _r("create delete list patch watch", "core", "pods"), EVENTS),
    "legacy-service-account-token-cleaner": (
        _r("get", "core", "configmaps", "kube-apiserver-legacy-service-account-token-tracking"),
        _r("delete patch", "core", "secrets")),
    "namespace-controller": (
        _r("delete " + READ, "core", "namespaces"), _r("update", "core", "namespaces/finalize namespaces/status"),
        _r("delete deletecollection " + READ, "*", "*")),
    "node-controller": (
        _r("delete get list patch update watch", "core", "nodes"), _r("patch update", "core", "nodes/status"),
        _r("patch update", "core", "pods/status"), _r("delete " + READ, "core", "pods"), EVENTS),
    "persistent-volume-binder": (
        _r("create delete get list update watch", "core", "persistentvolumes"),
        _r("update", "core", "persistentvolumes/status"), _r("get list update watch", "core", "persistentvolumeclaims"),
        _r("update", "core", "persistentvolumeclaims/status"), _r("create delete " + READ, "core", "pods"),
        _r(READ, "storage.k8s.io", "storageclasses"), _r("list watch", "core", "nodes"), EVENTS,
        _r("watch", "core", "events")),
    "pod-garbage-collector": (
        _r("delete list watch", "core", "pods"), _r(READ, "core", "nodes"), _r("patch", "core", "pods/status")),
    "pv-protection-controller": (_r("get list update watch", "core", "persistentvolumes"), EVENTS),
    "pvc-protection-controller": (
        _r("get list update watch", "core", "persistentvolumeclaims"),
        _r("update", "core", "persistentvolumeclaims/status"), _r(READ, "core", "pods"), EVENTS),
    "replicaset-controller": (
        _r("get list update watch", _APPS, "replicasets"), _r("update", _APPS, "replicasets/status"),
        _r("update", _APPS, "replicasets/finalizers"), _r("create delete list patch watch", "core", "pods"), EVENTS),
    "replication-controller": (
        _r("get list update watch", "core", "replicationcontrollers"),
        _r("update", "core", "replicationcontrollers/status"), _r("update", "core", "replicationcontrollers/finalizers"),
        _r("create delete list patch watch", "core", "pods"), EVENTS),
    "resourcequota-controller": (_r("list watch", "*", "*"), _r("update", "core", "resourcequotas/status"), EVENTS),
    "root-ca-cert-publisher": (_r("create update", "core", "configmaps"), EVENTS),
    "route-controller": (_r("list watch", "core", "nodes"), _r("patch", "core", "nodes/status"), EVENTS),
    "service-account-controller": (_r("create", "core", "serviceaccounts"), EVENTS),
    "service-cidrs-controller": (
        _r("get list patch update watch", "networking.k8s.io", "servicecidrs"),
        _r("patch update", "networking.k8s.io", "servicecidrs/finalizers"),
        _r("patch update", "networking.k8s.io", "servicecidrs/status"), _r(READ, "networking.k8s.io", "ipaddresses"),
        EVENTS),
    "service-controller": (
        _r(READ, "core", "services"), _r("patch update", "core", "services/status"), _r("list watch", "core", "nodes"),
        EVENTS),
    "statefulset-controller": (
        _r("list watch", "core", "pods"), _r(READ, "apps", "statefulsets"), _r("update", "apps", "statefulsets/status"),
        _r("update", "apps", "statefulsets/finalizers"), _r("create delete get patch update", "core", "pods"),
        _r("create delete get list patch update watch", "apps", "controllerrevisions"),
        _r("create " + READ, "core", "persistentvolumeclaims"), _r("delete update", "core", "persistentvolumeclaims"),
        _r("update", "core", "pods/finalizers"), EVENTS),
    "ttl-after-finished-controller": (_r("delete " + READ, "batch", "jobs"), EVENTS),
    "ttl-controller": (_r("list patch update watch", "core", "nodes"), EVENTS),
    "validatingadmissionpolicy-status-controller": (
        _r(READ, "admissionregistration.k8s.io", "validatingadmissionpolicies"),
        _r("get patch update", "admissionregistration.k8s.io", "validatingadmissionpolicies/status"), EVENTS),
}
# route-controller and service-controller run in a cloud-controller-manager, which a kubeadm
# cluster on bare metal does not have: their roles and bindings exist, their ServiceAccounts not
CLOUD_CONTROLLERS = ("route-controller", "service-controller")


def _meta(name: str, namespace: str = "") -> ObjectMeta:
    return ObjectMeta(name, namespace, labels=dict(BOOTSTRAP_LABELS), annotations=dict(AUTOUPDATE))


def _subject(kind: str, name: str, namespace: str = "") -> Subject:
    return Subject(kind, name, namespace, "" if kind == "ServiceAccount" else GROUP)


def cluster_roles() -> list[ClusterRole]:
    roles = [ClusterRole(_meta(name), rules) for name, rules in COMPONENT_ROLES.items()]
    return roles + [ClusterRole(_meta(CONTROLLER + name), rules) for name, rules in CONTROLLER_ROLES.items()]


def cluster_role_bindings() -> list[ClusterRoleBinding]:
    """kube-apiserver's bindings of those roles: to the components' users (their kubeconfigs'
    client certificates on a kubeadm node) and to the controllers' ServiceAccounts."""
    who = {"system:kube-controller-manager": (_subject("User", "system:kube-controller-manager"),),
           "system:kube-dns": (_subject("ServiceAccount", "kube-dns", SYSTEM),),
           "system:kube-scheduler": (_subject("User", "system:kube-scheduler"),),
           "system:monitoring": (_subject("Group", "system:monitoring"),),
           "system:node": (),  # nodes are authorized by the Node authorizer since 1.8, not by this binding
           "system:node-proxier": (_subject("User", "system:kube-proxy"),),
           "system:service-account-issuer-discovery": (_subject("Group", "system:serviceaccounts"),),
           "system:volume-scheduler": (_subject("User", "system:kube-scheduler"),)}
    out = [ClusterRoleBinding(_meta(name), RoleRef("ClusterRole", name), subjects) for name, subjects in who.items()]
    return out + [ClusterRoleBinding(_meta(CONTROLLER + name), RoleRef("ClusterRole", CONTROLLER + name),
                                     (_subject("ServiceAccount", name, SYSTEM),)) for name in CONTROLLER_ROLES]


def controller_accounts() -> list[ServiceAccount]:
    """kube-system's ServiceAccounts that kube-controller-manager makes for its controllers (with
    kubeadm's ``--controllers=*,bootstrapsigner,tokencleaner``)."""
    names = [n for n in CONTROLLER_ROLES if n not in CLOUD_CONTROLLERS] + ["bootstrap-signer", "token-cleaner"]
    return [ServiceAccount(ObjectMeta(name, SYSTEM)) for name in sorted(names)]


def namespace_objects() -> list:
    """kube-apiserver's bootstrap Roles and RoleBindings of kube-system and kube-public."""
    user = lambda name: _subject("User", name)  # noqa: E731
    account = lambda name: _subject("ServiceAccount", name, SYSTEM)  # noqa: E731
    lease = ("create get list update watch", "coordination.k8s.io")
    roles = [  # (namespace, name, rules, the binding's name, its subjects)
        ("kube-public", CONTROLLER + "bootstrap-signer",
         (_r(READ, "core", "configmaps"), _r("update", "core", "configmaps", "cluster-info"), EVENTS),
         CONTROLLER + "bootstrap-signer", (account("bootstrap-signer"),)),
        (SYSTEM, "extension-apiserver-authentication-reader",
         (_r(READ, "core", "configmaps", "extension-apiserver-authentication"),),
         "system::extension-apiserver-authentication-reader",
         (user("system:kube-controller-manager"), user("system:kube-scheduler"))),
        (SYSTEM, "system::leader-locking-kube-controller-manager", (_r(*lease, "leases"), _r(*lease, "leasecandidates")),
         "system::leader-locking-kube-controller-manager",
         (user("system:kube-controller-manager"), account("kube-controller-manager"),
          account("leader-election-controller"))),
        (SYSTEM, "system::leader-locking-kube-scheduler", (_r(*lease, "leases"), _r(*lease, "leasecandidates")),
         "system::leader-locking-kube-scheduler", (user("system:kube-scheduler"), account("kube-scheduler"))),
        (SYSTEM, CONTROLLER + "bootstrap-signer", (_r(READ, "core", "secrets"),),
         CONTROLLER + "bootstrap-signer", (account("bootstrap-signer"),)),
        (SYSTEM, CONTROLLER + "cloud-provider", (_r("create " + READ, "core", "configmaps"),),
         CONTROLLER + "cloud-provider", (account("cloud-provider"),)),
        (SYSTEM, CONTROLLER + "token-cleaner", (_r("delete " + READ, "core", "secrets"), EVENTS),
         CONTROLLER + "token-cleaner", (account("token-cleaner"),)),
    ]
    out: list = []
    for namespace, name, rules, binding, subjects in roles:
        out += [Role(_meta(name, namespace), rules),
                RoleBinding(_meta(binding, namespace), RoleRef("Role", name), subjects)]
    return out


def kubeadm_objects() -> list:
    """What ``kubeadm init`` adds for joining nodes (their bootstrap tokens' group and
    ``system:nodes``): reading the nodes, the ``cluster-info`` ConfigMap (anonymously), the
    kubelet's and kubeadm's ConfigMaps, and asking for (and auto-approving) node certificates."""
    tokens, nodes = _subject("Group", NODE_TOKEN_GROUP), _subject("Group", "system:nodes")
    plain = lambda name, namespace="": ObjectMeta(name, namespace)  # noqa: E731  (kubeadm labels nothing)
    csr = "system:certificates.k8s.io:certificatesigningrequests:"
    out: list = [ClusterRole(plain("kubeadm:get-nodes"), (_r("get", "core", "nodes"),))]
    for name, role, who in (("kubeadm:get-nodes", "kubeadm:get-nodes", tokens),
                            ("kubeadm:kubelet-bootstrap", "system:node-bootstrapper", tokens),
                            ("kubeadm:node-autoapprove-bootstrap", csr + "nodeclient", tokens),
                            ("kubeadm:node-autoapprove-certificate-rotation", csr + "selfnodeclient", nodes)):
        out.append(ClusterRoleBinding(plain(name), RoleRef("ClusterRole", role), (who,)))
    for namespace, name, configmap, subjects in (
            ("kube-public", "kubeadm:bootstrap-signer-clusterinfo", "cluster-info",
             (_subject("User", "system:anonymous"),)),
            (SYSTEM, "kubeadm:kubelet-config", "kubelet-config", (nodes, tokens)),
            (SYSTEM, "kubeadm:nodes-kubeadm-config", "kubeadm-config", (tokens, nodes))):
        out += [Role(plain(name, namespace), (_r("get", "core", "configmaps", configmap),)),
                RoleBinding(plain(name, namespace), RoleRef("Role", name), subjects)]
    return out


def _component(account: str, namespace: str, role: str, rules: tuple[PolicyRule, ...] | None,
               binding: str = "", labels: dict[str, str] | None = None) -> list:
    """A component's ServiceAccount, its ClusterRole (None: a bootstrap role) and the binding."""
    out: list = [ServiceAccount(ObjectMeta(account, namespace, dict(labels or {})))]
    if rules is not None:
        out.append(ClusterRole(ObjectMeta(role, labels=dict(labels or {})), rules))
    out.append(ClusterRoleBinding(ObjectMeta(binding or role, labels=dict(labels or {})), RoleRef("ClusterRole", role),
                                  (_subject("ServiceAccount", account, namespace),)))
    return out


def kube_proxy() -> list:
    """kubeadm's kube-proxy add-on: its ServiceAccount bound to ``system:node-proxier``, and the
    Role that lets a joining node's bootstrap token read the ``kube-proxy`` ConfigMap."""
    role = Role(ObjectMeta("kube-proxy", SYSTEM), (_r("get", "core", "configmaps", "kube-proxy"),))
    binding = RoleBinding(ObjectMeta("kube-proxy", SYSTEM), RoleRef("Role", "kube-proxy"),
                          (_subject("Group", NODE_TOKEN_GROUP),))
    return _component("kube-proxy", SYSTEM, "system:node-proxier", None, "kubeadm:node-proxier") + [role, binding]


def coredns() -> list:
    """kubeadm's CoreDNS add-on: the ``coredns`` ServiceAccount and ``system:coredns``."""
    rules = (_r("list watch", "core", "endpoints namespaces pods services"),
             _r("list watch", "discovery.k8s.io", "endpointslices"))
    return _component("coredns", SYSTEM, "system:coredns", rules)


def flannel(namespace: str) -> list:
    """kube-flannel.yml's ``flannel`` ServiceAccount and ClusterRole (flanneld reads the nodes'
    podCIDRs and writes its annotations on them)."""
    rules = (_r("get", "core", "pods"), _r(READ, "core", "nodes"), _r("patch", "core", "nodes/status"))
    return _component("flannel", namespace, "flannel", rules, labels={"k8s-app": "flannel"})


def calico_node() -> list:
    """calico.yaml's ``calico-node`` ServiceAccount and ClusterRole (Kubernetes datastore,
    Calico networking)."""
    crd = "crd.projectcalico.org"
    rules = (
        _r("create", "core", "serviceaccounts/token", "calico-node"), _r("get", "core", "namespaces nodes pods"),
        _r("list watch", "discovery.k8s.io", "endpointslices"), _r("get list watch", "core", "endpoints services"),
        _r("get", "core", "configmaps"), _r("patch update", "core", "nodes/status"),
        _r("list watch", "networking.k8s.io", "networkpolicies"),
        _r("list watch", "core", "namespaces pods serviceaccounts"), _r("patch", "core", "pods/status"),
        _r(READ, crd, "bgpconfigurations bgppeers blockaffinities caliconodestatuses clusterinformations "
           "felixconfigurations globalbgpconfigs globalfelixconfigs globalnetworkpolicies globalnetworksets "
           "hostendpoints ipamblocks ippools ipreservations networkpolicies networksets"),
        _r("create update", crd, "clusterinformations felixconfigurations ippools"),
        _r("update", crd, "caliconodestatuses"), _r(READ, "core", "nodes"),
        _r("create update", crd, "bgpconfigurations bgppeers"),
        _r("create delete get list update", crd, "blockaffinities ipamblocks ipamhandles"),
        _r("create get", crd, "ipamconfigs"), _r("watch", crd, "blockaffinities"), _r("get", "apps", "daemonsets"))
    return _component("calico-node", SYSTEM, "calico-node", rules)


def flannel_namespace() -> Namespace:
    """kube-flannel.yml's namespace, where flanneld's DaemonSet and ServiceAccount live."""
    labels = {"k8s-app": "flannel", "pod-security.kubernetes.io/enforce": "privileged"}
    return Namespace(ObjectMeta(FLANNEL_NAMESPACE, "", labels))


def identities(config: ClusterConfig) -> list:
    """What the components running here sign in as, with their roles: kube-proxy's (flannel and
    calico clusters, and beside the OpenFlow pipeline when ``kubeProxy.mode`` asks for it) and
    CoreDNS's ServiceAccounts as kubeadm makes them, the CNI agent's as its manifest does. The
    cluster state makes them with itself, before any pod that runs as them."""
    out = kube_proxy() if config.kernel_dataplane or config.kube_proxy else []
    out += coredns() if config.dns.enabled else []
    if config.cni == "calico":
        out += calico_node()
    elif config.cni == "flannel":
        out += [flannel_namespace()] + flannel(FLANNEL_NAMESPACE)
    return out
