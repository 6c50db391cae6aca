"""The site as plain data: paths, cards, page contexts and JSON documents.

Input: catalog items, neighbour lists, map positions and settings. Output: plain
dicts and lists (no I/O) that ``render`` passes to templates or writes as JSON.
Every URL here is relative to the site root; templates prefix it with ``root`` so
the site works from any folder of any static host.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from .atlas import AtlasSet, Tile
from ..calibration import LABEL_KEYS, Calibration
from ..state_store import CatalogItem, Neighbor, NeighborLists
from ..copy_detection import copies_first
from ..imaging import fit_within
from ..slugs import category_slug

API_VERSION = 1
CARD_SIZES = (240, 480)
REUSE_PATH = "reuse/index.html"
# Cards on one page of the reuse report. At 100,000 items a report on one page
# was 53 MB of HTML; a group is never split over two pages.
REUSE_CARDS_PER_PAGE = 120
REUSE_JSON = "api/v1/reuse.json"
IMAGE_SIZES = (480, 1024)
# Neighbours below the last band are shown folded ("More pictures") from this many;
# fewer are left out: a fold that opens on two pictures is not worth the click.
MORE_PICTURES_AT_LEAST = 5


def dumps(document: Any) -> str:
    """A JSON document of the site as text.

    Compact: Python's C encoder handles only unindented output (4x faster), and the
    files are a fraction of the size. Readers pretty-print as they like.
    """
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n"


_JSON_BOOL = {True: "true", False: "false"}
_JSON_BAND = {None: "null", **{name: f'"{name}"' for name in LABEL_KEYS}}


def _json_number(value: float) -> str:
    # float.__repr__ is how json writes a float; anything else goes through json.
    return float.__repr__(value) if type(value) is float else json.dumps(value)


def media_sizes(map_thumbnail: int) -> tuple[int, ...]:
    return tuple(sorted({map_thumbnail, *CARD_SIZES, *IMAGE_SIZES}))


def media_path(content_hash: str, size: int) -> str:
    return f"media/{size}/{content_hash[:24]}.jpg"


def page_window(page: int, pages: int, around: int = 2) -> list[int]:
    """Page numbers a pager shows: first, last, and ``around`` either side of ``page``.

    Listing every page would make each of N category pages N links long (N² in all).
    """
    shown = {1, pages, *range(max(1, page - around), min(pages, page + around) + 1)}
    return sorted(shown)


def reuse_page_path(page: int) -> str:
    return REUSE_PATH if page == 1 else f"reuse/page/{page}/index.html"


def reuse_group_path(member: CatalogItem) -> str:
    """The page of the group of copies that ``member`` names (its member of least id)."""
    return f"reuse/group/{member.slug}/index.html"


def pagination(page: int, pages: int, url: Callable[[int], str]) -> dict[str, Any]:
    """What a pager shows on page ``page`` of ``pages``, whose addresses ``url`` gives."""
    return {"page": page, "pages": pages,
            "prev_url": url(page - 1) if page > 1 else None,
            "next_url": url(page + 1) if page < pages else None,
            "links": [{"number": i, "url": url(i), "current": i == page} for i in page_window(page, pages)]}


def root_prefix(page_path: str) -> str:
    """'' for 'index.html', '../' for 'a/index.html', '../../' for 'a/b/index.html'."""
    return "../" * page_path.count("/")


@dataclass(frozen=True)
class CategoryInfo:
    name: str
    slug: str
    count: int
    label: str

    def as_link(self) -> dict[str, Any]:
        """The category as a link: what pages show of a category they are not about."""
        return {"name": self.name, "label": self.label, "slug": self.slug, "url": f"{self.slug}/index.html"}

    def as_context(self) -> dict[str, Any]:
        """``as_link`` and the number of items."""
        return {**self.as_link(), "count": self.count}

    def identity(self) -> tuple[str, str, int, str]:
        """All a page shows of the category, for the inputs of a page that lists its items."""
        return self.name, self.slug, self.count, self.label

    def page_path(self, number: int) -> str:
        """The path of page ``number`` of the category's listing."""
        return f"{self.slug}/index.html" if number == 1 else f"{self.slug}/page/{number}/index.html"


