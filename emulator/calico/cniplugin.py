"""The ``calico`` and ``calico-ipam`` CNI plugins of a ``cni: calico`` node, following the CNI
protocol (CNI_COMMAND, CNI_NETNS, CNI_IFNAME, CNI_ARGS, the network config on stdin, the result
or error as JSON on stdout), doing what Calico's cni-plugin does on Linux:

- ADD: IPAM is delegated to the config's ``ipam`` plugin as the spec describes (``calico-ipam``:
  the address the cluster state's Calico IPAM chose, handed down in CNI_ARGS ``IP=`` as
  host-local is asked on the flannel data plane); then a veth whose host end is
  ``cali`` + the first 11 hex digits of sha1("<namespace>.<pod>") with MAC ee:ee:ee:ee:ee:ee,
  proxy ARP on and proxy_delay 0, and a /32 route to the pod through it; the pod end is
  CNI_IFNAME with the address as a /32, a link route to 169.254.1.1 and the default route via
  it (proxy ARP answers for 169.254.1.1: no address is on the host end).
- DEL: the veth, deleted from the pod's side while its namespace is there (the host end goes
  with it), then the IPAM plugin's DEL; nothing there is no error.

Why our own plugin: Debian has no Calico package, and the reference ``ptp`` plugin names its
veths ``veth…`` and puts the gateway address on them, where a student following the course
looks for ``cali…`` and proxy ARP. Run as a program by the runtime (``runtime.cni``): only the
standard library, and ``ip`` with argv lists; every value written is checked first.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import subprocess
import sys

GATEWAY = "169.254.1.1"
HOST_MAC = "ee:ee:ee:ee:ee:ee"
NETNS_DIR = "/run/netns/"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")  # a netns name or a plugin's name
IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")


class PluginError(Exception):
    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code, self.msg, self.details = code, msg, details


def veth_name(namespace: str, pod: str) -> str:
    """cni-plugin's VethNameForWorkload: "cali" + sha1("<namespace>.<pod>")[:11]."""
    return "cali" + hashlib.sha1(f"{namespace}.{pod}".encode()).hexdigest()[:11]


def _args() -> dict[str, str]:
    out = {}
    for pair in os.environ.get("CNI_ARGS", "").split(";"):
        if "=" in pair:
            key, value = pair.split("=", 1)
            out[key] = value
    return out


def _ip(*batch: str, netns: str = "") -> None:
    argv = ["ip"] + (["-n", netns] if netns else []) + ["-batch", "-"]
    done = subprocess.run(argv, input="\n".join(batch) + "\n", capture_output=True, text=True)
    if done.returncode != 0:
        raise PluginError(11, "netlink request failed", done.stderr.strip())


def _netns_name(path: str) -> str:
    name = path[len(NETNS_DIR):] if path.startswith(NETNS_DIR) else ""
    if not NAME.fullmatch(name):
        raise PluginError(4, f"CNI_NETNS {path!r} is not a namespace under {NETNS_DIR}")
    return name


def _sysctl(path: str, value: str) -> None:
    with open(os.path.join("/proc/sys", path), "w") as f:
        f.write(value)


def _delegate(command: str, conf: dict, stdin_conf: dict) -> dict:
    """The ``ipam`` plugin, run from CNI_PATH with the same environment (the spec's delegation)."""
    kind = conf.get("ipam", {}).get("type", "")
    if not NAME.fullmatch(kind):
        raise PluginError(7, f"ipam type {kind!r} is not a plugin's name")
    for folder in os.environ.get("CNI_PATH", "").split(os.pathsep):
        path = os.path.join(folder, kind)
        if folder and os.access(path, os.X_OK):
            done = subprocess.run([path], input=json.dumps(stdin_conf), capture_output=True, text=True,
                                  env=dict(os.environ, CNI_COMMAND=command))
            if done.returncode != 0:
                try:
                    error = json.loads(done.stdout)
                except ValueError:
                    error = {"msg": done.stderr.strip()}
                raise PluginError(error.get("code", 999), f"ipam {kind}: {error.get('msg', '')}",
                                  error.get("details", ""))
            return json.loads(done.stdout) if done.stdout.strip() else {}
    raise PluginError(7, f"failed to find plugin {kind!r} in path {os.environ.get('CNI_PATH', '')}")


def ipam_main(conf: dict) -> dict:
    """calico-ipam: ADD answers the address the cluster state chose (CNI_ARGS IP=)."""
    if os.environ.get("CNI_COMMAND") != "ADD":
        return {}
    ip = _args().get("IP", "")
    try:
        address = ipaddress.IPv4Address(ip)
    except ValueError:
        raise PluginError(7, f"no address to assign: CNI_ARGS IP={ip!r}") from None
    return {"cniVersion": conf.get("cniVersion", "1.0.0"), "ips": [{"address": f"{address}/32"}]}


