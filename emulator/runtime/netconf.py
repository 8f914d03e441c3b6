"""A pod's network interface, configured from inside its sandbox over netlink (pyroute2), the
way a CNI plugin's ADD does it: the pod gets an ``eth0`` whose other side is a port of its node's
Open vSwitch bridge, with the pod's MAC, address, MTU and default route. Two kinds
(``spec.network.podInterface``):

- ``veth`` (the default): a veth pair made from inside the pod's namespace, ``eth0`` there and
  its peer born in the root namespace, which the manager then adds to the bridge; the pod model
  Antrea, Flannel and Calico build (``ip -d link`` shows ``veth``, ``eth0@ifN`` names the peer).
- ``internal-port``: the switch's own internal port (a tap the userspace datapath reads and
  writes through a file descriptor), made by OVS under a name checked free and moved into the
  pod as ``eth0``, as Kube-OVN's internal-port type does. With the userspace datapath every
  packet crosses the one ovs-vswitchd thread, and a veth end costs it a packet socket whose
  paths took about twice the CPU per byte of a tap's (pod to pod on one node 0.22-0.28 of a bare
  veth with veths, 0.43-0.61 with internal ports); the price is the move, about 18 ms per pod
  serialized in the kernel (an RCU barrier under the RTNL lock), which a 1,000-pod start-up pays
  in full (docs/benchmarks.md, issue #17).

Why netlink from the shim rather than ``ip``: the shim's helper is already inside the new network
namespace, so the whole interface is a handful of netlink messages, where ``ip -n NS ...`` costs
a process and a copy of the machine's mount table per pod (``ip -n`` enters a new mount
namespace to remount /sys), which grows with every pod's namespace file. pyroute2 is the
maintained netlink library for Python.

Ownership: a veth's peer is created under its name, so a taken name fails and nothing of the
other object changes; an internal port's name was checked free before OVS made it, and the
device must be a tap or OVS internal device without an alias (nothing else has claimed it).
Either carries the run's tag as its alias from then on.
"""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from emulator.runtime import linux

PORT_KINDS = ("tun", "openvswitch")  # an internal port: a tap (netdev datapath) or a kernel one


@dataclass(frozen=True)
class PodLink:
    kind: str  # veth | internal-port
    port: str  # the OVS port's name: the veth's peer, or the internal port until it moves
    tag: str  # the run's tag, set as the root-side device's alias
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


def create(root: IPRoute, root_netns_fd: int, link: PodLink) -> None:
    """Make the pod's ``eth0`` and configure it; the caller is in the pod's (fresh) network
    namespace, ``root`` a netlink socket opened in the root one and ``root_netns_fd`` that
    namespace. On failure a veth is removed; an internal port stays the switch's (the manager
    removes it).

    Raises:
        OSError: the interface cannot be set up (the message names a clash when the name is taken).
    """
    pod = IPRoute()
    try:
        if link.kind == "internal-port":
            eth0 = _move_in(root, pod, link)
        else:
            eth0 = _veth(root, pod, root_netns_fd, link)
        try:
            pod.link("set", index=eth0, state="up")
            pod.addr("add", index=eth0, address=link.ip, prefixlen=link.prefixlen)
            pod.link("set", index=pod.link_lookup(ifname="lo")[0], state="up")
            pod.route("add", dst="0.0.0.0/0", gateway=link.gateway, oif=eth0)
        except (NetlinkError, IndexError) as exc:
            if link.kind == "veth":
                _remove_veth(pod)
            raise OSError(errno.EIO, f"cannot configure the pod's interface {link.port}: {exc}") from None
    finally:
        pod.close()


def _move_in(root: IPRoute, pod: IPRoute, link: PodLink) -> int:
    """The switch's internal port, claimed, moved into this namespace and renamed ``eth0``."""
    index = _claim(root, link)
    here = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        root.link("set", index=index, net_ns_fd=here)
        eth0 = pod.link_lookup(ifname=link.port)[0]
        pod.link("set", index=eth0, ifname="eth0", address=link.mac, mtu=link.mtu)
        return eth0
    except (NetlinkError, IndexError) as exc:
        raise OSError(errno.EIO, f"cannot configure the pod's interface {link.port}: {exc}") from None
    finally:
        os.close(here)


def _veth(root: IPRoute, pod: IPRoute, root_netns_fd: int, link: PodLink) -> int:
    """A veth pair: ``eth0`` here, its peer (the switch's port-to-be) in the root namespace,
    tagged, without IPv6 and up."""
    try:
        pod.link("add", ifname="eth0", kind="veth", mtu=link.mtu, address=link.mac,
                 peer={"ifname": link.port, "net_ns_fd": root_netns_fd, "mtu": link.mtu})
    except NetlinkError as exc:
        if exc.code == errno.EEXIST:
            raise OSError(errno.EEXIST, f"interface {link.port} exists and is not this pod's "
                                        "(another object holds the name); nothing of it was changed") from None
        raise OSError(exc.code, f"cannot create the pod's veth {link.port}: {exc}") from None
    try:
        host = root.link_lookup(ifname=link.port)[0]
        root.link("set", index=host, ifalias=link.tag)
        _no_ipv6_in_root(root_netns_fd, link.port)  # before it is up: no link-local address
        root.link("set", index=host, state="up")
        return pod.link_lookup(ifname="eth0")[0]
    except (NetlinkError, IndexError, OSError) as exc:
        _remove_veth(pod)
        raise OSError(errno.EIO, f"cannot configure the pod's veth {link.port}: {exc}") from None


def _remove_veth(pod: IPRoute) -> None:
    try:
        pod.link("del", ifname="eth0")  # takes the peer with it
    except NetlinkError:
        pass


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
