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

import numpy as np
import pyarrow as pa

from personas.ingest.arrays import values
from personas.ingest.mapping import Source


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
    #: table -> (input, output) -> canonical columns compared, for outputs with dedupe: key:
    dedupe_keys: dict[str, dict[tuple[int, int], tuple[str, ...]]] = field(default_factory=dict)
    written: dict[str, dict[str, int]] = field(default_factory=dict)  # table -> rows, checksum

    def piece_path(self, pid: int) -> Path:
        """The staged Arrow piece ``pid``."""
        return self.stage / "pieces" / f"piece-{pid:05d}.arrow"

    def hash_path(self, pid: int) -> Path:
        """The accepted rows' hashes that piece ``pid`` kept aside (see ``PieceTally``)."""
        return self.stage / "pieces" / f"piece-{pid:05d}.hashes.npy"


class PieceTally:
    """One staged piece's rows by input, output, rule and flag, and its accepted rows' hashes.

    Gathered from the Arrow batches while they are written: the manifest's counts then need
    no scan of the stage (1.2 CPU-s per 20M lines), and the hashes of the duplicate search are
    kept aside here instead of read back from the stage afterwards.
    ``counts`` maps (input, output) to rows by verdict (``_ck``: 0 accepted, else the index of
    the failing check) and accepted rows by ``flag:<name>``. The hashes are kept while the
    table's accepted rows stay within ``room`` (what
    :data:`personas.ingest.stage.HASH_SORT_MAX_ROWS` leaves); ``hashed`` says whether they were
    written.
    """

    def __init__(self, flag_bits: dict[str, int], room: int):
        self.flag_bits = dict(flag_bits)
        self.room = room
        self.counts: dict[tuple[int, int], dict[int | str, int]] = {}
        self.accepted = 0
        self.hashes: list[np.ndarray] | None = []  # None: no room left
        self.hashed = False

    def add(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        ck = values(batch["_ck"], 0)
        fi = values(batch["_fi"])
        flags = values(batch["_flags"])
        oi = int(batch["_oi"][0].as_py())
        accepted = ck == 0
        one = fi[0] == fi[-1] and bool((fi == fi[0]).all())
        for f in [fi[0]] if one else np.unique(fi):
            mine = slice(None) if one else fi == f
            counts = self.counts.setdefault((int(f), oi), {})
            for verdict in np.flatnonzero(verdicts := np.bincount(ck[mine])):
                counts[int(verdict)] = counts.get(int(verdict), 0) + int(verdicts[verdict])
            kept = flags[mine][accepted[mine]]
            for name, bit in self.flag_bits.items():
                if flagged := int(np.count_nonzero(kept & (1 << bit))):
                    counts[f"flag:{name}"] = counts.get(f"flag:{name}", 0) + flagged
        self.accepted += int(np.count_nonzero(accepted))
        if self.hashes is not None and self.accepted > self.room:
            self.hashes = None  # the batch's hashes are then found in DuckDB
        if self.hashes is not None:
            self.hashes.append(values(batch["_hash"])[accepted])

    def save_hashes(self, path: Path) -> None:
        """Write the accepted rows' hashes, unsorted (the duplicate search sorts them at once)."""
        if self.hashed and self.hashes is not None:
            np.save(path, np.concatenate(self.hashes) if self.hashes else np.empty(0, np.uint64))
        self.hashes = None
