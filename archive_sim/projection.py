"""t-SNE maps: vectors -> 2-D positions in [0, 1], stable across rebuilds.

Input: ids with L2-normalised vectors, t-SNE settings, and optionally the layout of
the previous build. Output: a ``MapLayout`` (ids, raw t-SNE coordinates, the PCA
and the normalisation it used) whose ``positions()`` lie in [0, 1] with the aspect
ratio kept. ``layout`` lays out from scratch (PCA to at most 50 dimensions, then
openTSNE's FFT-accelerated t-SNE; PCA alone for very small sets). ``extend`` keeps
every existing item exactly where it was, drops removed ones and places new ones
into the existing map among their nearest neighbours (openTSNE's partial embedding),
at a cost that follows the new items (the PCA coordinates are kept with the layout).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

PCA_DIMS = 50
MIN_POINTS_FOR_TSNE = 10


@dataclass
class MapLayout:
    ids: list[str]
    hashes: list[str]        # content hash of each item's image: a changed image is placed anew
    raw: np.ndarray          # (n, 2) coordinates before normalisation
    mean: np.ndarray         # PCA mean (d,)
    components: np.ndarray   # PCA components (p, d)
    low: np.ndarray          # normalisation: positions = (raw - low) / span + offset
    span: float
    offset: np.ndarray
    reduced: np.ndarray | None = None   # (n, p) float32 PCA coordinates, for placing new items

    def positions(self) -> np.ndarray:
        if len(self.ids) == 0:
            return np.zeros((0, 2))
        return np.clip((self.raw - self.low) / self.span + self.offset, 0.0, 1.0)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        extra = {"reduced": self.reduced} if self.reduced is not None else {}
        np.savez(buffer, ids=np.array(self.ids, dtype=str), hashes=np.array(self.hashes, dtype=str), raw=self.raw, mean=self.mean,
                 components=self.components, low=self.low, span=np.array(self.span), offset=self.offset, **extra)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "MapLayout":
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return cls([str(i) for i in z["ids"]], [str(h) for h in z["hashes"]], z["raw"], z["mean"], z["components"], z["low"],
                       float(z["span"]), z["offset"], z["reduced"] if "reduced" in z.files else None)


def normalisation(raw: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """``low``, ``span`` and ``offset`` that fit ``raw`` into [0, 1], longer side 0..1, shorter centred."""
    if len(raw) == 0:
        return np.zeros(2), 1.0, np.zeros(2)
    low, high = raw.min(axis=0), raw.max(axis=0)
    span = float((high - low).max())
    if span <= 0:
        return low, 1.0, np.full(2, 0.5)
    return low, span, (1.0 - (high - low) / span) / 2.0


def normalise_positions(points: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] keeping proportions; a single point sits in the centre."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    low, span, offset = normalisation(points)
    return np.clip((points - low) / span + offset, 0.0, 1.0)


def _fit_pca(vectors: np.ndarray, dims: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.decomposition import PCA

    dims = min(dims, vectors.shape[0], vectors.shape[1])
    pca = PCA(n_components=dims, random_state=seed).fit(vectors)
    return pca.mean_, pca.components_


def _effective_perplexity(perplexity: float, n: int) -> float:
    # openTSNE needs 3 * perplexity < n; shrink it for small collections.
    return max(2.0, min(perplexity, (n - 1) / 3.0 - 1e-6))


def layout(ids: list[str], hashes: list[str], vectors: np.ndarray, perplexity: float = 30.0, seed: int = 42,
           n_jobs: int = 2) -> MapLayout:
    """Lay out ``vectors`` from scratch."""
    n = len(ids)
    vectors = np.asarray(vectors, dtype=np.float64)
    dim = vectors.shape[1] if vectors.ndim == 2 else 0
    reduced = None
    if n <= 2:
        raw = np.array([[0.0, 0.0], [1.0, 0.0]])[:n]
        mean, components = np.zeros(dim), np.zeros((0, dim))
    elif n < MIN_POINTS_FOR_TSNE:
        mean, components = _fit_pca(vectors, 2, seed)
        raw = (vectors - mean) @ components.T
        if raw.shape[1] < 2:
            raw = np.hstack([raw, np.zeros((n, 2 - raw.shape[1]))])
    else:
        from openTSNE import TSNE

        mean, components = _fit_pca(vectors, PCA_DIMS, seed)
        reduced = (vectors - mean) @ components.T
        tsne = TSNE(n_components=2, perplexity=_effective_perplexity(perplexity, n), random_state=seed,
                    n_jobs=n_jobs, initialization="pca", verbose=False)
        raw = np.asarray(tsne.fit(reduced), dtype=np.float64)
        reduced = reduced.astype(np.float32)
    low, span, offset = normalisation(raw)
    return MapLayout(list(ids), list(hashes), raw, mean, components, low, span, offset, reduced)


def _kept(previous: MapLayout, ids: list[str], hashes: list[str]) -> dict[int, int]:
    """Current position -> previous position, for items whose image is unchanged."""
    where = {(item_id, h): i for i, (item_id, h) in enumerate(zip(previous.ids, previous.hashes))}
    return {i: where[key] for i, key in enumerate(zip(ids, hashes)) if key in where}


def new_items(previous: MapLayout, ids: list[str], hashes: list[str]) -> list[int]:
    """Positions of ``ids`` that ``extend`` places: new items and items whose image changed."""
    old = _kept(previous, ids, hashes)
    return [i for i in range(len(ids)) if i not in old]


# Kept points a new point is placed among.
PLACE_AMONG = 15
# New points compared with every kept point at once: 1,024 x 100,000 distances take 400 MB.
_BLOCK = 1024


def _nearest(placed: np.ndarray, reference: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of ``reference`` to each row of ``placed`` (Euclidean), nearest first."""
    ref_sq = (reference * reference).sum(axis=1)
    neighbours = np.zeros((len(placed), k), dtype=np.int64)
    distances = np.zeros((len(placed), k))
    for start in range(0, len(placed), _BLOCK):
        rows = placed[start:start + _BLOCK]
        d2 = np.maximum((rows * rows).sum(axis=1)[:, None] - 2 * rows @ reference.T + ref_sq[None, :], 0.0)
        top = np.argpartition(d2, k - 1, axis=1)[:, :k] if k < len(reference) else np.tile(
            np.arange(len(reference)), (len(rows), 1))
        part = np.take_along_axis(d2, top, axis=1)
        order = np.argsort(part, axis=1)
        neighbours[start:start + len(rows)] = np.take_along_axis(top, order, axis=1)
        distances[start:start + len(rows)] = np.sqrt(np.take_along_axis(part, order, axis=1))
    return neighbours, distances


