"""Every validation error, as a fixture folder: tests/fixtures/specs/<case>/cluster.yaml and the
exact message expected in expected_error.txt (paths shown relative to the fixture folder)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from emulator.errors import SpecError
from emulator.cluster.admit import admit_cluster as load_cluster

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "specs"
CASES = sorted(p.name for p in FIXTURES.iterdir() if p.name.endswith("_error"))


@pytest.mark.parametrize("case", CASES)
def test_spec_error(case: str, request: pytest.FixtureRequest) -> None:
    folder = FIXTURES / case
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        with pytest.raises(SpecError) as info:
            load_cluster("cluster.yaml")
    finally:
        os.chdir(cwd)
    message = str(info.value).replace(str(folder) + "/", "") + "\n"
    expected = folder / "expected_error.txt"
    if request.config.getoption("--update-golden"):
        expected.write_text(message)
    assert expected.exists(), f"{expected} is missing (write it with pytest --update-golden)"
    assert message == expected.read_text()


def test_every_fixture_has_an_expectation() -> None:
    for case in CASES:
        assert (FIXTURES / case / "expected_error.txt").exists(), case


def test_valid_fixture_loads() -> None:
    config = load_cluster(FIXTURES / "valid" / "cluster.yaml")
    assert [n.name for n in config.nodes] == ["cp", "worker-1", "worker-2", "worker-3"]
    assert [n.ip for n in config.nodes] == ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]
    assert [n.pod_cidr for n in config.nodes] == ["10.32.0.0/25", "10.32.0.128/25",
                                                  "10.32.1.0/25", "10.32.1.128/25"]
    assert config.pod_mtu == 1400
    assert config.pod_interface == "veth"  # the default: as Antrea, Flannel and Calico make a pod's eth0
    assert config.services.dns_ip == "10.100.0.10"
    assert config.nodes[0].taints and not config.nodes[1].taints
    assert config.nodes[1].labels == {"disk": "ssd"}
    kinds = [type(o).__name__ for o in config.manifests]
    assert kinds == ["Namespace", "Deployment", "Service", "ConfigMap", "Pod"]
    assert any("startupProbe" in w and "not emulated" in w for w in config.warnings)
    assert not any("ConfigMap" in w for w in config.warnings)  # stored and served since the API serves it
