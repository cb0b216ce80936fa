"""The canonical data contract of the lake: four tables as explicit Arrow schemas.

Every source is mapped onto these tables at ingestion, so everything downstream (features,
personas, reports) reads one shape whatever the retailer's export looked like. Each field carries
its meaning, unit and allowed values in the Arrow field metadata, which is what the docs render.
Only ``transactions`` is required; the other tables enrich personas when present.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    Field(
        "source",
        pa.string(),
        "source file name (or SQL query label) the row came from",
        required=True,
    ),
    Field(
        "source_row",
        pa.int64(),
        "1-based data row within the source (header excluded)",
        required=True,
    ),
    Field(
        "ingested_at",
        UTC_TS,
        "when the ingest batch that wrote the row was committed",
        "UTC timestamp",
        required=True,
    ),
    Field(
        "batch_id",
        pa.string(),
        "ingest batch (one Delta commit per table) that wrote the row",
        required=True,
    ),
)

TRANSACTIONS = (
    Field(
        "customer_id",
        pa.string(),
        "customer key; pseudonymised if the mapping marks it personal",
        required=True,
    ),
    Field("order_id", pa.string(), "order / invoice / basket the line belongs to", required=True),
    Field("ts", UTC_TS, "time of the order", "UTC timestamp", required=True),
    Field("product_id", pa.string(), "product / SKU code"),
    Field("category", pa.string(), "product category used for category-mix features"),
    Field(
        "quantity",
        pa.float64(),
        "units on the line; negative = return or cancellation",
        "units",
        required=True,
    ),
    Field(
        "unit_price", pa.float64(), "price of one unit before discount", "currency units", ">= 0"
    ),
    Field(
        "amount",
        pa.float64(),
        "line value paid (quantity x unit_price - discount); negative for returns",
        "currency units",
        required=True,
    ),
    Field("channel", pa.string(), "sales channel", "", "e.g. web, app, store, phone"),
    Field("discount", pa.float64(), "discount granted on the line", "currency units", ">= 0"),
    Field("currency", pa.string(), "ISO 4217 currency code", "", "e.g. GBP, USD, EUR"),
    Field(
        "is_outlier",
        pa.bool_(),
        "flagged by the extreme-outlier rule (kept, not dropped)",
        "",
        "true/false",
        required=True,
    ),
)

CUSTOMERS = (
    Field(
        "customer_id", pa.string(), "customer key (same key space as transactions)", required=True
    ),
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
    "page_view",
    "product_view",
    "add_to_cart",
    "checkout",
    "email_sent",
    "email_open",
    "email_click",
    "app_session",
    "support_ticket",
    "campaign_contact",
    "coupon_redeem",
)

EVENTS = (
    Field("customer_id", pa.string(), "customer key", required=True),
    Field("ts", UTC_TS, "time of the event", "UTC timestamp", required=True),
    Field(
        "event_type",
        pa.string(),
        "what happened",
        "",
        ", ".join(EVENT_TYPES) + ", or other",
        required=True,
    ),
    Field("channel", pa.string(), "channel of the event", "", "e.g. web, app, email, store"),
    Field("session_id", pa.string(), "session key grouping events"),
    Field("properties", pa.string(), "event details as a JSON object", "", "JSON"),
)

# Campaign exposure: the keys of a campaign_contact event's properties (see the docs section).
CAMPAIGN_PROPERTIES: dict[str, str] = {
    "campaign": "campaign (test) name; contacts with the same name form one campaign",
    "variant": "the message / creative sent (treatment arm); empty for the control arm",
    "arm": "`treatment` or `control` (`holdout` counts as control); empty = treatment",
}

FEEDBACK_KINDS = ("nps", "csat", "ces", "review")

FEEDBACK = (
    Field("customer_id", pa.string(), "customer key", required=True),
    Field("ts", UTC_TS, "time the feedback was given", "UTC timestamp", required=True),
    Field("kind", pa.string(), "survey type", "", ", ".join(FEEDBACK_KINDS), required=True),
    Field("score", pa.float64(), "score given", "points", "0..scale_max", required=True),
    Field(
        "scale_max",
        pa.float64(),
        "top of the scale (nps 10, csat 5, review 5)",
        "points",
        "> 0",
        required=True,
    ),
    Field("comment", pa.string(), "free-text comment (personal data must be removed upstream)"),
)

# Rows that failed a rule, and exact duplicates, land here instead of the canonical tables.
QUARANTINE = (
    Field(
        "table",
        pa.string(),
        "canonical table the row was meant for",
        "",
        ", ".join(("transactions", "customers", "events", "feedback")),
        required=True,
    ),
    *LINEAGE,
    Field(
        "rule",
        pa.string(),
        "name of the rule that rejected the row",
        "",
        "see the rules table below",
        required=True,
    ),
    Field(
        "reason",
        pa.string(),
        "what is wrong, naming the column and the offending value",
        required=True,
    ),
    Field("column", pa.string(), "canonical column at fault, when one is"),
    Field(
        "raw",
        pa.string(),
        "the source values of the row (canonical values for duplicates), without any column "
        "declared personal (dropped, hashed or pseudonymised)",
        "",
        "JSON",
    ),
)

TABLES: dict[str, tuple[Field, ...]] = {
    "transactions": TRANSACTIONS,
    "customers": CUSTOMERS,
    "events": EVENTS,
    "feedback": FEEDBACK,
}

# Rejecting rules, in the order they are tried: the first that fires names the row's rule.
RULES: dict[str, str] = {
    "excluded": "the first output of a source has a where: condition and the row does not meet "
    "it (counted, never silently dropped)",
    "missing_customer_id": "customer_id is empty, so the row cannot be tied to a customer",
    "bad_value": "a value is present but does not parse as its canonical type (the reason "
    "names the column and the text)",
    "missing_required": "a required canonical column is empty",
    "impossible_date": "the time column is before the rule's min: date or later than "
    "max_future_days after the ingest",
    "non_product": "transactions: postage, fees, adjustments, vouchers (product ids, pattern "
    "or categories listed in the mapping)",
    "negative_price": "transactions: unit_price below zero",
    "zero_price": "transactions: unit_price (or amount, if no price is mapped) is zero",
    "score_out_of_range": "feedback: score below 0 or above scale_max",
    "duplicate": "an exact duplicate (all canonical columns equal) of a row kept earlier in "
    "the batch or already in the lake",
}
# Flagging rules: the row is kept and counted in the batch record.
FLAGS: dict[str, str] = {
    "cancellation": "transactions: order_id starts with the cancellation prefix; quantity and "
    "amount are made negative",
    "return": "transactions: quantity below zero (returns and cancellations)",
    "extreme_outlier": "transactions: |quantity| or |amount| above the rule's limits; kept "
    "with is_outlier = true for features to decide",
    "unmatched_<lookup>": "a lookup (e.g. products for categories) had no row for the key; "
    "the looked-up columns are empty",
    "nonexistent_time": "a local time the clock skips at a change to summer time (read by the "
    "column's nonexistent: rule)",
    "ambiguous_time": "a local time that occurs twice at a change back from summer time (read "
    "by the column's ambiguous: rule)",
}

# The timestamp column each table is partitioned and as-of filtered by.
TIME_COLUMN = {"transactions": "ts", "customers": "first_seen", "events": "ts", "feedback": "ts"}

REQUIRED_TABLES = ("transactions",)

# Tables stored in year=/month= partitions of their time column (customers are one small table).
PARTITIONED = ("transactions", "events", "feedback")
#: Delta partition columns of the partitioned tables (values only in the path, as Hive does).
PARTITION_BY = ["year", "month"]
#: The lake's table of rejected rows and duplicates (of every table).
QUARANTINE_TABLE = "quarantine"

#: The quarantine's columns (one table for the rejected rows and duplicates of every table).
QUARANTINE_SCHEMA = pa.schema(
    [
        ("table", pa.string()),
        ("source", pa.string()),
        ("source_row", pa.int64()),
        ("ingested_at", pa.timestamp("us", tz="UTC")),
        ("batch_id", pa.string()),
        ("rule", pa.string()),
        ("reason", pa.string()),
        ("column", pa.string()),
        ("raw", pa.string()),
    ]
)


def fields(table: str) -> tuple[Field, ...]:
    """Data fields of a canonical table (lineage excluded), or of ``quarantine``."""
    if table == "quarantine":
        return QUARANTINE
    try:
        return TABLES[table]
    except KeyError:
        raise ValueError(f"unknown table {table!r}; expected one of {', '.join(TABLES)}") from None


def arrow_schema(table: str, lineage: bool = True) -> pa.Schema:
    """The Arrow schema of ``table`` as stored in the lake."""
    cols = list(fields(table)) + (list(LINEAGE) if lineage and table in TABLES else [])
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


def render_markdown() -> str:
    """The data contract as Markdown (``docs/data-contract.md`` is this text, checked by a test).

    Regenerate with ``uv run python -m personas.schema > docs/data-contract.md``.
    """
    out = [
        "# The lake's data contract",
        "",
        "<!-- Generated from personas/schema.py by `uv run python -m personas.schema > "
        "docs/data-contract.md`; edit the schema, not this file (a test keeps them equal). -->",
        "",
        f"Schema version **{SCHEMA_VERSION}**. Every source is mapped onto these four tables at "
        "ingestion (see [ingestion.md](ingestion.md)); features, personas and reports read only "
        "this shape. Only `transactions` is required; the other tables enrich the personas when "
        "present. All timestamps are UTC and time-zone aware (`TIMESTAMP WITH TIME ZONE`). "
        "Personal data (names, e-mails, phones, addresses) never enters the lake in clear: a "
        "mapping drops it or replaces it with a salted hash.",
        "",
        "Layout: every table, and `quarantine`, is a Delta Lake table: "
        "`<lake>/<table>/_delta_log/` and `<lake>/<table>/year=YYYY/month=M/part-<batch>-<i>"
        ".parquet` (partitioned by `year` and `month` of the table's time column, values in the "
        "path only; `customers` and `quarantine` are not partitioned). Each ingest is one Delta "
        "commit per table it touches, carrying the batch record (below) as commit metadata. A "
        "batch counts once every table it names holds its commit, so personas' readers never "
        "see half an ingest.",
        "",
    ]

    def table(title: str, flds: tuple[Field, ...], time_col: str | None) -> None:
        out.extend([f"## {title}", ""])
        if time_col and title.strip("`").split("`")[0] in PARTITIONED:
            out.extend([f"Partitioned and as-of filtered by `{time_col}`.", ""])
        elif time_col:
            out.extend([f"Not partitioned; as-of filtered by `{time_col}` when it is set.", ""])
        out.append("| column | type | required | unit | allowed values | meaning |")
        out.append("|---|---|---|---|---|---|")
        for f in flds:
            out.append(
                f"| `{f.name}` | {duckdb_type(f.type)} | {'yes' if f.required else ''} | "
                f"{_md(f.unit)} | {_md(f.allowed)} | {_md(f.meaning)} |"
            )
        out.append("")

    for name, flds in TABLES.items():
        table(
            f"`{name}`" + (" (required)" if name in REQUIRED_TABLES else ""),
            flds,
            TIME_COLUMN[name],
        )
    table("Lineage columns (every table)", LINEAGE, None)
    out.extend(
        [
            "`ingested_at`/`batch_id` say which ingest wrote a row; `source`/`source_row` "
            "find it again in the original file.",
            "",
        ]
    )
    table("`quarantine`", QUARANTINE, None)
    out += [
        "Every input row ends in exactly one place: a canonical table (accepted), "
        "`quarantine` with the rule that rejected it, or `quarantine` as a duplicate. "
        "**rows in = accepted + quarantined + duplicates** is checked for every source "
        "before a batch commits, and recorded in its commits with per-rule counts.",
        "",
        "## Rules",
        "",
        "Rejecting rules (the row goes to quarantine; the first rule that fires, in this "
        "order, names it):",
        "",
        "| rule | when |",
        "|---|---|",
        *[f"| `{k}` | {_md(v)} |" for k, v in RULES.items()],
        "",
        "Flags (the row is kept and counted):",
        "",
        "| flag | when |",
        "|---|---|",
        *[f"| `{k}` | {_md(v)} |" for k, v in FLAGS.items()],
        "",
        "## Campaign exposure",
        "",
        "A campaign contact is an `events` row with `event_type = campaign_contact`; its "
        "`properties` JSON names:",
        "",
        "| key | meaning |",
        "|---|---|",
        *[f"| `{k}` | {_md(v)} |" for k, v in CAMPAIGN_PROPERTIES.items()],
        "",
        "For a randomised test, customers of the control (hold-out) arm are assigned to the "
        "campaign but not sent anything, and still get a contact row with `arm: control` at the "
        "time they would have been contacted; without such rows a campaign has no control and "
        "its response rates are reported as not causal. A mapping maps an export's arm column "
        "with an expression, e.g. `properties: {expr: \"to_json({campaign: 'spring', variant: "
        "msg, arm: CASE WHEN grp = 'holdout' THEN 'control' ELSE 'treatment' END})\"}` "
        "(the shipped `hillstrom` mapping does this). Outcomes come from the rest of the lake "
        "within `campaigns.window_days` (default 14) from the contact: a visit (`page_view`, "
        "`app_session`, `product_view`, `add_to_cart` or `checkout` event, or an order), a "
        "conversion (an order line of positive value or a `checkout` event) and spend (order "
        "line amounts, plus a `checkout` event's `spend` property where a source has no order "
        "lines). A customer counts once per campaign, with the first contact.",
        "",
        "## Batch record (Delta commit metadata)",
        "",
        "Every Delta commit of an ingest has, in its `commitInfo`: `personas.batch_id`, "
        "`personas.tables` (the tables the batch commits to, comma-separated), "
        "`personas.rows` and `personas.checksum` (rows written to this table and the sum of "
        "their `source_row`, counted by the writer) and `personas.batch`, the batch record as "
        "JSON: `batch_id`, `committed_at`, `mapping`, "
        "`mapping_hash`, `schema_version`, `seconds`, the data files it added per table, "
        "`written` (rows and checksum per table), `sizes` (bytes of each file as written), "
        "and per source: `source`, `path`, `fingerprint` (sha256 of the file's bytes, or of "
        "a query's result), `bytes`, `rows_in`, `accepted`, `quarantined`, `duplicates`, "
        "`rules` (count per rule), `flags` (count per flag among accepted rows), `outputs` "
        "(the same counts per output table) and `seconds`.",
        "",
        "`personas lake forget <batch>` makes one Delta commit per table the batch touched, "
        "with `personas.forget` (the batch id) in its `commitInfo` and a `remove` action for "
        "each of the batch's files; from the first such commit on the batch no longer counts.",
        "",
    ]
    return "\n".join(out)


def table_schema(table: str) -> pa.Schema:
    """The Arrow schema of ``table`` as a Delta table: lineage, then the partition columns."""
    if table == QUARANTINE_TABLE:
        return QUARANTINE_SCHEMA
    base = arrow_schema(table)
    if table in PARTITIONED:
        base = pa.schema([*base, pa.field("year", pa.int32()), pa.field("month", pa.int32())])
    return base


def delta_schema(table: str) -> Any:
    from deltalake import Schema

    return Schema.from_arrow(table_schema(table).remove_metadata())


def _md(s: str) -> str:
    return s.replace("|", "\\|")


if __name__ == "__main__":  # pragma: no cover - the doc generator
    print(render_markdown(), end="")
