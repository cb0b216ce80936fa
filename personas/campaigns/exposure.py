"""Campaign contacts and their outcomes, read from the lake in DuckDB.

The contract (``docs/data-contract.md``, "Campaign exposure"): an ``events`` row with
``event_type = campaign_contact`` whose ``properties`` name ``campaign``, ``variant`` (the
message) and ``arm`` (``treatment`` or ``control``; ``holdout`` counts as control, a contact
without an arm as treatment). Control customers are assigned to the campaign but not sent
anything; they get a contact row too, or the campaign has no control. Outcomes come from the
rest of the lake within ``window_days`` from the contact: a visit (a page view, app session,
product view, cart or checkout event), a conversion (an order line of positive value, or a
checkout event) and spend (order lines; a checkout event's ``spend`` property where a source
has no order lines). A customer counts once per campaign, with the first contact.
"""

from __future__ import annotations

import duckdb
import pandas as pd

VISIT_EVENTS = ("page_view", "app_session", "product_view", "add_to_cart", "checkout")
CONTROL_ARMS = ("control", "holdout", "hold-out", "no_contact")
TREATMENT_ARMS = ("treatment", "treated", "test", "contact")
COLUMNS = ("customer_id", "campaign", "variant", "arm", "ts", "visit", "conversion", "spend")


def contacts(con: duckdb.DuckDBPyConnection, window_days: int = 14) -> pd.DataFrame:
    """One row per customer and campaign: variant, arm, contact time and the outcomes.

    ``con`` has the lake's views (:meth:`personas.lake.Lake.connect`). ``arm`` is
    ``treatment`` or ``control``; an arm outside both vocabularies is kept as given, so the
    caller can name it (see :func:`personas.campaigns.uplift.measure`).
    """
    window = int(window_days)
    if window < 1:
        raise ValueError(f"window_days={window_days!r} must be at least 1")
    visits = ", ".join(f"'{e}'" for e in VISIT_EVENTS)
    ctrl = ", ".join(f"'{a}'" for a in CONTROL_ARMS)
    treat = ", ".join(f"'{a}'" for a in TREATMENT_ARMS)
    sql = f"""
    WITH raw AS (
        SELECT customer_id, ts,
               json_extract_string(properties, '$.campaign') AS campaign,
               json_extract_string(properties, '$.variant') AS variant,
               lower(trim(json_extract_string(properties, '$.arm'))) AS arm_raw
        FROM events WHERE event_type = 'campaign_contact'
    ), first AS (
        SELECT customer_id, coalesce(campaign, 'campaign') AS campaign, min(ts) AS ts,
               arg_min(variant, ts) AS variant, arg_min(arm_raw, ts) AS arm_raw
        FROM raw GROUP BY customer_id, coalesce(campaign, 'campaign')
    ), c AS (
        SELECT customer_id, campaign, ts,
               CASE WHEN arm_raw IS NULL OR arm_raw IN ({treat}) THEN 'treatment'
                    WHEN arm_raw IN ({ctrl}) THEN 'control' ELSE arm_raw END AS arm,
               variant
        FROM first
    ), ev AS (
        SELECT c.customer_id, c.campaign,
               max(CASE WHEN e.event_type IN ({visits}) THEN 1 ELSE 0 END) AS visit,
               max(CASE WHEN e.event_type = 'checkout' THEN 1 ELSE 0 END) AS checkout,
               sum(TRY_CAST(json_extract_string(e.properties, '$.spend') AS DOUBLE))
                   FILTER (WHERE e.event_type = 'checkout') AS checkout_spend
        FROM c JOIN events e ON e.customer_id = c.customer_id
             AND e.ts >= c.ts AND e.ts < c.ts + INTERVAL {window} DAY
             AND e.event_type IN ({visits})
        GROUP BY 1, 2
    ), tx AS (
        SELECT c.customer_id, c.campaign,
               max(CASE WHEN t.amount > 0 THEN 1 ELSE 0 END) AS bought,
               sum(t.amount) AS amount
        FROM c JOIN transactions t ON t.customer_id = c.customer_id
             AND t.ts >= c.ts AND t.ts < c.ts + INTERVAL {window} DAY
        GROUP BY 1, 2
    )
    SELECT c.customer_id, c.campaign,
           CASE WHEN c.arm = 'control' THEN NULL ELSE coalesce(c.variant, c.campaign) END
               AS variant,
           c.arm, c.ts,
           greatest(coalesce(ev.visit, 0), coalesce(tx.bought, 0))::INTEGER AS visit,
           greatest(coalesce(ev.checkout, 0), coalesce(tx.bought, 0))::INTEGER
               AS conversion,
           coalesce(tx.amount, 0) + coalesce(ev.checkout_spend, 0) AS spend
    FROM c LEFT JOIN ev USING (customer_id, campaign) LEFT JOIN tx USING (customer_id, campaign)
    ORDER BY c.campaign, c.customer_id
    """
    df = con.execute(sql).fetch_df()
    df["customer_id"] = df["customer_id"].astype(str)
    return df[list(COLUMNS)]
