"""The report: self-contained, offline, escaped, complete, consistent (no browser needed)."""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from markupsafe import escape

from personas.features.catalog import lookup
from personas.publish import lifetime, plots, report
from personas.runs import load_run
from tests.publish.fixtures import (
    BAD_ID,
    HOSTILE_REGION,
    SCRIPT,
    copy_run,
    demo_build,
    hostile_profiles,
    transactions_only_build,
)


@pytest.fixture(scope="session")
def demo() -> dict[str, Path]:
    """The hostile demo runs (built once per process, shared by the test modules)."""
    return demo_build()


@pytest.fixture(scope="session")
def tx_only() -> dict[str, Path]:
    """A run made from transactions alone."""
    return transactions_only_build()


FIG_RE = re.compile(r'<script type="application/json" id="figdata-([^"]+)">(.*?)</script>', re.S)


def figures_in(page: str) -> dict[str, dict]:
    """Figure specs embedded in a report, parsed back exactly as the page's JS does."""
    return {k: json.loads(v) for k, v in FIG_RE.findall(page)}


def without_bundle(page: str) -> str:
    bundle = report.plotly_bundle()
    assert page.count(bundle) == 1, "plotly.js must be embedded exactly once"
    return page.replace(bundle, "")


@pytest.fixture(scope="module")
def page2(demo: dict[str, Path]) -> str:
    return report.render(load_run(demo["run2"]))


@pytest.fixture(scope="module")
def page1(demo: dict[str, Path]) -> str:
    return report.render(load_run(demo["run1"]))


def _profiles(run: Path) -> dict:
    return json.loads((run / "profiles.json").read_text())


# ---- self-contained and offline -----------------------------------------------------------------
def test_plotly_js_embedded_once_and_nothing_else_external(page2: str) -> None:
    assert page2.count("plotly.js v") == 1
    rest = without_bundle(page2)
    # no URL of any scheme, no protocol-relative reference, no stylesheet/font import
    assert not re.search(r"[a-z][a-z0-9+.-]*://", rest, re.I), "absolute URL in the report"
    assert "//" not in rest, "protocol-relative reference or JS comment in the report"
    # "http" followed by a colon (base64 figure data may contain the letters, never a colon)
    assert not re.search(r"https?\s*:", rest, re.I)
    assert "url(" not in rest and "@import" not in rest
    assert "<link" not in rest and "<iframe" not in rest and "<img" not in rest
    # every link stays inside the page or points at a card next to it
    for target in re.findall(r'\b(?:href|src)="([^"]*)"', rest):
        assert target.startswith("#") or re.fullmatch(r"cards/[a-z0-9-]+\.html", target), target
    # MathJax is off: plotly.js must not try to typeset (or load) anything
    assert "typesetMath: false" in rest


def test_script_json_cannot_break_out() -> None:
    payload = {"a": "</script><script>alert(1)</script><!-- & \u2028", "b": [1.5, None]}
    text = str(report.script_json(payload))
    assert not set("<>&/") & set(text)
    assert "\u2028" not in text
    assert json.loads(text) == payload


# ---- content ------------------------------------------------------------------------------------
def test_all_figures_present_and_only_the_map_uses_webgl(page2: str, demo) -> None:
    prof = _profiles(demo["run2"])
    figs = figures_in(page2)
    expected = {
        "map",
        "sizes",
        "heatmap",
        "value",
        "nps",
        "category",
        "channel",
        "migration",
        "trend",
        "model",
        "fidelity",
    } | {f"radar-{p['id']}" for p in prof["personas"]}
    assert expected <= set(figs), expected - set(figs)
    for name, spec in figs.items():
        assert spec["data"], f"figure {name} has no trace"
        types = {t.get("type", "scatter") for t in spec["data"]}
        if name == "map":
            assert types == {"scattergl"}
        else:
            assert not any(t.endswith("gl") for t in types), (name, types)
        # plotly's default template adds ~10 kB of JSON (and its own fonts) to every figure
        assert len(json.dumps(spec["layout"].get("template", {}))) < 100, name
    # one div per figure, each pointing at its JSON
    assert set(re.findall(r'data-fig="([^"]+)"', page2)) == set(figs)


