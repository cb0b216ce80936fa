"""Ingestion: source mappings, readers and the atomic, idempotent batch into the lake.

``ingest(files, mapping, lake_dir)`` maps an export's columns onto the canonical tables,
refuses personal data in clear, cleans and quarantines rows, drops exact duplicates and commits
one batch; see ``docs/ingestion.md``.
"""

from personas.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "ingest": "batch",
        "IngestReport": "batch",
        "Mapping": "mapping",
        "load_mapping": "mapping",
        "shipped_mappings": "mapping",
    },
    submodules=(
        "batch",
        "canonical",
        "cleaning",
        "context",
        "dedupe",
        "diagnose",
        "files",
        "lookups",
        "mapping",
        "parsing",
        "rawsource",
        "readers",
        "stage",
        "textfiles",
        "write",
    ),
)
