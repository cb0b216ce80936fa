"""Arrow columns to numpy and back through their buffers, without pyarrow's pandas shim.

pyarrow imports pandas the first time it converts a column to numpy (``to_numpy``), builds
one from numpy or Python values (``pa.array``) or takes a Python value as a scalar: 0.3
CPU-s a process with a bytecode cache and about 1 without, as much as an ingest of a million
events spends writing its lake files. The ingest needs nothing of pandas, so its
conversions go through the buffers here (fixed-width and boolean columns only).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def values(arr: pa.Array | pa.ChunkedArray, fill: int = 0) -> np.ndarray:
    """A fixed-width or boolean column as numpy, nulls as ``fill``; timestamps as int64."""
    dtype = _dtype(arr.type)
    if isinstance(arr, pa.ChunkedArray):
        parts = [values(c, fill) for c in arr.chunks]
        return np.concatenate(parts) if parts else np.empty(0, dtype)
    n, off = len(arr), arr.offset
    if n == 0:
        return np.empty(0, dtype)
    validity, data = arr.buffers()[:2]
    if dtype == np.bool_:
        out = _bits(data, off, n)
    else:
        out = np.frombuffer(data, dtype, count=off + n)[off:]
    if arr.null_count:
        out = np.where(_bits(validity, off, n), out, np.asarray(fill, dtype))
    return out


def bools(mask: np.ndarray) -> pa.BooleanArray:
    """A boolean numpy mask as an Arrow array (for ``filter``)."""
    packed = np.packbits(np.asarray(mask, dtype=bool), bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(mask), [None, pa.py_buffer(packed)])


def ints(a: np.ndarray) -> pa.Array:
    """An integer numpy array as an Arrow array of the same type (for ``take``, lookups)."""
    a = np.ascontiguousarray(a)
    return pa.Array.from_buffers(pa.from_numpy_dtype(a.dtype), len(a), [None, pa.py_buffer(a)])


def strings(items: list[str]) -> pa.StringArray:
    """Python strings as an Arrow string array."""
    encoded = [s.encode() for s in items]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    return pa.StringArray.from_buffers(
        len(encoded), pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))
    )


def _bits(buf: pa.Buffer, off: int, n: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(buf, np.uint8), count=off + n, bitorder="little")
    return bits[off:].astype(bool)


def _dtype(t: pa.DataType) -> np.dtype:
    if pa.types.is_boolean(t):
        return np.dtype(bool)
    if pa.types.is_timestamp(t):
        return np.dtype(np.int64)
    if pa.types.is_floating(t):
        return np.dtype(f"f{t.bit_width // 8}")
    if pa.types.is_integer(t):
        return np.dtype(f"{'u' if pa.types.is_unsigned_integer(t) else 'i'}{t.bit_width // 8}")
    raise TypeError(f"not a fixed-width column: {t}")  # pragma: no cover - internal use
