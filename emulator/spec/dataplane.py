"""``spec.network.cni``, ``spec.network.kubeProxy`` and ``spec.network.flannel``: which data plane
a cluster runs (issue #13), refused at validation with the field named when the combination is
one k8semu cannot run.

::

    spec:
      network:
        cni: flannel            # openflow (default) | flannel | calico (its section: spec.calico)
        flannel: {backend: vxlan}   # vxlan (default) | host-gw
        kubeProxy: {mode: iptables, minSyncPeriod: 1s}   # iptables (default with flannel) | nftables

With ``cni: openflow`` kube-proxy is off unless ``kubeProxy.mode`` is given: the controller
serves Services (as Antrea's proxy does); with a mode kube-proxy runs beside it, as Antrea runs
with kube-proxy (``antreaProxy.proxyAll: false``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from emulator.model.cluster import CNIS, FLANNEL_BACKENDS, PROXY_MODES
from emulator.spec.loader import PathKey
from emulator.spec.reader import Reader, did_you_mean

DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)$")  # the Go durations kube-proxy's config takes that matter here
UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0}


@dataclass(frozen=True)
class DataPlane:
    cni: str = "openflow"
    kube_proxy: str = ""
    flannel_backend: str = "vxlan"
    min_sync_period: float = 1.0


def _choice(options: tuple[str, ...]):
    return lambda v: None if v in options else f"must be one of {', '.join(options)}{did_you_mean(v, options)}"


def _duration(value: str) -> str | None:
    match = DURATION.match(value)
    if not match:
        return f"{value!r} is not a duration such as 1s or 500ms"
    if float(match.group(1)) * UNIT[match.group(2)] > 60:
        return "must be at most 1m"
    return None


def read(r: Reader, net: PathKey, pod_interface: str) -> DataPlane:
    """The data plane the spec asks for; problems go to ``r`` (the caller raises them)."""
    cni = r.string(net + ("cni",), "openflow")
    known = cni in CNIS
    if cni is not None and not known:
        r.fail(net + ("cni",), _choice(CNIS)(str(cni)) or "")
    r.mapping(net + ("kubeProxy",), {"mode", "minSyncPeriod"})
    r.mapping(net + ("flannel",), {"backend"})
    mode = r.string(net + ("kubeProxy", "mode"), "", check=_choice(PROXY_MODES))
    period = r.string(net + ("kubeProxy", "minSyncPeriod"), "1s", check=_duration) or "1s"
    match = DURATION.match(period)
    seconds = float(match.group(1)) * UNIT[match.group(2)] if match else 1.0
    backend = r.string(net + ("flannel", "backend"), "vxlan", check=_choice(FLANNEL_BACKENDS)) or "vxlan"
    if not known:  # refused above: the combinations are checked against a CNI that exists
        return DataPlane("openflow", "", "vxlan", seconds)
    if cni == "openflow":  # kube-proxy only when asked for, beside the controller's proxy
        if r.get(net + ("flannel",)) is not None:
            r.fail(net + ("flannel",), "applies to cni: flannel only")
        return DataPlane("openflow", mode or "", "vxlan", seconds)
    if cni == "calico" and r.get(net + ("flannel",)) is not None:
        r.fail(net + ("flannel",), "applies to cni: flannel only")
    if pod_interface != "veth":
        where = "a veth on the node's cni0 bridge" if cni == "flannel" else "a routed cali veth"
        r.fail(net + ("podInterface",), f"{pod_interface!r} is an Open vSwitch port; cni: {cni} gives every pod {where}")
    return DataPlane(cni, mode or "iptables", backend, seconds)