def calico_add(conf: dict) -> dict:
    args = _args()
    ifname = os.environ.get("CNI_IFNAME", "")
    if not IFNAME.fullmatch(ifname):
        raise PluginError(4, f"CNI_IFNAME {ifname!r} is not an interface name")
    netns = _netns_name(os.environ.get("CNI_NETNS", ""))
    mtu = int(conf.get("mtu", 1500))
    if not 576 <= mtu <= 9000:
        raise PluginError(7, f"mtu {mtu} out of range")
    ipam = _delegate("ADD", conf, conf)
    address = str(ipaddress.IPv4Interface(ipam["ips"][0]["address"]).ip)
    host = veth_name(args.get("K8S_POD_NAMESPACE", ""), args.get("K8S_POD_NAME", ""))
    try:
        _ip(f"link add {host} mtu {mtu} address {HOST_MAC} type veth peer name {ifname} mtu {mtu} netns {netns}")
        for path, value in ((f"net/ipv4/conf/{host}/proxy_arp", "1"), (f"net/ipv4/neigh/{host}/proxy_delay", "0"),
                            (f"net/ipv4/conf/{host}/forwarding", "1")):
            _sysctl(path, value)
        _ip(f"link set {host} up", f"route add {address}/32 dev {host} scope link")
        _ip(f"link set {ifname} up", f"addr add {address}/32 dev {ifname}",
            f"route add {GATEWAY} dev {ifname} scope link", f"route add default via {GATEWAY} dev {ifname}",
            netns=netns)
    except (PluginError, OSError) as exc:
        subprocess.run(["ip", "link", "del", host], capture_output=True)
        _delegate("DEL", conf, conf)
        raise exc if isinstance(exc, PluginError) else PluginError(11, str(exc))
    mac = subprocess.run(["ip", "-n", netns, "-j", "link", "show", ifname], capture_output=True, text=True)
    try:
        pod_mac = json.loads(mac.stdout)[0]["address"]
    except (ValueError, IndexError, KeyError):
        pod_mac = ""
    return {"cniVersion": conf.get("cniVersion", "1.0.0"),
            "interfaces": [{"name": host, "mac": HOST_MAC},
                           {"name": ifname, "mac": pod_mac, "sandbox": os.environ.get("CNI_NETNS", "")}],
            "ips": [{"address": f"{address}/32", "gateway": GATEWAY, "interface": 1}],
            "routes": [{"dst": "0.0.0.0/0", "gw": GATEWAY}], "dns": {}}


def calico_del(conf: dict) -> dict:
    """The pod's end of the veth deleted inside its namespace (its host end goes with it), as
    Calico's plugin does: a host veth of the same name belonging to a newer sandbox is never
    touched. Without the namespace (a DEL after a crash) the host end, by name. Nothing there is
    no error."""
    args = _args()
    path, ifname = os.environ.get("CNI_NETNS", ""), os.environ.get("CNI_IFNAME", "")
    if path and os.path.exists(path) and IFNAME.fullmatch(ifname):
        subprocess.run(["ip", "-n", _netns_name(path), "link", "del", ifname], capture_output=True)
    else:
        host = veth_name(args.get("K8S_POD_NAMESPACE", ""), args.get("K8S_POD_NAME", ""))
        subprocess.run(["ip", "link", "del", host], capture_output=True)
    _delegate("DEL", conf, conf)
    return {}


def main(kind: str) -> int:
    try:
        conf = json.loads(sys.stdin.read() or "{}")
        command = os.environ.get("CNI_COMMAND", "")
        if command == "VERSION":
            result: dict = {"cniVersion": "1.0.0", "supportedVersions": ["0.3.1", "0.4.0", "1.0.0"]}
        elif kind == "calico-ipam":
            result = ipam_main(conf)
        elif command == "ADD":
            result = calico_add(conf)
        elif command in ("DEL", "CHECK"):
            result = calico_del(conf) if command == "DEL" else {}
        else:
            raise PluginError(4, f"unknown CNI_COMMAND {command!r}")
    except PluginError as exc:
        print(json.dumps({"cniVersion": "1.0.0", "code": exc.code, "msg": exc.msg, "details": exc.details}))
        return 1
    except (ValueError, KeyError, IndexError, OSError) as exc:
        print(json.dumps({"cniVersion": "1.0.0", "code": 999, "msg": f"{type(exc).__name__}: {exc}"}))
        return 1
    if result:
        print(json.dumps(result))
    return 0


def launcher(kind: str) -> str:
    """The executable file the runtime finds in CNI_PATH for ``kind`` (this interpreter, this
    package, isolated from the caller's environment)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return (f"#!{sys.executable} -I\nimport sys\nsys.path.insert(0, {root!r})\n"
            f"from emulator.calico.cniplugin import main\nsys.exit(main({kind!r}))\n")
