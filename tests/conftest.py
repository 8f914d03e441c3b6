"""Test tiers: unit tests are pure and run anywhere; integration tests need root and Open
vSwitch (CI runs them as root, where they never skip). ``--update-golden`` rewrites golden
files instead of comparing against them."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite golden files")


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    is_root = os.geteuid() == 0 and shutil.which("ovs-vsctl")
    for item in items:
        parts = item.nodeid.split("/")
        if "integration" in parts or "conformance" in parts or item.get_closest_marker("requires_root"):
            item.add_marker(pytest.mark.requires_root)
            if not is_root:
                item.add_marker(pytest.mark.skip(reason="needs root and Open vSwitch"))


@pytest.fixture
def golden(request: pytest.FixtureRequest):
    """``golden(path, text)`` compares with a golden file; only --update-golden writes one, so a
    missing expectation fails rather than being made up by the test."""
    def check(relative: str, text: str) -> None:
        path = ROOT / "tests" / "golden" / relative
        if request.config.getoption("--update-golden"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        assert path.exists(), f"{path} is missing (write it with pytest --update-golden, then review it)"
        assert text == path.read_text(), f"differs from {path} (run pytest --update-golden)"
    return check
