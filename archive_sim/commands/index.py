"""``archive-sim index``: one Annoy index per category and every item's neighbours.

Input: items with vectors for the configured model. Output: ``<state>/index/<model>/
<category>.ann`` with ``.ids.json``, and neighbour lists in the state store. A
category whose members, vectors and settings have not changed is not rebuilt.
"""

from __future__ import annotations

from ..catalog import StateStore
from ..config import Settings
from ..embed.backbones import model_id
from ..neighbors import build_index, nearest_neighbors, save_index, signature
from ..report import Report
from . import RunOptions
from ..sitemodel import category_slug
from ..slugs import slugify


def run(settings: Settings, store: StateStore, report: Report, options: RunOptions = RunOptions()) -> int:
    with report.stage("index") as stage:
        mid = model_id(settings.model.name, settings.model.weights)
        items = store.items_with_vectors(mid)
        categories = sorted({it.category for it in items})
        folder = settings.state_dir / "index" / slugify(mid)
        nb = settings.neighbors
        rebuilt = 0
        for category in categories:
            members = [it for it in items if it.category == category]
            ids = [it.id for it in members]
            hashes = [it.content_hash for it in members]
            sig = signature(ids, hashes, mid, nb.k, nb.trees, nb.duplicate_threshold, settings.map.seed)
            path = folder / f"{category_slug(category)}.ann"
            if store.get_meta(f"index:{mid}:{category}") == sig and path.exists():
                continue
            vectors = store.vectors(mid, hashes)
            index = build_index(vectors, nb.trees, settings.map.seed)
            lists = nearest_neighbors(index, ids, hashes, nb.k, nb.duplicate_threshold)
            save_index(index, ids, path)
            store.put_neighbors(mid, lists)
            store.set_meta(f"index:{mid}:{category}", sig)
            rebuilt += 1
        stage.note = f"{len(categories)} categories, {rebuilt} rebuilt"
        return rebuilt
