#!/usr/bin/env python3
"""What RBAC costs a request. Measures and reports.

    sudo .venv/bin/python bench/rbac.py [--samples 200] [--bindings 300]

In-process: deciding one request (allowed by the last binding, and denied: every binding that
names the user or its groups read) and building the snapshot of bindings, with 10, 100 and 1,000 RoleBindings, beside the
RBAC objects a cluster starts with (the components' roles and bindings included) and, the
reference in the same run, beside the user-facing roles only. On a 3-node
cluster (topologies/default.yaml): listing the default namespace's pods with the Python client
as a ServiceAccount bound to ``view`` (a bearer token: every request authorized) against the
admin certificate (system:masters: no RBAC walk), both in this run, p50/p99 of ``--samples``;
then the same with ``--bindings`` more RoleBindings in other namespaces, and the first request
after a binding changed (the snapshot is rebuilt under the manager's lock).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kubernetes import client as kclient, config as kconfig  # noqa: E402

from bench.api import percentiles, sample  # noqa: E402
from bench.results import save, stamp  # noqa: E402
from emulator.cluster import rbac  # noqa: E402
from emulator.cluster.admit import admit_cluster  # noqa: E402
from emulator.cluster.store import ClusterState  # noqa: E402
from emulator.model import rbacdefaults  # noqa: E402
from emulator.model.meta import ObjectMeta  # noqa: E402
from emulator.model.rbac import Attributes, RoleBinding, RoleRef, Subject  # noqa: E402
from tests.cluster import KUBECONFIG, Cluster, kubectl  # noqa: E402


def _bindings(n: int) -> list[RoleBinding]:
    return [RoleBinding(ObjectMeta(f"b{i}", f"ns{i}"), RoleRef("ClusterRole", "view"),
                        (Subject("ServiceAccount", "reader"),)) for i in range(n)]


def _bootstrap(components: bool) -> tuple[list, list, list, list]:
    """The RBAC objects a cluster starts with: with ``components``, everything a flannel
    cluster's state holds at start (the components' roles, bindings and kubeadm's too), else
    only the user-facing roles (the reference: what clusters had before the components')."""
    if not components:
        return rbacdefaults.cluster_roles(), [], rbacdefaults.cluster_role_bindings(), []
    st = ClusterState(admit_cluster(ROOT / "topologies" / "flannel.yaml"))
    return tuple([r.obj for r in st.list(kind)] for kind in ("ClusterRole", "Role", "ClusterRoleBinding",
                                                              "RoleBinding"))


def in_process(rounds: int) -> dict:
    out = {}
    for label, components in (("user_roles_only", False), ("with_components", True)):
        out[label] = _in_process(rounds, *_bootstrap(components))
    return out


def _in_process(rounds: int, cluster_roles: list, roles: list, cluster_bindings: list, role_bindings: list) -> dict:
    out: dict = {"bootstrap_objects": len(cluster_roles) + len(roles) + len(cluster_bindings) + len(role_bindings)}
    for n in (10, 100, 1000):
        bindings = _bindings(n)
        start = time.perf_counter()
        policy = rbac.policy_from(cluster_roles, roles, cluster_bindings, role_bindings + bindings)
        build = time.perf_counter() - start
        who = ("system:serviceaccounts", f"system:serviceaccounts:ns{n - 1}", "system:authenticated")
        allowed = Attributes(f"system:serviceaccount:ns{n - 1}:reader", who, "list", True, "", "pods", "", f"ns{n - 1}")
        denied = Attributes(f"system:serviceaccount:ns{n - 1}:reader", who, "delete", True, "", "pods", "", f"ns{n - 1}")
        times = {}
        for name, attrs in (("allowed_last", allowed), ("denied", denied)):
            runs = []
            for _ in range(rounds):
                begin = time.perf_counter()
                policy.decide(attrs)
                runs.append(time.perf_counter() - begin)
            times[name + "_us"] = round(statistics.median(runs) * 1e6, 1)
        out[str(n)] = {"build_ms": round(build * 1000, 2), **times}
    return out


def _token_api(token: str) -> kclient.CoreV1Api:
    base = kconfig.new_client_from_config(str(KUBECONFIG)).configuration
    conf = kclient.Configuration()
    conf.host, conf.ssl_ca_cert = base.host, base.ssl_ca_cert
    conf.api_key = {"authorization": token}
    conf.api_key_prefix = {"authorization": "Bearer"}
    return kclient.CoreV1Api(kclient.ApiClient(conf))


def on_cluster(samples: int, extra: int) -> dict:
    cluster = Cluster("topologies/default.yaml").up()
    try:
        kubectl("create", "serviceaccount", "reader")
        kubectl("create", "rolebinding", "reader-view", "--clusterrole=view", "--serviceaccount=default:reader")
        token = kubectl("create", "token", "reader", "--duration=1h").stdout.strip()
        admin = kclient.CoreV1Api(kconfig.new_client_from_config(str(KUBECONFIG)))
        reader = _token_api(token)
        out = {"admin": sample(lambda: admin.list_namespaced_pod("default"), samples),
               "service_account_view": sample(lambda: reader.list_namespaced_pod("default"), samples)}
        many = "".join(f"""---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: extra-{i}, namespace: default}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}}
subjects: [{{kind: User, name: user-{i}}}]
""" for i in range(extra))
        kubectl("apply", "-f", "-", input=many, timeout=600)
        out[f"service_account_view_with_{extra}_more_bindings"] = sample(
            lambda: reader.list_namespaced_pod("default"), samples)
        out["admin_with_more_bindings"] = sample(lambda: admin.list_namespaced_pod("default"), samples)
        firsts = []
        for i in range(min(samples, 30)):
            kubectl("create", "rolebinding", f"fresh-{i}", "--clusterrole=view", f"--user=fresh-{i}")
            start = time.monotonic()
            reader.list_namespaced_pod("default")
            firsts.append(time.monotonic() - start)
        out["first_request_after_a_binding_changed"] = percentiles(firsts)
        out["ratio_sa_to_admin_p50"] = round(out["service_account_view"]["p50_ms"] / out["admin"]["p50_ms"], 2)
        return out
    finally:
        cluster.down()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--bindings", type=int, default=300)
    args = parser.parse_args()
    result = {"stamp": stamp(), "in_process": in_process(2000), "cluster": on_cluster(args.samples, args.bindings)}
    print(save("rbac", result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
