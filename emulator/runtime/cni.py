"""Pods' networks made by the reference CNI plugins, invoked as a container runtime invokes them
(the CNI specification's "Execution of Network Configurations"): for each plugin of the node's
conflist in order, the plugin binary from CNI_PATH with CNI_COMMAND=ADD, CNI_CONTAINERID,
CNI_NETNS, CNI_IFNAME=eth0, CNI_PATH and CNI_ARGS in its environment and the plugin's config on
stdin, with the network's name and cniVersion, the capabilities' runtimeConfig (portMappings for
hostPorts) and the previous plugin's result as ``prevResult``; DEL in reverse order with the
cached result (CHECK is not run: nothing here changes a pod's network behind the runtime's
back). The plugins run in the node's network namespace (where a runtime runs), entered with
``nsenter`` (no mount namespace, unlike ``ip netns exec``).

As libcni does for a runtime, each attachment's ADD is cached in the node's
/var/lib/cni/results/<network>-<container id>-<ifname> (libcni's ``cniCacheV1`` record: the
network config, CNI_ARGS, capability args, netns and result) and the entry removed by its DEL.
``delete_cached`` runs DEL from those entries for what a crashed manager left: ``k8semu cleanup``
calls it before the nodes' namespaces go, so host-local's leases, portmap's rules and the host
veths are released by the plugins themselves, as a runtime restarting after a crash would.

The pod's address is the one the cluster state chose (it is in the Pod object before the sandbox
exists, as in the emulator's other data plane); host-local is asked for exactly it through
``CNI_ARGS`` ``IP=``, so host-local's lease files and the API agree, and a result naming another
address is an error. Why run the Go binaries rather than do the same with netlink: the course
asks students to read what the plugins did (the result JSON, cni0, hairpin veths, host-local's
leases), and only the plugins do it exactly.
"""
from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from emulator.errors import RuntimeFailure

CNI_PATH = "/usr/lib/cni"
# containerd's own network for the pod's lo, set up before (and torn down after) the node's list
LOOPBACK = {"cniVersion": "1.0.0", "name": "cni-loopback", "plugins": [{"type": "loopback"}]}
IFNAME = "eth0"
WORKERS = 4  # plugin processes at once (each ~10-30 ms; the machine has 2 cores)
TIMEOUT = 30.0
RESULTS = "var/lib/cni/results"  # libcni's cache folder, under a node's root
PLUGIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # a file in CNI_PATH, never a path


@dataclass(frozen=True)
class Attachment:
    """One pod's network attachment: what CNI_* says about it."""
    netns_path: str
    node_netns: str  # the node's network namespace name (under /run/netns), where plugins run
    namespace: str
    name: str
    uid: str
    ip: str
    port_mappings: tuple[dict, ...] = ()  # {"hostPort", "containerPort", "protocol", "hostIP"?}

    @property
    def container_id(self) -> str:
        """CNI_CONTAINERID: the pod's sandbox, named by the pod's uid."""
        return self.uid

    def pairs(self) -> list[list[str]]:
        return [["IgnoreUnknown", "1"], ["K8S_POD_NAMESPACE", self.namespace], ["K8S_POD_NAME", self.name],
                ["K8S_POD_INFRA_CONTAINER_ID", self.container_id], ["K8S_POD_UID", self.uid], ["IP", self.ip]]

    def args(self) -> str:
        return ";".join(f"{k}={v}" for k, v in self.pairs())


def cache_path(results: Path, network: str, a: Attachment) -> Path:
    """libcni's name for an attachment's cached result."""
    return results / f"{network}-{a.container_id}-{IFNAME}"


