"""The one client of a running cluster: every k8semu verb, the shell, the scenario runner, the
tests and the benchmarks talk to the manager through ``Client``, over the same HTTPS API that
kubectl uses, with the cluster's admin certificate (read from the root-only run directory).
Objects are read, deleted and scaled through the Kubernetes resources; what only an emulator
has goes through k8semu's own endpoints (``emulator/api/ops.py``).
"""
from emulator.client.client import Applied, Client

__all__ = ["Applied", "Client"]
