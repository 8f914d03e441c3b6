"""``k8semu diagram`` and the web view's picture: the DOT text for a recorded set of objects
(tests/golden/diagram: a live services cluster's, trimmed to what the picture reads), every
string escaped, colours by state, and Graphviz drawing it."""
from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

import pytest

from emulator.client import diagram
from emulator.errors import K8semuError

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "diagram"


def snapshot() -> diagram.Snapshot:
    rec = json.loads((GOLDEN / "services-objects.json").read_text())
    return diagram.Snapshot(rec["objects"], rec["external"])


def test_the_dot_text_matches_the_golden_file() -> None:
    expected = (GOLDEN / "services.dot").read_text()  # a missing expectation fails here
    assert diagram.dot(snapshot()) == expected


def test_pods_sit_in_their_node_and_services_point_at_their_endpoints() -> None:
    text = diagram.dot(snapshot())
    worker2 = text.split('id="node:worker-2"')[1].split("  }")[0]
    assert '"pod:default:client"' in worker2
    assert '"service:default:web" -> "pod:default:' in text
    assert "kube-system" not in text and "kube-system" in diagram.dot(snapshot(), system=True)


def test_every_string_is_escaped_and_control_characters_dropped() -> None:
    assert diagram.quote('a"b\\c') == '"a\\"b\\\\c"'
    assert diagram.quote("x\ny\x07z") == '"x\\nyz"'
    snap = snapshot()
    pod = json.loads(json.dumps(snap.objects["Pod"][0]))
    pod["metadata"]["name"] = 'evil"];\ndigraph x {'
    text = diagram.dot(diagram.Snapshot({**snap.objects, "Pod": [pod]}, []))
    assert 'evil\\"];\\ndigraph x {' in text and "\ndigraph" not in text  # one graph: the name stayed a string


def test_colours_say_the_state() -> None:
    ready = {"metadata": {}, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    unready = {"metadata": {}, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}}
    assert diagram.pod_colour(ready) == diagram.GREEN and diagram.pod_colour(unready) == diagram.ORANGE
    assert diagram.pod_colour({"metadata": {}, "status": {"phase": "Failed"}}) == diagram.RED
    assert diagram.pod_colour({"metadata": {"deletionTimestamp": "x"}, "status": {"phase": "Running"}}) == diagram.GREY


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot (make install adds it)")
def test_graphviz_draws_svg_with_the_element_ids_the_page_uses() -> None:
    svg = html.unescape(diagram.render(diagram.dot(snapshot()), "svg").decode())  # dot writes "-" as &#45;
    assert svg.lstrip().startswith("<?xml") and 'id="pod:default:client"' in svg and 'id="node:worker-1"' in svg
    pod = json.loads(json.dumps(snapshot().objects["Pod"][0]))
    pod["metadata"]["name"] = '<script>"x'
    drawn = diagram.render(diagram.dot(diagram.Snapshot({"Pod": [pod]}, [])), "svg").decode()
    assert "<script>" not in drawn and "&lt;script&gt;" in drawn  # a name reaches the page as text
    with pytest.raises(K8semuError):
        diagram.render("digraph {", "gif")
