"""Render the static site: HTML pages, JSON API, schemas, media and assets.

Input: the state store (items, neighbours, map points), settings, and the
templates shipped with the package. Output: a complete site in a staging folder
(published by ``publish``): pages, ``api/v1`` JSON with its schemas, thumbnails
(cached in the state folder by content hash, so each is made once), static assets.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape
from PIL import Image

from . import __version__
from .atlas import ATLAS_DIR, Tile, build_atlases, prune_atlases
from .state_store import CatalogItem, SiteFile
from .crash_points import checkpoint
from .publish import MARKER, marker_text
from .config import Settings
from .i18n import labels
from .imaging import ImageError, load_rgb, load_thumbnail, save_jpeg
from .page_shells import PageShells, fill, marker, split_marked
from .sitemap import page_url, root_path, sitemaps
from .sitemodel import REUSE_JSON, SiteModel, dumps, media_path, media_sizes, root_prefix

SCHEMAS = ("items", "neighbors", "map", "reuse")


def templates_dir() -> Path:
    """Templates inside the installed package, or the checkout's top-level folder."""
    packaged = Path(str(resources.files("archive_sim"))) / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "templates"


def template_environment() -> Environment:
    # No auto_reload: templates do not change during a build, and checking them cost
    # three stat calls for each of 100,000 pages.
    return Environment(loader=FileSystemLoader(str(templates_dir())), autoescape=select_autoescape(default=True),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                       auto_reload=False)


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


class MacroShells:
    """A macro of ``macros.html`` rendered once with markers for its arguments, then
    filled in by joining strings (``fill``).

    For markup repeated many times on every page (a card, a neighbour): the markup
    stays in the templates, and filling it in costs no template call. An argument
    left out (``present`` False) is passed as None, so the macro may leave its part out.
    """

    def __init__(self, cached: MacroCache) -> None:
        self._cached = cached
        self._shells: dict[tuple[Any, ...], list[str | int]] = {}

    def shell(self, name: str, *present: bool) -> list[str | int]:
        """The macro's output as text pieces and argument positions."""
        key = (name, *present)
        shell = self._shells.get(key)
        if shell is None:
            markers = [marker(n) if here else None for n, here in enumerate(present)]
            shell = self._shells[key] = split_marked(str(self._cached(name, *markers)))
        return shell


class Cards:
    """Item cards as macros.html's ``card``: ``{{ card(c, root) }}`` in a template,
    with ``sizes`` for the thumbnail's ``sizes`` attribute and an optional ``note``."""

    def __init__(self, card_links: CardLinks, shells: MacroShells) -> None:
        self._card_links = card_links
        self._shells = shells

    def __call__(self, card: dict[str, Any], root: str, sizes: str | None = None, note: str | None = None) -> Markup:
        link = self._card_links(card, root, sizes) if sizes else self._card_links(card, root)
        if note is None:
            return Markup(fill(self._shells.shell("card", True, False), link))
        return Markup(fill(self._shells.shell("card", True, True), link, escape(note)))


class SimilarCards:
    """An item page's neighbour list, as macros.html's ``similar_card`` for each one,
    filled in with the cached card links (``CardLinks``) and similarity badges
    (``MacroCache``): thirty cards a page cost no template call."""

    def __init__(self, card_links: CardLinks, cached: MacroCache, shells: MacroShells) -> None:
        self._card_links = card_links
        self._cached = cached
        self._shells = shells

    def __call__(self, neighbors: list[dict[str, Any]], root: str) -> Markup:
        head, link, middle, similarity, tail = self._shells.shell("similar_card", True, True)
        assert (link, similarity) == (0, 1), "similar_card shows its link before its similarity"
        return Markup("".join(f"{head}{self._card_links(n['card'], root)}{middle}"
                              f"{self._cached('similarity', n['band'], n['percent'])}{tail}" for n in neighbors))


