"""One SQL query computes every per-customer feature as of a date.

Written once in a dialect-neutral subset of SQL (CTEs, CASE, standard aggregates, window
functions, ``date_diff``) so that the same definition can run on a distributed engine; DuckDB is
the embedded engine. Every table reference is filtered to ``ts < as_of`` first, so nothing at
or after the as-of date can leak into a feature.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import duckdb

from personas.features.catalog import (
    CATALOG,
    CATEGORY_PREFIX,
    CHANNEL_PREFIX,
    VIEW_PREFIX,
    lookup,
    slug,
)
from personas.features.value import value_sql
from personas.sqltext import ident, literal, quote

TOP_CATEGORIES = 8
TOP_CHANNELS = 6
SESSION_EVENTS = ("page_view", "product_view", "add_to_cart", "checkout", "app_session")
#: The category a product view names in its properties (JSON text), e.g. {"category": "home"}.
VIEW_CATEGORY = "json_extract_string(properties, '$.category')"


@dataclass
class Context:
    """What the lake holds as of the date: decides which features can be computed."""

    as_of: date
    tables: set[str]
    event_types: set[str] = field(default_factory=set)
    feedback_kinds: set[str] = field(default_factory=set)
    customer_columns: set[str] = field(default_factory=set)
    has_discount: bool = False
    has_sessions: bool = False
    categories: list[str] = field(default_factory=list)
    n_categories: int = 0  # distinct categories bought before as_of (for the diversity scale)
    channels: list[str] = field(default_factory=list)
    view_categories: list[str] = field(default_factory=list)  # product views' categories
    # customer-level features the mapping stored in customers.attributes under a feature's
    # name (a CRM extract without order lines); used only when there are no transactions
    attribute_features: list[str] = field(default_factory=list)

    @property
    def ts(self) -> str:
        return _ts(self.as_of)

    def ts_minus(self, days: int) -> str:
        return _ts(self.as_of - timedelta(days=days))


def probe(con: duckdb.DuckDBPyConnection, as_of: date, tables: set[str]) -> Context:
    """Look at the data before ``as_of`` to decide which features exist."""
    ctx = Context(as_of=as_of, tables=set(tables))
    t = ctx.ts
    if "transactions" in tables:
        ctx.has_discount = bool(
            con.execute(
                f"SELECT count(*) FROM transactions WHERE ts < {t} AND coalesce(discount, 0) <> 0"
            ).fetchone()[0]
        )
        cats = [
            r[0]
            for r in con.execute(
                f"SELECT category FROM transactions WHERE ts < {t} AND amount > 0 AND category IS "
                "NOT NULL GROUP BY 1 ORDER BY sum(amount) DESC, 1"
            ).fetchall()
        ]
        ctx.categories, ctx.n_categories = cats[:TOP_CATEGORIES], len(cats)
        chans = [
            r[0]
            for r in con.execute(
                f"SELECT channel FROM transactions WHERE ts < {t} AND amount > 0 AND channel "
                "IS NOT NULL GROUP BY 1 ORDER BY sum(amount) DESC, 1 "  # by spend, as categories
                f"LIMIT {TOP_CHANNELS}"
            ).fetchall()
        ]
        ctx.channels = chans if len(chans) > 1 else []
    if "events" in tables:
        ctx.event_types = {
            r[0]
            for r in con.execute(
                f"SELECT DISTINCT event_type FROM events WHERE ts < {t}"
            ).fetchall()
        }
        if "product_view" in ctx.event_types:
            ctx.view_categories = [
                r[0]
                for r in con.execute(
                    f"SELECT {VIEW_CATEGORY} AS c FROM events WHERE ts < {t} AND event_type = "
                    f"'product_view' AND {VIEW_CATEGORY} IS NOT NULL "  # no alias: Spark too
                    "GROUP BY 1 ORDER BY count(*) DESC, 1 "
                    f"LIMIT {TOP_CATEGORIES}"
                ).fetchall()
            ]
        ctx.has_sessions = bool(
            con.execute(
                f"SELECT count(*) FROM events WHERE ts < {t} AND session_id IS NOT NULL"
            ).fetchone()[0]
        )
    if "feedback" in tables:
        ctx.feedback_kinds = {
            r[0]
            for r in con.execute(f"SELECT DISTINCT kind FROM feedback WHERE ts < {t}").fetchall()
        }
    if "customers" in tables:
        cols = (
            "country",
            "region",
            "age_band",
            "income_band",
            "household",
            "loyalty_member",
            "loyalty_tier",
            "is_prospect",
            "first_seen",
        )
        row = con.execute(
            "SELECT " + ", ".join(f"count({c})" for c in cols) + " FROM customers"
        ).fetchone()
        ctx.customer_columns = {c for c, n in zip(cols, row, strict=True) if n}
        if "transactions" not in tables:
            ctx.attribute_features = attribute_features(con)
            ctx.categories = [
                f.removeprefix(CATEGORY_PREFIX)
                for f in ctx.attribute_features
                if f.startswith(CATEGORY_PREFIX)
            ]
            ctx.channels = [
                f.removeprefix(CHANNEL_PREFIX)
                for f in ctx.attribute_features
                if f.startswith(CHANNEL_PREFIX)
            ]
    return ctx


def attribute_features(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Keys of ``customers.attributes`` that name a catalogue feature, in catalogue order.

    A mapping stores a customer-level measure under a feature's name (``recency_days``,
    ``monetary``, ``cat_share__<category>``, ...) to say what it stands for; other keys stay
    descriptive attributes.
    """
    keys = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT unnest(json_keys(attributes)) FROM customers "
            "WHERE attributes IS NOT NULL"
        ).fetchall()
    ]
    known = []
    for k in keys:
        try:
            f = lookup(k)
        except KeyError:
            continue
        if f.kind == "numeric" and f.group != "value":
            known.append(k)
    order = {f.name: i for i, f in enumerate(CATALOG)}
    return sorted(known, key=lambda k: (order.get(k, len(order)), k))


