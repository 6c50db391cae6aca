"""Compact per-category search data, for finding a picture without a server.

Input: one category's item ids, their searchable vectors (L2-normalised, whitened
when the build whitens) and their 64-bit pHashes (None where unknown). Output: a
``SearchData`` that serialises to a JSON header and one little-endian binary file
(format in docs/json-api.md, "Search by example data"): the category's PCA (mean and
float16 components), per-dimension int8 codes of every item's projection, and the
pHashes; and ``search``, the reference search over it that a browser reproduces:
similarity estimated from the codes, copies by pHash or similarity first, as
``archive-sim query`` ranks them. ``write_category`` writes a category's two files;
``manifest`` is ``find/model.json``, which names the model and every category's files;
``fingerprint`` tells a rebuild whether a category's files would change.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import scipy.linalg

from .embed.onnx_export import INPUT_NAME, OUTPUT_NAME

FORMAT = 1
# PCA dimensions kept; with int8 codes and the 8-byte pHash an item takes 128 bytes.
# Measured against 64 and 96 dimensions and 4-bit codes in bench/search_data.py.
DIMENSIONS = 120
HASH_BYTES = 8
# The PCA is fitted on at most this many items (evenly spaced): 10,000 fix the leading
# directions as well as 100,000 do, in a tenth of the time.
PCA_SAMPLE = 10_000


@dataclass(frozen=True)
class SearchData:
    """One category's compact vectors: x ~ mean + components.T @ (codes * scale)."""

    ids: list[str]
    mean: np.ndarray        # (D,) float32
    components: np.ndarray  # (d, D) float16: orthonormal rows
    scale: np.ndarray       # (d,) float32: code units per dimension
    codes: np.ndarray       # (n, d) int8
    phashes: np.ndarray     # (n, 8) uint8, big-endian 64-bit pHash (imagehash's bit order)
    has_phash: np.ndarray   # (n,) bool

    @property
    def dims(self) -> int:
        return int(self.codes.shape[1])

    def item_bytes(self) -> int:
        """Bytes of one item in the binary file (its codes and pHash)."""
        return self.dims + HASH_BYTES


def build(ids: Sequence[str], vectors: np.ndarray, phashes: Sequence[int | None],
          dims: int = DIMENSIONS) -> SearchData:
    """Fit the category's PCA and quantise every item (see the module docstring)."""
    # Single precision throughout: the codes keep 8 bits of each projection, and the Gram
    # matrix and projection cost a third of their double-precision time.
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2 or len(x) != len(ids) or len(phashes) != len(ids):
        raise ValueError(f"{len(ids)} ids, {len(phashes)} pHashes and vectors of shape {x.shape} do not match")
    if len(x) == 0:
        raise ValueError("a category without items has no search data")
    mean = x.mean(axis=0, dtype=np.float64).astype(np.float32)
    sample = x[np.linspace(0, len(x) - 1, min(len(x), PCA_SAMPLE)).astype(np.int64)] - mean
    # The n items span at most n directions around their mean: with no more items than
    # dimensions the projection keeps every inner product and loses nothing but rounding.
    kept = min(dims, len(x), x.shape[1])
    gram = (sample.T @ sample).astype(np.float64)
    # Only the leading eigenvectors are wanted: LAPACK's ?syevr finds them alone, in a
    # fraction of the time of the whole decomposition.
    _, eigenvectors = scipy.linalg.eigh(gram, subset_by_index=[len(gram) - kept, len(gram) - 1], driver="evr")
    top = eigenvectors[:, ::-1].T
    # An eigenvector's sign is arbitrary; fixing it makes the same items give the same file.
    top *= np.sign(top[np.arange(len(top)), np.argmax(np.abs(top), axis=1)])[:, None]
    components = top.astype(np.float16)
    projected = (x - mean) @ components.astype(np.float32).T
    peak = np.abs(projected).max(axis=0)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    codes = np.clip(np.rint(projected / scale), -127, 127).astype(np.int8)
    known = np.array([h is not None for h in phashes], dtype=bool)
    hashes = np.array([h if h is not None else 0 for h in phashes], dtype=">u8").view(np.uint8).reshape(-1, 8)
    return SearchData(list(ids), mean, components, scale, codes, hashes, known)


def fingerprint(model_id: str, ids: Sequence[str], content_hashes: Sequence[str],
                phashes: Sequence[int | None], dims: int = DIMENSIONS) -> str:
    """What a category's files depend on: equal fingerprints, equal files (no need to build them)."""
    digest = hashlib.sha256(f"{FORMAT}\0{dims}\0{model_id}".encode())
    for item_id, content_hash, h in zip(ids, content_hashes, phashes):
        digest.update(f"\0{item_id}\0{content_hash}\0{'' if h is None else h}".encode())
    return digest.hexdigest()[:16]


def similarities(data: SearchData, query: np.ndarray) -> np.ndarray:
    """Estimated cosine similarity of the (normalised) ``query`` vector with every item."""
    q = np.asarray(query, dtype=np.float32)
    projected = data.components.astype(np.float32) @ q
    return float(data.mean @ q) + data.codes.astype(np.float32) @ (projected * data.scale)


def hash_distances(data: SearchData, query_hash: int) -> np.ndarray:
    """Bits in which each item's pHash differs from ``query_hash``; 65 where unknown."""
    values = data.phashes.view(">u8").ravel().astype(np.uint64)
    distances = np.bitwise_count(values ^ np.uint64(query_hash)).astype(np.int64)
    return np.where(data.has_phash, distances, HASH_BYTES * 8 + 1)


