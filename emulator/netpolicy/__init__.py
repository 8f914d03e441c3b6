"""NetworkPolicy for the kernel data planes (``cni: flannel``): iptables chains matching ipsets,
rendered per node from the same compiled policy view the OpenFlow pipeline reads (issue #13)."""
