"""Near-copies: the same picture in another file, found by perceptual hash or similarity.

Input: images (for their 64-bit pHash, computed with ``imagehash`` and cached by
content hash), every item's descriptor vector, and the thresholds of ``copies:``.
Output: the pairs of items that are copies of each other across the whole
collection, neighbour lists with those pairs marked (and added where the CNN ranked
them too low to be listed), and the groups of copies ("reuse") that those pairs
join, across categories too. A pair is a copy when the two files are identical,
when their pHashes differ in at most ``hash_distance`` bits, or when their cosine
similarity is at least ``similarity``. A rebuild updates the pairs of the last one
(``CopyState``): only pairs involving new or changed items are searched.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .state_store import Neighbor
from .fsutil import atomic_write_bytes
from .imaging import ImageError, load_rgb

HASH_BITS = 64
# pHash looks at a 32x32 gray thumbnail; decoding a JPEG at >= 128 px (Pillow's
# draft) is several times faster than at full size and gives the same hash.
_DECODE_SIDE = 128
# Neighbours asked of the all-collection index when looking for similar copies.
_CANDIDATES = 16


@dataclass(frozen=True)
class CopyRule:
    """When two items are the same picture; None turns a test off."""

    hash_distance: int | None
    similarity: float | None

    def matches(self, distance: int | None, similarity: float | None) -> bool:
        by_hash = self.hash_distance is not None and distance is not None and distance <= self.hash_distance
        by_vector = self.similarity is not None and similarity is not None and similarity >= self.similarity
        return by_hash or by_vector


def phash_image(img: Image.Image) -> int:
    """The 64-bit DCT perceptual hash of ``img`` as an int (bit order of ``imagehash``)."""
    import imagehash

    bits = imagehash.phash(img).hash.flatten()
    return int(np.packbits(bits.astype(np.uint8)).view(">u8")[0])


def phash_file(path: Path) -> int:
    return phash_image(load_rgb(path, min_side=_DECODE_SIDE))


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def compute_phashes(jobs: list[tuple[str, str]], workers: int = 2,
                    progress: Callable[[int], None] | None = None) -> tuple[dict[str, int], dict[str, str]]:
    """(content hash, path) -> pHash for each job; failures as content hash -> one-line reason."""

    def one(job: tuple[str, str]) -> tuple[str, int | None, str | None]:
        content_hash, path = job
        try:
            return content_hash, phash_file(Path(path)), None
        except (ImageError, OSError) as exc:
            return content_hash, None, str(exc)

    found: dict[str, int] = {}
    failed: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="phash") as pool:
        for content_hash, value, error in pool.map(one, jobs):
            if value is None:
                failed[content_hash] = error or "cannot decode"
            else:
                found[content_hash] = value
            if progress:
                progress(1)
    return found, failed


def hash_pairs(phashes: Sequence[int | None], max_distance: int, brute_below: int = 4096,
               block: int = 4096) -> list[tuple[int, int, int]]:
    """Every pair (i < j, distance) of positions whose hashes differ in at most ``max_distance`` bits.

    Small collections compare all pairs. Larger ones use multi-index hashing
    (Norouzi et al.): the 64 bits are cut into four 16-bit chunks, and two hashes
    within ``d`` bits agree to within ``d // 4`` bits on at least one chunk, so only
    the items found by probing each chunk's value and its near values are compared.
    100,000 items take seconds instead of minutes, in memory bounded by ``block``.
    """
    present = [i for i, h in enumerate(phashes) if h is not None]
    if len(present) < 2:
        return []
    values = np.array([phashes[i] for i in present], dtype=np.uint64)
    positions = np.array(present)
    radius = max_distance // _CHUNKS
    if len(values) < brute_below or radius > 2:
        first, second = _all_pairs(values, max_distance)
    else:
        first, second = _indexed_pairs(values, max_distance, radius, block)
    distances = np.bitwise_count(values[first] ^ values[second])
    return [(int(positions[i]), int(positions[j]), int(d)) for i, j, d in zip(first, second, distances)]


_CHUNKS = 4
_CHUNK_BITS = HASH_BITS // _CHUNKS


def _all_pairs(values: np.ndarray, max_distance: int, block: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) with i < j within ``max_distance``, comparing ``block`` rows with all at a time."""
    found_i, found_j = [], []
    for start in range(0, len(values), block):
        rows = values[start:start + block]
        a, b = np.nonzero(np.bitwise_count(rows[:, None] ^ values[None, :]) <= max_distance)
        keep = b > a + start  # each pair once, never an item with itself
        found_i.append(a[keep] + start)
        found_j.append(b[keep])
    return np.concatenate(found_i), np.concatenate(found_j)


