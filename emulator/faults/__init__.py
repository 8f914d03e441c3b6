"""Impairments and partitions on the emulation's links (issue #16): the tc and nftables input
that does them, built from the typed model (``model.faults``)."""
