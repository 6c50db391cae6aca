"""A theme (``site.theme_dir``): templates that use all of Jinja, override the built-in
ones by name and extend them; every page is what Jinja renders from its context, and
changing a theme file makes again exactly the pages that use it.

A small collection of real photographs is built with stand-in vectors (no CNN).
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from archive_sim.cli import main
from archive_sim.config import load_settings
from archive_sim.site.find import unavailable
from archive_sim.site.i18n import labels
from archive_sim.site.model import REUSE_PATH, SiteModel
from archive_sim.site.pages import every_page_context
from archive_sim.site.search import search_enabled
from archive_sim.site.sitemap import page_url
from archive_sim.site.templates import builtin_dir
from archive_sim.site.workers import load_site_model
from archive_sim.state_store import StateStore

from fake_archive import build_with_stand_in_vectors
from repo_images import photographs

PHOTOS = photographs(under_bytes=150_000)[:12]

# Tests and filters values, compares one with a number and calls a macro of its own:
# what a template of any page generator may do.
ITEM = """{% extends "builtin/item.html" %}
{% macro badge(text, kind) %}<span class="badge badge--{{ kind|lower }}">{{ text|upper }}</span>{% endmacro %}
{% block content %}
<h1>{% if item.title|length > 6 %}{{ badge("long", "Title") }} {% endif %}{{ item.title|title }}</h1>
<p class="category">{{ item.category }} / {{ category.label }}</p>
{% if item.image.width > 500 %}<p class="wide">{{ item.image.width }} px</p>{% else %}<p class="narrow">{{ item.image.width }}</p>{% endif %}
<dl>{% for key, value in item.metadata|dictsort %}<dt>{{ key }}</dt><dd>{{ value|truncate(20) }}</dd>{% endfor %}</dl>
<ol>{% for n in neighbors if n.similarity >= 0 %}<li data-rank="{{ loop.index }}">{{ n.title }} {{ "%.2f"|format(n.similarity) }}{% if n.copy %} (copy){% endif %}</li>{% endfor %}</ol>
{{ super() }}
{% endblock %}
"""

FOOTER_NOTE = "Ett arkiv med eget utseende"


def run(command: str, config: Path) -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main([command, "--config", str(config), "-q"])
    assert code == 0, f"{command}: {err.getvalue()}"


@pytest.fixture(scope="module")
def themed(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("themed")
    for n, photo in enumerate(PHOTOS):
        folder = root / "collection" / ("portraits" if n % 3 else "streets")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(photo, folder / photo.name)
    theme = root / "theme"
    (theme / "static").mkdir(parents=True)
    (theme / "item.html").write_text(ITEM, encoding="utf-8")
    (theme / "category.html").write_text(
        '{% extends "builtin/category.html" %}{% block body_class %}themed {{ super() }}{% endblock %}',
        encoding="utf-8")
    (theme / "static" / "theme.css").write_text("body { color: #222; }\n", encoding="utf-8")
    config = root / "config.yaml"
    config.write_text("site: {title: Verkstad, items_per_page: 4, theme_dir: theme}\nsource: {path: collection}\n"
                      "neighbors: {k: 5}\noutput_dir: site\n", encoding="utf-8")
    build_with_stand_in_vectors(config)
    return config


def direct_jinja(config: Path) -> tuple[Environment, SiteModel, dict]:
    """The theme's templates in a plain Jinja environment, and the site model."""
    settings = load_settings(config)
    theme = settings.site.theme_dir
    from jinja2 import ChoiceLoader, PrefixLoader
    builtin = FileSystemLoader(str(builtin_dir()))
    env = Environment(loader=ChoiceLoader([FileSystemLoader(str(theme)), builtin, PrefixLoader({"builtin": builtin})]),
                      autoescape=select_autoescape(default=True), undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True, keep_trailing_newline=True)
    with StateStore(settings.state_dir) as store:
        model = load_site_model(settings, store)
        model.neighbors = store.neighbors(model.model_id)
    t = labels(settings.site.language)
    env.globals.update(every_page_context(settings.site, t, [c.as_link() for c in model.categories],
                                          find=unavailable(settings) is None,
                                          reuse_url=REUSE_PATH if model.reuse_groups else None,
                                          search=search_enabled(settings.site.search)))
    return env, model, {"settings": settings, "t": t}


