"""A category's neighbour lists updated after items were added, changed or removed.

Input: the lists of the last build as searched (``RawLists``: before copies are marked
and lists re-ranked), the category's current ids, content hashes and vectors. Output:
the current lists and the ids whose list changed. Only these lists are computed:

- a new (or changed) item's own list, by exact search over the category;
- a list that held a removed (or changed) item, by exact search again;
- a list that a new item enters: a new item ``n`` enters ``x``'s list exactly when
  ``sim(n, x)`` beats the last neighbour of ``x``. Neighbourhoods are not symmetric
  (``n`` may rank ``x`` 200th while ``x`` ranks ``n`` first, in a sparse region), so
  looking only among ``n``'s own nearest would miss some; instead each new item's
  similarity to every item is compared with every list's last neighbour, one matrix
  product per block of new items, the same product that finds their own lists.

Every other list is exactly what it was. Updated lists are exact; kept ones carry
Annoy's approximation of the build that made them, so the lists equal a full
recomputation to within that approximation.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .fsutil import atomic_write_bytes
from .state_store import Neighbor

# Rows of new items compared with the whole category at once: 256 x 100,000 float32
# similarities take 100 MB.
BLOCK = 256


@dataclass
class RawLists:
    """Each item's nearest neighbours as searched: positions into ``ids``, similarities, -1 padding."""

    ids: list[str]
    hashes: list[str]
    neighbours: np.ndarray     # (n, k) int32, best first, -1 where the category had fewer items
    similarities: np.ndarray   # (n, k) float32, rounded to 4 decimals
    space: str                 # the search space (whitening fingerprint or "raw") the lists were made in

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, ids=np.array(self.ids, dtype=str), hashes=np.array(self.hashes, dtype=str),
                 neighbours=self.neighbours, similarities=self.similarities, space=np.array(self.space))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "RawLists":
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return cls([str(i) for i in z["ids"]], [str(h) for h in z["hashes"]], z["neighbours"],
                       z["similarities"], str(z["space"]))

    def save(self, path: Path) -> None:
        atomic_write_bytes(path, self.to_bytes())

    @classmethod
    def load(cls, path: Path) -> "RawLists | None":
        """The lists saved at ``path``, or None when there are none or they cannot be read."""
        try:
            return cls.from_bytes(path.read_bytes())
        except (OSError, ValueError, KeyError):
            return None

    @classmethod
    def from_lists(cls, ids: list[str], hashes: list[str], lists: dict[str, list[Neighbor]], k: int,
                   space: str) -> "RawLists":
        position = {item_id: i for i, item_id in enumerate(ids)}
        neighbours = np.full((len(ids), k), -1, dtype=np.int32)
        similarities = np.full((len(ids), k), -np.inf, dtype=np.float32)
        for i, item_id in enumerate(ids):
            for j, nb in enumerate(lists.get(item_id, [])[:k]):
                neighbours[i, j] = position[nb.id]
                similarities[i, j] = nb.similarity
        return cls(list(ids), list(hashes), neighbours, similarities, space)

    def as_lists(self, duplicate_threshold: float, only: Sequence[int] | None = None) -> dict[str, list[Neighbor]]:
        """Item id -> its list as ``neighbors.nearest_neighbors`` gives it (duplicates marked)."""
        result = {}
        for i in (range(len(self.ids)) if only is None else only):
            row = []
            for j, s in zip(self.neighbours[i], self.similarities[i]):
                if j < 0:
                    break
                similarity = round(float(s), 4)
                duplicate = self.hashes[j] == self.hashes[i] or similarity >= duplicate_threshold
                row.append(Neighbor(self.ids[j], similarity, duplicate))
            result[self.ids[i]] = row
        return result


