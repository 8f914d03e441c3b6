"""The pipeline's tables, in packet order. IDs are derived from the order, never written by hand.

To add a table: insert it where packets should meet it, give it Antrea's name when the meaning
matches (docs/pipeline.md links Antrea's pipeline doc), and say what a miss does. Flows refer to
tables by name, so inserting one renumbers nothing in feature code.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Stage(Enum):
    CLASSIFIER = "classifier"
    VALIDATION = "validation"
    CONNTRACK = "conntrack"
    PRE_ROUTING = "pre-routing"
    POLICY = "policy"
    ROUTING = "routing"
    SWITCHING = "switching"
    OUTPUT = "output"


@dataclass(frozen=True)
class Table:
    name: str
    stage: Stage
    miss: str = "drop"  # what a packet matching no flow does
    doc: str = ""


PIPELINE: tuple[Table, ...] = (
    Table("Classifier", Stage.CLASSIFIER, doc="marks where a packet came from: pod, gateway, tunnel"),
    Table("SpoofGuard", Stage.VALIDATION, doc="a pod may only send from its own IP and MAC"),
    Table("ARPResponder", Stage.VALIDATION, doc="answers ARP for gateways and pods; no flooding"),
    Table("ConntrackZone", Stage.CONNTRACK, doc="sends IP through conntrack, undoing Service NAT on replies"),
    Table("ConntrackState", Stage.CONNTRACK, miss="next",
          doc="established and related connections skip load balancing"),
    Table("ServiceLB", Stage.PRE_ROUTING, miss="next",
          doc="a new connection to a Service picks an endpoint (select group) or is rejected"),
    Table("SessionAffinity", Stage.PRE_ROUTING, miss="none",
          doc="learned client -> endpoint choices for sessionAffinity: ClientIP"),
    Table("AffinityGate", Stage.PRE_ROUTING,
          doc="a remembered endpoint goes straight to DNAT; otherwise the Service's group picks one"),
    Table("AffinityLearn", Stage.PRE_ROUTING,
          doc="remembers the endpoint a group picked for this client, then DNAT"),
    Table("EndpointDNAT", Stage.PRE_ROUTING, doc="commits the connection with DNAT to the endpoint"),
    Table("HairpinSNAT", Stage.PRE_ROUTING,
          doc="a pod reaching itself through a Service is SNATed to the hairpin address"),
    Table("EgressRule", Stage.POLICY, miss="next",
          doc="NetworkPolicy egress: what pods of this node may send (after Service DNAT)"),
    Table("L3Forwarding", Stage.ROUTING, doc="picks the next hop MAC by destination IP"),
    Table("L2ForwardingCalc", Stage.SWITCHING, doc="maps the destination MAC to an output port"),
    Table("IngressRule", Stage.POLICY, miss="next",
          doc="NetworkPolicy ingress: what pods of this node may receive"),
    Table("ConntrackCommit", Stage.CONNTRACK, miss="next",
          doc="commits new connections so their replies pass as established"),
    Table("Output", Stage.OUTPUT, doc="sends the packet to the port chosen in reg1"),
)

TABLE_IDS: dict[str, int] = {t.name: i for i, t in enumerate(PIPELINE)}
TABLE_NAMES: dict[int, str] = {i: t.name for i, t in enumerate(PIPELINE)}


def table_id(name: str) -> int:
    return TABLE_IDS[name]
