"""``archive-sim fetch``: read the source, download what changed, record what exists.

Input: the source (a local folder, a JSON API, IIIF or a CSV) and the state of the
last run. Output: the catalog in the state store, each item with a local image
file, its content hash and displayed size. Remote images go to ``<state>/images/``
(conditional requests: an unchanged image is not downloaded again). Files that are
not usable images and downloads that failed are recorded with their reason and
tried again next run; an item whose download fails keeps its previous image.
If the source lists far fewer items than the catalog holds, nothing is changed
and the run stops, unless ``--allow-shrink``. An interrupted run (Ctrl-C, SIGTERM)
ends its downloads at once and records what finished before it stops: the other
items keep what the last run recorded, and nothing is deleted.
"""

from __future__ import annotations

import datetime
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from ..state_store import CatalogDiff, CatalogItem, Download, Item, ItemSource, StateStore
from ..config import Settings
from ..download import HttpClient, is_remote, remove_partial_files, remove_unreferenced
from ..fsutil import sha256_file
from ..imaging import ImageError, image_size
from ..progress import Report
from ..sources import SourceError, open_source
from . import RunOptions, add_allow_shrink, stage_command


class FetchFailedError(RuntimeError):
    """The source could not be read, or its answer is not trusted; nothing was changed."""


class _Interrupted(Exception):
    """Ctrl-C or SIGTERM while files were read or images downloaded: the records finished so far."""

    def __init__(self, records: list[CatalogItem], cause: BaseException | None = None) -> None:
        super().__init__("interrupted")
        self.records = records
        self.cause = cause


def shrink_problem(before: set[str], after: set[str], max_share: float) -> str | None:
    """Why a source that went from ``before`` to ``after`` ids must not be trusted, or None."""
    if not before:
        return None
    if not after:
        return f"the source lists no items at all (the catalog has {len(before)})"
    gone = len(before - after)
    share = gone / len(before)
    if share > max_share:
        return (f"the source lost {gone} of the {len(before)} items in the catalog ({share:.0%}, more than "
                f"fetch.max_shrink {max_share:.0%})")
    return None


def source_urls(source) -> list[str]:
    """The URLs that name the source's own origin: the listing, a base URL, an image URL template's host.

    Only these (and fetch.allowed_origins) may be on a loopback or private address.
    """
    urls = [getattr(source, name, None) for name in ("url", "base_url")]
    template = getattr(source, "image_url", None)
    if template and urlsplit(template).scheme and "{" not in urlsplit(template).netloc:
        urls.append(template)
    return [url for url in urls if isinstance(url, str) and urlsplit(url).scheme in ("http", "https")]


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


def _local_records(items: list[Item], store: StateStore, workers: int, report: Report,
                   problems: dict[str, str]) -> list[CatalogItem]:
    records: list[CatalogItem] = []
    rows = []
    # SQLite connections stay on this thread: workers get the fingerprints up front.
    known = {}
    for item in items:
        try:
            st = os.stat(item.image)
        except OSError:
            continue
        hit = store.known_file(item.image, st.st_size, st.st_mtime_ns)
        if hit:
            known[(item.image, st.st_size, st.st_mtime_ns)] = hit

    def lookup(path: str, size: int, mtime: int):
        return known.get((path, size, mtime))

    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        with report.progress(len(items), "fetch", unit="file") as advance:
            for item, record, row, error in pool.map(lambda it: _inspect(it, lookup), items):
                advance(1)
                if error:
                    problems[item.image] = error
                    continue
                records.append(record)
                if row:
                    rows.append(row)
    except KeyboardInterrupt as exc:
        pool.shutdown(wait=True, cancel_futures=True)
        store.remember_files(rows)
        raise _Interrupted(records, exc) from None
    pool.shutdown()
    store.remember_files(rows)
    return records


def _record(item: Item, image: str, content_hash: str, width: int, height: int) -> CatalogItem:
    return CatalogItem(item.id, item.category, item.slug, item.title, image, item.metadata, item.link,
                       content_hash, width, height)


def _remote_records(items: list[Item], previous: dict[str, CatalogItem], origins: dict[str, ItemSource],
                    store: StateStore, http: HttpClient, report: Report,
                    problems: dict[str, str]) -> tuple[list[CatalogItem], dict[str, int], set[str]]:
    """Download every remote image (conditionally); records, counts, and the URLs still in use."""
    by_url: dict[str, list[Item]] = {}
    for item in items:
        by_url.setdefault(item.image, []).append(item)
    known = store.downloads()
    records: list[CatalogItem] = []
    in_use: set[str] = set()
    failures: dict[str, tuple[str, str]] = {}
    kept: dict[str, bool] = {}
    counts = {"downloaded": 0, "not modified": 0, "download failed": 0}
    results = http.fetch_images((url, known.get(url)) for url in by_url)
    try:
        with report.progress(len(by_url), "download") as advance:
            for result in results:
                advance(1)
                if result.download is not None:
                    download: Download = result.download
                    if download != known.get(result.url):
                        store.remember_download(download)  # now: an interrupted run resumes from here
                    counts["downloaded" if result.status == "downloaded" else "not modified"] += 1
                    in_use.add(result.url)
                    records += [_record(it, download.path, download.content_hash, download.width, download.height)
                                for it in by_url[result.url]]
                    continue
                counts["download failed"] += 1
                for item in by_url[result.url]:
                    failures[result.url] = (item.id, result.reason)
                    old = previous.get(item.id)
                    old_url = origins[item.id].image_url if item.id in origins else None
                    if old is not None and Path(old.image).is_file():
                        # A failed download is not a deletion: keep showing the image we have.
                        records.append(_record(item, old.image, old.content_hash, old.width, old.height))
                        if old_url:
                            in_use.add(old_url)
                        kept[item.id] = True
    except KeyboardInterrupt as exc:
        results.close()  # ends the running downloads and waits for their threads
        raise _Interrupted(records, exc) from None
    history = store.set_download_failures(failures, datetime.date.today().isoformat())
    for url, (item_id, reason) in sorted(failures.items()):
        runs, since = history[url]
        note = "; the previous image is kept" if kept.get(item_id) else ""
        streak = f" (failing since {since}, {runs} runs)" if runs > 1 else ""
        problems[f"{item_id} <{url}>"] = f"{reason}{note}; tried again next run{streak}"
    return records, counts, in_use


