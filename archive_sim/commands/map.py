"""``archive-sim map``: t-SNE positions per category and for all items.

Input: items with vectors for the configured model. Output: map points (x, y in
[0, 1]) per scope in the state store; scope ``all`` plus one per category slug.
A scope whose members and settings have not changed is not laid out again.
"""

from __future__ import annotations

from ..catalog import StateStore
from ..config import Settings
from ..embed.backbones import model_id
from ..neighbors import signature
from ..projection import project
from ..report import Report
from ..sitemodel import category_slug


def run(settings: Settings, store: StateStore, report: Report) -> int:
    with report.stage("map") as stage:
        mid = model_id(settings.model.name, settings.model.weights)
        items = store.items_with_vectors(mid)
        scopes = {"all": items}
        for it in items:
            scopes.setdefault(category_slug(it.category), []).append(it)
        store.drop_map_scopes(set(scopes))
        laid_out = 0
        for scope, members in sorted(scopes.items()):
            ids = [it.id for it in members]
            hashes = [it.content_hash for it in members]
            sig = signature(ids, hashes, mid, settings.map.perplexity, settings.map.seed)
            if store.get_meta(f"map:{scope}") == sig:
                continue
            positions = project(store.vectors(mid, hashes), settings.map.perplexity, settings.map.seed)
            store.put_map(scope, {i: (float(x), float(y)) for i, (x, y) in zip(ids, positions)})
            store.set_meta(f"map:{scope}", sig)
            laid_out += 1
        stage.note = f"{len(scopes)} maps, {laid_out} laid out"
        return laid_out
