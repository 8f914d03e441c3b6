"""``k8semu trace``, ``capture``, ``diagram`` and ``ui`` (issue #15): arguments to the typed client's
calls, and a trace printed hop by hop."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from emulator.client import capture, diagram
from emulator.client.client import Client

KIND_LABEL = {"dns": "DNS", "host": "kernel", "conntrack": "conntrack", "group": "Service group", "tunnel": "tunnel",
              "deliver": "delivered", "drop": "DROPPED", "reject": "REJECTED", "leave": "leaves"}


def add_verbs(verb) -> None:
    tr = verb("trace", help="follow one packet from SRC to DST through every switch table (pods, Services, "
                            "nodes, NodePorts, DNS names)")
    tr.add_argument("source", help="a pod (NAME, pod/NAME), node/NAME or external/NAME")
    tr.add_argument("destination", help="a pod, svc/NAME, node/NAME, external/NAME, an address or a DNS name")
    tr.add_argument("-n", "--namespace", default="default")
    tr.add_argument("--port", type=int, default=None, help="destination port (a Service's first by default)")
    tr.add_argument("--protocol", choices=("tcp", "udp", "icmp"), default="",
                    help="default: the Service port's, else tcp")
    tr.add_argument("--endpoint", default="", help="IP:PORT: follow the Service group's bucket for this endpoint")
    tr.add_argument("--live", action="store_true", help="also send one real connection attempt and report where "
                                                        "it was seen (captures) and whether that agrees")
    tr.add_argument("-o", "--output", choices=("text", "json"), default="text")
    di = verb("diagram", help="draw the cluster (nodes, pods, Services, Ingresses; colour is state) to a file")
    di.add_argument("-o", "--output", required=True, help="FILE.svg, FILE.png or FILE.dot")
    di.add_argument("-A", "--all-namespaces", action="store_true", help="kube-system's pods too")
    ui = verb("ui", help="the cluster drawn live in a browser (127.0.0.1 only; the URL carries a token)")
    ui.add_argument("--port", type=int, default=0, help="the port on 127.0.0.1 (default: any free one)")
    ui.add_argument("-A", "--all-namespaces", action="store_true", help="kube-system's pods too")
    ui.add_argument("--address", default="127.0.0.1",
                    help="127.0.0.1; inside a container, 0.0.0.0 to publish the port on the host's loopback")
    ca = verb("capture", help="tcpdump on the eth0 of a pod, node/NAME or external/NAME (-w FILE for a pcap)")
    ca.add_argument("target")
    ca.add_argument("filter", nargs="*", help="a tcpdump (BPF) expression, e.g. tcp port 80")
    ca.add_argument("-n", "--namespace", default=None)
    ca.add_argument("-w", "--write", default=None, help="write a pcap file instead of printing")
    ca.add_argument("-c", "--count", type=int, default=None, help="stop after this many packets")
    ca.add_argument("--duration", type=float, default=None, help="stop after this many seconds")


def run(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    if args.verb == "diagram":
        path = Path(args.output)
        data = diagram.render(diagram.dot(diagram.Snapshot.take(client), args.all_namespaces),
                              path.suffix.lstrip(".").lower())
        path.write_bytes(data)
        out.write(f"{path}: {len(data)} bytes\n")
        return 0
    if args.verb == "ui":
        from emulator.ui import server  # aiohttp's import cost only for this verb

        def announce(url: str) -> None:
            out.write(f"k8semu ui: open {url}\n(127.0.0.1 only; the token in the URL is the key; Ctrl-C stops it)\n")
            out.flush()
        server.serve(client, args.port, args.all_namespaces, announce, args.address)
        return 0
    if args.verb == "capture":
        return capture.run(client, args.target, args.namespace, args.write, args.count, args.duration,
                           args.filter, out, sys.stderr)
    result = client.trace(args.source, args.destination, args.namespace, args.protocol, args.port, args.endpoint,
                          args.live)
    if args.output == "json":
        out.write(json.dumps(result, indent=2) + "\n")
    else:
        out.write(render(result))
    if result.get("live") and not result["live"]["agrees"]:
        return 1
    return 0 if result["verdict"] in ("delivered", "left") else 1


def render(result: dict) -> str:
    """The trace for people: one line per hop, the verdict last."""
    lines = [f"trace {result.get('source')} -> {result.get('destination')}/{result.get('protocol')}"]
    for hop in result["hops"]:
        label = hop.get("table") or KIND_LABEL.get(hop["kind"], hop["kind"])
        owner = f"   [{hop['owner']}]" if hop.get("owner") and hop["owner"] != "pipeline" else ""
        text = hop["text"]
        if hop.get("table") and text.startswith(hop["table"] + ": "):
            text = text[len(hop["table"]) + 2:]
        lines.append(f"  {hop['node']:<14} {label:<17} {text}{owner}")
    endpoint = f" (endpoint {result['endpoint']})" if result.get("endpoint") else ""
    lines.append(f"verdict: {result['verdict']}: {result['where']}{endpoint}")
    live = result.get("live")
    if live:
        lines.append(f"live: one attempt from source port {live['sport']}"
                     + (f", the endpoint picked: {live['endpoint']}" if live["endpoint"] else ""))
        for point in live["seen"]:
            lines.append(f"  seen at {point['at']}: {len(point['packets'])} packet(s)")
            lines += [f"    {p}" for p in point["packets"][:6]]
        lines.append("live agrees with the trace" if live["agrees"] else "LIVE DISAGREES WITH THE TRACE")
    return "\n".join(lines) + "\n"
