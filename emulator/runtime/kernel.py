"""Kernel objects a cluster owns, created only under free names and removed only by tag.

Links (veth ends, bridges, VXLAN devices in the root namespace) carry the run's tag as their
interface alias (``ip link set X alias k8semu:<cluster>:<run id>``). The kernel ignores an alias
given to ``ip link add``, so each ``link add`` line of a batch is followed by its ``alias``
line; ``ip -batch`` stops at the first failing line, so a clash can never let the alias land on
someone else's link. Network namespaces are known by the inode of their /run/netns file,
recorded right after creation (``ip netns add``/``attach`` refuse a taken name).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from emulator.errors import RuntimeFailure
from emulator.runtime.proc import ip_batch, run
from emulator.runtime.records import Records

NETNS_DIR = Path("/run/netns")
SYS_NET = Path("/sys/class/net")


def link_exists(name: str) -> bool:
    return (SYS_NET / name).exists()


def link_alias(name: str) -> str:
    try:
        return (SYS_NET / name / "ifalias").read_text().strip()
    except OSError:
        return ""


def netns_inode(name: str) -> int | None:
    try:
        return os.stat(NETNS_DIR / name).st_ino
    except OSError:
        return None


def clash(kind: str, name: str, records: Records) -> RuntimeFailure:
    return RuntimeFailure(f"{kind} {name} exists and is not k8semu's (cluster {records.cluster!r} did not "
                          f"create it); nothing of it was changed")


def check_free(records: Records, links: list[str] = (), netns: list[str] = ()) -> None:
    """Raises RuntimeFailure naming the first taken name, before anything is created."""
    for name in links:
        if link_exists(name):
            raise clash("interface", name, records)
    for name in netns:
        if (NETNS_DIR / name).exists():
            raise clash("network namespace", name, records)


def create_links(records: Records, adds: list[tuple[str, str]], netns: str | None = None) -> None:
    """Run ``link add`` lines (one per (name, line)), tagging each link right after it is made,
    and record the links that carry the tag, whatever happened.

    Raises:
        RuntimeFailure: a name was taken (nothing after it was created).
    """
    check_free(records, [name for name, _ in adds])
    lines: list[str] = []
    for name, line in adds:
        lines += [line, f"link set {name} alias {records.tag}"]
    try:
        ip_batch(lines, netns=netns, force=False)
    finally:
        made = [name for name, _ in adds if link_alias(name) == records.tag]
        records.add("links", *made)
    disable_ipv6([name for name, _ in adds])


def disable_ipv6(names: list[str]) -> None:
    """No IPv6 on the emulation's interfaces in the root namespace: no fe80:: address through
    which an emulated host could reach the machine (written before the links come up)."""
    for name in names:
        try:
            with open(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "w") as f:
                f.write("1")
        except FileNotFoundError:
            pass


def tagged_links(tag: str) -> list[str]:
    """Every interface in the root namespace that carries ``tag``, recorded or not."""
    try:
        names = os.listdir(SYS_NET)
    except OSError:
        return []
    return sorted(n for n in names if link_alias(n) == tag)


def wait_links_gone(tag: str, timeout: float = 30.0, stall: float = 2.0) -> None:
    """Wait while the kernel removes tagged links on its own: a veth goes with the namespace that
    holds its other end, and the kernel dismantles dead namespaces in batches, far faster than
    ``ip link del`` one by one (each waits for an RCU grace period). Returns when none is left,
    when the count stops falling for ``stall`` seconds, or at ``timeout``."""
    deadline = time.monotonic() + timeout
    left, progress = len(_peered(tagged_links(tag))), time.monotonic()
    while left and time.monotonic() < deadline and time.monotonic() - progress < stall:
        time.sleep(0.05)
        now = len(_peered(tagged_links(tag)))
        if now < left:
            left, progress = now, time.monotonic()


def _peered(names: list[str]) -> list[str]:
    """The veths among ``names`` (the links that go with their peer's namespace): no device type
    in sysfs and a peer index of their own. Bridges and VXLAN devices stay until deleted, and
    waiting for them cost every teardown the whole ``stall``."""
    out = []
    for name in names:
        try:
            uevent = (SYS_NET / name / "uevent").read_text()
            iflink = (SYS_NET / name / "iflink").read_text().strip()
            ifindex = (SYS_NET / name / "ifindex").read_text().strip()
        except OSError:
            continue  # gone meanwhile
        if "DEVTYPE=" not in uevent and iflink != ifindex:
            out.append(name)
    return out


def delete_links(records: Records) -> None:
    """Delete the links that carry the run's tag (recorded ones and any a crash left unrecorded)."""
    wait_links_gone(records.tag)
    names = sorted(set(tagged_links(records.tag)) | {n for n in records.items("links") if link_alias(n) == records.tag})
    ip_batch([f"link del {n}" for n in names], check=False)
    records.discard("links", *records.items("links"), save=False)


def record_netns(records: Records, name: str) -> None:
    inode = netns_inode(name)
    if inode is None:
        raise RuntimeFailure(f"network namespace {name} vanished right after it was created")
    records.add_netns(name, inode)


def delete_netns(records: Records, names: list[str] | None = None) -> list[str]:
    """Delete recorded namespaces whose file is still the one k8semu made (same inode); returns
    those left alone because another object now holds the name."""
    wanted = dict(records.items("netns"))
    if names is not None:
        wanted = {n: wanted[n] for n in names if n in wanted}
    ours, foreign = [], []
    for name, inode in wanted.items():
        now = netns_inode(name)
        if now is None:
            continue
        (ours if now == inode else foreign).append(name)
    ip_batch([f"netns del {n}" for n in ours], check=False)
    records.discard("netns", *wanted, save=False)
    return foreign


def ensure_netns_dir() -> None:
    """/run/netns as ``ip netns`` prepares it: a mount point with shared propagation, so that a
    namespace file unmounted here is unmounted in every mount namespace that copied it (pods
    copy the host's mounts), and the namespace can go."""
    NETNS_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    info = run(["findmnt", "-n", "-o", "PROPAGATION", "--mountpoint", str(NETNS_DIR)], check=False).stdout.strip()
    if not info:
        run(["mount", "--bind", str(NETNS_DIR), str(NETNS_DIR)])
    if "shared" not in info:
        run(["mount", "--make-shared", str(NETNS_DIR)])


def ovs_tagged_bridges(tag: str) -> list[str]:
    done = run(["ovs-vsctl", "--timeout=5", "--format=json", "--columns=name", "find", "Bridge",
                f"external_ids:k8semu=\"{tag}\""], check=False)
    if done.returncode != 0:
        return []
    try:
        return sorted(row[0] for row in json.loads(done.stdout)["data"])
    except (ValueError, KeyError, IndexError, TypeError):
        return []


DAEMON_PROTOCOLS = ("kernel", "bird")  # routes their owner puts back itself (the address's subnet, BGP's)


def link_state(netns: str, dev: str) -> list[str]:
    """The routes through ``dev`` in ``netns`` and its permanent neighbours, as ``ip -batch``
    lines that put them back. Setting a link down deletes both; setting it up again brings back
    only the route of its own subnet, so a node's default route (and Flannel's host-gw routes,
    Calico's pinned underlay neighbours) would stay lost. Every value comes from the kernel's
    JSON, never from a spec."""
    lines = []
    for r in json.loads(run(["ip", "-n", netns, "-j", "route", "show", "dev", dev]).stdout or "[]"):
        if r.get("protocol") in DAEMON_PROTOCOLS or r.get("type", "unicast") != "unicast":
            continue
        words = ["route", "replace", r["dst"]] + (["via", r["gateway"]] if r.get("gateway") else []) + ["dev", dev]
        words += ["proto", r["protocol"]] if r.get("protocol") else []
        words += ["scope", r["scope"]] if r.get("scope") not in (None, "global") else []
        words += ["metric", str(r["metric"])] if "metric" in r else []
        words += ["src", r["prefsrc"]] if r.get("prefsrc") else []
        words += ["onlink"] if "onlink" in r.get("flags", []) else []
        lines.append(" ".join(words))
    for n in json.loads(run(["ip", "-n", netns, "-j", "neigh", "show", "dev", dev, "nud", "permanent"]).stdout or "[]"):
        if n.get("lladdr"):
            lines.append(f"neigh replace {n['dst']} lladdr {n['lladdr']} dev {dev} nud permanent")
    return lines
