"""``features --engine spark``: the same SQL on Spark gives DuckDB's features, customer by customer.

Needs PySpark (the ``spark`` extra) and Java 17 (``scripts/system-deps.sh`` installs it); one
local[2] Spark session is shared by the whole test session (tests/conftest.py). A demo lake of
300 customers covers every table and feature column and keeps the Spark tests short; its
DuckDB features and a persona run on them are made once for the module.

The features are computed on Spark once, on a standalone cluster: a master and two workers
from the pyspark wheel (:mod:`personas.spark_cluster`), driven by the command line in a child
process. A child because a JVM has one SparkContext, and this process's is the shared local[2]
one, which the other tests use whatever the order; it also runs the CLI path as a user does
and takes its driver JVM with it when it exits. (local[2] differs only by the master URL; a
second feature computation there would cost minutes of Spark's per-stage overhead.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from personas.features.build import (
    FeatureSet,
    build_features,
    load_activity,
    load_catalog,
    load_features,
)
from tests.conftest import REPO

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


@pytest.fixture(scope="module")
def duck(small_lake: Path, tmp_path_factory: pytest.TempPathFactory) -> FeatureSet:
    """The small lake's features from DuckDB, the reference every Spark result must equal."""
    return build_features(small_lake, None, tmp_path_factory.mktemp("duckdb"))