def _indexed_pairs(values: np.ndarray, max_distance: int, radius: int,
                   block: int) -> tuple[np.ndarray, np.ndarray]:
    """As ``_all_pairs``, comparing only items that share a chunk to within ``radius`` bits."""
    n = len(values)
    flips = [0] + [1 << b for b in range(_CHUNK_BITS)]
    if radius == 2:
        flips += [(1 << a) | (1 << b) for a in range(_CHUNK_BITS) for b in range(a + 1, _CHUNK_BITS)]
    masks = np.array(flips, dtype=np.int64)
    found: list[np.ndarray] = []
    for chunk in range(_CHUNKS):
        keys = ((values >> np.uint64(chunk * _CHUNK_BITS)) & np.uint64((1 << _CHUNK_BITS) - 1)).astype(np.int64)
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        for start in range(0, n, block):
            rows = np.arange(start, min(n, start + block))
            probes = (keys[rows][:, None] ^ masks[None, :]).ravel()
            low = np.searchsorted(ordered, probes, "left")
            counts = np.searchsorted(ordered, probes, "right") - low
            owners = np.repeat(np.repeat(rows, len(masks)), counts)
            # The k-th match of a probe sits k places after the first one in ``ordered``.
            ends = np.cumsum(counts)
            within = np.arange(ends[-1] if len(ends) else 0) - np.repeat(ends - counts, counts)
            others = order[np.repeat(low, counts) + within]
            keep = others > owners
            owners, others = owners[keep], others[keep]
            close = np.bitwise_count(values[owners] ^ values[others]) <= max_distance
            found.append(owners[close] * n + others[close])
    pairs = np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)
    return pairs // n, pairs % n


def similar_pairs(vectors: np.ndarray, min_similarity: float, trees: int = 10,
                  seed: int = 42) -> list[tuple[int, int]]:
    """Pairs (i < j) of L2-normalised rows with cosine similarity >= ``min_similarity``.

    An Annoy index over all rows gives each row its nearest candidates; exact cosines
    decide. Copies sit far closer than anything else, so a short candidate list finds them.
    """
    from .neighbors import build_index

    n = len(vectors)
    if n < 2:
        return []
    index = build_index(vectors, trees, seed)
    found: set[tuple[int, int]] = set()
    for i in range(n):
        for j in index.get_nns_by_item(i, min(n, _CANDIDATES + 1)):
            if j != i and float(vectors[i] @ vectors[j]) >= min_similarity:
                found.add((min(i, j), max(i, j)))
    index.unload()
    return sorted(found)


@dataclass
class CopyGraph:
    """Items as nodes, copy pairs as edges: item id -> {other id: similarity}."""

    partners: dict[str, dict[str, float]] = field(default_factory=dict)

    def add(self, a: str, b: str, similarity: float) -> None:
        self.partners.setdefault(a, {})[b] = similarity
        self.partners.setdefault(b, {})[a] = similarity

    def of(self, item_id: str) -> dict[str, float]:
        return self.partners.get(item_id, {})

    def pair_count(self) -> int:
        return sum(len(p) for p in self.partners.values()) // 2

    def groups(self, order: Callable[[str], object] = lambda i: i) -> list[list[str]]:
        """Connected components of two or more items; largest first, members sorted by ``order``."""
        seen: set[str] = set()
        result = []
        for start in sorted(self.partners, key=order):
            if start in seen:
                continue
            component, stack = [], [start]
            seen.add(start)
            while stack:
                node = stack.pop()
                component.append(node)
                for other in self.partners[node]:
                    if other not in seen:
                        seen.add(other)
                        stack.append(other)
            result.append(sorted(component, key=order))
        result.sort(key=lambda g: (-len(g), order(g[0])))
        return result

    def fingerprint(self, ids: Iterable[str]) -> str:
        """A digest of the pairs touching ``ids``: a category's lists change when this does."""
        digest = hashlib.sha256()
        for item_id in sorted(ids):
            for other, sim in sorted(self.of(item_id).items()):
                digest.update(f"{item_id}\0{other}\0{sim}\n".encode())
        return digest.hexdigest()


