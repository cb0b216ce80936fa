"""Damaged lake files are found (cheaply before features and in status, fully on request)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from personas.errors import LakeError
from personas.lake import Lake
from personas.lakecheck import recovery, verify
from pipelines.cli import main
from tests.conftest import shared_data

DAYS = ("2010-12-01.csv.gz", "2010-12-02.csv.gz", "2011-01-04.csv.gz")


@pytest.fixture(scope="module")
def small_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three real UCI days in two monthly partitions."""
    from personas.ingest.batch import ingest

    src = shared_data("uci-online-retail", "by-day")
    lake = tmp_path_factory.mktemp("lc") / "lake"
    ingest([src / d for d in DAYS[:2]], "online_retail", lake)
    ingest([src / DAYS[2]], "online_retail", lake)
    return lake


@pytest.fixture
def lake(small_lake: Path, tmp_path: Path) -> Lake:
    shutil.copytree(small_lake, tmp_path / "lake")
    return Lake(tmp_path / "lake")


def _tx_file(lake: Lake, batch: int = 0) -> Path:
    return lake.root / lake.batches()[batch].files["transactions"][0]


def test_an_intact_lake_has_no_problems_even_read_in_full(lake: Lake) -> None:
    assert verify(lake) == [] and verify(lake, full=True) == []
    assert all(b.sizes for b in lake.batches())


def test_truncated_file_is_named_with_partition_and_recovery(lake: Lake) -> None:
    f = _tx_file(lake)
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    (p,) = verify(lake)
    assert p.table == "transactions" and p.partition == "year=2010/month=12"
    assert "truncated" in p.what and p.batch_id == lake.batches()[0].batch_id
    (cmd,) = recovery(lake, [p])
    assert f"personas lake forget {p.batch_id}" in cmd
    assert "2010-12-01.csv.gz" in cmd and "2010-12-02.csv.gz" in cmd
    assert "--mapping online_retail" in cmd and "2011-01-04" not in cmd


def test_a_shortened_file_that_still_reads_differs_from_the_log_size(lake: Lake) -> None:
    import pyarrow.parquet as pq

    f = _tx_file(lake, 1)
    t = pq.read_table(f)
    pq.write_table(t.slice(0, t.num_rows - 5), f)  # a valid Parquet file, magic intact
    (p,) = verify(lake)
    assert "were written" in p.what and p.batch_id == lake.batches()[1].batch_id


def test_deleted_file_and_corrupt_pages(lake: Lake) -> None:
    _tx_file(lake, 1).unlink()
    (p,) = verify(lake)
    assert p.what == "the file is missing"
    f = _tx_file(lake, 0)
    data = bytearray(f.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 2000] = bytes(2000)  # same size, magic intact: only reading tells
    f.write_bytes(bytes(data))
    assert len(verify(lake)) == 1
    deep = verify(lake, full=True)
    assert {x.batch_id for x in deep} == {b.batch_id for b in lake.batches()}
    assert any("cannot be read" in x.what for x in deep)


def _same_size(path: Path, table: object, size: int) -> None:
    """Write ``table`` to ``path`` padded (footer metadata) to exactly ``size`` bytes."""
    import pyarrow.parquet as pq

    pad = 0
    for _ in range(8):
        with pq.ParquetWriter(path, table.schema, compression="zstd") as w:  # type: ignore[attr-defined]
            w.write_table(table)
            w.add_key_value_metadata({"pad": "x" * pad})
        got = path.stat().st_size
        if got == size:
            return
        pad += size - got
    raise AssertionError(f"could not pad {path} to {size} bytes")


