"""A pod's network interface, configured from inside its sandbox over netlink (pyroute2), the
way a CNI plugin's ADD does it: the pod's port on the node's Open vSwitch bridge becomes the
pod's ``eth0``, with the pod's MAC, address, MTU and default route.

Why an OVS internal port (a tap device the switch reads and writes through a file descriptor)
rather than a veth pair: with the userspace datapath every packet of every port crosses the one
ovs-vswitchd thread, and a veth end costs it a packet socket, whose receive and send paths took
about twice the CPU per byte of a tap's on this machine (pod to pod on one node 7.1 Gbit/s with
veths, 12.8-13.5 with taps; docs/benchmarks.md, issue #17). The tap moves into the pod's
namespace like a veth end would, and goes with it when the namespace is removed.

Why netlink from the shim rather than ``ip``: the shim's helper is already inside the new network
namespace, so the whole interface is a handful of netlink messages, where ``ip -n NS ...`` costs
a process and a copy of the machine's mount table per pod (``ip -n`` enters a new mount
namespace to remount /sys), which grows with every pod's namespace file. pyroute2 is the
maintained netlink library for Python.

Ownership: the manager checked that the port's name was free before asking OVS to make it; here
the device must be a tap or OVS internal device without an alias (nothing else has claimed it),
and it carries the run's tag as its alias from then on.
"""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

PORT_KINDS = ("tun", "openvswitch")  # an internal port: a tap (netdev datapath) or a kernel one


@dataclass(frozen=True)
class PodLink:
    port: str  # the OVS port's name: the device's name in the root namespace until it moves
    tag: str  # the run's tag, set as the device's alias
    mtu: int
    mac: str
    ip: str
    prefixlen: int
    gateway: str

    @classmethod
    def from_dict(cls, data: dict) -> "PodLink":
        return cls(**data)


def _claim(root: IPRoute, link: PodLink) -> int:
    """The port's index in the root namespace, once it is known to be the switch's device and
    is tagged; raises OSError otherwise, touching nothing."""
    found = root.link_lookup(ifname=link.port)
    if not found:
        raise OSError(errno.ENODEV, f"the switch made no interface {link.port}")
    info = root.get_links(found[0])[0]
    linkinfo = info.get_attr("IFLA_LINKINFO")
    kind = linkinfo.get_attr("IFLA_INFO_KIND") if linkinfo is not None else None
    if kind not in PORT_KINDS or info.get_attr("IFLA_IFALIAS"):
        raise OSError(errno.EEXIST, f"interface {link.port} exists and is not this pod's "
                                    "(another object holds the name); nothing of it was changed")
    root.link("set", index=found[0], ifalias=link.tag)
    return found[0]


def create(root: IPRoute, link: PodLink) -> None:
    """Move the pod's switch port into this namespace as ``eth0`` and configure it; the caller
    is in the pod's (fresh) network namespace, ``root`` a netlink socket opened in the root one.
    On failure the device stays the switch's port (the manager removes it).

    Raises:
        OSError: the interface cannot be set up (the message names a clash when the name is taken).
    """
    index = _claim(root, link)
    here = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    pod = IPRoute()
    try:
        try:
            root.link("set", index=index, net_ns_fd=here)
            eth0 = pod.link_lookup(ifname=link.port)[0]
            pod.link("set", index=eth0, ifname="eth0", address=link.mac, mtu=link.mtu)
            pod.link("set", index=eth0, state="up")
            pod.addr("add", index=eth0, address=link.ip, prefixlen=link.prefixlen)
            pod.link("set", index=pod.link_lookup(ifname="lo")[0], state="up")
            pod.route("add", dst="0.0.0.0/0", gateway=link.gateway, oif=eth0)
        except (NetlinkError, IndexError) as exc:
            raise OSError(errno.EIO, f"cannot configure the pod's interface {link.port}: {exc}") from None
    finally:
        pod.close()
        os.close(here)
