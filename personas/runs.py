"""Read runs back: the published one, or any run folder (for notebooks and the API)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from personas.errors import PersonasError


@dataclass
class Run:
    """A run folder with its profiles and assignments loaded."""

    path: Path
    info: dict
    profiles: dict
    assignments: pd.DataFrame

    @property
    def personas(self) -> pd.DataFrame:
        """One row per persona: id, name, size, share, description."""
        return pd.DataFrame(
            [
                {k: p[k] for k in ("id", "name", "size", "share", "description")}
                for p in self.profiles["personas"]
            ]
        ).set_index("id")

    def map(self) -> pd.DataFrame:
        return pd.read_parquet(self.path / "map.parquet")


def load_run(path: str | Path) -> Run:
    p = Path(path).resolve()
    if not (p / "profiles.json").exists():
        raise PersonasError(f"{p} is not a run folder (no profiles.json)")
    info = json.loads((p / "run.json").read_text()) if (p / "run.json").exists() else {}
    return Run(
        p,
        info,
        json.loads((p / "profiles.json").read_text(encoding="utf-8")),
        pd.read_parquet(p / "assignments.parquet"),
    )


def latest_run(workspace: str | Path = "data") -> Run:
    """The published run of a workspace (``published/latest``)."""
    latest = Path(workspace) / "published" / "latest"
    if not latest.exists():
        raise PersonasError(f"nothing published under {latest.parent}; run `personas refresh`")
    return load_run(latest)
