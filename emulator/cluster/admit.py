"""Admitting a cluster spec: read it, then apply its manifests to a simulated cluster, so that
everything ``up`` would refuse (placement, images, privileges, Service addresses and ports) is
refused before anything is created, by ``plan`` as by ``up``."""
from __future__ import annotations

from pathlib import Path

from emulator.cluster import controllers
from emulator.cluster.admission import check_objects
from emulator.cluster.store import ClusterState
from emulator.errors import SpecError
from emulator.model.cluster import ClusterConfig
from emulator.spec.cluster import load_cluster


def admit_cluster(path: str | Path, base: Path | None = None) -> ClusterConfig:
    """Read a cluster spec (``spec.cluster.load_cluster``) and admit its manifests.

    Raises:
        SpecError: the spec, a manifest, or what the manifests ask of the cluster is invalid.
    """
    config = load_cluster(path, base)
    problems = check_objects(config, list(config.manifests))
    if problems:
        raise SpecError(problems)
    controllers.apply(ClusterState(config), list(config.manifests))  # allocations, as the API server makes them
    return config
