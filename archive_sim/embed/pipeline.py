"""Stream images through a backbone in batches and store vectors as they come.

Input: (content hash, image path) pairs that lack a vector for the backbone, a
``Backbone``, a ``StateStore``. Output: L2-normalised float32 vectors in the store,
one transaction per batch (an interruption loses at most one batch), and a problem
line for each image that could not be decoded. Decoding and resizing run in a pool
of worker threads (or processes) that stays a bounded number of images ahead of
the model, so the model never waits and memory does not grow with the collection.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Literal

import numpy as np

from ..state_store import StateStore
from ..imaging import ImageError, load_rgb, model_array
from .backbones import Backbone

Decoder = Literal["threads", "processes"]
# Threads by default: Pillow and NumPy release the GIL while they decode, convert and
# resize, and bench/embed.py measured threads as fast as processes or faster (no
# start-up, no copying arrays between processes). Processes stay available for
# decoders that hold the GIL.
DEFAULT_DECODER: Decoder = "threads"
# Images per task sent to a worker process: enough to hide the cost of a round trip,
# few enough that the first batch is ready quickly.
PROCESS_CHUNK = 8

Decoded = tuple[np.ndarray | None, str | None]  # (uint8 S x S x 3 array, or None and the reason)


@dataclass
class EmbedResult:
    embedded: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # content hash -> reason


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def decode_for_model(path: str, size: int) -> Decoded:
    """The model input of one image file, or why there is none (never raises for a bad file)."""
    try:
        return model_array(load_rgb(Path(path), min_side=size), size), None
    except ImageError as exc:
        return None, str(exc)
    except (OSError, MemoryError) as exc:
        return None, f"cannot decode: {exc}"


def decode_chunk(paths: list[str], size: int) -> list[Decoded]:
    """``decode_for_model`` over several files: one task for a worker process."""
    return [decode_for_model(p, size) for p in paths]


def _ignore_interrupts() -> None:
    # Ctrl-C reaches the whole process group: the parent alone handles it and shuts
    # the pool down, instead of every worker printing its own traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _executor(decoder: Decoder, workers: int) -> Executor:
    if decoder == "threads":
        return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode")
    # "spawn": forking a process that holds TensorFlow's thread pools is unsafe, and
    # a fresh interpreter imports only Pillow and NumPy (this module imports no TF).
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_ignore_interrupts)


def decoded_in_order(jobs: Iterable[tuple[str, str]], size: int, workers: int, ahead: int,
                     decoder: Decoder = "threads") -> Iterator[tuple[str, Decoded]]:
    """Yield (hash, (array, error)) in job order, decoding at most ``ahead`` images in advance.

    ``jobs`` may be a generator: it is read only as fast as decoding proceeds, so
    memory stays bounded by ``ahead`` images whatever the collection's size.
    """
    chunk = PROCESS_CHUNK if decoder == "processes" else 1
    queue = iter(jobs)
    pending: deque[tuple[list[str], Future]] = deque()
    with _executor(decoder, workers) as pool:

        def submit() -> bool:
            part = list(islice(queue, chunk))
            if not part:
                return False
            pending.append(([h for h, _ in part], pool.submit(decode_chunk, [p for _, p in part], size)))
            return True

        while len(pending) * chunk < ahead and submit():
            pass
        while pending:
            hashes, future = pending.popleft()
            submit()
            for content_hash, decoded in zip(hashes, future.result()):
                yield content_hash, decoded


def full_batch(arrays: list[np.ndarray], batch_size: int) -> np.ndarray:
    """``arrays`` stacked and padded with blank images to ``batch_size``.

    The model then only ever sees one batch shape: on a CPU, oneDNN sets up its
    kernels anew for each new shape (a second or more), which a rebuild embedding
    20 new images would otherwise pay on top of the model's first call.
    """
    batch = np.stack(arrays)
    if len(batch) < batch_size:
        batch = np.concatenate([batch, np.zeros((batch_size - len(batch), *batch.shape[1:]), batch.dtype)])
    return batch


def embedded_batches(jobs: Iterable[tuple[str, str]], backbone: Backbone, batch_size: int, workers: int,
                     decoder: Decoder, on_failure: Callable[[str, str], None]) -> Iterator[tuple[list[str], np.ndarray]]:
    """Decode ``jobs`` ahead of the model and embed them ``batch_size`` at a time.

    Yields each batch's content hashes and L2-normalised vectors; an image that
    cannot be decoded is passed to ``on_failure`` (content hash, reason) and skipped.
    """
    hashes: list[str] = []
    arrays: list[np.ndarray] = []
    # Two batches ahead: one being decoded while the model works on the other.
    for content_hash, (array, error) in decoded_in_order(jobs, backbone.input_size, workers,
                                                         ahead=2 * batch_size, decoder=decoder):
        if array is None:
            on_failure(content_hash, error or "cannot decode")
            continue
        hashes.append(content_hash)
        arrays.append(array)
        if len(arrays) >= batch_size:
            yield hashes, l2_normalise(backbone.features(full_batch(arrays, batch_size))[:len(arrays)])
            hashes, arrays = [], []
    if arrays:
        yield hashes, l2_normalise(backbone.features(full_batch(arrays, batch_size))[:len(arrays)])


def embed_images(jobs: Iterable[tuple[str, str]], backbone: Backbone, store: StateStore, batch_size: int = 32,
                 workers: int = 2, progress: Callable[[int], None] | None = None,
                 decoder: Decoder = DEFAULT_DECODER) -> EmbedResult:
    """Embed each (hash, path) in ``jobs`` and store its vector under ``backbone.model_id``.

    ``jobs`` may be a generator (it is read as decoding proceeds). ``progress`` is
    called after each batch is stored (with its size) and for each image that
    failed (with 1). ``decoder`` picks worker threads or processes for decoding.
    Vectors are stored batch by batch: an interruption loses at most one batch.
    """
    result = EmbedResult()

    def failed(content_hash: str, reason: str) -> None:
        result.failed[content_hash] = reason
        if progress:
            progress(1)

    for hashes, vectors in embedded_batches(jobs, backbone, batch_size, workers, decoder, failed):
        store.put_vectors(backbone.model_id, zip(hashes, vectors))
        result.embedded += len(hashes)
        if progress:
            progress(len(hashes))
    return result


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
