"""What the "Liknande" list calls similar, and the small things of every page, at desktop
(1366x768) and phone (390x844) size: neighbours below the category's bands are folded
under "Fler bilder"; the first screenful loads at once; the reuse report is in the
navigation, and an item with copies leads to its group's page; the 404 page works when the site is served from a sub-path."""

from __future__ import annotations

import json

import pytest

from support import SUB_PATH, screenshot
from test_accessibility import violations

VIEWPORTS = {
    "desktop": {"viewport": {"width": 1366, "height": 768}},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
              "device_scale_factor": 2},
}
HANDFUL = 5  # from this many neighbours below the bands, they are shown folded
FIRST_SCREEN = """() => [...document.images].filter(i => {
    const r = i.getBoundingClientRect();
    return r.width > 0 && r.top < innerHeight && r.bottom > 0;
  }).map(i => ({src: i.getAttribute('src'), loading: i.getAttribute('loading')}))"""
NOT_SHOWN = """() => [...document.images].filter(i => i.getBoundingClientRect().top >= innerHeight)
  .map(i => i.getAttribute('loading'))"""


def neighbours(site, item: dict) -> list[dict]:
    return json.loads((site.folder / item["neighbors_url"]).read_text("utf-8"))["neighbors"]


def below_the_bands(site, item: dict) -> list[dict]:
    return [n for n in neighbours(site, item) if n["band"] is None and not n["copy"]]


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_neighbours_below_the_bands_are_folded_under_more_pictures(open_page, sv, size) -> None:
    folded = [it for it in sv.items if len(below_the_bands(sv, it)) >= HANDFUL]
    assert folded, "no item has unrelated neighbours in the test collection"
    item = folded[0]
    page = open_page(**VIEWPORTS[size])
    page.goto(sv.url + item["url"])
    similar = page.locator("section.similar")
    bands = similar.locator(".similar__bands")
    assert [b.inner_text() for b in bands.locator("strong").all()] == ["Mycket lik", "Lik", "Något lik"]
    called = similar.locator(":scope > ol.grid > li")
    assert called.count() == len(neighbours(sv, item)) - len(below_the_bands(sv, item))
    more = similar.locator("details.similar__more")
    assert more.count() == 1 and more.get_attribute("open") is None
    summary = more.locator("summary")
    assert summary.inner_text() == f"Fler bilder ({len(below_the_bands(sv, item))})"
    cards = more.locator("ol.grid > li")
    assert cards.count() == len(below_the_bands(sv, item)) and not cards.first.is_visible()
    screenshot(page, f"item-folded-{size}", full_page=True)
    # Opened by keyboard, as a visitor without a mouse would.
    summary.focus()
    page.keyboard.press("Enter")
    assert more.get_attribute("open") is not None and cards.first.is_visible()
    titles = [c.locator(".card__title").inner_text() for c in cards.all()]
    assert titles == [n["title"] for n in below_the_bands(sv, item)]
    for card, n in zip(cards.all(), below_the_bands(sv, item)):
        text = card.inner_text()
        assert f"Likhet {round(n['similarity'] * 100)}\u00a0%" in text
        assert not any(word in text for word in ("Mycket lik", "Något lik", "Lik ·"))
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    screenshot(page, f"item-folded-open-{size}", full_page=True)
    if size == "desktop":
        assert violations(page) == []


def test_fewer_than_a_handful_below_the_bands_are_left_out(sv) -> None:
    for item in sv.items:
        html = (sv.folder / item["url"]).read_text("utf-8")
        below = len(below_the_bands(sv, item))
        assert ('class="similar__more"' in html) == (below >= HANDFUL), item["id"]
        shown = html.count('class="card__link"')
        assert shown == len(neighbours(sv, item)) - (below if below < HANDFUL else 0), item["id"]


