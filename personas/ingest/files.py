"""Source files as bytes: inflated (by ISA-L where installed), decoded, hashed.

The primitives every reader and every diagnosis opens a file with, so a gzip export, an
unknown encoding or a truncated file is met the same way everywhere.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import zlib
from collections.abc import Iterator
from pathlib import Path

from personas.errors import MappingError, SourceError

try:  # Intel ISA-L inflates gzip about 2.5x faster than zlib
    from isal import igzip as _fast_gzip
    from isal.isal_zlib import error as _isal_error
except ImportError:  # pragma: no cover - exercised only where isal is not installed
    _fast_gzip = None  # type: ignore[assignment]
    _isal_error = zlib.error  # type: ignore[assignment,misc]

# What a broken or truncated compressed file raises, whichever library inflates it.
BROKEN = (EOFError, zlib.error, _isal_error, gzip.BadGzipFile, OSError)


def fingerprint(path: Path) -> tuple[str, int]:
    """Content hash of a file (what makes re-ingesting the same file a no-op) and its size."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
            size += len(chunk)
    return "sha256:" + h.hexdigest(), size


def check_not_empty(path: Path) -> None:
    """Refuse a missing or empty file before a reader meets it with a vaguer error."""
    if not path.exists():
        raise SourceError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise SourceError(
            f"{path.name}: the file is empty (0 bytes); remove it from the input or re-export it"
        )


def codec(encoding: str) -> str:
    """Python's name of ``encoding`` (``latin1`` -> ``iso8859-1``); unknown names are refused."""
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise MappingError(
            f"encoding {encoding!r} is unknown; use a Python codec name such as utf-8, latin-1, "
            "cp1252 or utf-16"
        ) from None


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def open_binary(path: Path) -> io.BufferedIOBase:
    """``path`` for reading bytes, inflated if it is gzip (known by its magic, not its name)."""
    if _is_gzip(path):
        if _fast_gzip is not None:
            return _fast_gzip.open(path, "rb")  # type: ignore[return-value]
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def iter_lines(path: Path) -> Iterator[bytes]:
    """Raw lines of a (possibly gzip) file; used by tests and diagnostics."""
    with open_binary(path) as fh:
        yield from fh