@dataclass
class Plugins:
    """Runs the conflist's plugins for attachments; ``conflists``: node name -> parsed conflist."""
    conflists: dict[str, dict] = field(default_factory=dict)
    path: str = CNI_PATH  # CNI_PATH: folders separated by ":", searched in order
    results: dict[str, Path] = field(default_factory=dict)  # node -> its libcni cache folder (none: no cache)

    def _cache(self, node: str, a: Attachment, conf: dict, result: dict) -> None:
        folder = self.results.get(node)
        if folder is None:
            return
        folder.mkdir(parents=True, exist_ok=True)
        entry = {"kind": "cniCacheV1", "containerId": a.container_id,
                 "config": base64.b64encode(json.dumps(conf).encode()).decode(), "ifName": IFNAME,
                 "networkName": conf["name"], "netns": a.netns_path, "cniArgs": a.pairs(),
                 "capabilityArgs": {"portMappings": list(a.port_mappings)} if a.port_mappings else {}, "result": result}
        cache_path(folder, conf["name"], a).write_text(json.dumps(entry))

    def _uncache(self, node: str, a: Attachment) -> None:
        folder, conf = self.results.get(node), self.conflists.get(node)
        if folder is not None and conf is not None:
            cache_path(folder, conf["name"], a).unlink(missing_ok=True)

    def check_installed(self) -> None:
        """Raises: RuntimeFailure naming the first plugin the conflists need that is missing."""
        for conf in [LOOPBACK, *self.conflists.values()]:
            for plugin in conf["plugins"]:
                for kind in (plugin["type"], plugin.get("ipam", {}).get("type")):
                    if kind and not self.find(kind):
                        raise RuntimeFailure(f"CNI plugin {kind!r} not found in {self.path} "
                                             "(Debian's containernetworking-plugins; run: sudo make install)")

    def find(self, kind: str) -> str:
        """The plugin's file in the first CNI_PATH folder holding it ("" if none does)."""
        for folder in self.path.split(os.pathsep):
            candidate = os.path.join(folder, kind)
            if folder and os.access(candidate, os.X_OK):
                return candidate
        return ""

    def _invoke(self, command: str, a: Attachment, plugin: dict, conf: dict, prev: dict | None) -> dict:
        if not isinstance(plugin.get("type"), str) or not PLUGIN_NAME.fullmatch(plugin["type"]):
            raise RuntimeFailure(f"CNI {command}: plugin type {plugin.get('type')!r} is not a plugin's name")
        stdin = {**plugin, "name": conf["name"], "cniVersion": conf["cniVersion"]}
        stdin.pop("capabilities", None)
        if plugin.get("capabilities", {}).get("portMappings"):
            stdin["runtimeConfig"] = {"portMappings": list(a.port_mappings)}
        if prev is not None:
            stdin["prevResult"] = prev
        env = {"CNI_COMMAND": command, "CNI_CONTAINERID": a.container_id, "CNI_NETNS": a.netns_path,
               "CNI_IFNAME": IFNAME, "CNI_PATH": self.path, "CNI_ARGS": a.args(), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        binary = self.find(plugin["type"])
        if not binary:
            raise RuntimeFailure(f"CNI {command}: plugin {plugin['type']!r} not found in {self.path}")
        argv = ["nsenter", f"--net=/run/netns/{a.node_netns}", "--", binary]
        try:
            done = subprocess.run(argv, input=json.dumps(stdin), capture_output=True, text=True, env=env,
                                  timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            raise RuntimeFailure(f"CNI {command} {plugin['type']}: timed out after {TIMEOUT:.0f}s") from None
        if done.returncode != 0:
            try:  # a plugin reports errors as JSON on stdout (the spec's error result)
                error = json.loads(done.stdout)
                message = error.get("msg", "") + (f": {error['details']}" if error.get("details") else "")
            except ValueError:
                message = (done.stderr or done.stdout).strip()
            raise RuntimeFailure(f"CNI {command} {plugin['type']} failed: {message}")
        return json.loads(done.stdout) if command == "ADD" and done.stdout.strip() else (prev or {})

    def add_one(self, node: str, a: Attachment) -> dict:
        """ADD the loopback network (lo up, as containerd's loopback plugin call does), then
        through the node's whole list; returns the last plugin's result. On a failure the
        plugins already run are undone (DEL), as a runtime does, and the error raised."""
        conf = self.conflists[node]
        prev: dict | None = None
        try:
            self._invoke("ADD", a, LOOPBACK["plugins"][0], LOOPBACK, None)
            for plugin in conf["plugins"]:
                prev = self._invoke("ADD", a, plugin, conf, prev)
        except RuntimeFailure:
            self.delete_one(node, a, prev)
            raise
        ips = [ip["address"].split("/")[0] for ip in (prev or {}).get("ips", [])]
        if a.ip not in ips:
            self.delete_one(node, a, prev)
            raise RuntimeFailure(f"CNI ADD gave {', '.join(ips) or 'no address'}, not the pod's {a.ip}")
        self._cache(node, a, conf, prev or {})
        return prev or {}

    def delete_one(self, node: str, a: Attachment, result: dict | None) -> list[str]:
        """DEL through the list in reverse, every plugin even when one fails (as the spec asks
        of a runtime), then the loopback network; returns the failures."""
        conf = self.conflists.get(node)
        problems = []
        for plugin, network in [(p, conf) for p in reversed(conf["plugins"] if conf else [])] + \
                [(LOOPBACK["plugins"][0], LOOPBACK)]:
            try:
                self._invoke("DEL", a, plugin, network, (result or None) if network is conf else None)
            except (RuntimeFailure, OSError, ValueError) as exc:
                problems.append(str(exc))
        self._uncache(node, a)
        return problems

    def add(self, items: list[tuple[str, Attachment]]) -> list[dict | Exception]:
        """ADD many attachments (node, attachment) side by side; each result or its error."""
        def one(item: tuple[str, Attachment]) -> dict | Exception:
            try:
                return self.add_one(*item)
            except RuntimeFailure as exc:
                return exc
            except (OSError, ValueError, KeyError) as exc:  # a plugin's unreadable answer: this pod fails alone
                return RuntimeFailure(f"CNI ADD: {type(exc).__name__}: {exc}")
        with ThreadPoolExecutor(WORKERS) as pool:
            return list(pool.map(one, items))

    def delete(self, items: list[tuple[str, Attachment, dict | None]]) -> list[str]:
        """DEL many attachments side by side; every failure, in one list."""
        with ThreadPoolExecutor(WORKERS) as pool:
            return [p for problems in pool.map(lambda i: self.delete_one(*i), items) for p in problems]


def delete_cached(roots: dict[str, Path], node_netns: Callable[[str], str],
                  search: str = CNI_PATH) -> tuple[int, list[str]]:
    """DEL every attachment cached under the nodes' roots (node -> its root folder), from the
    cache alone, as a runtime cleans up after a crash: the network config, CNI_ARGS and result
    are the cached ones; CNI_NETNS is the cached path while it still exists, else empty (the
    spec lets DEL go on without it); ``search``: CNI_PATH. Returns how many were deleted and the problems met."""
    count, problems = 0, []
    for node, root in sorted(roots.items()):
        folder = root / RESULTS
        for path in sorted(folder.glob("*")) if folder.is_dir() else ():
            try:
                entry = json.loads(path.read_text())
                conf = json.loads(base64.b64decode(entry["config"]))
                if not (isinstance(conf.get("name"), str) and isinstance(conf.get("cniVersion"), str)
                        and isinstance(conf.get("plugins"), list) and all(isinstance(p, dict) for p in conf["plugins"])):
                    raise ValueError("not a network configuration list")
                args = dict(entry.get("cniArgs") or [])
                netns = entry.get("netns", "") if os.path.exists(entry.get("netns", "")) else ""
                a = Attachment(netns, node_netns(node), args.get("K8S_POD_NAMESPACE", ""), args.get("K8S_POD_NAME", ""),
                               entry["containerId"], args.get("IP", ""),
                               tuple((entry.get("capabilityArgs") or {}).get("portMappings") or ()))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                problems.append(f"{path}: unreadable CNI cache entry ({exc})")
                continue
            plugins = Plugins({node: conf}, search, results={node: folder})
            problems += plugins.delete_one(node, a, entry.get("result") or None)
            count += 1
    return count, problems
