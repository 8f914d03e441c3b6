"""crd.projectcalico.org/v1 IPPool manifests -> model, checked field by field as calicoctl and
Calico's API server check a pool (the bare CRD takes anything; Calico then logs and skips a bad
pool, so k8semu refuses it here, with the field named):

- ``cidr`` an IPv4 CIDR (host bits are cleared, as libcalico-go does), no smaller than a block;
- ``blockSize`` 20..32 (default 26); ``vxlanMode`` and ``ipipMode`` Never, Always or
  CrossSubnet (default Never), not both on; ``natOutgoing`` (default false, as the CRD's);
  ``disabled``; ``nodeSelector`` a Calico selector (``model.calicoselector``; ``all()`` by
  default); ``allowedUses`` Workload and/or Tunnel.

What needs the cluster (the pod subnet, the other pools, the encapsulation the nodes run) is
checked when it is applied (``cluster/calicopools.py``).
"""
from __future__ import annotations

import ipaddress

from emulator.model import calicoselector
from emulator.model.calico import ALLOWED_USES, DEFAULT_BLOCK_SIZE, MAX_BLOCK_SIZE, MIN_BLOCK_SIZE, IPPool, Pool
from emulator.model.meta import ObjectMeta
from emulator.spec.reader import Reader

SPEC_SUPPORTED = {"cidr", "blockSize", "vxlanMode", "ipipMode", "natOutgoing", "disabled", "nodeSelector",
                  "allowedUses"}
SPEC_KNOWN = {"disableBGPExport", "assignmentMode", "ipip", "nat-outgoing"}
MODES = ("Never", "Always", "CrossSubnet")
ENCAPSULATION = {("Never", "Never"): "None", ("Always", "Never"): "VXLAN", ("CrossSubnet", "Never"): "VXLANCrossSubnet",
                 ("Never", "Always"): "IPIP", ("Never", "CrossSubnet"): "IPIPCrossSubnet"}


def _supported(values: tuple[str, ...]):
    def check(v: str) -> str | None:
        return None if v in values else \
            f'Unsupported value: "{v}": supported values: ' + ", ".join(f'"{s}"' for s in values)
    return check


def parse_ip_pool(r: Reader, meta: ObjectMeta, source) -> IPPool | None:
    r.mapping(("spec",), SPEC_SUPPORTED, SPEC_KNOWN, required=("cidr",))
    cidr = r.string(("spec", "cidr"), "")
    net = None
    try:
        net = ipaddress.ip_network(cidr, strict=False) if cidr else None
    except ValueError:
        r.fail(("spec", "cidr"), f'Invalid value: "{cidr}": must be a CIDR')
    if net is not None and net.version != 4:
        r.fail(("spec", "cidr"), f'Invalid value: "{cidr}": k8semu runs IPv4 pools only')
        net = None
    size = r.integer(("spec", "blockSize"), DEFAULT_BLOCK_SIZE, MIN_BLOCK_SIZE, MAX_BLOCK_SIZE)
    if net is not None and size is not None and size < net.prefixlen:
        r.fail(("spec", "cidr"), f'Invalid value: "{cidr}": IP pool size is too small for use with Calico IPAM. '
                                 f"It must be equal to or greater than the block size (/{size})")
        net = None
    vxlan = r.string(("spec", "vxlanMode"), "Never", check=_supported(MODES))
    ipip = r.string(("spec", "ipipMode"), "Never", check=_supported(MODES))
    if vxlan != "Never" and ipip != "Never":
        r.fail(("spec",), "ipipMode and vxlanMode cannot both be enabled on one pool")
    nat = r.typed(("spec", "natOutgoing"), bool, False)
    disabled = r.typed(("spec", "disabled"), bool, False)
    selector = r.string(("spec", "nodeSelector"), "all()", check=calicoselector.check)
    uses = []
    for i, use in enumerate(r.seq(("spec", "allowedUses"))):
        if use not in ALLOWED_USES:
            r.fail(("spec", "allowedUses", i), _supported(ALLOWED_USES)(str(use)) or "")
        elif use not in uses:
            uses.append(use)
    if net is None or size is None or vxlan is None or ipip is None or (vxlan, ipip) not in ENCAPSULATION:
        return None
    pool = Pool(meta.name, str(net), size, ENCAPSULATION[(vxlan, ipip)], bool(nat), bool(disabled),
                selector or "all()", tuple(uses) if r.get(("spec", "allowedUses")) is not None else ALLOWED_USES)
    return IPPool(meta, pool, source)
