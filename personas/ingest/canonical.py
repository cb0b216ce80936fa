"""The SQL of the stage: one output's rows as canonical values, judged by the rules.

Four layers over a source's raw rows: personal data dropped or hashed before anything else
sees the row; the canonical values (:mod:`personas.ingest.parsing`); derived defaults; the
verdict of the rules (:mod:`personas.ingest.cleaning`). A rejected row keeps its rule, column,
source values and reason packed into one column (an accepted row then costs one NULL), and
every row gets its flags as bits and the hash its duplicate search starts from.
"""

from __future__ import annotations

from personas import schema
from personas.errors import MappingError, SchemaError
from personas.ingest.cleaning import RuleSet, rules_for
from personas.ingest.context import Context
from personas.ingest.mapping import Output, Source
from personas.ingest.parsing import FieldSQL, field_sql
from personas.ingest.rawsource import RawSource
from personas.sqltext import ident, quote

# Columns hashed to find duplicate candidates (all canonical columns are then compared).
HASH_KEYS = {
    "transactions": ("customer_id", "order_id", "ts", "product_id", "quantity", "amount"),
    "customers": ("customer_id",),
    "events": ("customer_id", "ts", "event_type", "session_id"),
    "feedback": ("customer_id", "ts", "kind", "score"),
}


def output_sql(
    raw: RawSource, source: Source, out: Output, ctx: Context, fis: list[int], oi: int
) -> str:
    """SQL producing the stage rows of one output: canonical columns + rule verdicts."""
    fields = schema.fields(out.table)
    ftypes = {f.name: schema.duckdb_type(f.type) for f in fields}
    exprs: dict[str, FieldSQL] = {}
    for fname, spec in out.columns.items():
        exprs[fname] = field_sql(fname, spec, ftypes[fname], raw, source, ctx.key)
    # layer 1: personal data treatment (drop / hash) before anything else sees the row
    data_cols = raw.data_columns()
    keep = [c for c in data_cols if source.personal_data.get(c) != "drop"]
    # _row, _file and lookup columns (a lookup column may be declared personal too)
    other = [c for c in raw.columns if c not in data_cols and source.personal_data.get(c) != "drop"]
    pii_cols = []
    for c in [*other, *keep]:
        if source.personal_data.get(c) == "hash":
            pii_cols.append(
                f"sha256('{quote(ctx.key)}' || CAST({ident(c)} AS VARCHAR)) AS {ident(c)}"
            )
        else:
            pii_cols.append(ident(c))
    where = f"WHERE ({out.where})" if out.where and oi > 0 else ""
    layer1 = f"SELECT {', '.join(pii_cols)} FROM {raw.sql} {where}"
    # layer 2: canonical values (c_<name>)
    cols2 = []
    for f in fields:
        if f.name in exprs:
            cols2.append(f"{exprs[f.name].value} AS {ident('c_' + f.name)}")
        elif f.name != "is_outlier":
            cols2.append(f"CAST(NULL AS {ftypes[f.name]}) AS {ident('c_' + f.name)}")
    if out.attributes is not None:
        used = {e.column for e in exprs.values() if e.column}
        attr_cols = (
            [c for c in keep if c not in used and c not in source.personal_data]
            if out.attributes == "rest"
            else [c for c in out.attributes if isinstance(c, str)]
        )
        derived = (
            {}
            if out.attributes == "rest"
            else {k: v for d in out.attributes if isinstance(d, dict) for k, v in d.items()}
        )
        for c in attr_cols:
            if c not in raw.columns:
                raise SchemaError(
                    f"{raw.name}: attributes: column {c!r} is not in the file (it has "
                    f"{', '.join(data_cols)}); fix attributes: in source {source.name!r}"
                )
            if source.personal_data.get(c) == "drop":
                raise MappingError(
                    f"source {source.name!r}: {c!r} is dropped as personal data "
                    "and cannot also be kept in attributes:"
                )
        if attr_cols or derived:
            pack = ", ".join(
                [f"{ident(c)} := {ident(c)}" for c in attr_cols]
                + [f"{ident(k)} := ({v})" for k, v in derived.items()]
            )
            cols2 = [c for c in cols2 if not c.endswith(ident("c_attributes"))]
            cols2.append(f"CAST(to_json(struct_pack({pack})) AS VARCHAR) AS c_attributes")
    layer2 = f"SELECT *, {', '.join(cols2)} FROM l1"
    # layer 3: derived defaults; layer 4: the verdict of the rules and the outlier flag
    rules = rules_for(
        out,
        exprs,
        ctx.now,
        primary_where=out.where if oi == 0 else None,
        lookup_flags=raw.lookup_flags,
    )
    with ctx.lock:  # what the verdict _ck of these rows means, for the counts by rule
        for fi in fis:
            ctx.rule_names[(fi, oi)] = [c.rule for c in rules.checks]
    layer3 = (
        f"SELECT * REPLACE ({', '.join(rules.derive)}) FROM l2"
        if rules.derive
        else "SELECT * FROM l2"
    )
    layer4 = (
        f"SELECT *, {rules.verdict()} AS _ck, coalesce({rules.outlier}, false) AS _outlier FROM l3"
    )
    # the source values of a rejected row, without any column declared personal (hashed or
    # pseudonymised ones too): the quarantine names the file and row to find the rest
    personal = source.declared_personal()
    raw_pack = (
        ", ".join(f"{ident(c)} := {ident(c)}" for c in keep if c not in personal) or "_row := _row"
    )
    canon = [f.name for f in fields if f.name != "is_outlier"]
    fi_sql = str(fis[0]) if len(fis) == 1 else f"[{', '.join(map(str, fis))}][_file + 1]"
    select = [
        f"CAST({fi_sql} AS INTEGER) AS _fi",
        f"CAST({oi} AS SMALLINT) AS _oi",
        "CAST(_row AS BIGINT) AS _row",
    ]
    select += [f"CAST({ident('c_' + n)} AS {ftypes[n]}) AS {ident(n)}" for n in canon]
    if out.table == "transactions":
        select.append("_outlier AS is_outlier")
    # rule, column, source values and reason of a rejected row, packed into one column: an
    # accepted row then costs one NULL, not four
    verdict = (
        f"{rules.by_verdict('rule')} || chr(31) || coalesce({rules.by_verdict('column')}, "
        f"'') || chr(31) || CAST(to_json(struct_pack({raw_pack})) AS VARCHAR) || chr(31) "
        f"|| replace({rules.by_verdict('reason')}, chr(31), ' ')"
    )
    select += [
        f"CASE WHEN _ck IS NOT NULL THEN {verdict} END AS _q",
        "_ck",
        f"{_dedupe_hash(raw, source, out, canon, ctx, fis, oi, fi_sql)} AS _hash",
        f"{_flag_bits(rules, ctx)} AS _flags",
    ]
    return (
        f"WITH l1 AS ({layer1}), l2 AS ({layer2}), l3 AS ({layer3}), l4 AS ({layer4}) "
        f"SELECT {', '.join(select)} FROM l4"
    )


