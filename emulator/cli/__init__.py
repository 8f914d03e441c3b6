"""cli knows how to talk to people: ``main`` parses and dispatches, ``output`` prints objects
the way kubectl does, ``shell`` is the interactive prompt (Mininet's CLI, with kubectl verbs)."""
