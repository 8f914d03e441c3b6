"""Scenario files are validated before anything starts: every problem, with file, line, field."""
from __future__ import annotations

from pathlib import Path

import pytest

from emulator.errors import SpecError
from emulator.scenario.model import load_scenario

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
    assert "RUN bash scripts/install.sh" in dockerfile and dockerfile.startswith("# Teaching demo image")
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
