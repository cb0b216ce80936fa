"""``features --engine spark``: the same SQL on Spark gives DuckDB's features, customer by customer.

Needs PySpark (the ``spark`` extra) and Java 17 (``scripts/system-deps.sh`` installs it); one
local[2] Spark session is shared by the whole test session (tests/conftest.py). A demo lake of
300 customers covers every table and feature column and keeps the Spark tests short.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from personas.features.build import build_features, load_catalog, load_features
from pipelines.cli import main

pytestmark = pytest.mark.slow  # a Spark session and two Spark jobs: minutes on two cores


@pytest.fixture(scope="module")
def small_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo retailer at 300 customers (every table, prospects, every feature column)."""
    from personas.ingest.batch import ingest
    from personas.synthetic.retailer import generate

    root = tmp_path_factory.mktemp("spark_demo")
    generate(root / "raw", customers=300, seed=7)
    files = sorted(p for p in (root / "raw").iterdir() if p.name.endswith((".csv.gz", ".jsonl.gz")))
    ingest(files, "demo", root / "lake")
    return root / "lake"


def _assert_same(a, b) -> None:
    assert list(a.index) == list(b.index) and list(a.columns) == list(b.columns)
    for c in a.columns:
        x, y = a[c], b[c]
        if x.dtype.kind in "fiO" and y.dtype.kind in "fi":  # DuckDB keeps 1.0/0.0 as decimals
            xf, yf = x.astype(float).to_numpy(), y.astype(float).to_numpy()
            assert np.array_equal(np.isnan(xf), np.isnan(yf)), c
            assert np.allclose(xf, yf, rtol=1e-9, atol=1e-12, equal_nan=True), c
        else:
            assert x.fillna("<na>").astype(str).equals(y.fillna("<na>").astype(str)), c


def test_spark_features_equal_duckdb_features(spark, small_lake: Path, tmp_path: Path) -> None:
    duck = build_features(small_lake, None, tmp_path / "duckdb")
    on_spark = build_features(small_lake, None, tmp_path / "spark", engine="spark")
    assert on_spark.as_of == duck.as_of and on_spark.columns == duck.columns
    a, b = load_features(duck.path), load_features(on_spark.path)
    assert len(a) == 300 and {"clv_12m", "p_alive", "value_economic"} <= set(a.columns)
    _assert_same(a, b)
    ca, cb = load_catalog(duck.path), load_catalog(on_spark.path)
    assert cb["engine"] == "spark" and cb["lake_versions"] == ca["lake_versions"]
    assert cb["clv"]["model"]["name"] == ca["clv"]["model"]["name"]


def test_spark_assignment_and_aggregates_equal_local(spark, small_lake: Path, tmp_path: Path):
    from personas.assign import assign_frame
    from personas.assign_spark import assign_spark, persona_aggregates
    from personas.config import SegmentationConfig
    from personas.discover import discover

    feats = build_features(small_lake, None, tmp_path / "features").path
    cfg = SegmentationConfig(algorithms=("kmeans",), map_sample=300)
    run = discover(feats, tmp_path / "runs", config=cfg, run_id="r").run_dir
    X = load_features(feats)
    local = assign_frame(X, run)
    sdf = spark.read.parquet(str(feats))
    assigned = assign_spark(sdf.repartition(3), run)  # several batches on the executors
    got = assigned.toPandas().set_index("customer_id").reindex(local.index)
    assert got["persona_id"].tolist() == [str(v) for v in local["persona_id"]]
    assert got["persona_name"].tolist() == local["persona_name"].tolist()
    assert got["profiled"].tolist() == local["profiled"].tolist()
    assert np.allclose(
        got["confidence"], local["confidence"].astype(float), rtol=1e-9, equal_nan=True
    )
    assert local["profiled"].any() and local["persona_id"].nunique() >= 3
    agg = persona_aggregates(sdf, assigned).toPandas().set_index("persona_id")
    sizes = local.groupby(local["persona_id"].astype(str)).size()
    assert agg["customers"].to_dict() == sizes.to_dict()
    monetary = X["monetary"].groupby(local["persona_id"].astype(str)).mean()
    assert np.allclose(
        agg.loc[monetary.index, "mean_monetary"], monetary, rtol=1e-9, equal_nan=True
    )
    # the command line: personas assign --engine spark writes a Parquet folder, same rows
    out = tmp_path / "assigned.parquet"
    args = ["assign", str(feats), "--run", str(run), "--engine", "spark", "-o", str(out)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    here = CliRunner().invoke(main, [*args[:-4], "-o", str(tmp_path / "local.parquet")])
    assert res.output.splitlines()[1:] == here.output.splitlines()[1:]  # the same tally
    folder = pd.read_parquet(out).set_index("customer_id").reindex(local.index)
    assert list(folder.columns) == list(local.columns)
    for c in local.columns:
        x, y = local[c], folder[c]
        if c == "persona_id":
            x = x.astype(str)
        if x.dtype.kind == "f":
            assert np.allclose(x, y, rtol=1e-9, equal_nan=True), c
        else:
            assert x.fillna("<na>").astype(str).tolist() == y.fillna("<na>").astype(str).tolist()