#: Names of the intermediate results computed before the main query (temporary tables when
#: run as a plan, CTEs in the single-query form).
DAYS, TIMING, CAMPAIGN = "_personas_days", "_personas_timing", "_personas_campaign"
RFM, CATEGORY, ENGAGEMENT = "_personas_rfm", "_personas_category", "_personas_engagement"
#: A timestamp's UTC day as days since 1970-01-01 (an integer; see :func:`days_sql`).
DAY_NUMBER = "CAST(floor(epoch(ts) / 86400) AS INTEGER)"

#: The steps that read the purchase days: the days can be dropped once they have run.
DAY_STEPS = (DAYS, TIMING, CAMPAIGN)


def day_number(d: date) -> int:
    """The :data:`DAY_NUMBER` of a calendar day, for literals compared with ``d``."""
    return (d - date(1970, 1, 1)).days


def feature_plan(
    ctx: Context, extra: list[tuple[str, list[str]]] | None = None
) -> tuple[list[tuple[str, str]], str, list[str]]:
    """The feature computation as steps: ``[(name, sql), ...]``, then the final query.

    Each step is materialised (as a temporary table) before the final query, which reads it by
    name: purchase days, the gaps between them and campaign responses first (the days can then
    be dropped, :data:`DAY_STEPS`), then each large per-customer aggregation on its own, so
    only one of their hash tables is alive at a time; the final query joins one-row-per-
    customer tables. As one query DuckDB ran them side by side and peaked at 2.8-4.5 GB
    from run to run, and materialised every CTE used twice. ``extra`` adds relations with more
    per-customer columns (e.g. CLV scores) to the output. :func:`feature_query` is the same
    computation as one query.
    """
    steps: list[tuple[str, str]] = []
    ctes: list[str] = []
    joins: list[tuple[str, list[str]]] = []
    if "transactions" in ctx.tables:
        steps += [(DAYS, days_sql(ctx)), (TIMING, _timing_sql())]
        if "events" in ctx.tables and "campaign_contact" in ctx.event_types:
            steps.append((CAMPAIGN, _campaign_sql(ctx)))
        steps.append((RFM, _rfm_sql(ctx)))
        joins.append(
            (
                RFM,
                _RFM_COLS
                + (["discount_share", "discounted_order_share"] if ctx.has_discount else []),
            )
        )
        joins.append((TIMING, ["mean_days_between", "purchase_regularity"]))
        if ctx.categories:
            steps.append((CATEGORY, _category_sql(ctx)))
            joins.append(
                (
                    CATEGORY,
                    [CATEGORY_PREFIX + slug(c) for c in ctx.categories] + ["category_diversity"],
                )
            )
        if ctx.channels:
            joins.append((RFM, [CHANNEL_PREFIX + slug(c) for c in ctx.channels]))
    if "events" in ctx.tables and ctx.event_types:
        body, cols = _events_sql(ctx)
        if cols:
            steps.append((ENGAGEMENT, body))
            joins.append((ENGAGEMENT, cols))
        if "campaign_contact" in ctx.event_types and "transactions" in ctx.tables:
            joins.append((CAMPAIGN, ["campaign_response_rate"]))
    if "feedback" in ctx.tables and ctx.feedback_kinds:
        cte, cols = _feedback_cte(ctx)
        ctes.append(cte)
        joins.append(("sat", cols))
    if "customers" in ctx.tables:
        cte, cols = _customers_cte(ctx)
        ctes.append(cte)
        joins.append(("cust", cols))
    joins += extra or []
    base_parts = []
    if "transactions" in ctx.tables:
        base_parts.append(f"SELECT customer_id FROM {RFM}")
    if "customers" in ctx.tables:
        base_parts.append("SELECT customer_id FROM cust")
    ctes.append(f"base AS ({' UNION '.join(base_parts)})")
    select = ["base.customer_id"]
    columns: list[str] = []
    for alias, cols in joins:
        for c in cols:
            select.append(f"{alias}.{c}")
            columns.append(c)
    aliases = list(dict.fromkeys(a for a, _ in joins))
    from_ = "base" + "".join(
        f" LEFT JOIN {a} ON {a}.customer_id = base.customer_id" for a in aliases
    )
    lifecycle = _lifecycle(ctx)
    select.append(f"{lifecycle} AS lifecycle")
    ctes.append(f"joined AS (SELECT {', '.join(select)} FROM {from_})")
    vctes, vsql, vcols = value_sql(set(columns), "joined")
    sql = "WITH " + ",\n".join(ctes + vctes) + f"\n{vsql}\nORDER BY customer_id"
    return steps, sql, [*columns, "lifecycle", *vcols]


