"""kube-proxy's data plane, as kube-proxy writes it: the rules of its iptables mode (``iptables``),
from the same Service views the OpenFlow pipeline is built from (model.netview)."""
