"""``up``'s progress: one line per finished stage when stdout is not a terminal (in order, each
once), a live bar on a terminal."""
from __future__ import annotations

import io

from emulator.cli.progress import UpProgress


def status(running: int, pods: int, synced: bool, dns=(0, 2)) -> dict:
    return {"running": running, "pods": pods, "synced": synced, "seconds": 1.5,
            "addons": {"dns": list(dns), "ingress": [0, 0]}}


def test_plain_lines_name_each_stage_once_when_it_is_done() -> None:
    out = io.StringIO()
    progress = UpProgress(out, 0.01)
    progress(None)
    progress(status(3, 13, False))
    progress(status(13, 13, False, (2, 2)))
    progress(status(13, 13, True, (2, 2)))
    progress(status(13, 13, True, (2, 2)))
    progress.close()
    lines = [line.strip().split(" (")[0] for line in out.getvalue().splitlines()]
    assert lines == ["spec validated", "nodes and switches", "pods running 13/13", "cluster DNS 2/2",
                     "data plane in sync"]  # no ingress line: this cluster has none


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_a_bar_is_drawn_and_cleared() -> None:
    out = Terminal()
    progress = UpProgress(out, 0.01)
    progress(status(5, 13, False))
    progress(status(13, 13, True, (2, 2)))
    progress.close()
    assert "pods running" in out.getvalue() or "\x1b" in out.getvalue()
