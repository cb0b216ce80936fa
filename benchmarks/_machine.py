"""How busy the host was while a benchmark ran: CPU steal and CPU-seconds per contender.

This project's reference machine is a 2-core virtual machine on a shared host. When the host
is busy, the hypervisor gives our cores to other guests (*steal* in ``/proc/stat``) and the
same code takes 20-150% longer: one fixed pure-Python loop took 2.1 s and 5.3 s within one
hour. Wall time alone then says more about the neighbours than about our code, so every
contender is printed with its CPU-seconds (user + system: steadier than wall time, though
cache and memory-bandwidth sharing still moves them by 10-20%) and the share of the cores'
time stolen while it ran. Compare versions by CPU-seconds over alternating runs, and read a
wall time against a target only next to a low steal share.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


def _ticks() -> tuple[int, int]:
    """(steal, total) clock ticks of all cores since boot; (0, 0) off Linux."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0, 0
    # user nice system idle iowait irq softirq steal guest guest_nice; guests are in user
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


@dataclass
class Load:
    """Wall and CPU seconds of the children run inside a :func:`measure` block, and steal."""

    wall: float = 0.0
    cpu: float = 0.0
    steal: float = 0.0  # share of all cores' time taken by the host, 0..1

    def __str__(self) -> str:
        return f"wall {self.wall:.1f} s, CPU {self.cpu:.1f} s, steal {self.steal:.0%}"


@contextmanager
def measure() -> Iterator[Load]:
    """``with measure() as load: run_child(...)``: fills ``load`` when the block ends."""
    load = Load()
    t, ticks, start = time.perf_counter(), _ticks(), os.times()
    try:
        yield load
    finally:
        steal, total = _ticks()
        end = os.times()
        load.wall = time.perf_counter() - t
        load.cpu = (end.children_user - start.children_user) + (
            end.children_system - start.children_system
        )
        d_total = total - ticks[1]
        load.steal = (steal - ticks[0]) / d_total if d_total > 0 else 0.0


def reference_seconds(repeat: int = 3) -> float:
    """Best time of a fixed pure-Python loop: the host's speed right now (lower is faster)."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        s = 0
        for i in range(10_000_000):
            s += i
        best = min(best, time.perf_counter() - t)
    return best
