"""Per-category Annoy indexes and each item's nearest neighbours.

Input: the ids, content hashes and L2-normalised vectors of one category. Output:
an Annoy file (angular metric) with its id map, and for every item its k nearest
other items with similarity = 1 - cosine distance, best first. The item itself is
never its own neighbour; an exact duplicate (same file bytes, or similarity at the
threshold) stays in the list and is marked. Items added since the Annoy file was built
sit beside it (``RecentItems``) and are searched exactly.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
from annoy import AnnoyIndex

from .state_store import Neighbor
from .fsutil import atomic_write_bytes, atomic_write_text

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


def save_index(index: AnnoyIndex, ids: list[str], path: Path, hashes: list[str] | None = None) -> None:
    """Write ``<name>.ann`` and ``<name>.ids.json`` (position -> item id), each atomically,
    with the content hashes of the items (``<name>.hashes.json``) when given; no recent items."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    index.save(str(tmp))
    index.unload()
    os.replace(tmp, path)
    atomic_write_text(path.with_suffix(".ids.json"), json.dumps(ids, ensure_ascii=False))
    if hashes is not None:
        atomic_write_text(path.with_suffix(".hashes.json"), json.dumps(hashes))
    path.with_suffix(RecentItems.SUFFIX).unlink(missing_ok=True)


def indexed_items(path: Path) -> set[tuple[str, str]] | None:
    """The (id, content hash) pairs in the Annoy file at ``path``; None when not known."""
    try:
        ids = json.loads(path.with_suffix(".ids.json").read_text(encoding="utf-8"))
        hashes = json.loads(path.with_suffix(".hashes.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return set(zip(ids, hashes)) if len(ids) == len(hashes) and path.exists() else None


@dataclass
class RecentItems:
    """Items added or changed since a category's Annoy file was built, with their vectors:
    searched exactly beside it (``<name>.recent.npz``); an item here overrides its entry there."""

    SUFFIX: ClassVar[str] = ".recent.npz"
    ids: list[str]
    vectors: np.ndarray

    def save(self, path: Path) -> None:
        """Beside the Annoy file at ``path``; none to save removes the file."""
        target = path.with_suffix(self.SUFFIX)
        if not self.ids:
            target.unlink(missing_ok=True)
            return
        buffer = io.BytesIO()
        np.savez(buffer, ids=np.array(self.ids, dtype=str), vectors=np.asarray(self.vectors, dtype=np.float32))
        atomic_write_bytes(target, buffer.getvalue())

    @classmethod
    def load(cls, path: Path) -> "RecentItems":
        """Those beside the Annoy file at ``path`` (none when there is no file)."""
        target = path.with_suffix(cls.SUFFIX)
        if not target.exists():
            return cls([], np.zeros((0, 0), dtype=np.float32))
        with np.load(target, allow_pickle=False) as z:
            return cls([str(i) for i in z["ids"]], z["vectors"])

    def similarities(self, vector: np.ndarray) -> dict[str, float]:
        """Item id -> cosine similarity to ``vector`` (4 decimals), as Annoy's angular metric gives it."""
        if not self.ids:
            return {}
        norms = np.linalg.norm(self.vectors, axis=1) * max(float(np.linalg.norm(vector)), 1e-12)
        sims = (self.vectors @ np.asarray(vector, dtype=np.float32)) / np.maximum(norms, 1e-12)
        return {i: round(float(np.clip(s, -1.0, 1.0)), 4) for i, s in zip(self.ids, sims)}


def load_index(path: Path, dim: int) -> tuple[AnnoyIndex, list[str]]:
    """The Annoy file at ``path`` and its ids (see ``RecentItems`` for the items added since)."""
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
