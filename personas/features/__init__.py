"""Per-customer features as of a date: the catalogue, the SQL, CLV models and the DuckDB build.

The catalogue (:mod:`personas.features.catalog`) is plain Python, so plots, reports and
explanations read what a feature means without loading DuckDB; ``build_features`` and
``compute`` (:mod:`personas.features.build`) run the SQL over the lake.
"""

from personas.features.catalog import CATALOG, GROUPS, Feature, label, lookup
from personas.lazy import attach

__getattr__, __dir__, _lazy = attach(
    __name__,
    {
        "FeatureSet": "build",
        "build_features": "build",
        "compute": "build",
        "load_features": "build",
        "load_catalog": "build",
        "default_as_of": "build",
    },
    submodules=("btyd", "build", "catalog", "clv", "docs", "portable", "sql", "value"),
)
__all__ = [
    "CATALOG",
    "GROUPS",
    "Feature",
    "label",
    "lookup",
    *_lazy,
]
