"""The site's pages and JSON documents, each made from a context and placed by its key.

Input: the site model, the settings and an output tree (``output_tree.OutputTree``).
Output: every page (Jinja, ``templates.environment``) and JSON document of the site in
the tree. A page is a path, a template and a context of plain data; its key hashes the
context, the fingerprint of the templates it uses, what every page sees and the code
that makes contexts. The tree keeps a page whose key is unchanged without rendering it.

How an item page is made (``SiteWriter.write_item``): its key and its neighbour
document's hash what both are made from (``SiteModel.item_inputs``), so the tree asks
for either only when its key is new; then ``SiteModel.item_context`` gives the page's
context (documented per template in docs/themes.md), the page head is added, and
Jinja renders it.
"""

from __future__ import annotations

import hashlib
import json
import marshal
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from PIL import Image

from .. import __version__
from ..config import Settings, SiteSettings
from ..crash_points import checkpoint
from ..imaging import load_thumbnail
from ..state_store import AtlasCells, CatalogItem
from .atlas import Tile, assign_cells, build_atlases, prune_atlases
from .find import static_filter, unavailable
from .i18n import labels
from .model import (REUSE_JSON, REUSE_PATH, SiteModel, dumps, media_path, media_sizes, reuse_page_path,
                    root_prefix)
from .output_tree import OutputTree
from .search import SEARCH_MODULE, SEARCH_PAGE, SearchPlan, search_enabled
from .sitemap import page_url, root_path, sitemaps
from .templates import Fingerprints, environment, static_files

SCHEMAS = ("items", "neighbors", "map", "reuse")


def code_version() -> str:
    """The package version and the source of the code that makes pages: a page made by
    other code than its live copy is made again, whatever its context."""
    digest = hashlib.sha256(__version__.encode("utf-8"))
    for module in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(module.read_bytes())
    return digest.hexdigest()


def every_page_context(site: SiteSettings, t: dict[str, str], categories: list[dict[str, Any]],
                       find: bool = False, reuse_url: str | None = None,
                       search: bool = False) -> dict[str, Any]:
    """What every page sees, whatever its template: the site (``site.find``: whether it
    has the find page), its labels ``t``, the generator's name, the categories
    (``CategoryInfo.as_link``), the reuse report's address when it holds groups (the
    navigation links it then) and the address of the search page (None when the site
    has no search)."""
    return {"site": {"title": site.title, "language": site.language, "description": site.description,
                     "find": find},
            "t": t, "generator": f"archive-sim {__version__}", "categories": categories, "reuse_url": reuse_url,
            "search_url": SEARCH_PAGE if search else None}


@dataclass
class RenderResult:
    pages: int = 0
    json_files: int = 0
    atlases_made: int = 0
    map_problems: dict[str, str] = field(default_factory=dict)  # item id -> why the map shows it blank
    atlas_files: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)  # lines for the build's summary
    # map scope -> its points' cells; None: those recorded, unchanged
    atlas_cells: dict[str, AtlasCells | None] = field(default_factory=dict)

    def merge(self, other: RenderResult) -> None:
        self.pages += other.pages
        self.json_files += other.json_files
        self.atlases_made += other.atlases_made
        self.map_problems.update(other.map_problems)
        self.atlas_files |= other.atlas_files
        self.notes += other.notes
        self.atlas_cells.update(other.atlas_cells)


