"""The synthetic retailer: export files with planted personas, the project's embedded default.

``generate(out, customers=10_000, seed=0)`` writes order lines, customers, events and feedback
(with realistic dirt) and ``truth.parquet``, the planted persona of every customer.
"""

from personas.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "generate": "retailer",
        "GeneratedData": "retailer",
        "PLANTED_PERSONAS": "planted",
        "CATEGORIES": "planted",
        "CHANNELS": "planted",
        "DIRT_KINDS": "dirt",
    },
    submodules=(
        "calendar",
        "catalogue",
        "columns",
        "customers",
        "dirt",
        "events",
        "feedback",
        "orders",
        "planted",
        "profiles",
        "retailer",
        "sampling",
        "writers",
    ),
)
