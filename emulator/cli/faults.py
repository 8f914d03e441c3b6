"""``k8semu impair``, ``partition``, ``heal``, ``node stop|start`` and ``fault kill|stop|start``
(issue #16): arguments to the typed client's calls, and the tables of what is in force."""
from __future__ import annotations

import argparse
from typing import TextIO

from emulator.client.client import Client
from emulator.cli.output import table
from emulator.errors import K8semuError
from emulator.model.components import ACTIONS, COMPONENTS
from emulator.model.faults import PARSERS

VERBS = ("impair", "partition", "heal", "node", "fault")

HELP = {"bandwidth": "rate each way, as tc writes it (50Mbit, 500kbit)", "loss": "packets dropped each way (10%%)",
        "delay": "added each way (100ms; needs sch_netem)", "jitter": "delay variation (10ms; needs sch_netem)",
        "duplicate": "packets duplicated (1%%; needs sch_netem)", "reorder": "packets reordered (25%%; sch_netem)",
        "mtu": "the link's MTU in bytes"}


def add_verbs(verb) -> None:
    """The verbs, on the parser ``verb`` makes (``main.build_parser``'s)."""
    im = verb("impair", help="impair a link (node/NAME, external/NAME, pod/NAME): bandwidth, loss, mtu, "
                             "delay; without arguments, list what is in force")
    im.add_argument("link", nargs="?", default=None)
    im.add_argument("-n", "--namespace", default="default", help="a pod's namespace")
    for name in PARSERS:
        im.add_argument(f"--{name}", default=None, help=HELP[name])
    pa = verb("partition", help="drop everything between two sets of nodes or external hosts")
    pa.add_argument("name", help="the partition's name (heal partition/NAME ends it)")
    pa.add_argument("--from", dest="side_a", required=True, help="comma-separated node or external host names")
    pa.add_argument("--to", dest="side_b", required=True, help="the other side")
    pa.add_argument("--one-way", action="store_true", help="drop only what goes from --from to --to")
    no = verb("node", help="node stop|start NAME: a node lost (eth0 down, kubelet gone, pods frozen) and back")
    no.add_argument("action", choices=("stop", "start"))
    no.add_argument("node")
    fa = verb("fault", help="kill, stop or start a component: " + ", ".join(
        f"{c}/NAME" if c == "dns" else c for c in COMPONENTS) + "; without arguments, list the stops in force")
    fa.add_argument("action", nargs="?", choices=ACTIONS, default=None,
                    help="kill: once, its supervisor brings it back; stop: gone until start")
    fa.add_argument("component", nargs="?", default=None)
    fa.add_argument("--node", default="", help="only on this node (coredns, ingress-nginx, kube-proxy, bird)")
    he = verb("heal", help="undo an impairment (LINK), a partition (partition/NAME), or --all")
    he.add_argument("what", nargs="?", default=None)
    he.add_argument("-n", "--namespace", default="default", help="a pod's namespace")
    he.add_argument("--all", action="store_true")


def run(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    """Dispatch one of the verbs."""
    if args.verb == "fault":
        if args.action is None:
            return show_components(client, out)
        if args.component is None:
            raise K8semuError(f"fault {args.action} what? one of {', '.join(COMPONENTS)}")
        out.write(client.fault(args.action, args.component, args.node) + "\n")
    elif args.verb == "node":
        out.write((client.node_stop(args.node) if args.action == "stop" else client.node_start(args.node)) + "\n")
    elif args.verb == "impair":
        values = {k: getattr(args, k) for k in PARSERS if getattr(args, k) is not None}
        if args.link is None:
            return show(client, out)
        out.write(client.impair(args.link, values, args.namespace) + "\n")
    elif args.verb == "partition":
        out.write(client.partition(args.name, args.side_a.split(","), args.side_b.split(","), args.one_way) + "\n")
    else:
        what = "all" if args.all else args.what
        if what is None:
            raise K8semuError("heal what? name a link, partition/NAME, or --all")
        out.write("".join(line + "\n" for line in client.heal(what, args.namespace)))
    return 0


def show_components(client: Client, out: TextIO) -> int:
    rows = [[f["target"], f["stopped"]] for f in client.component_faults()]
    out.write((table(["COMPONENT", "STOPPED"], rows) if rows else "No component stopped.") + "\n")
    return 0


def show(client: Client, out: TextIO) -> int:
    now = client.impairments()
    rows = [[x["link"], x["summary"]] for x in now["links"]] + \
        [[f"partition/{p['name']}", p["summary"]] for p in now["partitions"]]
    out.write((table(["LINK", "IMPAIRMENTS"], rows) if rows else "No impairments.") + "\n")
    return 0
