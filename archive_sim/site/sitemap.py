"""sitemap.xml and the public URL of each page.

Input: the site-relative paths of the pages a build wrote, and the address the site
is published at (``site.url``), if known. Output: the text of ``sitemap.xml``
(sitemaps.org protocol 0.9, split with an index past 50,000 pages) and page URLs with ``index.html`` left off, as a
visitor or a search engine sees them.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import escape

NAMESPACE = "http://www.sitemaps.org/schemas/sitemap/0.9"
MAX_URLS = 50_000  # per sitemap file, by the protocol


def public_path(page_path: str) -> str:
    """'a/b/index.html' -> 'a/b/', 'index.html' -> '' (the folder a static host serves)."""
    if page_path == "index.html":
        return ""
    if page_path.endswith("/index.html"):
        return page_path[: -len("index.html")]
    return page_path


def page_url(page_path: str, base_url: str | None) -> str:
    """Absolute URL of a page when the site's address is known, else site-relative."""
    path = quote(public_path(page_path), safe="/-._~")
    return f"{base_url}{path}" if base_url else path or "./"


def root_path(base_url: str | None) -> str:
    """The URL path of the site root: '/archive/' for https://example.org/archive/, else '/'."""
    return (urlsplit(base_url).path or "/") if base_url else "/"


def sitemaps(page_paths: Iterable[str], base_url: str | None, limit: int = MAX_URLS) -> dict[str, str]:
    """``{file name: text}``: ``sitemap.xml`` listing each page once, in the order given.

    Past ``limit`` pages (the protocol's 50,000) the pages go to ``sitemap-1.xml``,
    ``sitemap-2.xml``, ... and ``sitemap.xml`` becomes the index of those. Without
    ``base_url`` the locations are relative to the sitemap itself: readable by a
    person or a link checker, but search engines want ``site.url`` set.
    """
    urls = list(dict.fromkeys(page_url(path, base_url) for path in page_paths))
    if len(urls) <= limit:
        return {"sitemap.xml": _document("urlset", urls)}
    files = {f"sitemap-{n + 1}.xml": _document("urlset", urls[start:start + limit])
             for n, start in enumerate(range(0, len(urls), limit))}
    files["sitemap.xml"] = _document("sitemapindex", [f"{base_url or ''}{name}" for name in files])
    return files


def _document(kind: str, locations: list[str]) -> str:
    entry = "url" if kind == "urlset" else "sitemap"
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', f'<{kind} xmlns="{NAMESPACE}">']
    lines += [f"  <{entry}><loc>{escape(loc)}</loc></{entry}>" for loc in locations]
    lines.append(f"</{kind}>")
    return "\n".join(lines) + "\n"
