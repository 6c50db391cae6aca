"""t-SNE maps: vectors -> 2-D positions normalised to [0, 1].

Input: L2-normalised vectors (one row per item) and t-SNE settings. Output: an
(n, 2) array of positions in [0, 1] with the aspect ratio kept (the longer side
spans 0..1, the other is centred). PCA to at most 50 dimensions first (standard
for t-SNE, and it removes noise); openTSNE's FFT-accelerated t-SNE then lays out
the points; very small sets, where t-SNE is meaningless, use PCA alone.
"""

from __future__ import annotations

import numpy as np

PCA_DIMS = 50
MIN_POINTS_FOR_TSNE = 10


def normalise_positions(points: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] keeping proportions; a single point sits in the centre."""
    points = np.asarray(points, dtype=np.float64)
    if len(points) == 0:
        return points.reshape(0, 2)
    low, high = points.min(axis=0), points.max(axis=0)
    span = float((high - low).max())
    if span <= 0:
        return np.full_like(points, 0.5)
    scaled = (points - low) / span
    scaled += (1.0 - (high - low) / span) / 2.0  # centre the shorter axis
    return np.clip(scaled, 0.0, 1.0)


def _pca(vectors: np.ndarray, dims: int, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    dims = min(dims, vectors.shape[0], vectors.shape[1])
    return PCA(n_components=dims, random_state=seed).fit_transform(vectors)


def project(vectors: np.ndarray, perplexity: float = 30.0, seed: int = 42, n_jobs: int = 2) -> np.ndarray:
    """2-D map positions in [0, 1] for ``vectors``."""
    n = len(vectors)
    if n == 0:
        return np.zeros((0, 2))
    if n == 1:
        return np.full((1, 2), 0.5)
    if n < MIN_POINTS_FOR_TSNE:
        return normalise_positions(_pca(vectors, 2, seed) if n > 2 else np.array([[0.0, 0.0], [1.0, 0.0]]))
    from openTSNE import TSNE

    reduced = _pca(vectors.astype(np.float64), PCA_DIMS, seed)
    # openTSNE needs 3 * perplexity < n; shrink it for small collections.
    effective = max(2.0, min(perplexity, (n - 1) / 3.0 - 1e-6))
    tsne = TSNE(n_components=2, perplexity=effective, random_state=seed, n_jobs=n_jobs,
                initialization="pca", verbose=False)
    return normalise_positions(np.asarray(tsne.fit(reduced)))
