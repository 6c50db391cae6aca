"""Render the static site: HTML pages, JSON API, schemas, media and assets.

Input: the state store (items, neighbours, map points), settings, and the
templates shipped with the package. Output: a complete site in a staging folder
(published by ``publish``): pages, ``api/v1`` JSON with its schemas, thumbnails
(cached in the state folder by content hash, so each is made once), static assets.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape
from PIL import Image

from . import __version__
from .atlas import AtlasSet, Tile, build_atlases, prune_atlases
from .catalog import CatalogItem, SiteFile
from .faults import checkpoint
from .publish import MARKER
from .config import Settings
from .i18n import labels
from .imaging import ImageError, load_rgb, save_jpeg
from .sitemap import page_url, root_path, sitemaps
from .sitemodel import REUSE_JSON, REUSE_PATH, SiteModel, media_path, media_sizes, root_prefix

SCHEMAS = ("items", "neighbors", "map", "reuse")


def templates_dir() -> Path:
    """Templates inside the installed package, or the checkout's top-level folder."""
    packaged = Path(str(resources.files("archive_sim"))) / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "templates"


def template_environment() -> Environment:
    return Environment(loader=FileSystemLoader(str(templates_dir())), autoescape=select_autoescape(default=True),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def dumps(document: Any) -> str:
    # Compact: Python's C encoder handles only unindented output (4x faster), and
    # the files are a fraction of the size. Readers pretty-print as they like.
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n"


class CardLinks:
    """The link-and-thumbnail part of an item card, rendered once per item and depth.

    An item appears on some thirty pages (its neighbours' lists, its category page);
    rendering its card through Jinja macros each time was most of the render stage.
    """

    SIZES = "(min-width: 72rem) 12rem, (min-width: 40rem) 25vw, 50vw"

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str, str], Markup] = {}

    def __call__(self, card: dict[str, Any], root: str, sizes: str = SIZES) -> Markup:
        key = (card["url"], root, sizes)
        html = self._cache.get(key)
        if html is None:
            thumb = card["thumb"]
            srcset = ""
            if thumb.get("sources"):
                entries = ", ".join(f"{root}{s['src']} {s['width']}w" for s in thumb["sources"])
                srcset = f' srcset="{escape(entries)}" sizes="{escape(sizes)}"'
            html = Markup(
                f'<a class="card__link" href="{escape(root + card["url"])}">\n'
                f'    <span class="card__media"><img src="{escape(root + thumb["src"])}"{srcset}'
                f' width="{int(thumb["width"])}" height="{int(thumb["height"])}" alt="" loading="lazy"'
                f' decoding="async"></span>\n'
                f'    <span class="card__title">{escape(card["title"])}</span>\n  </a>')
            self._cache[key] = html
        return html


class MacroCache:
    """Calls a macro of ``macros.html`` once per distinct (hashable) arguments and
    keeps its HTML: ``{{ cached("similarity", band, percent) }}``.

    For fragments that repeat across thousands of pages with few distinct values.
    The macros see ``context`` (the labels ``t`` and ``site``) as their globals.
    """

    def __init__(self, env: Environment, context: dict[str, Any]) -> None:
        self._env = env
        self._context = context
        self._module: Any = None
        self._cache: dict[tuple[Any, ...], Markup] = {}

    def __call__(self, name: str, *args: Any) -> Markup:
        key = (name, *args)
        html = self._cache.get(key)
        if html is None:
            if self._module is None:
                self._module = self._env.get_template("macros.html").make_module(self._context)
            html = self._cache[key] = Markup(getattr(self._module, name)(*args))
        return html


class SimilarCards:
    """An item page's neighbour list, as macros.html's ``similar_card`` for each one.

    The macro is rendered once with markers where the card link and the similarity
    go; each list is then joined from those pieces, the cached card links
    (``CardLinks``) and the cached similarity badges (``MacroCache``): the markup
    stays in the templates, and thirty cards a page cost no template calls.
    """

    _LINK, _SIMILARITY = "\x00link\x00", "\x00similarity\x00"

    def __init__(self, card_links: CardLinks, cached: MacroCache) -> None:
        self._card_links = card_links
        self._cached = cached
        self._pieces: tuple[str, str, str] | None = None

    def __call__(self, neighbors: list[dict[str, Any]], root: str) -> Markup:
        if self._pieces is None:
            html = str(self._cached("similar_card", Markup(self._LINK), Markup(self._SIMILARITY)))
            head, rest = html.split(self._LINK)
            middle, tail = rest.split(self._SIMILARITY)
            self._pieces = (head, middle, tail)
        head, middle, tail = self._pieces
        return Markup("".join(f"{head}{self._card_links(n['card'], root)}{middle}"
                              f"{self._cached('similarity', n['band'], n['percent'])}{tail}" for n in neighbors))


