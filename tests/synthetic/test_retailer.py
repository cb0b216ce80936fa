"""Tests of the synthetic retailer exports: contract, exact dirt accounting, planted structure.

The recoverability tests compute simple per-customer features independently of the library's
feature code (DuckDB over the raw files) and check that k-means finds the planted personas: this
is evidence that the ground truth is real, not a test of the project's segmentation.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.preprocessing import StandardScaler

from personas import schema
from personas.synthetic.dirt import DIRT_KINDS
from personas.synthetic.planted import CATEGORIES, CHANNELS, PLANTED_PERSONAS
from personas.synthetic.retailer import generate

N = 8_000
PERSONAL = {"full_name", "email", "phone"}


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory):
    return generate(
        tmp_path_factory.mktemp("clean"), customers=N, seed=1, noise="clean", chunk_customers=3_000
    )


@pytest.fixture(scope="module")
def noisy(tmp_path_factory: pytest.TempPathFactory):
    return generate(tmp_path_factory.mktemp("noisy"), customers=N, seed=2, noise="noisy")


@pytest.fixture(scope="module")
def con(clean) -> duckdb.DuckDBPyConnection:
    return _connect(clean.out_dir)


def _connect(out: Path) -> duckdb.DuckDBPyConnection:
    """Views over the raw files, read with every column as text so nothing is coerced away."""
    con = duckdb.connect()
    con.execute(f"""
        create view tx_raw as select * from read_csv('{out}/transactions.csv.gz', header=true,
            all_varchar=true);
        create view tx as select customer_id, order_id, ts::timestamp as ts, product_id, category,
            quantity::double as quantity, unit_price::double as unit_price,
            amount::double as amount, channel, discount::double as discount, currency
            from tx_raw;
        create view customers as select * from read_csv('{out}/customers.csv.gz', header=true);
        create view events as select * from read_json('{out}/events.jsonl.gz',
            format='newline_delimited');
        create view feedback as select * from read_csv('{out}/feedback.csv.gz', header=true);
        create view truth as select * from '{out}/truth.parquet';
    """)
    return con


def _columns(con: duckdb.DuckDBPyConnection, view: str) -> list[str]:
    return [d[0] for d in con.execute(f"select * from {view} limit 0").description]


def _clean_tx_sql() -> str:
    """Transactions as an ingestion would keep them: every kind of planted dirt removed."""
    return """
        select distinct * from tx
        where customer_id is not null and unit_price > 0
          and product_id not in ('SHIPPING', 'FEE')
          and year(ts) between 2000 and 2050 and abs(quantity) < 1000
    """


def proxy_features(out: Path) -> pd.DataFrame:
    """Simple per-customer features from the raw files (planted customers only, indexed by id)."""
    con = _connect(out)
    as_of = con.execute("select max(ts) from events").fetchone()[0]
    cats = ", ".join(
        f"avg((category = '{c}')::int) filter (where quantity > 0) as cat_{c}" for c in CATEGORIES
    )
    chans = ", ".join(f"avg((channel = '{c}')::int) as ch_{c}" for c in CHANNELS)
    sql = f"""
    with t as ({_clean_tx_sql()}),
    orders as (
        select customer_id, order_id, min(ts) as ts, sum(amount) as amount,
               sum(discount) as discount, any_value(channel) as channel
        from t where quantity > 0 group by all),
    gaps as (
        select customer_id,
               date_diff('second', lag(ts) over (partition by customer_id order by ts), ts)
                   / 86400.0 as gap
        from orders),
    o as (
        select customer_id, count(*) as frequency, sum(amount) as gross, avg(amount) as aov,
               date_diff('second', max(ts), timestamp '{as_of}') / 86400.0 as recency,
               sum(discount) / sum(amount + discount) as discount_share, {chans}
        from orders group by 1),
    r as (select customer_id, stddev(gap) / avg(gap) as ipt_cv from gaps group by 1),
    l as (
        select customer_id, sum(amount) as monetary,
               count(*) filter (where quantity < 0)
                   / count(*) filter (where quantity > 0) as return_rate, {cats}
        from t group by 1),
    e as (
        select customer_id,
               count(*) filter (where event_type = 'email_sent') as sent,
               count(*) filter (where event_type = 'email_open') as opens,
               count(*) filter (where event_type = 'email_click') as clicks,
               count(*) filter (where event_type in ('app_session', 'page_view')) as sessions,
               count(*) filter (where event_type = 'app_session') as app_sessions,
               count(*) filter (where event_type = 'add_to_cart') as carts,
               count(*) filter (where event_type = 'checkout') as checkouts,
               count(*) filter (where event_type = 'support_ticket') as tickets,
               count(*) filter (where event_type = 'coupon_redeem') as coupons
        from events group by 1),
    f as (
        select customer_id, avg(score) filter (where kind = 'nps') as nps,
               avg(score) filter (where kind = 'csat') as csat,
               avg(score) filter (where kind = 'review') as review
        from feedback group by 1)
    select truth.customer_id, truth.persona, o.* exclude (customer_id),
           r.ipt_cv, l.* exclude (customer_id), e.* exclude (customer_id),
           f.* exclude (customer_id), c.loyalty_member::int as loyalty,
           date_diff('day', c.first_seen, timestamp '{as_of}') as tenure
    from truth join o using (customer_id) left join r using (customer_id)
    left join l using (customer_id) left join e using (customer_id)
    left join f using (customer_id) join customers c using (customer_id)
    order by truth.customer_id
    """
    df = con.execute(sql).df().set_index("customer_id")
    df["open_rate"] = df.opens / df.sent.where(df.sent > 0)
    df["click_rate"] = df.clicks / df.opens.where(df.opens > 0)
    df["app_share"] = df.app_sessions / df.sessions.where(df.sessions > 0)
    df["abandon"] = 1 - df.checkouts / df.carts.where(df.carts > 0)
    return df


def _matrix(df: pd.DataFrame) -> np.ndarray:
    """log1p on the skewed counts and amounts, median-filled gaps, standardised."""
    skewed = ["frequency", "gross", "aov", "recency", "tenure", "sessions", "tickets", "coupons"]
    rates = [
        "discount_share",
        "return_rate",
        "ipt_cv",
        "open_rate",
        "click_rate",
        "app_share",
        "abandon",
        "nps",
        "csat",
        "loyalty",
    ]
    shares = [f"cat_{c}" for c in CATEGORIES] + [f"ch_{c}" for c in CHANNELS]
    x = pd.concat([np.log1p(df[skewed].clip(lower=0)), df[rates + shares]], axis=1)
    x = x.astype(float).fillna(x.median())
    return StandardScaler().fit_transform(x)


def _kmeans_ari(info) -> tuple[float, np.ndarray, np.ndarray]:
    df = proxy_features(info.out_dir)
    x = _matrix(df)
    labels = KMeans(n_clusters=len(PLANTED_PERSONAS), n_init=10, random_state=0).fit_predict(x)
    return adjusted_rand_score(df.persona, labels), x, df.persona.to_numpy()


# ---------------------------------------------------------------------------------------------
# Determinism and bookkeeping


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    kwargs = {"customers": 1_500, "chunk_customers": 700}
    a = generate(tmp_path / "a", seed=7, **kwargs)
    b = generate(tmp_path / "b", seed=7, **kwargs)
    c = generate(tmp_path / "c", seed=8, **kwargs)
    for name, path in a.paths.items():
        assert path.read_bytes() == b.paths[name].read_bytes(), name
        if name != "meta":
            assert path.read_bytes() != c.paths[name].read_bytes(), name


def test_meta_row_counts_match_files(clean) -> None:
    meta = json.loads(clean.paths["meta"].read_text())
    assert meta["rows"] == clean.rows
    for name in ("transactions", "customers", "feedback"):
        with gzip.open(clean.paths[name], "rt", newline="") as f:
            lines = sum(1 for _ in f) - 1
        assert lines == meta["rows"][name], name  # no embedded newlines in any field
    with gzip.open(clean.paths["events"], "rt") as f:
        assert sum(1 for _ in f) == meta["rows"]["events"]
    assert pq.read_metadata(clean.paths["truth"]).num_rows == meta["rows"]["truth"]
    assert meta["rows"]["customers"] == N
    assert meta["prospects"] + meta["planted_customers"] == N
    assert sum(meta["persona_sizes"].values()) == meta["planted_customers"]
    assert [p["name"] for p in meta["personas"]] == [p.name for p in PLANTED_PERSONAS]


def test_dirt_counts_match_what_is_in_the_file(clean, con) -> None:
    dirt = clean.meta["dirt"]
    total = con.execute("select count(*) from tx_raw").fetchone()[0]
    distinct = con.execute("select count(*) from (select distinct * from tx_raw)").fetchone()[0]
    found = {
        "duplicate_lines": total - distinct,
        "missing_customer_id": "customer_id is null",
        "zero_price": "unit_price = 0",
        "non_product": "product_id in ('SHIPPING', 'FEE')",
        "impossible_date": "year(ts) in (1970, 2099)",
        "extreme_outlier": "abs(quantity) >= 1000",
    }
    for kind, rule in found.items():
        count = (
            rule
            if isinstance(rule, int)
            else con.execute(f"select count(*) from tx where {rule}").fetchone()[0]
        )
        assert count == dirt[kind], kind
    assert set(dirt) == set(DIRT_KINDS)
    assert all(dirt[k] > 0 for k in DIRT_KINDS)
    # One kind per dirty line: kinds never overlap, and every duplicate copies a clean line.
    overlap = con.execute("""
        select count(*) from tx where ((customer_id is null)::int + (unit_price = 0)::int
            + (product_id in ('SHIPPING', 'FEE'))::int + (year(ts) in (1970, 2099))::int
            + (abs(quantity) >= 1000)::int) > 1""").fetchone()[0]
    assert overlap == 0
    copies, most, dirty_copies = con.execute("""
        with copied as (select *, count(*) as n from tx group by all having count(*) > 1)
        select sum(n - 1), max(n), count(*) filter (where not (customer_id is not null
            and unit_price > 0 and product_id not in ('SHIPPING', 'FEE')
            and year(ts) between 2000 and 2050 and abs(quantity) < 1000))
        from copied""").fetchone()
    assert copies == dirt["duplicate_lines"] and most == 2  # one copy of each duplicated line
    assert dirty_copies == 0  # duplicates copy clean lines only
    assert con.execute(f"select count(*) from ({_clean_tx_sql()})").fetchone()[0] == (
        total - sum(dirt.values())
    )  # dropping every kind of dirt leaves exactly the clean lines
    rates = dirt["missing_customer_id"] / total, dirt["duplicate_lines"] / total
    assert 0.005 < rates[0] < 0.02 and 0.002 < rates[1] < 0.01


def test_clean_export_has_no_dirt(tmp_path: Path) -> None:
    info = generate(tmp_path, customers=800, seed=3, dirty=False)
    assert set(info.meta["dirt"].values()) == {0}
    con = _connect(tmp_path)
    assert (
        con.execute(f"select count(*) from ({_clean_tx_sql()})").fetchone()[0]
        == info.rows["transactions"]
    )


# ---------------------------------------------------------------------------------------------
# Contract


def test_columns_match_canonical_schema(clean, con) -> None:
    expected = {
        "transactions": [f.name for f in schema.fields("transactions") if f.name != "is_outlier"],
        "customers": [f.name for f in schema.fields("customers") if f.name != "attributes"],
        "events": [f.name for f in schema.fields("events")],
        "feedback": [f.name for f in schema.fields("feedback")],
    }
    views = {
        "transactions": "tx_raw",
        "customers": "customers",
        "events": "events",
        "feedback": "feedback",
    }
    for table, view in views.items():
        columns = [c for c in _columns(con, view) if c not in PERSONAL]
        assert columns == expected[table], table
    assert set(_columns(con, "customers")) >= PERSONAL
    truth = pq.read_table(clean.paths["truth"])
    assert truth.column_names == ["customer_id", "persona", "persona_name"]
    assert not PERSONAL & set(truth.column_names)


def test_values_are_in_their_allowed_sets(con) -> None:
    assert set(con.execute("select distinct event_type from events").df().event_type) <= set(
        schema.EVENT_TYPES
    )
    assert set(
        con.execute("select distinct channel from tx where channel is not null").df().channel
    ) == set(CHANNELS)
    assert set(
        con.execute("select distinct category from tx where category is not null").df().category
    ) == set(CATEGORIES)
    assert con.execute("select distinct currency from tx").fetchall() == [("EUR",)]
    bad_scale = con.execute("""select count(*) from feedback where scale_max != case kind
        when 'nps' then 10 else 5 end or score < 0 or score > scale_max""").fetchone()[0]
    assert bad_scale == 0
    properties = con.execute("select properties from events using sample 2000").df().properties
    assert all(isinstance(json.loads(p), dict) for p in properties)
    ts = con.execute(
        "select min(ts), max(ts) from tx where year(ts) between 2000 and 2050"
    ).fetchone()
    assert str(ts[0]) >= "2023-01-01" and str(ts[1]) < "2025-01-01"
    returns = con.execute("""select count(*) filter (where order_id like 'R%'),
        count(*) filter (where order_id like 'R%' and (quantity >= 0 or amount >= 0))
        from tx""").fetchone()
    assert returns[0] > 0 and returns[1] == 0


def test_prospects_have_no_transactions_and_no_truth(con) -> None:
    # only the planted test's welcome offer makes some of them buy: orders numbered apart
    from personas.synthetic.campaign import PROSPECT_ORDER_BASE

    share, with_tx, bought, in_truth = con.execute(f"""
        select avg(is_prospect::int),
            count(*) filter (where is_prospect and customer_id in (
                select customer_id from tx
                where try_cast(substr(order_id, 2) as bigint) <= {PROSPECT_ORDER_BASE})),
            count(*) filter (where is_prospect and customer_id in (select customer_id from tx)),
            count(*) filter (where is_prospect and customer_id in (select customer_id from truth))
        from customers""").fetchone()
    assert 0.015 < share < 0.05
    assert with_tx == 0 and in_truth == 0
    assert bought > 0


def test_every_planted_customer_has_two_orders(con) -> None:
    too_few = con.execute(f"""
        select count(*) from truth left join (
            select customer_id, count(distinct order_id) as n from ({_clean_tx_sql()})
            where quantity > 0 group by 1) using (customer_id)
        where coalesce(n, 0) < 2""").fetchone()[0]
    assert too_few == 0


def test_persona_shares_are_unequal_and_large_enough(clean) -> None:
    sizes = np.array(list(clean.meta["persona_sizes"].values()))
    shares = sizes / sizes.sum()
    assert shares.min() >= 0.08 * 0.85  # sampling noise around the >= 8 % design shares
    assert shares.max() > 1.5 * shares.min()
    assert all(p.share >= 0.08 for p in PLANTED_PERSONAS)
    assert sum(p.share for p in PLANTED_PERSONAS) == pytest.approx(1.0)


def test_spend_is_skewed_and_december_peaks(con) -> None:
    clean = _clean_tx_sql()
    skew = con.execute(
        f"select skewness(s) from (select sum(amount) s from ({clean}) group by customer_id)"
    ).fetchone()[0]
    assert skew > 1.0
    by_month = con.execute(
        f"select month(ts), sum(amount) from ({clean}) group by 1 order by 2 desc"
    ).fetchall()
    assert by_month[0][0] == 12
    by_weekday = dict(
        con.execute(f"select dayofweek(ts), count(*) from ({clean}) group by 1").fetchall()
    )
    assert by_weekday[6] > 1.1 * by_weekday[2]  # Saturdays are busier than Tuesdays


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="noise"):
        generate(tmp_path, customers=10, noise="medium")
    with pytest.raises(ValueError, match="noise"):
        generate(tmp_path, customers=10, noise=1.5)
    with pytest.raises(ValueError, match="customers"):
        generate(tmp_path, customers=0)


# ---------------------------------------------------------------------------------------------
# Planted structure


def test_personas_are_recovered_on_clean_data(clean) -> None:
    ari, x, truth = _kmeans_ari(clean)
    assert ari >= 0.9
    rng = np.random.default_rng(0)
    sample = rng.choice(len(x), 3_000, replace=False)
    scores = {
        k: silhouette_score(
            x[sample], KMeans(n_clusters=k, n_init=4, random_state=0).fit_predict(x[sample])
        )
        for k in range(3, 10)
    }
    best = max(scores, key=scores.get)
    assert abs(best - len(PLANTED_PERSONAS)) <= 1, scores
    assert len(np.unique(truth)) == len(PLANTED_PERSONAS)


def test_personas_overlap_but_are_recoverable_on_noisy_data(noisy) -> None:
    ari, _, _ = _kmeans_ari(noisy)
    assert 0.75 <= ari < 0.97  # recoverable, yet clearly harder than clean
