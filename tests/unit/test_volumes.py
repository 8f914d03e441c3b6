"""Pod volumes: the files of configMap, secret, downwardAPI and projected volumes as the kubelet's
plugins compute them, the atomic writer's layout and updates, and the binds a sandbox makes."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from emulator.model import projection
from emulator.runtime import volumes
from emulator.spec.loader import load_text
from emulator.spec.manifests import parse_object

POD = """apiVersion: v1
kind: Pod
metadata:
  name: p
  labels: {app: web, example.com/tier: front}
  annotations: {build: "42", note: 'say "hi"'}
spec:
  containers:
    - name: c
      image: busybox
      resources: {limits: {cpu: 250m, memory: 64Mi}}
      volumeMounts: %s
    - name: d
      image: busybox
  volumes: %s
"""
FACTS = projection.PodFacts("uid-1", 2000, 8 << 30)
STORED = {("ConfigMap", "game"): {"game.properties": b"lives=3\n", "ui": b"color=blue", "blob": b"\x00\xff"},
          ("Secret", "creds"): {"password": b"s3cr3t"}}


def parse(mounts: str, vols: str):
    (pod,), problems, warnings = parse_object(load_text(POD % (mounts, vols), "pod.yaml")[0])
    assert not problems, problems
    return pod, warnings


def files(vols: str, stored: dict | None = None) -> projection.Files:
    pod, _ = parse("[]", vols)
    lookup = (lambda kind, name: (stored if stored is not None else STORED).get((kind, name)))
    return projection.volume_files(pod.spec.volumes[0], pod, FACTS, lookup)


def test_a_configmap_volume_holds_every_key_at_its_name_with_the_default_mode() -> None:
    out = files("[{name: v, configMap: {name: game}}]")
    assert out == {"game.properties": (b"lives=3\n", 0o644), "ui": (b"color=blue", 0o644), "blob": (b"\x00\xff", 0o644)}


def test_items_choose_keys_paths_and_modes_and_default_mode_applies_to_the_rest() -> None:
    out = files("[{name: v, configMap: {name: game, defaultMode: 0400, items: "
                "[{key: ui, path: conf/ui.txt, mode: 0600}, {key: blob, path: b}]}}]")
    assert out == {"conf/ui.txt": (b"color=blue", 0o600), "b": (b"\x00\xff", 0o400)}


def test_a_missing_configmap_or_key_is_the_kubelets_failed_mount_unless_optional() -> None:
    with pytest.raises(projection.MountError, match='volume "v" : configmap "nope" not found'):
        files("[{name: v, configMap: {name: nope}}]")
    with pytest.raises(projection.MountError, match="non-existent config key: missing"):
        files("[{name: v, configMap: {name: game, items: [{key: missing, path: m}]}}]")
    assert files("[{name: v, configMap: {name: nope, optional: true}}]") == {}
    assert files("[{name: v, secret: {secretName: nope, optional: true}}]") == {}


def test_a_secret_volume_holds_the_decoded_bytes() -> None:
    assert files("[{name: v, secret: {secretName: creds, defaultMode: 0400}}]") == {"password": (b"s3cr3t", 0o400)}


def test_downward_api_files_are_formatted_as_the_kubelet_formats_them() -> None:
    out = files("[{name: v, downwardAPI: {items: ["
                "{path: labels, fieldRef: {fieldPath: metadata.labels}},"
                "{path: annotations, fieldRef: {fieldPath: metadata.annotations}},"
                "{path: tier, fieldRef: {fieldPath: \"metadata.labels['example.com/tier']\"}},"
                "{path: name, fieldRef: {fieldPath: metadata.name}},"
                "{path: uid, fieldRef: {fieldPath: metadata.uid}},"
                "{path: mem, resourceFieldRef: {containerName: c, resource: limits.memory, divisor: 1Mi}},"
                "{path: cpu, resourceFieldRef: {containerName: c, resource: limits.cpu, divisor: 1m}},"
                "{path: cpu-d, resourceFieldRef: {containerName: d, resource: limits.cpu}}]}}]")
    assert out["labels"][0] == b'app="web"\nexample.com/tier="front"'  # keys sorted, values %q-quoted
    assert out["annotations"][0] == b'build="42"\nnote="say \\"hi\\""'
    assert out["tier"][0] == b"front"
    assert (out["name"][0], out["uid"][0]) == (b"p", b"uid-1")
    assert (out["mem"][0], out["cpu"][0]) == (b"64", b"250")
    assert out["cpu-d"][0] == b"2"  # no limit: the node's capacity, as the kubelet gives


def test_projected_sources_merge_into_one_folder() -> None:
    out = files("[{name: v, projected: {defaultMode: 0440, sources: ["
                "{configMap: {name: game, items: [{key: ui, path: ui}]}},"
                "{secret: {name: creds}},"
                "{downwardAPI: {items: [{path: ns, fieldRef: {fieldPath: metadata.namespace}}]}}]}}]")
    assert out == {"ui": (b"color=blue", 0o440), "password": (b"s3cr3t", 0o440), "ns": (b"default", 0o440)}


def test_volumes_that_are_not_emulated_are_accepted_with_a_warning_as_empty_folders() -> None:
    pod, warnings = parse("[{name: host, mountPath: /host}]", "[{name: host, hostPath: {path: /etc}}]")
    assert pod.spec.volumes[0].writable and not pod.spec.volumes[0].emulated
    assert any("hostPath is not emulated" in w and "empty folder" in w for w in warnings)


def tree(folder: Path) -> dict[str, str]:
    return {name: os.readlink(folder / name) if os.path.islink(folder / name) else "dir"
            for name in sorted(os.listdir(folder))}


def test_the_atomic_writer_swaps_data_in_one_rename_and_removes_what_went(tmp_path: Path) -> None:
    folder = tmp_path / "v"
    volumes.write_atomic(folder, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    first = tree(folder)
    assert first["a"] == "..data/a" and first["dir"] == "..data/dir"
    stamp = first["..data"]
    assert stamp.startswith("..") and first[stamp] == "dir"
    assert (folder / "dir" / "b").read_bytes() == b"2" and (folder / "dir" / "b").stat().st_mode & 0o777 == 0o600
    volumes.write_atomic(folder, {"a": (b"changed", 0o644), "c": (b"3", 0o644)})
    second = tree(folder)
    assert second["..data"] != stamp and stamp not in second  # the old set is gone once the new one is in place
    assert "dir" not in second and second["c"] == "..data/c"
    assert (folder / "a").read_bytes() == b"changed"


def test_a_subpath_of_a_projected_volume_binds_the_file_itself_and_must_exist(tmp_path: Path) -> None:
    pod, _ = parse("[{name: v, mountPath: /etc/config}, {name: v, mountPath: /etc/game.properties, subPath: "
                   "game.properties}, {name: e, mountPath: /cache, subPath: x/y}]",
                   "[{name: v, configMap: {name: game}}, {name: e, emptyDir: {}}]")
    pod_dir = "default_p"
    volumes.write_atomic(volumes.volume_folder(tmp_path, pod_dir, "v"), {"game.properties": (b"x", 0o644)})
    binds = volumes.mounts(tmp_path, pod_dir, pod.spec.volumes, list(pod.spec.containers[0].mounts))
    assert [b.target for b in binds] == ["/cache", "/etc/config", "/etc/game.properties"]
    by_target = {b.target: b for b in binds}
    assert by_target["/etc/config"].read_only and not by_target["/cache"].read_only
    game = by_target["/etc/game.properties"]
    assert ".." in Path(game.source).parent.name and not game.sub_path  # the file in the timestamped folder
    assert by_target["/cache"].sub_path == "x/y"  # walked by the sandbox, without following symlinks
    missing, _ = parse("[{name: v, mountPath: /m, subPath: nope}]", "[{name: v, configMap: {name: game}}]")
    with pytest.raises(projection.MountError, match="nope does not exist"):
        volumes.mounts(tmp_path, pod_dir, missing.spec.volumes, list(missing.spec.containers[0].mounts))


def test_two_containers_mounting_different_volumes_at_one_path_are_refused() -> None:
    text = POD.replace("    - name: d\n      image: busybox\n",
                       "    - name: d\n      image: busybox\n      volumeMounts: [{name: b, mountPath: /data}]\n")
    (_, problems, _) = parse_object(load_text(text % ("[{name: a, mountPath: /data}]",
                                                      "[{name: a, emptyDir: {}}, {name: b, emptyDir: {}}]"),
                                              "pod.yaml")[0])
    assert "another container mounts volume 'a' here" in str(problems[0])
