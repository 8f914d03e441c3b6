"""pipeline knows how to compute flows.

An Antrea-style multi-table OpenFlow pipeline, as pure data: ``tables`` declares the stages in
order, ``fields`` the register marks, ``cookie`` how a flow's cookie names the object it serves,
``flow`` the Flow/Action value types and their ovs-ofctl rendering, ``view`` the slice of
cluster state the data plane depends on, and ``features/*`` produce the flows for one datapath
feature each. ``build.flows_for_node`` is the entry point; the os-ken app only installs.
"""
