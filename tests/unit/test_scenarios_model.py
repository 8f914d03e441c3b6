"""Scenario files are validated before anything starts: every problem, with file, line, field."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from emulator.errors import SpecError
from emulator.scenario.model import load_scenario
from emulator.scenario.runner import cluster_spec

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_scenarios_are_valid(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.steps and all(step.name for step in scenario.steps)
    assert path.read_text().startswith("# Lab"), "each lab opens with a comment saying what it teaches"


def test_malformed_scenario_names_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("cluster: nowhere.yaml\nsteps:\n  - name: a\n    exce: {in: x, command: [true]}\n"
                   "  - exec: {in: x, command: [true]}\n  - name: c\n    exec: {command: true}\n"
                   "  - name: d\n    dns: {from: client}\n")
    with pytest.raises(SpecError) as info:
        load_scenario(bad)
    text = str(info.value)
    assert "bad.yaml:1:10: cluster: cluster spec 'nowhere.yaml' does not exist" in text
    assert "bad.yaml:4:11: steps[0].exce: unknown step 'exce'; did you mean 'exec'?" in text
    assert "steps[1]: every step needs a name" in text
    assert "steps[2].exec.command: required: the command as a list of words" in text
    assert "steps[3].dns: missing required field 'name'" in text


def test_dockerfile_uses_the_same_install_step_as_make() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "    bash scripts/install.sh" in dockerfile and dockerfile.startswith("# Teaching image")
    assert "bash scripts/install.sh" in (ROOT / "Makefile").read_text()
    assert "k8semu ovs" in (ROOT / "scripts" / "entrypoint.sh").read_text()


def test_junit_report(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET
    from emulator.scenario import junit
    from emulator.scenario.runner import ScenarioResult, StepResult
    results = [ScenarioResult(Path("a.yaml"), [StepResult("ok step", True, 0.5, ["$ true"]),
                                               StepResult("bad step", False, 1.0, ["$ false", "exit 1"])]),
               ScenarioResult(Path("b.yaml"), error="cluster did not come up: boom")]
    junit.write(results, tmp_path / "r.xml")
    root = ET.parse(tmp_path / "r.xml").getroot()
    suites = root.findall("testsuite")
    assert [s.get("failures") for s in suites] == ["1", "1"]
    failure = suites[0].findall("testcase")[1].find("failure")
    assert failure.get("message") == "exit 1" and "$ false" in failure.text


def test_a_scenario_runs_on_another_data_plane_with_its_own_steps(tmp_path: Path) -> None:
    """``--cni flannel`` rewrites only spec.network.cni in a copy of the spec (a named file's
    manifests still named from its folder); steps may name the data planes they are for."""
    lab = load_scenario(ROOT / "scenarios" / "01-pod-network.yaml")
    planes = {s.name: s.dataplanes for s in lab.steps}
    assert planes["stop the SDN controller (the switches keep their flows, fail mode secure)"] == ("openflow",)
    assert planes["pod to pod on the same node"] == ()
    spec, base = cluster_spec(lab, tmp_path, "flannel")
    assert yaml.safe_load(spec.read_text())["spec"]["network"]["cni"] == "flannel"
    assert base == ROOT / "topologies"
    assert cluster_spec(lab, tmp_path) == (lab.cluster_file, None)
    inline = load_scenario(ROOT / "scenarios" / "02-clusterip.yaml")
    spec, base = cluster_spec(inline, tmp_path, "flannel")
    data = yaml.safe_load(spec.read_text())
    assert data["spec"]["network"]["cni"] == "flannel" and base == ROOT / "scenarios"
    assert "network" not in (inline.cluster_doc.data["spec"])  # the scenario itself is left as it was
    spec, _ = cluster_spec(lab, tmp_path, "flannel", "nftables")
    assert yaml.safe_load(spec.read_text())["spec"]["network"] == {"cni": "flannel", "kubeProxy": {"mode": "nftables"}}
    lab9 = {s.name: s for s in load_scenario(ROOT / "scenarios" / "09-flannel-kube-proxy.yaml").steps}
    chains = lab9["KUBE-SERVICES sends the cluster IP to the Service's chain"]
    assert chains.runs_on("flannel", "iptables") and not chains.runs_on("flannel", "nftables")
    assert lab9["the Service still answers"].runs_on("openflow", "")
    assert not lab9["and numgen picks one of the three endpoints"].runs_on("flannel", "iptables")
    lab8 = {s.name: s for s in load_scenario(ROOT / "scenarios" / "08-kube-system.yaml").steps}
    alone = lab8["its ConfigMap says the OpenFlow pipeline serves Services, so no kube-proxy runs"]
    assert alone.runs_on("openflow", "") and not alone.runs_on("openflow", "iptables")  # openflow/none
    assert lab8["the data plane's own DaemonSet, one pod per node, as a CNI's agent runs"].runs_on("openflow", "nftables")
    bad = tmp_path / "bad.yaml"
    bad.write_text("cluster: ../x.yaml\nsteps:\n  - name: a\n    dataplanes: [calico-ish]\n    scale: {replicas: 1}\n")
    with pytest.raises(SpecError) as err:
        load_scenario(bad)
    assert any("unknown data plane 'calico-ish'" in p.message for p in err.value.problems)