@pytest.fixture(scope="module")
def run(duck: FeatureSet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A persona run (k-means only: the model is what matters here) on the DuckDB features."""
    from personas.config import SegmentationConfig
    from personas.discover import discover

    cfg = SegmentationConfig(algorithms=("kmeans",), map_sample=300)
    return discover(duck.path, tmp_path_factory.mktemp("runs"), config=cfg, run_id="r").run_dir


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


def test_refresh_on_spark_assigns_like_the_local_engine(
    spark, duck: FeatureSet, run: Path, tmp_path: Path
) -> None:
    """``features.engine: spark``: a refresh scores everyone with the published model on the
    executors; the assign run equals the local engine's, drift and KPIs included."""
    from personas import runs
    from personas.config import SegmentationConfig
    from personas.publish.publication import publish
    from personas.refresh import Policy, refresh_run

    published = tmp_path / "published"
    publish(run, published)
    cfg, policy = SegmentationConfig(algorithms=("kmeans",), map_sample=300), Policy(mode="assign")
    here = refresh_run(duck.path, tmp_path / "runs", published, policy, cfg)
    there = refresh_run(duck.path, tmp_path / "runs", published, policy, cfg, engine="spark")
    assert here.mode == there.mode == "assign"
    assert (here.drift["scored_on"], there.drift["scored_on"]) == ("local", "spark")
    assert here.drift["drift"] == there.drift["drift"]
    a, b = runs.load_run(here.run_dir), runs.load_run(there.run_dir)
    assert len(b.assignments) == 300 and b.assignments["persona_id"].nunique() >= 3
    pd.testing.assert_frame_equal(a.assignments, b.assignments)
    assert b.metrics["kpis"] is not None and b.metrics["kpis"] == a.metrics["kpis"]
    assert b.metrics["persona_sizes"] == a.metrics["persona_sizes"]


def test_spark_assignment_and_aggregates_equal_local(
    spark, duck: FeatureSet, run: Path, tmp_path: Path
):
    from personas.assign import assign_frame
    from personas.assign_spark import assign_spark, persona_aggregates

    feats = duck.path
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
    # the command line (personas assign --engine spark) on the standalone cluster, below


def _assert_same_assignments(local: pd.DataFrame, folder_path: Path) -> None:
    """The Parquet folder ``personas assign --engine spark`` wrote equals the local scores."""
    folder = pd.read_parquet(folder_path).set_index("customer_id").reindex(local.index)
    assert list(folder.columns) == list(local.columns)
    assert folder.index.equals(local.index) and not folder["persona_id"].isna().any()
    for c in local.columns:
        x, y = local[c], folder[c]
        if c == "persona_id":
            x = x.astype(str)
        if x.dtype.kind == "f":
            assert np.allclose(x, y, rtol=1e-9, equal_nan=True), c
        else:
            assert x.fillna("<na>").astype(str).tolist() == y.fillna("<na>").astype(str).tolist()


#: The child process's driver: the command line, as a user runs it, with the config's engine.
CLUSTER_DRIVER = r"""
import sys
from pathlib import Path
from pipelines.cli import main
config, run, out = sys.argv[1:4]
main(["features", "--config", config], standalone_mode=False)
ws = Path(config).parent / "ws"
feats = next(ws.glob("features/as_of=*/features.parquet"))
print("--- assign")
main(["assign", str(feats), "--run", run, "--engine", "spark", "--config", config, "-o", out],
     standalone_mode=False)
"""


def test_standalone_cluster_runs_features_and_assign_like_duckdb(
    small_lake: Path, duck: FeatureSet, run: Path, tmp_path: Path
) -> None:
    """A master and two workers on 127.0.0.1 from the pyspark wheel: `personas features`
    (config ``features.engine: spark``) and `personas assign --engine spark` on it equal
    DuckDB's features (every customer and column, the KPIs' activity files too) and the local
    assignment, and no daemon, executor or Python worker outlives the cluster.

    The module's one Spark feature computation: local[2] differs only by its master URL."""
    import yaml

    from personas.assign import assign_file, assign_frame
    from personas.spark_cluster import leftovers, standalone_cluster

    pytest.importorskip("pyspark", reason="the spark extra is not installed")
    work, config, out = tmp_path / "cluster", tmp_path / "personas.yaml", tmp_path / "out.parquet"
    with standalone_cluster(workers=2, cores=1, memory="1g", work_dir=work) as cluster:
        assert cluster.alive_workers() == 2
        settings = {
            "workspace": "ws",
            "lake": str(small_lake),
            "features": {"engine": "spark", "spark_master": cluster.master_url},
        }
        config.write_text(yaml.safe_dump(settings), encoding="utf-8")
        child = subprocess.run(
            [sys.executable, "-c", CLUSTER_DRIVER, str(config), str(run), str(out)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert child.returncode == 0, child.stderr[-4000:]
    assert all(p.poll() is not None for p in cluster.processes)
    assert leftovers(work) == []  # no executor or Python worker left behind
    for i in range(2):  # both workers ran executors of the application (app-*/<executor id>)
        assert list((work / f"worker-{i}").glob("app-*/*")), f"worker {i} ran no executor"
    # features: every customer and column as DuckDB's; the catalog says where they came from
    feats = next((tmp_path / "ws").glob("features/as_of=*/features.parquet"))
    a, b = load_features(duck.path), load_features(feats)
    assert len(a) == 300 and {"clv_12m", "p_alive", "value_economic"} <= set(a.columns)
    _assert_same(a, b)
    ca, cb = load_catalog(duck.path), load_catalog(feats)
    assert cb["engine"] == "spark" and cb["spark_master"] == cluster.master_url
    assert cb["as_of"] == ca["as_of"] and cb["lake_versions"] == ca["lake_versions"]
    assert cb["clv"]["model"]["name"] == ca["clv"]["model"]["name"]
    # the KPIs' monthly activity and first purchases beside the features, as DuckDB writes them
    for here, there in zip(load_activity(duck.path), load_activity(feats), strict=True):
        assert len(here) > 100
        pd.testing.assert_frame_equal(here, there)
    # assign: the same rows and columns as the local engine, and the same tally printed
    _assert_same_assignments(assign_frame(a, run), out)
    tally = child.stdout.split("--- assign\n", 1)[1].splitlines()[1:]
    local = assign_file(duck.path, run, tmp_path / "local.parquet").summary().splitlines()[1:]
    assert tally == local and len(local) >= 3
