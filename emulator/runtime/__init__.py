"""runtime knows how to execute: the only layer that needs root.

``ovs`` starts and talks to Open vSwitch; ``fabric`` builds nodes (Mininet hosts), the underlay
and each node's bridge, gateway and VXLAN device; ``sandbox`` builds pod namespaces and runs
containers; ``kubelet`` keeps sandboxes equal to the pods the controllers want; ``records``
writes down everything made, before making it, so ``cleanup`` can undo it after any crash;
``manager`` is the long-lived process that holds a cluster; ``api`` is how the CLI reaches it.
"""
