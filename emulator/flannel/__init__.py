"""Flannel's data plane as its own files and kernel objects: the CNI network configuration, the
subnet lease file, the flannel.1 VXLAN device (or host-gw routes) and flanneld's masquerade rules,
built from the validated cluster config (issue #13). The runtime layer applies them."""
