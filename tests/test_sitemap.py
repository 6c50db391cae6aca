"""sitemap.xml: every page once, absolute when the site's address is known, split past the limit."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from archive_sim.site.sitemap import page_url, root_path, sitemaps

NS = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
PAGES = ["index.html", "photographs/index.html", "photographs/page/2/index.html",
         "photographs/figure-01--2c3a95c0/index.html", "map/index.html", "photographs/index.html"]


def locations(text: str, entry: str = "url") -> list[str]:
    return [loc.text for loc in ET.fromstring(text).findall(f"s:{entry}/s:loc", NS)]


def test_pages_are_listed_once_at_the_address_a_visitor_uses():
    files = sitemaps(PAGES, "https://example.org/archive/")
    assert list(files) == ["sitemap.xml"]
    assert locations(files["sitemap.xml"]) == [
        "https://example.org/archive/", "https://example.org/archive/photographs/",
        "https://example.org/archive/photographs/page/2/",
        "https://example.org/archive/photographs/figure-01--2c3a95c0/", "https://example.org/archive/map/"]


def test_without_an_address_locations_are_relative_to_the_sitemap():
    assert locations(sitemaps(PAGES[:2], None)["sitemap.xml"]) == ["./", "photographs/"]
    assert page_url("a b/&/index.html", "https://x.org/") == "https://x.org/a%20b/%26/"
    assert "&amp;" not in sitemaps(["a&b/index.html"], None)["sitemap.xml"]  # quoted, not escaped


def test_past_the_limit_an_index_points_to_numbered_sitemaps():
    pages = [f"c/{n}/index.html" for n in range(5)]
    files = sitemaps(pages, "https://x.org/", limit=2)
    assert sorted(files) == ["sitemap-1.xml", "sitemap-2.xml", "sitemap-3.xml", "sitemap.xml"]
    assert locations(files["sitemap.xml"], "sitemap") == [
        "https://x.org/sitemap-1.xml", "https://x.org/sitemap-2.xml", "https://x.org/sitemap-3.xml"]
    listed = [loc for name in ("sitemap-1.xml", "sitemap-2.xml", "sitemap-3.xml") for loc in locations(files[name])]
    assert listed == [f"https://x.org/c/{n}/" for n in range(5)]


def test_the_404_page_links_from_the_root_of_the_sites_address():
    assert root_path("https://example.org/archive/") == "/archive/"
    assert root_path("https://example.org/") == "/"
    assert root_path(None) == "/"
