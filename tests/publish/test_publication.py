"""Publication: schema, outputs, audiences, safety scan, history and the atomic switch."""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from jsonschema import Draft202012Validator
from markdown_it import MarkdownIt

from personas.errors import ProfilesError, PublishError, SafetyError
from personas.lake import Lake
from personas.profile.validate import (
    profiles_errors,
    profiles_schema,
    validate_profiles,
)
from personas.publish import audiences, cards, safety, summary
from personas.publish import publication as publish
from tests.publish.fixtures import (
    BAD_ID,
    SCRIPT,
    copy_run,
    demo_build,
    hostile_profiles,
)

# The test's own list (independent of safety.PII_COLUMNS): columns that would be personal data.
PERSONAL = {
    "full_name",
    "first_name",
    "last_name",
    "name",
    "email",
    "phone",
    "address",
    "street",
    "postcode",
    "zip",
    "birth_date",
    "date_of_birth",
}
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


@pytest.fixture(scope="session")
def demo() -> dict[str, Path]:
    """The hostile demo runs (built once per process, shared by the test modules)."""
    return demo_build()


def _profiles(run: Path) -> dict:
    return json.loads((run / "profiles.json").read_text())


@pytest.fixture(scope="module")
def published(demo, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """run1 then run2 published into one root (private copies of the runs)."""
    base = tmp_path_factory.mktemp("published")
    runs = base / "runs"
    runs.mkdir()
    r1, r2 = copy_run(demo["run1"], runs), copy_run(demo["run2"], runs)
    root = base / "published"
    res1 = publish.publish(r1, root, lake_dir=demo["lake"])
    res2 = publish.publish(r2, root, lake_dir=demo["lake"])
    return {"root": root, "run1": r1, "run2": r2, "res1": res1, "res2": res2}


# ---- schema -------------------------------------------------------------------------------------
def test_schema_is_valid_draft_2020_12_and_real_profiles_pass(demo) -> None:
    schema = profiles_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    for run in ("run1", "run2"):
        prof = _profiles(demo[run])
        Draft202012Validator(schema).validate(prof)
        validate_profiles(prof)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p["personas"][0].pop("name"), "'name' is a required property"),
        (lambda p: p["personas"][0].update(share=1.5), "greater than the maximum"),
        (lambda p: p["personas"][0].update(id="persona-1"), "does not match"),
        (lambda p: p["personas"][0].update(size="many"), "is not of type 'integer'"),
        (lambda p: p["personas"][0]["actions"][0].pop("because"), "'because' is a required"),
        (lambda p: p["personas"][0]["traits"][0].update(direction="sideways"), "is not one of"),
        (lambda p: p.update(schema_version=2), "was expected"),
        (
            lambda p: p["groups"].append({"id": "NEW", "name": "New", "published": True}),
            "'size' is a required property",
        ),
        (
            lambda p: p["groups"].append(
                {"id": "NEW", "name": "New", "published": False, "size": 3}
            ),
            "should not be valid",
        ),
        (lambda p: p["personas"][1].update(size=p["min_persona_size"] - 1), "below min_persona"),
        (lambda p: p["personas"][1].update(slug=p["personas"][0]["slug"]), "duplicate slug"),
    ],
)
def test_invalid_profiles_fail_validation(demo, mutate, message: str) -> None:
    prof = copy.deepcopy(_profiles(demo["run1"]))
    mutate(prof)
    errors = profiles_errors(prof)
    assert any(message in e for e in errors), errors
    with pytest.raises(ProfilesError, match=r"profiles\.json is invalid"):
        validate_profiles(prof)


