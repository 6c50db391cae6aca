"""What "similar" means in one category: the similarity of random pairs, and the bands it sets.

Input: the L2-normalised vectors of one category (in the space its index searches)
and the pairs that are copies of one picture. Output: a ``Calibration``, the
similarity of random pairs of different pictures at fixed percentiles, and the
bands a neighbour's similarity falls in: "very similar" beyond the 99.9th
percentile of random pairs, "similar" beyond the 99th, "somewhat similar" beyond
the 95th (docs/same-picture.md says why these).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

# (name, percentile of random pairs a neighbour must lie beyond), highest first.
BANDS: tuple[tuple[str, float], ...] = (("very_similar", 99.9), ("similar", 99.0), ("somewhat_similar", 95.0))
# The distribution is kept at these percentiles (the bands' and a few for reading).
LEVELS: tuple[float, ...] = (50.0, 90.0, 95.0, 99.0, 99.5, 99.9)
# Up to this many items every pair of different pictures is measured; beyond it, the
# pairs between two disjoint random samples of this size (2,048 x 2,048 = 4.2 million
# pairs): one matrix product, a few tenths of a second at any collection size.
ALL_PAIRS_UP_TO = 2048
# A category measured again keeps its calibration while no level moved by more than
# this (a similarity): a weekly rebuild that adds a few pictures moves the levels by
# less than the sampling's own noise, and new bands would change every page and
# neighbour document of the category for a shift no visitor could see. Compared
# with the calibration kept, not the last measured, so small moves cannot add up.
KEEP_WITHIN = 0.005
# The band's label key in the interface labels (i18n.py), by band name.
LABEL_KEYS = {"very_similar": "band_very", "similar": "band_similar", "somewhat_similar": "band_some"}


@dataclass(frozen=True)
class Calibration:
    """How alike random pairs of different pictures of one category are."""

    pairs: int                          # pairs measured
    quantiles: dict[float, float]       # percentile -> similarity (the smallest with that share at or below)

    def bands(self) -> list[dict[str, object]]:
        """The bands, highest first: ``{name, percentile, min_similarity}``; a neighbour is
        in the first band whose ``min_similarity`` its similarity exceeds."""
        return [{"name": name, "percentile": p, "min_similarity": self.quantiles[p]} for name, p in BANDS]

    def band(self, similarity: float) -> str | None:
        """The name of the band ``similarity`` lies in, or none below the last."""
        for name, p in BANDS:
            if similarity > self.quantiles[p]:
                return name
        return None

    def to_json(self) -> dict[str, object]:
        return {"pairs": self.pairs, "quantiles": {str(p): q for p, q in self.quantiles.items()}}

    @classmethod
    def from_json(cls, data: dict) -> "Calibration":
        return cls(int(data["pairs"]), {float(p): float(q) for p, q in data["quantiles"].items()})


def settled(kept: Calibration | None, measured: Calibration | None) -> Calibration | None:
    """The calibration a category goes on with: ``kept`` (the one in use) when
    ``measured`` has the same levels, each within ``KEEP_WITHIN`` of it; else ``measured``."""
    if kept is None or measured is None or kept.quantiles.keys() != measured.quantiles.keys():
        return measured
    if all(abs(kept.quantiles[p] - measured.quantiles[p]) <= KEEP_WITHIN for p in kept.quantiles):
        return kept
    return measured


def random_pair_similarities(vectors: np.ndarray, copy_pairs: Iterable[tuple[int, int]] = (),
                             seed: int = 42, all_pairs_up_to: int = ALL_PAIRS_UP_TO,
                             keys: Sequence[str] | None = None) -> np.ndarray:
    """Cosine similarities of pairs of different items of ``vectors`` (normalised here, as Annoy's angular metric does).

    Every pair when there are at most ``all_pairs_up_to`` rows, else every pair between
    two disjoint samples of that size drawn with ``seed`` by a hash of each row's
    ``keys`` (its item id; its position when not given): ``stable_samples``.
    ``copy_pairs`` (row positions) are left out: copies of one picture are not a random pair.
    """
    n = len(vectors)
    copies = {(min(i, j), max(i, j)) for i, j in copy_pairs}
    if n <= all_pairs_up_to:
        unit = _unit(vectors)
        gram = unit @ unit.T
        keep = np.triu(np.ones((n, n), dtype=bool), k=1)
        for i, j in copies:
            keep[i, j] = False
        return np.clip(gram[keep], -1.0, 1.0)
    rows, cols = stable_samples([str(i) for i in range(n)] if keys is None else keys, seed, all_pairs_up_to)
    gram = _unit(vectors[rows]) @ _unit(vectors[cols]).T
    keep = np.ones(gram.shape, dtype=bool)
    if copies:
        where_row = {r: a for a, r in enumerate(rows)}
        where_col = {c: b for b, c in enumerate(cols)}
        for i, j in copies:
            for r, c in ((i, j), (j, i)):
                if r in where_row and c in where_col:
                    keep[where_row[r], where_col[c]] = False
    return np.clip(gram[keep], -1.0, 1.0)


def stable_samples(keys: Sequence[str], seed: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint samples of at most ``size`` rows each: by a hash of each row's key
    with ``seed``, its lowest bit picks the sample and the rest its rank there, and the
    rows of least rank are taken (a bottom-k sample). Items added or removed change
    only as many rows of a sample, so a category that grew by 1 % is measured on
    nearly the same pairs, and its calibration moves by less than ``KEEP_WITHIN``."""
    hashes = np.array([int.from_bytes(hashlib.blake2b(f"{seed}\0{key}".encode("utf-8"), digest_size=8).digest(),
                                      "little") for key in keys], dtype=np.uint64)
    order = np.argsort(hashes >> np.uint64(1), kind="stable")
    odd = (hashes[order] & np.uint64(1)).astype(bool)
    return np.sort(order[~odd][:size]), np.sort(order[odd][:size])


def _unit(rows: np.ndarray) -> np.ndarray:
    # Annoy's angular metric normalises what it is given; so does this.
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1.0)


def calibrate(similarities: np.ndarray, levels: Sequence[float] = LEVELS) -> Calibration | None:
    """The distribution of ``similarities`` at ``levels``; none without a pair.

    Each level's value is the smallest similarity with at least that share of pairs at
    or below it, so at most 0.1 % of the measured pairs lie beyond the 99.9th
    percentile even when there are fewer than a thousand of them (then it is the
    largest): a small category calls fewer pictures similar, never more.
    """
    if len(similarities) == 0:
        return None
    ordered = np.sort(np.asarray(similarities, dtype=np.float64))
    quantiles = {}
    for p in levels:
        rank = max(1, math.ceil(p / 100.0 * len(ordered) - 1e-9))
        # Rounded up to the 4 decimals similarities are given in: never below a pair.
        quantiles[float(p)] = round(math.ceil(float(ordered[rank - 1]) * 10_000 - 1e-6) / 10_000, 4)
    return Calibration(len(ordered), quantiles)