def feature_query(
    ctx: Context, extra: list[tuple[str, list[str]]] | None = None
) -> tuple[str, list[str]]:
    """The whole computation as one query (steps inlined as CTEs): portable to other engines."""
    steps, sql, columns = feature_plan(ctx, extra)
    if steps:
        inlined = ",\n".join(f"{name} AS ({body})" for name, body in steps)
        sql = f"WITH {inlined},\n{sql.removeprefix('WITH ')}"
    return sql, columns


_RFM_COLS = [
    "recency_days",
    "frequency",
    "monetary",
    "tenure_days",
    "orders_per_month",
    "avg_order_value",
    "items_per_order",
    "return_rate",
]


def days_sql(ctx: Context) -> str:
    """Purchase days: customer-days with a positive-value line (the days BG/NBD counts too).

    ``d`` is the UTC day as a number (days since 1970-01-01: integer arithmetic, where a cast of
    every line's time-zone-aware timestamp to a date cost 1.2 CPU-s per 20M lines); ``v`` is the
    day's spend; the first and last purchase times place campaign responses.
    """
    return f"""
        SELECT customer_id, {DAY_NUMBER} AS d, sum(amount) AS v,
               min(ts) AS first_ts, max(ts) AS last_ts
        FROM transactions WHERE ts < {ctx.ts} AND amount > 0
        GROUP BY customer_id, {DAY_NUMBER}"""


def _timing_sql() -> str:
    return f"""
        SELECT customer_id, avg(gap) AS mean_days_between,
               CASE WHEN count(gap) >= 2 AND avg(gap) > 0
                    THEN 1.0 / (1.0 + stddev_samp(gap) / avg(gap)) END AS purchase_regularity
        FROM (SELECT customer_id,
                     d - lag(d) OVER (PARTITION BY customer_id ORDER BY d) AS gap
              FROM {DAYS}) gaps
        WHERE gap IS NOT NULL GROUP BY customer_id"""