def test_overview_kpis_sections_and_persona_names(page2: str, demo) -> None:
    prof = _profiles(demo["run2"])
    text = html.unescape(re.sub(r"<[^>]+>", " ", without_bundle(page2)))
    for title in (
        "Overview",
        "Personas",
        "Persona map and sizes",
        "Data lineage",
        "How the personas were found",
        "Changes since the previous run",
        "Value, churn risk and satisfaction",
        "Categories and channels",
    ):
        assert title in text
    assert f"{prof['population']['customers']:,}" in text
    for p in prof["personas"]:
        assert p["name"] in text
        assert f'id="persona-{p["id"]}"' in page2 and f'id="tab-{p["id"]}"' in page2
    # names on every axis, never the raw cluster index
    figs = figures_in(page2)
    names = {html.escape(p["name"], quote=False) for p in prof["personas"]}
    assert names <= {x.replace("<br>", " ") for x in figs["heatmap"]["data"][0]["x"]}
    assert names <= set(figs["sizes"]["data"][0]["y"])
    assert {t["name"] for t in figs["map"]["data"]} <= names


def test_tabs_are_accessible(page2: str, demo) -> None:
    prof = _profiles(demo["run2"])
    assert page2.count('<button type="button" role="tab"') == len(prof["personas"])
    assert page2.count('<section role="tabpanel"') == len(prof["personas"])
    assert page2.count('aria-selected="true" tabindex="0"') == 1
    # exactly one panel visible without JavaScript; the others are hidden, not removed
    panels = re.findall(r'<section role="tabpanel"[^>]*>', page2)
    assert sum(" hidden" in s for s in panels) == len(panels) - 1
    assert re.search(r"<h1>", page2) and page2.count("<h2 ") >= 7


def test_numbers_use_the_catalogue_formats(page2: str, demo) -> None:
    prof = _profiles(demo["run2"])
    p = max(prof["personas"], key=lambda q: q["size"])
    for m in ("return_rate", "recency_days", "avg_order_value"):
        want = lookup(m).format(p["metrics"][m]["persona"])
        assert f'<td class="num">{want}</td>' in page2, (m, want)
    assert "%" in lookup("return_rate").format(0.123)  # the format the report relies on


def test_heatmap_is_zscores_of_persona_means(demo) -> None:
    prof = _profiles(demo["run1"])
    feats = plots.heatmap_features(prof)
    fig = plots.heatmap(prof, feats)
    z = np.array(fig.data[0].z, dtype=float).T  # rows are features, columns personas
    ordered = sorted(prof["personas"], key=lambda p: (-p["size"], p["id"]))
    for i, p in enumerate(ordered):
        for j, f in enumerate(feats):
            st = prof["features"][f]
            want = (p["feature_means"][f] - st["mean"]) / st["std"]
            assert z[i, j] == pytest.approx(np.clip(want, -2.5, 2.5), abs=1e-3)


def test_radars_share_axes_and_colours_follow_persona_ids(demo) -> None:
    prof = _profiles(demo["run2"])
    axes = [tuple(plots.radar(prof, p["id"]).data[1].theta) for p in prof["personas"]]
    assert len(set(axes)) == 1 and len(axes[0]) >= 6
    colour = {p["id"]: plots.persona_colour(p["id"]) for p in prof["personas"]}
    assert len(set(colour.values())) == len(colour), "two personas share a colour"
    by_name = {html.escape(p["name"], quote=False): colour[p["id"]] for p in prof["personas"]}
    sizes = plots.sizes(prof).data[0]
    for y, c in zip(sizes.y, sizes.marker.color, strict=True):
        if y in by_name:
            assert c == by_name[y]
    mp = plots.persona_map(pd.read_parquet(demo["run2"] / "map.parquet"), prof)
    for t in mp.data:
        assert t.marker.color == by_name[t.name]
    for p in prof["personas"]:
        assert plots.radar(prof, p["id"]).data[1].line.color == colour[p["id"]]
    # the id, not the run, decides: the same id gets the same colour in any run
    assert plots.persona_colour("P3") == plots.PALETTE[2]


