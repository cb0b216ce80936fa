"""KPIs on the persona cards, the KPI charts across published runs and the acquisition tables.

Checked on the demo runs (two discoveries of the same hostile lake) against the run's own
``metrics.json`` and on hand-made blocks for the minimum-size rules.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from personas.publish import cards, plots, report
from personas.publish import kpis as kpiview
from personas.runs import load_run
from tests.publish.fixtures import demo_build


@pytest.fixture(scope="module")
def demo() -> dict[str, Path]:
    return demo_build()


@pytest.fixture(scope="module")
def runs(demo):
    return load_run(demo["run1"]), load_run(demo["run2"])


def _block(groups: dict[str, dict], min_size: int = 50) -> dict:
    summary = [{"group": g, **row} for g, row in groups.items()]
    return {"summary": summary, "definitions": {}, "monthly": []}


def _profiles(min_size: int = 50, sizes: dict[str, int] | None = None) -> dict:
    sizes = sizes or {"P1": 400, "P2": 300}
    return {
        "min_persona_size": min_size,
        "personas": [{"id": k, "name": f"Persona {k}", "size": v} for k, v in sizes.items()],
        "groups": [{"id": "NEW", "name": "New customers (one purchase)"}],
    }


# ---- cards --------------------------------------------------------------------------------------
def test_card_shows_the_personas_kpis_next_to_all_customers(runs) -> None:
    run = runs[1]
    block, prof = run.metrics["kpis"], run.profiles
    rows = {r["group"]: r for r in block["summary"]}
    for p in prof["personas"]:
        mine = rows[p["id"]]
        md = cards.render_markdown(prof, p, run.uplift, block)
        page = html.unescape(re.sub(r"<[^>]+>", " ", cards.render_html(prof, p, run.uplift, block)))
        for text in (md.replace("\\", ""), page):
            assert f"Loyalty KPIs ({mine['period']})" in text
            assert f"{mine['retention_rate']:.1%}" in text
            assert f"{rows['ALL']['retention_rate']:.1%}" in text
            assert f"{mine['observed_churn_rate']:.1%}" in text
            if mine.get("modelled_churn_risk") is not None:
                assert f"{mine['modelled_churn_risk']:.1%}" in text
            for k, spec in (
                ("clv_12m", "{:,.0f}"),
                ("nps_mean", "{:.1f}"),
                ("csat_mean", "{:.0%}"),
                ("loyalty_participation", "{:.0%}"),
            ):
                if k == "clv_12m" and mine.get(k) is None:
                    # no lifetime model fits this data: withheld, and the run says why
                    assert run.metrics["clv"]["verdict"] == "unreliable", run.metrics["clv"]
                    continue
                assert mine.get(k) is not None, k  # the demo has every other KPI
                assert spec.format(mine[k]) in text, k
    # without the block (an older run) the card simply has no KPI section
    assert "Loyalty KPIs" not in cards.render_markdown(prof, prof["personas"][0], run.uplift)


def test_card_never_shows_kpis_of_a_group_below_the_minimum_size() -> None:
    prof = _profiles(min_size=50, sizes={"P1": 400, "P2": 30})
    block = _block(
        {
            "ALL": {"customers": 430, "retention_rate": 0.4, "new_customers": 80},
            "P1": {"customers": 400, "retention_rate": 0.5, "new_customers": 7},
            "P2": {"customers": 30, "retention_rate": 0.9, "new_customers": 3},
        }
    )
    big, small = prof["personas"]
    assert kpiview.card_rows(block, small, 50) is None
    got = {r["label"]: r for r in kpiview.card_rows(block, big, 50)["rows"]}
    assert got["Retention"]["persona"] == "50.0%" and got["Retention"]["all"] == "40.0%"
    # a count below the minimum size is never given as a number
    assert got["New customers"]["persona"] == "fewer than 50"
    assert got["New customers"]["all"] == "80"
    # a block that (wrongly) holds a small group is still refused by the persona's own size
    assert kpiview.card_rows(block, {"id": "P1", "size": 20}, 50) is None


# ---- report: across runs and acquisition --------------------------------------------------------
def test_kpi_charts_follow_each_persona_across_published_runs(runs) -> None:
    r1, r2 = runs
    history = [report.history_entry(r1), report.history_entry(r2)]
    prof, min_size = r2.profiles, int(r2.profiles["min_persona_size"])
    figs = kpiview.figures(r2.metrics["kpis"], history, prof)
    assert {"kpis", "kpi-runs-retention_rate"} <= set(figs)
    # lifetime value is drawn exactly when a usable lifetime model gave it
    has_clv = any(r.get("clv_12m") is not None for r in r2.metrics["kpis"]["summary"])
    assert ("kpi-runs-clv_12m" in figs) == has_clv
    assert has_clv or r2.metrics["clv"]["verdict"] == "unreliable"
    assert ("kpi-runs-modelled_churn_risk" in figs) == has_clv  # both from the lifetime model
    assert "kpi-runs-nps_mean" in figs
    names = {p["id"]: p["name"] for p in prof["personas"]} | {"ALL": "All customers"}
    names |= {g["id"]: g["name"] for g in prof["groups"]}
    for key, _title, _spec in kpiview.RUN_TRENDS:
        fig = figs.get(f"kpi-runs-{key}")
        if fig is None:
            continue
        for trace in fig.data:
            gid = next(g for g, n in names.items() if plots.esc(n) == trace.name)
            want = [h["kpis"][gid][key] for h in history if gid in (h["kpis"] or {})]
            if key == "new_customers":
                want = [v for v in want if v is not None and v >= min_size]
            assert list(trace.y) == pytest.approx(want), (key, gid)
            assert len(trace.x) == len(trace.y) <= 2
    # the ALL line has both runs' retention, which come from each run's own metrics
    ret = figs["kpi-runs-retention_rate"]
    all_line = next(t for t in ret.data if t.name == "All customers")
    assert list(all_line.y) == [
        next(r["retention_rate"] for r in run.metrics["kpis"]["summary"] if r["group"] == "ALL")
        for run in (r1, r2)
    ]


def test_new_customer_counts_below_the_minimum_size_are_not_drawn() -> None:
    prof = _profiles(min_size=50)
    history = [
        {"run_id": "a", "as_of": "2024-01-01", "kpis": {"P1": {"new_customers": 49}}},
        {"run_id": "b", "as_of": "2024-02-01", "kpis": {"P1": {"new_customers": 60}}},
    ]
    block = _block({"ALL": {"customers": 700}, "P1": {"customers": 400}})
    fig = kpiview.figures(block, history, prof)["kpi-runs-new_customers"]
    (trace,) = fig.data
    assert list(trace.x) == ["2024-02-01"] and list(trace.y) == [60]
    assert "49" not in json.dumps(fig.to_plotly_json(), default=str)
    # no run with enough new customers: no chart at all (not an empty one)
    assert "kpi-runs-new_customers" not in kpiview.figures(block, history[:1], prof)
    assert not kpiview.section(block, prof, history[:1])["run_charts"]


def test_acquisition_tables_say_fewer_than_n_and_match_the_metrics(runs) -> None:
    run = runs[1]
    block, prof = run.metrics["kpis"], run.profiles
    min_size = int(prof["min_persona_size"])
    sec = kpiview.section(block, prof, [report.history_entry(run)])
    by_channel, by_persona = sec["acquisition"]
    for table, records in (
        (by_channel, block["acquisition_by_channel"]),
        (by_persona, block["acquisition_by_likely_persona"]),
    ):
        months = [r["month"] for r in table["rows"]]
        assert months == sorted({r["first_period"] for r in records})
        cells = {
            (row["month"], h): c
            for row in table["rows"]
            for h, c in zip(table["headers"], row["cells"], strict=True)
        }
        names = {p["id"]: p["name"] for p in prof["personas"]}
        names |= {g["id"]: g["name"] for g in prof["groups"]}
        names |= {"undecided": "Undecided", "none": "No persona"}
        for r in records:
            cell = cells[(r["first_period"], names.get(r["key"], r["key"]))]
            n = r["new_customers"]
            assert cell == (f"{n:,}" if n >= min_size else f"fewer than {min_size:,}")
        # the total row sums the months, with the same rule
        for h, c in zip(table["headers"], table["total"], strict=True):
            n = sum(r["new_customers"] for r in records if names.get(r["key"], r["key"]) == h)
            assert c == (f"{n:,}" if n >= min_size else f"fewer than {min_size:,}")
        # no count below the minimum size is printed anywhere in the table
        for c in [*cells.values(), *table["total"]]:
            assert c.startswith("fewer than") or int(c.replace(",", "")) >= min_size
    assert any(c.startswith("fewer than") for r in by_persona["rows"] for c in r["cells"])
    # persona names, not ids, head the persona table
    assert {p["name"] for p in prof["personas"]} & set(by_persona["headers"])


def test_report_has_the_trend_and_acquisition_section(runs) -> None:
    r1, r2 = runs
    page = report.render(r2, history=[report.history_entry(r1)])
    assert 'id="kpi-trend"' in page and 'href="#kpi-trend"' in page
    assert 'data-fig="kpi-runs-retention_rate"' in page
    text = html.unescape(re.sub(r"<[^>]+>", " ", page.replace(report.plotly_bundle(), "")))
    assert "New customers per month by first channel" in text
    assert "2 runs so far" in text
