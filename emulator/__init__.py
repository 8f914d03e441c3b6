"""k8semu: a declarative Kubernetes cluster-network emulator.

The package is layered so that a newcomer can read it top-down:

- ``spec`` loads and locates: YAML files become documents that remember file, line and column.
- ``model`` validates and relates: typed, frozen Kubernetes objects, naming, IPAM, scheduling.
- ``cluster`` decides: the object store and the controllers (Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, scheduler)
  that turn desired objects into pods bound to nodes with addresses.
- ``pipeline`` computes: the OpenFlow tables and flows for a given cluster state (pure).
- ``controller`` programs: the os-ken app that pushes those flows to Open vSwitch.
- ``runtime`` executes: the only layer that needs root (Mininet hosts, namespaces, processes).
- ``cli`` talks to people: argument parsing, kubectl-like output, the interactive shell.
"""

__version__ = "0.1.0"
