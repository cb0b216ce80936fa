"""Buyer personas from customer purchase and behaviour data.

The public API, imported lazily so that ``personas --help`` does not pay for scikit-learn::

    import personas
    lake = personas.Lake("data/lake")
    report = personas.ingest.ingest(["exports/"], "online_retail", lake)
    fs = personas.build_features(lake, None, "data/features")
    X = personas.load_features(fs.path)
    seg = personas.PersonaSegmenter(random_state=0).fit(X)

One subpackage per stage (``ingest``, ``features``, ``segment``, ``profile``, ``publish``,
``synthetic``); ``lake``, ``runs``, ``config`` and ``errors`` own what the stages share. A
name that is also a module is reached through it: ``personas.ingest.ingest``,
``personas.discover.discover``.
"""

from __future__ import annotations

from personas.lazy import attach

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "Lake": "lake",
        "load_mapping": "ingest.mapping",
        "build_features": "features.build",
        "load_features": "features.build",
        "PersonaSegmenter": "segment.segmenter",
        "fit_personas": "discover",
        "assign_frame": "assign",
        "load_config": "config",
        "generate": "synthetic.retailer",
        "latest_run": "runs",
        "load_run": "runs",
        "load_model": "runs",
    },
    submodules=(
        "assign",
        "config",
        "discover",
        "errors",
        "features",
        "ingest",
        "lake",
        "profile",
        "publish",
        "runs",
        "schema",
        "segment",
        "synthetic",
    ),
)
