"""Writing the exports: gzip CSV and JSON lines, serialized by Arrow in bounded batches.

Writing is the generator's bottleneck: Arrow and zlib release the GIL, so the tables of one chunk
are written on threads while the next chunk is drawn. The gzip header holds no name or time, so the
same seed gives byte-identical files.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

_GZIP_LEVEL = 1  # writing is the bottleneck; levels 3 and 6 gain only 10-20 % in size
_WRITE_BATCH = 250_000  # rows serialized at a time: bounds the writers' text buffers


class GzipSink:
    """A gzip file written in pieces, with no name or time in its header (byte-reproducible)."""

    def __init__(self, path: Path) -> None:
        self._raw = open(path, "wb")  # noqa: SIM115 -- closed in __exit__
        self._gz = gzip.GzipFile(
            filename="", mode="wb", fileobj=self._raw, compresslevel=_GZIP_LEVEL, mtime=0
        )

    def __enter__(self) -> GzipSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self._gz.close()
        self._raw.close()

    def write(self, data: Any) -> None:
        self._gz.write(data)


def write_tables(sinks: dict[str, GzipSink], tables: dict[str, pa.Table], header: bool) -> None:
    """Serialize and compress tables of one chunk (on a writer thread: Arrow and zlib drop the GIL).

    Each table is released as soon as it is written, which lowers the peak memory.
    """
    for name in list(tables):
        table = tables.pop(name)
        pieces = _jsonl(table) if name == "events" else _csv(table, header)
        for piece in pieces:
            sinks[name].write(piece)
        del table, pieces


def _csv(table: pa.Table, header: bool) -> Iterator[pa.Buffer]:
    for i, offset in enumerate(range(0, max(table.num_rows, 1), _WRITE_BATCH)):
        sink = pa.BufferOutputStream()
        options = pacsv.WriteOptions(include_header=header and i == 0)
        pacsv.write_csv(table.slice(offset, _WRITE_BATCH), sink, options)
        yield sink.getvalue()


def _jsonl(table: pa.Table) -> Iterator[pa.Buffer]:
    """JSON lines assembled by Arrow string kernels: one object per event, properties as text."""
    for offset in range(0, table.num_rows, _WRITE_BATCH):
        t = table.slice(offset, _WRITE_BATCH)
        number = pc.utf8_lpad(pc.cast(t["session_id"], pa.string()), width=10, padding="0")
        session = pc.if_else(
            pc.is_null(t["session_id"]), "null", pc.binary_join_element_wise('"S', number, '"', "")
        )
        props = pc.replace_substring(t["properties"], '"', '\\"')
        text = {c: pc.cast(t[c], pa.string()) for c in ("customer_id", "event_type", "channel")}
        line = pc.binary_join_element_wise(
            '{"customer_id":"',
            text["customer_id"],
            '","ts":"',
            pc.cast(t["ts"], pa.string()),
            '","event_type":"',
            text["event_type"],
            '","channel":"',
            text["channel"],
            '","session_id":',
            session,
            ',"properties":"',
            props,
            '"}\n',
            "",
        )
        array = line.combine_chunks() if isinstance(line, pa.ChunkedArray) else line
        offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)
        lo, hi = offsets[array.offset], offsets[array.offset + len(array)]
        yield array.buffers()[2][lo:hi]
