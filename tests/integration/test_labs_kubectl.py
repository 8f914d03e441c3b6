"""Every kubectl line of docs/labs.md, run as a student would run it (a shell, kubectl on the
cluster's context) on that lab's cluster: it must succeed and print something. A lab's cluster
is the one its ``k8semu up`` line names (Lab 2's is the cluster of its scenario); ``<...>``
placeholders are filled from the live cluster. Every lab with a kubectl line is a case (the
last test checks each has a cluster to run on)."""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.cluster import KUBECTL, ROOT, Cluster, kubectl, poll

pytestmark = pytest.mark.requires_root
COMMENT = re.compile(r"\s{2,}#\s.*$")
DENY = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: x}
spec: {podSelector: {}, policyTypes: [Ingress]}
"""


def labs() -> dict[str, tuple[str | None, list[str]]]:
    """Lab title -> (the spec its ``k8semu up`` line names, its kubectl lines)."""
    out: dict[str, tuple[str | None, list[str]]] = {}
    lab = None
    for line in (ROOT / "docs" / "labs.md").read_text().splitlines():
        if line.startswith("## Lab"):
            lab = line[3:].split(":")[0]
            out[lab] = (None, [])
        elif lab and line.startswith("    "):
            command = COMMENT.sub("", line.strip())
            up = re.match(r"sudo k8semu up (\S+)", command)
            if up:
                out[lab] = (up.group(1), out[lab][1])
            elif command.startswith("kubectl "):
                out[lab][1].append(command)
    return out


def scenario_spec(tmp_path: Path, scenario: str) -> str:
    """A scenario's cluster as a spec file of its own."""
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(yaml.safe_load((ROOT / scenario).read_text())["cluster"]))
    return str(path)


def fill(command: str, tmp_path: Path) -> str:
    """The placeholders of a lab line, from the live cluster."""
    if "<web-b IP>" in command:
        ip = kubectl("get", "pod", "web-b", "-n", "demo", "-o", "jsonpath={.status.podIP}").stdout
        command = command.replace("<web-b IP>", ip)
    if "<CLUSTER-IP>" in command:
        command = command.replace("<CLUSTER-IP>", kubectl("get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}").stdout)
    if "<controller pod>" in command:
        pods = json.loads(kubectl("get", "pods", "-n", "ingress-nginx", "-o", "json").stdout)["items"]
        command = command.replace("<controller pod>", pods[0]["metadata"]["name"])
    if "deny.yaml" in command:
        (tmp_path / "deny.yaml").write_text(DENY)
        command = command.replace("deny.yaml", str(tmp_path / "deny.yaml"))
    assert not re.search(r"<[A-Za-z][^>]*>", command), f"a placeholder this test does not fill: {command}"
    return command


# in make slow (make test's budget): every lab's kubectl lines but Lab 2's, whose behaviour its
# scenario tests in make test (the faults' labs: tests/integration/test_faults.py)
SLOW_LABS = ("Lab 1", "Lab 3", "Lab 4", "Lab 5", "Lab 6", "Lab 8", "Lab 9", "Lab 10", "Lab 11", "Lab 12", "Lab 13")


@pytest.mark.parametrize("lab", [pytest.param(lab, marks=[pytest.mark.slow] if lab in SLOW_LABS else [])
                                 for lab in sorted(lab for lab, (_, commands) in labs().items() if commands)])
def test_the_labs_kubectl_lines_work(lab: str, tmp_path: Path) -> None:
    spec, commands = labs()[lab]
    if spec is None:
        assert lab == "Lab 2", f"{lab} has kubectl lines but no 'k8semu up' line"
        spec = scenario_spec(tmp_path, "scenarios/02-clusterip.yaml")
    cluster = Cluster(spec).up()
    try:
        poll(lambda: all(p["status"].get("phase") == "Running" for p in
                         json.loads(kubectl("get", "pods", "-A", "-o", "json").stdout)["items"]),
             timeout=60, what="every pod running")
        env = {**os.environ, "PATH": f"{Path(KUBECTL).parent}:{os.environ['PATH']}"}
        for command in commands:
            done = subprocess.run(["bash", "-o", "pipefail", "-c", fill(command, tmp_path)], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0 and done.stdout.strip(), (command, done.stdout, done.stderr)
            # a student reads the output before typing the next line; by then the data plane
            # holds the change (kube-proxy may take up to its minSyncPeriod)
            cluster.synced(timeout=10)
    finally:
        cluster.down()


def test_every_lab_with_kubectl_lines_has_a_cluster() -> None:
    """So no lab's kubectl lines go untested: each names its cluster (Lab 2: its scenario's)."""
    with_lines = {lab: spec for lab, (spec, commands) in labs().items() if commands}
    assert len(with_lines) >= 6 and all(spec or lab == "Lab 2" for lab, spec in with_lines.items()), with_lines
