"""Search in a real browser: the header's box, the results page and its category filter.

The site's Pagefind index is searched by Pagefind's own code in Chromium, at desktop
and phone size, in Swedish and in English; every request stays on the local host
(the ``open_page`` fixture fails a test whose page asks another host for anything).
"""

from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path

import pytest

from archive_sim.site.search import wrapper_module
from support import TITLES, screenshot, serve, write_config

SIZES = {"desktop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}
RESULT = ".pagefind-ui__result"


def results(page) -> list[dict]:
    """The results shown: title, address and whether the thumbnail loaded."""
    page.wait_for_selector(f"{RESULT} .pagefind-ui__result-link", timeout=15_000)
    page.wait_for_function("""() => [...document.querySelectorAll('.pagefind-ui__result img')]
        .every(i => i.complete)""", timeout=15_000)
    return page.evaluate("""() => [...document.querySelectorAll('.pagefind-ui__result')].map(r => {
        const a = r.querySelector('.pagefind-ui__result-link'), img = r.querySelector('img');
        return {title: a.textContent.trim(), href: a.href, thumb: img ? img.naturalWidth : 0};
    })""")


@pytest.mark.parametrize("size", list(SIZES))
def test_header_box_finds_an_item_by_a_title_word(open_page, sv, size) -> None:
    page = open_page(viewport=SIZES[size])
    page.goto(sv.url + "photographs/index.html")
    box = page.get_by_role("search").get_by_label("Sök i samlingen")
    assert box.is_visible()  # in the header of every page, also on a phone
    box.fill("slumkvarter")
    box.press("Enter")
    page.wait_for_url("**/search/index.html?q=slumkvarter")
    found = results(page)
    screenshot(page, f"search-title-word-{size}", full_page=True)
    item = sv.item("1888Slum")
    assert {r["title"] for r in found} == {TITLES["1888Slum"], TITLES["slum-reprint"]}
    assert sv.url + item["url"] in [r["href"] for r in found]
    assert all(r["thumb"] > 0 for r in found), found  # every result shows its thumbnail
    page.get_by_role("link", name=TITLES["1888Slum"]).click()
    page.wait_for_url(sv.url + item["url"])
    assert page.locator("h1").inner_text() == TITLES["1888Slum"]


@pytest.mark.parametrize("size", list(SIZES))
def test_a_metadata_value_finds_the_items_that_hold_it(open_page, en, size) -> None:
    page = open_page(viewport=SIZES[size])
    page.goto(en.url + "search/index.html?q=Riis")  # the creator: in no title
    found = results(page)
    assert {r["title"] for r in found} == {TITLES["1888Slum"], TITLES["slum-reprint"]}
    assert page.get_by_role("heading", name="Search").is_visible()
    screenshot(page, f"search-creator-{size}", full_page=True)


def test_the_category_filter_keeps_one_category(open_page, sv) -> None:
    page = open_page(viewport=SIZES["desktop"])
    page.goto(sv.url + "search/index.html?q=testsamlingen")
    found = results(page)
    assert {r["title"] for r in found} == set(TITLES.values())  # both categories
    panel = page.locator(".pagefind-ui__filter-panel")
    assert panel.get_by_text("Kategori").first.is_visible()
    panel.get_by_label(re.compile("^Illustrationer")).check()
    page.wait_for_function("""() => document.querySelectorAll('.pagefind-ui__result').length === 2""",
                           timeout=15_000)
    found = results(page)
    assert {r["title"] for r in found} == {TITLES["Figure 01"], TITLES["Figure 01 kopia"]}
    assert all("/illustrations/" in r["href"] for r in found)
    screenshot(page, "search-filtered", full_page=True)


def test_results_link_to_items_with_thumbnails_and_ask_no_other_host(open_page, sv) -> None:
    page = open_page()
    page.goto(sv.url + "search/index.html?q=blomranka")
    found = results(page)
    assert {r["title"] for r in found} == {TITLES["Figure 01"], TITLES["Figure 01 kopia"]}
    assert all(r["thumb"] > 0 for r in found)
    # Every request went to this host (open_page fails the test otherwise), Pagefind's own too.
    assert any(p.startswith("/pagefind/illustrations/") for p in sv.requests)


def message(page) -> str:
    """What the results page says of the search, once it has searched."""
    page.wait_for_function("""() => /träff|result/.test(
        (document.querySelector('.pagefind-ui__message') || {}).textContent || '')""", timeout=15_000)
    return page.locator(".pagefind-ui__message").inner_text()


def test_every_word_the_site_holds_is_required_whichever_index_holds_it(open_page, sv) -> None:
    """Pagefind leaves out a word that an index does not hold: without the site's search
    module, the photographs' index would answer "slumkvarter blomranka" with the slum
    photographs and the illustrations' index with the plates, each for its own word."""
    page = open_page(viewport=SIZES["desktop"])
    page.goto(sv.url + "search/index.html?q=slumkvarter%20blomranka")
    assert message(page) == "slumkvarter blomranka gav inga träffar"
    assert page.locator(RESULT).count() == 0
    page.goto(sv.url + "search/index.html?q=bakg%C3%A5rd%20slumkvarter")  # both in each slum record
    assert {r["title"] for r in results(page)} == {TITLES["1888Slum"], TITLES["slum-reprint"]}


def test_a_word_no_index_holds_is_left_out_as_pagefind_does(open_page, sv) -> None:
    page = open_page(viewport=SIZES["desktop"])
    page.goto(sv.url + "search/index.html?q=slumkvarter%20xyzzy")
    assert {r["title"] for r in results(page)} == {TITLES["1888Slum"], TITLES["slum-reprint"]}
    assert message(page) == "slumkvarter xyzzy gav 2 träffar"


@pytest.fixture(scope="module")
def parted(built: Path):
    """The Swedish site rendered again with indexes of at most four records, so each
    category's records are split over several indexes, as a large category's are."""
    import archive_sim.site.search as search
    from archive_sim.cli import main

    config = write_config(built, "sv", "public-parted")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(search, "PART_RECORDS", 4)
        assert main(["render", "--config", str(config), "-q"]) == 0
    server, url, log = serve(built / "public-parted")
    try:
        yield url, log
    finally:
        server.shutdown()
        server.server_close()


def test_a_category_split_over_several_indexes_is_searched_and_filtered_as_one(open_page, parted) -> None:
    url, log = parted
    page = open_page(viewport=SIZES["desktop"])
    page.goto(url + "search/index.html?q=testsamlingen")
    found = results(page)
    assert {r["title"] for r in found} == set(TITLES.values())
    assert {"/pagefind/photographs/1/pagefind-entry.json", "/pagefind/photographs/2/pagefind-entry.json",
            "/pagefind/illustrations/1/pagefind-entry.json"} <= set(log)
    panel = page.locator(".pagefind-ui__filter-panel")
    assert panel.get_by_label(re.compile("^Fotografier")).count() == 1  # one filter value, however many indexes
    assert "archive-sim" not in panel.inner_text()  # the filter telling the indexes apart is not shown
    panel.get_by_label(re.compile("^Illustrationer")).check()
    page.wait_for_function("""() => document.querySelectorAll('.pagefind-ui__result').length === 2""",
                           timeout=15_000)
    assert {r["title"] for r in results(page)} == {TITLES["Figure 01"], TITLES["Figure 01 kopia"]}
    # Words of records in different indexes of one category: no record holds both.
    page.goto(url + "search/index.html?q=slumkvarter%20tidningsf%C3%B6rs%C3%A4ljare")
    assert message(page) == "slumkvarter tidningsförsäljare gav inga träffar"
    page.goto(url + "search/index.html?q=bakg%C3%A5rd%20slumkvarter")
    assert {r["title"] for r in results(page)} == {TITLES["1888Slum"], TITLES["slum-reprint"]}


def test_the_search_module_leaves_out_the_records_of_items_gone(open_page, sv, tmp_path: Path) -> None:
    """A rebuild keeps an index holding a removed item's record and names its page in
    the site's search module; a search then neither shows nor counts it."""
    site = tmp_path / "site"
    shutil.copytree(sv.folder, site)
    gone = sv.item("1888Slum")
    fragments = (site / "pagefind").glob("*/*/fragment/*.pf_fragment")
    page_id = next(f.name.removesuffix(".pf_fragment") for f in fragments
                   if f'"url":"/{gone["url"]}#'.encode() in gzip.decompress(f.read_bytes()))  # then its thumbnail
    module = site / "pagefind" / "pagefind.js"
    primary = re.search(r'from "\./(.*?)pagefind\.js"', module.read_text("utf-8")).group(1)
    module.write_text(wrapper_module(f"pagefind/{primary}", [page_id]), encoding="utf-8")
    server, url, _ = serve(site)
    try:
        page = open_page(viewport=SIZES["desktop"])
        page.goto(url + "search/index.html?q=slumkvarter")
        assert {r["title"] for r in results(page)} == {TITLES["slum-reprint"]}
        assert page.locator(".pagefind-ui__message").inner_text() == "slumkvarter gav 1 träff"
    finally:
        server.shutdown()
        server.server_close()