def test_every_item_page_is_what_jinja_renders_from_the_theme(themed: Path) -> None:
    env, model, extra = direct_jinja(themed)
    settings, t = extra["settings"], extra["t"]
    site = themed.parent / "site"
    long_titles = wide = 0
    for item in model.items:
        context = model.item_context(item, t)
        path = context["item"]["url"]
        html = (site / path).read_text(encoding="utf-8")
        expected = env.get_template("item.html").render(
            root="../../", canonical=page_url(path, settings.site.url) if settings.site.url else None,
            page_title=f"{item.title} – {settings.site.title}",
            page_description=item.metadata.get("description") or f"{item.title} – {context['category']['label']}",
            **context)
        assert html == expected, path
        long_titles += 'class="badge badge--title"' in html
        wide += 'class="wide"' in html
        # The built-in page is still there, below the theme's part.
        assert 'class="similar"' in html and "<footer" in html
    assert long_titles and wide, "the theme's tests held on some page"


def test_a_theme_overrides_by_name_and_the_rest_stays_built_in(themed: Path) -> None:
    site = themed.parent / "site"
    category = next(site.glob("portraits/index.html")).read_text(encoding="utf-8")
    assert '<body class="themed page-category">' in category
    assert (site / "static" / "theme.css").read_text() == "body { color: #222; }\n"
    assert (site / "static" / "style.css").read_bytes() == (builtin_dir() / "static" / "style.css").read_bytes()
    home = (site / "index.html").read_text(encoding="utf-8")
    assert (builtin_dir() / "index.html").exists() and "page-home" in home


def snapshot(site: Path) -> dict[str, tuple[int, int]]:
    """Every file of the site but its marker (which names the site by its files) -> inode and mtime."""
    return {p.relative_to(site).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in site.rglob("*") if p.is_file() and p.name != ".archive-sim-site"}


def test_changing_a_theme_file_makes_again_exactly_the_pages_that_use_it(themed: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(themed.parent, root, symlinks=True, copy_function=shutil.copy2)
    # The copied site is not the one its manifest describes (other inodes): a render
    # there carries nothing over, so one render settles it first.
    config = root / "config.yaml"
    run("render", config)
    site = root / "site"
    settled = snapshot(site)
    run("render", config)
    assert snapshot(site) == settled, "a rebuild with nothing changed touched a file"

    settings = load_settings(config)
    with StateStore(settings.state_dir) as store:
        model = load_site_model(settings, store)
    item_pages = {model.item_path(it) for it in model.items}
    assert len(item_pages) == len(PHOTOS)

    # An item page's template: the item pages change, nothing else does.
    item = root / "theme" / "item.html"
    item.write_text(item.read_text().replace("{{ super() }}", f"<p>{FOOTER_NOTE}</p>{{{{ super() }}}}"))
    run("render", config)
    after = snapshot(site)
    changed = {rel for rel in after if after[rel] != settled.get(rel)}
    assert changed == item_pages
    assert all(FOOTER_NOTE in (site / rel).read_text(encoding="utf-8") for rel in item_pages)

    # The base every page extends, copied and changed: every page changes, JSON and
    # static files do not.
    base = (builtin_dir() / "base.html").read_text(encoding="utf-8")
    (root / "theme" / "base.html").write_text(base.replace("<main", '<p class="banner">Tema</p>\n<main'))
    before = after
    run("render", config)
    after = snapshot(site)
    changed = {rel for rel in after if after[rel] != before.get(rel)}
    pages = {rel for rel in after if rel.endswith(".html")}
    assert changed == pages
    # A static file: that file alone.
    before = after
    (root / "theme" / "static" / "theme.css").write_text("body { color: #000; }\n")
    run("render", config)
    after = snapshot(site)
    assert {rel for rel in after if after[rel] != before.get(rel)} == {"static/theme.css"}
    assert json.loads((site / "api/v1/items.json").read_text())["version"] == 1
