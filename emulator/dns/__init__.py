"""dns knows how to answer names: a CoreDNS-like server for the emulated cluster.

``corefile`` parses the Corefile (CoreDNS's syntax and errors); ``records`` builds the
Kubernetes records from a snapshot of the cluster (the DNS-Based Service Discovery spec);
``plugins`` implements the plugin chain; ``server`` serves UDP and TCP with dnspython for the
wire format and runs as the process of each ``coredns`` pod.
"""
