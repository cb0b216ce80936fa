"""The report in a real browser: Debian's Chromium driven by Playwright, network disabled.

Opens ``report.html`` from disk (``file://``) with every non-file request blocked and
recorded, then checks: no console error and no page error, every Plotly figure drawn (a
``.js-plotly-plot`` with its SVG or WebGL layer), the persona switcher changes the visible
persona (mouse and keyboard), hovering a bar shows plotly's hover label, no script from the
data ran (no dialog), and nothing was fetched. Screenshots go to ``test-artifacts/``.

Skips locally when /usr/bin/chromium is absent; fails under ``CI`` (``.ci/run`` installs it).
Never runs ``playwright install``: the Debian browser is used through ``executable_path``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from personas.campaigns.uplift import measure_run
from personas.publish import publication as publish
from tests.conftest import REPO, require_system
from tests.publish.fixtures import copy_run, demo_build, hostile_profiles


@pytest.fixture(scope="session")
def demo() -> dict[str, Path]:
    """The hostile demo runs (built once per process, shared by the test modules)."""
    return demo_build()


pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_system(CHROMIUM, "Chromium (Debian package chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def site(demo, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """run1 then run2 published (so the page has a migration and a trend), plus a run whose
    profiles carry markup in every text field."""
    base = tmp_path_factory.mktemp("browser")
    runs = base / "runs"
    runs.mkdir()
    r1, r2 = copy_run(demo["run1"], runs), copy_run(demo["run2"], runs)
    measure_run(r2, demo["lake"])  # the refresh flow's campaign step: "What works for whom"
    publish.publish(r1, base / "published", lake_dir=demo["lake"])
    res = publish.publish(r2, base / "published", lake_dir=demo["lake"])
    hostile = copy_run(demo["run1"], runs, "hostile")
    prof = hostile_profiles(json.loads((hostile / "profiles.json").read_text()))
    (hostile / "profiles.json").write_text(json.dumps(prof))
    res_h = publish.publish(hostile, base / "published-hostile")
    return {"report": res.report, "hostile": res_h.report, "run": r2}


class Page:
    """A page opened offline with its console messages, errors, requests and dialogs."""

    def __init__(self, browser: Any, path: Path, width: int = 1366, height: int = 900):
        self.page = browser.new_page(viewport={"width": width, "height": height})
        self.console: list[str] = []
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self._dialog)
        self.page.route("**/*", self._route)
        self.page.goto(path.resolve().as_uri())

    def _route(self, route: Any) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            self.requests.append(route.request.url)
            route.abort()

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def ready(self) -> dict[str, Any]:
        self.page.wait_for_selector("html[data-report-ready='1']", timeout=60_000)
        return self.page.evaluate("window.personasReport")

    def console_errors(self) -> list[str]:
        return [m for m in self.console if m.startswith("error")] + self.errors


def _rendered(page: Any) -> dict[str, bool]:
    """Per figure div: is it a drawn plotly graph with its main SVG or WebGL layer?"""
    return page.evaluate("""() => Object.fromEntries(
        Array.from(document.querySelectorAll('.fig[data-fig]')).map(d => [
          d.dataset.fig,
          d.classList.contains('js-plotly-plot') &&
            !!d.querySelector('svg.main-svg') &&
            (d.dataset.fig !== 'map' || !!d.querySelector('canvas'))]))""")


def test_report_renders_offline_without_errors(browser, site) -> None:
    p = Page(browser, site["report"])
    state = p.ready()
    assert state["errors"] == [], state["errors"]
    assert p.console_errors() == []
    assert p.requests == [], f"the report tried to fetch {p.requests}"
    drawn = _rendered(p.page)
    visible = p.page.evaluate("""() => Array.from(document.querySelectorAll('.fig[data-fig]'))
        .filter(d => !d.closest('[hidden]')).map(d => d.dataset.fig)""")
    assert {"map", "sizes", "heatmap", "migration", "trend", "model", "value"} <= set(visible)
    assert all(drawn[f] for f in visible), {f: drawn[f] for f in visible}
    assert state["rendered"] == len(visible)
    # one WebGL context for the whole page: the map
    assert p.page.evaluate("document.querySelectorAll('canvas.gl-canvas-context').length") <= 1
    ARTIFACTS.mkdir(exist_ok=True)
    p.page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    p.page.close()


def test_persona_switcher_changes_the_visible_persona(browser, site) -> None:
    p = Page(browser, site["report"])
    p.ready()
    tabs = p.page.locator('[role="tab"]')
    n = tabs.count()
    assert n >= 3
    seen = []
    for i in range(n):
        tab = tabs.nth(i)
        tab.click()
        panel_id = tab.get_attribute("aria-controls")
        panel = p.page.locator(f"#{panel_id}")
        assert tab.get_attribute("aria-selected") == "true"
        assert panel.is_visible()
        assert p.page.locator('[role="tabpanel"]:visible').count() == 1
        fig = panel.locator(".fig[data-fig]")
        p.page.wait_for_function(
            "el => el.getAttribute('data-rendered') === '1'", arg=fig.element_handle()
        )
        assert fig.locator("svg.main-svg").count() >= 1
        seen.append(panel.locator("h3").inner_text())
    assert len(set(seen)) == n, "each tab must show a different persona"
    # keyboard: arrow keys move between tabs (WAI-ARIA tabs pattern)
    tabs.nth(0).click()
    tabs.nth(0).press("ArrowRight")
    assert tabs.nth(1).get_attribute("aria-selected") == "true"
    assert p.page.evaluate("document.activeElement.id") == tabs.nth(1).get_attribute("id")
    # after visiting every tab, every figure of the page is drawn
    assert all(_rendered(p.page).values())
    # a persona card link from the overview opens the right tab
    last = tabs.nth(n - 1).get_attribute("aria-controls")
    p.page.locator(f'a[href="#{last}"]').first.click()
    p.page.wait_for_function(f"!document.getElementById('{last}').hidden")
    p.page.locator(f"#{last}").screenshot(path=str(ARTIFACTS / "report-persona.png"))
    assert p.console_errors() == [] and p.requests == []
    p.page.close()


def test_hover_shows_a_label(browser, site) -> None:
    p = Page(browser, site["report"])
    p.ready()
    bar = p.page.locator("#fig-sizes .bars .point path").first
    bar.scroll_into_view_if_needed()
    box = bar.bounding_box()
    assert box is not None
    p.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    label = p.page.locator("#fig-sizes .hoverlayer .hovertext")
    label.wait_for(timeout=5_000)
    assert "customers" in (label.text_content() or "")
    # the WebGL map answers hovering too
    p.page.locator("#fig-map").scroll_into_view_if_needed()
    found = p.page.evaluate("""() => {
        const gd = document.getElementById('fig-map');
        const t = gd._fullData[0], xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
        const r = gd.querySelector('.nsewdrag').getBoundingClientRect();
        return {x: r.left + xa.d2p(t.x[0]), y: r.top + ya.d2p(t.y[0])};
    }""")
    p.page.mouse.move(found["x"], found["y"])
    p.page.locator("#fig-map .hoverlayer .hovertext").wait_for(timeout=5_000)
    assert p.console_errors() == []
    p.page.close()


def test_hostile_text_stays_text_in_the_browser(browser, site) -> None:
    p = Page(browser, site["hostile"])
    state = p.ready()
    assert p.dialogs == [], f"script from the data ran: {p.dialogs}"
    assert state["errors"] == [] and p.console_errors() == [] and p.requests == []
    # the category name is displayed literally, on the heatmap axis and in the page
    ticks = p.page.locator("#fig-heatmap .ytick text").all_text_contents()
    assert any("<script>alert(1)</script>" in t for t in ticks), ticks
    assert "<script>alert(1)</script>" in p.page.locator('[role="tab"]').first.inner_text()
    assert p.page.evaluate("document.querySelectorAll('img').length") == 0
    # no link leaves the page: HTML anchors and SVG anchors (which plotly makes from <a href>)
    hrefs = p.page.evaluate("""() => Array.from(document.querySelectorAll('a')).map(
        a => a.getAttribute('href') || a.getAttribute('xlink:href') || '')""")
    assert all(h.startswith("#") or h.startswith("cards/") for h in hrefs), hrefs
    legend = p.page.locator("#fig-channel .legendtext").all_text_contents()
    assert '<a href="https://evil.example/">deal</a>' in legend
    p.page.close()


def test_card_prints_and_loads_offline(browser, site) -> None:
    card = next((site["run"] / "cards").glob("*.html"))
    p = Page(browser, card, width=900)
    p.page.wait_for_load_state("load")
    assert p.console_errors() == [] and p.requests == []
    assert p.page.locator("h1").inner_text()
    p.page.emulate_media(media="print")
    assert not p.page.locator(".noprint").first.is_visible()
    p.page.screenshot(path=str(ARTIFACTS / "card.png"), full_page=True)
    p.page.close()


def test_what_works_for_whom_section_is_reachable_and_readable(browser, site) -> None:
    p = Page(browser, site["report"])
    p.ready()
    p.page.click("nav.sections a[href='#whatworks']")
    section = p.page.locator("#whatworks")
    assert section.is_visible()
    rows = section.locator("table.uplift[data-campaign='planted_test'] tbody tr")
    assert rows.count() >= 2  # overall plus personas
    first = rows.first
    assert first.get_attribute("data-persona") == "overall"
    cells = first.locator("td").all_inner_texts()
    assert any(" to " in c and c.endswith("pp") for c in cells), cells  # the 95% interval
    forest = section.locator(".fig[data-fig^='forest-']").first
    forest.scroll_into_view_if_needed()
    forest.locator(".main-svg").first.wait_for(state="attached")  # the forest plot is drawn
    assert (
        forest.locator(".scatterlayer .point").count()
        == rows.count()
        + section.locator("table.likely[data-campaign='planted_test'] tbody tr").count()
    )
    assert p.console_errors() == [] and p.requests == []
    ARTIFACTS.mkdir(exist_ok=True)
    section.screenshot(path=str(ARTIFACTS / "report-whatworks.png"))
    p.page.close()
