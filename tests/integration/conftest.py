from __future__ import annotations

import pytest

from tests.cluster import Cluster, k8semu


@pytest.fixture(scope="session", autouse=True)
def no_cluster_left_behind():
    """A previous crashed run must not make every test fail; nor may ours leave one behind."""
    k8semu("cleanup", check=False)
    yield
    k8semu("cleanup", check=False)


@pytest.fixture(scope="module")
def three_node():
    cluster = Cluster("topologies/three-node.yaml").up()
    try:
        yield cluster
    finally:
        cluster.down()