def every_page_context(title: str, language: str, description: str, t: dict[str, str], generator: str,
                       categories: list[dict[str, Any]]) -> dict[str, Any]:
    """What every page sees, whatever its template: the site, its labels ``t`` (in
    ``language``), the generator's name and the categories."""
    return {"site": {"title": title, "language": language, "description": description},
            "t": t, "generator": generator, "categories": categories}


def page_environment(every_page: dict[str, Any]) -> Environment:
    """The templates with the globals every page uses: ``cached`` macros (the site
    header among them), ``card`` and ``similar_cards``. The macros see
    ``every_page`` (``every_page_context``), which each page is rendered with too."""
    env = template_environment()
    card_links = CardLinks()
    cached = MacroCache(env, every_page)
    shells = MacroShells(cached)
    env.globals.update(card=Cards(card_links, shells), cached=cached,
                       similar_cards=SimilarCards(card_links, cached, shells))
    return env


@dataclass
class RenderResult:
    pages: int = 0
    json_files: int = 0
    written: list[str] = field(default_factory=list)   # new or changed files, site-relative
    unchanged: int = 0                                  # files carried over from the live site as they were
    files: dict[str, SiteFile] = field(default_factory=dict)  # the new site's manifest, but its media
    media: set[str] = field(default_factory=set)               # the new site's media files
    atlases_made: int = 0
    map_problems: dict[str, str] = field(default_factory=dict)  # item id -> why the map shows it blank


def make_media(items: list[CatalogItem], cache: Path, sizes: tuple[int, ...], workers: int,
               progress: Callable[[int], None] | None = None) -> tuple[int, dict[str, str]]:
    """Make every missing thumbnail size of every distinct image under ``cache``."""
    by_hash: dict[str, CatalogItem] = {}
    for it in items:
        by_hash.setdefault(it.content_hash, it)
    # Names only, a folder at a time, compared as sets: at 100,000 items listing the
    # cache with inodes (as the site writer does) and looking up each path took
    # over a second, before any other work of the render could start.
    missing: set[str] = set()
    for size in sizes:
        folder = media_path("", size).rpartition("/")[0]
        present = {f"{folder}/{name}" for name in _names_in(cache / folder)}
        wanted = {media_path(h, size): h for h in by_hash}
        missing.update(wanted[path] for path in wanted.keys() - present)
    todo = [by_hash[h] for h in sorted(missing)]

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


