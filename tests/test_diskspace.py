"""A full disk is one line naming the device and what to free, with nothing half-written.

We cannot fill the disk here: ENOSPC is raised from the functions that write, in the forms it
takes in real life (an OSError from pyarrow or Python, DuckDB's IOException).
"""

from __future__ import annotations

import errno
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from personas.diskspace import disk_full, is_disk_full
from personas.errors import DiskFullError
from personas.ingest.batch import ingest
from personas.lake import Lake
from tests.conftest import REPO, shared_data

LINE = re.compile(
    r"^no space left on the device holding (?P<path>\S+): free (?P<n>[\d,]+) MB or point the "
    r"workspace elsewhere$"
)
DAY = ("uci-online-retail", "by-day", "2010-12-01.csv.gz")


def _enospc(*_a, **_k):
    raise OSError(errno.ENOSPC, "No space left on device")


def _duck_enospc(*_a, **_k):
    raise duckdb.IOException('IO Error: Could not write file "x.parquet": No space left on device')


def _clean(lake: Path) -> None:
    """Nothing of the failed batch anywhere: no Delta log, no data file, no staging."""
    assert not list(lake.glob("*/_delta_log/*.json"))
    assert not [p for p in lake.rglob("*") if p.is_file() and p.name != ".lock"]


def test_recognised_in_every_form() -> None:
    assert is_disk_full(OSError(errno.ENOSPC, "x"))
    assert is_disk_full(duckdb.IOException("IO Error: ... No space left on device"))
    try:
        try:
            _enospc()
        except OSError as e:
            raise duckdb.Error(str(e)) from None  # how the stage re-raises pyarrow's errors
    except duckdb.Error as e:
        assert is_disk_full(e)
    assert not is_disk_full(OSError(errno.ENOENT, "missing"))
    assert not is_disk_full(ValueError("No magic bytes found"))


def test_the_estimate_is_what_is_missing(tmp_path: Path) -> None:
    import shutil

    free = shutil.disk_usage(tmp_path).free
    m = LINE.match(str(disk_full(tmp_path / "not" / "yet", free + 300 * 2**20)))
    assert m and m["path"].endswith("not/yet") and int(m["n"].replace(",", "")) in (300, 301)
    assert LINE.match(str(disk_full(tmp_path, 5 * 2**20)))["n"] == "5"


@pytest.mark.parametrize(
    "where",
    [
        "personas.ingest.stage.PieceTally.add",  # staging: once turned into the mapping hint
        "pyarrow.parquet.ParquetWriter.write_table",  # the lake files
        "personas.ingest.write._write_quarantine",  # DuckDB writing the quarantine
        "personas.lake_delta.commit",  # the Delta commits (the commit point)
    ],
)
def test_ingest(where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    day = shared_data(*DAY)
    fake = _duck_enospc if "quarantine" in where else _enospc
    monkeypatch.setattr(where, fake)
    with pytest.raises(DiskFullError) as e:
        ingest([day], "online_retail", tmp_path / "lake")
    msg = str(e.value)
    m = LINE.match(msg)
    assert m, msg
    assert m["path"] == str(tmp_path / "lake") and "check columns" not in msg
    assert int(m["n"].replace(",", "")) >= 1
    _clean(tmp_path / "lake")


def test_ingest_full_after_one_tables_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The second table's Delta commit finds the disk full: the first one's is undone too."""
    import personas.lake_delta as ld

    real, calls = ld.commit, []

    def second_fails(*a, **k):
        calls.append(a[1])
        return _enospc() if len(calls) == 2 else real(*a, **k)

    monkeypatch.setattr(ld, "commit", second_fails)
    with pytest.raises(DiskFullError):
        ingest([shared_data(*DAY)], "online_retail", tmp_path / "lake")
    assert len(calls) == 2 and Lake(tmp_path / "lake").batches() == []
    _clean(tmp_path / "lake")


def test_features(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from personas.features.build import build_features

    ingest([shared_data(*DAY)], "online_retail", tmp_path / "lake")
    real = Lake.connect

    class Full:
        """DuckDB whose COPY finds the device full (every other statement runs)."""

        def __init__(self, con: duckdb.DuckDBPyConnection):
            self.con = con

        def execute(self, sql: str, *a):
            if sql.lstrip().startswith("COPY"):
                out = sql.split(" TO '")[1].split("'")[0]
                Path(out).write_bytes(b"PAR1 half a file")
                _duck_enospc()
            return self.con.execute(sql, *a)

        def __getattr__(self, name: str):
            return getattr(self.con, name)

    monkeypatch.setattr(Lake, "connect", lambda self, **k: Full(real(self, **k)))
    out = tmp_path / "features"
    with pytest.raises(DiskFullError) as e:
        build_features(tmp_path / "lake", None, out)
    assert LINE.match(str(e.value)) and str(out) in str(e.value)
    assert not [p for p in out.rglob("*") if p.is_file()]


def test_command_line_is_one_line(tmp_path: Path) -> None:
    """A real process, the fault injected before the CLI runs: one line, no traceback."""
    day = shared_data(*DAY)
    code = (
        "import errno, pyarrow.parquet as pq\n"
        "def full(*a, **k): raise OSError(errno.ENOSPC, 'No space left on device')\n"
        "pq.ParquetWriter.write_table = full\n"
        "from pipelines.cli import main\n"
        f"main(['ingest', {str(day)!r}, '-m', 'online_retail', '--lake', "
        f"{str(tmp_path / 'lake')!r}])\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 2
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, res.stderr[-3000:]
    assert LINE.match(lines[0].removeprefix("error: ")), lines[0]
    assert "Traceback" not in res.stderr and "nanobind" not in res.stderr
    _clean(tmp_path / "lake")
