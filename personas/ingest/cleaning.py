"""The named cleaning rules, compiled to SQL over one output's mapped columns.

Rules come in two kinds. *Rejecting* rules send a row to quarantine with the rule's name and a
reason naming the value; the first rule that fires wins, in the order of
:data:`personas.schema.RULES`. *Flagging* rules keep the row and count it (cancellations,
returns, extreme outliers, lookups without a match): an outlier is real data a wholesaler may
produce, so features decide what to do with it.

Rules only look at the row itself, which is what makes ingesting day by day give the same lake
as ingesting everything at once. (Exact duplicates, the one rule that compares rows, is applied
by :mod:`personas.ingest.dedupe` after these.)

The verdict is computed once per row as the index of the first failing check (``_ck``); the
rule name, reason and column are then looked up from that index, so the reason text (string
building) is only ever evaluated for rejected rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from personas import schema
from personas.ingest.clockchange import ambiguous_sql, nonexistent_sql
from personas.ingest.mapping import Output
from personas.ingest.parsing import FieldSQL
from personas.sqltext import quote

ORDER = tuple(k for k in schema.RULES if k != "duplicate")
FLAGS = ("cancellation", "return", "extreme_outlier")
DEFAULT_SCALE = {"nps": 10.0, "csat": 5.0, "ces": 7.0, "review": 5.0}


@dataclass
class Check:
    """One rejecting rule: SQL condition, reason and (for bad values) the column at fault."""

    rule: str
    cond: str
    reason: str
    column: str | None = None


@dataclass
class RuleSet:
    """SQL pieces for one output: derived columns, rejecting checks and flags."""

    derive: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    flags: dict[str, str] = field(default_factory=dict)
    outlier: str = "false"

    def verdict(self) -> str:
        """1-based index of the first failing check, NULL when the row passes."""
        if not self.checks:
            return "CAST(NULL AS SMALLINT)"
        whens = " ".join(f"WHEN {c.cond} THEN {i}" for i, c in enumerate(self.checks, 1))
        return f"CAST(CASE {whens} END AS SMALLINT)"

    def by_verdict(self, what: str) -> str:
        """``rule``, ``reason`` or ``column`` of the failing check (reads ``_ck``)."""
        if not self.checks:
            return "CAST(NULL AS VARCHAR)"
        if what in ("rule", "column"):
            names = [c.rule if what == "rule" else c.column for c in self.checks]
            items = ", ".join(f"'{n}'" if n else "CAST(NULL AS VARCHAR)" for n in names)
            return f"[{items}][_ck]"
        whens = " ".join(f"WHEN {i} THEN {c.reason}" for i, c in enumerate(self.checks, 1))
        return f"CAST(CASE _ck {whens} END AS VARCHAR)"


def rules_for(
    out: Output,
    exprs: dict[str, FieldSQL],
    now: datetime,
    *,
    primary_where: str | None = None,
    lookup_flags: dict[str, str] | None = None,
) -> RuleSet:
    """Compile the rules of ``out`` (conditions refer to ``c_<column>`` and source columns).

    ``primary_where`` is the ``where:`` of a source's first output: rows outside it are counted
    under ``excluded`` rather than vanishing.
    """
    rs = RuleSet()
    r = out.rules
    t = out.table
    mapped = set(exprs)
    if t == "transactions":
        _derive_transactions(rs, out, mapped)
    elif t == "feedback":
        if "scale_max" not in mapped:
            cases = " ".join(f"WHEN '{k}' THEN {v}" for k, v in DEFAULT_SCALE.items())
            rs.derive.append(f"CASE lower(c_kind) {cases} END AS c_scale_max")
        rs.derive.append("lower(c_kind) AS c_kind")
    elif t == "events":
        rs.derive.append("lower(c_event_type) AS c_event_type")

    def check(rule: str, cond: str, reason: str, column: str | None = None) -> None:
        rs.checks.append(Check(rule, f"({cond})", reason, column))

    if primary_where:
        check(
            "excluded",
            f"NOT coalesce(({primary_where}), false)",
            f"'not selected by where: {quote(_short(primary_where))}'",
        )
    check(
        "missing_customer_id",
        "c_customer_id IS NULL",
        "'customer_id is empty: the row cannot be tied to a customer'",
        "customer_id",
    )
    for name, e in exprs.items():
        if e.source is not None:
            src = f" (column {e.column})" if e.column else ""
            check(
                "bad_value",
                f"c_{name} IS NULL AND {e.source} IS NOT NULL",
                f"'{name}{quote(src)}: ''' || left({e.source}, 60) "
                f"|| ''' is not {quote(e.expects)}'",
                name,
            )
    for f in schema.fields(t):
        if f.required and f.name not in ("customer_id", "is_outlier"):
            check(
                "missing_required",
                f"c_{f.name} IS NULL",
                f"'{f.name} is empty but required'",
                f.name,
            )
    tname = schema.TIME_COLUMN[t]
    tcol = "c_" + tname
    lo = r.impossible_date.min
    hi = (now + timedelta(days=r.impossible_date.max_future_days)).strftime("%Y-%m-%d %H:%M:%S")
    check(
        "impossible_date",
        f"{tcol} < TIMESTAMPTZ '{lo} 00:00:00+00' OR {tcol} > TIMESTAMPTZ '{hi}+00'",
        f"'{tname} ' || strftime({tcol}, '%Y-%m-%d %H:%M') || "
        f"' UTC is outside the plausible range {lo} .. {hi[:10]}'",
        tname,
    )
    if t == "transactions":
        if r.non_product is not None:
            np_ = r.non_product
            conds = []
            if np_.product_ids:
                conds.append(
                    "c_product_id IN (" + ", ".join(f"'{quote(x)}'" for x in np_.product_ids) + ")"
                )
            if np_.product_id_pattern:
                conds.append(f"regexp_full_match(c_product_id, '{quote(np_.product_id_pattern)}')")
            if np_.categories:
                conds.append(
                    "c_category IN (" + ", ".join(f"'{quote(x)}'" for x in np_.categories) + ")"
                )
            if conds:
                check(
                    "non_product",
                    " OR ".join(conds),
                    "'product_id ''' || coalesce(c_product_id, '') || ''' (category ''' || "
                    "coalesce(c_category, '') || ''') is not a product (postage, fee, "
                    "adjustment or voucher line)'",
                    "product_id",
                )
        if r.negative_price:
            check(
                "negative_price",
                "c_unit_price < 0",
                "'unit_price ' || c_unit_price || ' is negative'",
                "unit_price",
            )
        if r.zero_price:
            check(
                "zero_price",
                "coalesce(c_unit_price, abs(c_amount)) = 0",
                "'price is zero (free item, write-off or test line)'",
                "unit_price",
            )
        if r.cancellation is not None and r.cancellation.order_id_prefix:
            rs.flags["cancellation"] = (
                f"starts_with(c_order_id, '{quote(r.cancellation.order_id_prefix)}')"
            )
        rs.flags["return"] = "c_quantity < 0"
        if r.extreme_outlier is not None:
            o = r.extreme_outlier
            rs.outlier = (
                f"(abs(c_quantity) > {o.quantity_abs_max} OR abs(c_amount) > {o.amount_abs_max})"
            )
            rs.flags["extreme_outlier"] = rs.outlier
    if t == "feedback" and r.score_range:
        check(
            "score_out_of_range",
            "c_score < 0 OR c_score > c_scale_max",
            "'score ' || c_score || ' is outside 0 .. ' || c_scale_max",
            "score",
        )
    for name, cond in (lookup_flags or {}).items():
        rs.flags[name] = cond
    _clock_flags(rs, exprs)
    order = {k: i for i, k in enumerate(ORDER)}
    rs.checks.sort(key=lambda c: order[c.rule])  # stable: bad values keep column order
    return rs


def _clock_flags(rs: RuleSet, exprs: dict[str, FieldSQL]) -> None:
    """Flags ``nonexistent_time`` and ``ambiguous_time``: local times at clock changes.

    Only for timestamps read as local time in a zone other than UTC; see
    :mod:`personas.ingest.clockchange`.
    """
    local = {name: e for name, e in exprs.items() if e.naive is not None}
    for flag, sql in (("nonexistent_time", nonexistent_sql), ("ambiguous_time", ambiguous_sql)):
        # the lookup on the value read (c_<name>): the text is parsed again only on change days
        conds = [sql(str(e.naive), e.timezone, f"c_{name}") for name, e in local.items()]
        conds = [c for c in conds if c != "false"]
        if conds:
            rs.flags[flag] = "coalesce(" + " OR ".join(conds) + ", false)"


def _derive_transactions(rs: RuleSet, out: Output, mapped: set[str]) -> None:
    """Defaults users expect: quantity 1, amount = quantity x price, cancellations negative."""
    q = "c_quantity" if "quantity" in mapped else "1.0"
    r = out.rules
    if r.cancellation is not None and r.cancellation.order_id_prefix:
        pre = quote(r.cancellation.order_id_prefix)
        q = f"(CASE WHEN starts_with(c_order_id, '{pre}') THEN -abs({q}) ELSE {q} END)"
        sign_amount = (
            f"(CASE WHEN starts_with(c_order_id, '{pre}') THEN -abs(c_amount) ELSE c_amount END)"
        )
    else:
        sign_amount = "c_amount"
    rs.derive.append(f"{q} AS c_quantity")
    if "amount" in mapped:
        rs.derive.append(f"{sign_amount} AS c_amount")
    else:
        rs.derive.append(
            f"round({q} * c_unit_price - coalesce(c_discount, 0) * sign({q}), 6) AS c_amount"
        )
    if "unit_price" not in mapped:
        rs.derive.append(f"CASE WHEN {q} <> 0 THEN abs(c_amount / {q}) END AS c_unit_price")
    if "order_id" not in mapped:
        rs.derive.append("c_customer_id || '@' || strftime(c_ts, '%Y-%m-%d') AS c_order_id")


def _short(s: str, n: int = 80) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 3] + "..."
