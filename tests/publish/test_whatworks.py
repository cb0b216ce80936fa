"""The "What works for whom" section, the cards' campaign lines and the tested-message playbook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from personas import runs
from personas.campaigns.uplift import measure_run
from personas.errors import SafetyError
from personas.publish import publication, report
from personas.synthetic.campaign import NAME, VARIANT
from tests.publish.fixtures import SCRIPT, copy_run, demo_build


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict:
    demo = demo_build()
    run_dir = copy_run(demo["run2"], tmp_path_factory.mktemp("whatworks"))
    uplift = measure_run(run_dir, demo["lake"])
    return {"run": run_dir, "uplift": uplift, "lake": demo["lake"], "source": demo["run2"]}


def test_uplift_is_written_into_the_run_with_every_published_persona(measured) -> None:
    run = runs.load_run(measured["run"])
    u = run.uplift
    assert u == json.loads(json.dumps(measured["uplift"]))  # what was measured, read back
    camp = next(c for c in u["campaigns"] if c["campaign"] == NAME)
    assert camp["causal"] and camp["variants"] == [VARIANT]
    ids = {p["id"] for p in run.profiles["personas"]} | {g["id"] for g in run.profiles["groups"]}
    rows = {r["persona_id"] for r in camp["rows"]}
    assert "overall" in rows and rows - {"overall"} <= ids
    for r in camp["rows"]:
        assert r["n_treatment"] + r["n_control"] >= run.profiles["min_persona_size"]
        assert r["conversion"]["low"] <= r["conversion"]["uplift"] <= r["conversion"]["high"]


def test_report_section_lists_each_persona_with_its_interval(measured) -> None:
    run = runs.load_run(measured["run"])
    page = report.render(run)
    assert 'id="whatworks"' in page and 'href="#whatworks"' in page
    section = page.split('id="whatworks"')[1].split("</section>")[0]
    camp = next(c for c in run.uplift["campaigns"] if c["campaign"] == NAME)
    for r in camp["rows"]:
        c = r["conversion"]
        assert f'data-persona="{r["persona_id"]}"' in section
        assert f"{100 * c['low']:+.1f} to {100 * c['high']:+.1f} pp" in section
    assert "Newcombe" in section
    # campaigns without a control group are labelled, never given an uplift
    if any(not c["causal"] and c["rows"] for c in run.uplift["campaigns"]):
        assert "not causal" in section


def test_playbook_recommends_only_tested_messages_and_warns_on_harm(measured) -> None:
    run = runs.load_run(measured["run"])
    camp = next(c for c in run.uplift["campaigns"] if c["campaign"] == NAME)
    by_persona = {r["persona_id"]: r for r in camp["rows"]}
    from personas.publish.cards import card_context

    seen = set()
    for p in run.profiles["personas"]:
        view = card_context(run.profiles, p, run.uplift)["p"]
        tested = [a for a in view["actions"] if a["title"] in ("Tested message", "Warning")]
        r = by_persona.get(p["id"])
        verdict = r["verdict"] if r else None
        seen.add(verdict)
        if verdict == "raised":
            assert tested and tested[0]["title"] == "Tested message"
            assert VARIANT in tested[0]["what"] and "excludes zero" in tested[0]["because"]
        elif verdict == "lowered":
            assert tested and tested[0]["title"] == "Warning" and "lowered" in tested[0]["what"]
        else:
            assert tested == []  # no recommendation from an interval that includes zero
        if r:
            assert any(VARIANT in line for line in view["campaign_lines"])
    # the planted test moves at least one discovered persona either way (the put-off persona
    # lowers it); every branch is also checked on handmade rows in tests/campaigns/test_advice
    assert seen & {"raised", "lowered"}


def test_publish_puts_campaign_lines_in_the_cards(measured, tmp_path: Path) -> None:
    res = publication.publish(measured["run"], tmp_path / "published", measured["lake"])
    md = "\n".join(p.read_text() for p in res.cards if p.suffix == ".md")
    assert "What campaigns did for this persona" in md
    assert VARIANT.replace("_", "\\_") in md  # Markdown-escaped
    cards = "\n".join(p.read_text() for p in res.cards if p.suffix == ".html")
    assert "What campaigns did for this persona" in cards and VARIANT in cards


def test_hostile_variant_names_are_escaped_and_small_rows_refused(measured, tmp_path) -> None:
    run_dir = copy_run(measured["run"], tmp_path, "hostile")
    u = json.loads((run_dir / runs.UPLIFT).read_text())
    camp = next(c for c in u["campaigns"] if c["campaign"] == NAME)
    for r in camp["rows"]:
        r["variant"] = SCRIPT
    runs.write_uplift(run_dir, u)
    page = report.render(runs.load_run(run_dir))
    assert SCRIPT not in page.split('id="whatworks"')[1].split("</section>")[0]
    camp["rows"][0]["n_treatment"], camp["rows"][0]["n_control"] = 3, 2
    runs.write_uplift(run_dir, u)
    with pytest.raises(SafetyError, match="below the minimum"):
        publication.publish(run_dir, tmp_path / "pub")


def test_tested_advice_is_written_into_profiles_json(measured) -> None:
    """profiles.json carries each persona's tested messages (schema-valid), sizes untouched."""
    from personas.profile.validate import validate_profiles

    source = runs.load_run(measured["source"])
    before = {p["id"]: p["size"] for p in source.profiles["personas"]}
    run = runs.load_run(measured["run"])
    validate_profiles(run.profiles)
    camp = next(c for c in run.uplift["campaigns"] if c["campaign"] == NAME)
    verdicts = {r["persona_id"]: r["verdict"] for r in camp["rows"] if not r.get("likely")}
    kinds = set()
    for p in run.profiles["personas"]:
        assert p["size"] == before[p["id"]]  # likely personas never add to a persona's size
        tested = p["tested_messages"]
        want = verdicts.get(p["id"])
        if want in ("raised", "lowered"):
            (t,) = tested
            assert t["verdict"] == want and t["variant"] == VARIANT and t["campaign"] == NAME
            assert (t["low"] > 0) if want == "raised" else (t["high"] < 0)
            key = "tested_message" if want == "raised" else "message_warning"
            assert p["actions"][0]["key"] == key and p["actions"][0]["what"] == t["action"]
            kinds.add(t["kind"])
        else:
            assert tested == [] and all(
                a["key"] not in ("tested_message", "message_warning") for a in p["actions"]
            )
    assert kinds  # the planted test moves at least one discovered persona either way
    # measuring again replaces the advice instead of stacking it; the cards show it once
    measure_run(measured["run"], measured["lake"])
    again = runs.load_run(measured["run"])
    assert again.profiles == run.profiles
    from personas.publish.cards import card_context

    for p in again.profiles["personas"]:
        view = card_context(again.profiles, p, again.uplift)["p"]
        titles = [a["title"] for a in view["actions"]]
        assert titles.count("Tested message") + titles.count("Warning") == len(p["tested_messages"])