def find_copies(ids: Sequence[str], content_hashes: Sequence[str], phashes: Sequence[int | None],
                vectors: np.ndarray, rule: CopyRule, trees: int = 10, seed: int = 42) -> CopyGraph:
    """Every copy pair of the collection (positions of ``ids`` match the other sequences' rows)."""
    candidates: dict[tuple[int, int], int | None] = {}
    by_content: dict[str, list[int]] = {}
    for i, h in enumerate(content_hashes):
        by_content.setdefault(h, []).append(i)
    for same in by_content.values():
        for a in range(len(same)):
            for b in range(a + 1, len(same)):
                candidates[(same[a], same[b])] = 0
    if rule.hash_distance is not None:
        for i, j, d in hash_pairs(phashes, rule.hash_distance):
            candidates[(i, j)] = d
    if rule.similarity is not None:
        for pair in similar_pairs(vectors, rule.similarity, trees, seed):
            candidates.setdefault(pair, None)
    graph = CopyGraph()
    for (i, j) in sorted(candidates):
        similarity = round(min(1.0, max(-1.0, float(vectors[i] @ vectors[j]))), 4)
        graph.add(ids[i], ids[j], similarity)
    return graph


def mark_copies(lists: dict[str, list[Neighbor]], graph: CopyGraph, members: set[str], hash_of: dict[str, str],
                k: int, duplicate_threshold: float) -> dict[str, list[Neighbor]]:
    """Mark copies in each list and add those of ``members`` (one category) the list missed.

    Copies are always kept; the rest of the ``k`` places go to the most similar
    other items. The list stays ordered by similarity (ties by id).
    """
    result: dict[str, list[Neighbor]] = {}
    for item_id, neighbours in lists.items():
        partners = {o: s for o, s in graph.of(item_id).items() if o in members}
        listed = {nb.id for nb in neighbours}
        marked = [Neighbor(nb.id, nb.similarity, nb.duplicate, nb.duplicate or nb.id in partners)
                  for nb in neighbours]
        for other, similarity in partners.items():
            if other not in listed:
                duplicate = hash_of[other] == hash_of[item_id] or similarity >= duplicate_threshold
                marked.append(Neighbor(other, similarity, duplicate, True))
        copies = [nb for nb in marked if nb.copy]
        others = sorted((nb for nb in marked if not nb.copy), key=lambda nb: (-nb.similarity, nb.id))
        kept = copies[:k] + others[:max(0, k - len(copies))]
        result[item_id] = sorted(kept, key=lambda nb: (-nb.similarity, nb.id))
    return result


def copies_first(neighbours: Sequence[Neighbor]) -> list[Neighbor]:
    """The order a reader sees: copies of the picture first, then the rest, each by similarity."""
    return sorted(neighbours, key=lambda nb: not nb.copy)


def hash_ranking(ids: Sequence[str], categories: Sequence[str], phashes: Sequence[int | None],
                 k: int) -> dict[str, list[str]]:
    """Each item's ``k`` nearest others of its category by pHash distance alone (ties by id)."""
    result: dict[str, list[str]] = {}
    by_category: dict[str, list[int]] = {}
    for i, c in enumerate(categories):
        by_category.setdefault(c, []).append(i)
    for members in by_category.values():
        known = [i for i in members if phashes[i] is not None]
        values = np.array([phashes[i] for i in known], dtype=np.uint64)
        for i in members:
            if phashes[i] is None:
                result[ids[i]] = []
                continue
            distances = np.bitwise_count(values ^ np.uint64(phashes[i]))
            order = sorted((int(d), ids[j]) for d, j in zip(distances, known) if j != i)
            result[ids[i]] = [item_id for _, item_id in order[:k]]
    return result


