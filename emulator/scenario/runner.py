"""Running a scenario: up, steps with evidence, down whatever happens.

Each step returns a ``StepResult`` (ok, seconds, evidence lines: the command, what came back,
what was expected), printed as it finishes; the run stops at the first failure, since later
steps usually build on earlier ones.
"""
from __future__ import annotations

import copy
import os
import re
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

import yaml

from emulator.errors import K8semuError
from emulator.client import Client, lifecycle, probe
from emulator.client.targets import exec_target, resolve_kind
from emulator.runtime.records import cluster_dir
from emulator.scenario.artifacts import StepArtifacts, scenario_folder, slug
from emulator.model import components, naming
from emulator.scenario.model import Scenario, Step
from emulator.cluster.admit import admit_cluster
from emulator.cluster.controllers import kind_of
from emulator.spec.loader import Document, load_file
from emulator.spec.manifests import parse_documents

VAR = re.compile(r"\$\{(ip|lb|netns):(pod|svc|node)/([^}]+)\}")


@dataclass
class Ctx:
    """What a step works with: the scenario's cluster, and the folder its files are named from."""
    client: Client
    base: Path


@dataclass
class StepResult:
    name: str
    ok: bool
    seconds: float
    evidence: list[str] = field(default_factory=list)
    skipped: bool = False  # a step for another data plane
    artifacts: str = ""  # the folder of what the step left (--artifacts)


@dataclass
class ScenarioResult:
    path: Path
    steps: list[StepResult] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and all(s.ok for s in self.steps)


class Failed(Exception):
    def __init__(self, *evidence: str) -> None:
        super().__init__("\n".join(evidence))
        self.evidence = list(evidence)


def _get(ctx: "Ctx", kind: str, namespace: str | None) -> list[dict]:
    return ctx.client.get(kind, namespace)


def substitute(ctx: "Ctx", value: Any) -> Any:
    """Replace ``${ip:pod/..}``-style references in strings, lists and mappings."""
    if isinstance(value, list):
        return [substitute(ctx, v) for v in value]
    if isinstance(value, dict):
        return {k: substitute(ctx, v) for k, v in value.items()}
    if not isinstance(value, str):
        return value

    def one(m: re.Match) -> str:
        what, kind, ref = m.groups()
        ns, _, name = ref.rpartition("/")
        ns = ns or "default"
        if what == "netns":
            if kind == "node":
                return ctx.client.status()["netns"].get(name) or _missing(m)
            return ctx.client.pod(name, ns)["netns"]
        if kind == "node":
            node = next((n for n in _get(ctx, "Node", None) if n["metadata"]["name"] == name), None)
            if node is None:
                raise Failed(f"no node {name!r} for {m.group(0)}")
            return node["status"]["addresses"][0]["address"]
        if kind == "svc":
            svc = next((s for s in _get(ctx, "Service", ns) if s["metadata"]["name"] == name), None)
            if svc is None:
                raise Failed(f"no service {ns}/{name} for {m.group(0)}")
            if what == "lb":
                return svc["status"]["loadBalancer"]["ingress"][0]["ip"]
            return svc["spec"]["clusterIP"]
        pods = [p for p in _get(ctx, "Pod", ns) if not p["metadata"].get("deletionTimestamp") and p["status"].get("podIP")]
        if "=" in name:
            key, val = name.split("=", 1)
            pods = [p for p in pods if p["metadata"].get("labels", {}).get(key) == val]
        else:
            pods = [p for p in pods if p["metadata"]["name"] == name]
        if not pods:
            raise Failed(f"no running pod matches {m.group(0)}")
        return sorted(pods, key=lambda p: p["metadata"]["name"])[0]["status"]["podIP"]
    return VAR.sub(one, value)


def _missing(m: re.Match) -> str:
    raise Failed(f"nothing matches {m.group(0)}")


def settle(ctx: "Ctx", timeout: float = 10) -> None:
    """Wait until every switch holds the manager's current view: what the API shows is then
    what the data plane does."""
    poll(lambda: ctx.client.status()["synced"], timeout, "the data plane to catch up")