# ---- outputs ------------------------------------------------------------------------------------
def test_publish_writes_report_cards_audiences_and_switches_latest(published) -> None:
    root, r2, res = published["root"], published["run2"], published["res2"]
    prof = _profiles(r2)
    latest = root / "latest"
    assert latest.is_symlink() and latest.resolve() == r2.resolve()
    assert not os.path.isabs(os.readlink(latest)), "latest should be a relative link"
    assert res.report == r2 / "report.html" and res.report.stat().st_size > 4_000_000
    slugs = {p["slug"] for p in prof["personas"]}
    assert {p.name for p in res.cards} == {f"{s}.{x}" for s in slugs for x in ("md", "html")}
    groups = [g for g in prof["groups"] if g["published"]]
    assert len(res.audiences) == 2 * (len(slugs) + len(groups))
    run = json.loads((r2 / "run.json").read_text())
    assert run["status"] == "published" and "published_at" in run and "error" not in run
    assert not (r2 / "_publishing").exists()
    hist = json.loads((root / "history.json").read_text())["runs"]
    assert [h["run_id"] for h in hist] == ["run1", "run2"]
    assert hist[-1]["personas"] == [
        {"id": p["id"], "name": p["name"], "size": p["size"], "share": p["share"]}
        for p in prof["personas"]
    ]
    # the second report carries the migration and the two-point size trend
    page = res.report.read_text()
    assert "figdata-migration" in page and "(run1)" in page and "(run2)" in page


def test_audiences_match_assignments_and_quote_ids(published) -> None:
    r2 = published["run2"]
    prof = _profiles(r2)
    assign = pd.read_parquet(r2 / "assignments.parquet")
    seen_bad = False
    for gid, name, slug in audiences.audience_groups(prof):
        text = (r2 / "audiences" / f"{slug}.csv").read_text(encoding="utf-8")
        rows = list(csv.DictReader(io.StringIO(text)))
        pq_df = pd.read_parquet(r2 / "audiences" / f"{slug}.parquet")
        assert list(pq_df.columns) == [
            "customer_id",
            "persona_id",
            "persona_name",
            "confidence",
            "p_alive",
            "expected_days_to_next_purchase",
        ]
        assert list(rows[0]) == list(pq_df.columns)
        want = set(assign.loc[assign["persona_id"] == gid, "customer_id"])
        assert {r["customer_id"] for r in rows} == want == set(pq_df["customer_id"])
        assert {r["persona_id"] for r in rows} == {gid} and {r["persona_name"] for r in rows} == {
            name
        }
        assert len(rows) >= prof["min_persona_size"]
        conf = pq_df["confidence"].dropna().to_numpy()
        assert (conf[:-1] >= conf[1:]).all(), "audience not ordered by confidence"
        if BAD_ID in want:
            seen_bad = True
            # RFC 4180: the field is quoted and its quote doubled; it reads back exactly
            assert '"C""5,\'x\'"' in text
    assert seen_bad, "the hostile customer id should be in some audience"


def test_audiences_carry_the_features_lifetime_scores(published, demo) -> None:
    """P(alive) and the days to the next purchase are the features' own, customer by customer;
    one-purchase customers (the NEW audience) have no days, repeat buyers have them."""
    r2 = published["run2"]
    feats = pd.read_parquet(next((demo["root"] / "features").rglob("features.parquet")))
    feats = feats.set_index(feats["customer_id"].astype(str))
    got = pd.concat(pd.read_parquet(p) for p in (r2 / "audiences").glob("*.parquet")).set_index(
        "customer_id"
    )
    want = feats.loc[got.index]
    if "p_alive" not in feats.columns:  # no usable lifetime model: blank, and the run says why
        assert got[["p_alive", "expected_days_to_next_purchase"]].isna().all().all()
        assert json.loads((r2 / "metrics.json").read_text())["clv"]["verdict"] == "unreliable"
        return
    for c in ("p_alive", "expected_days_to_next_purchase"):
        np.testing.assert_allclose(got[c], want[c].astype(float), atol=1e-6)
    days = got["expected_days_to_next_purchase"]
    once = want["frequency"] <= 1
    assert days[once.to_numpy()].isna().all()
    assert days[~once.to_numpy()].notna().mean() > 0.95
    assert days.dropna().between(1, 3650).mean() > 0.95


