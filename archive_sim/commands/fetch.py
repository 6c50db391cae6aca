"""``archive-sim fetch``: read the source and record what exists.

Input: the source (a folder per category for ``local``). Output: the catalog in the
state store, each item with its content hash and displayed size; files that are
not usable images are recorded as problems with their reason and left out.
An unchanged file (same path, size and mtime) is not hashed or decoded again.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..catalog import CatalogDiff, CatalogItem, Item, StateStore
from ..config import Settings
from ..fsutil import sha256_file
from ..imaging import ImageError, image_size
from ..report import Report
from . import RunOptions
from ..sources import open_source


def _inspect(item: Item, store_lookup) -> tuple[Item, CatalogItem | None, tuple | None, str | None]:
    path = Path(item.image)
    try:
        stat = path.stat()
    except OSError as exc:
        return item, None, None, f"cannot read: {exc.strerror}"
    known = store_lookup(str(path), stat.st_size, stat.st_mtime_ns)
    row = None
    if known is None:
        try:
            width, height = image_size(path)
            content_hash = sha256_file(path)
        except ImageError as exc:
            return item, None, None, str(exc)
        except OSError as exc:
            return item, None, None, f"cannot read: {exc}"
        row = (str(path), stat.st_size, stat.st_mtime_ns, content_hash, width, height)
    else:
        content_hash, width, height = known
    record = CatalogItem(item.id, item.category, item.slug, item.title, item.image, item.metadata, item.link,
                         content_hash, width, height)
    return item, record, row, None


def run(settings: Settings, store: StateStore, report: Report, options: RunOptions = RunOptions()) -> CatalogDiff:
    with report.stage("fetch") as stage:
        scan = open_source(settings.source).scan()
        problems = dict(scan.problems)
        records: list[CatalogItem] = []
        rows = []
        # SQLite connections stay on this thread: workers get the fingerprints up front.
        known = {}
        for item in scan.items:
            try:
                st = os.stat(item.image)
            except OSError:
                continue
            hit = store.known_file(item.image, st.st_size, st.st_mtime_ns)
            if hit:
                known[(item.image, st.st_size, st.st_mtime_ns)] = hit

        def lookup(path: str, size: int, mtime: int):
            return known.get((path, size, mtime))

        with report.progress(len(scan.items), "fetch", unit="file") as advance, \
                ThreadPoolExecutor(max_workers=settings.model.workers) as pool:
            for item, record, row, error in pool.map(lambda it: _inspect(it, lookup), scan.items):
                advance(1)
                if error:
                    problems[item.image] = error
                    continue
                records.append(record)
                if row:
                    rows.append(row)
        store.remember_files(rows)
        diff = store.replace_items(records)
        store.set_problems("fetch", problems)
        for subject, reason in problems.items():
            report.problem(subject, reason)
        report.counts.update(items=len(records), new=len(diff.new), changed=len(diff.changed),
                             removed=len(diff.removed))
        stage.note = (f"{len(records)} items ({len(diff.new)} new, {len(diff.changed)} changed, "
                      f"{len(diff.removed)} removed), {len(problems)} skipped")
    return diff