@dataclass
class RenderResult:
    pages: int = 0
    json_files: int = 0
    written: list[str] = field(default_factory=list)   # new or changed files, site-relative
    unchanged: int = 0                                  # files carried over from the live site as they were
    files: dict[str, SiteFile] = field(default_factory=dict)  # the new site's manifest
    atlases_made: int = 0
    map_problems: dict[str, str] = field(default_factory=dict)  # item id -> why the map shows it blank


def make_media(items: list[CatalogItem], cache: Path, sizes: tuple[int, ...], workers: int,
               progress: Callable[[int], None] | None = None) -> tuple[int, dict[str, str]]:
    """Make every missing thumbnail size of every distinct image under ``cache``."""
    by_hash: dict[str, CatalogItem] = {}
    for it in items:
        by_hash.setdefault(it.content_hash, it)
    cached = _files_under(cache, MEDIA)
    todo = [it for h, it in sorted(by_hash.items()) if not all(media_path(h, s) in cached for s in sizes)]

    def make(item: CatalogItem) -> tuple[CatalogItem, str | None]:
        try:
            img = load_rgb(Path(item.image), min_side=max(sizes))
            for size in sizes:
                save_jpeg(img, cache / media_path(item.content_hash, size), size)
            return item, None
        except (ImageError, OSError) as exc:
            return item, str(exc)

    failed: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="media") as pool:
        for item, error in pool.map(make, todo):
            if error:
                failed[item.id] = error
            if progress:
                progress(1)
    return len(todo) - len(failed), failed


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard-link ``source`` at ``target`` (its folder exists); copy where links cannot be made."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


MEDIA = "media"  # thumbnails and atlases: every file named by its content


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _files_under(root: Path, folder: str) -> dict[str, int]:
    """Path (relative to ``root``) -> inode of the files anywhere under ``root / folder``.

    The inode comes with the directory listing (``os.scandir``): no file is stat'ed.
    """
    found: dict[str, int] = {}
    pending = [folder]
    while pending:
        rel = pending.pop()
        try:
            entries = list(os.scandir(root / rel))
        except FileNotFoundError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                pending.append(f"{rel}/{entry.name}")
            else:
                found[f"{rel}/{entry.name}"] = entry.inode()
    return found