def _keep_what_finished(finished: list[CatalogItem], listed: list[Item], held: list[CatalogItem],
                        previous: dict[str, CatalogItem], origins: dict[str, ItemSource], store: StateStore) -> None:
    """Record the items done before an interrupt; every other listed item keeps its catalog entry.

    Nothing is removed: an interrupted run cannot tell what left the source from what it did not reach.
    """
    done = {r.id for r in finished}
    records = list(finished) + [it for it in held if it.id not in done]
    kept = {r.id for r in records}
    records += [previous[item_id] for item_id in previous if item_id not in kept]
    store.replace_items(records)
    sources = dict(origins)
    sources.update({it.id: ItemSource(it.record, it.image if is_remote(it.image) else None, it.image_name)
                    for it in listed if it.id in done})
    recorded = {r.id for r in records}
    store.replace_item_sources({i: s for i, s in sources.items() if i in recorded})


def run(settings: Settings, store: StateStore, report: Report, options: RunOptions = RunOptions()) -> CatalogDiff:
    with report.stage("fetch") as stage:
        images_dir = settings.state_dir / "images"
        with HttpClient(settings.fetch, images_dir, trusted=source_urls(settings.source)) as http:
            try:
                scan = open_source(settings.source, http, settings.site.language, settings.plugins.sources).scan()
            except SourceError as exc:
                stage.note = "stopped: the source could not be read"
                raise FetchFailedError(str(exc)) from None
            problems = dict(scan.problems)
            previous = {it.id: it for it in store.items()}
            origins = store.item_sources()
            listed = {it.id for it in scan.items}
            # Items of records that could not be read this time stay as they were.
            held = [it for item_id, it in previous.items() if item_id not in listed
                    and item_id in origins and origins[item_id].record in scan.unreachable]
            shrink = shrink_problem(set(previous), listed | {it.id for it in held}, settings.fetch.max_shrink)
            if shrink and not options.allow_shrink:
                stage.note = "stopped: the source shrank"
                raise FetchFailedError(f"{shrink}; nothing was changed. Check the source; if the items really "
                                       f"are gone, run again with --allow-shrink")
            remote = [it for it in scan.items if is_remote(it.image)]
            local = [it for it in scan.items if not is_remote(it.image)]
            if remote and not (settings.fetch.contact or "").strip():
                stage.note = "stopped: no contact"
                raise FetchFailedError("fetch.contact is not set: name an e-mail address or URL in config.yaml "
                                       "before downloading from an archive (it is sent in the User-Agent)")
            remove_partial_files(images_dir)
            counts: dict[str, int] = {}
            in_use: set[str] = set()
            records: list[CatalogItem] = []
            try:
                records = _local_records(local, store, settings.model.workers, report, problems)
                if remote:
                    fetched, counts, in_use = _remote_records(remote, previous, origins, store, http, report,
                                                              problems)
                    records += fetched
            except _Interrupted as stop:
                finished = records + stop.records  # records: the local ones, when the downloads were interrupted
                _keep_what_finished(finished, scan.items, held, previous, origins, store)
                stage.note = (f"interrupted: {len(finished)} items recorded, the other "
                              f"{len(scan.items) - len(finished)} keep what the last run recorded")
                raise stop.cause or KeyboardInterrupt() from None
            for it in held:
                if origins[it.id].image_url:
                    in_use.add(origins[it.id].image_url)  # type: ignore[arg-type]
            records += held
            traffic = http.traffic
        diff = store.replace_items(records)
        sources = {it.id: ItemSource(it.record, it.image if is_remote(it.image) else None, it.image_name)
                   for it in scan.items}
        sources.update({it.id: origins[it.id] for it in held})
        kept_ids = {r.id for r in records}
        store.replace_item_sources({i: s for i, s in sources.items() if i in kept_ids})
        # Only after the catalog no longer points at them: files of images that left the source.
        store.forget_downloads(in_use)
        remove_unreferenced(images_dir, {d.path for d in store.downloads().values()})
        store.set_problems("fetch", problems)
        for subject, reason in problems.items():
            report.problem(subject, reason)
        report.counts.update(items=len(records), new=len(diff.new), changed=len(diff.changed),
                             removed=len(diff.removed))
        note = (f"{len(records)} items ({len(diff.new)} new, {len(diff.changed)} changed, "
                f"{len(diff.removed)} removed), {len(problems)} skipped")
        if remote:
            report.counts.update(counts)
            report.counts["bytes downloaded"] = traffic.image_bytes
            note += (f"; {counts['downloaded']} images downloaded ({traffic.image_bytes / 1e6:.1f} MB), "
                     f"{counts['not modified']} not modified, {counts['download failed']} failed, "
                     f"{traffic.requests} requests")
        stage.note = note
    return diff


COMMAND = stage_command(
    "fetch", run, options=(add_allow_shrink,),
    help="Read the collection from its source and record every item and image.",
    description="""Read the collection from its source (source: in the settings) and record every
item, downloading the images of a remote source into the state folder.

A record or image that cannot be read is reported and skipped; a source that lists
no items, or lost more than fetch.max_shrink of them, stops the run and changes
nothing, unless --allow-shrink is given.""")