def test_likely_personas_of_contacted_prospects_get_rows_of_their_own(measured) -> None:
    """Prospects and first-time buyers by likely persona: labelled, counted, never members."""
    from personas.campaigns.exposure import contacts
    from personas.campaigns.uplift import LIKELY_PREFIX, uplift_table
    from personas.lake import Lake

    run = runs.load_run(measured["run"])
    a = run.assignments
    con = Lake(measured["lake"]).connect()
    try:
        df = contacts(con)
    finally:
        con.close()
    # every row, however small, so that the counts can be checked (publishing keeps the minimum)
    u = uplift_table(df, a, min_size=1, n_boot=200)
    camp = next(c for c in u["campaigns"] if c["campaign"] == NAME)
    likely = [r for r in camp["rows"] if r["likely"]]
    with_likely = set(a.loc[a["likely_persona"].notna(), "customer_id"].astype(str))
    mine = df[df["campaign"] == NAME]
    assert (
        camp["likely_contacted"]
        == mine[mine["arm"] == "treatment"]["customer_id"].isin(with_likely).sum()
    )
    assert camp["likely_contacted"] > 0, "the planted test contacts prospects"
    # each likely persona's row counts its arms as a recount does; without a control, no row
    m = mine.merge(a[["customer_id", "likely_persona"]].astype(str), on="customer_id")
    m = m[m["likely_persona"].isin(set(a["likely_persona"].dropna().astype(str)))]
    counts = m.groupby(["likely_persona", "arm"]).size().unstack(fill_value=0)
    by_id = {r["persona_id"]: r for r in likely}
    assert likely and set(by_id) <= set(counts.index)
    for lid, c in counts.iterrows():
        if c.get("control", 0) == 0:
            assert lid not in by_id  # nothing to compare with: not published
        else:
            got = (by_id[lid]["n_treatment"], by_id[lid]["n_control"])
            assert got == (c.get("treatment", 0), c["control"])
    pairs = a[["likely_persona", "likely_persona_name"]].dropna().astype(str)
    names = dict(zip(pairs["likely_persona"], pairs["likely_persona_name"], strict=True))
    for r in likely:
        assert r["persona_name"] == LIKELY_PREFIX + names[r["persona_id"]]
    # the published table keeps the minimum size for likely rows too
    for r in (r for c in run.uplift["campaigns"] for r in c["rows"]):
        assert r["n_treatment"] + r["n_control"] >= run.profiles["min_persona_size"]


def test_forest_plot_per_campaign_with_zero_line_and_flagged_small_cells(measured) -> None:
    from personas.publish import whatworks
    from personas.publish.plots import esc
    from personas.publish.plots.uplift import SMALL_LABEL

    run = runs.load_run(measured["run"])
    u = json.loads(json.dumps(run.uplift))
    camp = next(c for c in u["campaigns"] if c["campaign"] == NAME)
    camp["rows"][-1]["small_cell"] = True
    figs = whatworks.figures(u)
    ctx = whatworks.section(u)
    fid = next(c["figure"] for c in ctx["campaigns"] if c["name"] == NAME)
    fig = figs[fid]
    points = {}
    for tr in fig.data:
        for i, (x, y) in enumerate(zip(tr.x, tr.y, strict=True)):
            points[y] = (x, tr.error_x.array[i], tr.error_x.arrayminus[i], tr.marker.symbol)
    assert len(points) == len(camp["rows"])  # one dot per row (one variant)
    for r in camp["rows"]:
        c = r["conversion"]
        x, plus, minus, symbol = points[esc(r["persona_name"])]  # names are escaped
        assert x == pytest.approx(100 * c["uplift"])
        assert x + plus == pytest.approx(100 * c["high"])
        assert x - minus == pytest.approx(100 * c["low"])
        assert symbol == ("circle-open" if r.get("small_cell") else "circle")
    assert any(SMALL_LABEL in tr.name for tr in fig.data)
    (zero,) = fig.layout.shapes
    assert zero.x0 == 0 and zero.x1 == 0
    # and the report draws it inside "What works for whom"
    page = report.render(run)
    section = page.split('id="whatworks"')[1].split("</section>")[0]
    assert f'data-fig="{fid}"' in section and f'id="figdata-{fid}"' in section
