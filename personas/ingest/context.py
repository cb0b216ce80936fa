"""What the three passes of one ingest share: its inputs and the batch's staging state.

Staging (:mod:`personas.ingest.stage`) fills the context, the duplicate search
(:mod:`personas.ingest.dedupe`) and the writers (:mod:`personas.ingest.write`) read it, and
the accounting (:mod:`personas.ingest.batch`) sums it; ``lock`` guards it wherever several
threads stage or write at once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from personas.ingest.mapping import Source

if TYPE_CHECKING:
    from personas.ingest.stage import PieceTally


@dataclass
class Input:
    """One file (or SQL query) to ingest; ``fi`` is its index in the batch."""

    fi: int
    source: Source
    path: Path | None
    name: str
    fingerprint: str
    bytes: int
    table: pa.Table | None = None  # pre-read Arrow table for SQL sources


@dataclass
class Context:
    """One batch's state: its time and key, the staged pieces, their counts and flags."""

    batch_id: str
    now: datetime
    key: str
    stage: Path
    threads: int = 1
    flag_bits: dict[str, int] = field(default_factory=dict)
    tables: set[str] = field(default_factory=set)
    parts: dict[str, list[int]] = field(default_factory=dict)  # table -> staged piece ids
    stats: dict[tuple[int, int], dict[str, int]] = field(default_factory=dict)
    rule_names: dict[tuple[int, int], list[str]] = field(default_factory=dict)  # by _ck - 1
    tallies: dict[int, PieceTally] = field(default_factory=dict)  # piece -> its counts
    offsets: dict[int, int] = field(default_factory=dict)  # piece -> rows before its chunk
    hashed: dict[str, int] = field(default_factory=dict)  # table -> hashes kept aside so far
    part_no: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    lookup_cache: dict = field(default_factory=dict)
    stage_read: threading.Event = field(default_factory=threading.Event)  # quarantine written
    written_pieces: list[int] = field(default_factory=list)  # kept until then
    datasets: dict[str, object] = field(default_factory=dict)  # registered stage views

    def piece_path(self, pid: int) -> Path:
        """The staged Arrow piece ``pid``."""
        return self.stage / "pieces" / f"piece-{pid:05d}.arrow"

    def hash_path(self, pid: int) -> Path:
        """The accepted rows' hashes that piece ``pid`` kept aside (see ``PieceTally``)."""
        return self.stage / "pieces" / f"piece-{pid:05d}.hashes.npy"
