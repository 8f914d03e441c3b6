"""The columns kubectl prints for each kind, computed from API-shaped objects.

The API server answers ``kubectl get`` with Table responses built from these (server-side
printing, as kube-apiserver's printers do), and ``k8semu get`` lays out the same rows, so the
two cannot disagree. Each entry of ``PRINTERS`` is (columns, wide-only columns, row function).
"""
from __future__ import annotations

import time
from typing import Callable

from emulator.api.resources import RESOURCES
from emulator.model.calico import CALICO_KINDS


def human_age(seconds: float) -> str:
    """kubectl's HumanDuration (k8s.io/apimachinery/pkg/util/duration)."""
    s = int(seconds)
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if h < 24 * 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    return f"{d}d" if d < 365 * 2 else f"{d // 365}y"


def epoch(stamp: str) -> float:
    """Seconds since the epoch of an API timestamp (RFC 3339, UTC, whole seconds)."""
    return time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone


def age(obj: dict, now: float | None = None) -> str:
    created = obj["metadata"].get("creationTimestamp")
    if not created:
        return "<unknown>"
    return human_age((now or time.time()) - epoch(created))


def pod_status(pod: dict) -> str:
    """The STATUS column: kubectl prefers a container's waiting/terminated reason to the phase."""
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    reason = pod["status"].get("phase", "Unknown")
    for cs in pod["status"].get("containerStatuses", []):
        state = cs.get("state", {})
        if "waiting" in state and state["waiting"].get("reason"):
            reason = state["waiting"]["reason"]
        elif "terminated" in state and state["terminated"].get("reason"):
            reason = state["terminated"]["reason"]
    if any(c["type"] == "PodScheduled" and c["status"] == "False" for c in pod["status"]["conditions"]):
        return "Pending"
    return reason


def _pod_row(p: dict, wide: bool) -> list[str]:
    statuses = p["status"].get("containerStatuses", [])
    ready = sum(1 for c in statuses if c.get("ready"))
    row = [p["metadata"]["name"], f"{ready}/{len(statuses)}", pod_status(p),
           str(sum(c.get("restartCount", 0) for c in statuses)), age(p)]
    if wide:
        row += [p["status"].get("podIP", "<none>"), p["spec"].get("nodeName", "<none>"), "<none>", "<none>"]
    return row


