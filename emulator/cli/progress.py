"""``up``'s progress: a bar per stage on a terminal (rich), one line per finished stage otherwise
(logs and CI keep them readable). The stages are what ``up`` waits for: the nodes and switches
(the manager's start), the pods n/N, the cluster DNS and the ingress controller when the spec has
them, and every switch confirming the data plane's generation."""
from __future__ import annotations

import time
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

STAGES = (("nodes", "nodes and switches"), ("pods", "pods running"), ("dns", "cluster DNS"),
          ("ingress", "ingress controller"), ("sync", "data plane in sync"))


class UpProgress:
    """Hears ``lifecycle.up``'s waits (None: still starting; else a status) and shows them."""

    def __init__(self, out: TextIO, validated_in: float) -> None:
        self.out, self.started = out, time.monotonic()
        self.done: set[str] = set()
        self.bar: Progress | None = None
        self.tasks: dict[str, int] = {}
        if out.isatty():
            self.bar = Progress(TextColumn("{task.description:<20}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), console=Console(file=out), transient=True)
            self.bar.start()
            self.bar.add_task("spec validated", total=1, completed=1)
            # the add-ons show once the cluster says it has them
            self.tasks = {key: self.bar.add_task(label, total=None, visible=key not in ("dns", "ingress"))
                          for key, label in STAGES}
        else:
            self._line(f"spec validated ({validated_in:.2f}s)")

    def __call__(self, status: dict | None) -> None:
        if status is None:
            return
        counts = {"nodes": (1, 1), "pods": (status["running"], status["pods"]),
                  "sync": (1 if status["synced"] else 0, 1)}
        for name, (ready, total) in (status.get("addons") or {}).items():
            if total:
                counts[name] = (ready, total)
        for key, label in STAGES:
            if key not in counts:
                continue
            ready, total = counts[key]
            if self.bar is not None:
                self.bar.update(self.tasks[key], completed=ready, total=total, visible=True)
            elif ready >= total and key not in self.done and (key != "sync" or status["running"] == status["pods"]):
                self.done.add(key)
                detail = f" {ready}/{total}" if key in ("pods", "dns", "ingress") else ""
                self._line(f"{label}{detail} ({status.get('seconds', time.monotonic() - self.started):.2f}s)")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()

    def _line(self, text: str) -> None:
        self.out.write(f"  {text}\n")
        self.out.flush()
