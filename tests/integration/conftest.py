from __future__ import annotations

import pytest

from tests.cluster import k8semu, module_cluster


@pytest.fixture(scope="session", autouse=True)
def no_cluster_left_behind():
    """A previous crashed run must not make every test fail; nor may ours leave one behind."""
    k8semu("cleanup", check=False)
    yield
    k8semu("cleanup", check=False)


three_node = module_cluster("topologies/three-node.yaml")
