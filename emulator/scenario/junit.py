"""JUnit XML for scenario runs (one testsuite per scenario, one testcase per step)."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from emulator.scenario.runner import ScenarioResult


def write(results: list[ScenarioResult], path: Path) -> None:
    suites = ET.Element("testsuites")
    for res in results:
        failures = sum(1 for s in res.steps if not s.ok) + (1 if res.error else 0)
        suite = ET.SubElement(suites, "testsuite", name=str(res.path), tests=str(len(res.steps) or 1),
                              failures=str(failures), time=f"{sum(s.seconds for s in res.steps):.3f}")
        if res.error:
            case = ET.SubElement(suite, "testcase", name="cluster up", classname=str(res.path))
            ET.SubElement(case, "failure", message=res.error).text = res.error
        for step in res.steps:
            case = ET.SubElement(suite, "testcase", name=step.name, classname=str(res.path), time=f"{step.seconds:.3f}")
            if step.skipped:
                ET.SubElement(case, "skipped", message="not on this data plane")
            elif not step.ok:
                ET.SubElement(case, "failure", message=step.evidence[-1] if step.evidence else "failed").text = \
                    "\n".join(step.evidence)
            elif step.evidence or step.artifacts:
                # [[ATTACHMENT|path]]: how Jenkins' JUnit plugin and GitLab link a case's files
                ET.SubElement(case, "system-out").text = "\n".join(
                    step.evidence + ([f"[[ATTACHMENT|{step.artifacts}]]"] if step.artifacts else []))
    ET.ElementTree(suites).write(path, encoding="unicode", xml_declaration=True)
