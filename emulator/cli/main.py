"""``k8semu``: argument parsing and the one place that turns errors into exit statuses.

argparse (standard library) rather than click: the interactive shell re-uses the very same
parser on each line it reads, and ``exec POD -- CMD ARGS`` passes everything after ``--``
through untouched, which argparse's REMAINDER does directly.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from typing import TextIO

from emulator import __version__
from emulator.cli import faults, packets
from emulator.cli.shell import Shell
from emulator.client import Client, lifecycle, probe
from emulator.errors import K8semuError, NotRootError
from emulator.model.cluster import CNIS, PROXY_MODES
from emulator.status import ExitStatus


class _VerbParser(argparse.ArgumentParser):
    """A verb's parser that lets flags and positionals mix as kubectl does (``get pods -n NS
    NAME``, ``logs POD -c C``): argparse stops at the first positional list otherwise."""

    _mixing = False

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        if self._mixing:  # parse_known_intermixed_args calls back in here
            return super().parse_known_args(args, namespace)
        self._mixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._mixing = False


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse a command line as kubectl would: what follows ``--`` is a command to run
    (``exec POD -c C -- CMD ARGS``), never k8semu's flags. Raises SystemExit on a usage error."""
    command: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, command = argv[:cut], argv[cut + 1:]
    args = parser.parse_args(argv)
    if hasattr(args, "command"):
        args.command = list(args.command) + command
    elif command:
        parser.error(f"{args.verb}: nothing may follow --")
    return args


