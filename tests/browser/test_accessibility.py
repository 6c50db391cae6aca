"""axe-core (vendored from npm) finds no serious or critical violation on any kind of page."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from support import map_ready

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"  # axe-core 4.14.1
RUN_AXE = """() => axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map(v => ({
  id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})))"""
PAGES = {
    "home": "index.html",
    "category": "photographs/index.html",
    "category-page-2": "photographs/page/2/index.html",
    "item": "ITEM",
    "map": "map/index.html",
    "map-category": "map/illustrations/index.html",
    "find": "find/index.html",
    "404": "no/such/page/",
    "search": "search/index.html?q=testsamlingen",
}


def test_the_vendored_axe_core_is_the_published_file() -> None:
    assert hashlib.sha256(AXE.read_bytes()).hexdigest() == AXE_SHA256
    assert (AXE.parent / "LICENSE").read_text(encoding="utf-8").startswith("Mozilla Public License")


def violations(page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    return page.evaluate(RUN_AXE)


@pytest.mark.parametrize("language", ["sv", "en"])
@pytest.mark.parametrize("kind", list(PAGES))
def test_no_serious_or_critical_accessibility_violations(page, watch, request, language, kind) -> None:
    site = request.getfixturevalue(language)
    path = PAGES[kind]
    if path == "ITEM":
        path = site.item("1888Slum")["url"]
    if kind == "404":
        watch.expect_error(r"status of 404")
    page.goto(site.url + path)
    if kind.startswith("map"):
        map_ready(page)
        page.locator("canvas.map-canvas").focus()
        page.keyboard.press("n")  # with the tooltip and the live region in use
    if kind == "search":
        page.wait_for_selector(".pagefind-ui__result img", timeout=15_000)  # with its results
    found = violations(page)
    serious = [v for v in found if v["impact"] in ("serious", "critical")]
    assert not serious, serious
    assert not found, f"{kind} ({language}): minor violations: {found}"
