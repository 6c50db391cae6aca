"""Item pages written by other processes while this one writes the rest of the site.

Input: the settings, the staging and live site folders, and the ids of items left
out of the site (their thumbnails failed); each worker reads the live site's
manifest for its own files from the state store. Output: the
item pages and neighbour JSON files of the last part of the site model's items,
written into the staging folder by spawned processes, and their ``RenderResult``,
merged into this process's own.

Rendering is pure Python (Jinja2, JSON, SHA-256), so one process uses one core;
item pages are nearly all of a site. Each worker reads the state store itself
(SQLite allows readers beside the writer), which costs less than pickling the
site model over. Workers are spawned, never forked: the parent may hold
TensorFlow's threads, and a fork would copy their locks. A worker dies with its
parent, so a build killed mid-render leaves nothing writing into its staging folder.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import queue as queues
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .catalog import StateStore
from .config import Settings
from .embed.descriptors import descriptor_model_id
from .render import RenderResult, SiteWriter
from .sitemodel import SiteModel

# Starting a process and loading the store costs about a second: not worth it below this.
MIN_ITEMS = 1500
_PROGRESS_EVERY = 250
PARENT_SHARE = 0.5


def load_site_model(settings: Settings, store: StateStore, excluded: frozenset[str] = frozenset(),
                    neighbors_of: slice | None = None) -> SiteModel:
    """The site model of the items with vectors, but ``excluded``; with ``neighbors_of``,
    only the items of that slice of ``SiteModel.items`` get their neighbour lists."""
    mid = descriptor_model_id(settings.model)
    items = [it for it in store.items_with_vectors(mid) if it.id not in excluded]
    model = SiteModel(items, {}, mid, settings.map.thumbnail_size, settings.site.category_labels,
                      reuse_groups=store.reuse_groups(mid))
    ids = None if neighbors_of is None else [it.id for it in model.items[neighbors_of]]
    model.neighbors = store.neighbors(mid, ids)
    return model


@dataclass(frozen=True)
class Share:
    """What one worker writes: items ``start``..``stop`` of ``SiteModel.items``."""

    settings: Settings
    staging: Path
    live: Path
    excluded: frozenset[str]
    start: int
    stop: int
    parent: int


class ItemWorkers:
    """Spawned processes writing the last ``processes - 1`` parts of the item pages.

    Use as a context manager around ``SiteWriter.write_all(..., elsewhere=workers.share)``,
    then call ``merge_into``. Leaving the block early stops the workers.
    """

    def __init__(self, settings: Settings, model: SiteModel, staging: Path, live: Path,
                 excluded: frozenset[str], processes: int,
                 min_items: int = MIN_ITEMS) -> None:
        count = len(model.items)
        parts = processes if count >= max(min_items, processes) else 1
        # This process also writes the category pages, maps, media links and the prune.
        # Measured at 100,000 items with 2 processes, an equal share was best (a 15 %
        # share left it waiting for the worker): the files, not Python, set the pace.
        own = count if parts == 1 else round(count * PARENT_SHARE)
        bounds = [0] + [own + (count - own) * n // (parts - 1) for n in range(parts)] if parts > 1 else [0, count]
        self.share = range(own, count)
        # A share stays small: a spawned process gets it through a pipe before it runs.
        self._shares = [Share(settings, staging, live, excluded, start, stop, os.getpid())
                        for start, stop in zip(bounds[1:-1], bounds[2:])]
        self._context = multiprocessing.get_context("spawn")
        self._queue: Any = self._context.Queue() if self._shares else None
        self._processes: list[Any] = []
        self.pids: list[int] = []
        self._results: list[RenderResult] = []
        self._progress: Callable[[int], None] | None = None

    def __enter__(self) -> "ItemWorkers":
        for share in self._shares:
            process = self._context.Process(target=_work, args=(share, self._queue), daemon=True,
                                            name=f"archive-sim render {share.start}-{share.stop}")
            process.start()
            self._processes.append(process)
            self.pids.append(process.pid)
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self._processes:
            if process.is_alive():
                process.kill()
            process.join()

    def relay(self, progress: Callable[[int], None] | None) -> Callable[[int], None]:
        """``progress``, also passing on what the workers have reported meanwhile."""
        self._progress = progress

        def advance(n: int) -> None:
            if progress:
                progress(n)
            self._drain(block=False)
        return advance

    def merge_into(self, result: RenderResult) -> None:
        """Wait for the workers and add what they wrote to ``result``."""
        while len(self._results) < len(self._shares):
            self._drain(block=True)
        for part in self._results:
            result.pages += part.pages
            result.json_files += part.json_files
            result.unchanged += part.unchanged
            result.written.extend(part.written)
            result.files.update(part.files)

    def _drain(self, block: bool) -> None:
        while self._queue is not None and len(self._results) < len(self._shares):
            try:
                kind, value = self._queue.get(block=block, timeout=1.0 if block else None)
            except queues.Empty:
                if block:
                    dead = [p for p in self._processes if p.exitcode not in (None, 0)]
                    if dead:
                        raise RuntimeError(f"a render worker stopped (exit code {dead[0].exitcode}) "
                                           "before writing its item pages") from None
                    continue
                return
            if kind == "progress" and self._progress:
                self._progress(value)
            elif kind == "error":
                raise RuntimeError(f"render worker: {value}")
            elif kind == "done":
                self._results.append(value)


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent was gone before the line above
        os._exit(1)


def _work(share: Share, results: Any) -> None:
    _die_with_parent(share.parent)
    try:
        with StateStore(share.settings.state_dir) as store:
            model = load_site_model(share.settings, store, share.excluded, slice(share.start, share.stop))
            mine = model.items[share.start:share.stop]
            manifest = store.site_manifest([p for it in mine for p in (model.item_path(it), model.neighbors_path(it))])
        writer = SiteWriter(share.staging, share.settings, model, live=share.live, manifest=manifest)
        done = 0
        for item in model.items[share.start:share.stop]:
            writer.write_item(item)
            done += 1
            if done == _PROGRESS_EVERY:
                results.put(("progress", done))
                done = 0
        results.put(("progress", done))
        results.put(("done", writer.result))
    except Exception as exc:  # reported to the parent, which stops the build with it
        results.put(("error", f"{type(exc).__name__}: {exc}"))
