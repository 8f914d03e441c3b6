"""Component faults (issue #16): the cluster's own parts made to fail on demand, typed and checked
once for ``k8semu fault``, the API and the scenario steps alike.

A fault names an action and a component:

- ``kill``: the component's processes get SIGKILL once; what supervises them brings them back as it
  would on a cluster: the kubelet restarts a pod's container (restartCount, CrashLoopBackOff's
  back-off), k8semu's supervisor a helper (the SDN controller, BIRD, an external DNS server);
  kube-proxy, which runs inside the manager, restarts as kube-proxy does: its next sync is a full one.
- ``stop``: the component stays gone until ``start``. A pod-run component (CoreDNS, the ingress
  controller) hangs: its processes are frozen (SIGSTOP), their sockets open and silent, and
  Kubernetes reacts as to a hung pod (readiness fails: out of its Service's endpoints; liveness
  fails: the kubelet restarts the container, which ends the fault for that container). A helper
  ends and is not restarted (the SDN controller, BIRD: its BGP peers withdraw its routes). An
  external DNS server hangs like a pod (frozen: an upstream that stops answering, so CoreDNS's
  forward times out). kube-proxy stops syncing: its rules stay as they were (Services that exist
  keep working; what changes does not reach that node) and its /healthz turns 503 after
  healthTimeout, as a hung kube-proxy's does.
- ``start``: undo ``stop`` (thaw, restart, sync again).

``node`` narrows a per-node component (CoreDNS or ingress controller pods on that node, its
kube-proxy, its BIRD).
"""
from __future__ import annotations

from dataclasses import dataclass

from emulator.model import validation

ACTIONS = ("kill", "stop", "start")
EXTERNAL_DNS = "dns"  # dns/NAME: the DNS server of external host NAME


@dataclass(frozen=True)
class Component:
    """One kind of component: what it is, the data planes that have it (empty: every one),
    whether it runs on nodes (``--node`` narrows it) and how ``stop`` takes it away."""
    name: str
    what: str
    cnis: tuple[str, ...] = ()
    per_node: bool = False
    stop: str = ""


COMPONENTS = {c.name: c for c in (
    Component("coredns", "the CoreDNS pods (kube-system, k8s-app=kube-dns)", per_node=True,
              stop="frozen: they answer nothing; readiness then liveness probes react"),
    Component("ingress-nginx", "the ingress-nginx controller pods", per_node=True,
              stop="frozen: they answer nothing; readiness then liveness probes react"),
    Component("controller", "the SDN controller", cnis=("openflow",),
              stop="ended, not restarted: the switches keep their flows"),
    Component("kube-proxy", "kube-proxy", cnis=("flannel", "calico"), per_node=True,
              stop="no more syncs: its rules stay as they are; /healthz 503 after healthTimeout"),
    Component("bird", "BIRD, calico-node's BGP daemon", cnis=("calico",), per_node=True,
              stop="ended, not restarted: its peers withdraw its routes"),
    Component(EXTERNAL_DNS, "the DNS server of an external host (dns/NAME)",
              stop="frozen: queries get no answer (an upstream that stops answering)"),
)}


@dataclass(frozen=True)
class Fault:
    """A checked request: ``action`` on ``component`` (``dns``: of external host ``host``),
    everywhere or on ``node``."""
    action: str
    component: str
    node: str = ""
    host: str = ""

    @property
    def target(self) -> str:
        """The component as a user wrote it, with where (``kube-proxy on worker-1``)."""
        name = f"{self.component}/{self.host}" if self.host else self.component
        return f"{name} on {self.node}" if self.node else name

    @property
    def key(self) -> str:
        """What ``stop``/``start`` pair on (the faults in force are kept by it)."""
        return self.target


def parse(action: str, component: str, node: str = "") -> Fault:
    """``action`` on ``component`` (optionally on ``node``), checked.

    Raises:
        ValueError: the message names what is accepted.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}: one of {', '.join(ACTIONS)}")
    name, _, host = str(component).partition("/")
    kind = COMPONENTS.get(name)
    if kind is None:
        raise ValueError(f"unknown component {component!r}: one of {', '.join(COMPONENTS)} (dns/NAME: an "
                         "external host's DNS server)")
    if (name == EXTERNAL_DNS) != bool(host):
        raise ValueError("name the external host: dns/NAME" if name == EXTERNAL_DNS else
                         f"{name} takes no /NAME (use --node for a node's)")
    for value, what in ((host, "external host"), (node, "node")):
        problem = validation.check_dns1123_label(value) if value else None
        if problem:
            raise ValueError(f"{what}: {problem}")
    if node and not kind.per_node:
        raise ValueError(f"{name} does not run on nodes: --node does not apply")
    return Fault(action, name, node, host)


def applies(fault: Fault, cni: str, kube_proxy: str = "") -> str:
    """Why ``fault`` cannot be done on a cluster of ``cni`` ("" when it can); kube-proxy runs
    wherever ``spec.network.kubeProxy.mode`` (``kube_proxy``) is set, beside openflow too."""
    kind = COMPONENTS[fault.component]
    if fault.component == "kube-proxy":
        return "" if kube_proxy else (f"cni: {cni} has no kube-proxy (the controller serves Services: set "
                                      "spec.network.kubeProxy.mode to run kube-proxy beside it)")
    if kind.cnis and cni not in kind.cnis:
        return (f"cni: {cni} has no {fault.component} ({kind.what} runs on cni: {' or '.join(kind.cnis)})")
    return ""