def _rfm_sql(ctx: Context) -> str:
    """Orders, then everything per customer that is per order (RFM, discounts, channel mix).

    Order lines are read straight from the lake by each step that needs them: a shared CTE of
    them would be materialised (20M lines cost 6.7 s and 1.4 GB more than reading twice).
    """
    t = ctx.ts
    d = _date(ctx.as_of)
    disc = ""
    if ctx.has_discount:
        disc = """,
        CASE WHEN sum(gross + discount) > 0 THEN sum(CASE WHEN gross > 0 THEN discount ELSE 0 END)
             / sum(CASE WHEN gross > 0 THEN gross + discount ELSE 0 END) END AS discount_share,
        CASE WHEN sum(CASE WHEN gross > 0 THEN 1 ELSE 0 END) > 0 THEN
             sum(CASE WHEN gross > 0 AND discount > 0 THEN 1 ELSE 0 END) * 1.0
             / sum(CASE WHEN gross > 0 THEN 1 ELSE 0 END) END AS discounted_order_share"""
    chan = "".join(
        f""",
        CASE WHEN sum(CASE WHEN gross > 0 THEN 1 ELSE 0 END) > 0 THEN
             sum(CASE WHEN gross > 0 AND channel = '{quote(c)}' THEN 1 ELSE 0 END) * 1.0
             / sum(CASE WHEN gross > 0 THEN 1 ELSE 0 END) END AS {CHANNEL_PREFIX + slug(c)}"""
        for c in ctx.channels
    )
    # one row per order; the order id itself is not kept (nothing after needs it, and at
    # millions of orders it would be most of this intermediate's memory)
    orders = f"""
        SELECT customer_id, min(ts) AS ts, sum(amount) AS amount,
               sum(CASE WHEN amount > 0 THEN amount ELSE 0 END) AS gross,
               sum(CASE WHEN amount < 0 THEN -amount ELSE 0 END) AS returned,
               sum(CASE WHEN quantity > 0 THEN quantity ELSE 0 END) AS units,
               sum(CASE WHEN amount > 0 THEN coalesce(discount, 0) ELSE 0 END) AS discount,
               min(channel) AS channel
        FROM transactions WHERE ts < {t} GROUP BY customer_id, order_id"""
    return f"""
        SELECT customer_id,
        date_diff('day', CAST(max(CASE WHEN gross > 0 THEN ts END) AS DATE), {d}) AS recency_days,
        sum(CASE WHEN gross > 0 THEN 1 ELSE 0 END) AS frequency,
        sum(amount) AS monetary,
        date_diff('day', CAST(min(ts) AS DATE), {d}) AS tenure_days,
        sum(CASE WHEN gross > 0 THEN 1 ELSE 0 END) * 30.44
            / greatest(date_diff('day', CAST(min(ts) AS DATE), {d}), 30.44) AS orders_per_month,
        CASE WHEN sum(CASE WHEN gross > 0 THEN 1 ELSE 0 END) > 0 THEN
            sum(gross) / sum(CASE WHEN gross > 0 THEN 1 ELSE 0 END) END AS avg_order_value,
        CASE WHEN sum(CASE WHEN gross > 0 THEN 1 ELSE 0 END) > 0 THEN
            sum(units) / sum(CASE WHEN gross > 0 THEN 1 ELSE 0 END) END AS items_per_order,
        CASE WHEN sum(gross) > 0 THEN sum(returned) / sum(gross) END AS return_rate{disc}{chan}
        FROM ({orders}) orders GROUP BY customer_id"""


def _category_sql(ctx: Context) -> str:
    """Shares of the top categories and the normalised entropy of the spend over all of them.

    The entropy is written as ln(total) - sum(s ln s) / total, which needs no per-customer
    total beforehand (a window over millions of customer-categories cost 1.8 s).
    """
    shares = ",\n".join(
        f"sum(CASE WHEN category = '{quote(c)}' THEN s ELSE 0 END) / sum(s) "
        f"AS {CATEGORY_PREFIX + slug(c)}"
        for c in ctx.categories
    )
    diversity = (
        f"greatest((ln(sum(s)) - sum(s * ln(s)) / sum(s)) / ln({ctx.n_categories}), 0.0)"
        if ctx.n_categories > 1
        else "0.0"
    )
    return f"""
        SELECT customer_id, {shares},
               {diversity} AS category_diversity
        FROM (SELECT customer_id, category, sum(amount) AS s FROM transactions
              WHERE ts < {ctx.ts} AND amount > 0 AND category IS NOT NULL
              GROUP BY customer_id, category) catspend
        GROUP BY customer_id"""


