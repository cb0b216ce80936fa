"""A full disk, told as one line: which device, roughly how much to free, and the way out.

ENOSPC reaches us in three forms: an ``OSError`` from Python or pyarrow, DuckDB's
``IOException`` ("No space left on device"), and either of those re-wrapped by a step that
rethrew it. :func:`is_disk_full` recognises all of them, :func:`disk_full` turns one into a
:class:`personas.errors.DiskFullError` after the step has removed what it had half-written.
"""

from __future__ import annotations

import errno
import math
import shutil
from collections.abc import Iterable
from pathlib import Path

from personas.errors import DiskFullError

_TEXT = "no space left on device"
MB = 2**20


def is_disk_full(e: BaseException | None) -> bool:
    """Whether ``e`` (or an exception it was raised from) is a device running out of space."""
    seen = 0
    while e is not None and seen < 10:
        if isinstance(e, DiskFullError):
            return True
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if _TEXT in str(e).lower():
            return True
        e = e.__cause__ or e.__context__
        seen += 1
    return False


def tree_bytes(paths: Iterable[Path]) -> int:
    """Bytes of the files under ``paths`` (files or folders; missing ones count 0)."""
    total = 0
    for p in paths:
        p = Path(p)
        if p.is_file():
            total += p.stat().st_size
        elif p.is_dir():
            total += sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    return total


def disk_full(where: str | Path, need: int) -> DiskFullError:
    """The one-line error for the device holding ``where``; ``need``: bytes the step writes.

    Asks for what the step needs beyond what is free now (the step's own leftovers already
    removed), at least 1 MB.
    """
    where = Path(where)
    probe = where
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    n = max(1, math.ceil((need - free) / MB)) if need > free else max(1, math.ceil(need / MB))
    return DiskFullError(
        f"no space left on the device holding {where}: free {n:,} MB or point the "
        "workspace elsewhere"
    )
