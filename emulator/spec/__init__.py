"""spec knows how to load and locate.

``loader`` turns YAML text into documents whose every value remembers its file, line and column;
``cluster`` reads a ``kind: Cluster`` document into a typed ``ClusterConfig``; ``manifests``
reads ordinary Kubernetes manifests into model objects. Nothing here touches the machine.
"""
