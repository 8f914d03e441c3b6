"""What k8semu knows of the Kubernetes API: kinds and the fields of the objects it reads.

``SUPPORTED`` fields are emulated. ``KNOWN`` fields exist in Kubernetes but are not emulated:
they are accepted with a warning so that manifests written for a real cluster apply unchanged.
Anything else is rejected, as ``kubectl apply`` with strict field validation does.
"""
from __future__ import annotations

# kind -> the apiVersion it is served under.
SUPPORTED_KINDS = {
    "Namespace": "v1",
    "Pod": "v1",
    "Deployment": "apps/v1",
    "ReplicaSet": "apps/v1",
    "Service": "v1",
    "Endpoints": "v1",
    "EndpointSlice": "discovery.k8s.io/v1",
    "NetworkPolicy": "networking.k8s.io/v1",
    "Ingress": "networking.k8s.io/v1",
    "IngressClass": "networking.k8s.io/v1",
    "Secret": "v1",
    "ConfigMap": "v1",
    "ServiceAccount": "v1",
    "PodDisruptionBudget": "policy/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "Job": "batch/v1",
    "CronJob": "batch/v1",
    "Role": "rbac.authorization.k8s.io/v1",
    "ClusterRole": "rbac.authorization.k8s.io/v1",
    "RoleBinding": "rbac.authorization.k8s.io/v1",
    "ClusterRoleBinding": "rbac.authorization.k8s.io/v1",
    "IPPool": "crd.projectcalico.org/v1",  # Calico's CRDs, on cni: calico (cluster/calicopools.py, calicobgp.py)
    "BGPConfiguration": "crd.projectcalico.org/v1",
    "BGPPeer": "crd.projectcalico.org/v1",
}
# Kinds of a real cluster that k8semu stores nothing for yet: accepted with a warning.
LATER_KINDS = {
    "PersistentVolumeClaim": "v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
}

TOP_SUPPORTED = {"apiVersion", "kind", "metadata", "spec"}
TOP_KNOWN = {"status"}

META_SUPPORTED = {"name", "namespace", "labels", "annotations", "generateName"}
META_KNOWN = {"uid", "resourceVersion", "creationTimestamp", "ownerReferences", "finalizers",
              "managedFields", "generation", "deletionTimestamp", "deletionGracePeriodSeconds",
              "selfLink"}

POD_SPEC_SUPPORTED = {"containers", "nodeName", "nodeSelector", "tolerations", "restartPolicy",
                      "hostname", "subdomain", "dnsPolicy", "dnsConfig", "enableServiceLinks",
                      "hostAliases", "securityContext", "terminationGracePeriodSeconds",
                      "hostNetwork", "volumes", "schedulerName", "serviceAccountName", "serviceAccount",
                      "automountServiceAccountToken",
                      # written by admission (model/podadmission.py): checked against what it computes
                      "priority", "preemptionPolicy"}
POD_SPEC_KNOWN = {"initContainers", "affinity", "imagePullSecrets",
                  "hostPID", "hostIPC", "priorityClassName",
                  "readinessGates", "runtimeClassName", "overhead",
                  "topologySpreadConstraints", "setHostnameAsFQDN", "os", "hostUsers",
                  "schedulingGates", "resourceClaims", "shareProcessNamespace",
                  "activeDeadlineSeconds", "ephemeralContainers"}

CONTAINER_SUPPORTED = {"name", "image", "command", "args", "env", "ports", "workingDir",
                       "readinessProbe", "livenessProbe", "resources", "securityContext", "lifecycle",
                       "stdin", "stdinOnce", "tty", "envFrom", "volumeMounts",
                       # the API server's defaults, which every object read back carries: images are
                       # local (any pull policy works alike); a termination message other than the
                       # default is warned of where it is read (spec.manifests)
                       "imagePullPolicy", "terminationMessagePath", "terminationMessagePolicy"}
CONTAINER_KNOWN = {"startupProbe", "volumeDevices", "resizePolicy", "restartPolicy"}

PORT_SUPPORTED = {"containerPort", "name", "protocol", "hostPort", "hostIP"}
PORT_KNOWN: set[str] = set()
ENV_SUPPORTED = {"name", "value", "valueFrom"}
FIELD_PATHS = {"metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
               "spec.serviceAccountName", "status.podIP", "status.hostIP", "status.podIPs", "status.hostIPs"}

WORKLOAD_SPEC_SUPPORTED = {"replicas", "selector", "template"}
DEPLOYMENT_SPEC_SUPPORTED = WORKLOAD_SPEC_SUPPORTED | {"revisionHistoryLimit", "strategy", "minReadySeconds",
                                                       "progressDeadlineSeconds"}
DEPLOYMENT_SPEC_KNOWN = {"paused"}
REPLICASET_SPEC_SUPPORTED = WORKLOAD_SPEC_SUPPORTED | {"minReadySeconds"}
REPLICASET_SPEC_KNOWN: set[str] = set()
STATEFULSET_SPEC_SUPPORTED = WORKLOAD_SPEC_SUPPORTED | {"serviceName", "podManagementPolicy", "updateStrategy",
                                                        "revisionHistoryLimit", "ordinals", "minReadySeconds"}
STATEFULSET_SPEC_KNOWN = {"volumeClaimTemplates", "persistentVolumeClaimRetentionPolicy"}
DAEMONSET_SPEC_SUPPORTED = {"selector", "template", "updateStrategy", "revisionHistoryLimit", "minReadySeconds"}
DAEMONSET_SPEC_KNOWN: set[str] = set()
JOB_SPEC_SUPPORTED = {"template", "completions", "parallelism", "backoffLimit", "suspend", "selector",
                      "manualSelector", "completionMode", "activeDeadlineSeconds", "ttlSecondsAfterFinished"}
CRONJOB_SPEC_SUPPORTED = {"schedule", "timeZone", "startingDeadlineSeconds", "concurrencyPolicy", "suspend",
                          "jobTemplate", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"}
JOB_SPEC_KNOWN = {"podFailurePolicy", "successPolicy",
                  "backoffLimitPerIndex", "maxFailedIndexes", "podReplacementPolicy", "managedBy"}
TEMPLATE_SUPPORTED = {"metadata", "spec"}
NAMESPACE_SPEC_KNOWN = {"finalizers"}
TOLERATION_FIELDS = {"key", "operator", "value", "effect", "tolerationSeconds"}
SELECTOR_FIELDS = {"matchLabels", "matchExpressions"}
PROBE_SUPPORTED = {"httpGet", "tcpSocket", "exec", "initialDelaySeconds", "periodSeconds",
                   "timeoutSeconds", "successThreshold", "failureThreshold"}
PROBE_KNOWN = {"grpc", "terminationGracePeriodSeconds"}