class SiteWriter:
    """Writes one site into ``root``; every page gets the shared context.

    A file whose content equals the live site's copy (``live``, described by
    ``manifest``) is hard-linked from it instead of written: it keeps its bytes,
    inode and mtime, so rsync or a CDN uploads only what really changed.
    """

    def __init__(self, root: Path, settings: Settings, model: SiteModel, live: Path | None = None,
                 manifest: dict[str, SiteFile] | None = None) -> None:
        self.root = root
        self.settings = settings
        self.model = model
        self.live = live
        self.manifest = manifest or {}
        self.env = template_environment()
        card_links = CardLinks()
        self.t = labels(settings.site.language)
        cached = MacroCache(self.env, {"t": self.t, "site": {"language": settings.site.language}})
        self.env.globals.update(card_link=card_links, cached=cached, similar_cards=SimilarCards(card_links, cached))
        self.result = RenderResult()
        self.page_paths: list[str] = []     # every page but the 404, for sitemap.xml
        self.atlas_files: set[str] = set()
        self._folders: set[Path] = set()

    def _target(self, rel: str) -> Path:
        path = self.root / rel
        if path.parent not in self._folders:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._folders.add(path.parent)
        return path

    def _live_copy(self, rel: str, digest: str) -> Path | None:
        """The live file at ``rel`` if it provably holds ``digest``."""
        known = self.manifest.get(rel)
        if self.live is None or known is None or known.sha256 != digest:
            return None
        path = self.live / rel
        try:
            st = path.stat()
        except OSError:
            return None
        same = (st.st_size, st.st_mtime_ns, st.st_ino) == (known.size, known.mtime_ns, known.inode)
        return path if same else None

    def _write(self, rel: str, content: str | bytes) -> None:
        data = content.encode("utf-8") if isinstance(content, str) else content
        digest = hashlib.sha256(data).hexdigest()
        target = self._target(rel)
        live = self._live_copy(rel, digest)
        if live is not None:
            # The staging folder may hold the replaced site (publish.staging_dir): a file
            # there that is the live file itself (same inode) stays; any other is replaced.
            known = self.manifest[rel]
            if _inode(target) != known.inode:
                _unlink(target)
                os.link(live, target)
            self.result.unchanged += 1
            self.result.files[rel] = known
            return
        # Never write into a file that is there already: it may be a hard link to a
        # live file, and writing through it would change the live site.
        _unlink(target)
        target.write_bytes(data)
        self.result.written.append(rel)
        st = target.stat()
        self.result.files[rel] = SiteFile(digest, st.st_size, st.st_mtime_ns, st.st_ino)

    def prune(self) -> int:
        """Delete the files (and emptied folders) of the staging folder that this build did
        not write: those of the replaced site that the new one no longer has. The media
        folder was pruned by ``_place_media`` from its listing."""
        removed = 0
        bare: list[str] = []  # folders where no file stays: empty now, unless a subfolder is kept
        for path, folders, names in os.walk(self.root):
            if path == str(self.root):
                folders[:] = [f for f in folders if f != MEDIA]
                prefix = ""
            else:
                prefix = os.path.relpath(path, self.root) + "/"
            stays = False
            for name in names:
                if prefix + name in self.result.files:
                    stays = True
                else:
                    os.unlink(os.path.join(path, name))
                    removed += 1
            if prefix and not stays:
                bare.append(path)
        for path in sorted(bare, key=lambda p: p.count(os.sep), reverse=True):
            try:
                os.rmdir(path)
            except OSError:
                pass  # a subfolder in it is kept
        return removed

    def page(self, template: str, path: str, title: str, description: str = "", root: str | None = None,
             **context: Any) -> None:
        """``root``: the way to the site root when it is not the page's own folder (the 404 page)."""
        site = self.settings.site
        html = self.env.get_template(template).render(
            site={"title": site.title, "language": site.language, "description": site.description},
            t=self.t, root=root_prefix(path) if root is None else root, generator=f"archive-sim {__version__}",
            categories=[c.as_context() for c in self.model.categories],
            canonical=page_url(path, site.url) if site.url and root is None else None,
            page_title=title, page_description=description or site.description or site.title, **context)
        self._write(path, html)
        self.result.pages += 1
        if root is None:
            self.page_paths.append(path)

    def json(self, path: str, document: Any) -> None:
        self._write(path, dumps(document))
        self.result.json_files += 1

    def write_item(self, item: CatalogItem) -> None:
        """An item's page and its neighbour JSON."""
        model, site = self.model, self.settings.site
        ctx = model.item_context(item, self.t)
        description = item.metadata.get("description") or f"{item.title} – {ctx['item']['category']['label']}"
        self.page("item.html", model.item_path(item), f"{item.title} – {site.title}", description, **ctx)
        self.json(model.neighbors_path(item), model.neighbors_document(item))

    def write_all(self, map_points: dict[str, dict[str, tuple[float, float]]], media_cache: Path,
                  progress: Callable[[int], None] | None = None,
                  map_cells: dict[str, dict[str, int]] | None = None, elsewhere: range = range(0)) -> RenderResult:
        """Write the whole site; ``map_cells`` keeps each map point in its atlas cell
        from the last build (without it, cells are packed along the map). The items
        at the positions ``elsewhere`` are written by another process (render_workers)."""
        model, t, site = self.model, self.t, self.settings.site
        self._write(MARKER, "This folder is written by archive-sim and replaced on every build.\n")
        sections = [{"category": c.as_context(),
                     "samples": [model.card(it) for it in model.items if it.category == c.name][:8]}
                    for c in model.categories]
        self.page("index.html", "index.html", site.title, site.description or t["home_intro"], sections=sections)
        # A host serves 404.html at any missing address, so its links start at the site root.
        self.page("404.html", "404.html", f"{t['not_found']} – {site.title}", root=root_path(site.url))
        for category in model.categories:
            for ctx in model.pages_of(category, site.items_per_page):
                pg = ctx["pagination"]
                title = f"{category.label} – {site.title}"
                if pg["pages"] > 1:
                    title = f"{category.label} ({t['page_of'].format(page=pg['page'], pages=pg['pages'])}) – {site.title}"
                self.page("category.html", ctx["path"], title,
                          t["category_description"].format(count=category.count, category=category.label),
                          category=ctx["category"], cards=ctx["cards"], pagination=pg)
        for number, item in enumerate(model.items):
            if number == len(model.items) // 2:
                checkpoint("render:pages")
            if number in elsewhere:
                self.page_paths.append(model.item_path(item))
                continue
            self.write_item(item)
            if progress:
                progress(1)
        scopes = model.map_scopes(t["map_all"])
        for scope in scopes:
            path = scope["url"]
            positions = map_points.get(scope["name"], {})
            self.page("map.html", path, t["map_page_title"].format(scope=scope["label"]) + f" – {site.title}",
                      t["map_description"].format(count=len(positions), scope=scope["label"]),
                      scope={"name": scope["name"], "label": scope["label"]},
                      scopes=[{**s, "current": s["name"] == scope["name"]} for s in scopes],
                      data_url=scope["data_url"])
            atlases = self._map_atlases(positions, (map_cells or {}).get(scope["name"], {}), media_cache)
            self.json(scope["data_url"], model.map_document(scope["name"], positions, atlases))
        self.json("api/v1/items.json", model.items_document())
        self.write_reuse()
        schemas = resources.files("archive_sim") / "schemas"
        for name in SCHEMAS:
            self._write(f"api/v1/schema/{name}.schema.json", (schemas / f"{name}.schema.json").read_text("utf-8"))
        self._copy_static()
        self._place_media(media_cache)
        for name, text in sitemaps(self.page_paths, site.url).items():
            self._write(name, text)
        return self.result

    def write_reuse(self) -> None:
        """The reuse report: groups of copies across the whole collection, as a page and as JSON."""
        t, site, copies = self.t, self.settings.site, self.settings.copies
        context = self.model.reuse_context()
        self.page("reuse.html", REUSE_PATH, f"{t['reuse_title']} – {site.title}",
                  t["reuse_description"].format(groups=len(context["groups"]), items=context["item_count"]),
                  json_url=REUSE_JSON, **context)
        rule = {"hash_distance": copies.hash_distance, "similarity": copies.similarity}
        self.json(REUSE_JSON, self.model.reuse_document(rule))

    def _copy_static(self) -> None:
        static = templates_dir() / "static"
        for source in sorted(static.rglob("*")):
            if source.is_file():
                self._write(f"static/{source.relative_to(static).as_posix()}", source.read_bytes())

    def _map_atlases(self, positions: dict[str, tuple[float, float]], cells: dict[str, int],
                     cache: Path) -> AtlasSet:
        """Atlases of one map's thumbnails, drawn into the media cache where missing."""
        top = self.model.map_thumbnail

        def thumbnail(tile: Tile) -> Image.Image:
            return load_rgb(cache / media_path(tile.content_hash, top))

        atlases = build_atlases(self.model.map_tiles(positions, cells), cache, top, thumbnail)
        self.result.atlases_made += atlases.made
        self.result.map_problems.update(atlases.failed)
        self.atlas_files.update(atlases.files)
        return atlases

    def _place_media(self, cache: Path) -> None:
        """Thumbnails and atlases, hard-linked from the media cache.

        Their names say their content, so the same path always holds the same bytes:
        a file the staging folder already holds (the replaced site's media folder,
        see ``publish.staging_dir``) is kept when it is the cache's file (same
        inode), any other is linked, and one no longer used is removed. Unused
        atlases also leave the cache.
        """
        wanted: dict[str, str] = {}
        sizes = media_sizes(self.model.map_thumbnail)
        for content_hash in sorted({it.content_hash for it in self.model.items}):
            for size in sizes:
                wanted[media_path(content_hash, size)] = f"content:{content_hash}"
        for rel in self.atlas_files:
            wanted[rel] = f"content:{Path(rel).stem}"
        present = _files_under(self.root, MEDIA)
        cached = _files_under(cache, MEDIA)
        for rel in sorted(wanted):
            source = cached.get(rel)
            if source is None:
                continue  # its thumbnail could not be made: reported by make_media
            if present.get(rel) != source:  # missing, or a copy: link the cache's file
                target = self._target(rel)
                if rel in present:
                    target.unlink()
                _link_or_copy(cache / rel, target)
            if rel in self.manifest:
                self.result.unchanged += 1
            else:
                self.result.written.append(rel)
            # Size, time and inode are only compared for files that ``_write`` may
            # carry over; a media file's name is its identity.
            self.result.files[rel] = SiteFile(wanted[rel], 0, 0, 0)
        for rel in present.keys() - wanted.keys():
            (self.root / rel).unlink()
        prune_atlases(cache, self.atlas_files)
