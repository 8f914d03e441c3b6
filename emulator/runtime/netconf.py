"""A pod's network interface, configured from inside its sandbox over netlink (``runtime.rtnl``), the
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
namespace to remount /sys), which grows with every pod's namespace file. The messages are
k8semu's own (``runtime.rtnl``, which says why not pyroute2).

Ownership: a veth's peer is created under its name, so a taken name fails and nothing of the
other object changes; an internal port's name was checked free before OVS made it, and the
device must be a tap or OVS internal device without an alias (nothing else has claimed it).
Either carries the run's tag as its alias from then on.
"""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass

from emulator.runtime import linux
from emulator.runtime.rtnl import NetlinkError, Rtnl

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


def _claim(root: Rtnl, link: PodLink) -> int:
    """The port's index in the root namespace, once it is known to be the switch's device and
    is tagged; raises OSError otherwise, touching nothing."""
    found = root.link(link.port)
    if found is None:
        raise OSError(errno.ENODEV, f"the switch made no interface {link.port}")
    if found.kind not in PORT_KINDS or found.alias:
        raise OSError(errno.EEXIST, f"interface {link.port} exists and is not this pod's "
                                    "(another object holds the name); nothing of it was changed")
    root.set_link(found.index, alias=link.tag)
    return found.index


def create(root: Rtnl, root_netns_fd: int, link: PodLink) -> None:
    """Make the pod's ``eth0`` and configure it; the caller is in the pod's (fresh) network
    namespace, ``root`` a netlink socket opened in the root one and ``root_netns_fd`` that
    namespace. On failure a veth is removed; an internal port stays the switch's (the manager
    removes it).

    Raises:
        OSError: the interface cannot be set up (the message names a clash when the name is taken).
    """
    with Rtnl() as pod:
        if link.kind == "internal-port":
            eth0 = _move_in(root, pod, link)
        else:
            eth0 = _veth(root, pod, root_netns_fd, link)
        try:
            pod.set_link(eth0, up=True)
            pod.add_address(eth0, link.ip, link.prefixlen)
            lo = pod.link("lo")
            if lo is None:
                raise NetlinkError(errno.ENODEV, "no loopback device")
            pod.set_link(lo.index, up=True)
            pod.add_default_route(link.gateway, eth0)
        except NetlinkError as exc:
            if link.kind == "veth":
                _remove_veth(pod)
            raise OSError(errno.EIO, f"cannot configure the pod's interface {link.port}: {exc}") from None


def _move_in(root: Rtnl, pod: Rtnl, link: PodLink) -> int:
    """The switch's internal port, claimed, moved into this namespace and renamed ``eth0``."""
    index = _claim(root, link)
    here = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        root.set_link(index, netns_fd=here)
        moved = pod.link(link.port)
        if moved is None:
            raise NetlinkError(errno.ENODEV, f"{link.port} did not arrive")
        pod.set_link(moved.index, name="eth0", mac_address=link.mac, mtu=link.mtu)
        return moved.index
    except NetlinkError as exc:
        raise OSError(errno.EIO, f"cannot configure the pod's interface {link.port}: {exc}") from None
    finally:
        os.close(here)


def _veth(root: Rtnl, pod: Rtnl, root_netns_fd: int, link: PodLink) -> int:
    """A veth pair: ``eth0`` here, its peer (the switch's port-to-be) in the root namespace,
    tagged, without IPv6 and up."""
    try:
        pod.add_veth("eth0", link.mac, link.mtu, link.port, root_netns_fd)
    except NetlinkError as exc:
        if exc.errno == errno.EEXIST:
            raise OSError(errno.EEXIST, f"interface {link.port} exists and is not this pod's "
                                        "(another object holds the name); nothing of it was changed") from None
        raise OSError(exc.errno, f"cannot create the pod's veth {link.port}: {exc}") from None
    try:
        host = root.link(link.port)
        eth0 = pod.link("eth0")
        if host is None or eth0 is None:
            raise NetlinkError(errno.ENODEV, "the new veth is not there")
        root.set_link(host.index, alias=link.tag)
        _no_ipv6_in_root(root_netns_fd, link.port)  # before it is up: no link-local address
        root.set_link(host.index, up=True)
        return eth0.index
    except (NetlinkError, OSError) as exc:
        _remove_veth(pod)
        raise OSError(errno.EIO, f"cannot configure the pod's veth {link.port}: {exc}") from None


def _remove_veth(pod: Rtnl) -> None:
    try:
        pod.del_link("eth0")  # takes the peer with it
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
