"""scenario knows how to script a cluster: ``model`` reads and validates a scenario file (located
errors, nothing runs if any step is malformed), ``runner`` brings the cluster up, runs the steps
with evidence for each, tears down whatever happens, and ``junit`` writes the report."""
