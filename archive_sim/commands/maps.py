"""``archive-sim map``: t-SNE positions per category and for all items, stable across builds.

Input: items with vectors for the configured model, and the layouts of the last
build (``<state>/maps/<model>/<scope>.npz``). Output: map points (x, y in [0, 1])
per scope in the state store; scope ``all`` plus one per category slug. Items
already on a map keep their positions; new ones are placed into it, unless
``--relayout`` is given or more than ``map.relayout_share`` of the items are new;
a map laid out anew gets a new layout id (``StateStore.map_layout``).
"""

from __future__ import annotations

import hashlib

from ..state_store import StateStore
from ..config import Settings
from ..embed.descriptors import descriptor_model_id
from ..fsutil import atomic_write_bytes
from ..neighbors import signature
from ..projection import MapLayout, can_extend, extend, layout, new_items
from ..progress import Report
from ..slugs import category_slug, slugify
from . import RunOptions, add_relayout, stage_command


def run(settings: Settings, store: StateStore, report: Report, options: RunOptions = RunOptions()) -> int:
    with report.stage("map") as stage:
        mid = descriptor_model_id(settings.model)
        items = store.items_with_vectors(mid)
        scopes = {"all": items}
        for it in items:
            scopes.setdefault(category_slug(it.category), []).append(it)
        store.drop_map_scopes(set(scopes))
        folder = settings.state_dir / "maps" / slugify(mid)
        placed = relaid = moved = 0
        for scope, members in sorted(scopes.items()):
            ids = [it.id for it in members]
            hashes = [it.content_hash for it in members]
            sig = signature(ids, hashes, mid, settings.map.perplexity, settings.map.seed)
            path = folder / f"{scope}.npz"
            if store.get_meta(f"map:{scope}") == sig and path.exists() and not options.relayout:
                continue
            previous = MapLayout.from_bytes(path.read_bytes()) if path.exists() else None
            extending = not options.relayout and can_extend(previous, ids, hashes, settings.map.relayout_share)
            if extending:
                # Only the new items' vectors are read: the kept ones' PCA coordinates are in the layout.
                new = new_items(previous, ids, hashes)
                old_vectors = (store.vectors(mid, previous.hashes) if previous.reduced is None else None)
                result = extend(previous, ids, hashes, store.vectors(mid, [hashes[i] for i in new]), old_vectors)
                placed += 1
                moved += len(new)
            else:
                result = layout(ids, hashes, store.vectors(mid, hashes), settings.map.perplexity, settings.map.seed)
                relaid += 1
            saved = result.to_bytes()
            atomic_write_bytes(path, saved)
            positions = result.positions()
            store.put_map(scope, {i: (float(x), float(y)) for i, (x, y) in zip(ids, positions)},
                          layout=None if extending else hashlib.sha256(saved).hexdigest()[:16])
            store.set_meta(f"map:{scope}", sig)
        stage.note = f"{len(scopes)} maps: {relaid} laid out, {placed} extended with {moved} new points"
        return placed + relaid


COMMAND = stage_command(
    "map", run, options=(add_relayout,),
    help="Lay out t-SNE maps per category and for all items.",
    description="""Lay out the t-SNE maps: one per category and one of all items.

Items already on a map keep their places and new ones are placed among them, unless
--relayout is given or more than map.relayout_share of the items are new.""")
