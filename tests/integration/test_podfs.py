"""A pod's filesystem (runtime/podfs.py) built in a throwaway mount and PID namespace, without a
cluster: what it hides and what it shows again."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from emulator.runtime import volumes
from tests.cluster import ROOT

CHILD = """
import json, os, sys
from emulator.runtime import podfs
args = json.loads(sys.argv[1])
podfs.setup(podfs.PodView(args["pod_dir"], {}, {}, tuple(args["keep"])))
marker = args["marker"]
try:
    open(marker + ".new", "w")
    writable = True
except OSError:
    writable = False
print(json.dumps({"marker": os.path.exists(marker) and open(marker).read(), "writable": writable,
                  "tmp": sorted(os.listdir("/tmp")), "shadow": open("/etc/shadow").read()}))
"""


def test_k8semus_code_under_tmp_is_shown_again_read_only_and_the_rest_of_tmp_hidden(tmp_path: Path) -> None:
    """A checkout under /tmp, /home or /root (all hidden from pods) still runs the image programs:
    the pod sees the code folder again, read-only, and nothing else of the host's /tmp."""
    code = tmp_path / "checkout"
    code.mkdir()
    (code / "marker").write_text("k8semu code")
    pod_dir = tmp_path / "pod"
    pod_dir.mkdir()
    args = json.dumps({"pod_dir": str(pod_dir), "keep": [str(code)], "marker": str(code / "marker")})
    done = subprocess.run(["unshare", "--mount", "--pid", "--fork", "--net", "--uts", "--ipc", "--propagation", "private",
                           sys.executable, "-c", CHILD, args], capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["marker"] == "k8semu code"
    assert seen["writable"] is False
    assert seen["tmp"] == [str(tmp_path).split("/")[2]]  # only the way down to the code folder
    assert seen["shadow"] == ""


VOLUMES_CHILD = """
import json, os, sys
from emulator.runtime import podfs
args = json.loads(sys.argv[1])
podfs.setup(podfs.PodView(args["pod_dir"], {}, {}, tuple(args["keep"]), volumes=tuple(args["volumes"])))
out = {"read": {}, "write": {}}
for p in args["read"]:
    try:
        out["read"][p] = open(p).read()
    except OSError as e:
        out["read"][p] = f"errno {e.errno}"
for p in args["write"]:
    try:
        open(p, "w").write("x")
        out["write"][p] = True
    except OSError as e:
        out["write"][p] = f"errno {e.errno}"
out["root"] = sorted(os.listdir("/"))
out["etc"] = sorted(os.listdir("/etc"))
out["sysfs"] = os.path.isdir("/sys/class")
print(json.dumps(out))
"""


def run_pod_view(pod_dir: Path, mounts: list[dict], read: list[str], write: list[str]) -> subprocess.CompletedProcess:
    args = json.dumps({"pod_dir": str(pod_dir), "keep": [str(ROOT), sys.prefix], "volumes": mounts,
                       "read": read, "write": write})
    return subprocess.run(["unshare", "--mount", "--pid", "--fork", "--net", "--uts", "--ipc", "--propagation", "private",
                           sys.executable, "-c", VOLUMES_CHILD, args], capture_output=True, text=True, timeout=30, cwd=ROOT)


def test_volumes_are_mounted_where_the_machine_has_no_folder_without_touching_the_machine(tmp_path: Path) -> None:
    """New mount points at the top level (a new root), under /etc (a shadow of /etc) and under /tmp
    (podfs's own tmpfs): each volume where the pod asked, configMap read-only, emptyDir writable and
    shared by two paths; the machine's masks still apply inside the shadow; nothing appears on the
    machine."""
    tag = uuid.uuid4().hex[:8]
    top, etc = f"/k8semu-test-{tag}", f"/etc/k8semu-test-{tag}/config"
    config = tmp_path / "volumes" / "config"
    volumes.write_atomic(config, {"game.properties": (b"lives=3\n", 0o644)})
    cache = tmp_path / "volumes" / "cache"
    volumes.make_writable(cache)
    nested = tmp_path / "volumes" / "nested"
    volumes.make_writable(nested)
    pod_dir = tmp_path / "pod"
    pod_dir.mkdir()
    mounts = [volumes.Mount(str(cache), top, False).to_dict(),
              volumes.Mount(str(nested), f"{top}/nested", False).to_dict(),  # inside the volume above
              volumes.Mount(str(config), etc, True).to_dict(),
              volumes.Mount(str(cache), "/tmp/cache", False, "sub/dir").to_dict()]
    done = run_pod_view(pod_dir, mounts, [f"{etc}/game.properties", "/etc/shadow", "/etc/hostname"],
                        [f"{top}/f", f"{top}/nested/n", f"{etc}/x", "/tmp/cache/y", "/etc/new-file"])
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout)
    assert seen["read"][f"{etc}/game.properties"] == "lives=3\n"
    assert seen["read"]["/etc/shadow"] == ""  # masked inside the shadow of /etc too
    assert seen["read"]["/etc/hostname"] == Path("/etc/hostname").read_text()
    assert seen["write"] == {f"{top}/f": True, f"{top}/nested/n": True, f"{etc}/x": "errno 30", "/tmp/cache/y": True,
                             "/etc/new-file": "errno 30"}
    assert set(os.listdir("/")) | {top[1:]} == set(seen["root"])  # the machine's root, plus the new folder
    assert set(os.listdir("/etc")) | {f"k8semu-test-{tag}"} == set(seen["etc"])
    assert seen["sysfs"]  # the pod's own sysfs covers the old root kept under /sys
    assert (cache / "f").read_text() == "x" and (cache / "sub" / "dir" / "y").read_text() == "x"
    assert (nested / "n").read_text() == "x" and (cache / "nested").is_dir()  # its mount point, made in the volume
    assert not os.path.exists(top) and not os.path.exists(f"/etc/k8semu-test-{tag}")


def test_a_subpath_through_a_symlink_the_pod_left_is_refused(tmp_path: Path) -> None:
    """CVE-2017-1002101's shape: an emptyDir holding a symlink to the machine's /etc, mounted by
    subPath. The sandbox walks the subPath without following symlinks and refuses it."""
    cache = tmp_path / "cache"
    volumes.make_writable(cache)
    os.symlink("/etc", cache / "evil")
    pod_dir = tmp_path / "pod"
    pod_dir.mkdir()
    done = run_pod_view(pod_dir, [volumes.Mount(str(cache), "/tmp/x", False, "evil").to_dict()], [], [])
    assert done.returncode != 0
    assert "'evil' is a symlink" in done.stderr
