"""Where benchmark runs leave their figures: bench/results/<name>.json (git-ignored), stamped."""
from __future__ import annotations

import json
import time
from pathlib import Path

DIRECTORY = Path(__file__).resolve().parent / "results"


def stamp() -> dict:
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def save(name: str, results: dict) -> Path:
    DIRECTORY.mkdir(exist_ok=True)
    path = DIRECTORY / f"{name}.json"
    path.write_text(json.dumps(results, indent=1))
    return path
