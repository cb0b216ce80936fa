"""Lazy package faces: ``personas.features.build_features`` imports DuckDB only when used.

A package ``__init__`` lists what it offers and where it lives; the modules are imported on first
attribute access (PEP 562), so importing a package for its metadata (the feature catalogue, the
error classes) never loads DuckDB, scikit-learn or Plotly.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def attach(
    package: str, exports: dict[str, str], submodules: tuple[str, ...] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package``.

    ``exports`` maps a public name to the module (relative to ``package``) that defines it;
    ``submodules`` are modules reachable as attributes (``personas.features.btyd``).
    """
    names = sorted(exports)

    def __getattr__(name: str) -> Any:
        if name in exports:
            module = importlib.import_module(f"{package}.{exports[name]}")
            return getattr(module, name)
        if name in submodules:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*names, *submodules})

    return __getattr__, __dir__, names