def _names_in(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except FileNotFoundError:
        return []


def _link_or_copy(source: str, target: str) -> None:
    """Hard-link ``source`` at ``target`` (its folder exists); copy where links cannot be made."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


MEDIA = "media"  # thumbnails and atlases: every file named by its content


def _inode(path: str | Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def _unlink(path: str | Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _remove_empty_folders(folders: Iterable[str]) -> None:
    """Remove those of ``folders`` that are empty, deepest first (so a parent emptied
    by its child's removal goes too); one that still holds something stays."""
    for folder in sorted(folders, key=lambda f: f.count(os.sep), reverse=True):
        try:
            os.rmdir(folder)
        except OSError:
            pass


def _is_empty(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            return next(entries, None) is None
    except FileNotFoundError:
        return True


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

    A whole site is ``write_common``, ``link_thumbnails``, ``write_items`` and
    ``write_map`` for every item and map (in any order, by any number of writers:
    ``render_workers.render_site``), then ``finish``, ``seal`` and ``prune``.

    A file whose content equals the live site's copy (``live``, described by
    ``manifest``) is hard-linked from it instead of written: it keeps its bytes,
    inode and mtime, so rsync or a CDN uploads only what really changed.
    """

    def __init__(self, root: Path, settings: Settings, model: SiteModel, live: Path | None = None,
                 manifest: dict[str, SiteFile] | None = None, present: set[str] | None = None,
                 live_media: set[str] | None = None) -> None:
        """``present``: the files that ``root`` is known to hold (the spare site's
        manifest, see ``publish.site_id_of``), which ``prune`` then needs not look for.
        ``live_media``: the live site's media files, so that the report counts a
        thumbnail it already had as unchanged."""
        self.root = root
        self.settings = settings
        self.model = model
        self.live = live
        self.manifest = manifest or {}
        self.live_media = live_media or set()
        self.t = labels(settings.site.language)
        site = settings.site
        # One object for all pages, whatever their template.
        self._every_page = every_page_context(site.title, site.language, site.description, self.t,
                                              f"archive-sim {__version__}", [c.as_context() for c in model.categories])
        self.env = page_environment(self._every_page)
        self.item_pages = PageShells(self.env.get_template("item.html"), fixed=("root", "item.category"))
        self._similar_cards = self.env.globals["similar_cards"]
        self.result = RenderResult()
        self.page_paths: list[str] = []     # every page but the 404, for sitemap.xml
        self.atlas_files: set[str] = set()
        self._root = os.fspath(root)
        # A staging folder that starts empty holds only what this build writes: nothing to prune.
        self._started_empty = _is_empty(root)
        self._present = present
        self._live = os.fspath(live) if live is not None else None
        self._folders: set[str] = set()
        self._media: tuple[dict[str, int], dict[str, int]] | None = None

    # Paths are strings from here on: at 100,000 items pathlib's parsing cost more
    # than the system calls it wraps.
    def _target(self, rel: str) -> str:
        path = f"{self._root}/{rel}"
        folder = os.path.dirname(path)
        if folder not in self._folders:
            # An item's folder is new and its parent made already: one mkdir, where
            # os.makedirs first looks for the parent (a stat call for each of 100,000).
            try:
                os.mkdir(folder)
            except FileNotFoundError:
                os.makedirs(folder, exist_ok=True)
            except FileExistsError:
                pass
            self._folders.add(folder)
        return path

    def _live_copy(self, rel: str, digest: str) -> str | None:
        """The live file at ``rel`` if it provably holds ``digest``."""
        known = self.manifest.get(rel)
        if self.live is None or known is None or known.sha256 != digest:
            return None
        path = f"{self._live}/{rel}"
        try:
            st = os.stat(path)
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
        if not self._started_empty:
            _unlink(target)
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:  # written twice by this build
            os.unlink(target)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            st = os.fstat(fd)
        finally:
            os.close(fd)
        self.result.written.append(rel)
        self.result.files[rel] = SiteFile(digest, st.st_size, st.st_mtime_ns, st.st_ino)

    def prune(self) -> int:
        """Delete the files (and emptied folders) of the staging folder that this build did
        not write: those of the replaced site that the new one no longer has. The media
        folder was pruned by ``_place_media`` from its listing."""
        removed = 0
        if self._started_empty:
            return removed
        if self._present is not None:
            return self._prune_known(self._present)
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
        _remove_empty_folders(bare)
        return removed

    def _prune_known(self, present: set[str]) -> int:
        """``prune`` for a staging folder whose files are known: no walk over 100,000 folders."""
        removed = 0
        folders: set[str] = set()
        for rel in present - self.result.files.keys():
            if rel.startswith(f"{MEDIA}/"):
                continue  # pruned by _place_media
            try:
                os.unlink(f"{self._root}/{rel}")
                removed += 1
            except FileNotFoundError:
                pass
            folder = os.path.dirname(rel)
            while folder and folder not in folders:
                folders.add(folder)
                folder = os.path.dirname(folder)
        _remove_empty_folders(f"{self._root}/{folder}" for folder in folders)
        return removed

    def seal(self) -> str:
        """Write the marker, last: it names the site by its files but the media (an id
        that ``StateStore.replace_site_manifest`` records), so that the next build can
        trust the manifest of the folder it starts from. Return the id."""
        files = self.result.files
        listing = "".join(f"{rel}\0{files[rel].sha256}\n" for rel in sorted(files.keys() - {MARKER}))
        site_id = hashlib.sha256(listing.encode("utf-8")).hexdigest()[:32]
        self._write(MARKER, marker_text(site_id))
        return site_id

    def page(self, template: str, path: str, title: str, description: str = "", root: str | None = None,
             **context: Any) -> None:
        """``root``: the way to the site root when it is not the page's own folder (the 404 page)."""
        html = self.env.get_template(template).render(self._every_page, **self._page_head(path, title, description, root),
                                                      **context)
        self._write_page(path, html, listed=root is None)

    def _page_head(self, path: str, title: str, description: str, root: str | None) -> dict[str, Any]:
        """What base.html shows of one page but its content."""
        site = self.settings.site
        return {"root": root_prefix(path) if root is None else root,
                "canonical": page_url(path, site.url) if site.url and root is None else None,
                "page_title": title, "page_description": description or site.description or site.title}

    def _write_page(self, path: str, html: str, listed: bool) -> None:
        """``listed``: in the sitemap."""
        self._write(path, html)
        self.result.pages += 1
        if listed:
            self.page_paths.append(path)

    def json(self, path: str, document: Any) -> None:
        self.json_text(path, dumps(document))

    def json_text(self, path: str, text: str) -> None:
        """A JSON document encoded already (``SiteModel.neighbors_json``)."""
        self._write(path, text)
        self.result.json_files += 1

    def write_item(self, item: CatalogItem) -> None:
        """An item's page and its neighbour JSON."""
        model, site = self.model, self.settings.site
        ctx = model.item_context(item, self.t)
        path = model.item_path(item)
        description = item.metadata.get("description") or f"{item.title} – {ctx['item']['category']['label']}"
        head = self._page_head(path, f"{item.title} – {site.title}", description, None)
        similar = self._similar_cards(ctx.pop("neighbors"), head["root"])
        self._write_page(path, self.item_pages.render(self._every_page, {**head, **ctx, "similar": similar}), True)
        self.json_text(model.neighbors_path(item), model.neighbors_json(item))

    def write_common(self) -> None:
        """Every page and file but the item pages and the maps: home, 404, category
        pages, the reuse report, ``items.json``, schemas and static assets."""
        model, t, site = self.model, self.t, self.settings.site
        samples: dict[str, list[dict[str, Any]]] = {c.name: [] for c in model.categories}
        for it in model.items:
            if len(samples[it.category]) < 8:
                samples[it.category].append(model.card(it))
        sections = [{"category": c.as_context(), "samples": samples[c.name]} for c in model.categories]
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
        # Item pages and maps are written by any process (render_workers); the
        # sitemap lists them all here, in the site model's order.
        self.page_paths.extend(model.item_path(it) for it in model.items)
        self.write_reuse()
        self.page_paths.extend(scope["url"] for scope in model.map_scopes(t["map_all"]))
        self.json("api/v1/items.json", model.items_document())
        schemas = resources.files("archive_sim") / "schemas"
        for name in SCHEMAS:
            self._write(f"api/v1/schema/{name}.schema.json", (schemas / f"{name}.schema.json").read_text("utf-8"))
        self._copy_static()

    def write_items(self, items: list[CatalogItem], progress: Callable[[int], None] | None = None) -> None:
        """The pages and neighbour JSON of ``items``, whose neighbour lists the site model holds."""
        middle = self.model.items[len(self.model.items) // 2] if self.model.items else None
        for item in items:
            if item is middle:
                checkpoint("render:pages")
            self.write_item(item)
        if progress:
            progress(len(items))

    def write_map(self, scope: str, positions: dict[str, tuple[float, float]], cells: dict[str, int],
                  cache: Path) -> None:
        """One map's page, atlases and document. ``positions`` are its points; ``cells``
        keeps each point in its atlas cell from the last build. Atlases are drawn into
        the media cache where missing (``finish`` links them into the site)."""
        model, t, site = self.model, self.t, self.settings.site
        top = model.map_thumbnail

        def thumbnail(tile: Tile) -> Image.Image:
            return load_thumbnail(cache / media_path(tile.content_hash, top))

        drawn = build_atlases(model.map_tiles(positions, cells), cache, top, thumbnail)
        self.result.atlases_made += drawn.made
        self.result.map_problems.update(drawn.failed)
        self.atlas_files.update(drawn.files)
        scopes = model.map_scopes(t["map_all"])
        here = next(s for s in scopes if s["name"] == scope)
        self.page("map.html", here["url"], t["map_page_title"].format(scope=here["label"]) + f" – {site.title}",
                  t["map_description"].format(count=len(positions), scope=here["label"]),
                  scope={"name": here["name"], "label": here["label"]},
                  scopes=[{**s, "current": s["name"] == scope} for s in scopes], data_url=here["data_url"])
        self.json(here["data_url"], model.map_document(scope, positions, drawn))

    def finish(self, media_cache: Path) -> RenderResult:
        """The media folder (thumbnails and the atlases of ``write_map``) and the sitemap."""
        self._place_media(media_cache)
        for name, text in sitemaps(self.page_paths, self.settings.site.url).items():
            self._write(name, text)
        return self.result

    def write_reuse(self) -> None:
        """The reuse report: groups of copies across the whole collection, as pages and as JSON."""
        t, site, copies = self.t, self.settings.site, self.settings.copies
        for context in self.model.reuse_pages():
            path, pg = context.pop("path"), context["pagination"]
            title = t["reuse_title"]
            if pg["pages"] > 1:
                title += f" ({t['page_of'].format(page=pg['page'], pages=pg['pages'])})"
            self.page("reuse.html", path, f"{title} – {site.title}",
                      t["reuse_description"].format(groups=context["group_count"], items=context["item_count"]),
                      json_url=REUSE_JSON, **context)
        rule = {"hash_distance": copies.hash_distance, "similarity": copies.similarity}
        self.json(REUSE_JSON, self.model.reuse_document(rule))

    def _copy_static(self) -> None:
        static = templates_dir() / "static"
        for source in sorted(static.rglob("*")):
            if source.is_file():
                self._write(f"static/{source.relative_to(static).as_posix()}", source.read_bytes())

    def link_thumbnails(self, cache: Path) -> None:
        """Every item's thumbnails, hard-linked from the media cache (see ``_link_media``)."""
        sizes = media_sizes(self.model.map_thumbnail)
        self._link_media(cache, [media_path(content_hash, size)
                                 for content_hash in sorted({it.content_hash for it in self.model.items})
                                 for size in sizes])

    def _place_media(self, cache: Path) -> None:
        """The atlases of ``write_map``, linked like thumbnails; then every media file
        that neither ``link_thumbnails`` nor this placed is removed, and unused atlases
        also leave the cache."""
        self._link_media(cache, sorted(self.atlas_files))
        present = self._media_listings(cache)[0]
        for rel in present.keys() - self.result.media:
            os.unlink(f"{self._root}/{rel}")
        prune_atlases(cache, self.atlas_files)

    def _media_listings(self, cache: Path) -> tuple[dict[str, int], dict[str, int]]:
        """(staging, cache) media files -> inode, listed once per build."""
        if self._media is None:
            self._media = (_files_under(self.root, MEDIA), _files_under(cache, MEDIA))
        return self._media

    def _link_media(self, cache: Path, wanted: Iterable[str]) -> None:
        """Hard-link the media files ``wanted`` (site-relative paths) from the cache.

        Their names say their content, so the same path always holds the same bytes:
        a file the staging folder already holds (the replaced site's media folder,
        see ``publish.staging_dir``) is kept when it is the cache's file (same
        inode), any other is linked.
        """
        present, cached = self._media_listings(cache)
        cached_root = os.fspath(cache)
        for rel in wanted:
            source = cached.get(rel)
            if source is None:
                if not rel.startswith(ATLAS_DIR):
                    continue  # its thumbnail could not be made: reported by make_media
                source = _inode(f"{cached_root}/{rel}")  # drawn by this build, after the listing
                if source is None:
                    continue
            if present.get(rel) != source:  # missing, or a copy: link the cache's file
                target = self._target(rel)
                if rel in present:
                    os.unlink(target)
                _link_or_copy(f"{cached_root}/{rel}", target)
            # (A store written before media were kept apart has them in the manifest.)
            if rel in self.live_media or rel in self.manifest:
                self.result.unchanged += 1
            else:
                self.result.written.append(rel)
            self.result.media.add(rel)
