"""Local evidence that two pictures share a composition: keypoints that agree on one geometry.

Input: image files and each item's neighbour list from the global descriptor.
Output: for a pair of images, the number of keypoint matches (OpenCV SIFT or ORB,
Lowe's ratio test) that one affine transform or homography explains (RANSAC, with a
tolerance for a copyist's distortions); and neighbour lists re-ranked by it: the
neighbours among the first ``candidates`` with at least ``min_matches`` agreeing
matches come first (most matches first) and are marked ``matched``, the rest follow
in their order. Keypoints see where lines and corners are, not the colours, paper or
hand, so a redrawn copy matches its model where the global descriptor ranks other
pictures from the same manuscript first.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .imaging import ImageError, load_rgb
from .state_store import Neighbor

METHODS = ("sift", "sift-edges", "orb")


@dataclass(frozen=True)
class MatchParams:
    """How pairs are matched; part of the cache key of every stored count."""

    method: str = "sift-edges"
    geometry: str = "affine"
    side: int = 384              # images are matched at this long side
    features: int = 300          # keypoints kept per image, strongest first
    ratio: float = 0.8           # Lowe's ratio test: best match this much closer than the second
    tolerance: float = 0.03      # RANSAC reprojection error, as a share of the long side
    mutual: bool = True          # keep a match only when each keypoint is the other's nearest

    def key(self) -> str:
        text = f"{self.method}/{self.geometry}/{self.side}/{self.features}/{self.ratio}/{self.tolerance}/{self.mutual}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Features:
    points: np.ndarray          # (n, 2) float32, pixel positions at the matched size
    descriptors: np.ndarray     # (n, d): float32 (SIFT) or uint8 (ORB)


NO_FEATURES = Features(np.zeros((0, 2), np.float32), np.zeros((0, 0), np.float32))


def _gray(path: Path, side: int) -> np.ndarray:
    img = load_rgb(path, min_side=side).convert("L")
    scale = side / max(img.size)
    if scale < 1:
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))))
    return np.asarray(img)


def _edges(gray: np.ndarray) -> np.ndarray:
    """Gradient magnitude: where the lines are, whichever side is dark (a pen copy of a painting inverts tones)."""
    smooth = cv2.GaussianBlur(gray, (0, 0), 1.5)
    magnitude = cv2.magnitude(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))
    return cv2.normalize(magnitude, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


def extract(path: Path, params: MatchParams) -> Features:
    """Keypoints and descriptors of the image at ``path``; raises ImageError when it cannot be decoded."""
    gray = _gray(path, params.side)
    if params.method == "orb":
        detector = cv2.ORB_create(nfeatures=params.features)
    elif params.method in ("sift", "sift-edges"):
        detector = cv2.SIFT_create(nfeatures=params.features)
        if params.method == "sift-edges":
            gray = _edges(gray)
    else:
        raise ValueError(f"method {params.method!r}: expected one of {', '.join(METHODS)}")
    keypoints, descriptors = detector.detectAndCompute(gray, None)
    if descriptors is None or not keypoints:
        return NO_FEATURES
    return Features(np.array([kp.pt for kp in keypoints], np.float32), descriptors)


def agreeing_matches(a: Features, b: Features, params: MatchParams) -> int:
    """How many ratio-test matches from ``a`` to ``b`` one geometry (RANSAC) explains; 0 for too few."""
    if len(a.points) < 4 or len(b.points) < 4:
        return 0
    norm = cv2.NORM_HAMMING if params.method == "orb" else cv2.NORM_L2
    matcher = cv2.BFMatcher(norm)
    pairs = matcher.knnMatch(a.descriptors, b.descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < params.ratio * p[1].distance]
    if params.mutual:
        back = {m.queryIdx: m.trainIdx for m in matcher.match(b.descriptors, a.descriptors)}
        good = [m for m in good if back.get(m.trainIdx) == m.queryIdx]
    # One keypoint of b matched by many of a is one piece of evidence, not many.
    seen: set[int] = set()
    good = [m for m in good if not (m.trainIdx in seen or seen.add(m.trainIdx))]
    if len(good) < 4:
        return 0
    src = a.points[[m.queryIdx for m in good]]
    dst = b.points[[m.trainIdx for m in good]]
    threshold = params.tolerance * params.side
    if params.geometry == "homography":
        _, mask = cv2.findHomography(src, dst, cv2.RANSAC, threshold, maxIters=2000, confidence=0.995)
    else:
        _, mask = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=threshold,
                                       maxIters=2000, confidence=0.995, refineIters=0)
    return int(mask.sum()) if mask is not None else 0


def pair_key(a: str, b: str) -> tuple[str, str]:
    """A pair of content hashes in one order: matching a with b counts what b with a counts."""
    return (a, b) if a <= b else (b, a)


# Features kept in memory while pairs are matched: 300 SIFT keypoints take 156 KB.
CACHE_BYTES = 1 << 30


def cache_limit(params: MatchParams) -> int:
    """How many images' features fit in ``CACHE_BYTES``."""
    per_image = params.features * (8 + (32 if params.method == "orb" else 128 * 4))
    return max(64, CACHE_BYTES // per_image)


class FeatureCache:
    """Features by content hash, the most recently used ``limit`` kept in memory."""

    def __init__(self, params: MatchParams, limit: int | None = None) -> None:
        self.params, self.limit = params, limit or cache_limit(params)
        self._kept: OrderedDict[str, Features] = OrderedDict()
        self._lock = threading.Lock()  # matching threads share the cache
        self.failed: dict[str, str] = {}

    def get(self, content_hash: str, path: str) -> Features:
        with self._lock:
            found = self._kept.get(content_hash)
            if found is not None:
                self._kept.move_to_end(content_hash)
                return found
        try:
            found = extract(Path(path), self.params)
        except (ImageError, OSError) as exc:
            self.failed[content_hash] = str(exc)
            found = NO_FEATURES
        with self._lock:
            self._kept[content_hash] = found
            if len(self._kept) > self.limit:
                self._kept.popitem(last=False)
        return found


def pairs_to_check(lists: Mapping[str, Sequence[Neighbor]], hash_of: Mapping[str, str],
                   candidates: int) -> set[tuple[str, str]]:
    """The content-hash pairs of every item and its first ``candidates`` neighbours (identical files left out)."""
    pairs = set()
    for item_id, neighbours in lists.items():
        for nb in neighbours[:candidates]:
            if nb.id in hash_of and hash_of[nb.id] != hash_of[item_id]:
                pairs.add(pair_key(hash_of[item_id], hash_of[nb.id]))
    return pairs


def locality_order(hashes: Sequence[str], vectors: np.ndarray, limit: int, seed: int = 42) -> dict[str, int]:
    """A rank for each content hash that keeps neighbours close: k-means clusters of at
    most a quarter of ``limit`` images, one after another. Matching pairs in this order,
    an image's features are still cached when its neighbours come; in hash order a
    category larger than the cache would extract most images once per pair."""
    size = max(1, limit // 4)
    if len(hashes) <= size:
        return {h: i for i, h in enumerate(sorted(hashes))}
    from sklearn.cluster import MiniBatchKMeans

    clusters = -(-len(hashes) // size)
    labels = MiniBatchKMeans(clusters, random_state=seed, n_init=1, batch_size=4096).fit_predict(vectors)
    order = sorted(range(len(hashes)), key=lambda i: (labels[i], hashes[i]))
    return {hashes[i]: rank for rank, i in enumerate(order)}


def count_matches(pairs: Iterable[tuple[str, str]], path_of: Mapping[str, str], params: MatchParams,
                  workers: int = 2, progress: Callable[[int], None] | None = None,
                  cache: FeatureCache | None = None, order: Mapping[str, int] | None = None
                  ) -> dict[tuple[str, str], int]:
    """Agreeing matches of each pair of content hashes. Pairs are taken in ``order`` of their
    images (default: by hash), so each image's features are extracted about once; OpenCV
    releases the interpreter lock, so ``workers`` threads use that many cores."""
    cache = cache or FeatureCache(params)
    if order is None:
        ordered = sorted(pairs)
    else:
        ordered = sorted(pairs, key=lambda p: (min(order[p[0]], order[p[1]]), max(order[p[0]], order[p[1]])))

    def one(pair: tuple[str, str]) -> int:
        a, b = pair
        return agreeing_matches(cache.get(a, path_of[a]), cache.get(b, path_of[b]), params)

    result: dict[tuple[str, str], int] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="match") as pool:
        for pair, count in zip(ordered, pool.map(one, ordered, chunksize=16)):
            result[pair] = count
            if progress is not None:
                progress(1)
    return result


def rerank(neighbours: Sequence[Neighbor], matches_of: Mapping[str, int], candidates: int,
           min_matches: int) -> list[Neighbor]:
    """``neighbours`` with those of the first ``candidates`` that have ``min_matches`` or more
    agreeing matches first (most first, then by similarity), marked; the others after, in their order."""
    confirmed, rest = [], []
    for rank, nb in enumerate(neighbours):
        count = matches_of.get(nb.id, 0) if rank < candidates else 0
        if count >= min_matches:
            confirmed.append(nb._replace(matched=True, matches=count))
        else:
            rest.append(nb._replace(matched=False, matches=count))
    confirmed.sort(key=lambda nb: (-nb.matches, -nb.similarity, nb.id))
    return confirmed + rest


def rerank_lists(lists: Mapping[str, Sequence[Neighbor]], hash_of: Mapping[str, str],
                 counts: Mapping[tuple[str, str], int], candidates: int,
                 min_matches: int) -> dict[str, list[Neighbor]]:
    """Every list of ``lists`` re-ranked with the pair counts in ``counts`` (missing pairs count 0)."""
    result = {}
    for item_id, neighbours in lists.items():
        own = hash_of[item_id]
        matches_of = {nb.id: counts.get(pair_key(own, hash_of[nb.id]), 0)
                      for nb in neighbours[:candidates] if nb.id in hash_of}
        result[item_id] = rerank(neighbours, matches_of, candidates, min_matches)
    return result
