"""The Kubernetes API of an emulated cluster: what kubectl and client libraries talk to.

``pki`` makes the cluster's certificates, ``kubeconfig`` writes and removes its context,
``resources`` is the catalogue that discovery and routing share, ``tables`` prints objects as
the API server's Table responses (and the CLI's columns), ``server`` serves HTTPS on loopback
from the manager process, and ``__main__`` starts the manager with the server. This layer sits
above the cluster state and the data-plane drivers and below the CLI.
"""