def test_map_is_capped_stratified_and_the_page_says_so(demo, tmp_path: Path) -> None:
    run = copy_run(demo["run1"], tmp_path)
    rng = np.random.default_rng(0)
    n = 30_000
    ids = rng.choice(["P1", "P2", "P3"], size=n, p=[0.5, 0.3, 0.2])
    big = pd.DataFrame(
        {
            "customer_id": [f"cust-{i}" for i in range(n)],
            "x": rng.normal(size=n),
            "y": rng.normal(size=n),
            "persona_id": ids,
        }
    )
    big.to_parquet(run / "map.parquet", index=False)
    prof = json.loads((run / "profiles.json").read_text())
    prof["population"]["profiled"] = 50_000
    prof["population"]["customers"] = 52_000
    (run / "profiles.json").write_text(json.dumps(prof))
    page = report.render(load_run(run))
    spec = figures_in(page)["map"]
    n_points = sum(len(base64.b64decode(t["x"]["bdata"])) // 4 for t in spec["data"])
    assert n_points == plots.MAP_CAP
    shares = plots.sample_map(big)["persona_id"].value_counts(normalize=True)
    assert shares["P1"] == pytest.approx(0.5, abs=0.01)
    assert len(spec["data"]) == 3
    assert "a random sample of 20,000 of the 50,000 profiled customers" in page
    assert "cust-" not in page, "customer ids must not be embedded in the map"


def test_first_run_says_there_is_no_migration(page1: str) -> None:
    assert 'id="first-run"' in page1 and "first run" in page1
    assert "figdata-migration" not in page1
    assert "figdata-trend" in page1


def test_mix_compares_with_everyone_including_renamed_categories(demo) -> None:
    prof = _profiles(demo["run2"])
    fig = plots.mix(prof, "category")
    everyone = {
        html.escape(st["label"].removeprefix("Share of spend: "), quote=False): st["mean"]
        for st in prof["features"].values()
        if st["group"] == "category" and st["label"].startswith("Share of spend: ")
    }
    checked = 0
    for t in fig.data:
        if t.name in everyone:
            row = list(t.y).index("All customers")
            assert t.x[row] == pytest.approx(everyone[t.name])
            assert t.x[row] > 0
            checked += 1
    assert checked == len(everyone) >= 6


def test_migration_sankey_folds_small_groups(demo) -> None:
    prof = _profiles(demo["run2"])
    mig = pd.read_parquet(demo["run2"] / "migration.parquet")
    fig = plots.migration_sankey(mig, prof)
    labels = list(fig.data[0].node.label)
    values = np.zeros(len(labels))
    for s, t, v in zip(
        fig.data[0].link.source, fig.data[0].link.target, fig.data[0].link.value, strict=True
    ):
        values[s] += v
        values[t] += v
    assert sum(fig.data[0].link.value) == mig["customers"].sum()
    for lab, v in zip(labels, values, strict=True):
        if lab != "Other small groups":
            assert v >= prof["min_persona_size"], (lab, v)


def test_size_trend_follows_ids_across_runs(demo) -> None:
    prof = _profiles(demo["run2"])
    h1 = report.history_entry(load_run(demo["run1"]))
    h2 = report.history_entry(load_run(demo["run2"]))
    fig = plots.size_trend([h1, h2], prof)
    assert len(fig.data) == len({p["id"] for p in h1["personas"] + h2["personas"]})
    for t in fig.data:
        assert len(t.x) == 2
        assert t.x[0] != t.x[1]  # same as-of date: the run id tells the points apart


def test_model_selection_marks_the_chosen_candidate(demo) -> None:
    prof = _profiles(demo["run1"])
    fig = plots.model_selection(prof)
    chosen = [t for t in fig.data if t.name == "chosen model"]
    assert len(chosen) == 2  # silhouette and stability panels
    assert list(chosen[0].x) == [prof["model"]["k"]]
    page = report.render(load_run(demo["run1"]))
    assert html.escape(prof["model"]["selection_rule"]) in page
    assert "rule fidelity" in page


# ---- escaping -----------------------------------------------------------------------------------
def test_data_text_from_the_pipeline_is_escaped(page2: str, demo) -> None:
    rest = without_bundle(page2)
    prof = _profiles(demo["run2"])
    # category names reach persona names and feature labels verbatim: shown, as text
    for name in [p["name"] for p in prof["personas"] if "<" in p["name"]]:
        assert str(escape(name)) in rest
    labels = [f["label"] for f in prof["features"].values() if SCRIPT in f["label"]]
    heat_y = figures_in(page2)["heatmap"]["data"][0]["y"]
    for lab in labels:
        assert html.escape(lab, quote=False) in heat_y
    assert "<script>alert(1)" not in rest
    assert "<img src=x" not in rest
    assert str(escape(HOSTILE_REGION)) in rest  # shown, as text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rest  # the country is shown, as text
    assert BAD_ID not in rest  # no customer id is embedded at all


def test_hostile_profiles_are_escaped_everywhere(demo, tmp_path: Path) -> None:
    run = copy_run(demo["run1"], tmp_path)
    prof = hostile_profiles(_profiles(run))
    (run / "profiles.json").write_text(json.dumps(prof))
    page = report.render(load_run(run))
    rest = without_bundle(page)
    for raw in ("<script>alert(", "</script><script>", "<img src=x", 'href="javascript:'):
        assert raw not in rest, raw
    # our own script elements only: boot + plotly + timing + one JSON block per figure
    figs = figures_in(page)
    assert rest.count("<script") == 3 + len(figs)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &#34;Quoted&#34; &amp; co" in rest
    # inside figures the text is escaped for plotly (which shows entities as characters)
    heat = figs["heatmap"]
    assert "Share of spend: &lt;script&gt;alert(1)&lt;/script&gt;" in heat["data"][0]["y"]
    legend = {t["name"] for t in figs["category"]["data"]}
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in legend


# ---- graceful degradation -----------------------------------------------------------------------
def test_transactions_only_run_degrades_gracefully(tx_only) -> None:
    page = report.render(load_run(tx_only["run1"]))
    figs = figures_in(page)
    prof = _profiles(tx_only["run1"])
    assert "nps" not in figs and "figdata-nps" not in page
    has_value = bool(plots.value_metrics(prof))
    assert ("value" in figs) == has_value
    assert all(m in ("clv_12m", "churn_risk") for m in plots.value_metrics(prof))
    # figure data (base64 arrays) is not text: "NPS" can occur in it by chance
    text = FIG_RE.sub("", without_bundle(page))
    assert "NPS" not in re.sub(r"<[^>]+>", " ", text).replace("NPS is", "")
    assert {"map", "sizes", "heatmap", "trend", "model", "fidelity"} <= set(figs)
    assert "category" in figs and "channel" in figs  # transactions still have both


def test_empty_optional_inputs_give_a_message_not_a_crash(demo) -> None:
    prof = _profiles(demo["run1"])
    fig = plots.size_trend([], prof)
    assert isinstance(fig, go.Figure) and "No run history" in fig.layout.annotations[0].text
    stripped = dict(prof, personas=[], groups=[])
    assert "No persona" in plots.sizes(stripped).layout.annotations[0].text


def test_lifetime_section_shows_the_holdout_check(page2: str, demo) -> None:
    run = load_run(demo["run2"])
    clv = run.metrics["clv"]  # recorded by the feature build, carried by discovery
    assert clv["verdict"] in {"sound", "caution", "unreliable"}
    sel = clv["selection"]
    assert {r["model"] for r in sel["candidates"]} == {"BG/NBD", "MBG/NBD", "Pareto/NBD", "NBD"}
    text = re.sub(r"<[^>]+>", " ", without_bundle(page2))
    assert "How far to trust lifetime value" in text
    assert lifetime.VERDICTS[clv["verdict"]].split(":")[0] in text
    for r in sel["candidates"]:
        assert r["model"] in text
    figs = figures_in(page2)
    assert "lifetime" in figs
    deciles = [t for t in figs["lifetime"]["data"] if t["type"] == "bar"]
    chosen = next(r for r in sel["candidates"] if r["chosen"])
    assert [round(y) for y in deciles[0]["y"]] == [round(d["actual"]) for d in chosen["deciles"]]
    # a model that missed its holdout keeps a warning on the headline tiles
    ctx = report.context(run, [], None)
    tiles = {k["label"]: k["note"] for k in ctx["kpis"]}
    if clv["verdict"] != "sound" and "Average 12-month CLV" in tiles:
        assert tiles["Average 12-month CLV"].startswith("⚠")


def test_unreliable_lifetime_model_is_said_and_not_tiled() -> None:
    clv = {
        "verdict": "unreliable",
        "reasons": ["no model fitted the calibration period soundly (BG/NBD: a at bound)"],
    }
    view = lifetime.section(clv)
    assert view["verdict"] == "unreliable" and "left out" in view["verdict_text"]
    kpis = [{"label": "Average 12-month CLV", "value": "£1", "note": "average"}]
    lifetime.flag_tiles(kpis, view)
    assert kpis[0]["note"].startswith("⚠")
    assert plots.lifetime_fit(clv).layout.annotations  # a message, not a crash
