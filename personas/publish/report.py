"""The persona report: one self-contained, offline ``report.html`` per run.

``render(run)`` takes a run read by :func:`personas.runs.load_run`, builds a plain context dict
(:func:`context`) and the figures (:mod:`personas.publish.plots`), and renders
``templates/report.html.j2`` with Jinja's ``autoescape=True``, so every piece of data-derived
text (category names come straight from the retailer's data) is HTML-escaped by default;
nothing is marked safe except plotly.js itself and JSON that :func:`script_json` has escaped.

Why it is built this way:

* **plotly.js once**: the bundle is ~4.8 MB; ``fig.write_html`` per figure would repeat it for
  every chart. It is inlined in one ``<script>`` and every figure is a small JSON document
  drawn with ``Plotly.newPlot``.
* **No network**: no CDN, no web font, no MathJax (``typesetMath: false``); links only point
  inside the page or to the persona cards next to it. Readers open the file from a mail or a
  share, often offline.
* **Fast**: the map is capped (:data:`personas.publish.plots.MAP_CAP` dots, stratified by
  persona), so the page size does not grow with the customer base; the per-persona radar
  charts are drawn only when their tab is first opened.
* **No ``</script>`` breakout**: figure JSON lives in ``<script type="application/json">``
  blocks with ``<``, ``>``, ``&``, ``/`` and the JS line separators escaped as ``\\uXXXX``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

import plotly.graph_objects as go
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from personas.features.catalog import VALUE_DIMENSIONS, lookup
from personas.publish import driftview, lifetime, likely, plots, whatworks
from personas.publish import kpis as kpiview
from personas.publish import lineage as lineagev
from personas.runs import Run

REPORT_TEMPLATE = "report.html.j2"
KPI_METRICS = {
    "clv_12m": "Average 12-month CLV",
    "churn_risk": "Average churn risk",
    "csat_mean": "Average CSAT",
}
ATTRIBUTE_LABELS = {
    "country": "Country",
    "region": "Region",
    "age_band": "Age band",
    "income_band": "Income band",
    "household": "Household",
    "loyalty_tier": "Loyalty tier",
}
_JSON_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "/": "\\u002f",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_JSON_ESCAPE_RE = re.compile("[<>&/\u2028\u2029]")


# ---- public API -------------------------------------------------------------------------------
def render(
    run: Run,
    history: Sequence[Mapping[str, Any]] | None = None,
    lineage: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """The report of a run as one HTML string.

    Parameters
    ----------
    run : Run
        A run read by :func:`personas.runs.load_run`.
    history : list of dict, optional
        Earlier published runs, oldest first (entries of :func:`history_entry`); this run is
        appended when it is not in it. Drives the size trend and names the previous personas.
    lineage : list of dict, optional
        Row accounting per ingested source (:func:`personas.publish.publication.lineage`); the data
        section says so when it is not given.
    """
    hist = _with_current(list(history or []), run)
    ctx = context(run, hist, lineage)
    figs = figures(run, hist)
    ctx["figures"] = {k: script_json(_fig_dict(f)) for k, f in figs.items()}
    ctx["plotly_js"] = _plotly_js()
    return _env().get_template(REPORT_TEMPLATE).render(**ctx)


def figures(run: Run, history: Sequence[Mapping[str, Any]]) -> dict[str, go.Figure]:
    """Every figure of the report by its element id (optional ones only when data exists)."""
    p = run.profiles
    figs: dict[str, go.Figure] = whatworks.figures(run.uplift)  # forest plots per campaign
    if run.map is not None and not run.map.empty:
        figs["map"] = plots.persona_map(run.map, p, cap=plots.MAP_CAP)
    figs["sizes"] = plots.sizes(p)
    figs["heatmap"] = plots.heatmap(p)
    axes = plots.radar_features(p)
    for persona in p["personas"]:
        figs[f"radar-{persona['id']}"] = plots.radar(p, persona["id"], axes)
    if plots.value_metrics(p):
        figs["value"] = plots.value_risk(p)
    nps = plots.nps_mix(p)
    if nps is not None:
        figs["nps"] = nps
    if any(q.get("category_mix") for q in p["personas"]):
        figs["category"] = plots.mix(p, "category")
    if any(q.get("channel_mix") for q in p["personas"]):
        figs["channel"] = plots.mix(p, "channel")
    if run.migration is not None and not run.migration.empty:
        figs["migration"] = plots.migration_sankey(
            run.migration,
            p,
            _previous_names(run, history),
            previous_label=f"previous run ({run.identity.get('previous_run') or 'earlier'})",
        )
    figs["trend"] = plots.size_trend(history, p)
    figs["model"] = plots.model_selection(p)
    figs["fidelity"] = plots.rule_fidelity(p)
    if run.metrics.get("clv"):
        figs["lifetime"] = plots.lifetime_fit(run.metrics["clv"])
    figs |= kpiview.figures(run.metrics.get("kpis"), history, p)
    if run.metrics.get("likely_persona"):
        figs["likely"] = plots.likely_calibration(run.metrics["likely_persona"])
    if run.drift:
        figs["drift"] = driftview.figure(history, run.drift.get("thresholds") or {})
    return figs


def history_entry(run: Run, published_at: str | None = None) -> dict[str, Any]:
    """One line of the run history: what was published, on what data, with which model."""
    p = run.profiles
    m = p["model"]
    d = run.drift
    return {
        "run_id": run.run_id,
        "mode": d.get("mode", "refit"),
        "reason": d.get("reason"),
        "model_run": d.get("model_run"),
        "drift": driftview.summary(d),
        "published_at": published_at,
        "as_of": p.get("as_of"),
        "data_fingerprint": p.get("data_fingerprint"),
        "customers": p["population"]["customers"],
        "profiled": p["population"]["profiled"],
        "model": {
            "algorithm": m.get("algorithm"),
            "k": m.get("k"),
            "stability": m.get("stability"),
            "silhouette": m.get("silhouette"),
            "rule_fidelity": p["rules"].get("fidelity"),
        },
        "personas": [
            {"id": q["id"], "name": q["name"], "size": q["size"], "share": q["share"]}
            for q in p["personas"]
        ],
        "groups": [
            {"id": g["id"], "name": g["name"], "size": g.get("size"), "share": g.get("share")}
            for g in p["groups"]
            if g.get("published")
        ],
        "kpis": kpiview.history_kpis(run.metrics.get("kpis")),
    }


def script_json(obj: Any) -> Markup:
    """JSON safe to place inside ``<script type="application/json">``.

    ``<``, ``>``, ``&`` and ``/`` become ``\\u003c`` ... so no data string can close the script
    element (``</script>``) or open a comment, and U+2028/U+2029 are escaped for old parsers.
    The result is still valid JSON that ``JSON.parse`` reads back unchanged.
    """
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return Markup(_JSON_ESCAPE_RE.sub(lambda m: _JSON_ESCAPES[m.group(0)], text))


def plotly_bundle() -> str:
    """The plotly.js bundle the report embeds (exposed so tests can find it in the page)."""
    return _plotly_js()


# ---- context ------------------------------------------------------------------------------------
def context(
    run: Run, history: Sequence[Mapping[str, Any]], lineage: Sequence[Mapping[str, Any]] | None
) -> dict[str, Any]:
    """The plain dict the template renders (no HTML in it: the template escapes everything)."""
    p = run.profiles
    pop = p["population"]
    personas = sorted(p["personas"], key=lambda q: (-q["size"], q["id"]))
    n_map = 0 if run.map is None else min(len(run.map), plots.MAP_CAP)
    value_feats = plots.value_metrics(p)
    clv = lifetime.section(run.metrics.get("clv"))
    kpis = _kpis(p)
    lifetime.flag_tiles(kpis, clv)
    return {
        "title": "Buyer personas",
        "run_id": run.run_id,
        "as_of": p.get("as_of") or "unknown date",
        "data_fingerprint": p.get("data_fingerprint"),
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "min_size": p["min_persona_size"],
        "kpis": kpis,
        "personas": [whatworks.add_campaigns(persona_view(p, q), run.uplift) for q in personas],
        "whatworks": whatworks.section(run.uplift),
        "groups": [_group(g, p) for g in p["groups"]],
        "map_note": _map_note(n_map, pop["profiled"], pop["customers"]),
        "has_map": n_map > 0,
        "value_metrics": [plots.metric_title(m) for m in value_feats],
        "has_nps": any(q.get("nps_classes") for q in p["personas"]),
        "has_category": any(q.get("category_mix") for q in p["personas"]),
        "has_channel": any(q.get("channel_mix") for q in p["personas"]),
        "migration": _migration(run),
        "history_runs": len(history),
        "model": _model(p) | {"basis": run.metrics.get("basis")},
        "clv": clv,
        "likely": likely.section(run.metrics.get("likely_persona"), p),
        "kpi": kpiview.section(run.metrics.get("kpis"), p, history),
        "drift": driftview.section(run.drift, history),
        "lineage": lineagev.section(lineage),
        "heatmap_note": (
            "Colour shows how far each persona's average is from the average "
            "customer, in standard deviations (red = higher, blue = lower). "
            "Hover for the actual values."
        ),
    }


def _kpis(p: Mapping[str, Any]) -> list[dict[str, str]]:
    pop = p["population"]
    n, prof = pop["customers"], pop["profiled"]
    k = []
    k.append(
        {
            "label": "Customers",
            "value": f"{n:,}",
            "note": f"as of {p.get('as_of') or 'the run date'}",
        }
    )
    k.append(
        {
            "label": "Personas",
            "value": str(len(p["personas"])),
            "note": f"covering {prof / n:.0%} of customers" if n else "",
        }
    )
    if p["personas"]:
        big = max(p["personas"], key=lambda q: q["size"])
        k.append({"label": "Largest persona", "value": f"{big['share']:.0%}", "note": big["name"]})
    for m, lab in KPI_METRICS.items():
        if m in pop["metrics"] and pop["metrics"][m] is not None:
            k.append(
                {
                    "label": lab,
                    "value": plots.fmt(m, pop["metrics"][m]),
                    "note": "average, customers in personas",
                }
            )
    if pop.get("nps") is not None:
        k.append(
            {"label": "NPS", "value": f"{pop['nps']:+.0f}", "note": "promoters minus detractors"}
        )
    fid = p["rules"].get("fidelity")
    if fid is not None:
        k.append(
            {
                "label": "Rules explain",
                "value": f"{fid:.0%}",
                "note": "of assignments (rule fidelity)",
            }
        )
    return k


def persona_view(
    p: Mapping[str, Any], q: Mapping[str, Any], metric_keys: Sequence[str] | None = None
) -> dict[str, Any]:
    """Display-ready view of one persona (formatted strings, no HTML); shared with the cards."""
    keys = metric_keys if metric_keys is not None else list(q["metrics"])  # KEY_METRICS order
    metrics = [metric_row(m, q["metrics"][m]) for m in keys if m in q["metrics"]]
    value = []
    for d, v in q.get("value_profile", {}).items():
        if v is None or d not in VALUE_DIMENSIONS:
            continue
        dim = VALUE_DIMENSIONS[d]
        value.append(
            {
                "label": dim.label,
                "meaning": dim.meaning,
                "value": f"{v:+.2f}",
                "left": f"{50 + min(v, 0) * 50:.1f}",
                "width": f"{abs(v) * 50:.1f}",
                "sign": "pos" if v >= 0 else "neg",
            }
        )
    attrs = []
    for a, dist in q.get("attributes", {}).items():
        attrs.append(
            {
                "label": ATTRIBUTE_LABELS.get(a, a.replace("_", " ").capitalize()),
                "items": [
                    {"value": k, "share": f"{s:.0%}"} for k, s in dist.items() if s is not None
                ],
            }
        )
    rules = q.get("rules", {})
    return {
        "id": q["id"],
        "name": q["name"],
        "slug": q["slug"],
        "colour": plots.persona_colour(q["id"]),
        "share": f"{q['share']:.0%}",
        "size": f"{q['size']:,}",
        "description": q["description"],
        "confidence": None if q.get("confidence") is None else f"{q['confidence']:.0%}",
        "headline": [t["text"] for t in q["traits"][:2]],
        "traits": [
            {
                "text": t["text"],
                "direction": t["direction"],
                "effect": "n/a" if t.get("effect_size") is None else f"{t['effect_size']:+.1f}",
            }
            for t in q["traits"]
        ],
        "rules": {
            "fidelity": None if rules.get("fidelity") is None else f"{rules['fidelity']:.0%}",
            "items": [
                {
                    "conditions": r["conditions"],
                    # a rule's coverage is a count of customers: never one below the minimum
                    "customers": f"{r['customers']:,}"
                    if r["customers"] >= p.get("min_persona_size", 0)
                    else f"fewer than {p['min_persona_size']:,}",
                    "precision": _pct(r.get("precision")),
                    "coverage": _pct(r.get("coverage")),
                }
                for r in rules.get("items", [])
            ],
        },
        "metrics": metrics,
        "value_profile": value,
        "actions": q["actions"],
        "attributes": attrs,
        "nps": None if q.get("nps") is None else f"{q['nps']:+.0f}",
        "card": f"cards/{q['slug']}.html",
    }


def metric_row(m: str, v: Mapping[str, Any]) -> dict[str, Any]:
    """One line of "against the average": values, a comparison in words and its tone."""
    per, pop = v.get("persona"), v.get("population")
    try:
        higher_is = lookup(m).higher_is
    except KeyError:
        higher_is = ""
    ratio = v.get("ratio")
    if ratio is None and per is not None and pop is not None and pop > 0 and per >= 0:
        ratio = per / pop
    if ratio is not None:
        if ratio >= 1.05:
            cmp, up = f"{ratio:.1f}x average", True
        elif ratio <= 0.95:
            cmp, up = f"{1 - ratio:.0%} below average", False
        else:
            cmp, up = "about average", None
    elif per is not None and pop is not None:
        diff = per - pop
        up = None if abs(diff) < 1e-9 else diff > 0
        cmp = (
            "about average"
            if up is None
            else f"{plots.fmt(m, abs(diff), v.get('format'))} {'above' if up else 'below'} average"
        )
    else:
        cmp, up = "n/a", None
    tone = "neutral"
    if up is not None and higher_is in ("better", "worse"):
        good = up == (higher_is == "better")
        tone = "good" if good else "bad"
    return {
        "label": v.get("label", m),
        "persona": plots.fmt(m, per, v.get("format")),
        "average": plots.fmt(m, pop, v.get("format")),
        "compare": cmp,
        "tone": tone,
    }


def _group(g: Mapping[str, Any], p: Mapping[str, Any]) -> dict[str, Any]:
    published = bool(g.get("published"))
    return {
        "id": g["id"],
        "name": g["name"],
        "published": published,
        "size": f"{g['size']:,}" if published else None,
        "share": f"{g['share']:.0%}" if published else None,
        "note": g.get("size_note") or "",
        "reason": g.get("reason", ""),
        "colour": plots.persona_colour(g["id"]),
    }


def _map_note(n_map: int, profiled: int, customers: int) -> str:
    if n_map == 0:
        return "No map for this run."
    if n_map >= profiled:
        who = f"all {profiled:,} profiled customers"
    else:
        who = (
            f"a random sample of {n_map:,} of the {profiled:,} profiled customers "
            "(each persona keeps its share of the dots)"
        )
    rest = customers - profiled
    extra = (
        f" The {rest:,} customers without enough history to profile are not shown."
        if rest > 0
        else ""
    )
    return (
        f"Each dot is one customer; the map shows {who}. Customers close to each other "
        f"buy and behave alike; the axes have no units.{extra}"
    )


def _migration(run: Run) -> dict[str, Any]:
    ident = run.identity or {}
    prev = ident.get("previous_run")
    if run.migration is None or run.migration.empty:
        return {"present": False, "previous_run": prev}
    mig = run.migration
    stay = int(mig.loc[mig["previous"] == mig["current"], "customers"].sum())
    both = int(
        mig.loc[(mig["previous"] != "(absent)") & (mig["current"] != "(absent)"), "customers"].sum()
    )
    p_ids = {q["id"] for q in run.profiles["personas"]}
    return {
        "present": True,
        "previous_run": prev,
        "stayed": f"{stay / both:.0%}" if both else "n/a",
        "arrived": f"{int(mig.loc[mig['previous'] == '(absent)', 'customers'].sum()):,}",
        "new": [i for i in ident.get("new", []) if i in p_ids],
        "vanished": list(ident.get("vanished", [])),
        "split": ident.get("split", []),
        "merged": ident.get("merged", []),
    }


def _model(p: Mapping[str, Any]) -> dict[str, Any]:
    m = p["model"]
    cands = m.get("candidates", [])
    algos = sorted({str(c.get("algorithm")) for c in cands})
    ks = sorted({int(c["k"]) for c in cands if c.get("k") is not None})
    rows = []
    for c in sorted(cands, key=lambda c: (str(c.get("algorithm")), c.get("k", 0))):
        rows.append(
            {
                "algorithm": str(c.get("algorithm")),
                "k": c.get("k"),
                "silhouette": _num(c.get("silhouette"), "{:.3f}"),
                "stability": _num(c.get("stability"), "{:.2f}"),
                "davies_bouldin": _num(c.get("davies_bouldin"), "{:.2f}"),
                "min_size_share": _num(c.get("min_size_share"), "{:.1%}"),
                "chosen": bool(c.get("chosen")),
            }
        )
    stab = m.get("stability")
    summary = (
        f"We compared {len(algos)} clustering method(s) ({', '.join(algos)}) with "
        f"{ks[0]} to {ks[-1]} personas. "
        if ks
        else ""
    )
    summary += f"The chosen model is {m.get('algorithm')} with {m.get('k')} personas"
    if stab is not None:
        summary += (
            f": refitted on resampled customers, it finds the same personas "
            f"{stab:.0%} of the time (bootstrap stability)"
        )
    if m.get("silhouette") is not None:
        summary += f", with a silhouette of {m['silhouette']:.2f}"
    summary += "."
    fid = p["rules"].get("fidelity")
    return {
        "summary": summary,
        "rule": m.get("selection_rule", ""),
        "candidates": rows,
        "features": [p["features"].get(f, {}).get("label", f) for f in m.get("features", [])],
        "dropped": [
            {"feature": p["features"].get(f, {}).get("label", f), "reason": r}
            for f, r in (m.get("dropped_features") or {}).items()
        ],
        "fidelity": None if fid is None else f"{fid:.0%}",
        "depth": p["rules"].get("depth"),
        "sample_size": None if m.get("sample_size") is None else f"{m['sample_size']:,}",
    }


# ---- helpers ------------------------------------------------------------------------------------
def _with_current(history: list[dict[str, Any]], run: Run) -> list[dict[str, Any]]:
    rid = run.run_id
    if any(h.get("run_id") == rid for h in history):
        return history
    return [*history, history_entry(run)]


def _previous_names(run: Run, history: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    prev = (run.identity or {}).get("previous_run")
    for h in reversed(history):
        if prev is not None and h.get("run_id") == prev:
            return {q["id"]: q["name"] for q in [*h.get("personas", []), *h.get("groups", [])]}
    return {}


def _fig_dict(fig: go.Figure) -> Any:
    # plotly's JSON encoder turns numpy arrays into compact typed arrays ("bdata")
    return json.loads(fig.to_json(validate=False))


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0%}"


def _num(x: Any, spec: str) -> str:
    return "–" if x is None else spec.format(x)


@cache
def _plotly_js() -> Markup:
    from plotly.offline import get_plotlyjs

    js = get_plotlyjs()
    if "</script" in js.lower() or "<!--" in js:
        raise RuntimeError("this plotly.js bundle cannot be inlined in a <script> element")
    return Markup(js)


@cache
def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("personas.publish", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env
