"""Prefect's temporary server dies with the process that started it.

Without ``PREFECT_API_URL`` a flow run starts a temporary API server: a ``uvicorn``
subprocess (:class:`prefect.server.api.server.SubprocessASGIServer`), stopped when the
process exits normally. A ``kill -9`` of the parent skips that, and the server lived on as
an orphan holding its port and its SQLite file. On Linux the child now asks the kernel, as
it starts, for SIGTERM when its parent dies (``prctl(PR_SET_DEATHSIG)``) and exits at once
if the parent is already gone. Elsewhere nothing changes.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from typing import Any

PR_SET_DEATHSIG = 1
_installed = False


def _die_with(parent: int):
    def preexec() -> None:  # runs in the child, between fork and exec
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_DEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    return preexec


def install() -> None:
    """Make every temporary Prefect server started from now on die with this process."""
    global _installed
    if _installed or not sys.platform.startswith("linux"):
        return
    from prefect.server.api import server

    original = server.SubprocessASGIServer._run_uvicorn_command

    def run_uvicorn(self: Any) -> subprocess.Popen[Any]:
        real = server.subprocess.Popen
        parent = os.getpid()

        def popen(*args: Any, **kwargs: Any) -> subprocess.Popen[Any]:
            kwargs.setdefault("preexec_fn", _die_with(parent))
            return real(*args, **kwargs)

        server.subprocess = _Subprocess(popen)  # only this module's view of subprocess
        try:
            return original(self)
        finally:
            server.subprocess = subprocess

    server.SubprocessASGIServer._run_uvicorn_command = run_uvicorn
    _installed = True


class _Subprocess:
    """The ``subprocess`` module with ``Popen`` replaced (for one call site)."""

    def __init__(self, popen: Any):
        self.Popen = popen

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)
