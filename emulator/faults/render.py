"""What an impairment is made of on the machine: tc argv lists (tbf for bandwidth, sch_netem for
delay, jitter, duplication and reordering where the kernel has it) and one nftables ``netdev``
table per namespace (random loss with ``numgen``, partitions by the peers' MAC addresses, each
with a counter a student can read with ``nft list table netdev k8semu_faults``).

Why nftables for loss rather than netem: this kernel has no sch_netem, and ``numgen random``
drops per packet with the same statistics, from inside the link's own namespace (the egress
hook of its eth0), so nothing is added to the machine's root namespace. A partition drops by MAC address at layer 2, below every data plane:
VXLAN, Calico's routed packets, ARP and the external hosts alike.

Every value reaching the text is a number or checked here (interface names, MAC addresses,
comments from a fixed set of words), then quoted.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from emulator.model import naming
from emulator.model.faults import Impairment, Partition

TABLE = "k8semu_faults"  # one per namespace of the emulation; never in the root namespace
LATENCY_MS = 50  # tbf's queue: packets waiting longer are dropped, as a router's buffer would
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def tbf_burst(rate: int) -> int:
    """10 ms of the rate in bytes, at least 4 KiB (more than a 1500-byte frame, and above
    rate/HZ, which tbf needs to reach its rate at all)."""
    return max(rate // 8 // 100, 4096)


def qdisc_argv(dev: str, imp: Impairment) -> list[list[str]]:
    """The tc commands that give ``dev``'s egress what ``imp`` asks (run in the device's
    namespace): tbf alone, netem alone, or netem with tbf under it (netem's class 1:1)."""
    naming.check_ifname(dev)
    tbf = ["tbf", "rate", f"{imp.bandwidth}bit", "burst", str(tbf_burst(imp.bandwidth)),
           "latency", f"{LATENCY_MS}ms"] if imp.bandwidth else []
    if not imp.needs_netem:
        return [["tc", "qdisc", "replace", "dev", dev, "root", "handle", "1:", *tbf]] if tbf else []
    netem = ["netem"]
    if imp.delay:
        netem += ["delay", f"{imp.delay:g}ms"] + ([f"{imp.jitter:g}ms"] if imp.jitter else [])
    if imp.duplicate:
        netem += ["duplicate", f"{imp.duplicate:g}%"]
    if imp.reorder:
        netem += ["reorder", f"{imp.reorder:g}%"]
    out = [["tc", "qdisc", "replace", "dev", dev, "root", "handle", "1:", *netem]]
    if tbf:
        out.append(["tc", "qdisc", "replace", "dev", dev, "parent", "1:1", "handle", "10:", *tbf])
    return out


def clear_argv(dev: str) -> list[str]:
    """Back to the device's default qdisc."""
    return ["tc", "qdisc", "del", "dev", naming.check_ifname(dev), "root"]


@dataclass
class Rules:
    """One namespace's drops, per hook of its eth0."""
    ingress: list[str] = field(default_factory=list)
    egress: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        return not self.ingress and not self.egress


def _macs(macs: list[str]) -> str:
    for mac in macs:
        if not _MAC.match(mac):
            raise ValueError(f"not a MAC address: {mac!r}")
    return "{ " + ", ".join(sorted(set(macs))) + " }"


def add_loss(rules: Rules, imp: Impairment) -> None:
    """``imp.loss`` percent of the packets the host sends on the link, to 0.01 % (as netem's
    loss on its eth0, what labs write: a ping through the link loses that share of its round
    trips, the replies being what is dropped)."""
    cut = int(round(imp.loss * 100))
    rules.egress.append(f'numgen random mod 10000 < {cut} counter drop comment "loss {imp.loss:g}%"')


def add_partition(rules: Rules, part: Partition, here: str, macs: dict[str, str]) -> None:
    """The drops host ``here`` applies for ``part``: toward and from the other side's eth0 MACs
    (one way: only what goes from side a to side b)."""
    note = f'comment "partition {_word(part.name)}"'
    if here in part.a:
        rules.egress.append(f"ether daddr {_macs([macs[h] for h in part.b])} counter drop {note}")
        if not part.one_way:
            rules.ingress.append(f"ether saddr {_macs([macs[h] for h in part.b])} counter drop {note}")
    elif here in part.b:
        rules.ingress.append(f"ether saddr {_macs([macs[h] for h in part.a])} counter drop {note}")
        if not part.one_way:
            rules.egress.append(f"ether daddr {_macs([macs[h] for h in part.a])} counter drop {note}")


def _word(name: str) -> str:
    """A partition's name in a comment: a DNS label (checked when it was made), checked again."""
    if not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", name) or len(name) > 63:
        raise ValueError(f"not a DNS label: {name!r}")
    return name


def nft_script(rules: Rules, dev: str = "eth0") -> str:
    """The namespace's table, replaced in one transaction (made if missing, deleted, made again
    with the rules; deleted for good when there are none)."""
    if not re.match(r"^[A-Za-z0-9_.-]{1,15}$", dev):
        raise ValueError(f"interface name {dev!r} cannot go into an nft hook")
    lines = [f"table netdev {TABLE}", f"delete table netdev {TABLE}"]
    if rules.empty():
        return "\n".join(lines) + "\n"
    lines.append(f"table netdev {TABLE} {{")
    for hook, body in (("ingress", rules.ingress), ("egress", rules.egress)):
        if body:
            lines.append(f"\tchain {hook} {{")
            lines.append(f'\t\ttype filter hook {hook} device "{dev}" priority filter; policy accept;')
            lines += [f"\t\t{rule}" for rule in body]
            lines.append("\t}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def summary(imp: Impairment) -> str:
    """One line for ``k8semu impair``'s answer."""
    return f"{imp.link} impaired: {imp.describe()}"
