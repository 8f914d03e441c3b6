"""The Calico-style data plane's configuration builders (issue #14): BIRD's configuration as
calico-node's confd templates write it, the CNI network configuration, the CNI plugin itself,
and the routes and chains Felix writes. Pure functions of the validated cluster config and view.
"""