def verbs() -> list[str]:
    """Every verb, read from the parser: the shell and the help use this one list."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="k8semu", description="A Kubernetes cluster-network emulator.")
    p.add_argument("--version", action="version", version=f"k8semu {__version__}")
    p.add_argument("--traceback", action="store_true", help="show the Python traceback on errors")
    p.add_argument("--cluster", default=None, help="the cluster to act on (default: the only one running)")
    sub = p.add_subparsers(dest="verb", metavar="COMMAND", parser_class=_VerbParser)
    # --cluster after the verb too (``k8semu down --cluster lab``); SUPPRESS keeps a value given before it
    cluster = argparse.ArgumentParser(add_help=False)
    cluster.add_argument("--cluster", default=argparse.SUPPRESS, help="the cluster to act on")

    def verb(name: str, **kwargs) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[cluster], **kwargs)

    up = verb("up", help="bring a cluster up (foreground shell, or --detach)")
    up.add_argument("spec", nargs="?", default=None, help="cluster spec (default: topologies/default.yaml)")
    up.add_argument("--detach", "-d", action="store_true", help="return once every pod is Running")
    up.add_argument("--timeout", type=float, default=180, help="seconds to wait for readiness")
    verb("down", help="remove everything the running cluster made")
    verb("kubeconfig", help="print the running cluster's kubeconfig (kubectl's admin context)")
    verb("clusters", help="the clusters on this machine and their state")
    verb("cleanup", help="remove the leftovers of a crashed cluster (like mn -c)")
    verb("status", help="the running cluster, its nodes and pods")
    verb("shell", help="open the interactive shell on the running cluster")
    verb("ovs", help="start Open vSwitch if it is not running; print the datapath used")
    plan = verb("plan", help="validate a spec and print what it would build (no root)")
    plan.add_argument("spec")
    plan.add_argument("--show", choices=("topology", "flows"), default="topology")

    def ns_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("-n", "--namespace", default=None)

    get = verb("get", help="list objects as kubectl get does")
    get.add_argument("kind")
    get.add_argument("names", nargs="*")
    ns_opts(get)
    get.add_argument("-A", "--all-namespaces", action="store_true")
    get.add_argument("-l", "--selector", default=None)
    get.add_argument("-o", "--output", default=None)

    ex = verb("exec", help="run a command in a pod or node: exec POD -- CMD ARGS")
    ns_opts(ex)
    ex.add_argument("-c", "--container", default=None)
    ex.add_argument("-i", "--stdin", action="store_true", help="accepted for kubectl compatibility")
    ex.add_argument("-t", "--tty", action="store_true", help="accepted for kubectl compatibility")
    ex.add_argument("target", help="POD, pod/POD or a node's name")
    ex.add_argument("command", nargs="*", help="after --: the command and its arguments")

    ap = verb("apply", help="create or update objects from manifests")
    ap.add_argument("-f", "--filename", action="append", required=True)
    ns_opts(ap)
    de = verb("delete", help="delete -f FILE, or delete KIND NAME")
    de.add_argument("-f", "--filename", action="append", default=[])
    de.add_argument("kind", nargs="?")
    de.add_argument("names", nargs="*")
    de.add_argument("--wait", default="true", choices=("true", "false"),
                    help="wait until the objects are gone, as kubectl does (pods: after their grace period)")
    de.add_argument("--timeout", type=float, default=300, help="seconds to wait (default 300)")
    de.add_argument("--grace-period", type=int, default=-1,
                    help="seconds a pod gets to end (default -1: its own terminationGracePeriodSeconds)")
    de.add_argument("--force", action="store_true", help="end pods at once (grace period 0), as kubectl --force")
    de.add_argument("--cascade", default="background", choices=("background", "foreground", "orphan"),
                    help="orphan: leave what the object owns, without its owner")
    ns_opts(de)
    sc = verb("scale", help="scale deployment/NAME (or deployment NAME) --replicas N")
    sc.add_argument("target", nargs="+", help="KIND/NAME, or KIND NAME as kubectl takes it")
    sc.add_argument("--replicas", type=int, required=True)
    ns_opts(sc)
    for name, text in (("cordon", "mark a node unschedulable"), ("uncordon", "mark a node schedulable again")):
        verb(name, help=text).add_argument("node")
    dr = verb("drain", help="cordon a node and evict its pods, as kubectl drain does")
    dr.add_argument("node")
    dr.add_argument("--force", action="store_true", help="also delete pods no controller would replace")
    dr.add_argument("--ignore-daemonsets", action="store_true",
                    help="leave DaemonSet pods (without it, a node with any refuses to drain, as kubectl)")
    dr.add_argument("--delete-emptydir-data", action="store_true", help="accepted for kubectl compatibility")
    dr.add_argument("--timeout", type=float, default=300, help="seconds to wait for the evicted pods to go")
    dr.add_argument("--pod-selector", default="", metavar="SELECTOR",
                    help="evict only the node's pods this label query matches (as -l takes it)")
    lo = verb("logs", help="a container's output")
    lo.add_argument("pod")
    lo.add_argument("-c", "--container", default=None)
    lo.add_argument("-p", "--previous", action="store_true",
                    help="the previous instance's output, kept when the container restarted (as kubectl)")
    ns_opts(lo)
    ds = verb("describe", help="describe an object as kubectl does (pod, svc, ingress, networkpolicy)")
    ds.add_argument("kind")
    ds.add_argument("name", nargs="?", default="")
    ns_opts(ds)
    sc2 = verb("scenario", help="run scenario files: scenario run FILE... [--junit FILE] [--cni CNI] "
               "[--kube-proxy MODE]")
    sc2.add_argument("action", choices=("run", "check"))
    sc2.add_argument("files", nargs="+")
    sc2.add_argument("--junit", default=None)
    sc2.add_argument("--artifacts", default=None, metavar="DIR",
                     help="keep each step's pcaps (every node's eth0), flow or rule dumps and DNS/ingress logs here")
    sc2.add_argument("--cni", default=None, choices=CNIS,
                     help="run on this data plane instead of the spec's (the same manifests)")
    sc2.add_argument("--kube-proxy", default=None, choices=PROXY_MODES, dest="proxy_mode",
                     help="kube-proxy's mode instead of the spec's (with openflow: kube-proxy beside the controller)")
    pr = verb("probe", help="reachability truth table between every pair of pods")
    pr.add_argument("-n", "--namespace", action="append", default=None)
    pr.add_argument("--port", default="80")
    pr.add_argument("--protocol", default="tcp")
    pr.add_argument("--expect", default=None, help="a file holding the expected table(s)")
    dn = verb("dns", help="resolve a name as a pod does (dig inside the pod)")
    dn.add_argument("name")
    dn.add_argument("type", nargs="?", default="A")
    dn.add_argument("--from", dest="source", default=None, help="pod to ask from (default: any running pod)")
    ns_opts(dn)
    fl = verb("flows", help="a node's OpenFlow tables, each flow labelled by its owner")
    fl.add_argument("node")
    faults.add_verbs(verb)
    packets.add_verbs(verb)
    ip = verb("ipam", help="cni: calico: the IP pools, their blocks and affinities (as calicoctl ipam)")
    ip.add_argument("action", choices=("show",))
    ip.add_argument("--show-blocks", action="store_true", help="each block, its node affinity and usage")
    ip.add_argument("--show-borrowed", action="store_true", help="addresses used outside their block's node")
    return p


def default_spec() -> str:
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for candidate in (os.path.join(here, "topologies", "default.yaml"),
                      os.path.join(sys.prefix, "share", "k8semu", "topologies", "default.yaml")):
        if os.path.exists(candidate):
            return candidate
    from emulator.errors import SpecError, Problem
    raise SpecError([Problem(None, "", "no default cluster spec found; name one: k8semu up SPEC")])


def dispatch(args: argparse.Namespace, out: TextIO, err: TextIO, in_shell: bool = False) -> int:
    from emulator.cli import ipam, objects
    verb = args.verb
    if verb == "scenario" and args.action == "check":
        from emulator.scenario.model import load_scenario
        for f in args.files:
            load_scenario(f)
            out.write(f"{f}: ok\n")
        return 0
    if verb == "plan":
        from emulator.cli.plan import plan
        return plan(args.spec, args.show, out)
    if os.geteuid() != 0:
        raise NotRootError()
    if verb == "up":
        if in_shell:
            raise K8semuError("a cluster is already up in this shell")
        return _up(args, out, err)
    if verb == "down":
        out.write(lifecycle.down(args.cluster) + "\n")
        return 0
    if verb == "kubeconfig":
        out.write(lifecycle.kubeconfig_text(args.cluster))
        return 0
    if verb == "cleanup":
        out.write(lifecycle.cleanup_all(args.cluster) + "\n")
        return 0
    if verb == "clusters":
        from emulator.runtime.records import all_records
        rows = [[r.cluster, str(r.data.get("slot")), "running" if lifecycle.live(r) else "manager dead: run cleanup",
                 str(r.path.parent)] for r in all_records()]
        from emulator.cli.output import table
        out.write((table(["NAME", "SLOT", "STATE", "RUN DIRECTORY"], rows) if rows else "No clusters.") + "\n")
        return 0
    if verb == "status":
        out.write(lifecycle.status_text(args.cluster))
        return 0
    if verb == "ovs":
        from emulator.runtime import ovs
        dp = ovs.ensure_running()
        out.write(f"Open vSwitch is running; datapath {dp.type}"
                  f"{' (checksum offload off on veths)' if dp.tx_offload_off else ''}\n")
        return 0
    if verb == "scenario":
        from pathlib import Path
        from emulator.scenario import junit
        from emulator.scenario.model import load_scenario
        from emulator.scenario.runner import run
        scenarios = [load_scenario(f) for f in args.files]  # all valid before anything starts
        kept = Path(args.artifacts) if args.artifacts else None
        results = [run(s, out, args.cni, args.proxy_mode, kept) for s in scenarios]
        if args.junit:
            junit.write(results, Path(args.junit))
        failed = [r for r in results if not r.ok]
        out.write(f"{len(results) - len(failed)} passed, {len(failed)} failed\n")
        return ExitStatus.SCENARIO_FAILED if failed else 0
    run = lifecycle.resolve(args.cluster)
    lifecycle.check_manager(run)
    client = Client(run)
    if verb == "shell":
        if in_shell:
            raise K8semuError("already in the shell")
        shell(client, out, err).cmdloop()
        return 0
    if verb == "get":
        kind, names = objects.kind_and_names(args.kind, args.names)
        return objects.get(client, kind, names, args.namespace, args.all_namespaces,
                           args.selector, args.output, out)
    if verb == "exec":
        out.flush()
        return objects.exec_(client, objects.pod_name(args.target), args.namespace, args.container, args.command)
    if verb == "apply":
        return objects.apply(client, args.filename, args.namespace, out)
    if verb == "delete":
        kind, names = objects.kind_and_names(args.kind, args.names) if args.kind else (None, args.names)
        return objects.delete(client, args.filename, kind, names, args.namespace, out,
                              wait=args.timeout if args.wait == "true" else 0, grace=args.grace_period,
                              force=args.force, cascade=args.cascade, err=err)
    if verb == "scale":
        return objects.scale(client, args.target, args.replicas, args.namespace, out)
    if verb in ("cordon", "uncordon"):
        out.write(client.cordon(args.node, verb == "cordon") + "\n")
        return 0
    if verb == "drain":
        out.write("".join(line + "\n" for line in client.drain(args.node, args.force, args.timeout,
                                                                     pod_selector=args.pod_selector,
                                                                     ignore_daemonsets=args.ignore_daemonsets)))
        return 0
    if verb == "logs":
        return objects.logs(client, objects.pod_name(args.pod), args.namespace, args.container, out, args.previous)
    if verb == "flows":
        return objects.flows(client, args.node, out)
    if verb in faults.VERBS:
        return faults.run(client, args, out)
    if verb in ("trace", "capture", "diagram", "ui"):
        return packets.run(client, args, out)
    if verb == "ipam":
        return ipam.show(client, args.show_blocks, args.show_borrowed, out)
    if verb == "probe":
        return probe.run(client, args.namespace, args.port, args.protocol, args.expect, out)
    if verb == "dns":
        return objects.dns_lookup(client, args.name, args.type, args.source, args.namespace, out)
    if verb == "describe":
        kind, names = objects.kind_and_names(args.kind, [args.name] if args.name else [])
        if len(names) != 1:
            raise K8semuError("describe takes one object: describe KIND NAME or describe KIND/NAME")
        return objects.describe(client, kind, names[0], args.namespace, out)
    raise K8semuError("no command given (try: k8semu --help)")


def shell(client: Client, out: TextIO, err: TextIO) -> Shell:
    """The interactive shell on ``client``'s cluster: its verbs are this parser's, run by this
    ``dispatch`` (one list of verbs, one dispatcher)."""
    def run_verb(words: list[str]) -> int:
        try:
            args = parse(build_parser(), words)
        except SystemExit:
            return ExitStatus.USAGE
        args.cluster = args.cluster or client.run.name  # this shell's cluster
        return dispatch(args, out, err, in_shell=True)
    return Shell(out, err, client, verbs(), run_verb)


def _interrupt(signum: int, frame) -> None:
    """SIGTERM and SIGHUP to a foreground ``up`` tear the cluster down as Ctrl-C does."""
    raise KeyboardInterrupt


def _up(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from emulator.cluster.admit import admit_cluster
    from emulator.cli.progress import UpProgress
    spec = args.spec or default_spec()
    begin = time.monotonic()
    config = admit_cluster(spec)
    for warning in config.warnings:
        err.write(f"Warning: {warning}\n")
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    status = None
    try:
        progress = UpProgress(out, time.monotonic() - begin)
        try:
            status = lifecycle.up(config, spec, args.timeout, out, progress=progress)
        finally:
            progress.close()
        _say(out, f"cluster {config.name!r} is up: {len(status['nodes'])} nodes, {status['pods']} pods "
                  f"running ({status['seconds']:.1f}s); kubectl context "
                  f"k8semu-{config.name} in {status['kubeconfig']}\n")
        if args.detach:
            return 0
        shell(Client(lifecycle.cluster_dir(config.name)), out, err).cmdloop()
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM or SIGHUP
        if status is None:  # while starting: take down what was made
            _say(out, "\n" + lifecycle.stop_starting(config) + "\n")
            return ExitStatus.CTRL_C
        if not args.detach:
            _say(out, "\n")
    finally:
        # the cluster is up and this is its foreground shell: whatever ended the shell (exit,
        # a signal, even one before the shell began, or an error) takes the cluster down
        if status is not None and not args.detach:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not cut the teardown short
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            _say(out, lifecycle.down(config.name) + "\n")
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0


def _say(out: TextIO, text: str) -> None:
    """Write, unless the terminal is gone (SIGHUP): the teardown goes on regardless."""
    try:
        out.write(text)
        out.flush()
    except OSError:
        pass


def main(argv: list[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Entry point of the ``k8semu`` command; returns an ExitStatus value."""
    out, err = out or sys.stdout, err or sys.stderr
    parser = build_parser()
    try:
        args = parse(parser, list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return int(exc.code or 0) and ExitStatus.USAGE
    if args.verb is None:
        parser.print_help(out)
        return ExitStatus.USAGE
    try:
        return dispatch(args, out, err)
    except K8semuError as exc:
        if args.traceback:
            raise
        err.write(f"error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return ExitStatus.CTRL_C
