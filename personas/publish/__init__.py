"""Publication: the offline HTML report, persona cards, audiences, the safety scan, the switch.

``publish(run_dir, published_root)`` writes everything into the run, scans it, and only then
points ``published/latest`` at it.
"""

from personas.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {"publish": "publication", "PublishResult": "publication"},
    submodules=("cards", "plots", "publication", "report"),
)
