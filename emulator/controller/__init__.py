"""controller knows how to program switches.

An os-ken (Ryu) application, run as its own process by ``python -m emulator.controller``. It
reads the network view the manager writes, asks ``emulator.pipeline`` for each switch's flows,
and sends only the difference (``sync``) as OpenFlow 1.3 flow mods. The app is glue: no
pipeline logic lives here.
"""
