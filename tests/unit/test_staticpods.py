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
    assert argv[:2] == ["sh", "-c"] and "stands for kube-apiserver" in argv[4] and "--advertise-address" not in " ".join(argv)


def test_the_data_planes_agent_runs_on_every_node_and_metallb_only_with_a_pool():
    """kube-system's k8semu-agent DaemonSet: a hostNetwork pod on every node (the control plane's
    taint tolerated), a stand-in image, and a ConfigMap from the cluster spec saying no kube-proxy
    runs; MetalLB's speaker and controller exist only when the cluster has an address pool."""
    from dataclasses import replace

    from emulator.cluster import nodedaemons
    from emulator.model.network import AddressPool
    st = started()
    controllers.apply(st, nodedaemons.node_daemons(st.config))
    settle(st)
    agents = [r for r in st.pods("kube-system") if r.obj.owner == ("DaemonSet", "k8semu-agent")]
    assert sorted(r.obj.spec.node_name for r in agents) == sorted(n.name for n in st.config.nodes)
    assert all(r.obj.spec.host_network for r in agents)
    assert images.lookup(agents[0].obj.spec.containers[0].image, {}).stand_in
    conf = st.get("ConfigMap", "kube-system", "k8semu-config").obj.data["k8semu-agent.conf"]
    assert f"podMTU: {st.config.pod_mtu}" in conf and "proxy: openflow" in conf and "tunnelPort: 4789" in conf
    assert "metallb-system" not in st.namespaces() and nodedaemons.metallb(st.config) == []
    pooled = replace(st.config, lb_pool=AddressPool(((0xAC1200C8, 0xAC1200D2),)))  # 172.18.0.200-210
    assert [type(o).__name__ for o in nodedaemons.metallb(pooled)] == ["Namespace", "DaemonSet"]