def test_row_counts_are_checked_against_the_commit_metadata(lake: Lake) -> None:
    import pyarrow.parquet as pq

    f = _tx_file(lake, 1)
    t = pq.read_table(f)
    _same_size(f, t.slice(0, t.num_rows // 2), f.stat().st_size)  # the log's size still holds
    assert verify(lake) == []
    (p,) = verify(lake, full=True)
    assert p.table == "transactions" and "rows on disk" in p.what
    assert p.batch_id == lake.batches()[1].batch_id and "its commit records" in p.what


def test_forget_is_a_delta_commit_and_the_batch_can_come_back(lake: Lake) -> None:
    from deltalake import DeltaTable

    from personas.ingest.batch import ingest
    from personas.lake import META_FORGET

    before, snap = lake.counts(), lake.snapshot()
    first = lake.batches()[0]
    rows = {t: DeltaTable(str(lake.root / t)).count() for t in snap}
    lake.forget(first.batch_id)
    after = lake.snapshot()
    assert [b.batch_id for b in lake.batches()] == [lake.batches()[0].batch_id]
    assert first.batch_id not in {b.batch_id for b in lake.batches()}
    for t in first.versions:  # one commit per table, no file of the batch left
        dt = DeltaTable(str(lake.root / t))
        assert after[t] == snap[t] + 1 and dt.history(1)[0][META_FORGET] == first.batch_id
        assert not any(first.batch_id in u for u in dt.file_uris())
        assert dt.count() == rows[t] - first.written.get(t, {}).get("rows", dt.count() - rows[t])
    assert not any(first.batch_id in p.name for p in lake.root.rglob("*.parquet"))
    assert verify(lake, full=True) == []
    src = shared_data("uci-online-retail", "by-day")
    ingest([src / d for d in DAYS[:2]], "online_retail", lake.root)  # known no more: added
    assert lake.counts() == before and verify(lake, full=True) == []


def test_a_forget_cut_short_is_finished_by_the_next_forget(lake: Lake) -> None:
    from deltalake import DeltaTable

    b = lake.batches()[0]
    first, second = sorted(b.versions)[:2]
    lake._remove_batch(first, b.batch_id)  # killed after its first table
    assert b.batch_id not in {x.batch_id for x in lake.batches()}
    assert any(b.batch_id in u for u in DeltaTable(str(lake.root / second)).file_uris())
    (p,) = verify(lake)  # not quietly fine
    assert p.batch_id == b.batch_id and "forget cut short" in p.what
    assert recovery(lake, [p]) == [f"personas lake forget {b.batch_id} --lake {lake.root}"]
    lake.forget(b.batch_id)
    for t in b.versions:
        assert not any(b.batch_id in u for u in DeltaTable(str(lake.root / t)).file_uris())


def test_features_fail_with_the_advice_and_recovery_works(lake: Lake, tmp_path: Path) -> None:
    from personas.features.build import build_features
    from personas.ingest.batch import ingest

    before = lake.counts()
    f = _tx_file(lake)
    f.write_bytes(f.read_bytes()[:1000])
    with pytest.raises(LakeError) as e:
        build_features(lake, None, tmp_path / "features")
    msg = str(e.value)
    assert "\n" not in msg and "personas lake forget" in msg and "transactions" in msg
    assert "magic" not in msg.lower() or "Parquet magic" in msg
    day = shared_data("uci-online-retail", "by-day", "2011-01-05.csv.gz")
    with pytest.raises(LakeError, match="personas lake forget"):
        ingest([day], "online_retail", lake.root)  # its duplicate search reads the lake
    (cmd,) = recovery(lake, verify(lake))
    exe = str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "personas")
    res = subprocess.run(cmd.replace("personas ", exe + " "), shell=True, capture_output=True)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    assert verify(lake, full=True) == [] and lake.counts() == before
    build_features(lake, None, tmp_path / "features")


def test_status_and_verify_on_the_command_line(lake: Lake, tmp_path: Path) -> None:
    ok = CliRunner().invoke(main, ["lake", "verify", "--full", "--lake", str(lake.root)])
    assert ok.exit_code == 0 and "rows match the commits" in ok.output
    _tx_file(lake).unlink()
    ws = lake.root.parent
    st = CliRunner().invoke(main, ["status", "-w", str(ws)])
    assert st.exit_code == 1, st.output
    assert "damaged lake file" in st.output and "the file is missing" in st.output
    assert "transactions year=2010/month=12" in st.output and " rows\n" not in st.output
    v = CliRunner().invoke(main, ["lake", "verify", "--lake", str(lake.root)])
    assert v.exit_code == 1 and "personas lake forget" in v.output and "Traceback" not in v.output
    bad = CliRunner().invoke(main, ["lake", "forget", "nope", "--lake", str(lake.root)])
    assert bad.exit_code == 2 and "no batch 'nope'" in bad.output