class CategoryPage(NamedTuple):
    """Page ``number`` of ``pages`` of a category, showing ``items``."""

    category: CategoryInfo
    number: int
    pages: int
    items: list[CatalogItem]

    @property
    def path(self) -> str:
        return self.category.page_path(self.number)


class SiteModel:
    """Everything the renderer needs, indexed for lookup."""

    def __init__(self, items: list[CatalogItem], neighbors: Mapping[str, Sequence[Neighbor]], model_id: str,
                 map_thumbnail: int = 128, category_labels: dict[str, str] | None = None,
                 reuse_groups: list[list[str]] | None = None,
                 calibrations: dict[str, Calibration] | None = None) -> None:
        self.calibrations = calibrations or {}
        self._bands: dict[tuple[str, str], list[dict[str, Any]]] = {}  # read-only, shared by every page
        self.items = sorted(items, key=lambda it: (it.category, it.id))
        self.by_id = {it.id: it for it in self.items}
        self._set_reuse_groups(reuse_groups or [])
        self.neighbors = neighbors
        self.model_id = model_id
        self.map_thumbnail = map_thumbnail
        counts: dict[str, int] = {}
        for it in self.items:
            counts[it.category] = counts.get(it.category, 0) + 1
        labels = category_labels or {}
        self.categories = [CategoryInfo(name, category_slug(name), n, labels.get(name, name))
                           for name, n in sorted(counts.items())]
        self.category_by_name = {c.name: c for c in self.categories}
        self._cards: dict[str, tuple[CatalogItem, dict[str, Any]]] = {}
        self._neighbor_cards: dict[str, tuple[CatalogItem, dict[str, Any]]] = {}
        self._listings: dict[str, tuple[CatalogItem, str]] = {}
        self._digests: dict[str, str] | None = None  # every item's ``item_digest``, made at the first asked
        self._calibration_digests = {name: hashlib.sha256(json.dumps(c.to_json(), sort_keys=True).encode("utf-8"))
                                     .hexdigest() for name, c in self.calibrations.items()}

    # -- paths -------------------------------------------------------------------
    def item_path(self, item: CatalogItem) -> str:
        return f"{self.category_by_name[item.category].slug}/{item.slug}/index.html"

    def neighbors_path(self, item: CatalogItem) -> str:
        return f"api/v1/neighbors/{self.category_by_name[item.category].slug}/{item.slug}.json"

    def image(self, item: CatalogItem, sizes: tuple[int, ...]) -> dict[str, Any]:
        """``{src, width, height, sources}`` for the largest of ``sizes``, srcset entries for all."""
        sources = []
        for size in sizes:
            w, h = fit_within(item.width, item.height, size)
            if sources and sources[-1]["width"] == w:
                continue  # a small original: larger sizes would be the same file size
            sources.append({"src": media_path(item.content_hash, size), "width": w, "height": h})
        largest = sources[-1]
        return {"src": largest["src"], "width": largest["width"], "height": largest["height"],
                "sources": [{"src": s["src"], "width": s["width"]} for s in sources]}

    def card_src(self, item: CatalogItem) -> str:
        """The thumbnail a card shows (its ``thumb.src``): the smallest of ``CARD_SIZES``."""
        return media_path(item.content_hash, CARD_SIZES[0])

    def card(self, item: CatalogItem) -> dict[str, Any]:
        # An item is shown as a card on about k other pages: build it once (read-only).
        cached = self._cards.get(item.id)
        if cached is not None and cached[0] is item:
            return cached[1]
        thumb = self.image(item, CARD_SIZES)
        width, height = fit_within(item.width, item.height, CARD_SIZES[0])
        card = {"id": item.id, "title": item.title, "url": self.item_path(item),
                "thumb": {**thumb, "src": self.card_src(item), "width": width, "height": height}}
        self._cards[item.id] = (item, card)
        return card

    def neighbor_card(self, item: CatalogItem) -> dict[str, Any]:
        """``card`` as an item page lists it: with ``thumb.srcset``, the thumbnail's
        ``srcset`` attribute as written from an item page (every item page is as far
        from the site root as the next). One attribute a card, where a loop over the
        sources made six pieces of output and a loop state: thirty cards a page."""
        cached = self._neighbor_cards.get(item.id)
        if cached is not None and cached[0] is item:
            return cached[1]
        card = self.card(item)
        root = root_prefix(self.item_path(item))
        srcset = ", ".join(f"{root}{s['src']} {s['width']}w" for s in card["thumb"]["sources"])
        card = {**card, "thumb": {**card["thumb"], "srcset": srcset}}
        self._neighbor_cards[item.id] = (item, card)
        return card

    # -- page contexts -------------------------------------------------------------
    def pages_of(self, category: CategoryInfo, per_page: int) -> list[CategoryPage]:
        """The pages of ``category``, ``per_page`` items each."""
        members = [it for it in self.items if it.category == category.name]
        pages = max(1, math.ceil(len(members) / per_page))
        return [CategoryPage(category, n, pages, members[(n - 1) * per_page:n * per_page]) for n in range(1, pages + 1)]

    def category_cards_inputs(self, category: str, items: list[CatalogItem]) -> bytes:
        """What a category's cards and bands (``find.cards_document``) are made from: the
        category, its calibration and ``items`` (each by ``item_digest``)."""
        return marshal.dumps((self.category_by_name[category].identity(), self._calibration_digests.get(category, ""),
                              [self.item_digest(it) for it in items]), 2)

    def category_page_inputs(self, page: CategoryPage) -> bytes:
        """What ``category_page_context`` is made from: the category, the page's place
        and its items (each by ``item_digest``)."""
        return marshal.dumps((page.category.identity(), page.number, page.pages,
                              [self.item_digest(it) for it in page.items]), 2)

    def category_page_context(self, page: CategoryPage) -> dict[str, Any]:
        """What ``category.html`` sees: the category, its cards on this page, the pagination."""
        return {"category": page.category.as_context(), "cards": [self.card(it) for it in page.items],
                "pagination": pagination(page.number, page.pages, page.category.page_path)}

    def item_context(self, item: CatalogItem, labels: dict[str, str]) -> dict[str, Any]:
        """What ``item.html`` sees of ``item`` (docs/themes.md): the item, its category,
        its metadata as labelled rows, the bands of its category, and its neighbours on
        the site, copies first: those called similar (a copy, or in a band) and the
        rest (``more_pictures``, left empty when fewer than a handful)."""
        category = self.category_by_name[item.category]
        rows = [{"key": key, "label": labels.get(key, key), "value": value} for key, value in sorted(
            item.metadata.items(), key=lambda kv: (_METADATA_ORDER.get(kv[0], 99), kv[0]))]
        calibration = self.calibrations.get(item.category)
        similar: list[dict[str, Any]] = []
        more: list[dict[str, Any]] = []
        for nb, other in self._on_site(copies_first(self.neighbors.get(item.id, []))):
            band = calibration.band(nb.similarity) if calibration is not None else None
            label = neighbor_label(nb, band)
            (similar if label is not None else more).append({
                **self.neighbor_card(other), "similarity": nb.similarity, "percent": max(0, round(nb.similarity * 100)),
                "band": label, "calibrated_band": band, "duplicate": nb.duplicate, "copy": nb.copy})
        return {
            "item": {
                "id": item.id, "slug": item.slug, "title": item.title, "category": item.category,
                "metadata": item.metadata, "link": item.link,
                # Only a web address becomes a link: a record may hold anything there.
                "web_link": item.link if item.link and item.link.lower().startswith(("https://", "http://")) else None,
                "image": self.image(item, IMAGE_SIZES), "url": self.item_path(item),
                "json_url": self.neighbors_path(item),
                "map_url": f"map/{category.slug}/index.html?focus={item.slug}",
                "reuse_url": self.reuse_url(item.id),
            },
            "category": category.as_link(),
            "metadata_rows": rows,
            "bands": self.bands(item.category, labels),
            "neighbors": similar,
            "more_pictures": more if len(more) >= MORE_PICTURES_AT_LEAST else [],
        }

    @property
    def neighbors(self) -> NeighborLists:
        """The neighbour lists the model holds (the render sets them chunk by chunk)."""
        return self._neighbors

    @neighbors.setter
    def neighbors(self, lists: Mapping[str, Sequence[Neighbor]]) -> None:
        self._neighbors = lists if isinstance(lists, NeighborLists) else NeighborLists.of(lists)

    def item_inputs(self, item: CatalogItem) -> bytes:
        """Everything of the site model that ``item_context`` and ``neighbors_json`` read
        for ``item``: the item and its category, its neighbour entries and the items they
        name (each by ``item_digest``; a neighbour not on the site as such), its
        category's calibration, its reuse group and the model. The same bytes give the
        same context and document, with the same labels and code: the key of the
        item's page and document, made without making either."""
        digest_of = self._item_digests()
        # The list as stored, and the ids it names: no Neighbor made for a page not made.
        text = self.neighbors.text(item.id)
        named = [digest_of.get(entry[0], "-") for entry in json.loads(text)]
        return marshal.dumps((self.item_digest(item), self._calibration_digests.get(item.category, ""),
                              self.reuse_url(item.id) or "", self.model_id, text, named), 2)

    def items_inputs(self) -> bytes:
        """What ``items_document`` is made from (every item, by ``item_digest``, and the model)."""
        return marshal.dumps((self.model_id, [self.item_digest(it) for it in self.items]), 2)

    def item_digest(self, item: CatalogItem) -> str:
        """A hash of ``item`` and of its category's name, slug and label: all that a page
        shows of an item, as itself or as a card."""
        if self.by_id.get(item.id) is item:
            return self._item_digests()[item.id]
        return self._digest(item)

    def _digest(self, item: CatalogItem) -> str:
        category = self.category_by_name[item.category]
        return hashlib.sha256(marshal.dumps((tuple(item), category.slug, category.label), 2)).hexdigest()[:32]

    def _item_digests(self) -> dict[str, str]:
        # All at once: an item page's key needs the digest of every item it lists.
        if self._digests is None:
            self._digests = {it.id: self._digest(it) for it in self.items}
        return self._digests

    def bands(self, category: str, labels: dict[str, str]) -> list[dict[str, Any]]:
        """The bands of ``category``, highest first, each with its words in ``labels``;
        none when the category has no calibration (fewer than two pictures)."""
        key = (category, labels[LABEL_KEYS["very_similar"]])
        cached = self._bands.get(key)
        if cached is None:
            calibration = self.calibrations.get(category)
            cached = self._bands[key] = [] if calibration is None else [
                {**band, "label": labels[LABEL_KEYS[str(band["name"])]]} for band in calibration.bands()]
        return cached

    def map_scopes(self, map_all_label: str) -> list[dict[str, str]]:
        named = [("all", map_all_label)] + [(c.slug, c.label) for c in self.categories]
        return [{"name": name, "label": label, "url": page, "data_url": document}
                for name, label in named for page, document in [self.map_paths(name)]]

    def map_context(self, scope: str, map_all_label: str) -> dict[str, Any]:
        """What ``map.html`` sees of map ``scope``: the scope, every scope as a link, its
        document, and the sizes of the item thumbnails (``media/<size>/``) that deep
        zoom and the panel draw from."""
        scopes = self.map_scopes(map_all_label)
        here = next(s for s in scopes if s["name"] == scope)
        return {"scope": {"name": here["name"], "label": here["label"]},
                "scopes": [{**s, "current": s["name"] == scope} for s in scopes], "data_url": here["data_url"],
                "map_media": list(CARD_SIZES)}

    @staticmethod
    def map_paths(scope: str) -> tuple[str, str]:
        """The page and the document of map ``scope`` ("all" or a category slug)."""
        if scope == "all":
            return "map/index.html", "api/v1/map/all.json"
        return f"map/{scope}/index.html", f"api/v1/map/{scope}.json"

    # -- JSON documents ----------------------------------------------------------------
    def items_document(self) -> dict[str, Any]:
        return {
            "version": API_VERSION,
            "model": self.model_id,
            "items": [{
                "id": it.id, "category": it.category, "slug": it.slug, "title": it.title,
                "url": self.item_path(it),
                "image": _plain_image(self.image(it, IMAGE_SIZES)),
                "thumbnail": _plain_image(self.image(it, CARD_SIZES[:1])),
                "neighbors_url": self.neighbors_path(it),
                "metadata": it.metadata, "link": it.link,
            } for it in self.items],
        }

    def neighbors_document(self, item: CatalogItem, labels: dict[str, str]) -> dict[str, Any]:
        """An item's neighbours as JSON: each with its band, and the bands of its category."""
        calibration = self.calibrations.get(item.category)
        listed = [{**self._listing(other), "similarity": nb.similarity, "duplicate": nb.duplicate, "copy": nb.copy,
                   "matched": nb.matched, "matches": nb.matches,
                   "band": calibration.band(nb.similarity) if calibration is not None else None}
                  for nb, other in self._on_site(self.neighbors.get(item.id, []))]
        return {"version": API_VERSION, "id": item.id, "slug": item.slug, "category": item.category,
                "model": self.model_id, "bands": self.bands(item.category, labels), "neighbors": listed}

    def neighbors_json(self, item: CatalogItem, labels: dict[str, str]) -> str:
        """``dumps(neighbors_document(item, labels))``, put together from text: each
        neighbour's fixed part is encoded once per item, not once in each of the thirty
        lists that name it (at 100,000 items, encoding was a tenth of the render)."""
        head = dumps({"version": API_VERSION, "id": item.id, "slug": item.slug, "category": item.category,
                      "model": self.model_id, "bands": self.bands(item.category, labels)})[:-2]
        calibration = self.calibrations.get(item.category)
        entries = []
        for nb, other in self._on_site(self.neighbors.get(item.id, [])):
            band = calibration.band(nb.similarity) if calibration is not None else None
            cached = self._listings.get(other.id)
            if cached is None or cached[0] is not other:
                cached = self._listings[other.id] = (other, dumps(self._listing(other))[:-2])
            entries.append(f'{cached[1]},"similarity":{_json_number(nb.similarity)},'
                           f'"duplicate":{_JSON_BOOL[nb.duplicate]},"copy":{_JSON_BOOL[nb.copy]},'
                           f'"matched":{_JSON_BOOL[nb.matched]},"matches":{int(nb.matches)},'
                           f'"band":{_JSON_BAND[band]}}}')
        return f'{head},"neighbors":[{",".join(entries)}]}}\n'

    def _on_site(self, neighbors: list[Neighbor]) -> list[tuple[Neighbor, CatalogItem]]:
        """Those of ``neighbors`` that are on the site, with their items."""
        by_id = self.by_id
        return [(nb, other) for nb in neighbors if (other := by_id.get(nb.id)) is not None]

    def _listing(self, other: CatalogItem) -> dict[str, Any]:
        """What a neighbour list says of ``other`` whatever the item listing it."""
        return {"id": other.id, "slug": other.slug, "title": other.title, "url": self.item_path(other),
                "thumbnail": media_path(other.content_hash, CARD_SIZES[0])}

    # -- copies: the same picture in several places (copies.py) ---------------------------
    def _set_reuse_groups(self, groups: list[list[str]]) -> None:
        """Keep the groups' members that are on the site; a group needs two of them."""
        kept = [[i for i in g if i in self.by_id] for g in groups]
        self.reuse_groups = [g for g in kept if len(g) >= 2]
        self.reuse_group_of = {i: n for n, g in enumerate(self.reuse_groups, start=1) for i in g}
        # Each group's own page is named by its member of least id, not by its number in
        # the report (largest first): a group keeps its address, and its members' pages
        # their link, when other groups grow or appear.
        self.reuse_group_paths = [reuse_group_path(self.by_id[min(g)]) for g in self.reuse_groups]
        # The page of each group, in order: a new page when the next group's cards
        # would not fit (a group larger than a page gets one to itself).
        self.reuse_page_of: list[int] = []
        page, cards = 1, 0
        for group in self.reuse_groups:
            if cards and cards + len(group) > REUSE_CARDS_PER_PAGE:
                page, cards = page + 1, 0
            self.reuse_page_of.append(page)
            cards += len(group)
        self.reuse_item_count = sum(len(g) for g in self.reuse_groups)
        self.reuse_page_count = max(self.reuse_page_of, default=1)
        self._group_inputs: list[bytes] | None = None

    def reuse_url(self, item_id: str) -> str | None:
        """The page of ``item_id``'s group of copies; None when it has no copies."""
        number = self.reuse_group_of.get(item_id)
        return None if number is None else self.reuse_group_paths[number - 1]

    def _group_url(self, number: int) -> str:
        return f"{reuse_page_path(self.reuse_page_of[number - 1])}#group-{number}"

    def reuse_pages(self) -> list[list[int]]:
        """The numbers of the groups on each page of the reuse report (largest first)."""
        pages: list[list[int]] = [[] for _ in range(self.reuse_page_count)]
        for number, page in enumerate(self.reuse_page_of, start=1):
            pages[page - 1].append(number)
        return pages

    def reuse_page_inputs(self, page: int, numbers: list[int]) -> bytes:
        """What ``reuse_page_context`` is made from: the report's size, the page's place,
        and its groups (number, page, members by ``item_digest``)."""
        totals = (len(self.reuse_groups), self.reuse_item_count, self.reuse_page_count)
        inputs = self.reuse_group_inputs()
        return marshal.dumps((totals, page, [(n, self.reuse_group_paths[n - 1], inputs[n - 1]) for n in numbers]), 2)

    def reuse_page_context(self, page: int, numbers: list[int]) -> dict[str, Any]:
        """What ``reuse.html`` sees on page ``page`` (its groups ``numbers``, with their
        members' cards), the report's totals, and pagination."""
        return {"groups": [{"number": n, "anchor": f"group-{n}", "url": self.reuse_group_paths[n - 1],
                            **self.group_cards(self.reuse_groups[n - 1])} for n in numbers],
                "group_count": len(self.reuse_groups), "item_count": self.reuse_item_count,
                "pagination": pagination(page, self.reuse_page_count, reuse_page_path)}

    def reuse_group_pages(self) -> list[tuple[str, list[str]]]:
        """The path of each group's own page, and its members' ids."""
        return list(zip(self.reuse_group_paths, self.reuse_groups))

    def group_inputs(self, members: list[str]) -> bytes:
        """What ``group_cards`` is made from: each member, by ``item_digest``."""
        return marshal.dumps([self.item_digest(self.by_id[i]) for i in members], 2)

    def reuse_group_inputs(self) -> list[bytes]:
        """``group_inputs`` of every group, in order: made once for the report's pages,
        the groups' own pages and ``reuse.json``."""
        if self._group_inputs is None:
            self._group_inputs = [self.group_inputs(g) for g in self.reuse_groups]
        return self._group_inputs

    def group_cards(self, members: list[str]) -> dict[str, Any]:
        """A group's members' cards and categories, as its page shows them. No number:
        that is its place in the report, which moves as other groups grow."""
        categories = sorted({self.by_id[i].category for i in members})
        return {"categories": [self.category_by_name[c].as_link() for c in categories],
                "members": [{"card": self.card(self.by_id[i]),
                             "category": self.category_by_name[self.by_id[i].category].label} for i in members]}

    def reuse_document_inputs(self, rule: dict[str, Any] | None = None) -> bytes:
        """What ``reuse_document`` is made from: the model, ``rule`` and each group (its
        number, report page and members by ``item_digest``)."""
        return marshal.dumps((self.model_id, sorted((rule or {}).items()), self.reuse_page_of,
                              self.reuse_group_inputs()), 2)

    def reuse_document(self, rule: dict[str, Any] | None = None) -> dict[str, Any]:
        groups = []
        for number, members in enumerate(self.reuse_groups, start=1):
            items = [self.by_id[i] for i in members]
            groups.append({
                "number": number, "url": self._group_url(number), "page": self.reuse_group_paths[number - 1],
                "categories": sorted({it.category for it in items}),
                "items": [{"id": it.id, "slug": it.slug, "category": it.category, "title": it.title,
                           "url": self.item_path(it), "thumbnail": media_path(it.content_hash, CARD_SIZES[0])}
                          for it in items],
            })
        document: dict[str, Any] = {"version": API_VERSION, "model": self.model_id}
        if rule is not None:
            document["rule"] = rule
        document["groups"] = groups
        return document

    def map_tiles(self, positions: dict[str, tuple[float, float]], cells: dict[str, int] | None = None) -> list[Tile]:
        """The points of one map as the atlas packer needs them, in their ``cells`` if given."""
        cells = cells or {}
        return [Tile(it.id, it.content_hash, it.width, it.height, x, y, cells.get(item_id, -1))
                for item_id, (x, y) in sorted(positions.items()) if (it := self.by_id.get(item_id))]

    def map_document_inputs(self, scope: str, positions: dict[str, tuple[float, float]],
                            atlases: AtlasSet | None = None) -> bytes:
        """What ``map_document`` is made from: the scope, the model, each point (its item
        by ``item_digest``, place and atlas cell) and the atlases."""
        digest_of = self._item_digests()
        cells = atlases.cells if atlases is not None else {}
        points = [(i, digest_of[i], x, y, cells.get(i, -1)) for i, (x, y) in sorted(positions.items()) if i in digest_of]
        return marshal.dumps((scope, self.model_id, self.map_thumbnail, points,
                              atlases.document() if atlases is not None else None), 2)

    def map_document(self, scope: str, positions: dict[str, tuple[float, float]],
                     atlases: AtlasSet | None = None) -> dict[str, Any]:
        points = []
        for item_id, (x, y) in sorted(positions.items()):
            it = self.by_id.get(item_id)
            if it is None:
                continue
            points.append({"id": it.id, "slug": it.slug, "category": it.category, "title": it.title,
                           "x": round(x, 5), "y": round(y, 5), "width": it.width, "height": it.height,
                           "url": self.item_path(it), "thumb": media_path(it.content_hash, self.map_thumbnail)})
            if atlases is not None:
                points[-1]["cell"] = atlases.cells[it.id]
        document = {"version": API_VERSION, "scope": scope, "model": self.model_id, "points": points}
        if atlases is not None:
            document["atlas"] = atlases.document()
        return document


def neighbor_label(nb: Neighbor, band: str | None) -> str | None:
    """The label key (of ``t``) a visitor reads for a neighbour: its own for a copy of
    the same picture, else its band's; none below the last band (not called similar)."""
    if nb.duplicate:
        return "exact_copy"
    if nb.copy:
        return "same_picture"
    return LABEL_KEYS[band] if band is not None else None


_METADATA_ORDER = {"date": 0, "creator": 1, "description": 2}


def _plain_image(image: dict[str, Any]) -> dict[str, Any]:
    return {"src": image["src"], "width": image["width"], "height": image["height"]}
