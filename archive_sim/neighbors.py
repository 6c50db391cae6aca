"""Per-category Annoy indexes and each item's nearest neighbours.

Input: the ids, content hashes and L2-normalised vectors of one category. Output:
an Annoy file (angular metric) with its id map, and for every item its k nearest
other items with similarity = 1 - cosine distance, best first. The item itself is
never its own neighbour; an exact duplicate (same file bytes, or similarity at the
threshold) stays in the list and is marked.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from annoy import AnnoyIndex

from .state_store import Neighbor
from .fsutil import atomic_write_text

METRIC = "angular"  # Annoy's angular distance d = sqrt(2 - 2 cos) on any vectors


def similarity_from_angular(distance: float) -> float:
    """Cosine similarity from Annoy's angular distance, rounded to 4 decimals."""
    return round(min(1.0, max(-1.0, 1.0 - distance * distance / 2.0)), 4)


def build_index(vectors: np.ndarray, trees: int, seed: int = 42) -> AnnoyIndex:
    index = AnnoyIndex(vectors.shape[1], METRIC)
    index.set_seed(seed)
    for i, vector in enumerate(vectors):
        index.add_item(i, vector)
    index.build(trees, n_jobs=1)  # one job: the same trees on every run
    return index


def save_index(index: AnnoyIndex, ids: list[str], path: Path) -> None:
    """Write ``<name>.ann`` and ``<name>.ids.json`` (position -> item id), each atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    index.save(str(tmp))
    index.unload()
    os.replace(tmp, path)
    atomic_write_text(path.with_suffix(".ids.json"), json.dumps(ids, ensure_ascii=False))


def load_index(path: Path, dim: int) -> tuple[AnnoyIndex, list[str]]:
    index = AnnoyIndex(dim, METRIC)
    index.load(str(path))
    return index, json.loads(path.with_suffix(".ids.json").read_text(encoding="utf-8"))


def nearest_neighbors(index: AnnoyIndex, ids: list[str], hashes: list[str], k: int,
                      duplicate_threshold: float) -> dict[str, list[Neighbor]]:
    """The ``k`` nearest other items of every item in ``index`` (positions match ``ids``)."""
    result: dict[str, list[Neighbor]] = {}
    n = len(ids)
    # Ask for a few extra: identical vectors may rank ahead of the item itself.
    want = min(n, k + 3)
    for i, item_id in enumerate(ids):
        positions, distances = index.get_nns_by_item(i, want, include_distances=True)
        ranked = []
        for j, d in zip(positions, distances):
            if j == i:
                continue
            similarity = similarity_from_angular(d)
            duplicate = hashes[j] == hashes[i] or similarity >= duplicate_threshold
            ranked.append(Neighbor(ids[j], similarity, duplicate))
        # Stable order: by similarity, then id, so that ties do not flip between runs.
        ranked.sort(key=lambda nb: (-nb.similarity, nb.id))
        result[item_id] = ranked[:k]
    return result


def signature(ids: list[str], hashes: list[str], *params: object) -> str:
    """A fingerprint of an index's inputs: same signature, same index."""
    digest = hashlib.sha256()
    for item_id, content_hash in zip(ids, hashes):
        digest.update(f"{item_id}\0{content_hash}\n".encode())
    digest.update(repr(params).encode())
    return digest.hexdigest()
