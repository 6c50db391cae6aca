"""The render's heavy work, shared among processes: map atlases and item pages.

Input: the settings, the staging and live site folders, the state store, and the
ids of items left out of the site (their thumbnails failed). Output: the whole
site written into the staging folder (``render_site``), and its ``RenderResult``.

Rendering is pure Python (Jinja2, JSON, SHA-256, Pillow), so one process uses one
core. The heavy work is cut into tasks: one map's atlases, page and document
(largest map first), then item pages in chunks of ``CHUNK`` items. Every
process, this one and ``site.processes - 1`` spawned ones, claims the next task
from a shared counter until none is left, so they finish together whatever the
mix: a first build at 100,000 items spends as much time on atlases as on pages,
a rebuild almost none.
This process also writes the rest of the site before it claims any task, and
links the atlases into it once every task is done.

Each worker reads the state store itself (SQLite allows readers beside the
writer): the items, and per chunk only that chunk's neighbour lists and manifest
rows. Workers are spawned, never forked: the parent may hold TensorFlow's threads,
and a fork would copy their locks. A worker dies with its parent, so a build killed
mid-render leaves nothing writing into its staging folder.
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import os
import queue as queues
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Settings
from ..embed.descriptors import descriptor_model_id
from ..calibration import Calibration
from ..state_store import CatalogItem, SiteFile, StateStore
from .find import write_find
from .model import SiteModel
from .output_tree import OutputTree, TreeChanges
from .pages import RenderResult, SiteWriter
from .search import IndexedPart, index_basis, pagefind_executable, pagefind_version, plan_search

# Starting a process and loading the store costs about a second: not worth it below this.
MIN_ITEMS = 1500
# Item pages per task: small enough that the processes end within a fraction of a
# second of each other, large enough that claiming one costs nothing.
CHUNK = 250


def load_site_model(settings: Settings, store: StateStore, excluded: frozenset[str] = frozenset(),
                    items: Sequence[CatalogItem] | None = None) -> SiteModel:
    """The site model of the items with vectors (``items``, when the caller has read
    them already), but ``excluded``; it holds no neighbour lists (``run_tasks`` loads
    them chunk by chunk)."""
    mid = descriptor_model_id(settings.model)
    if items is None:
        items = store.items_with_vectors(mid)
    items = [it for it in items if it.id not in excluded]
    return SiteModel(items, {}, mid, settings.map.thumbnail_size, settings.site.category_labels,
                     reuse_groups=store.reuse_groups(mid),
                     calibrations={category: Calibration.from_json(data)
                                   for category, data in store.calibrations(mid).items()})


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Python's cycle collector, kept from rescanning what the render holds.

    Rendering makes millions of short-lived dicts, and every 700 of them the
    collector ran; as the card caches grew it also rescanned the whole site model
    (ten full collections in 10,000 item pages). Objects alive on entry are frozen
    out of its sight and young ones are collected every 50,000 allocations: a sixth
    less time per item page, and cycles are still collected.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


@dataclass(frozen=True)
class Task:
    """Write map ``scope`` (``SiteWriter.write_map``), or items ``start``..``stop`` of ``SiteModel.items``."""

    scope: str | None = None
    start: int = 0
    stop: int = 0


def plan_tasks(model: SiteModel, map_sizes: dict[str, int], chunk: int = CHUNK) -> list[Task]:
    """Every map, largest first (the longest tasks go first, so none is left
    for the end), then the item pages in chunks."""
    maps = [Task(scope) for scope in sorted(map_sizes, key=lambda s: (-map_sizes[s], s))]
    count = len(model.items)
    return maps + [Task(None, start, min(start + chunk, count)) for start in range(0, count, chunk)]


def run_tasks(writer: SiteWriter, store: StateStore, tasks: Sequence[Task], counter: Any, cache: Path,
              progress: Callable[[int], None] | None = None,
              manifest_of: Callable[[list[str]], dict[str, SiteFile]] | None = None) -> None:
    """Claim and do tasks until none is left.

    ``counter`` (a shared ``multiprocessing.Value``) numbers the next unclaimed task.
    ``manifest_of`` gives the live site's manifest rows of some paths, for a writer
    whose tree was not given the whole manifest.
    """
    model = writer.model
    while True:
        with counter.get_lock():
            number = counter.value
            counter.value += 1
        if number >= len(tasks):
            return
        task = tasks[number]
        if task.scope is not None:
            if manifest_of is not None:
                writer.tree.know(manifest_of(list(model.map_paths(task.scope))))
            writer.write_map(task.scope, store.map_points(task.scope), store.atlas_cells(task.scope),
                             store.map_layout(task.scope), cache)
            continue
        items = model.items[task.start:task.stop]
        # Only this chunk's neighbour lists are held: all of them at 100,000 items
        # cost a gigabyte and ten seconds to load.
        model.neighbors = store.neighbor_lists(model.model_id, [it.id for it in items])
        if manifest_of is not None:
            writer.tree.know(manifest_of([p for it in items for p in (model.item_path(it), model.neighbors_path(it))]))
        writer.write_items(items, progress)


def worker_count(settings: Settings, items: int, processes: int | None = None, min_items: int | None = None) -> int:
    """How many processes to spawn beside this one for a site of ``items`` items
    (none below ``min_items``, default ``MIN_ITEMS``)."""
    wanted = processes or settings.site.processes
    return wanted - 1 if items >= max(MIN_ITEMS if min_items is None else min_items, wanted) else 0


def render_site(settings: Settings, store: StateStore, staging: Path, live: Path, cache: Path,
                excluded: frozenset[str] = frozenset(), progress: Callable[[int], None] | None = None,
                processes: int | None = None, min_items: int | None = None, chunk: int = CHUNK,
                items: Sequence[CatalogItem] | None = None, workers: RenderWorkers | None = None) -> SiteWriter:
    """Write the whole site into ``staging``, with ``processes`` processes (default:
    ``site.processes``); return the writer, whose ``result`` describes what it wrote.
    ``items``: the items with vectors, when the caller has read them already.
    ``workers``: processes the caller started already (they start up while it makes
    thumbnails); else this spawns its own. Still to do: ``seal`` and ``prune``."""
    with fewer_collections():
        model = load_site_model(settings, store, excluded, items)
        sizes = store.map_sizes()
        # Every map the site shows, with or without points (a build that skipped ``map``).
        scopes = [scope["name"] for scope in model.map_scopes("")]
        tasks = plan_tasks(model, {scope: sizes.get(scope, 0) for scope in scopes}, chunk)
        tree = OutputTree.of_build(staging, live)
        with (nullcontext(workers) if workers is not None else
              RenderWorkers(settings, staging, live, cache, worker_count(settings, len(model.items), processes,
                                                                         min_items))) as pool:
            pool.start(excluded, tasks)
            # The workers start on the tasks while this process reads the live site's
            # manifest, places the search records and writes the rest of the site.
            tree.read_manifests(store)
            writer = SiteWriter(tree, settings, model)
            executable = pagefind_executable() if writer.search else None
            if executable is not None:
                basis = index_basis(settings.site.language, pagefind_version(executable))
                writer.search_plan = plan_search(model, basis, [IndexedPart(*row) for row in store.search_parts()])
            writer.write_common()
            if writer.find_unavailable is None:
                write_find(writer, store)
            writer.link_thumbnails(cache)
            run_tasks(writer, store, tasks, pool.counter, cache, pool.relay(progress))
            pool.merge_into(writer)
        writer.finish(cache)
        return writer


@dataclass(frozen=True)
class Share:
    """What a worker needs to start: the items left out and the tasks come once it
    has (``RenderWorkers.start``); everything else it reads from the state store."""

    settings: Settings
    staging: Path
    live: Path
    cache: Path
    parent: int


class RenderWorkers:
    """``count`` spawned processes claiming tasks beside this one.

    Use as a context manager: the processes start up (import, read the items) as soon
    as it is entered; ``start`` then gives them their tasks, to claim beside
    ``run_tasks(..., counter=workers.counter)``; ``merge_into`` collects what they
    wrote. Leaving the block early stops the workers.
    """

    def __init__(self, settings: Settings, staging: Path, live: Path, cache: Path, count: int) -> None:
        self._context = multiprocessing.get_context("spawn")
        self.counter = self._context.Value("q", 0)
        self._share = Share(settings, staging, live, cache, os.getpid())
        self._count = count
        self._queue: Any = self._context.Queue() if count else None
        self._orders: Any = self._context.Queue() if count else None
        self._processes: list[Any] = []
        self.pids: list[int] = []
        # What the workers wrote, one part per task (see ``_work``), and how many have finished.
        self._parts: list[tuple[RenderResult, TreeChanges]] = []
        self._done = 0
        self._progress: Callable[[int], None] | None = None

    def __enter__(self) -> "RenderWorkers":
        for n in range(self._count):
            process = self._context.Process(target=_work, args=(self._share, self.counter, self._queue, self._orders),
                                            daemon=True, name=f"archive-sim render {n + 1}")
            process.start()
            self._processes.append(process)
            self.pids.append(process.pid)
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self._processes:
            if process.is_alive():
                process.kill()
            process.join()

    def start(self, excluded: frozenset[str], tasks: Sequence[Task]) -> None:
        """Set the workers to ``tasks`` (of the site without the items ``excluded``)."""
        for _ in range(self._count):
            self._orders.put((excluded, tuple(tasks)))

    def relay(self, progress: Callable[[int], None] | None) -> Callable[[int], None]:
        """``progress``, also passing on what the workers have reported meanwhile."""
        self._progress = progress

        def advance(n: int) -> None:
            if progress:
                progress(n)
            self._drain(block=False)
        return advance

    def merge_into(self, writer: SiteWriter) -> None:
        """Wait for the workers; add what they wrote to ``writer``'s result, and their atlases to its own."""
        while self._done < self._count:
            self._drain(block=True)
        for result, changes in self._parts:
            writer.result.merge(result)
            writer.tree.changes.merge(changes)

    def _drain(self, block: bool) -> None:
        while self._queue is not None and self._done < self._count:
            try:
                kind, value = self._queue.get(block=block, timeout=1.0 if block else None)
            except queues.Empty:
                if block:
                    dead = [p for p in self._processes if p.exitcode not in (None, 0)]
                    if dead:
                        raise RuntimeError(f"a render worker stopped (exit code {dead[0].exitcode}) "
                                           "before finishing its tasks") from None
                    continue
                return
            if kind == "error":
                raise RuntimeError(f"render worker: {value}")
            finished, items, part = value
            self._parts.append(part)
            if finished:
                self._done += 1
            if items and self._progress:
                self._progress(items)


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent was gone before the line above
        os._exit(1)


def _work(share: Share, counter: Any, results: Any, orders: Any) -> None:
    """Read the items, wait for the tasks (``RenderWorkers.start``) and claim them;
    after each, send the parent what it wrote, as ``(finished, items done, (result,
    tree changes))``: unpickled while the parent still has tasks of its own, not all
    at the end, when it would be the only process at work."""
    _die_with_parent(share.parent)
    try:
        with StateStore(share.settings.state_dir) as store:
            items = store.items_with_vectors(descriptor_model_id(share.settings.model))
            excluded, tasks = orders.get()
            with fewer_collections():
                model = load_site_model(share.settings, store, excluded, items)
                del items
                writer = SiteWriter(OutputTree(share.staging, share.live), share.settings, model)

                def send(finished: bool, done: int) -> None:
                    results.put(("part", (finished, done, (writer.result, writer.tree.take_changes()))))
                    writer.result = RenderResult()

                run_tasks(writer, store, tasks, counter, share.cache,
                          lambda n: send(False, n), manifest_of=store.site_manifest)
        send(True, 0)
    except Exception as exc:  # reported to the parent, which stops the build with it
        results.put(("error", f"{type(exc).__name__}: {exc}"))