def _node_row(n: dict, wide: bool) -> list[str]:
    labels = n["metadata"]["labels"]
    roles = ",".join(sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))) or "<none>"
    ready = next(c for c in n["status"]["conditions"] if c["type"] == "Ready")["status"] == "True"
    info = n["status"]["nodeInfo"]
    status = ("Ready" if ready else "NotReady") + (",SchedulingDisabled" if n["spec"].get("unschedulable") else "")
    row = [n["metadata"]["name"], status, roles, age(n), info["kubeletVersion"]]
    if wide:
        ip = next(a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP")
        row += [ip, "<none>", info["osImage"], info["kernelVersion"], info["containerRuntimeVersion"]]
    return row


def _template_cols(o: dict) -> list[str]:
    containers = o["spec"]["template"]["spec"].get("containers", [])
    sel = ",".join(f"{k}={v}" for k, v in o["spec"]["selector"].get("matchLabels", {}).items())
    return [",".join(c["name"] for c in containers), ",".join(c["image"] for c in containers), sel]


def _deploy_row(d: dict, wide: bool) -> list[str]:
    st = d["status"]
    row = [d["metadata"]["name"], f"{st.get('readyReplicas', 0)}/{d['spec']['replicas']}",
           str(st.get("updatedReplicas", 0)), str(st.get("availableReplicas", 0)), age(d)]
    return row + (_template_cols(d) if wide else [])


def _rs_row(r: dict, wide: bool) -> list[str]:
    st = r["status"]
    row = [r["metadata"]["name"], str(r["spec"]["replicas"]), str(st.get("replicas", 0)),
           str(st.get("readyReplicas", 0)), age(r)]
    return row + (_template_cols(r) if wide else [])


def _sts_row(s: dict, wide: bool) -> list[str]:
    row = [s["metadata"]["name"], f"{s['status'].get('readyReplicas', 0)}/{s['spec']['replicas']}", age(s)]
    return row + (_template_cols(s)[:2] if wide else [])


def _ds_row(d: dict, wide: bool) -> list[str]:
    st = d["status"]
    selector = d["spec"]["template"]["spec"].get("nodeSelector") or {}
    row = [d["metadata"]["name"]] + [str(st.get(k, 0)) for k in (
        "desiredNumberScheduled", "currentNumberScheduled", "numberReady", "updatedNumberScheduled",
        "numberAvailable")] + [",".join(f"{k}={v}" for k, v in selector.items()) or "<none>", age(d)]
    return row + (_template_cols(d) if wide else [])


def _job_row(j: dict, wide: bool) -> list[str]:
    """kube-apiserver's printJob: STATUS from the conditions, COMPLETIONS, DURATION."""
    spec, st = j["spec"], j["status"]
    done = st.get("succeeded", 0)
    if "completions" in spec:
        completions = f"{done}/{spec['completions']}"
    else:
        completions = f"{done}/1 of {spec['parallelism']}" if spec.get("parallelism", 0) > 1 else f"{done}/1"
    duration = ""
    if st.get("startTime"):
        end = epoch(st["completionTime"]) if st.get("completionTime") else time.time()
        duration = human_age(end - epoch(st["startTime"]))
    kinds = {c["type"] for c in st.get("conditions", []) if c["status"] == "True"}
    status = next((word for word, kind in (("Complete", "Complete"), ("Failed", "Failed"), ("Terminating", None),
                                           ("Suspended", "Suspended"), ("FailureTarget", "FailureTarget"),
                                           ("SuccessCriteriaMet", "SuccessCriteriaMet"))
                   if (kind in kinds if kind else j["metadata"].get("deletionTimestamp"))), "Running")
    return [j["metadata"]["name"], status, completions, duration, age(j)] + (_template_cols(j) if wide else [])


def _cronjob_row(c: dict, wide: bool) -> list[str]:
    """kube-apiserver's printCronJob."""
    spec, st = c["spec"], c["status"]
    last = human_age(time.time() - epoch(st["lastScheduleTime"])) if st.get("lastScheduleTime") else "<none>"
    row = [c["metadata"]["name"], spec["schedule"], spec.get("timeZone", "<none>"), str(spec["suspend"]),
           str(len(st.get("active", []))), last, age(c)]
    if wide:
        containers = spec["jobTemplate"]["spec"]["template"]["spec"].get("containers", [])
        row += [",".join(x["name"] for x in containers), ",".join(x["image"] for x in containers), "<none>"]
    return row


def _ns_row(n: dict, wide: bool) -> list[str]:
    return [n["metadata"]["name"], n["status"]["phase"], age(n)]


def service_ports(svc: dict) -> str:
    """PORT(S): ``8080/TCP``, ``80:30007/TCP``."""
    out = []
    for p in svc["spec"].get("ports", []):
        node = f":{p['nodePort']}" if "nodePort" in p else ""
        out.append(f"{p['port']}{node}/{p['protocol']}")
    return ",".join(out) or "<none>"


def _svc_row(s: dict, wide: bool) -> list[str]:
    spec = s["spec"]
    ingress = [i["ip"] for i in s.get("status", {}).get("loadBalancer", {}).get("ingress", [])]
    if spec["type"] == "ExternalName":
        external = spec.get("externalName", "<none>")
    else:  # kubectl: the load balancer's addresses, then the externalIPs
        external = ",".join(ingress + spec.get("externalIPs", [])) or (
            "<pending>" if spec["type"] == "LoadBalancer" else "<none>")
    row = [s["metadata"]["name"], spec["type"], spec.get("clusterIP", "<none>"), external,
           service_ports(s), age(s)]
    if wide:
        row.append(",".join(f"{k}={v}" for k, v in spec.get("selector", {}).items()) or "<none>")
    return row


def endpoint_list(ep: dict, limit: int = 3) -> str:
    """ENDPOINTS: ``10.244.1.5:80,10.244.2.3:80 + 1 more...`` as kubectl shortens it."""
    items = [f"{a['ip']}:{p['port']}" for s in ep.get("subsets", []) for p in s.get("ports", [{}]) if "port" in p
             for a in s.get("addresses", [])]
    if not items:
        return "<none>"
    more = len(items) - limit
    return ",".join(items[:limit]) + (f" + {more} more..." if more > 0 else "")


def _ep_row(e: dict, wide: bool) -> list[str]:
    return [e["metadata"]["name"], endpoint_list(e), age(e)]


def _slice_row(s: dict, wide: bool) -> list[str]:
    ports = ",".join(str(p["port"]) for p in s.get("ports", [])) or "<unset>"
    addrs = [a for e in s.get("endpoints", []) for a in e["addresses"]]
    shown = ",".join(addrs[:3]) + (f" + {len(addrs) - 3} more..." if len(addrs) > 3 else "")
    return [s["metadata"]["name"], s["addressType"], ports, shown or "<unset>", age(s)]


def _ingress_row(i: dict, wide: bool) -> list[str]:
    spec = i["spec"]
    hosts = ",".join(r.get("host", "*") for r in spec.get("rules", [])) or "*"
    address = ",".join(x["ip"] for x in i["status"]["loadBalancer"].get("ingress", []))
    return [i["metadata"]["name"], spec.get("ingressClassName", "<none>"), hosts, address,
            "80, 443" if spec.get("tls") else "80", age(i)]


def _binding_row(b: dict, wide: bool) -> list[str]:
    """kubectl's RoleBinding columns: the role, then (wide) users, groups and ServiceAccounts."""
    subjects = b.get("subjects") or []

    def names(kind: str) -> str:
        return ", ".join(f'{s.get("namespace", "")}/{s["name"]}' if kind == "ServiceAccount" else s["name"]
                         for s in subjects if s["kind"] == kind)
    row = [b["metadata"]["name"], f'{b["roleRef"]["kind"]}/{b["roleRef"]["name"]}', age(b)]
    return row + [names("User"), names("Group"), names("ServiceAccount")] if wide else row


def _revision_row(o: dict, wide: bool) -> list[str]:
    """kubectl's columns for a ControllerRevision: its controller as ``statefulset.apps/web``."""
    owner = next((f"{r['kind'].lower()}.apps/{r['name']}" for r in o["metadata"].get("ownerReferences", [])), "<none>")
    return [o["metadata"]["name"], owner, str(o["revision"]), age(o)]


PRINTERS: dict[str, tuple[list[str], list[str], Callable[[dict, bool], list[str]]]] = {
    "Pod": (["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
            ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"], _pod_row),
    "Node": (["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
             ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"], _node_row),
    "Deployment": (["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
                   ["CONTAINERS", "IMAGES", "SELECTOR"], _deploy_row),
    "ReplicaSet": (["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
                   ["CONTAINERS", "IMAGES", "SELECTOR"], _rs_row),
    "StatefulSet": (["NAME", "READY", "AGE"], ["CONTAINERS", "IMAGES"], _sts_row),
    "DaemonSet": (["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"],
                  ["CONTAINERS", "IMAGES", "SELECTOR"], _ds_row),
    "Job": (["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"], ["CONTAINERS", "IMAGES", "SELECTOR"], _job_row),
    "ControllerRevision": (["NAME", "CONTROLLER", "REVISION", "AGE"], [], _revision_row),
    "ReplicationController": (["NAME", "DESIRED", "CURRENT", "READY", "AGE"], ["CONTAINERS", "IMAGES", "SELECTOR"],
                              _rs_row),
    "CronJob": (["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"],
                ["CONTAINERS", "IMAGES", "SELECTOR"], _cronjob_row),
    "Namespace": (["NAME", "STATUS", "AGE"], [], _ns_row),
    "PodDisruptionBudget": (["NAME", "MIN AVAILABLE", "MAX UNAVAILABLE", "ALLOWED DISRUPTIONS", "AGE"], [],
                            lambda o, w: [o["metadata"]["name"], str(o["spec"].get("minAvailable", "N/A")),
                                          str(o["spec"].get("maxUnavailable", "N/A")),
                                          str(o["status"]["disruptionsAllowed"]), age(o)]),
    "Service": (["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"], ["SELECTOR"], _svc_row),
    "Endpoints": (["NAME", "ENDPOINTS", "AGE"], [], _ep_row),
    "Ingress": (["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"], [], _ingress_row),
    "NetworkPolicy": (["NAME", "POD-SELECTOR", "AGE"], [],
                      lambda o, w: [o["metadata"]["name"], ",".join(f"{k}={v}" for k, v in o["spec"]["podSelector"]
                                                                    .get("matchLabels", {}).items()) or "<none>", age(o)]),
    "Secret": (["NAME", "TYPE", "DATA", "AGE"], [],
               lambda o, w: [o["metadata"]["name"], o["type"], str(len(o.get("data", {}))), age(o)]),
    "ConfigMap": (["NAME", "DATA", "AGE"], [],
                  lambda o, w: [o["metadata"]["name"], str(len(o.get("data", {})) + len(o.get("binaryData", {}))), age(o)]),
    "ServiceAccount": (["NAME", "SECRETS", "AGE"], [], lambda o, w: [o["metadata"]["name"], "0", age(o)]),
    "IngressClass": (["NAME", "CONTROLLER", "PARAMETERS", "AGE"], [],
                     lambda o, w: [o["metadata"]["name"], o["spec"]["controller"], "<none>", age(o)]),
    "Event": (["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], [],
              lambda o, w: [human_age(time.time() - epoch(o["lastTimestamp"])), o["type"], o["reason"],
                            f'{o["involvedObject"]["kind"].lower()}/{o["involvedObject"]["name"]}', o["message"]]),
    "EndpointSlice": (["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"], [], _slice_row),
    "Role": (["NAME", "CREATED AT"], [], lambda o, w: [o["metadata"]["name"], o["metadata"]["creationTimestamp"]]),
    "ClusterRole": (["NAME", "CREATED AT"], [], lambda o, w: [o["metadata"]["name"], o["metadata"]["creationTimestamp"]]),
    "RoleBinding": (["NAME", "ROLE", "AGE"], ["USERS", "GROUPS", "SERVICEACCOUNTS"], _binding_row),
    "ClusterRoleBinding": (["NAME", "ROLE", "AGE"], ["USERS", "GROUPS", "SERVICEACCOUNTS"], _binding_row),
    # a CRD without printer columns gets kube-apiserver's default table: name and creation time
    **{kind: (["NAME", "CREATED AT"], [], lambda o, w: [o["metadata"]["name"], o["metadata"]["creationTimestamp"]])
       for kind in [k for k, _ in CALICO_KINDS] + ["CustomResourceDefinition"]},
}
NAMESPACED = {r.kind for r in RESOURCES if r.namespaced}  # the kinds whose tables have a NAMESPACE column


_UPPER = {"IP", "OS"}


def column_name(header: str) -> str:
    """The server's column name for a kubectl header ("CLUSTER-IP" -> "Cluster-IP"); kubectl
    prints names upper-cased."""
    out, word = [], ""
    for ch in header + " ":
        if ch in "- ":
            out.append(word if word in _UPPER else word.capitalize())
            out.append(ch)
            word = ""
        else:
            word += ch
    return "".join(out)[:-1]


def as_table(kind: str, items: list[dict], include_object: str = "Metadata") -> dict:
    """A ``meta.k8s.io/v1`` Table of ``items`` (server-side printing): wide-only columns have
    priority 1, and each row carries the object's metadata (kubectl reads the namespace and
    labels from it) or the whole object (``includeObject=Object``)."""
    headers, wide, row = PRINTERS[kind]
    columns = [{"name": column_name(h), "type": "string", "format": "name" if i == 0 else "",
                "description": "", "priority": 0} for i, h in enumerate(headers)]
    columns += [{"name": column_name(h), "type": "string", "format": "", "description": "", "priority": 1}
                for h in wide]
    rows = []
    for obj in items:
        out: dict = {"cells": row(obj, True)}
        if include_object == "Object":
            out["object"] = obj
        elif include_object != "None":
            out["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": obj["metadata"]}
        rows.append(out)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "columnDefinitions": columns,
            "rows": rows}
