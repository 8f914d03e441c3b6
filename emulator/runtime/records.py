"""The run directory and its record of everything a cluster made.

Every namespace, interface, bridge, process and file is written to ``records.json`` *before*
it is created, so that ``k8semu cleanup`` after a ``kill -9`` finds exactly what to remove and
nothing else: teardown never pattern-matches names on the machine. One cluster runs at a time;
its run directory is ``/run/k8semu`` (``K8SEMU_RUN_DIR`` overrides it, for tests).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

KINDS = ("netns", "links", "bridges", "ovs_bridges", "processes", "dirs")


def run_dir() -> Path:
    return Path(os.environ.get("K8SEMU_RUN_DIR", "/run/k8semu"))


@dataclass
class Records:
    path: Path
    data: dict = field(default_factory=dict)

    @classmethod
    def create(cls, directory: Path, cluster: str) -> "Records":
        rec = cls(directory / "records.json", {"cluster": cluster, **{k: [] for k in KINDS}})
        rec.save()
        return rec

    @classmethod
    def load(cls, directory: Path) -> "Records | None":
        path = directory / "records.json"
        try:
            return cls(path, json.loads(path.read_text()))
        except (OSError, ValueError):
            return None

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)

    def add(self, kind: str, *items, save: bool = True) -> None:
        for item in items:
            if item not in self.data[kind]:
                self.data[kind].append(item)
        if save:
            self.save()

    def discard(self, kind: str, *items, save: bool = True) -> None:
        self.data[kind] = [x for x in self.data[kind] if x not in items]
        if save:
            self.save()

    def items(self, kind: str) -> list:
        return list(self.data.get(kind, []))
