"""A pod's filesystem (runtime/podfs.py) built in a throwaway mount and PID namespace, without a
cluster: what it hides and what it shows again."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