@dataclass
class CopyState:
    """The pairs of the last build with the items they were found among, to update them.

    ``key`` says what the pairs depend on besides the items (model, space, rule)."""

    ids: list[str]
    hashes: list[str]
    pairs: list[tuple[str, str, float]]
    key: str

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, ids=np.array(self.ids, dtype=str), hashes=np.array(self.hashes, dtype=str),
                 first=np.array([a for a, _, _ in self.pairs], dtype=str),
                 second=np.array([b for _, b, _ in self.pairs], dtype=str),
                 similarity=np.array([s for _, _, s in self.pairs], dtype=np.float64), key=np.array(self.key))
        return buffer.getvalue()

    def save(self, path: Path) -> None:
        atomic_write_bytes(path, self.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> "CopyState":
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            pairs = [(str(a), str(b), float(s)) for a, b, s in zip(z["first"], z["second"], z["similarity"])]
            return cls([str(i) for i in z["ids"]], [str(h) for h in z["hashes"]], pairs, str(z["key"]))

    @classmethod
    def load(cls, path: Path) -> "CopyState | None":
        """The state saved at ``path``, or None when there is none or it cannot be read."""
        try:
            return cls.from_bytes(path.read_bytes())
        except (OSError, ValueError, KeyError):
            return None

    @classmethod
    def of(cls, graph: CopyGraph, ids: Sequence[str], content_hashes: Sequence[str], key: str) -> "CopyState":
        pairs = sorted((a, b, s) for a, partners in graph.partners.items() for b, s in partners.items() if a < b)
        return cls(list(ids), list(content_hashes), pairs, key)


def update_copies(previous: CopyState, ids: Sequence[str], content_hashes: Sequence[str],
                  phashes: Sequence[int | None], vectors: np.ndarray, rule: CopyRule,
                  block: int = 256) -> tuple[CopyGraph, set[str]]:
    """The copy graph of the items now, from ``previous``: pairs of removed or changed items
    dropped, and only the pairs involving new or changed items searched (exactly, against
    every item). Returns the graph and the ids whose copies changed."""
    now = set(zip(ids, content_hashes))
    kept = {item_id for item_id, h in zip(previous.ids, previous.hashes) if (item_id, h) in now}
    before = {item_id for item_id, _ in zip(previous.ids, previous.hashes)}
    fresh = [i for i, item_id in enumerate(ids) if item_id not in kept]
    graph = CopyGraph()
    touched: set[str] = set()
    for a, b, s in previous.pairs:
        if a in kept and b in kept:
            graph.add(a, b, s)
        else:
            touched.update(x for x in (a, b) if x in kept)
    touched.update(ids[i] for i in fresh)
    touched.update(before - kept - {ids[i] for i in fresh})  # removed: their pages go; named for completeness
    if not fresh:
        return graph, touched
    found: dict[tuple[int, int], None] = {}
    by_content: dict[str, list[int]] = {}
    for i, h in enumerate(content_hashes):
        by_content.setdefault(h, []).append(i)
    for i in fresh:
        for j in by_content[content_hashes[i]]:
            if j != i:
                found[(min(i, j), max(i, j))] = None
    if rule.hash_distance is not None:
        present = np.array([h is not None for h in phashes])
        values = np.array([h if h is not None else 0 for h in phashes], dtype=np.uint64)
        for i in fresh:
            if phashes[i] is None:
                continue
            close = np.nonzero(present & (np.bitwise_count(values ^ np.uint64(phashes[i])) <= rule.hash_distance))[0]
            for j in close:
                if j != i:
                    found[(min(i, int(j)), max(i, int(j)))] = None
    if rule.similarity is not None:
        rows = np.array(fresh)
        for start in range(0, len(rows), block):
            part = rows[start:start + block]
            sims = vectors[part] @ vectors.T
            for r, j in zip(*np.nonzero(sims >= rule.similarity)):
                i = int(part[r])
                if int(j) != i:
                    found[(min(i, int(j)), max(i, int(j)))] = None
    for i, j in sorted(found):
        similarity = round(min(1.0, max(-1.0, float(vectors[i] @ vectors[j]))), 4)
        graph.add(ids[i], ids[j], similarity)
        touched.update((ids[i], ids[j]))
    return graph, touched
