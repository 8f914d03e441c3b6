"""``k8semu scenario run --artifacts DIR``: what each step left to look at afterwards, kept next
to the JUnit report (issue #15).

Per scenario a folder, per step a folder ``NN-step-name`` with:
- ``node-NAME.pcap``: tcpdump on every node's eth0 while the step ran (the overlay, VXLAN
  decodable, BGP on calico), started before the step (waited for: the file's header is written
  once tcpdump listens) and stopped by PID after it, at most ``MAX_PACKETS`` each;
- ``flows-NAME.txt`` (``cni: openflow``: the node's OpenFlow tables, as ``ovs-ofctl dump-flows``
  prints them) or ``rules-NAME.txt`` (flannel, calico: ``iptables-save`` and ``nft list
  ruleset`` in the node), taken after the step;
- ``logs/NAMESPACE_POD_CONTAINER.log``: the cluster DNS's and the ingress controller's container
  logs as they stood after the step;
- ``step.txt``: the step's result and evidence.
Names on disk come from the step's name reduced to ``[a-z0-9-]``, and from Kubernetes names
(DNS labels); nothing else of a scenario reaches a path. Commands are argv lists.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from emulator.client import Client
from emulator.client.capture import argv as capture_argv
from emulator.errors import K8semuError
from emulator.model import naming

MAX_PACKETS = 100_000
SYSTEM = {"kube-system": {"k8s-app": "kube-dns"}, "ingress-nginx": {"app.kubernetes.io/name": "ingress-nginx"}}


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "step"


class StepArtifacts:
    """Captures running for one step, then the dumps taken after it."""

    def __init__(self, client: Client, folder: Path) -> None:
        self.client, self.folder = client, folder
        folder.mkdir(parents=True, exist_ok=True)
        self.status = client.status()
        self.captures: list[tuple[subprocess.Popen, Path]] = []
        for node in self.status["nodes"]:
            pcap = folder / f"node-{node}.pcap"
            proc = subprocess.Popen(capture_argv(self.status["netns"][node], str(pcap), MAX_PACKETS, []),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.captures.append((proc, pcap))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not all(p.exists() and p.stat().st_size >= 24 or proc.poll() is not None
                                                      for proc, p in self.captures):
            time.sleep(0.01)  # polling for tcpdump's file header: it listens from then on

    def finish(self, ok: bool, evidence: list[str]) -> None:
        for proc, _ in self.captures:
            if proc.poll() is None:
                proc.terminate()  # tcpdump flushes on SIGTERM (SIGINT may be ignored in a background shell)
        for proc, _ in self.captures:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._tables()
        self._logs()
        (self.folder / "step.txt").write_text(("PASS" if ok else "FAIL") + "\n" + "".join(f"{e}\n" for e in evidence))

    def _tables(self) -> None:
        st = self.status
        for node in st["nodes"]:
            if st.get("bridges"):
                done = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", st["bridges"][node]],
                                      capture_output=True, text=True, timeout=30)
                (self.folder / f"flows-{node}.txt").write_text(done.stdout + done.stderr)
            else:
                enter = ["nsenter", f"--net=/run/netns/{st['netns'][node]}", "--"]
                parts = []
                for cmd in (["iptables-save"], ["nft", "list", "ruleset"]):
                    done = subprocess.run(enter + cmd, capture_output=True, text=True, timeout=30)
                    parts.append(f"# {' '.join(cmd)}\n{done.stdout}{done.stderr}")
                (self.folder / f"rules-{node}.txt").write_text("\n".join(parts))

    def _logs(self) -> None:
        logs = self.folder / "logs"
        for namespace, labels in SYSTEM.items():
            for pod in self.client.get("Pod", namespace):
                meta = pod["metadata"]
                if not all((meta.get("labels") or {}).get(k) == v for k, v in labels.items()):
                    continue
                try:
                    info = self.client.pod(meta["name"], namespace)
                except K8semuError:  # gone meanwhile: no log to keep
                    continue
                for container in info.get("containers", []):
                    source = Path(info["dir"]) / naming.container_log(container)
                    if source.is_file():
                        logs.mkdir(exist_ok=True)
                        shutil.copyfile(source, logs / f"{namespace}_{meta['name']}_{container}.log")


def scenario_folder(root: Path, scenario: Path, plane: str) -> Path:
    name = slug(scenario.stem) + (f"-{slug(plane)}" if plane else "")
    folder = root / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    os.chmod(folder, 0o755)
    return folder
