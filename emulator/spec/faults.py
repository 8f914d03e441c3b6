"""``spec.impairments``: links that start impaired and partitions in force from ``up`` (issue
#16), checked with the field named, as ``k8semu impair`` and ``partition`` check them live.

::

    spec:
      impairments:
      - link: worker-1              # node/NAME, external/NAME or a bare node or external host name
        bandwidth: 50Mbit           # tc's units; each direction
        loss: 10%                   # each direction
        mtu: 1400
        delay: 100ms                # and jitter, duplicate, reorder: kernels with sch_netem only
      - partition: {name: split, from: [worker-1], to: [worker-2, worker-3], oneWay: false}

A pod's link is impaired live (``k8semu impair pod/NAME``): it exists only once the pod runs.
"""
from __future__ import annotations

from emulator.model import faults
from emulator.model.faults import Impairment, LinkRef, Partition
from emulator.spec.loader import PathKey
from emulator.spec.reader import Reader, did_you_mean


def read(r: Reader, nodes: list[str], externals: list[str]) -> tuple[tuple[Impairment, ...], tuple[Partition, ...]]:
    """The section's links and partitions; problems go to ``r``."""
    links: dict[LinkRef, PathKey] = {}
    imps: list[Impairment] = []
    parts: list[Partition] = []
    hosts = nodes + externals
    for i, entry in enumerate(r.seq(("spec", "impairments"))):
        at: PathKey = ("spec", "impairments", i)
        if not isinstance(entry, dict) or ("link" in entry) == ("partition" in entry):
            r.fail(at, "each entry has either link (with what to impair) or partition")
            continue
        if "partition" in entry:
            r.mapping(at, {"partition"})
            p = at + ("partition",)
            r.mapping(p, {"name", "from", "to", "oneWay"}, required=("from", "to"))
            data = entry["partition"] if isinstance(entry["partition"], dict) else {}
            try:
                part = faults.partition(str(data.get("name", f"partition-{i}")), data.get("from"), data.get("to"),
                                        bool(r.typed(p + ("oneWay",), bool, False)), hosts)
            except ValueError as exc:
                field, _, why = str(exc).partition(": ")
                r.fail(p + ((field,) if field in ("name", "from", "to") else ()),
                       why if field in ("name", "from", "to") else str(exc))
                continue
            if any(q.name == part.name for q in parts):
                r.fail(p + ("name",), f"duplicate partition name {part.name!r}")
            parts.append(part)
            continue
        r.mapping(at, {"link"} | set(faults.PARSERS))
        try:
            ref = faults.parse_link(entry["link"])
        except ValueError as exc:
            r.fail(at + ("link",), str(exc))
            continue
        if ref.kind == "pod":
            r.fail(at + ("link",), "a pod's link exists once the pod runs: impair it live (k8semu impair pod/NAME, "
                                   "or an impair step)")
            continue
        names = {"node": nodes, "external": externals}.get(ref.kind, hosts)
        if ref.name not in names:
            r.fail(at + ("link",), f"{ref.name!r} is not a {'node or external host' if not ref.kind else ref.kind} "
                                   f"of this cluster{did_you_mean(ref.name, names)}")
            continue
        ref = LinkRef(ref.kind or ("node" if ref.name in nodes else "external"), ref.name)
        if ref in links:
            r.fail(at + ("link",), f"{ref} is impaired twice (one entry holds all it suffers)")
            continue
        links[ref] = at
        try:
            imps.append(faults.impairment(ref, {k: v for k, v in entry.items() if k != "link"}))
        except ValueError as exc:
            field, _, why = str(exc).partition(": ")
            r.fail(at + ((field,) if field in faults.PARSERS else ()), why if field in faults.PARSERS else str(exc))
    return tuple(imps), tuple(parts)
