"""Embed on a Dask cluster: batches of images run on workers, vectors come home to be stored.

Input: (content hash, image path) jobs whose paths every worker can read (a shared
filesystem or mounted object store), the model setting, the ``StateStore``, and a
``dask.distributed`` client or scheduler address. Output: what ``pipeline.embed_images``
gives: L2-normalised vectors stored one transaction per returned batch, a reason
for each image that failed. Each worker builds the backbone once and keeps it
(``BackboneCache``, a worker plugin); it decodes with its own threads and runs the
same compiled model as a single machine, so vectors do not depend on where they
were made. The SQLite store stays with the coordinator: workers never write state.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import numpy as np
from distributed.diagnostics.plugin import WorkerPlugin

from ..state_store import StateStore
from .backbones import Backbone
from .descriptors import load_with, model_id_with
from .pipeline import EmbedResult, available_cores, embedded_batches

# Images per task: large enough that scheduling (a few ms per task) is noise next to
# the seconds of work, small enough that a lost worker costs little and the
# coordinator stores results steadily.
IMAGES_PER_TASK = 256
PLUGIN_NAME = "archive-sim-backbones"


@dataclass
class BatchResult:
    """What a worker sends back for one task: vectors in job order, and the failures."""

    hashes: list[str]
    vectors: np.ndarray  # float32 (len(hashes), dim), L2-normalised
    failed: dict[str, str] = field(default_factory=dict)


class BackboneCache(WorkerPlugin):
    """A Dask worker plugin holding each feature extractor the worker has built, by model id."""

    name = PLUGIN_NAME

    def __init__(self) -> None:
        self._built: dict[str, Backbone] = {}

    def setup(self, worker: Any) -> None:  # called by Dask when the plugin is registered
        self._built = {}

    def teardown(self, worker: Any) -> None:
        self._built.clear()

    def get(self, name: str, weights: str, descriptor: Any = None) -> Backbone:
        key = model_id_with(name, weights, descriptor)
        if key not in self._built:
            self._built[key] = load_with(name, weights, descriptor)
        return self._built[key]


def _worker_backbone(name: str, weights: str, descriptor: Any = None) -> Backbone:
    from distributed import get_worker

    worker = get_worker()
    cache = worker.plugins.get(PLUGIN_NAME)
    if cache is None:  # a worker that joined after registration, in an older Dask
        cache = BackboneCache()
        worker.plugins[PLUGIN_NAME] = cache
    return cache.get(name, weights, descriptor)


def embed_batch(jobs: list[tuple[str, str]], name: str, weights: str, batch_size: int = 32,
                threads: int = 2, descriptor: Any = None) -> BatchResult:
    """Run on a worker: decode ``jobs`` with ``threads`` threads and embed them ``batch_size`` at a time."""
    backbone = _worker_backbone(name, weights, descriptor)
    hashes: list[str] = []
    vectors: list[np.ndarray] = []
    failed: dict[str, str] = {}
    for batch_hashes, batch_vectors in embedded_batches(jobs, backbone, batch_size, threads, "threads",
                                                        failed.__setitem__):
        hashes.extend(batch_hashes)
        vectors.append(batch_vectors)
    matrix = np.concatenate(vectors) if vectors else np.zeros((0, backbone.dim), np.float32)
    return BatchResult(hashes, matrix, failed)


def _tasks(jobs: Iterable[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    it = iter(jobs)
    while part := list(islice(it, size)):
        yield part


@contextlib.contextmanager
def connect(scheduler: str) -> Iterator[Any]:
    """A client for ``scheduler``: a Dask scheduler address, or "local" for a cluster on this machine."""
    from distributed import Client, LocalCluster

    if scheduler == "local":
        # One worker process per two cores: each runs TF's own threads plus decoding.
        workers = max(1, available_cores() // 2)
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, \
                Client(cluster) as client:
            yield client
    else:
        with Client(scheduler) as client:
            yield client


def embed_on_cluster(jobs: Iterable[tuple[str, str]], name: str, weights: str, store: StateStore, client: Any,
                     batch_size: int = 32, images_per_task: int = IMAGES_PER_TASK,
                     decode_threads: int = 2, progress: Callable[[int], None] | None = None,
                     descriptor: Any = None) -> EmbedResult:
    """Embed ``jobs`` on the cluster behind ``client`` and store each batch as it returns.

    At most two tasks per worker thread are in flight, so the coordinator's memory
    stays bounded however many jobs there are; results are stored in the order they
    finish. A task that fails even after Dask's retries (a lost worker, an image
    that crashes the decoder) marks its images failed with the reason; the rest go on.
    """
    from distributed import as_completed

    mid = model_id_with(name, weights, descriptor)  # a bad model setting stops here, before any task is sent
    client.register_plugin(BackboneCache(), name=PLUGIN_NAME)
    result = EmbedResult()
    threads = sum(client.nthreads().values()) or 1
    tasks = _tasks(jobs, images_per_task)
    in_flight: dict[Any, list[tuple[str, str]]] = {}
    finished = as_completed()

    def submit() -> None:
        part = next(tasks, None)
        if part is not None:
            future = client.submit(embed_batch, part, name, weights, batch_size, decode_threads, descriptor,
                                   pure=False, retries=1)
            in_flight[future] = part
            finished.add(future)

    for _ in range(2 * threads):
        submit()
    for future in finished:
        part = in_flight.pop(future)
        try:
            batch: BatchResult = future.result()
        except Exception as exc:  # the task's own error, raised here by Dask
            detail = str(exc).splitlines()[0] if str(exc) else ""
            reason = f"embedding task failed: {type(exc).__name__}" + (f": {detail}" if detail else "")
            batch = BatchResult([], np.zeros((0, 0), np.float32), {h: reason for h, _ in part})
        if batch.hashes:
            store.put_vectors(mid, zip(batch.hashes, batch.vectors))
        result.embedded += len(batch.hashes)
        result.failed.update(batch.failed)
        if progress:
            progress(len(part))
        submit()
    return result
