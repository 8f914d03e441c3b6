"""``scenario run --artifacts``: a step's folder name keeps nothing of its name but [a-z0-9-], and
the JUnit report links each case to its folder."""
from __future__ import annotations

from pathlib import Path

from emulator.scenario import junit
from emulator.scenario.artifacts import slug
from emulator.scenario.runner import ScenarioResult, StepResult


def test_a_step_name_becomes_a_safe_folder_name() -> None:
    assert slug("The client reaches web (cross-node)") == "the-client-reaches-web-cross-node"
    assert slug("../../etc/passwd") == "etc-passwd" and slug("///") == "step"
    assert len(slug("x" * 500)) == 60


def test_junit_links_each_case_to_its_artifacts(tmp_path: Path) -> None:
    res = ScenarioResult(Path("scenarios/01.yaml"), [StepResult("curl", True, 0.5, ["200"], artifacts="/a/01-curl")])
    junit.write([res], tmp_path / "r.xml")
    assert "[[ATTACHMENT|/a/01-curl]]" in (tmp_path / "r.xml").read_text()
