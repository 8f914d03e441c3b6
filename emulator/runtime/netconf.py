"""A pod's network interface, made from inside its sandbox over netlink (pyroute2), the way a
CNI plugin's ADD does it: a veth pair whose ``eth0`` end is in the pod's namespace and whose
host end is in the root namespace, tagged, with the pod's MAC, address, MTU and default route.

Why netlink from the shim rather than ``ip``: the shim's helper is already inside the new network
namespace, so the whole interface is a handful of netlink messages (about a millisecond beyond
the kernel's own veth creation), where ``ip -n NS ...`` costs a process and a copy of the
machine's mount table per pod (``ip -n`` enters a new mount namespace to remount /sys), which
grows with every pod's namespace file. pyroute2 is the maintained netlink library for Python.

Ownership: the host end's name is checked by the kernel (EEXIST: another object has it; the pod
fails alone and nothing of the other object is touched) and carries the run's tag as its alias
before anything else can mistake it for someone else's.
"""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from emulator.runtime import linux


@dataclass(frozen=True)
class PodLink:
    host_veth: str  # the host end's name in the root namespace
    tag: str  # the run's tag, set as the host end's alias
    mtu: int
    mac: str
    ip: str
    prefixlen: int
    gateway: str

    @classmethod
    def from_dict(cls, data: dict) -> "PodLink":
        return cls(**data)


def create(root: IPRoute, root_netns_fd: int, link: PodLink) -> None:
    """Create and configure the pod's veth; the caller is in the pod's (fresh) network namespace,
    ``root`` a netlink socket opened in the root one. On failure nothing of it is left.

    Raises:
        OSError: the interface cannot be made (the message names the clash when the name is taken).
    """
    pod = IPRoute()
    try:
        try:
            pod.link("add", ifname="eth0", kind="veth", mtu=link.mtu, address=link.mac,
                     peer={"ifname": link.host_veth, "net_ns_fd": root_netns_fd, "mtu": link.mtu})
        except NetlinkError as exc:
            if exc.code == errno.EEXIST:
                raise OSError(errno.EEXIST, f"interface {link.host_veth} exists and is not this pod's "
                                            "(another object holds the name); nothing of it was changed") from None
            raise OSError(exc.code, f"cannot create the pod's veth {link.host_veth}: {exc}") from None
        try:
            host = root.link_lookup(ifname=link.host_veth)[0]
            root.link("set", index=host, ifalias=link.tag)
            _no_ipv6_in_root(root_netns_fd, link.host_veth)  # before it is up: no link-local address
            root.link("set", index=host, state="up")
            eth0 = pod.link_lookup(ifname="eth0")[0]
            pod.link("set", index=eth0, state="up")
            pod.addr("add", index=eth0, address=link.ip, prefixlen=link.prefixlen)
            pod.link("set", index=pod.link_lookup(ifname="lo")[0], state="up")
            pod.route("add", dst="0.0.0.0/0", gateway=link.gateway, oif=eth0)
        except (NetlinkError, IndexError, OSError) as exc:
            try:
                pod.link("del", ifname="eth0")  # takes the host end with it
            except NetlinkError:
                pass
            raise OSError(errno.EIO, f"cannot configure the pod's veth {link.host_veth}: {exc}") from None
    finally:
        pod.close()


def _no_ipv6_in_root(root_netns_fd: int, ifname: str) -> None:
    """disable_ipv6 on an interface of the root namespace, from a process in another one:
    /proc/sys/net shows the namespace of whoever opens it, so step into the root one to write."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        linux.setns(root_netns_fd, linux.CLONE_NEWNET)
        try:
            with open(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6", "w") as f:
                f.write("1")
        except FileNotFoundError:
            if os.path.isdir("/proc/sys/net/ipv6"):
                raise  # else the kernel has no IPv6: nothing to turn off
        finally:
            linux.setns(own, linux.CLONE_NEWNET)
    finally:
        os.close(own)
