"""Item pages are put together from text pieces (``page_shells``), and they are the
pages Jinja renders, byte for byte, whatever the titles and metadata hold; a template
that does more with a value than print it still gets Jinja's page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import DictLoader, Environment, Template, select_autoescape

from archive_sim.state_store import CatalogItem, Neighbor
from archive_sim.config import parse_settings
from archive_sim.page_shells import PageShells
from archive_sim.render import SiteWriter
from archive_sim.sitemodel import SiteModel

HARD_TEXT = ['Quote " and apostrophe \' and <b>tags</b> & ampersands', "Åsa på ön, 1901 – ”vykort”",
             "Emoji 🌲 and </script>", "{{ not a template }} {% raw %}", "\x00 1 \x00 marker-like"]


def template(source: str) -> Template:
    env = Environment(loader=DictLoader({"page.html": source}), autoescape=select_autoescape(default=True))
    return env.get_template("page.html")


PAGE = """<h1 class="{{ kind }}">{{ title }}</h1>
{%- if rows %}<dl>{% for row in rows %}<dt>{{ row.label }}</dt><dd>{{ row.value }}</dd>{% endfor %}</dl>{% endif %}
{%- if link %}<a href="{{ link }}">{{ t.open }}</a>{% endif %}
<img width="{{ size.w }}" height="{{ size.h }}" alt="">{{ count }} {{ extra }}"""


def contexts() -> list[dict[str, Any]]:
    pages = []
    for n, text in enumerate(HARD_TEXT * 3):
        pages.append({"kind": ["print", "photo"][n % 2], "title": text,
                      "rows": [{"label": f"row {r}", "value": HARD_TEXT[(n + r) % len(HARD_TEXT)]} for r in range(n % 3)],
                      "link": f"https://example.org/{n}?a=1&b=2" if n % 4 else None,
                      "size": {"w": 100 + n, "h": 50}, "count": [0, False, 2, 0.0][n % 4],
                      "extra": "" if n % 5 else text})
    return pages


def test_pages_from_shells_are_what_jinja_renders() -> None:
    page = template(PAGE)
    shells = PageShells(page, fixed=("kind",))
    constant = {"t": {"open": "Öppna"}}
    for ctx in contexts():
        assert shells.render(constant, ctx) == page.render(constant, **ctx)
    # kind x metadata rows x link x zero count x empty extra: far fewer shapes than pages
    assert 0 < shells.shapes < len(contexts()) and shells.jinja_shapes == 0


def test_a_template_that_transforms_a_value_still_gets_jinjas_page() -> None:
    page = template('{{ title|upper }} {% if kind == "print" %}(tryck){% endif %} {{ title }}')
    shells = PageShells(page)
    for ctx in contexts():
        assert shells.render({}, ctx) == page.render(**ctx)
    assert shells.jinja_shapes == shells.shapes > 0


def test_item_pages_come_from_shells_as_jinja_would_render_them(tmp_path: Path) -> None:
    items = [CatalogItem(f"id{n}", ["photos", "prints"][n % 2], f"slug-{n}", text, f"/x/{n}.jpg",
                         {"creator": HARD_TEXT[(n + 1) % len(HARD_TEXT)], "date": "1901"} if n % 3 else {},
                         ["https://arkiv.example/1?a=1&b=2", "javascript:alert(1)", None, "HTTP://arkiv.example/2"][n % 4],
                         f"{n:064x}", 640 + n, 480)
             for n, text in enumerate(HARD_TEXT * 2)]
    neighbors = {it.id: [Neighbor(other.id, 0.9 - 0.1 * m, m == 0) for m, other in enumerate(items[:3]) if other is not it]
                 for it in items[1:]}   # the first item has none
    settings = parse_settings({"source": {"path": "c"}, "site": {"url": "https://bilder.example/"}}, "test", tmp_path)
    pages = {}
    for name in ("shells", "jinja"):
        writer = SiteWriter(tmp_path / name, settings, SiteModel(items, neighbors, "m"))
        if name == "jinja":
            writer.item_pages = JinjaPages(writer.item_pages.template)
        writer.write_items(writer.model.items)
        pages[name] = {it.id: (tmp_path / name / writer.model.item_path(it)).read_text("utf-8") for it in items}
        if name == "shells":
            assert writer.item_pages.jinja_shapes == 0 and writer.item_pages.shapes < len(items)
    assert pages["shells"] == pages["jinja"]
    page = pages["shells"]["id0"]
    assert 'Quote &#34; and apostrophe &#39; and &lt;b&gt;tags&lt;/b&gt; &amp; ampersands' in page
    assert 'href="https://arkiv.example/1?a=1&amp;b=2"' in page and "javascript:" not in pages["shells"]["id1"]
    assert 'href="HTTP://arkiv.example/2"' in pages["shells"]["id3"]


class JinjaPages:
    """Item pages each rendered by Jinja, as they were before page shells."""

    def __init__(self, page: Template) -> None:
        self.template = page

    def render(self, constant: dict[str, Any], varying: dict[str, Any]) -> str:
        return self.template.render(constant, **varying)
