"""pytest plugin: every scenario file (scenarios/*.yaml, or scenarios/<name>/scenario.yaml) is a
test, run by the same runner as ``k8semu scenario run``; and a ``cluster`` fixture for Python
tests that want a cluster of their own (``@pytest.mark.cluster_spec("topologies/x.yaml")``)."""
from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest
import yaml

from emulator.model.cluster import CNIS, PROXY_MODES

ROOT = Path(__file__).resolve().parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--cni", default=None, choices=CNIS,
                     help="run the scenarios on this data plane instead of their specs' (make matrix)")
    parser.addoption("--kube-proxy", default=None, choices=PROXY_MODES,
                     help="kube-proxy's mode instead of the specs' (make matrix; with openflow: beside the controller)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cluster_spec(path): the spec the `cluster` fixture brings up")


def pytest_collect_file(parent: pytest.Collector, file_path: Path):
    scenarios = ROOT / "scenarios"
    if file_path.suffix == ".yaml" and (file_path.parent == scenarios or file_path.name == "scenario.yaml"
                                        and file_path.parent.parent == scenarios):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self):
        item = ScenarioItem.from_parent(self, name=self.path.stem if self.path.name != "scenario.yaml"
                                        else self.path.parent.name)
        try:  # ``slow: true``: make slow (and matrix, flake) runs it, make test does not
            slow = (yaml.safe_load(self.path.read_text()) or {}).get("slow") is True
        except (OSError, yaml.YAMLError):
            slow = False  # the runner reports the file's problem
        if slow:
            item.add_marker(pytest.mark.slow)
        yield item


class ScenarioFailed(Exception):
    pass


class ScenarioItem(pytest.Item):
    def setup(self) -> None:
        if os.geteuid() != 0 or not shutil.which("ovs-vsctl"):
            pytest.skip("scenarios need root and Open vSwitch")

    def runtest(self) -> None:
        from emulator.scenario.model import load_scenario
        from emulator.scenario.runner import run
        out = io.StringIO()
        result = run(load_scenario(self.path), out, self.config.getoption("--cni"),
                     self.config.getoption("--kube-proxy"))
        self.add_report_section("call", "scenario", out.getvalue())
        if not result.ok:
            raise ScenarioFailed(out.getvalue())

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, 0, f"scenario: {self.name}"


@pytest.fixture
def cluster(request: pytest.FixtureRequest):
    """A cluster for one test: ``cluster.exec(pod, *cmd)``, ``cluster.apply(text_or_path)``."""
    from tests.cluster import Cluster
    marker = request.node.get_closest_marker("cluster_spec")
    handle = Cluster(marker.args[0] if marker else "topologies/default.yaml").up()
    try:
        yield handle
    finally:
        handle.down()