def weighted_mean(points: np.ndarray, neighbours: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each row's ``neighbours`` among ``points`` averaged with ``weights``: openTSNE's
    ``initialization.weighted_mean`` (which weighs by distance), without importing
    openTSNE and scikit-learn (seconds) for one line of numpy; equal weights where all are 0."""
    weights = np.where(weights.sum(axis=1, keepdims=True) > 0, weights, 1.0)
    return (points[neighbours] * weights[:, :, None]).sum(axis=1) / weights.sum(axis=1)[:, None]


def extend(previous: MapLayout, ids: list[str], hashes: list[str], new_vectors: np.ndarray,
           old_vectors: np.ndarray | None = None) -> MapLayout:
    """``previous`` with removed items dropped and new ones placed; kept items do not move.

    ``new_vectors`` are the rows of ``new_items``. Each new point goes where openTSNE's
    partial embedding puts it before optimising (``initialization="weighted"``): the
    distance-weighted mean of its nearest kept points on the map, found exactly in the
    PCA space the map was laid out in. The kept points' PCA coordinates are saved with the
    layout, so the cost follows the new items; a layout saved without them needs
    ``old_vectors`` (the rows of ``previous.ids``). openTSNE's ``transform`` would go on to
    optimise the new points against the whole map (Barnes-Hut, every iteration), a cost
    that follows the collection instead.
    """
    old = _kept(previous, ids, hashes)
    kept = sorted(old)
    new = [i for i in range(len(ids)) if i not in old]
    reduced_before = previous.reduced
    if reduced_before is None:
        if old_vectors is None:
            raise ValueError("a layout saved without PCA coordinates needs the vectors of its items")
        reduced_before = ((np.asarray(old_vectors, dtype=np.float64) - previous.mean) @ previous.components.T)
    raw = np.zeros((len(ids), 2))
    raw[kept] = previous.raw[[old[i] for i in kept]]
    reduced = np.zeros((len(ids), reduced_before.shape[1]), dtype=np.float32)
    reduced[kept] = reduced_before[[old[i] for i in kept]]
    if new:
        placed = (np.asarray(new_vectors, dtype=np.float64) - previous.mean) @ previous.components.T
        reference = reduced[kept].astype(np.float64)
        neighbours, distances = _nearest(placed, reference, min(PLACE_AMONG, len(kept)))
        raw[new] = weighted_mean(raw[kept], neighbours, distances)
        reduced[new] = placed
    return MapLayout(list(ids), list(hashes), raw, previous.mean, previous.components, previous.low,
                     previous.span, previous.offset, reduced)


def can_extend(previous: MapLayout | None, ids: list[str], hashes: list[str], max_new_share: float) -> bool:
    """Whether placing into ``previous`` is sound: enough old points, few enough new ones."""
    if previous is None or previous.components.shape[0] < 2:
        return False
    kept = len(_kept(previous, ids, hashes))
    new = len(ids) - kept
    if kept < MIN_POINTS_FOR_TSNE or len(previous.ids) < MIN_POINTS_FOR_TSNE:
        return False
    return new <= max_new_share * len(ids)


def project(vectors: np.ndarray, perplexity: float = 30.0, seed: int = 42, n_jobs: int = 2) -> np.ndarray:
    """2-D map positions in [0, 1] for ``vectors`` (a fresh layout)."""
    vectors = np.asarray(vectors)
    if len(vectors) == 0:
        return np.zeros((0, 2))
    ids = [str(i) for i in range(len(vectors))]
    return layout(ids, ids, vectors.reshape(len(vectors), -1), perplexity, seed, n_jobs).positions()