def test_cards_have_every_part_and_render_safely(published) -> None:
    r2 = published["run2"]
    prof = _profiles(r2)
    for p in prof["personas"]:
        md = (r2 / "cards" / f"{p['slug']}.md").read_text()
        page = (r2 / "cards" / f"{p['slug']}.html").read_text()
        for part in (
            "Who they are",
            "What sets them apart",
            "How to recognise them",
            "Key metrics against the average",
            "Recommended actions",
        ):
            assert part in md and part in page
        assert md.startswith(f"# {cards.md_escape(p['name'])}\n")
        assert f"{p['share']:.0%} of customers" in md
        for a in p["actions"]:
            assert cards.md_escape(a["title"]) in md
        if p["rules"]["items"]:
            assert f"{p['rules']['fidelity']:.0%} of its customers" in md
        rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(md)
        assert "<table>" in rendered and "<script" not in rendered and "<img" not in rendered
        assert "<script" not in page and "@media print" in page
        assert not re.search(r"https?:|//", page.replace("../report.html", ""))


def test_hostile_profiles_give_inert_cards(demo) -> None:
    prof = hostile_profiles(_profiles(demo["run1"]))
    p = prof["personas"][0]
    md = cards.render_markdown(prof, p)
    rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(md)
    for raw in ("<script", "<img", 'javascript:alert(5)">', "<a href"):
        assert raw not in rendered, raw
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered  # shown as text
    page = cards.render_html(prof, p)
    assert "<script" not in page and "<img" not in page and '<a href="javascript' not in page


def test_summary_markdown_and_table_for_prefect(demo) -> None:
    prof = _profiles(demo["run2"])
    table = summary.summary_table(prof)
    assert [r["id"] for r in table][: len(prof["personas"])] == [
        p["id"] for p in sorted(prof["personas"], key=lambda q: (-q["size"], q["id"]))
    ]
    assert all(
        set(r) == {"id", "persona", "customers", "share", "top_trait", "first_action"}
        for r in table
    )
    md = summary.summary_markdown(prof)
    assert len(re.findall(r"\n\| P\d+ ", md)) == len(prof["personas"])
    hostile = copy.deepcopy(prof)
    hostile["personas"][0]["name"] = f"{SCRIPT} | pipe"
    md = summary.summary_markdown(hostile)
    rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(md)
    assert "<script" not in rendered
    # the escaped pipe does not add a table column
    row = next(line for line in md.splitlines() if "pipe" in line)
    assert len(re.findall(r"(?<!\\)\|", row)) == 6


def test_lineage_balances_and_is_in_the_report(published, demo) -> None:
    rows = Lake(demo["lake"]).lineage()
    assert {r["table"] for r in rows} == {"transactions", "customers", "events", "feedback"}
    for r in rows:
        assert r["rows_in"] == r["accepted"] + r["quarantined"] + r["duplicates"]
        assert "/" not in r["source"], "a full path must not reach the report"
    tx = next(r for r in rows if r["table"] == "transactions")
    page = (published["run2"] / "report.html").read_text()
    assert f"{tx['rows_in']:,}" in page and f"{tx['quarantined']:,}" in page
    assert "missing customer id" in page and "All sources balance" in page


# ---- failure keeps what was published -----------------------------------------------------------
def test_invalid_run_fails_and_keeps_latest(published, tmp_path: Path) -> None:
    root = published["root"]
    before = (root / "latest").resolve()
    hist = (root / "history.json").read_bytes()
    bad = copy_run(published["run1"], tmp_path, "bad")
    prof = _profiles(bad)
    prof["personas"][0]["share"] = 7
    (bad / "profiles.json").write_text(json.dumps(prof))
    with pytest.raises(ProfilesError):
        publish.publish(bad, root)
    assert (root / "latest").resolve() == before
    assert (root / "history.json").read_bytes() == hist
    run = json.loads((bad / "run.json").read_text())
    assert run["status"] == "failed" and "ProfilesError" in run["error"]
    assert not (bad / "report.html").exists()


