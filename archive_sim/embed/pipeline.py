"""Stream images through a backbone in batches and store vectors as they come.

Input: (content hash, image path) pairs that lack a vector for the backbone, a
``Backbone``, a ``StateStore``. Output: L2-normalised float32 vectors in the store,
one transaction per batch (an interruption loses at most one batch), and a problem
line for each image that could not be decoded. Decoding and resizing run in worker
threads (Pillow releases the GIL) while the model works on the previous batch.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..catalog import StateStore
from ..imaging import ImageError, load_rgb, model_array
from .backbones import Backbone


@dataclass
class EmbedResult:
    embedded: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # content hash -> reason


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def _decode(path: str, size: int) -> np.ndarray:
    return model_array(load_rgb(Path(path), min_side=size), size)


def _decoded_in_order(jobs: list[tuple[str, str]], size: int, workers: int,
                      ahead: int) -> Iterator[tuple[str, np.ndarray | None, str | None]]:
    """Yield (hash, array or None, error) in job order, decoding up to ``ahead`` in advance."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
        pending: deque[tuple[str, Future]] = deque()
        queue = iter(jobs)
        for content_hash, path in queue:
            pending.append((content_hash, pool.submit(_decode, path, size)))
            if len(pending) >= ahead:
                break
        while pending:
            content_hash, future = pending.popleft()
            nxt = next(queue, None)
            if nxt is not None:
                pending.append((nxt[0], pool.submit(_decode, nxt[1], size)))
            try:
                yield content_hash, future.result(), None
            except ImageError as exc:
                yield content_hash, None, str(exc)
            except (OSError, MemoryError) as exc:
                yield content_hash, None, f"cannot decode: {exc}"


def embed_images(jobs: list[tuple[str, str]], backbone: Backbone, store: StateStore, batch_size: int = 32,
                 workers: int = 2, progress: Callable[[int], None] | None = None) -> EmbedResult:
    """Embed each (hash, path) in ``jobs`` and store its vector under ``backbone.model_id``."""
    result = EmbedResult()
    hashes: list[str] = []
    arrays: list[np.ndarray] = []

    def flush() -> None:
        if not arrays:
            return
        vectors = l2_normalise(backbone.features(np.stack(arrays)))
        store.put_vectors(backbone.model_id, zip(hashes, vectors))
        result.embedded += len(arrays)
        if progress:
            progress(len(arrays))
        hashes.clear()
        arrays.clear()

    for content_hash, array, error in _decoded_in_order(jobs, backbone.input_size, workers, ahead=2 * batch_size):
        if array is None:
            result.failed[content_hash] = error or "cannot decode"
            if progress:
                progress(1)
            continue
        hashes.append(content_hash)
        arrays.append(array)
        if len(arrays) >= batch_size:
            flush()
    flush()
    return result
