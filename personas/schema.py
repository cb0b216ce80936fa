"""The canonical data contract of the lake: four tables as explicit Arrow schemas.

Every source is mapped onto these tables at ingestion, so everything downstream (features,
personas, reports) reads one shape whatever the retailer's export looked like. Each field carries
its meaning, unit and allowed values in the Arrow field metadata, which is what the docs render.
Only ``transactions`` is required; the other tables enrich personas when present.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

SCHEMA_VERSION = 1

UTC_TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Field:
    """One canonical column: its Arrow type and what a user must know to map onto it."""

    name: str
    type: pa.DataType
    meaning: str
    unit: str = ""
    allowed: str = ""
    required: bool = False

    def arrow(self) -> pa.Field:
        meta = {"meaning": self.meaning, "unit": self.unit, "allowed": self.allowed}
        return pa.field(self.name, self.type, nullable=not self.required, metadata=meta)


# Lineage columns are added by ingestion itself; mappings never set them.
LINEAGE = (
    Field("source", pa.string(), "source file name (or SQL query label) the row came from",
          required=True),
    Field("source_row", pa.int64(), "1-based data row within the source (header excluded)",
          required=True),
    Field("ingested_at", UTC_TS, "when the ingest batch that wrote the row was committed",
          "UTC timestamp", required=True),
    Field("batch_id", pa.string(), "ingest batch (manifest entry) that wrote the row",
          required=True),
)

TRANSACTIONS = (
    Field("customer_id", pa.string(),
          "customer key; pseudonymised if the mapping marks it personal", required=True),
    Field("order_id", pa.string(), "order / invoice / basket the line belongs to", required=True),
    Field("ts", UTC_TS, "time of the order", "UTC timestamp", required=True),
    Field("product_id", pa.string(), "product / SKU code"),
    Field("category", pa.string(), "product category used for category-mix features"),
    Field("quantity", pa.float64(), "units on the line; negative = return or cancellation",
          "units", required=True),
    Field("unit_price", pa.float64(), "price of one unit before discount", "currency units",
          ">= 0"),
    Field("amount", pa.float64(),
          "line value paid (quantity x unit_price - discount); negative for returns",
          "currency units", required=True),
    Field("channel", pa.string(), "sales channel", "", "e.g. web, app, store, phone"),
    Field("discount", pa.float64(), "discount granted on the line", "currency units", ">= 0"),
    Field("currency", pa.string(), "ISO 4217 currency code", "", "e.g. GBP, USD, EUR"),
    Field("is_outlier", pa.bool_(),
          "flagged by the extreme-outlier rule (kept, not dropped)", "", "true/false",
          required=True),
)

CUSTOMERS = (
    Field("customer_id", pa.string(), "customer key (same key space as transactions)",
          required=True),
    Field("first_seen", UTC_TS, "first contact or signup", "UTC timestamp"),
    Field("country", pa.string(), "country name or ISO code"),
    Field("region", pa.string(), "region, state or area type (urban/suburban/rural)"),
    Field("age_band", pa.string(), "age band label, e.g. 25-34"),
    Field("income_band", pa.string(), "income band label"),
    Field("household", pa.string(), "household composition label"),
    Field("loyalty_member", pa.bool_(), "enrolled in the loyalty programme", "", "true/false"),
    Field("loyalty_tier", pa.string(), "loyalty tier label"),
    Field("is_prospect", pa.bool_(), "no purchase yet (a potential customer)", "", "true/false"),
    Field("attributes", pa.string(), "other source columns kept as a JSON object", "", "JSON"),
)

EVENT_TYPES = (
    "page_view", "product_view", "add_to_cart", "checkout", "email_sent", "email_open",
    "email_click", "app_session", "support_ticket", "campaign_contact", "coupon_redeem",
)

EVENTS = (
    Field("customer_id", pa.string(), "customer key", required=True),
    Field("ts", UTC_TS, "time of the event", "UTC timestamp", required=True),
    Field("event_type", pa.string(), "what happened", "", ", ".join(EVENT_TYPES) + ", or other",
          required=True),
    Field("channel", pa.string(), "channel of the event", "", "e.g. web, app, email, store"),
    Field("session_id", pa.string(), "session key grouping events"),
    Field("properties", pa.string(), "event details as a JSON object", "", "JSON"),
)

FEEDBACK_KINDS = ("nps", "csat", "ces", "review")

FEEDBACK = (
    Field("customer_id", pa.string(), "customer key", required=True),
    Field("ts", UTC_TS, "time the feedback was given", "UTC timestamp", required=True),
    Field("kind", pa.string(), "survey type", "", ", ".join(FEEDBACK_KINDS), required=True),
    Field("score", pa.float64(), "score given", "points", "0..scale_max", required=True),
    Field("scale_max", pa.float64(), "top of the scale (nps 10, csat 5, review 5)", "points",
          "> 0", required=True),
    Field("comment", pa.string(), "free-text comment (personal data must be removed upstream)"),
)

TABLES: dict[str, tuple[Field, ...]] = {
    "transactions": TRANSACTIONS,
    "customers": CUSTOMERS,
    "events": EVENTS,
    "feedback": FEEDBACK,
}

# The timestamp column each table is partitioned and as-of filtered by.
TIME_COLUMN = {"transactions": "ts", "customers": "first_seen", "events": "ts", "feedback": "ts"}

REQUIRED_TABLES = ("transactions",)


def fields(table: str) -> tuple[Field, ...]:
    """Data fields of a canonical table (lineage excluded)."""
    try:
        return TABLES[table]
    except KeyError:
        raise ValueError(
            f"unknown table {table!r}; expected one of {', '.join(TABLES)}"
        ) from None


def arrow_schema(table: str, lineage: bool = True) -> pa.Schema:
    """The Arrow schema of ``table`` as stored in the lake."""
    cols = list(fields(table)) + (list(LINEAGE) if lineage else [])
    return pa.schema(
        [f.arrow() for f in cols],
        metadata={"table": table, "schema_version": str(SCHEMA_VERSION)},
    )


def duckdb_type(t: pa.DataType) -> str:
    """DuckDB SQL type for a canonical Arrow type."""
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ"
    return {
        pa.string(): "VARCHAR",
        pa.float64(): "DOUBLE",
        pa.int64(): "BIGINT",
        pa.bool_(): "BOOLEAN",
    }[t]
