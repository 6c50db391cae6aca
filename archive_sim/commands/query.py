"""``archive-sim query IMAGE``: the items of the collection that look most like an image.

Input: an image file or an http(s) URL, and the state of the last build: its model
and descriptor, its Annoy index per category (with the whitening learned beside
them) and every item's perceptual hash. Output: the ``k`` most similar items (id,
title, category, similarity, copy mark), copies of the picture first, as a table on
stdout or JSON (``--json``); the time to load the model and to answer on stderr.
The image is embedded exactly as the build embedded its items.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from ..state_store import StateStore
from ..config import Settings
from ..copy_detection import CopyRule, hamming, phash_file
from ..embed.descriptors import WHITENING_FILE, Whitening, descriptor_model_id, load_descriptor
from ..embed.pipeline import decode_for_model, l2_normalise
from ..imaging import ImageError, image_size
from ..neighbors import RecentItems, load_index, similarity_from_angular
from ..slugs import category_slug, slugify
from . import Command, add_settings_options, existing_state, positive, settings_from


class QueryError(RuntimeError):
    """The query cannot be answered; the message names the image, category or command to run."""


@dataclass(frozen=True)
class Hit:
    id: str
    title: str
    category: str
    similarity: float
    copy: bool
    hash_distance: int | None


def image_file(source: str, settings: Settings, scratch: Path) -> Path:
    """The file of ``source``: itself, or for an http(s) URL a download into ``scratch``."""
    if not source.startswith(("http://", "https://")):
        return Path(source)
    from ..download import HttpClient

    with HttpClient(settings.fetch, scratch, trusted=[source]) as client:  # the URL the user typed
        result = client.fetch_image(source)
    if result.download is None:
        raise QueryError(f"{source}: {result.reason}")
    return Path(result.download.path)


class Searcher:
    """The loaded model, indexes and hashes of one build: answers one image after another."""

    def __init__(self, settings: Settings, store: StateStore, category: str | None = None) -> None:
        """Load everything; ``category``, when given, is checked (before the slow model load)."""
        self.settings = settings
        self.mid = descriptor_model_id(settings.model)
        items = store.items_with_vectors(self.mid)
        if not items:
            raise QueryError(f"no items with vectors for {self.mid}: run 'archive-sim build' first")
        categories = sorted({it.category for it in items})
        self.categories = categories
        if category is not None and category not in categories:
            raise QueryError(f"--category {category!r}: not in this build (categories: {', '.join(categories)})")
        self.by_id = {it.id: it for it in items}
        phashes = store.phashes(it.content_hash for it in items)
        self.phash_of = {it.id: phashes.get(it.content_hash) for it in items}
        folder = settings.state_dir / "index" / slugify(self.mid)
        whitening_file = folder / WHITENING_FILE
        self.whitening = Whitening.load(whitening_file) if whitening_file.exists() else None
        self.backbone = load_descriptor(settings.model)
        dim = self.whitening.dim if self.whitening is not None else self.backbone.dim
        self.indexes = {}
        self.recent: dict[str, RecentItems] = {}  # category -> items added since its Annoy file, searched exactly
        self.hashes = {}  # category -> (positions with a pHash, their pHashes), for one vectorised scan
        for name in categories:
            path = folder / f"{category_slug(name)}.ann"
            if not path.exists():
                raise QueryError(f"no index for category {name!r} ({path}): run 'archive-sim index' first")
            index, ids = load_index(path, dim)
            self.indexes[name] = (index, ids)
            self.recent[name] = RecentItems.load(path)
            known = [(p, self.phash_of[i]) for p, i in enumerate(ids) if self.phash_of.get(i) is not None]
            self.hashes[name] = (np.array([p for p, _ in known], dtype=np.int64),
                                 np.array([h for _, h in known], dtype=np.uint64))
        self.rule = CopyRule(settings.copies.hash_distance, settings.copies.similarity)
        # The first call of a compiled model traces it; pay that here, not in the first answer.
        size = self.backbone.input_size
        self.backbone.features(np.zeros((1, size, size, 3), np.uint8))

    def vector(self, path: Path, source: str) -> np.ndarray:
        """Decoded and embedded as the build's pipeline does, so that a catalogued file finds itself at 1.0."""
        array, error = decode_for_model(str(path), self.backbone.input_size)
        if array is None:
            raise QueryError(f"{source}: {error}")
        v = l2_normalise(self.backbone.features(array[None]))
        return self.whitening.apply(v)[0] if self.whitening is not None else v[0]

    def search(self, path: Path, k: int, source: str | None = None, category: str | None = None) -> list[Hit]:
        """The ``k`` items most like the image at ``path`` (in ``category`` only, when given)."""
        if category is not None and category not in self.indexes:
            raise QueryError(f"--category {category!r}: not in this build (categories: {', '.join(self.categories)})")
        v = self.vector(path, source or str(path))
        query_hash = phash_file(path)
        found: dict[str, Hit] = {}
        for name, (index, ids) in self.indexes.items():
            if category is not None and name != category:
                continue
            positions, distances = index.get_nns_by_vector(v, min(len(ids), k), include_distances=True)
            candidates = {ids[p]: similarity_from_angular(d) for p, d in zip(positions, distances)}
            # Copies by hash may rank below k by similarity: look at every hash of the category.
            if self.rule.hash_distance is not None:
                positions_known, hashes = self.hashes[name]
                close = positions_known[np.bitwise_count(hashes ^ np.uint64(query_hash)) <= self.rule.hash_distance]
                for p in close.tolist():
                    if ids[p] not in candidates:
                        item_vector = np.asarray(index.get_item_vector(p), dtype=np.float32)
                        candidates[ids[p]] = round(float(np.clip(item_vector @ v, -1, 1)), 4)
            candidates.update(self.recent[name].similarities(v))
            for item_id, similarity in candidates.items():
                it = self.by_id.get(item_id)
                if it is None:  # indexed, then removed from the catalog: the next index run drops it
                    continue
                h = self.phash_of.get(item_id)
                distance = hamming(h, query_hash) if h is not None else None
                found[item_id] = Hit(item_id, it.title, name, similarity,
                                     self.rule.matches(distance, similarity), distance)
        ranked = sorted(found.values(), key=lambda h: (not h.copy, -h.similarity, h.id))
        return ranked[:k]


