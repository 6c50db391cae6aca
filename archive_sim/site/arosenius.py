"""Outputs the Ivar Arosenius archive's frontend reads unchanged (``compat: arosenius``).

Input: the site's items with their vectors, neighbour lists and map positions, and
the archive's own image names (kept by the source). Output, beside the site:

- ``nearest_neighbors/<category>/<name>.json``: ``[{"similarity": 1.0, "filename": "<id>"}, ...]``,
  the item itself first, then its 29 nearest neighbours (30 entries, fewer only in a
  smaller category); similarity is the cosine of the two vectors truncated (not
  rounded) to 4 decimals, as the archive's ``cluster_vectors.py`` computed it;
- ``tsne_data/image_tsne_projections_<category>.json`` (and ``_all.json``):
  ``[{"id", "image", "width", "height", "x", "y"}]`` with x and y as strings, as
  theirs were, spread over -50..50 like the raw t-SNE output their frontend scales.

File names: an id or category made only of ASCII letters, digits, ``.``, ``_`` and
``-``, not starting with ``.`` and at most 100 characters long, is used as it is
(``nkm-1``, ``PRIV-4271``). Any other (``../../etc/passwd``, ``a/b``, ``Åsa på ön``),
and ids that would share a file name on a case-insensitive disk, use the item's
slug instead: the same ``[a-z0-9-]`` slug as its page, which cannot leave the
folder. The ``filename`` and ``id`` fields always hold the original id.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

from ..state_store import CatalogItem, Neighbor, StateStore
from ..slugs import category_slug, slugify

ENTRIES = 30          # the item itself and 29 neighbours
SPREAD = 100.0        # map [0, 1] -> [-50, 50]
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def truncate4(value: float) -> float:
    """Like the archive's ``int(similarity * 10000) / 10000.0``."""
    return int(value * 10000) / 10000.0


def file_names(values: list[str]) -> dict[str, str]:
    """A file name (without extension) for each value, unique even on a case-insensitive disk."""
    names = {v: (v if _SAFE.fullmatch(v) else slugify(v)) for v in values}
    folded: dict[str, list[str]] = {}
    for value, name in names.items():
        folded.setdefault(name.casefold(), []).append(value)
    for clash in folded.values():
        if len(clash) > 1:
            for value in clash:
                names[value] = slugify(value)
    return names


def neighbor_entries(item: CatalogItem, neighbors: list[Neighbor], vectors: dict[str, np.ndarray],
                     by_id: dict[str, CatalogItem]) -> list[dict[str, Any]]:
    """The item's ``nearest_neighbors`` document: itself first, then up to 29 others, best first."""
    own = vectors[item.id]
    others = []
    for nb in neighbors:
        other = by_id.get(nb.id)
        if other is None or other.category != item.category or nb.id == item.id:
            continue
        if other.content_hash == item.content_hash:
            similarity = 1.0
        else:
            vector = vectors[nb.id]
            cosine = float(np.dot(own, vector) / (np.linalg.norm(own) * np.linalg.norm(vector)))
            similarity = truncate4(min(1.0, cosine))
        others.append({"similarity": similarity, "filename": other.id})
    others.sort(key=lambda e: -e["similarity"])  # stable: equal values keep the index's order
    return [{"similarity": 1.0, "filename": item.id}] + others[:ENTRIES - 1]


def projection_entries(items: list[CatalogItem], positions: dict[str, tuple[float, float]],
                       image_names: dict[str, str]) -> list[dict[str, Any]]:
    """``image_tsne_projections_*.json`` rows for the ``items`` that have a position."""
    rows = []
    for item in sorted(items, key=lambda it: it.id):
        if item.id not in positions:
            continue
        x, y = positions[item.id]
        rows.append({"id": item.id, "image": image_names.get(item.id) or item.id,
                     "width": item.width, "height": item.height,
                     # Their y grew upwards (three.js), ours grows down the screen.
                     "x": f"{(x - 0.5) * SPREAD:.4f}", "y": f"{(0.5 - y) * SPREAD:.4f}"})
    return rows


def arosenius_documents(items: list[CatalogItem], neighbors: dict[str, list[Neighbor]],
                        vectors: dict[str, np.ndarray], map_points: dict[str, dict[str, tuple[float, float]]],
                        image_names: dict[str, str]) -> dict[str, Any]:
    """Every compatibility document by its path in the site (pure: no I/O)."""
    by_id = {it.id: it for it in items}
    categories = sorted({it.category for it in items})
    category_files = file_names(categories)
    documents: dict[str, Any] = {}
    for category in categories:
        members = [it for it in items if it.category == category]
        names = file_names([it.id for it in members])
        folder = category_files[category]
        for item in members:
            documents[f"nearest_neighbors/{folder}/{names[item.id]}.json"] = neighbor_entries(
                item, neighbors.get(item.id, []), vectors, by_id)
        documents[f"tsne_data/image_tsne_projections_{folder}.json"] = projection_entries(
            members, map_points.get(category_slug(category), {}), image_names)
    if "all" not in {name.casefold() for name in category_files.values()}:
        documents["tsne_data/image_tsne_projections_all.json"] = projection_entries(
            items, map_points.get("all", {}), image_names)
    return documents


def write_arosenius(write: Callable[[str, Any], None], store: StateStore, model_id: str,
                    items: list[CatalogItem]) -> int:
    """Gather what ``arosenius_documents`` needs from ``store`` and ``write(path, document)`` each."""
    matrix = store.vectors(model_id, [it.content_hash for it in items])
    vectors = {it.id: matrix[i].astype(np.float64) for i, it in enumerate(items)}
    scopes = {"all"} | {category_slug(it.category) for it in items}
    points = {scope: store.map_points(scope) for scope in scopes}
    image_names = {item_id: s.image_name for item_id, s in store.item_sources().items() if s.image_name}
    documents = arosenius_documents(items, store.neighbors(model_id), vectors, points, image_names)
    for path, document in sorted(documents.items()):
        write(path, document)
    return len(documents)