@dataclass(frozen=True)
class Change:
    """What an update did: the ids whose list is new or different, and how many were searched."""

    changed: set[str]
    searched: int      # lists found again by exact search (new items and lists that lost an item)
    entered: int       # kept lists that a new item entered


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (Annoy's angular metric is the cosine of the raw vectors)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def _ranked(sims: np.ndarray, own: int, ids: Sequence[str], k: int) -> list[tuple[int, float]]:
    """The ``k`` best (position, similarity) of one row, as the full build orders them: by
    similarity to 4 decimals, then id; never the item itself."""
    sims = sims.copy()
    sims[own] = -np.inf
    want = min(len(sims) - 1, k + 8)  # a few extra: ties at 4 decimals are ordered by id
    if want <= 0:
        return []
    top = np.argpartition(-sims, want - 1)[:want] if want < len(sims) else np.arange(len(sims))
    ranked = sorted(((int(j), round(float(sims[j]), 4)) for j in top if j != own),
                    key=lambda p: (-p[1], ids[p[0]]))
    return ranked[:k]


def update_lists(previous: RawLists, ids: list[str], hashes: list[str], vectors: np.ndarray, k: int,
                 space: str) -> tuple[RawLists, Change]:
    """``previous`` brought to the category ``ids`` (rows of ``vectors``); see the module docstring."""
    unit = unit_rows(vectors)
    n = len(ids)
    where = {key: i for i, key in enumerate(zip(previous.ids, previous.hashes))}
    old_of = np.array([where.get(key, -1) for key in zip(ids, hashes)], dtype=np.int64)
    # Previous position -> current position; -1 for an item removed or changed since.
    new_of = np.full(len(previous.ids), -1, dtype=np.int64)
    new_of[old_of[old_of >= 0]] = np.nonzero(old_of >= 0)[0]

    neighbours = np.full((n, k), -1, dtype=np.int32)
    similarities = np.full((n, k), -np.inf, dtype=np.float32)
    kept = np.nonzero(old_of >= 0)[0]
    width = min(k, previous.neighbours.shape[1])
    before = previous.neighbours[old_of[kept], :width]
    mapped = np.where(before >= 0, new_of[np.maximum(before, 0)], -1)
    neighbours[kept, :width] = mapped
    similarities[kept, :width] = previous.similarities[old_of[kept], :width]
    # A kept list that held an item now gone is searched again.
    lost = ((before >= 0) & (mapped < 0)).any(axis=1)
    fresh = np.nonzero(old_of < 0)[0]
    search = np.union1d(fresh, kept[lost]).astype(np.int64)
    for start in range(0, len(search), BLOCK):
        rows = search[start:start + BLOCK]
        sims = unit[rows] @ unit.T
        for row, own in zip(sims, rows):
            ranked = _ranked(row, int(own), ids, k)
            neighbours[own] = -1
            similarities[own] = -np.inf
            for j, (other, s) in enumerate(ranked):
                neighbours[own, j], similarities[own, j] = other, s
    searched = set(int(i) for i in search)

    # Lists a new item enters: its similarity beats the list's last (ties by id); a list
    # shorter than k (a category of k items or fewer) takes every new item.
    last_sim = similarities[:, k - 1]
    entered: set[int] = set()
    candidates: dict[int, list[tuple[int, float]]] = {}
    for start in range(0, len(fresh), BLOCK):
        rows = fresh[start:start + BLOCK]
        sims = np.round(unit[rows] @ unit.T, 4).astype(np.float32)
        sims[np.arange(len(rows)), rows] = -np.inf
        hits = np.nonzero(sims >= last_sim[None, :])
        for r, x in zip(*hits):
            x = int(x)
            if x in searched:
                continue
            candidates.setdefault(x, []).append((int(rows[r]), round(float(sims[r, x]), 4)))
    for x, arriving in candidates.items():
        current = [(int(j), round(float(s), 4)) for j, s in zip(neighbours[x], similarities[x]) if j >= 0]
        merged = sorted(current + arriving, key=lambda p: (-p[1], ids[p[0]]))[:k]
        if [p[0] for p in merged] == [p[0] for p in current]:
            continue  # a tie with the last neighbour that lost on id
        neighbours[x] = -1
        similarities[x] = -np.inf
        for j, (other, s) in enumerate(merged):
            neighbours[x, j], similarities[x, j] = other, s
        entered.add(x)
    changed = {ids[i] for i in searched | entered}
    return RawLists(list(ids), list(hashes), neighbours, similarities, space), Change(changed, len(searched),
                                                                                      len(entered))
