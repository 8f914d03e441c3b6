"""Scenario files: a cluster, then named steps.

    # What this lab teaches (a comment for the reader)
    cluster: ../topologies/default.yaml     # or an inline kind: Cluster document
    steps:
      - name: the client reaches a web pod on another node
        exec: {in: client, command: [curl, -s, "http://${ip:pod/app=web}/"], contains: "Welcome"}

Step kinds: apply, delete, scale, wait (pods, endpoints, command), exec, http, dns, logs, fault
(kill-container, delete-pod, link-down, link-up, node-stop, node-start, controller-stop,
controller-start; and a component's ``kill``, ``stop`` or ``start``, with ``node``, as ``k8semu
fault``: ``fault: {stop: coredns}``), impair
(``link`` and what it suffers, as ``k8semu impair``), partition (``name``, ``from``, ``to``,
``oneWay``), heal (``link``, ``partition`` or ``all: true``), probe
(the reachability truth table, compared cell by cell), and node maintenance as kubectl does it:
cordon and uncordon (``node``), drain (``node``, ``force``, ``timeout``, ``podSelector``,
``ignoreDaemonsets``). ``${ip:pod/NAME|LABEL=VALUE}``, ``${ip:svc/NAME}``,
``${ip:node/NAME}``, ``${lb:svc/NAME}`` and ``${netns:pod/NAME}``/``${netns:node/NAME}`` (the
network namespace's name, for ``ip netns exec``) are replaced when the step runs (``ns/`` prefix
for another namespace: ``${ip:pod/shop/db-0}``). Every step that changes the cluster (apply,
delete, scale, a deleted pod) returns once the data plane holds the change: every switch has
the flows and every DNS server and ingress controller the new snapshot.

A step may say which data planes it is for (``dataplanes: [openflow]``: the SDN controller's
faults, the OpenFlow VXLAN port; ``[flannel/iptables]``: kube-proxy's iptables chains); run on
another (``k8semu scenario run --cni flannel [--kube-proxy nftables]``, which rewrites
``spec.network`` in a copy of the spec) it is skipped, and the output says so.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.errors import Problem, SpecError
from emulator.model.cluster import CNIS, PROXY_MODES
from emulator.model.components import ACTIONS, parse as parse_component
from emulator.model.faults import PARSERS, impairment, parse_link
from emulator.spec.loader import Document, PathKey, load_file
from emulator.spec.reader import Reader, did_you_mean

# what a step's ``dataplanes`` may name: a CNI (with or without kube-proxy), or a CNI that runs
# kube-proxy with its mode (openflow/iptables: kube-proxy beside the controller); openflow/none:
# the controller alone
PLANES = CNIS + tuple(f"{cni}/{mode}" for cni in CNIS for mode in PROXY_MODES) + ("openflow/none",)

STEP_KINDS = {
    "apply": None, "delete": None, "scale": {"deployment", "replicas", "namespace"},
    "wait": {"pods", "endpoints", "command", "timeout"},
    "exec": {"in", "namespace", "command", "status", "contains", "matches", "fails", "timeout"},
    "http": {"from", "namespace", "url", "host", "resolve", "cacert", "status", "body", "timeout", "retry"},
    "dns": {"from", "namespace", "name", "type", "answers", "contains", "rcode"},
    "logs": {"pod", "namespace", "container", "contains", "matches"},
    "fault": {"kill-container", "delete-pod", "link-down", "link-up", "controller-stop", "controller-start",
              "node-stop", "node-start", "namespace", *ACTIONS, "node"},
    "probe": {"namespaces", "ports", "protocols", "expect"},
    "impair": {"link", "namespace", *PARSERS}, "partition": {"name", "from", "to", "oneWay"},
    "heal": {"link", "namespace", "partition", "all"},
    "cordon": {"node"}, "uncordon": {"node"}, "drain": {"node", "force", "timeout", "podSelector", "ignoreDaemonsets"},
}


@dataclass
class Step:
    name: str
    kind: str
    args: Any
    where: Any
    doc: Document = field(repr=False, default=None)
    # the data planes the step is for (none: every one), a CNI or a CNI with kube-proxy's mode
    # ("flannel/nftables"); skipped on the others
    dataplanes: tuple[str, ...] = ()

    def runs_on(self, cni: str, proxy_mode: str) -> bool:
        return not self.dataplanes or cni in self.dataplanes or f"{cni}/{proxy_mode or 'none'}" in self.dataplanes


@dataclass
class Scenario:
    path: Path
    cluster_file: Path | None
    cluster_doc: Document | None
    steps: list[Step]
    description: str = ""


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario (a file, or a folder holding scenario.yaml).

    Raises:
        SpecError: every problem, with file, line and field.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "scenario.yaml"
    docs = load_file(path)
    if len(docs) != 1 or not isinstance(docs[0].data, dict):
        raise SpecError([Problem(None, "", f"{path}: a scenario is one YAML mapping")])
    doc = docs[0]
    r = Reader(doc)
    r.mapping((), {"cluster", "steps", "description", "slow"}, required=("cluster", "steps"))
    r.typed(("slow",), bool, False)  # run by make slow, matrix and flake, not by make test (its budget)
    cluster = doc.data.get("cluster")
    cluster_file, cluster_doc = None, None
    if isinstance(cluster, str):
        cluster_file = (path.parent / cluster).resolve()
        if not cluster_file.is_file():
            r.fail(("cluster",), f"cluster spec {cluster!r} does not exist")
    elif isinstance(cluster, dict):
        cluster_doc = doc.sub(("cluster",))
    elif cluster is not None:
        r.fail(("cluster",), "a path to a cluster spec or an inline kind: Cluster document")
    steps = []
    names: set[str] = set()
    for i, item in enumerate(r.seq(("steps",))):
        p: PathKey = ("steps", i)
        if not isinstance(item, dict):
            r.fail(p, "a step is a mapping with a name and one action")
            continue
        kinds = [k for k in item if k not in ("name", "dataplanes")]
        for k in kinds:
            if k not in STEP_KINDS:
                r.fail(p + (k,), f"unknown step {k!r}{did_you_mean(k, STEP_KINDS)}")
        if len(kinds) != 1 or kinds[0] not in STEP_KINDS:
            if len(kinds) != 1:
                r.fail(p, f"a step has exactly one action, got {', '.join(kinds) or 'none'}")
            continue
        kind = kinds[0]
        name = item.get("name")
        if not isinstance(name, str) or not name:
            r.fail(p, "every step needs a name")
            continue
        if name in names:
            r.fail(p + ("name",), f"duplicate step name {name!r}")
        names.add(name)
        allowed = STEP_KINDS[kind]
        if allowed is not None:
            r.mapping(p + (kind,), allowed)
        _check(r, p + (kind,), kind, item[kind])
        planes = r.seq(p + ("dataplanes",))
        for j, plane in enumerate(planes):
            if plane not in PLANES:
                r.fail(p + ("dataplanes", j), f"unknown data plane {plane!r}: one of {', '.join(PLANES)}")
        steps.append(Step(name, kind, item[kind], doc.where(p + ("name",)), doc, tuple(map(str, planes))))
    if r.problems:
        raise SpecError(r.problems)
    return Scenario(path, cluster_file, cluster_doc, steps, str(doc.data.get("description", "")))


def _check(r: Reader, p: PathKey, kind: str, args: Any) -> None:
    if kind == "exec" and not isinstance(args.get("command"), list):
        r.fail(p + ("command",), "required: the command as a list of words")
    if kind == "exec" and not args.get("in"):
        r.fail(p, "missing required field 'in' (a pod, node or external host)")
    if kind == "http" and not args.get("url"):
        r.fail(p, "missing required field 'url'")
    if kind == "logs" and not args.get("pod"):
        r.fail(p, "missing required field 'pod'")
    if kind == "dns" and not args.get("name"):
        r.fail(p, "missing required field 'name'")
    if kind in ("cordon", "uncordon", "drain") and not isinstance(args.get("node"), str):
        r.fail(p + ("node",), "required: a node's name")
    if kind == "drain" and not isinstance(args.get("podSelector", ""), str):
        r.fail(p + ("podSelector",), "a label query, as `kubectl drain --pod-selector` takes it")
    if kind == "scale" and not isinstance(args.get("replicas"), int):
        r.fail(p + ("replicas",), "required: a number")
    if kind == "wait" and not any(k in args for k in ("pods", "endpoints", "command")):
        r.fail(p, "wait for pods, endpoints or a command")
    if kind == "impair":
        try:
            # checked as the manager will check it (the link's existence is the cluster's to say)
            impairment(parse_link(args.get("link")), {k: v for k, v in args.items() if k not in ("link", "namespace")})
        except ValueError as exc:
            r.fail(p, str(exc))
    if kind == "fault" and any(k in args for k in ACTIONS):
        try:  # checked as the manager will check it (whether the cluster has it is the cluster's to say)
            action = next(k for k in ACTIONS if k in args)
            parse_component(action, str(args[action]), str(args.get("node", "")))
        except ValueError as exc:
            r.fail(p, str(exc))
    if kind == "partition":
        for side in ("from", "to"):
            if not isinstance(args.get(side), list) or not args[side]:
                r.fail(p + (side,), "required: a list of node or external host names")
    if kind == "heal" and len([k for k in ("link", "partition", "all") if k in args]) != 1:
        r.fail(p, "heal one thing: link, partition or all: true")
    if kind == "probe" and not isinstance(args.get("expect"), str):
        r.fail(p, "missing required field 'expect' (the truth table, as `k8semu probe` prints it)")
