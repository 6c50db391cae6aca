"""Thumbnails of every image, made once into the media cache.

Input: the items to show and the state folder's media cache. Output: every missing
thumbnail size of every distinct image (``model.media_path``: named by content hash),
and the items whose image could not be read, with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..imaging import ImageError, load_rgb, save_jpeg
from ..state_store import CatalogItem
from .model import media_path


def make_media(items: list[CatalogItem], cache: Path, sizes: tuple[int, ...], workers: int,
               progress: Callable[[int], None] | None = None) -> tuple[int, dict[str, str]]:
    """Make every missing thumbnail size of every distinct image under ``cache``; return
    how many images were made and item id -> why its image failed."""
    by_hash: dict[str, CatalogItem] = {}
    for it in items:
        by_hash.setdefault(it.content_hash, it)
    # Names only, a folder at a time, compared as sets: at 100,000 items listing the
    # cache with inodes and looking up each path took over a second.
    missing: set[str] = set()
    for size in sizes:
        folder = media_path("", size).rpartition("/")[0]
        present = {f"{folder}/{name}" for name in _names_in(cache / folder)}
        wanted = {media_path(h, size): h for h in by_hash}
        missing.update(wanted[path] for path in wanted.keys() - present)
    todo = [by_hash[h] for h in sorted(missing)]

    def make(item: CatalogItem) -> tuple[CatalogItem, str | None]:
        try:
            img = load_rgb(Path(item.image), min_side=max(sizes))
            for size in sizes:
                save_jpeg(img, cache / media_path(item.content_hash, size), size)
            return item, None
        except (ImageError, OSError) as exc:
            return item, str(exc)

    failed: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="media") as pool:
        for item, error in pool.map(make, todo):
            if error:
                failed[item.id] = error
            if progress:
                progress(1)
    return len(todo) - len(failed), failed


def _names_in(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except FileNotFoundError:
        return []