def test_failure_at_the_last_step_restores_history(
    published, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = published["root"]
    before = (root / "latest").resolve()
    hist = (root / "history.json").read_bytes()
    run = copy_run(published["run1"], tmp_path, "late")

    def boom(*_a: object) -> None:
        raise OSError("disk full while switching")

    monkeypatch.setattr(publish, "switch_latest", boom)
    with pytest.raises(OSError, match="disk full"):
        publish.publish(run, root)
    assert (root / "latest").resolve() == before
    assert (root / "history.json").read_bytes() == hist
    assert json.loads((run / "run.json").read_text())["status"] == "failed"


def test_unsafe_output_is_refused(
    published, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = published["root"]
    before = (root / "latest").resolve()
    run = copy_run(published["run1"], tmp_path, "leaky")
    a = pd.read_parquet(run / "assignments.parquet")
    a["email"] = "someone@example.com"  # a mapping mistake upstream
    a.to_parquet(run / "assignments.parquet", index=False)
    with pytest.raises(SafetyError, match="personal-data column"):
        publish.publish(run, root)
    assert (root / "latest").resolve() == before
    assert not (run / "audiences").exists()


def test_failed_republication_keeps_the_live_run_published(
    demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = copy_run(demo["run1"], tmp_path)
    root = tmp_path / "pub"
    publish.publish(run, root)
    page = (run / "report.html").read_bytes()

    def boom(*_a: object) -> str:
        raise RuntimeError("template broke")

    monkeypatch.setattr(cards, "render_html", boom)
    with pytest.raises(RuntimeError, match="template broke"):
        publish.publish(run, root)
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "published" and "template broke" in info["last_error"]
    assert (root / "latest").resolve() == run.resolve()
    assert (run / "report.html").read_bytes() == page, "the live report must stay untouched"
    assert not (run / "_publishing").exists()


def test_running_run_is_refused(published, tmp_path: Path) -> None:
    run = copy_run(published["run1"], tmp_path, "running")
    info = json.loads((run / "run.json").read_text())
    info["status"] = "running"
    (run / "run.json").write_text(json.dumps(info))
    before = (published["root"] / "latest").resolve()
    with pytest.raises(PublishError, match="status is 'running'"):
        publish.publish(run, published["root"])
    assert (published["root"] / "latest").resolve() == before


def test_history_is_capped_and_a_republished_run_moves_to_the_end(demo, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    r1, r2 = copy_run(demo["run1"], runs), copy_run(demo["run2"], runs)
    root = tmp_path / "pub"
    for r in (r1, r2, r1):
        publish.publish(r, root, history_limit=2)
    hist = publish.read_history(root)
    assert [h["run_id"] for h in hist] == ["run2", "run1"]
    assert (root / "latest").resolve() == r1.resolve()


# ---- safety scan --------------------------------------------------------------------------------
def test_scan_finds_personal_data_and_small_groups(demo, tmp_path: Path) -> None:
    prof = _profiles(demo["run1"])
    p = prof["personas"][0]
    (tmp_path / "audiences").mkdir()
    (tmp_path / "cards").mkdir()
    pd.DataFrame({"customer_id": ["a"], "phone": ["+358 40 123"]}).to_parquet(
        tmp_path / "audiences" / f"{p['slug']}.parquet"
    )
    (tmp_path / "audiences" / "nobody.csv").write_text("customer_id\nx@example.com\n")
    (tmp_path / "cards" / "p99-ghost.md").write_text("# Ghost\n")
    (tmp_path / "notes.html").write_text("<p>contact jane.doe@example.org</p>")
    problems = "\n".join(safety.scan(tmp_path, prof))
    assert "personal-data column(s) ['phone']" in problems
    assert f"1 customers, below the minimum persona size {prof['min_persona_size']}" in problems
    assert "nobody.csv: audience of no published persona" in problems
    assert "looks like an e-mail address" in problems
    assert "p99-ghost.md: card of no published persona" in problems
    assert "notes.html: contains an e-mail address" in problems


def test_every_published_file_is_free_of_personal_data_and_small_groups(published) -> None:
    """Walk everything reachable through ``latest`` with checks independent of safety.scan."""
    latest = published["root"] / "latest"
    prof = _profiles(latest)
    min_size = prof["min_persona_size"]
    bundle_free = None
    slugs = {p["slug"] for p in prof["personas"]}
    files = [p for p in latest.rglob("*") if p.is_file()]
    assert any(f.name == "report.html" for f in files)
    for f in files:
        if f.suffix == ".parquet":
            df = pd.read_parquet(f)
            assert not PERSONAL & {c.lower() for c in df.columns}, f
            if "customer_id" in df:
                assert not df["customer_id"].astype(str).str.fullmatch(EMAIL.pattern).any(), f
            if f.parent.name == "audiences":
                assert len(df) >= min_size, f
        elif f.suffix == ".csv":
            with open(f, newline="") as fh:
                header = next(csv.reader(fh))
            assert not PERSONAL & {c.lower() for c in header}, f
            assert not EMAIL.search(f.read_text()), f
        elif f.suffix in (".html", ".md", ".json"):
            text = f.read_text(encoding="utf-8")
            if f.name == "report.html":
                from personas.publish.report import plotly_bundle

                text = text.replace(plotly_bundle(), "")  # third-party, identical to plotly's
                bundle_free = text
            assert not EMAIL.search(text), f
            if f.suffix != ".json":  # JSON holds data as data; pages must hold it as text
                assert "<script>alert(1)" not in text, f
            if f.parent.name == "cards":
                assert f.stem in slugs, f
    assert bundle_free is not None
    # groups below the minimum size are named at most, never counted
    assign = pd.read_parquet(latest / "assignments.parquet")
    for g in prof["groups"]:
        if not g["published"]:
            n = int((assign["persona_id"] == g["id"]).sum())
            assert f"{n:,} customers" not in bundle_free


def test_prospect_audiences_hold_likely_personas_at_minimum_size(published) -> None:
    """Look-alike audiences: exactly the prospects and new customers whose likely persona is
    the persona, most probable first, only at the minimum size, never counted in its size."""
    r2 = published["run2"]
    prof = _profiles(r2)
    min_size = prof["min_persona_size"]
    assign = pd.read_parquet(r2 / "assignments.parquet")
    likely = assign[assign["likely_persona"].notna()]
    assert len(likely) > 0 and not likely["profiled"].any()
    assert set(likely["persona_id"]) <= {"NEW", "PROSPECT"}
    metrics = json.loads((r2 / "metrics.json").read_text())
    assert set(metrics["likely_persona"]["stages"]) == {"prospect", "one_time"}
    folder = r2 / "prospect_audiences"
    written = {f.stem for f in folder.glob("*.parquet")}
    for p in prof["personas"]:
        assert p["size"] == int((assign["persona_id"] == p["id"]).sum())  # likely not counted
        want = likely[likely["likely_persona"] == p["id"]]
        assert (p["slug"] in written) == (len(want) >= min_size)
        if p["slug"] in written:
            got = pd.read_parquet(folder / f"{p['slug']}.parquet")
            assert set(got["customer_id"]) == set(want["customer_id"])
            assert set(got["stage"]) <= {"prospect", "one_time"}
            prob = got["likely_probability"].to_numpy()
            assert (prob[:-1] >= prob[1:]).all() and (prob >= 0.5).all()
    page = (r2 / "report.html").read_text()
    assert "Likely personas of prospects and new customers" in page
    assert "figdata-likely" in page


def test_scan_refuses_small_or_orphan_prospect_audiences(demo, tmp_path: Path) -> None:
    prof = _profiles(demo["run1"])
    p = prof["personas"][0]
    (tmp_path / "prospect_audiences").mkdir()
    pd.DataFrame({"customer_id": ["a", "b"]}).to_parquet(
        tmp_path / "prospect_audiences" / f"{p['slug']}.parquet"
    )
    (tmp_path / "prospect_audiences" / "ghost.csv").write_text("customer_id\nz\n")
    problems = "\n".join(safety.scan(tmp_path, prof))
    assert f"2 customers, below the minimum persona size {prof['min_persona_size']}" in problems
    assert "ghost.csv: prospect audience of no published persona" in problems
