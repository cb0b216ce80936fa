"""Persona discovery: preprocessing, model and k chosen by evidence, assignment, the map.

``PersonaSegmenter`` follows the scikit-learn estimator contract (``fit`` returns self, learned
state ends in ``_``, ``clone`` round-trips its parameters).
"""

from personas.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {"PersonaSegmenter": "segmenter", "NOT_PROFILED": "segmenter"},
    submodules=("embed", "preprocess", "segmenter", "selection"),
)