def _events_sql(ctx: Context) -> tuple[str, list[str]]:
    """Engagement from events: one pass of plain counts, one over sessions (when there are any).

    Sessions are first reduced to one row each (latest event, whether it was in the app), so
    the session features are plain sums instead of several ``count(DISTINCT ...)``.
    """
    et = ctx.event_types
    t, t90, t365 = ctx.ts, ctx.ts_minus(90), ctx.ts_minus(365)
    parts: list[str] = []
    cols: list[str] = []

    def n(kind: str, since: str | None = None) -> str:
        cond = f"event_type = '{kind}'" + (f" AND ts >= {since}" if since else "")
        return f"sum(CASE WHEN {cond} THEN 1 ELSE 0 END)"

    if "email_sent" in et:
        if "email_open" in et:
            parts.append(
                f"CASE WHEN {n('email_sent')} > 0 THEN least({n('email_open')} * 1.0 / "
                f"{n('email_sent')}, 1.0) END AS email_open_rate"
            )
            cols.append("email_open_rate")
        if "email_click" in et:
            parts.append(
                f"CASE WHEN {n('email_sent')} > 0 THEN least({n('email_click')} * 1.0 /"
                f" {n('email_sent')}, 1.0) END AS email_click_rate"
            )
            cols.append("email_click_rate")
    if "add_to_cart" in et and "checkout" in et:
        parts.append(
            f"CASE WHEN {n('add_to_cart')} > 0 THEN greatest(1.0 - {n('checkout')} * "
            f"1.0 / {n('add_to_cart')}, 0.0) END AS cart_abandonment_rate"
        )
        cols.append("cart_abandonment_rate")
    if "support_ticket" in et:
        parts.append(f"{n('support_ticket', t365)} AS support_contacts_365d")
        cols.append("support_contacts_365d")
    if "coupon_redeem" in et:
        parts.append(f"{n('coupon_redeem')} AS coupon_redemptions")
        cols.append("coupon_redemptions")
    if ctx.view_categories:
        views = n("product_view")
        for c in ctx.view_categories:
            name = VIEW_PREFIX + slug(c)
            hit = f"sum(CASE WHEN view_category = {literal(c)} "
            parts.append(
                f"CASE WHEN {views} > 0 THEN {hit}THEN 1 ELSE 0 END) * 1.0 / {views} END AS {name}"
            )
            cols.append(name)
    sess = [e for e in SESSION_EVENTS if e in et]
    scols: list[str] = []
    sparts: list[str] = []
    if sess and ctx.has_sessions:
        sparts.append(f"sum(CASE WHEN ts >= {t90} THEN 1 ELSE 0 END) AS sessions_90d")
        scols.append("sessions_90d")
        if "app_session" in et:
            sparts.append("sum(app) * 1.0 / count(*) AS app_session_share")
            scols.append("app_session_share")
    if not parts and not sparts:
        return "", []
    source = "events"
    if ctx.view_categories:  # the JSON is parsed once per product view, not once per category
        source = (
            f"(SELECT *, CASE WHEN event_type = 'product_view' THEN {VIEW_CATEGORY} END "
            "AS view_category FROM events)"
        )
    counts = (
        f"(SELECT {', '.join(['customer_id', *parts])} FROM {source} WHERE ts < {t} "
        "GROUP BY customer_id)"
    )
    if not sparts:
        return f"SELECT * FROM {counts} c", cols
    inlist = ", ".join(f"'{e}'" for e in sess)
    sessions = f"""(SELECT customer_id, {", ".join(sparts)} FROM (
            SELECT customer_id, session_id, max(ts) AS ts,
                   max(CASE WHEN event_type = 'app_session' THEN 1 ELSE 0 END) AS app
            FROM events WHERE ts < {t} AND session_id IS NOT NULL AND event_type IN ({inlist})
            GROUP BY customer_id, session_id) x GROUP BY customer_id)"""
    # every customer with events (``counts``) gets a row; one without a session had none
    return (
        f"""
        SELECT c.customer_id,
               {", ".join(["c." + x for x in cols] + [_no_session(x) for x in scols])}
        FROM {counts} c LEFT JOIN {sessions} s ON s.customer_id = c.customer_id""",
        cols + scols,
    )


def _no_session(col: str) -> str:
    """A customer with events but no session had no sessions (0), not an unknown number."""
    return f"coalesce(s.{col}, 0) AS {col}" if col == "sessions_90d" else f"s.{col}"


