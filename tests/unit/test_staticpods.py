"""kubeadm's control-plane mirror pods in kube-system: names, flags from the cluster spec, the
Node as owner, put back when deleted, left alone by a drain, and their stand-in process."""
from __future__ import annotations

from emulator.cluster import controllers, nodes, render, staticpods
from emulator.model import images
from tests.unit.test_controllers import default_state, settle


def started():
    st = default_state()
    st.static_pods = True
    controllers.reconcile(st)
    return st


def test_each_control_plane_node_has_kubeadms_four_static_pods_with_the_clusters_ranges():
    st = started()
    cp = next(n for n in st.config.nodes if n.role == "control-plane")
    names = sorted(r.obj.meta.name for r in st.pods("kube-system") if r.obj.owner == ("Node", cp.name))
    assert names == [f"{c}-{cp.name}" for c in staticpods.COMPONENTS]
    objs = {o["metadata"]["name"]: o for o in render.objects(st, "Pod", "kube-system")}
    api = objs[f"kube-apiserver-{cp.name}"]
    assert f"--service-cluster-ip-range={st.config.services.subnet}" in api["spec"]["containers"][0]["command"]
    assert f"--advertise-address={cp.ip}" in api["spec"]["containers"][0]["command"]
    kcm = objs[f"kube-controller-manager-{cp.name}"]["spec"]["containers"][0]["command"]
    assert f"--cluster-cidr={st.config.pods.subnet}" in kcm and "--allocate-node-cidrs=true" in kcm
    assert api["spec"]["hostNetwork"] and api["spec"]["nodeName"] == cp.name
    assert api["metadata"]["labels"] == {"component": "kube-apiserver", "tier": "control-plane"}
    ref = api["metadata"]["ownerReferences"][0]
    assert (ref["apiVersion"], ref["kind"], ref["name"], ref["uid"]) == ("v1", "Node", cp.name, f"node-{cp.index}")


def test_a_deleted_mirror_pod_comes_back_and_a_drain_leaves_them():
    st = started()
    cp = next(n for n in st.config.nodes if n.role == "control-plane")
    settle(st)
    name = f"kube-scheduler-{cp.name}"
    controllers.delete(st, "Pod", "kube-system", name)
    settle(st)
    assert st.get("Pod", "kube-system", name) is not None and not st.get("Pod", "kube-system", name).deleting
    done = nodes.drain(st, cp.name, force=True)
    assert not [line for line in done["lines"] if "kube-scheduler" in line or "etcd" in line]


def test_the_stand_in_runs_its_own_program_not_the_flags():
    pod = staticpods.pod("kube-apiserver", default_state().config.nodes[0], default_state().config)
    argv = images.argv_for(pod.spec.containers[0], {}, {}, "/usr/bin/python3")
    assert argv[:2] == ["sh", "-c"] and "stands for kube-apiserver" in argv[2] and "--advertise-address" not in " ".join(argv)
