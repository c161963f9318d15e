"""What ships with the harness: bundled plans and experiments, for `harness list`.

Read from the files themselves (a plan's description, an experiment's title), so the list
cannot drift from what `harness run NAME` would run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from harness.plan.loading import PLANS_DIR

EXPERIMENTS_DIR = PLANS_DIR.parent


@dataclass(frozen=True)
class Entry:
    name: str
    """What to type: a plan's name for `harness run NAME`, an experiment's path from the project."""
    summary: str


def _summary(path: Path, *keys: str) -> str:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        return f"(unreadable: {exc.__class__.__name__})"
    if not isinstance(data, dict):
        return "(not a mapping)"
    for key in keys:
        if isinstance(data.get(key), str) and data[key].strip():
            return " ".join(data[key].split())
    return ""


def bundled() -> dict[str, list[Entry]]:
    """Plans first (runnable by name), then experiments by folder (local, kubernetes, aws)."""
    sections: dict[str, list[Entry]] = {
        "plans (harness run NAME)": [
            Entry(p.stem, _summary(p, "description", "name")) for p in sorted(PLANS_DIR.glob("*.yaml"))
        ]
    }
    for folder in ("local", "kubernetes", "aws"):
        files = sorted((EXPERIMENTS_DIR / folder).glob("*.yaml"))
        if files:
            sections[f"experiments/{folder}"] = [
                Entry(f"experiments/{folder}/{p.name}", _summary(p, "title")) for p in files
            ]
    return sections