def _campaign_sql(ctx: Context) -> str:
    """Share of a customer's campaign contacts followed by a purchase within 14 days.

    Control-arm rows of a campaign test (``properties.arm``) were never contacted: left out.

    A purchase day holds a purchase in (contact, contact + 14 days] exactly when its last
    purchase is after the contact and its first is not after the window's end (the window is
    longer than a day), so the purchase days suffice.
    """
    return f"""
        SELECT c.customer_id,
               avg(CASE WHEN EXISTS (
                   SELECT 1 FROM {DAYS} o WHERE o.customer_id = c.customer_id
                   AND o.last_ts > c.ts AND o.first_ts <= c.ts + INTERVAL 14 DAY)
                   THEN 1.0 ELSE 0.0 END) AS campaign_response_rate
        FROM events c WHERE c.event_type = 'campaign_contact' AND c.ts < {ctx.ts}
          AND coalesce(lower(json_extract_string(c.properties, '$.arm')), 'treatment')
              NOT IN ('control', 'holdout', 'hold-out', 'no_contact')
        GROUP BY c.customer_id"""


def _feedback_cte(ctx: Context) -> tuple[str, list[str]]:
    t = ctx.ts
    k = ctx.feedback_kinds
    parts, cols = [], []
    if "nps" in k:
        parts.append("max(nps.nps_latest) AS nps_latest")
        parts.append(
            "CASE WHEN max(nps.nps_latest) >= 9 THEN 'promoter' WHEN max(nps.nps_latest)"
            " >= 7 THEN 'passive' WHEN max(nps.nps_latest) IS NOT NULL THEN 'detractor' "
            "END AS nps_class"
        )
        cols += ["nps_latest", "nps_class"]
    if "csat" in k:
        parts.append("avg(CASE WHEN f.kind = 'csat' THEN f.score / f.scale_max END) AS csat_mean")
        cols.append("csat_mean")
    if "review" in k:
        parts.append(
            "avg(CASE WHEN f.kind = 'review' THEN f.score / f.scale_max END) AS review_mean"
        )
        cols.append("review_mean")
    nps = f"""(SELECT customer_id, score * 10.0 / scale_max AS nps_latest FROM (
                SELECT customer_id, score, scale_max, row_number() OVER (
                    PARTITION BY customer_id ORDER BY ts DESC, source_row DESC) AS rn
                FROM feedback WHERE kind = 'nps' AND ts < {t}) x WHERE rn = 1)"""
    return (
        f"""sat AS (
        SELECT f.customer_id, {", ".join(parts)}
        FROM (SELECT * FROM feedback WHERE ts < {t}) f
        LEFT JOIN {nps} nps ON nps.customer_id = f.customer_id
        GROUP BY f.customer_id)""",
        cols,
    )


def _customers_cte(ctx: Context) -> tuple[str, list[str]]:
    t = ctx.ts
    have = ctx.customer_columns
    cols: list[str] = []
    sel = ["customer_id"]
    for c in ("country", "region", "age_band", "income_band", "household", "loyalty_tier"):
        if c in have:
            sel.append(c)
            cols.append(c)
    if "loyalty_member" in have:
        sel.append("CASE WHEN loyalty_member THEN 1.0 ELSE 0.0 END AS loyalty_member")
        cols.append("loyalty_member")
    for c in ctx.attribute_features:
        sel.append(
            f"TRY_CAST(json_extract_string(attributes, '$.\"{c}\"') AS DOUBLE) AS {ident(c)}"
        )
        cols.append(c)
    sel.append("is_prospect")
    # the latest row per customer wins: a newer export supersedes an older one
    return (
        f"""cust AS (
        SELECT {", ".join(sel)} FROM (
            SELECT *, row_number() OVER (PARTITION BY customer_id
                                         ORDER BY ingested_at DESC, source_row DESC) AS rn
            FROM customers WHERE first_seen IS NULL OR first_seen < {t}) x
        WHERE rn = 1)""",
        cols,
    )


def _lifecycle(ctx: Context) -> str:
    if "transactions" not in ctx.tables:
        if ctx.attribute_features:  # a customer-level extract: customers unless prospects
            return "CASE WHEN cust.is_prospect THEN 'prospect' ELSE 'customer' END"
        return "'prospect'"
    return (
        f"CASE WHEN {RFM}.customer_id IS NULL THEN 'prospect' "
        f"WHEN {RFM}.frequency = 0 THEN 'returns_only' "
        f"WHEN {RFM}.frequency = 1 THEN 'one_time' ELSE 'repeat' END"
    )


def _ts(d: date | datetime) -> str:
    return f"TIMESTAMPTZ '{d.isoformat()[:10]} 00:00:00+00'"


def _date(d: date) -> str:
    return f"DATE '{d.isoformat()[:10]}'"
