"""The named cleaning rules, compiled to SQL over one output's mapped columns.

Rules come in two kinds. *Rejecting* rules send a row to quarantine with the rule's name and a
reason naming the value; the first rule that fires wins, in the order listed in :data:`ORDER`.
*Flagging* rules keep the row and count it (cancellations, returns, extreme outliers): an
outlier is real data a wholesaler may produce, so features decide what to do with it.
Rules only look at the row itself, which is what makes ingesting day by day give the same lake
as ingesting everything at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from personas import schema
from personas.mapping import Output
from personas.parsing import FieldSQL

ORDER = ("missing_customer_id", "bad_value", "missing_required", "impossible_date",
         "non_product", "negative_price", "zero_price", "score_out_of_range")
FLAGS = ("cancellation", "return", "extreme_outlier")
DEFAULT_SCALE = {"nps": 10.0, "csat": 5.0, "ces": 7.0, "review": 5.0}


@dataclass
class RuleSet:
    """SQL pieces for one output: derived columns, rejecting checks and flags."""

    derive: list[str] = field(default_factory=list)
    checks: list[tuple[str, str, str, str]] = field(default_factory=list)
    flags: dict[str, str] = field(default_factory=dict)
    outlier: str = "false"

    def rule_case(self) -> str:
        return self._case(1)

    def reason_case(self) -> str:
        return self._case(2)

    def bad_field_case(self) -> str:
        return self._case(3)

    def _case(self, i: int) -> str:
        if not self.checks:
            return "CAST(NULL AS VARCHAR)"
        whens = " ".join(f"WHEN {c[0]} THEN {c[i]}" for c in self.checks)
        return f"(CASE {whens} END)"


def rules_for(out: Output, exprs: dict[str, FieldSQL], now: datetime) -> RuleSet:
    """Compile the rules of ``out`` (conditions refer to ``c_<column>`` / ``s_<column>``)."""
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

    def check(rule: str, cond: str, reason: str, bad_field: str = "NULL") -> None:
        rs.checks.append((f"({cond})", f"'{rule}'", reason, bad_field))

    check("missing_customer_id", "c_customer_id IS NULL",
          "'customer_id is empty: the row cannot be tied to a customer'")
    for name, e in exprs.items():
        if e.source is not None:
            check("bad_value", f"s_{name} IS NOT NULL AND c_{name} IS NULL",
                  f"'{name}: ''' || left(s_{name}, 60) || ''' is not {_q(e.expects)}'",
                  f"'{name}'")
    for f in schema.fields(t):
        if f.required and f.name not in ("customer_id", "is_outlier"):
            check("missing_required", f"c_{f.name} IS NULL",
                  f"'{f.name} is empty but required'")
    tcol = "c_" + schema.TIME_COLUMN[t]
    lo = r.impossible_date.min
    hi = (now + timedelta(days=r.impossible_date.max_future_days)).strftime("%Y-%m-%d %H:%M:%S")
    check("impossible_date",
          f"{tcol} < TIMESTAMPTZ '{lo} 00:00:00+00' OR {tcol} > TIMESTAMPTZ '{hi}+00'",
          f"'{schema.TIME_COLUMN[t]} ' || strftime({tcol}, '%Y-%m-%d %H:%M') || "
          f"' is outside the plausible range {lo} .. {hi[:10]}'")
    if t == "transactions":
        if r.non_product is not None:
            np_ = r.non_product
            conds = []
            if np_.product_ids:
                conds.append("c_product_id IN (" + ", ".join(f"'{_q(x)}'" for x in
                                                             np_.product_ids) + ")")
            if np_.product_id_pattern:
                conds.append(f"regexp_full_match(c_product_id, '{_q(np_.product_id_pattern)}')")
            if np_.categories:
                conds.append("c_category IN (" + ", ".join(f"'{_q(x)}'" for x in
                                                           np_.categories) + ")")
            if conds:
                check("non_product", " OR ".join(conds),
                      "'product_id ''' || coalesce(c_product_id, '') || ''' is not a product "
                      "(postage, fee, adjustment or voucher line)'")
        if r.negative_price:
            check("negative_price", "c_unit_price < 0",
                  "'unit_price ' || c_unit_price || ' is negative'")
        if r.zero_price:
            check("zero_price", "coalesce(c_unit_price, abs(c_amount)) = 0",
                  "'price is zero (free item, write-off or test line)'")
        if r.cancellation is not None and r.cancellation.order_id_prefix:
            rs.flags["cancellation"] = (
                f"starts_with(c_order_id, '{_q(r.cancellation.order_id_prefix)}')")
        rs.flags["return"] = "c_quantity < 0"
        if r.extreme_outlier is not None:
            o = r.extreme_outlier
            rs.outlier = (f"(abs(c_quantity) > {o.quantity_abs_max} OR "
                          f"abs(c_amount) > {o.amount_abs_max})")
            rs.flags["extreme_outlier"] = rs.outlier
    if t == "feedback" and r.score_range:
        check("score_out_of_range", "c_score < 0 OR c_score > c_scale_max",
              "'score ' || c_score || ' is outside 0 .. ' || c_scale_max")
    return rs


def _derive_transactions(rs: RuleSet, out: Output, mapped: set[str]) -> None:
    """Defaults users expect: quantity 1, amount = quantity x price, cancellations negative."""
    q = "c_quantity" if "quantity" in mapped else "1.0"
    r = out.rules
    if r.cancellation is not None and r.cancellation.order_id_prefix:
        pre = _q(r.cancellation.order_id_prefix)
        q = f"(CASE WHEN starts_with(c_order_id, '{pre}') THEN -abs({q}) ELSE {q} END)"
        sign_amount = (f"(CASE WHEN starts_with(c_order_id, '{pre}') THEN -abs(c_amount) "
                       "ELSE c_amount END)")
    else:
        sign_amount = "c_amount"
    rs.derive.append(f"{q} AS c_quantity")
    if "amount" in mapped:
        rs.derive.append(f"{sign_amount} AS c_amount")
    else:
        rs.derive.append(f"{q} * c_unit_price - coalesce(c_discount, 0) * sign({q}) AS c_amount")
    if "unit_price" not in mapped:
        rs.derive.append(f"CASE WHEN {q} <> 0 THEN abs(c_amount / {q}) END AS c_unit_price")
    if "order_id" not in mapped:
        rs.derive.append("c_customer_id || '@' || strftime(c_ts, '%Y-%m-%d') AS c_order_id")


def _q(s: object) -> str:
    return str(s).replace("'", "''")
