"""The kubelet's volume manager keeps projected volumes current without remaking every pod's files."""
from __future__ import annotations

import random
from dataclasses import replace

from emulator.cluster import controllers
from emulator.cluster.store import ClusterState
from emulator.model import naming
from emulator.runtime import volumes
from emulator.runtime.kubevolumes import VolumeManager
from emulator.spec.cluster import load_cluster
from tests.unit.test_controllers import TOPOLOGIES


def test_refresh_makes_files_only_for_a_volume_whose_source_changed(tmp_path):
    config = load_cluster(TOPOLOGIES / "default.yaml")
    state = ClusterState(config, rng=random.Random(7))
    state.root_ca = "CA one\n"
    controllers.apply(state, list(config.manifests))
    pods = [r for r in state.pods() if r.obj.meta.namespace == "default"]
    manager = VolumeManager(state, tmp_path)
    for rec in pods:
        manager.setup(rec)
    made: list[str] = []
    real = manager._files
    manager._files = lambda rec, volume: made.append(rec.obj.key) or real(rec, volume)
    manager.refresh(pods)
    assert made == []  # nothing changed: no pod's files made again
    ca = state.get("ConfigMap", "default", "kube-root-ca.crt")
    state.put("ConfigMap", replace(ca.obj, data={"ca.crt": "CA two\n"}))
    manager.refresh(pods)
    assert sorted(made) == sorted(r.obj.key for r in pods)
    volume = next(v for v in pods[0].obj.spec.volumes if v.name.startswith("kube-api-access-"))
    pod = pods[0].obj
    folder = volumes.volume_folder(tmp_path, naming.pod_dir(pod.meta.namespace, pod.meta.name), volume.name)
    assert (folder / "ca.crt").read_text() == "CA two\n"
    made.clear()
    manager.refresh(pods)
    assert made == []