class SiteWriter:
    """Writes one site's pages and documents into ``tree``.

    A whole site is ``write_common``, ``write_items`` and ``write_map`` for every item
    and map (in any order, by any number of writers: ``workers.render_site``), then
    ``finish``.
    """

    def __init__(self, tree: OutputTree, settings: Settings, model: SiteModel) -> None:
        self.tree = tree
        self.settings = settings
        self.model = model
        self.t = labels(settings.site.language)
        # Why the site goes without the find page (None: it has one).
        self.find_unavailable = unavailable(settings)
        self.search = search_enabled(settings.site.search)
        # Where each item's search record goes (``search.plan_search``): set by the render
        # before the pages are written when the site has search.
        self.search_plan: SearchPlan | None = None
        every_page = every_page_context(settings.site, self.t, [c.as_link() for c in model.categories],
                                        self.find_unavailable is None,
                                        REUSE_PATH if model.reuse_groups else None, self.search)
        self.env = environment(settings.site.theme_dir, every_page)
        self.fingerprints = Fingerprints(self.env)
        # What every page and document depends on: the code, what every page sees, the
        # site's address (canonical links).
        self._base = hashlib.sha256(f"{code_version()}\0{json.dumps(every_page)}\0{settings.site.url}"
                                    .encode("utf-8")).digest()
        self.result = RenderResult()
        self.page_paths: list[str] = []     # every page but the 404, for sitemap.xml

    def page(self, template: str, path: str, title: str, context: dict[str, Any], description: str = "",
             root: str | None = None) -> None:
        """Page ``path`` of ``template`` with ``context`` and the page head, keyed by
        both. ``root``: the way to the site root when it is not the page's own folder
        (the 404 page)."""
        context = self._with_head(path, title, context, description, root)
        self.tree.put(path, self.key(template, context), lambda: self.env.get_template(template).render(context))
        self.result.pages += 1
        if root is None:
            self.page_paths.append(path)

    def page_of_inputs(self, template: str, path: str, title: str, description: str, inputs: bytes,
                       context: Callable[[], dict[str, Any]]) -> None:
        """Page ``path`` of ``template``, keyed by ``inputs`` (all that its ``context``
        is made from, as ``SiteModel.item_inputs`` for an item page): the context is
        made only when the page is."""
        def render() -> str:
            return self.env.get_template(template).render(self._with_head(path, title, context(), description))

        head = marshal.dumps((path, title, description), 2)
        self.tree.put(path, self.inputs_key(template, head + inputs), render)
        self.result.pages += 1
        self.page_paths.append(path)

    def _with_head(self, path: str, title: str, context: dict[str, Any], description: str = "",
                   root: str | None = None) -> dict[str, Any]:
        site = self.settings.site
        return {"root": root_prefix(path) if root is None else root,
                "canonical": page_url(path, site.url) if site.url and root is None else None,
                "page_title": title, "page_description": description or site.description or site.title,
                **context}

    def key(self, template: str, context: dict[str, Any]) -> str:
        """The key of a page: its context, its templates, what every page sees and the code."""
        digest = hashlib.sha256(self._base)
        digest.update(self.fingerprints(template).encode("utf-8"))
        # marshal's version 2 writes values, never references to objects seen before,
        # so equal contexts give equal bytes; at a third of the cost of JSON.
        digest.update(marshal.dumps(context, 2))
        return digest.hexdigest()

    def inputs_key(self, made_by: str, inputs: bytes) -> str:
        """The key of a file made by ``made_by`` (a template, or a name for code that
        writes JSON) from ``inputs`` (``SiteModel.item_inputs``)."""
        digest = hashlib.sha256(self._base)
        digest.update(f"\0{made_by}\0{self.fingerprints(made_by) if made_by.endswith('.html') else ''}\0"
                      .encode("utf-8"))
        digest.update(inputs)
        return digest.hexdigest()

    def json_text(self, path: str, text: str) -> None:
        self.tree.put_data(path, text)
        self.result.json_files += 1

    def json(self, path: str, document: Any) -> None:
        self.json_text(path, dumps(document))

    def json_of_inputs(self, path: str, kind: str, inputs: bytes, document: Callable[[], Any]) -> None:
        """JSON document ``path``, keyed by ``inputs`` (all that ``document`` is made from,
        as ``page_of_inputs`` for a page): encoded only when its inputs changed."""
        self.tree.put(path, self.inputs_key(kind, inputs), lambda: dumps(document()))
        self.result.json_files += 1

    def write_item(self, item: CatalogItem) -> None:
        """An item's page and its neighbour JSON, made only when their inputs changed."""
        model, site = self.model, self.settings.site
        inputs = model.item_inputs(item)
        path = model.item_path(item)

        def make_page() -> str:
            context = model.item_context(item, self.t)
            description = item.metadata.get("description") or f"{item.title} – {context['category']['label']}"
            context = self._with_head(path, f"{item.title} – {site.title}", context, description)
            return self.env.get_template("item.html").render(context)

        self.tree.put(path, self.inputs_key("item.html", inputs), make_page)
        self.result.pages += 1
        self.tree.put(model.neighbors_path(item), self.inputs_key("neighbors-json", inputs),
                      lambda: model.neighbors_json(item, self.t))
        self.result.json_files += 1

    def write_items(self, items: list[CatalogItem], progress: Callable[[int], None] | None = None) -> None:
        """The pages and neighbour JSON of ``items``, whose neighbour lists the site model holds."""
        middle = self.model.items[len(self.model.items) // 2] if self.model.items else None
        for item in items:
            if item is middle:
                checkpoint("render:pages")
            self.write_item(item)
        if progress:
            progress(len(items))

    def write_common(self) -> None:
        """Every page and file but the item pages and the maps: home, 404, category
        pages, the reuse report, ``items.json``, schemas and static files."""
        model, t, site = self.model, self.t, self.settings.site
        samples: dict[str, list[dict[str, Any]]] = {c.name: [] for c in model.categories}
        for it in model.items:
            if len(samples[it.category]) < 8:
                samples[it.category].append(model.card(it))
        sections = [{"category": c.as_context(), "samples": samples[c.name]} for c in model.categories]
        self.page("index.html", "index.html", site.title, {"sections": sections, "item_count": len(model.items)},
                  site.description or t["home_intro"])
        # A host serves 404.html at any missing address, so its links start at the site
        # root: site.url's path, else "/" until the page's script has found the root.
        self.page("404.html", "404.html", f"{t['not_found']} – {site.title}",
                  {"categories": [c.as_context() for c in model.categories], "find_root": not site.url},
                  root=root_path(site.url))
        for category in model.categories:
            description = t["category_description"].format(count=category.count, category=category.label)
            for listing in model.pages_of(category, site.items_per_page):
                title = f"{category.label} – {site.title}"
                if listing.pages > 1:
                    title = (f"{category.label} ({t['page_of'].format(page=listing.number, pages=listing.pages)})"
                             f" – {site.title}")
                self.page_of_inputs("category.html", listing.path, title, description,
                                    model.category_page_inputs(listing),
                                    lambda listing=listing: model.category_page_context(listing))
        # Item pages and maps are written by any process (workers); the sitemap
        # lists them all here, in the site model's order.
        self.page_paths.extend(model.item_path(it) for it in model.items)
        self.write_reuse()
        if self.search_plan is not None and model.categories:
            self.page("search.html", SEARCH_PAGE, f"{t['search_title']} – {site.title}",
                      {"bundles": self.search_plan.bundles, "module": SEARCH_MODULE}, t["search_description"])
        self.page_paths.extend(scope["url"] for scope in model.map_scopes(t["map_all"]))
        # Keyed by its inputs: at 100,000 items, encoding it to find it unchanged took seconds.
        self.json_of_inputs("api/v1/items.json", "items-json", model.items_inputs(), model.items_document)
        schemas = resources.files("archive_sim") / "schemas"
        for name in SCHEMAS:
            self.tree.put_data(f"api/v1/schema/{name}.schema.json",
                               (schemas / f"{name}.schema.json").read_text("utf-8"))
        carried = static_filter(self.find_unavailable is None)
        for rel, source in static_files(site.theme_dir).items():
            if carried(rel):
                self.tree.put_data(rel, source.read_bytes())

    def write_reuse(self) -> None:
        """The reuse report: groups of copies across the whole collection, as pages and as
        JSON, and a page of each group (where its members' pages link)."""
        t, site, copies = self.t, self.settings.site, self.settings.copies
        model = self.model
        pages = model.reuse_pages()
        description = t["reuse_description"].format(groups=len(model.reuse_groups),
                                                    items=model.reuse_item_count)
        for page, numbers in enumerate(pages, start=1):
            title = t["reuse_title"]
            if len(pages) > 1:
                title += f" ({t['page_of'].format(page=page, pages=len(pages))})"
            self.page_of_inputs("reuse.html", reuse_page_path(page), f"{title} – {site.title}", description,
                                model.reuse_page_inputs(page, numbers),
                                lambda page=page, numbers=numbers: {**model.reuse_page_context(page, numbers),
                                                                    "json_url": REUSE_JSON})
        for (path, members), inputs in zip(model.reuse_group_pages(), model.reuse_group_inputs()):
            title = t["reuse_group_title"].format(count=len(members))
            self.page_of_inputs("reuse_group.html", path, f"{title} – {site.title}", title, inputs,
                                lambda members=members: {**model.group_cards(members), "report_url": REUSE_PATH})
        rule = {"hash_distance": copies.hash_distance, "similarity": copies.similarity}
        # Keyed by its inputs, as items.json: encoding it to find it unchanged took a second.
        self.json_of_inputs(REUSE_JSON, "reuse-json", model.reuse_document_inputs(rule),
                            lambda: model.reuse_document(rule))

    def write_map(self, scope: str, positions: dict[str, tuple[float, float]], previous: AtlasCells, layout: str,
                  cache: Path) -> None:
        """One map's page, atlases and document. ``positions`` are its points, in map
        layout ``layout``; ``previous`` are their atlas cells of the last build, kept
        where they may be (``assign_cells``; the new ones go to ``result.atlas_cells``).
        Atlases are drawn into the media cache where missing (``finish`` links them into the site)."""
        model, t, site = self.model, self.t, self.settings.site
        top = model.map_thumbnail

        def thumbnail(tile: Tile) -> Image.Image:
            return load_thumbnail(cache / media_path(tile.content_hash, top))

        ids = [i for i in sorted(positions) if i in model.by_id]
        pictures = {i: (model.by_id[i].content_hash, model.by_id[i].width, model.by_id[i].height) for i in ids}
        # A removed point stays drawn (a ghost) while its thumbnail is at hand to draw its atlas again.
        kept = previous
        previous = replace(previous, drawn={i: picture for i, picture in previous.drawn.items()
                                            if i in pictures or (cache / media_path(picture[0], top)).is_file()})
        cells = assign_cells(ids, [positions[i][0] for i in ids], [positions[i][1] for i in ids], previous, layout,
                             self.settings.map.relayout_share, pictures)
        self.result.atlas_cells[scope] = None if cells == kept else cells  # None: as the store has them
        tiles = model.map_tiles(positions, cells.cells)
        tiles += [Tile(i, *cells.drawn[i], 0.0, 0.0, cell) for i, cell in cells.cells.items() if i not in pictures]
        # The last atlas of each level is drawn on from where the last build left it.
        drawn = build_atlases(tiles, cache, top, thumbnail,
                              previous_cells=max(kept.cells.values(), default=-1) + 1)
        self.result.atlases_made += drawn.made
        self.result.map_problems.update(drawn.failed)
        self.result.atlas_files.update(drawn.files)
        context = model.map_context(scope, t["map_all"])
        here = next(s for s in context["scopes"] if s["current"])
        self.page("map.html", here["url"], t["map_page_title"].format(scope=here["label"]) + f" – {site.title}",
                  context, t["map_description"].format(count=len(positions), scope=here["label"]))
        # Keyed by its inputs: encoding a map of 100,000 points to find it unchanged took seconds.
        self.json_of_inputs(here["data_url"], "map-json", model.map_document_inputs(scope, positions, drawn),
                            lambda: model.map_document(scope, positions, drawn))

    def link_thumbnails(self, cache: Path) -> None:
        """Every item's thumbnails, hard-linked from the media cache."""
        sizes = media_sizes(self.model.map_thumbnail)
        self.tree.link_media(cache, [media_path(content_hash, size)
                                     for content_hash in sorted({it.content_hash for it in self.model.items})
                                     for size in sizes])

    def finish(self, cache: Path) -> None:
        """The atlases of every ``write_map`` (linked like thumbnails; the rest of the
        media folder goes) and the sitemap (only with ``site.url``: it needs absolute addresses)."""
        self.tree.link_media(cache, sorted(self.result.atlas_files), drawn_now=True)
        self.tree.prune_media(cache)
        prune_atlases(cache, self.result.atlas_files)
        if not self.settings.site.url:
            self.result.notes.append("no sitemap.xml: site.url is not set, and a sitemap needs the "
                                     "absolute addresses of the pages")
            return
        for name, text in sitemaps(self.page_paths, self.settings.site.url).items():
            self.tree.put_data(name, text)