@pytest.mark.parametrize("size", list(VIEWPORTS))
@pytest.mark.parametrize("path", ["index.html", "photographs/index.html", "ITEM", "reuse/index.html"])
def test_the_first_screenful_is_not_lazy(open_page, sv, size, path) -> None:
    page = open_page(**VIEWPORTS[size])
    is_item = path == "ITEM"
    if is_item:
        path = sv.item("1888Slum")["url"]
    page.goto(sv.url + path)
    page.wait_for_load_state("load")
    shown = page.evaluate(FIRST_SCREEN)
    assert shown, f"{path}: no image in the first screenful"
    assert [i for i in shown if i["loading"] == "lazy"] == [], f"{path} ({size})"
    if is_item:
        main = page.locator(".item__figure img")
        assert main.get_attribute("fetchpriority") == "high" and main.get_attribute("loading") is None
        # Below the first screenful, the thumbnails wait until they are scrolled to.
        assert set(page.evaluate(NOT_SHOWN)) <= {"lazy"}


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_an_item_with_copies_leads_to_its_group_and_the_group_to_the_report(open_page, sv, size) -> None:
    groups = json.loads((sv.folder / "api/v1/reuse.json").read_text("utf-8"))["groups"]
    assert groups, "the test collection has no copies"
    group = groups[0]
    page = open_page(**VIEWPORTS[size])
    page.goto(sv.url + group["items"][-1]["url"])
    page.get_by_role("link", name="Samma bild på andra ställen").click()
    page.wait_for_url("**/" + group["page"])
    assert page.locator("h1").inner_text() == f"Samma bild på {len(group['items'])} ställen"
    shown = page.locator("main .card__link").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert [h.split("/")[-2] for h in shown] == [it["slug"] for it in group["items"]]
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    screenshot(page, f"reuse-group-{size}")
    assert violations(page) == []
    page.get_by_role("link", name="Alla grupper av kopior").click()
    page.wait_for_url("**/reuse/index.html")


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_the_reuse_report_is_in_the_navigation(open_page, sv, size) -> None:
    page = open_page(**VIEWPORTS[size])
    page.goto(sv.url)
    nav = page.get_by_role("navigation", name="Kategorier")
    link = nav.get_by_role("link", name="Kopior")
    link.scroll_into_view_if_needed()
    assert link.is_visible()
    link.click()
    page.wait_for_url("**/reuse/index.html")
    assert page.locator("h1").inner_text() == "Samma bild på flera ställen"
    here = page.get_by_role("navigation", name="Kategorier").get_by_role("link", name="Kopior")
    assert here.get_attribute("aria-current") == "page"
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    screenshot(page, f"reuse-{size}")
    if size == "desktop":
        assert violations(page) == []


@pytest.mark.parametrize("size", list(VIEWPORTS))
@pytest.mark.parametrize("missing", ["photographs/no-such-item/index.html", "not/a/folder/of/the/site"])
def test_the_404_page_finds_the_site_served_from_a_sub_path(open_page, watch, sv_sub, size, missing) -> None:
    watch.expect_error(r"status of 404")
    page = open_page(**VIEWPORTS[size])
    response = page.goto(sv_sub.url + missing)
    assert response.status == 404 and sv_sub.url.endswith(SUB_PATH)
    page.wait_for_selector(f"html[data-root='{SUB_PATH}']")
    page.wait_for_function("getComputedStyle(document.querySelector('.site-header')).borderBottomStyle === 'solid'")
    assert page.locator("h1").inner_text() == "Sidan finns inte"
    hrefs = page.evaluate("[...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))")
    assert all(h.startswith(SUB_PATH) for h in hrefs if not h.startswith("#")), hrefs
    screenshot(page, f"404-sub-path-{size}")
    if size == "desktop":
        assert violations(page) == []
    page.get_by_role("link", name="Fotografier").first.click()
    page.wait_for_url(sv_sub.url + "photographs/index.html")
    assert page.locator("h1").inner_text() == "Fotografier"


def test_with_site_url_the_404_page_links_from_its_path(page, watch, with_url) -> None:
    watch.expect_error(r"status of 404")
    response = page.goto(with_url.url + "no/such/page/")
    assert response.status == 404
    assert page.locator("#site-folders").count() == 0  # no script: the root is known
    assert page.locator("link[rel=stylesheet]").get_attribute("href") == f"{SUB_PATH}static/style.css"
    assert page.evaluate("getComputedStyle(document.querySelector('.site-header')).borderBottomStyle") == "solid"
    page.get_by_role("link", name="Till startsidan").click()
    page.wait_for_url(with_url.url + "index.html")