@dataclass(frozen=True)
class Match:
    id: str
    similarity: float
    copy: bool
    hash_distance: int | None


def search(data: SearchData, query: np.ndarray, query_hash: int | None, k: int = 10,
           hash_distance: int | None = 7, copy_similarity: float | None = 0.93) -> list[Match]:
    """The ``k`` best items: copies (pHash within ``hash_distance`` bits, or similarity at
    least ``copy_similarity``) first, then by similarity, as ``archive-sim query`` ranks."""
    sims = np.clip(similarities(data, query), -1.0, 1.0)
    top = np.argsort(-sims, kind="stable")[:k]
    candidates = set(top.tolist())
    distances = hash_distances(data, query_hash) if query_hash is not None else None
    if distances is not None and hash_distance is not None:
        candidates.update(np.flatnonzero(distances <= hash_distance).tolist())
    found = []
    for i in candidates:
        d = int(distances[i]) if distances is not None and data.has_phash[i] else None
        by_hash = hash_distance is not None and d is not None and d <= hash_distance
        by_vector = copy_similarity is not None and sims[i] >= copy_similarity
        found.append(Match(data.ids[i], round(float(sims[i]), 4), by_hash or by_vector, d))
    found.sort(key=lambda m: (not m.copy, -m.similarity, m.id))
    return found[:k]


def _layout(data: SearchData) -> list[tuple[str, np.ndarray]]:
    return [
        ("mean", data.mean.astype("<f4")),
        ("components", data.components.astype("<f2")),
        ("scale", data.scale.astype("<f4")),
        ("codes", data.codes),
        ("phashes", data.phashes),
        ("has_phash", np.packbits(data.has_phash, bitorder="little")),
    ]


_DTYPES = {"mean": "float32", "components": "float16", "scale": "float32", "codes": "int8",
           "phashes": "uint8", "has_phash": "uint8"}


def to_files(data: SearchData, binary_name: str, model_id: str) -> tuple[dict[str, Any], bytes]:
    """The JSON header (naming ``binary_name``) and the binary file of ``data``.

    Every array starts at a multiple of 4 bytes, so a browser can view it in place.
    """
    arrays, chunks, offset = [], [], 0
    for name, array in _layout(data):
        raw = np.ascontiguousarray(array).tobytes()
        arrays.append({"name": name, "dtype": _DTYPES[name], "shape": list(array.shape),
                       "offset": offset, "bytes": len(raw)})
        padding = -len(raw) % 4
        chunks.append(raw + b"\0" * padding)
        offset += len(raw) + padding
    header = {"format": FORMAT, "model_id": model_id, "count": len(data.ids), "dims": data.dims,
              "vector_dim": int(data.mean.shape[0]), "data": binary_name, "arrays": arrays, "ids": data.ids}
    return header, b"".join(chunks)


def from_files(header: dict[str, Any], binary: bytes) -> SearchData:
    """Read what ``to_files`` wrote; a header of another format raises ValueError naming it."""
    if header.get("format") != FORMAT:
        raise ValueError(f"search data format {header.get('format')!r}: this reader knows format {FORMAT}")
    parts = {}
    for spec in header["arrays"]:
        dtype = {"float32": "<f4", "float16": "<f2", "int8": "i1", "uint8": "u1"}[spec["dtype"]]
        raw = binary[spec["offset"]:spec["offset"] + spec["bytes"]]
        count = spec["bytes"] // np.dtype(dtype).itemsize
        parts[spec["name"]] = np.frombuffer(raw, dtype=dtype, count=count).reshape(spec["shape"])
    n = header["count"]
    return SearchData(list(header["ids"]), parts["mean"].astype(np.float32), parts["components"],
                      parts["scale"].astype(np.float32), parts["codes"], parts["phashes"],
                      np.unpackbits(parts["has_phash"], bitorder="little")[:n].astype(bool))


def header_json(header: dict[str, Any]) -> str:
    return json.dumps(header, ensure_ascii=False, separators=(",", ":"))


def write_category(folder: Path, slug: str, data: SearchData, model_id: str) -> tuple[Path, Path]:
    """Write ``<slug>.json`` and ``<slug>.bin`` into ``folder`` (each atomically); returns both paths."""
    from .fsutil import atomic_write_bytes

    header, binary = to_files(data, f"{slug}.bin", model_id)
    binary_path, header_path = folder / f"{slug}.bin", folder / f"{slug}.json"
    atomic_write_bytes(binary_path, binary)
    atomic_write_bytes(header_path, header_json(header).encode("utf-8"))
    return header_path, binary_path


def manifest(model_id: str, model_file: str, input_size: int, dim: int, hash_distance: int | None,
             copy_similarity: float | None, categories: Sequence[tuple[str, str, int]]) -> dict[str, Any]:
    """``find/model.json``: the model a browser runs and each category's (name, header file, count)."""
    return {
        "format": FORMAT,
        "model_id": model_id,
        "model": model_file,
        "input": INPUT_NAME,
        "output": OUTPUT_NAME,
        "input_size": input_size,
        "dim": dim,
        "copies": {"hash_distance": hash_distance, "similarity": copy_similarity},
        "categories": [{"name": name, "header": header, "count": count} for name, header, count in categories],
    }
