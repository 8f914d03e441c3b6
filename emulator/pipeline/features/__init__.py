"""One module per datapath feature (Antrea's feature interface): each exposes
``init_flows(node)`` for flows that exist once per switch and ``flows_for_*`` for the flows
of one object. ``emulator.pipeline.build`` asks every feature in turn."""
