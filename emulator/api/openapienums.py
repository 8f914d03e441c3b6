"""The enum lists of the fields k8semu emulates, as Kubernetes' own OpenAPI v3 documents carry
them (the ``+enum`` types of the API's types.go: kube-openapi lists a type's constants, sorted),
for ``kubectl explain``'s ``ENUM:`` section.

The schema copy k8semu serves (``openapi-schemas.json``, from the ``kubernetes-validate``
package's conversion of upstream's swagger) has no enum lists: swagger 2.0 never carried them.
They are written here by hand for the fields a networking course explains (Services, pods,
NetworkPolicy, Ingress, workloads' strategies), each a type's string constants; a field not
listed simply shows no ``ENUM:``, as before.
"""
from __future__ import annotations

PROTOCOLS = ["SCTP", "TCP", "UDP"]
EFFECTS = ["NoExecute", "NoSchedule", "PreferNoSchedule"]
ROLLING = ["OnDelete", "RollingUpdate"]

# definition -> property -> its values (an array's ``items`` for a list of them)
ENUMS: dict[str, dict[str, list[str]]] = {
    "io.k8s.api.core.v1.ServiceSpec": {
        "type": ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        "externalTrafficPolicy": ["Cluster", "Local"], "internalTrafficPolicy": ["Cluster", "Local"],
        "sessionAffinity": ["ClientIP", "None"],
        "ipFamilyPolicy": ["PreferDualStack", "RequireDualStack", "SingleStack"]},
    "io.k8s.api.core.v1.ServicePort": {"protocol": PROTOCOLS},
    "io.k8s.api.core.v1.ContainerPort": {"protocol": PROTOCOLS},
    "io.k8s.api.core.v1.EndpointPort": {"protocol": PROTOCOLS},
    "io.k8s.api.discovery.v1.EndpointPort": {"protocol": PROTOCOLS},
    "io.k8s.api.networking.v1.NetworkPolicyPort": {"protocol": PROTOCOLS},
    "io.k8s.api.networking.v1.NetworkPolicySpec": {"policyTypes": ["Egress", "Ingress"]},
    "io.k8s.api.networking.v1.HTTPIngressPath": {"pathType": ["Exact", "ImplementationSpecific", "Prefix"]},
    "io.k8s.api.core.v1.PodSpec": {
        "restartPolicy": ["Always", "Never", "OnFailure"],
        "dnsPolicy": ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"],
        "preemptionPolicy": ["Never", "PreemptLowerPriority"]},
    "io.k8s.api.core.v1.Container": {"imagePullPolicy": ["Always", "IfNotPresent", "Never"],
                                     "terminationMessagePolicy": ["FallbackToLogsOnError", "File"]},
    "io.k8s.api.core.v1.Toleration": {"operator": ["Equal", "Exists"], "effect": EFFECTS},
    "io.k8s.api.core.v1.Taint": {"effect": EFFECTS},
    "io.k8s.api.core.v1.NodeSelectorRequirement": {"operator": ["DoesNotExist", "Exists", "Gt", "In", "Lt", "NotIn"]},
    "io.k8s.api.apps.v1.DeploymentStrategy": {"type": ["Recreate", "RollingUpdate"]},
    "io.k8s.api.apps.v1.DaemonSetUpdateStrategy": {"type": ROLLING},
    "io.k8s.api.apps.v1.StatefulSetUpdateStrategy": {"type": ROLLING},
    "io.k8s.api.apps.v1.StatefulSetSpec": {"podManagementPolicy": ["OrderedReady", "Parallel"]},
    "io.k8s.api.batch.v1.CronJobSpec": {"concurrencyPolicy": ["Allow", "Forbid", "Replace"]},
    "io.k8s.api.batch.v1.JobSpec": {"completionMode": ["Indexed", "NonIndexed"]},
    "io.k8s.api.policy.v1.PodDisruptionBudgetSpec": {"unhealthyPodEvictionPolicy": ["AlwaysAllow", "IfHealthyBudget"]},
}


def with_enums(schemas: dict[str, dict]) -> dict[str, dict]:
    """``schemas`` with the enum lists above on their properties (new dicts where one is added;
    the others are the same objects)."""
    out = dict(schemas)
    for name, fields in ENUMS.items():
        if name not in out:
            continue
        props = dict(out[name].get("properties", {}))
        for field, values in fields.items():
            prop = dict(props[field])
            if prop.get("type") == "array":
                prop["items"] = {**prop.get("items", {}), "enum": list(values)}
            else:
                prop["enum"] = list(values)
            props[field] = prop
        out[name] = {**out[name], "properties": props}
    return out
