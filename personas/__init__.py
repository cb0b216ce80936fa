"""Buyer personas from customer purchase and behaviour data.

The public API, imported lazily so that ``personas --help`` does not pay for scikit-learn::

    import personas
    lake = personas.Lake("data/lake")
    report = personas.ingest(["exports/"], "online_retail", lake)
    fs = personas.build_features(lake, None, "data/features")
    X = personas.load_features(fs.path)
    seg = personas.PersonaSegmenter(random_state=0).fit(X)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Lake": "personas.lake",
    "ingest": "personas.ingest",
    "load_mapping": "personas.mapping",
    "build_features": "personas.features",
    "load_features": "personas.features",
    "compute_features": ("personas.features", "compute"),
    "PersonaSegmenter": "personas.segment",
    "discover": "personas.discover",
    "load_model": "personas.discover",
    "assign_frame": "personas.assign",
    "load_config": "personas.config",
    "generate": "personas.synthetic",
    "latest_run": "personas.runs",
    "load_run": "personas.runs",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        if name in ("features", "segment", "lake", "profiles", "btyd", "synthetic"):
            return importlib.import_module(f"personas.{name}")
        raise AttributeError(f"module 'personas' has no attribute {name!r}")
    module, attr = target if isinstance(target, tuple) else (target, name)
    return getattr(importlib.import_module(module), attr)


def __dir__() -> list[str]:
    return sorted([*__all__, "features", "segment", "lake", "profiles", "btyd", "synthetic"])
