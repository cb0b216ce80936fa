"""Arrow <-> numpy through the buffers gives what pyarrow's own conversions give, minus pandas."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from personas.ingest.arrays import bools, ints, strings, values


@pytest.mark.parametrize(
    "arr",
    [
        pa.array([3, None, -7, 12, None, 5], pa.int16()),
        pa.array([1, 2, 2**63 + 5, 7], pa.uint64()),
        pa.array([True, None, False, True, True, False, None, True, False, True]),
        pa.array([1.5, None, -2.25]),
        pa.array([0, 1_700_000_000_000_000, None], pa.timestamp("us", tz="UTC")),
    ],
)
def test_values_match_pyarrow_also_sliced_and_chunked(arr: pa.Array) -> None:
    def expected(a: pa.Array) -> list:
        raw = a.cast(pa.int64()) if pa.types.is_timestamp(a.type) else a
        return [0 if v is None else v for v in raw.to_pylist()]

    for a in (arr, arr.slice(1), arr.slice(2, 2)):
        assert values(a, 0).tolist() == expected(a)
    chunked = pa.chunked_array([arr.slice(0, 2), arr.slice(2)])
    assert values(chunked, 0).tolist() == expected(arr)
    assert values(pa.chunked_array([], arr.type)).tolist() == []


def test_arrays_from_numpy_and_python() -> None:
    mask = np.array([True, False, True] * 5 + [False])
    assert bools(mask).to_pylist() == mask.tolist()
    for dtype in (np.int64, np.uint64, np.int32):
        a = np.array([5, 0, 9, 2], dtype)
        assert ints(a).to_pylist() == a.tolist() and ints(a).type == pa.from_numpy_dtype(dtype)
    assert ints(np.arange(10)[::3]).to_pylist() == [0, 3, 6, 9]  # not contiguous
    words = ["Straße", "", "a,b", "€"]
    assert strings(words).to_pylist() == words and strings([]).to_pylist() == []


def test_an_events_ingest_does_not_import_pandas(tmp_path: Path) -> None:
    """pyarrow imports pandas on its first numpy conversion: 0.3-1 CPU-s of every ingest."""
    (tmp_path / "in").mkdir()
    lines = [
        json.dumps(
            {
                "customer_id": f"C{i % 7}",
                "ts": f"2024-0{1 + i % 3}-02 10:00:00",
                "event_type": "page_view",
                "channel": "web",
                "session_id": f"S{i}",
                "properties": "{}",
            }
        )
        for i in range(300)
    ]
    (tmp_path / "in" / "events.jsonl").write_text("\n".join(lines) + "\n")
    code = (
        "import sys; from personas.ingest.batch import ingest; "
        f"r = ingest([{str(tmp_path / 'in')!r}], 'demo', {str(tmp_path / 'lake')!r}); "
        "print(r.totals()['accepted'], 'pandas' in sys.modules)"
    )
    env = {**os.environ, "PERSONAS_PII_KEY": "test-key"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.split() == ["300", "False"]