def format_hits(hits: list[Hit], language: str = "en") -> str:
    mark = "Samma bild" if language == "sv" else "Same picture"
    rows = [("#", "similarity", "copy", "category", "id", "title")]
    for rank, h in enumerate(hits, start=1):
        rows.append((str(rank), f"{h.similarity:.4f}", mark if h.copy else "", h.category, h.id, h.title))
    widths = [max(len(r[c]) for r in rows) for c in range(5)]
    return "\n".join("  ".join(r[c].ljust(widths[c]) if c else r[c].rjust(widths[c]) for c in range(5))
                     + "  " + r[5] for r in rows)


def run(settings: Settings, store: StateStore, image: str, category: str | None = None, k: int = 10,
        as_json: bool = False, out: TextIO | None = None, err: TextIO | None = None) -> list[Hit]:
    out, err = out or sys.stdout, err or sys.stderr
    if k < 1:
        raise QueryError(f"-k {k}: ask for at least one item")
    with tempfile.TemporaryDirectory(prefix="archive-sim-query-") as scratch:
        # The image is checked before the model is loaded: a typo costs no waiting.
        path = image_file(image, settings, Path(scratch))
        try:
            image_size(path)
        except ImageError as exc:
            raise QueryError(f"{image}: {exc}") from None
        start = time.perf_counter()
        searcher = Searcher(settings, store, category)
        loaded = time.perf_counter()
        hits = searcher.search(path, k, image, category)
        answered = time.perf_counter()
    if as_json:
        document = {"version": 1, "query": image, "model": searcher.mid, "category": category,
                    "hits": [asdict(h) for h in hits]}
        print(json.dumps(document, indent=1, ensure_ascii=False), file=out)
    else:
        print(format_hits(hits, settings.site.language), file=out)
    print(f"model loaded in {loaded - start:.2f} s; query answered in {answered - loaded:.2f} s", file=err)
    return hits


def _arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_options(parser)
    parser.add_argument("image", metavar="IMAGE", help="an image file, or an http(s) URL to download it from")
    parser.add_argument("--category", metavar="C", help="search this category only (default: all)")
    parser.add_argument("-k", type=positive, default=10, help="how many items to list (default: 10)")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts instead of a table")


def _main(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    existing_state(settings)
    with StateStore(settings.state_dir) as store:
        run(settings, store, args.image, args.category, args.k, args.json)
    return 0


COMMAND = Command(
    "query", "Find the items that look most like an image (a file or an http(s) URL).",
    """Find the items that look most like an image: a file, or an http(s) URL to download.

The image is embedded with the model the site was built with and looked up in the
site's indexes; copies of the same picture are marked. Reads the state of the last
build and changes nothing.""",
    _arguments, _main,
    epilog="""examples:
  archive-sim query scan.jpg
  archive-sim query https://example.org/image.jpg --category paintings -k 5 --json""")
