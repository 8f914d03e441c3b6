"""The ``cluster`` fixture (root conftest.py) gives a Python test a cluster of its own."""
from __future__ import annotations

import pytest


@pytest.mark.cluster_spec("topologies/default.yaml")
def test_cluster_fixture_brings_a_cluster_up_for_one_test(cluster) -> None:
    pods = cluster.wait_running("default", count=4)
    client = next(p for p in pods if p["metadata"]["name"] == "client")
    web = next(p for p in pods if p["metadata"]["name"].startswith("web-"))
    done = cluster.exec("client", "curl", "-s", "-m", "3", f"http://{web['status']['podIP']}/")
    assert done.returncode == 0 and f"pod: {web['metadata']['name']}" in done.stdout
    assert client["status"]["podIP"].startswith("10.244.")