def _dedupe_hash(
    raw: RawSource,
    source: Source,
    out: Output,
    canon: list[str],
    ctx: Context,
    fis: list[int],
    oi: int,
    fi_sql: str,
) -> str:
    """The hash the duplicate search starts from, by the source's ``dedupe:``.

    ``rows`` (the default): a few key columns, then whole rows are compared. ``none``: a value
    of each row's own (file, output, row), so no row is ever a candidate. ``key:``: the key's
    values (canonical columns by their canonical name, other source columns by their name),
    behind a marker so that they never equal a whole-row hash; the search then compares the
    hash and the key's canonical columns only (:data:`Context.dedupe_keys`).
    """
    if source.dedupe == "rows":
        hashed = [n for n in HASH_KEYS[out.table] if n in canon]
        return f"hash({', '.join(ident('c_' + n) for n in hashed)})"
    if source.dedupe == "none":
        return f"hash('dedupe: none', CAST({fi_sql} AS INTEGER), {oi}, _row)"
    exprs, compared = [], []
    for name in source.dedupe.key:
        if name in canon:
            exprs.append(ident("c_" + name))
            compared.append(name)
        elif name in raw.data_columns() and source.personal_data.get(name) != "drop":
            exprs.append(ident(name))
        else:
            raise MappingError(
                f"{raw.name}: dedupe: key: {name!r} is neither a canonical column of "
                f"{out.table} nor a column of the file (it has {', '.join(raw.data_columns())}); "
                f"fix dedupe: in source {source.name!r}"
            )
    with ctx.lock:
        keyed = ctx.dedupe_keys.setdefault(out.table, {})
        for fi in fis:
            keyed[(fi, oi)] = tuple(compared)
    return f"hash('dedupe: key', {', '.join(exprs)})"


def _flag_bits(rules: RuleSet, ctx: Context) -> str:
    parts = []
    for name, cond in rules.flags.items():
        cond = "_outlier" if cond == rules.outlier else cond
        with ctx.lock:
            bit = ctx.flag_bits.setdefault(name, len(ctx.flag_bits))
        if bit >= 32:
            raise MappingError("more than 32 different flags in one batch; ingest in parts")
        parts.append(f"(CASE WHEN {cond} THEN {1 << bit} ELSE 0 END)")
    return f"CAST({' + '.join(parts) if parts else '0'} AS UINTEGER)"