def poll(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise Failed(f"waited {timeout:g}s for {what}", f"last seen: {last!r}")


def run_in(ctx: "Ctx", target: str, command: list[str], namespace: str | None = None,
           timeout: float = 30) -> subprocess.CompletedProcess:
    where = exec_target(ctx.client, target, namespace, None, command)
    return where.run(capture_output=True, text=True, timeout=timeout)


def _documents(step: Step, base: Path) -> list[Document]:
    """The step's manifests: files it names, or written inline (located in the scenario)."""
    items = step.args if isinstance(step.args, list) else [step.args]
    docs = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            docs += load_file(base / item)
        else:
            path = ("steps", next(j for j, s in enumerate(step.doc.data["steps"]) if s.get("name") == step.name), step.kind)
            docs.append(step.doc.sub(path + ((i,) if isinstance(step.args, list) else ())))
    return docs


def do_apply(step: Step, ctx: Ctx) -> list[str]:
    """Apply, then wait until the data plane holds the change (as every mutating step does)."""
    done = ctx.client.apply(_documents(step, ctx.base)).lines
    settle(ctx)
    return done


def do_delete(step: Step, ctx: Ctx) -> list[str]:
    args = step.args
    if isinstance(args, dict) and "kind" in args and "apiVersion" not in args:
        targets = [(resolve_kind(args["kind"]), args.get("namespace", "default"), args["name"])]
    else:
        targets = [(kind_of(o), o.meta.namespace, o.meta.name)
                   for o in parse_documents(_documents(step, ctx.base)).objects]
    done = [ctx.client.delete(k, ns, n) for k, ns, n in targets]
    settle(ctx)
    return done


def do_scale(step: Step, ctx: Ctx) -> list[str]:
    a = step.args
    done = [ctx.client.scale("Deployment", a.get("namespace", "default"), a["deployment"], a["replicas"])]
    settle(ctx)
    return done


def do_cordon(step: Step, ctx: Ctx) -> list[str]:
    return [ctx.client.cordon(step.args["node"], step.kind == "cordon")]


def do_impair(step: Step, ctx: Ctx) -> list[str]:
    """impair: {link, namespace, bandwidth, loss, ...}: the link suffers exactly these."""
    a = substitute(ctx, step.args)
    values = {k: v for k, v in a.items() if k not in ("link", "namespace")}
    return [ctx.client.impair(a["link"], values, a.get("namespace", "default"))]


def do_partition(step: Step, ctx: Ctx) -> list[str]:
    a = step.args
    return [ctx.client.partition(a.get("name", step.name.lower().replace(" ", "-")[:63].strip("-")),
                                 list(a["from"]), list(a["to"]), bool(a.get("oneWay", False)))]


def do_heal(step: Step, ctx: Ctx) -> list[str]:
    """heal: {link: LINK} | {partition: NAME} | {all: true}."""
    a = step.args
    what = "all" if a.get("all") else f"partition/{a['partition']}" if "partition" in a else a["link"]
    return ctx.client.heal(what, a.get("namespace", "default"))


def do_drain(step: Step, ctx: Ctx) -> list[str]:
    """kubectl drain: cordon, evict, wait until the evicted pods are gone, then the data plane."""
    a = step.args
    lines = ctx.client.drain(a["node"], bool(a.get("force", False)), float(a.get("timeout", 60)),
                             pod_selector=a.get("podSelector", ""), ignore_daemonsets=bool(a.get("ignoreDaemonsets", False)))
    settle(ctx)
    return lines


def do_wait(step: Step, ctx: Ctx) -> list[str]:
    a = substitute(ctx, step.args)
    timeout = float(a.get("timeout", 30))
    if "pods" in a:
        spec = a["pods"] or {}
        want = spec.get("ready")

        def ready() -> Any:
            pods = [p for p in _get(ctx, "Pod", spec.get("namespace", "default")) if not p["metadata"].get("deletionTimestamp")]
            if spec.get("selector"):
                key, val = spec["selector"].split("=", 1)
                pods = [p for p in pods if p["metadata"].get("labels", {}).get(key) == val]
            # the Ready condition, as kubectl wait --for=condition=Ready reads it (false on a lost node)
            good = [p for p in pods if p["status"]["phase"] == "Running" and any(
                c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]
            return len(good) == len(pods) and (want is None or len(good) == want) and f"{len(good)} ready"
        found = poll(ready, timeout, f"pods {spec} ready")
        settle(ctx)
        return [found]
    if "endpoints" in a:
        spec = a["endpoints"]

        def count() -> Any:
            eps = next((e for e in _get(ctx, "Endpoints", spec.get("namespace", "default"))
                        if e["metadata"]["name"] == spec["name"]), {})
            n = sum(len(s.get("addresses", [])) for s in eps.get("subsets", []))
            return n == spec["count"] and f"{n} endpoints"
        found = poll(count, timeout, f"endpoints {spec}")
        settle(ctx)
        return [found]
    spec = a["command"]
    done = poll(lambda: (lambda r: r.returncode == 0 and r)(run_in(ctx, spec["in"], spec["command"], spec.get("namespace"))),
                timeout, f"{' '.join(spec['command'])} to succeed in {spec['in']}")
    return [f"$ {' '.join(spec['command'])}", done.stdout.strip()[:500]]


def check_output(done: subprocess.CompletedProcess, a: dict, shown: str) -> list[str]:
    evidence = [f"$ {shown}", f"exit {done.returncode}", *(done.stdout.strip().splitlines()[:15]),
                *(("stderr: " + line) for line in done.stderr.strip().splitlines()[:5])]
    if a.get("fails"):
        if done.returncode == 0:
            raise Failed(*evidence, "expected: the command fails")
    elif done.returncode != a.get("status", 0):
        raise Failed(*evidence, f"expected: exit {a.get('status', 0)}")
    if "contains" in a and str(a["contains"]) not in done.stdout:
        raise Failed(*evidence, f"expected stdout to contain {a['contains']!r}")
    if "matches" in a and not re.search(str(a["matches"]), done.stdout, re.M):
        raise Failed(*evidence, f"expected stdout to match /{a['matches']}/")
    return evidence


def do_exec(step: Step, ctx: Ctx) -> list[str]:
    a = substitute(ctx, step.args)
    done = run_in(ctx, a["in"], [str(w) for w in a["command"]], a.get("namespace"), float(a.get("timeout", 30)))
    return check_output(done, a, " ".join(map(str, a["command"])))


def do_http(step: Step, ctx: Ctx) -> list[str]:
    """One request; with ``retry: SECONDS``, repeated until it meets the expectations (for
    changes that take effect asynchronously, such as the ingress controller's reload)."""
    deadline = time.monotonic() + float(step.args.get("retry", 0)) if isinstance(step.args, dict) else 0
    while True:
        try:
            return _http_once(step, ctx)
        except Failed:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def _http_once(step: Step, ctx: Ctx) -> list[str]:
    a = substitute(ctx, step.args)
    cmd = ["curl", "-sS", "-m", str(a.get("timeout", 5)), "-w", "\n%{http_code}"]
    if a.get("host"):
        cmd += ["-H", f"Host: {a['host']}"]
    for entry in [a["resolve"]] if isinstance(a.get("resolve"), str) else a.get("resolve", []):
        cmd += ["--resolve", entry]
    if a.get("cacert"):  # a CA file beside the scenario, to check the server's certificate
        cmd += ["--cacert", str((ctx.base / a["cacert"]).resolve())]
    cmd.append(a["url"])
    done = run_in(ctx, a["from"], cmd, a.get("namespace"))
    body, _, code = done.stdout.rpartition("\n")
    evidence = [f"$ {' '.join(cmd)}", f"HTTP {code}", *body.strip().splitlines()[:10]]
    if done.returncode != 0 or (a.get("status", 200) != int(code or 0)):
        raise Failed(*evidence, done.stderr.strip(), f"expected: HTTP {a.get('status', 200)}")
    if a.get("body") and not re.search(str(a["body"]), body):
        raise Failed(*evidence, f"expected the body to match /{a['body']}/")
    return evidence


def do_logs(step: Step, ctx: Ctx) -> list[str]:
    """A container's output, as ``kubectl logs POD [-c CONTAINER]`` prints it."""
    a = substitute(ctx, step.args)
    pod = ctx.client.pod(a["pod"], a.get("namespace"))
    name = a.get("container") or pod["containers"][0]
    path = Path(pod["dir"]) / naming.container_log(name)
    text = path.read_text(errors="replace") if path.exists() else ""
    done = subprocess.CompletedProcess(["logs", a["pod"]], 0, text, "")
    return check_output(done, a, f"k8semu logs {a['pod']}" + (f" -c {name}" if a.get("container") else ""))


def do_dns(step: Step, ctx: Ctx) -> list[str]:
    a = substitute(ctx, step.args)
    cmd = ["dig", "+search", "+noall", "+comments", "+answer", str(a["name"]), str(a.get("type", "A"))]
    done = run_in(ctx, a.get("from", "client"), cmd, a.get("namespace"))
    status = (re.search(r"status: (\w+)", done.stdout) or [None, "no answer"])[1]
    answers = sorted(line.split()[-1] for line in done.stdout.splitlines() if line and not line.startswith(";"))
    evidence = [f"$ {' '.join(cmd)}", f"status {status}", *(f"answer {x}" for x in answers)]
    if status != a.get("rcode", "NOERROR"):
        raise Failed(*evidence, f"expected rcode {a.get('rcode', 'NOERROR')}")
    if "answers" in a and answers != sorted(map(str, a["answers"])):
        raise Failed(*evidence, f"expected answers {sorted(map(str, a['answers']))}")
    if "contains" in a and str(a["contains"]) not in answers:
        raise Failed(*evidence, f"expected an answer {a['contains']!r}")
    return evidence


def do_fault(step: Step, ctx: Ctx) -> list[str]:
    a = substitute(ctx, step.args)
    ns = a.get("namespace")
    if "kill-container" in a:
        spec = a["kill-container"] if isinstance(a["kill-container"], dict) else {"pod": a["kill-container"]}
        pod = ctx.client.pod(spec["pod"], ns)
        pid = pod["pids"][spec.get("container", pod["containers"][0])]
        os.kill(pid, signal.SIGKILL)
        return [f"killed pid {pid} ({spec})"]
    if "delete-pod" in a:
        done = [ctx.client.delete("Pod", ns or "default", a["delete-pod"])]
        settle(ctx)
        return done
    for key, state in (("link-down", "down"), ("link-up", "up")):
        if key in a:
            netns = ctx.client.status()["netns"].get(a[key])
            if netns is None:
                raise Failed(f"no node or external host {a[key]!r}")
            subprocess.run(["ip", "-n", netns, "link", "set", "eth0", state], check=True)
            return [f"{a[key]} eth0 {state}"]
    if "node-stop" in a:
        return [ctx.client.node_stop(a["node-stop"])]
    if "node-start" in a:
        return [ctx.client.node_start(a["node-start"])]
    for action in components.ACTIONS:  # a component's kill, stop or start, as ``k8semu fault``
        if action in a:
            return [ctx.client.fault(action, str(a[action]), str(a.get("node", "")))]
    if "controller-stop" in a:
        return [ctx.client.controller_stop()]
    if "controller-start" in a:
        return [ctx.client.controller_start()]
    raise Failed(f"unknown fault {a}")


def do_probe(step: Step, ctx: Ctx) -> list[str]:
    a = step.args
    settle(ctx)
    tables = probe.probe(ctx.client, a.get("namespaces"), [int(p) for p in a.get("ports", [80])],
                         [str(p).lower() for p in a.get("protocols", ["tcp"])])
    shown = probe.render(tables).splitlines()
    differences = probe.diff(probe.parse_tables(a["expect"]), tables)
    if differences:
        raise Failed(*shown, *differences)
    return shown


ACTIONS = {"apply": do_apply, "probe": do_probe, "delete": do_delete, "scale": do_scale, "wait": do_wait, "exec": do_exec,
           "http": do_http, "dns": do_dns, "fault": do_fault, "logs": do_logs,
           "cordon": do_cordon, "uncordon": do_cordon, "drain": do_drain,
           "impair": do_impair, "partition": do_partition, "heal": do_heal}


def cluster_spec(scenario: Scenario, workdir: Path, cni: str | None = None,
                 proxy_mode: str | None = None) -> tuple[Path, Path | None]:
    """(the spec file to bring up, the folder its manifests are named from): the named file, or
    the inline document written out, its manifests still named from the scenario's folder.
    ``cni``, ``proxy_mode``: run on that data plane instead of the spec's (``spec.network.cni``,
    ``kubeProxy.mode`` rewritten in a copy; the same manifests, as issue #13 asks of every
    scenario)."""
    if scenario.cluster_file and not (cni or proxy_mode):
        return scenario.cluster_file, None
    if scenario.cluster_file:
        data, base = yaml.safe_load(scenario.cluster_file.read_text()), scenario.cluster_file.parent
    else:
        data, base = copy.deepcopy(scenario.cluster_doc.data), scenario.path.parent
    if isinstance(data, dict) and isinstance(data.get("spec"), dict):
        network = data["spec"].get("network")
        network = dict(network) if isinstance(network, dict) else {}
        if cni:
            network["cni"] = cni
        if proxy_mode:
            proxy = network.get("kubeProxy")
            network["kubeProxy"] = {**(proxy if isinstance(proxy, dict) else {}), "mode": proxy_mode}
        data["spec"]["network"] = network
    target = workdir / "cluster.yaml"
    target.write_text(yaml.safe_dump(data, sort_keys=False))
    return target, base


def run(scenario: Scenario, out: TextIO, cni: str | None = None, proxy_mode: str | None = None,
        artifacts: Path | None = None) -> ScenarioResult:
    """Bring the cluster up (on the ``cni`` data plane, with kube-proxy in ``proxy_mode``, when
    given), run every step, tear down; with ``artifacts``, keep each step's captures, tables and
    logs in a folder of it (``scenario.artifacts``).
    A step for other data planes (``dataplanes:``) is skipped and says so. Never raises for a
    failing step."""
    result = ScenarioResult(scenario.path)
    plane = "/".join(x for x in (cni, proxy_mode) if x)
    out.write(f"scenario {scenario.path}{f' on {plane}' if plane else ''}\n")
    with tempfile.TemporaryDirectory() as tmp:
        spec, base = cluster_spec(scenario, Path(tmp), cni, proxy_mode)
        try:
            config = admit_cluster(spec, base)
            lifecycle.up(config, str(spec), 180, out, base)
        except K8semuError as exc:
            result.error = f"cluster did not come up: {exc}"
            out.write(f"  ERROR {result.error}\n")
            return result
        ctx = Ctx(Client(cluster_dir(config.name)), scenario.path.parent)
        folder = scenario_folder(artifacts, scenario.path, plane) if artifacts is not None else None
        try:
            for number, step in enumerate(scenario.steps, 1):
                if not step.runs_on(config.cni, config.kube_proxy):
                    result.steps.append(StepResult(step.name, True, 0.0, [], skipped=True))
                    out.write(f"  SKIP {step.name} ({', '.join(step.dataplanes)} only)\n")
                    continue
                kept = StepArtifacts(ctx.client, folder / f"{number:02d}-{slug(step.name)}") if folder else None
                start = time.monotonic()
                try:
                    evidence = ACTIONS[step.kind](step, ctx)
                    res = StepResult(step.name, True, time.monotonic() - start, [str(e) for e in evidence])
                except (Failed, K8semuError, subprocess.SubprocessError, OSError) as exc:
                    res = StepResult(step.name, False, time.monotonic() - start,
                                     getattr(exc, "evidence", [str(exc)]))
                if kept is not None:
                    kept.finish(res.ok, res.evidence)
                    res.artifacts = str(kept.folder)
                result.steps.append(res)
                out.write(f"  {'PASS' if res.ok else 'FAIL'} {step.name} ({res.seconds:.1f}s)\n")
                if not res.ok:
                    out.write("".join(f"       {line}\n" for line in res.evidence))
                    break
        finally:
            out.write(f"  {lifecycle.down(config.name)}\n")
    return result
