"""The pages a visitor reads: home, categories, items, 404, sitemap; phone to desktop; sv and en."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

import pytest

from support import SITE_URL, TITLES, screenshot

ITEM_PAGE_BUDGET = 50_000  # bytes of HTML, CSS and JS for an item page, images aside
LAYOUT_SHIFT = """() => new Promise(done => {
  let total = 0;
  new PerformanceObserver(list => { for (const e of list.getEntries()) if (!e.hadRecentInput) total += e.value; })
    .observe({type: 'layout-shift', buffered: true});
  window.scrollTo(0, document.body.scrollHeight);
  setTimeout(() => { window.scrollTo(0, 0); setTimeout(() => done(total), 300); }, 600);
})"""


def meta_description(page) -> str:
    return page.locator('meta[name="description"]').get_attribute("content") or ""


def check_images(page) -> int:
    """Every <img> has a width and a height (no layout shift), a srcset, and alt text: the
    title, or empty in a link whose text is the title (a card), never missing."""
    images = page.evaluate("""() => [...document.images].map(i => ({
        alt: i.getAttribute('alt'), width: i.getAttribute('width'), height: i.getAttribute('height'),
        srcset: i.getAttribute('srcset'), link: i.closest('a') ? i.closest('a').textContent.trim() : null}))""")
    for img in images:
        assert img["alt"] or (img["alt"] == "" and img["link"]), img
        assert int(img["width"]) > 0 and int(img["height"]) > 0, img
        assert img["srcset"], img
    return len(images)


def test_home_page_shows_each_category_with_samples(page, sv) -> None:
    response = page.goto(sv.url)
    assert response.status == 200
    assert page.title() == "Testarkiv"
    assert page.locator("h1").inner_text() == "Testarkiv"
    assert meta_description(page)
    for label in ("Fotografier", "Illustrationer"):
        assert page.get_by_role("heading", name=label).is_visible()
    assert check_images(page) >= 8
    screenshot(page, "home-desktop", full_page=True)
    page.get_by_role("link", name="Bildrelationer").first.click()
    page.wait_for_url("**/map/index.html")


def test_category_pages_are_paged_with_lazy_images_and_no_layout_shift(page, sv) -> None:
    page.goto(sv.url + "photographs/index.html")
    assert page.locator("h1").inner_text() == "Fotografier"
    assert "Fotografier" in meta_description(page)
    assert page.locator(".grid > li").count() == 6
    assert check_images(page) == 6
    # The first screenful loads at once; further down (none on a page of six) lazily.
    assert page.evaluate("[...document.querySelectorAll('.grid img')].every(i => i.loading !== 'lazy')")
    assert page.evaluate(LAYOUT_SHIFT) < 0.01
    screenshot(page, "category-page-1", full_page=True)
    nav = page.get_by_role("navigation", name="Sida")
    nav.get_by_role("link", name="Nästa").click()
    page.wait_for_url("**/photographs/page/2/index.html")
    assert "Sida 2 av 3" in page.title()
    assert page.locator('.pagination [aria-current="page"]').inner_text() == "2"
    page.get_by_role("navigation", name="Sida").get_by_role("link", name="Sida 3").click()
    page.wait_for_url("**/photographs/page/3/index.html")
    assert page.locator(".grid > li").count() == 14 - 12
    assert page.locator("link[rel=prev]").count() == 1 and page.locator("link[rel=next]").count() == 0


def test_item_page_lists_similar_items_and_marks_copies(page, sv) -> None:
    item = sv.item("1888Slum")
    requests: list = []
    page.on("requestfinished", lambda r: requests.append(r))
    page.goto(sv.url + item["url"])
    assert page.title() == f"{TITLES['1888Slum']} – Testarkiv"
    assert page.locator("h1").inner_text() == TITLES["1888Slum"]
    assert meta_description(page)
    main_image = page.locator(".item__figure img")
    assert main_image.get_attribute("alt") == TITLES["1888Slum"]
    assert main_image.get_attribute("srcset") and main_image.get_attribute("width")
    check_images(page)
    similar = page.locator("section.similar")
    assert similar.get_by_role("heading", name="Liknande").is_visible()
    cards = similar.locator(":scope > ol.grid > li")
    neighbors = json.loads((sv.folder / item["neighbors_url"]).read_text("utf-8"))["neighbors"]
    called_similar = [n for n in neighbors if n["copy"] or n["band"]]
    assert len(neighbors) == 6 and cards.count() == len(called_similar) >= 1
    first = cards.first
    assert first.locator(".card__title").inner_text() == TITLES["slum-reprint"]
    assert neighbors[0]["similarity"] >= 0.9 and neighbors[0]["band"] == "very_similar"
    # A reprint of the same picture is marked, as a copy but not an exact one.
    assert first.locator(".badge").inner_text() == "Samma bild"
    assert f"{round(neighbors[0]['similarity'] * 100)}\u00a0%" in first.inner_text()
    assert not similar.get_by_text("Exakt kopia").count()
    assert cards.locator(".badge").count() == sum(n["copy"] for n in neighbors)
    # Weight: what the browser fetched for this page, images aside, with as many more
    # cards as the default 30 neighbours would add.
    text_bytes = sum(len(r.response().body()) for r in requests
                     if r.resource_type in ("document", "stylesheet", "script"))
    every_card = similar.locator("ol.grid > li")
    card_bytes = max(len(html.encode("utf-8")) for html in every_card.evaluate_all("els => els.map(e => e.outerHTML)"))
    assert 0 < text_bytes + (30 - every_card.count()) * card_bytes < ITEM_PAGE_BUDGET, (text_bytes, card_bytes)
    assert not [r for r in requests if r.resource_type == "script"], "item pages need no JavaScript"
    screenshot(page, "item-desktop", full_page=True)
    # Follow the best "Liknande" link.
    first.locator("a.card__link").click()
    page.wait_for_url("**/" + sv.item("slum-reprint")["url"])
    assert page.locator("h1").inner_text() == TITLES["slum-reprint"]


def test_an_exact_copy_is_marked_as_such(page, sv) -> None:
    page.goto(sv.url + sv.item("Figure 01")["url"])
    first = page.locator("section.similar ol.grid > li").first
    assert first.locator(".card__title").inner_text() == TITLES["Figure 01 kopia"]
    assert first.locator(".badge").inner_text() == "Exakt kopia"


def test_missing_pages_get_the_404_page_with_its_styles(page, watch, sv) -> None:
    watch.expect_error(r"status of 404")
    response = page.goto(sv.url + "photographs/no-such-item/index.html")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "Sidan finns inte"
    assert page.locator('meta[name="robots"]').get_attribute("content") == "noindex"
    # Linked from the site root, so the stylesheet loads at any depth.
    assert page.evaluate("getComputedStyle(document.querySelector('.site-header')).borderBottomStyle") == "solid"
    screenshot(page, "404")
    page.get_by_role("link", name="Till startsidan").click()
    page.wait_for_url(sv.url + "index.html")


def test_the_sitemap_lists_every_page_at_its_absolute_address_and_each_one_loads(with_url) -> None:
    site = with_url
    with urllib.request.urlopen(site.url + "sitemap.xml") as response:
        tree = ET.fromstring(response.read())
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    locations = [loc.text for loc in tree.findall("s:url/s:loc", ns)]
    assert len(locations) == len(set(locations))
    assert all(loc.startswith(SITE_URL) for loc in locations)
    # Every page on disk but the 404 page, as a visitor's address.
    pages = {p.relative_to(site.folder).as_posix() for p in site.folder.rglob("index.html")}
    expected = {SITE_URL + ("" if p == "index.html" else p.removesuffix("index.html")) for p in pages}
    assert set(locations) == expected
    assert {SITE_URL, SITE_URL + "photographs/page/3/", SITE_URL + "map/illustrations/"} | {
        SITE_URL + it["url"].removesuffix("index.html") for it in site.items} <= expected
    for location in locations:  # the local server serves the site at SITE_URL's path
        with urllib.request.urlopen(site.url + location.removeprefix(SITE_URL)) as response:
            assert response.status == 200, location
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(site.url + "nothing-here/")
    assert missing.value.code == 404


def test_without_site_url_no_sitemap_is_written(sv) -> None:
    assert not (sv.folder / "sitemap.xml").exists()
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(sv.url + "sitemap.xml")
    assert missing.value.code == 404


def test_english_pages_say_everything_in_english(page, en) -> None:
    page.goto(en.url)
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("link", name="Image relations").first.is_visible()
    item = en.item("1888Slum")
    page.goto(en.url + item["url"])
    assert page.get_by_role("heading", name="Similar").is_visible()
    badge = page.locator("section.similar ol.grid > li").first.locator(".badge")
    assert badge.inner_text() == "Same picture"
    show = page.get_by_role("link", name="Show on map")
    assert show.get_attribute("href").endswith(f"map/photographs/index.html?focus={item['slug']}")
    screenshot(page, "item-english", full_page=True)


@pytest.mark.parametrize("path", ["index.html", "photographs/index.html", "ITEM", "map/index.html"])
def test_phone_layout_fits_the_screen(open_page, sv, path) -> None:
    page = open_page(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True,
                     device_scale_factor=2)
    if path == "ITEM":
        path = sv.item("1888Slum")["url"]
    page.goto(sv.url + path)
    page.wait_for_load_state("load")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{path} is {overflow}px wider than a phone"
    name = {"index.html": "home", "photographs/index.html": "category", "map/index.html": "map"}.get(path, "item")
    if name == "map":
        page.wait_for_selector("canvas.map-canvas[data-state=ready]")
    screenshot(page, f"{name}-phone", full_page=name != "map")
