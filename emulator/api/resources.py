"""The resources the API serves: one table that discovery, routing and the OpenAPI document
all read, so a kind cannot be routed without being discovered or the reverse.

Names, short names and categories are kube-apiserver's (``kubectl api-resources`` on a real
cluster), so ``kubectl get po,svc``, ``kubectl get all`` and ``deploy/web`` resolve as there.

A resource may belong to one data plane (``cni``): Calico's own objects (crd.projectcalico.org,
the CRDs calico.yaml installs) are served, discovered and documented on ``cni: calico`` clusters
only, as on a real cluster without Calico the group does not exist. The functions below take
the cluster's CNI; ``None`` means every resource (what a client resolving a word needs).
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from emulator.model.calico import CALICO_GROUP, CALICO_KINDS, CALICO_WRITTEN
from emulator.model.workload import SCALABLE

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
READ_VERBS = ("get", "list", "watch")


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    cni: str = ""  # served on clusters of this CNI only ("" = on every cluster)

    def served_on(self, cni: str | None) -> bool:
        return cni is None or not self.cni or self.cni == cni

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    def path(self, namespace: str | None = None, name: str = "", subresource: str = "") -> str:
        """The URL path of the collection, or of one object (and a subresource of it); names
        are quoted, so a user's word cannot reach another path."""
        out = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            out += f"/namespaces/{quote(namespace, safe='')}"
        out += f"/{self.plural}"
        if name:
            out += f"/{quote(name, safe='')}" + (f"/{subresource}" if subresource else "")
        return out

    def verbs_http(self) -> tuple[str, ...]:
        """The HTTP methods that write this resource (GET is always served)."""
        verbs = {"create": "POST", "update": "PUT", "patch": "PATCH", "delete": "DELETE"}
        return tuple(m for v, m in verbs.items() if v in self.verbs)

    def subresources(self) -> list[tuple[str, str, str, str, tuple[str, ...]]]:
        """(name, group, version, kind, verbs) of each subresource served, for both discovery
        forms (the per-version list and the aggregated one)."""
        out = []
        if self.kind == "Pod":
            out += [("log", "", "v1", "Pod", ("get",)),
                    ("exec", "", "v1", "PodExecOptions", ("create", "get")),
                    ("attach", "", "v1", "PodAttachOptions", ("create", "get")),
                    ("portforward", "", "v1", "PodPortForwardOptions", ("create", "get")),
                    ("eviction", "policy", "v1", "Eviction", ("create",))]
        if self.kind == "ServiceAccount":
            out.append(("token", "authentication.k8s.io", "v1", "TokenRequest", ("create",)))
        if self.kind in SCALABLE:
            out.append(("scale", "autoscaling", "v1", "Scale", ("get", "patch", "update")))
        return out

    def discovery(self) -> list[dict]:
        """This resource (and its subresources) as APIResourceList entries."""
        out: dict = {"name": self.plural, "singularName": self.singular, "namespaced": self.namespaced,
                     "kind": self.kind, "verbs": list(self.verbs)}
        if self.short_names:
            out["shortNames"] = list(self.short_names)
        if self.categories:
            out["categories"] = list(self.categories)
        entries = [out]
        for name, group, version, kind, verbs in self.subresources():
            entry = {"name": f"{self.plural}/{name}", "singularName": "", "namespaced": self.namespaced,
                     "kind": kind, "verbs": list(verbs)}
            if (group, version) != (self.group, self.version):
                entry.update(group=group, version=version)
            entries.append(entry)
        return entries

    def aggregated(self) -> dict:
        """This resource as an APIResourceDiscovery (apidiscovery.k8s.io/v2), subresources inside."""
        out: dict = {"resource": self.plural,
                     "responseKind": {"group": self.group, "version": self.version, "kind": self.kind},
                     "scope": "Namespaced" if self.namespaced else "Cluster",
                     "singularResource": self.singular, "verbs": list(self.verbs)}
        if self.short_names:
            out["shortNames"] = list(self.short_names)
        if self.categories:
            out["categories"] = list(self.categories)
        subs = [{"subresource": name, "responseKind": {"group": group, "version": version, "kind": kind},
                 "verbs": list(verbs)} for name, group, version, kind, verbs in self.subresources()]
        if subs:
            out["subresources"] = subs
        return out


RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "Namespace", "namespaces", False, ("ns",)),
    Resource("", "v1", "Node", "nodes", False, ("no",), verbs=READ_VERBS + ("patch", "update")),  # cordon only
    Resource("", "v1", "Pod", "pods", True, ("po",), ("all",)),
    Resource("", "v1", "Service", "services", True, ("svc",), ("all",)),
    Resource("", "v1", "Endpoints", "endpoints", True, ("ep",)),
    Resource("", "v1", "Secret", "secrets", True),
    Resource("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    Resource("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",)),
    Resource("", "v1", "Event", "events", True, ("ev",), verbs=READ_VERBS),
    # not emulated, and so always empty (read-only): served because clients list them
    # (``kubectl cluster-info dump``, ``kubectl get all``), as on any cluster with none
    Resource("", "v1", "ReplicationController", "replicationcontrollers", True, ("rc",), ("all",), verbs=READ_VERBS),
    Resource("apps", "v1", "Deployment", "deployments", True, ("deploy",), ("all",)),
    Resource("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), ("all",)),
    Resource("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",), ("all",)),
    Resource("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), ("all",)),
    # written by the StatefulSet and DaemonSet controllers only (kubectl rollout history|undo reads them)
    Resource("apps", "v1", "ControllerRevision", "controllerrevisions", True, verbs=READ_VERBS),
    Resource("batch", "v1", "Job", "jobs", True, (), ("all",)),
    Resource("batch", "v1", "CronJob", "cronjobs", True, ("cj",), ("all",)),
    Resource("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True),
    Resource("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, ("netpol",)),
    Resource("networking.k8s.io", "v1", "Ingress", "ingresses", True, ("ing",)),
    Resource("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False),
    Resource("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, ("pdb",)),
    Resource("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    Resource("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    Resource("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    Resource("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    # reviews: created and answered, never stored (api/authz.py)
    Resource("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", False, verbs=("create",)),
    Resource("authorization.k8s.io", "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews", True,
             verbs=("create",)),
    Resource("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False,
             verbs=("create",)),
    Resource("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", False,
             verbs=("create",)),
    Resource("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", False, verbs=("create",)),
    # the CRDs a data plane brings (Calico's on cni: calico; none on the others), read-only
    Resource("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False,
             ("crd", "crds"), ("api-extensions",), verbs=READ_VERBS),
    # Calico's CRDs (crd.projectcalico.org/v1): IPPools stored and written (cluster/calicopools.py),
    # the others read from the spec and Calico's IPAM (cluster/render_calico.py), read-only
    *(Resource(CALICO_GROUP, "v1", kind, plural, False, verbs=ALL_VERBS if kind in CALICO_WRITTEN else READ_VERBS,
               cni="calico") for kind, plural in CALICO_KINDS),
)
REVIEW_GROUPS = ("authentication.k8s.io", "authorization.k8s.io")


def served(cni: str | None) -> list[Resource]:
    """The resources a cluster of ``cni`` serves (every one for None)."""
    return [r for r in RESOURCES if r.served_on(cni)]


def groups(cni: str | None) -> dict[str, list[str]]:
    """Group name -> its versions, in the order discovery lists them (core first)."""
    out: dict[str, list[str]] = {}
    for r in served(cni):
        versions = out.setdefault(r.group, [])
        if r.version not in versions:
            versions.append(r.version)
    return out


def aggregated_discovery(core: bool, api_version: str, cni: str | None) -> dict:
    """The APIGroupDiscoveryList served at /api (``core``) or /apis when the client asks for
    aggregated discovery (kubectl does, then needs no request per group version)."""
    items = []
    for group, versions in groups(cni).items():
        if bool(group) == core:
            continue
        items.append({"metadata": {"name": group} if group else {},
                      "versions": [{"version": v, "freshness": "Current",
                                    "resources": [r.aggregated() for r in in_group_version(group, v, cni)]}
                                   for v in versions]})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {}, "items": items}


def in_group_version(group: str, version: str, cni: str | None) -> list[Resource]:
    return [r for r in served(cni) if r.group == group and r.version == version]


def find(group: str, version: str, plural: str, cni: str | None) -> Resource | None:
    return next((r for r in served(cni) if (r.group, r.version, r.plural) == (group, version, plural)), None)


def by_kind(kind: str) -> Resource | None:
    return next((r for r in RESOURCES if r.kind == kind), None)
