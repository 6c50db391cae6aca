"""The site's search index: one Pagefind record per item, made from the site model.

Input: the site model, the site's language and the output tree.
Output: one Pagefind bundle per category under ``pagefind/<category>/`` in the tree
(a category of more than ``PART_RECORDS`` items: several, ``pagefind/<category>/<n>/``,
each item in one by a hash of its id): its index, one fragment per item and
Pagefind's own search UI files, so the search page works from any static host with
no other host contacted. The search page merges the bundles, each labelled with its
category (the category filter). Each record holds an item's title and every metadata
value (creator, date, description, ...) and its thumbnail. Records come from the
model, not from the rendered pages, so a theme's templates cannot lose what is
searchable.

The index is made after the pages, not beside them in a thread of the render: its
Python work would take the interpreter from the pages rendered in the same process.

The hash of a bundle's records and of Pagefind's version is its index's key: when
the live index was made from the same key, its files are linked from the live site
and Pagefind is not run for it. Otherwise Pagefind indexes the bundle's records in
its own process (``pagefind --service``), hands back the files, and they are placed
in the tree, where a file whose content is the live copy's keeps it. Indexes without
filters also keep their bytes the same for the same records: Pagefind writes a
filter's values in no fixed order, so the category is each index's label on the
search page, not a filter in it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import shutil
import subprocess
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..state_store import SiteFile
from .model import SiteModel
from .output_tree import OutputTree

BUNDLE = "pagefind"                  # the bundle's folder in the site
SEARCH_PAGE = "search/index.html"
_FORMAT = "1"                         # bump when the records' shape changes


class SearchError(RuntimeError):
    pass


def pagefind_executable() -> Path | None:
    """Pagefind's binary: ``PAGEFIND_BINARY_PATH``, the ``pagefind_bin`` package, or one on
    the PATH (as the ``pagefind`` package finds it); None where there is none."""
    try:
        from pagefind.service import get_executable
    except ImportError:
        found = shutil.which("pagefind")
        return Path(found) if found else None
    path = get_executable()
    return path if path is not None and path.is_file() else None


MISSING = ("search: Pagefind's binary was not found (install the pagefind[bin] package, or set "
           "PAGEFIND_BINARY_PATH); the site is built without search")


# Records in one index at most. Pagefind's time per record grows with the records its
# index holds already: 0.4 ms at 10,000, 1.3 ms at 48,000 (one process, this machine).
PART_RECORDS = 10_000
SEND_BATCH = 500        # records sent to Pagefind in one write


def bundle_parts(items: int) -> int:
    """How many indexes a category of ``items`` items is split into."""
    return max(1, math.ceil(items / PART_RECORDS))


def bundle_path(category_slug: str, part: int = 0, parts: int = 1) -> str:
    """The folder of one index of a category (``part`` of ``parts``) in the site."""
    return f"{BUNDLE}/{category_slug}/" if parts == 1 else f"{BUNDLE}/{category_slug}/{part + 1}/"


def search_bundles(model: SiteModel) -> list[dict[str, str]]:
    """The indexes the search page merges, one or more per category: each one's folder
    and its category's label (the search page's category filter, Pagefind's ``mergeFilter``)."""
    return [{"path": bundle_path(c.slug, part, parts), "label": c.label}
            for c in model.categories for parts in [bundle_parts(c.count)] for part in range(parts)]


def search_records(model: SiteModel) -> dict[str, list[dict[str, Any]]]:
    """Pagefind's custom records of the site's items, by the folder of their index
    (``search_bundles``): ``url`` and thumbnail as paths from the site's root (the search
    page prefixes the way to it), ``content`` (title and every metadata value) and
    ``meta`` (title, thumbnail). An item's index among its category's is chosen by a
    hash of its id, so an item changed or added changes one index, not those after it."""
    records: dict[str, list[dict[str, Any]]] = {b["path"]: [] for b in search_bundles(model)}
    parts = {c.name: bundle_parts(c.count) for c in model.categories}
    for item in model.items:
        card = model.card(item)
        values = [value for _, value in sorted(item.metadata.items()) if value and value != item.title]
        count = parts[item.category]
        part = zlib.crc32(item.id.encode("utf-8")) % count if count > 1 else 0
        records[bundle_path(model.category_by_name[item.category].slug, part, count)].append({
            # Paths from the site's root: Pagefind's UI would resolve a relative image
            # against the url.
            "url": "/" + card["url"],
            "content": ". ".join([item.title, *values]),
            "meta": {"title": item.title, "image": "/" + card["thumb"]["src"], "image_alt": ""},
        })
    return records


def pagefind_version(executable: Path) -> str:
    """What ``pagefind --version`` says: part of the index's key."""
    try:
        done = subprocess.run([str(executable), "--version"], capture_output=True, text=True, timeout=60)
    except OSError as exc:
        raise SearchError(f"search: cannot run Pagefind ({executable}): {exc}") from None
    if done.returncode != 0:
        raise SearchError(f"search: {executable} --version failed: {done.stderr.strip() or done.returncode}")
    return done.stdout.strip()


def index_key(records: list[dict[str, Any]], language: str, version: str) -> str:
    """The key of an index of ``records``: every input that decides its files."""
    digest = hashlib.sha256(f"{_FORMAT}\0{version}\0{language}\0".encode("utf-8"))
    digest.update(json.dumps(records, ensure_ascii=False, sort_keys=True).encode("utf-8"))
    return digest.hexdigest()


@dataclass
class SearchResult:
    records: int = 0
    indexes: int = 0
    indexed: int = 0        # indexes made anew (the rest carried over from the live site)
    files: int = 0


def carry_over(tree: OutputTree, folder: str, key: str, indexes: dict[str, SiteFile]) -> int:
    """Link the live index in ``folder`` into the tree if every one of its files was made
    from ``key`` and is still the file the manifest describes; return how many (0: it was not).
    ``indexes``: the live manifest's rows under ``pagefind/``."""
    live = {rel: row for rel, row in indexes.items() if rel.startswith(folder)}
    if f"{folder}pagefind-entry.json" not in live or any(row.key != key for row in live.values()):
        return 0

    def stale() -> bytes:
        raise _Stale

    try:
        for rel in sorted(live):
            tree.put(rel, key, stale)
    except _Stale:
        return 0
    return len(live)


class _Stale(Exception):
    pass


def write_index(tree: OutputTree, model: SiteModel, language: str, executable: Path,
                processes: int = 1) -> SearchResult:
    """Place the site's search indexes in ``tree`` (``search_bundles``): each carried over
    from the live site when its key is unchanged, else made by Pagefind, with up to
    ``processes`` Pagefind processes at once."""
    version = pagefind_version(executable)
    result = SearchResult()
    stale: dict[str, tuple[str, list[dict[str, Any]]]] = {}   # folder -> key, records
    indexes = {rel: row for rel, row in tree.manifest.items() if rel.startswith(f"{BUNDLE}/")}
    for folder, records in search_records(model).items():
        key = index_key(records, language, version)
        result.records += len(records)
        result.indexes += 1
        carried = carry_over(tree, folder, key, indexes)
        if carried:
            result.files += carried
        else:
            stale[folder] = (key, records)

    def make(folder: str) -> dict[str, bytes]:
        with PagefindService(executable) as service:
            return service.index(stale[folder][1], language)

    with ThreadPoolExecutor(max(1, min(processes, len(stale) or 1))) as pool:
        for folder, files in zip(stale, pool.map(make, stale)):
            key = stale[folder][0]
            for name in sorted(files):
                data = files[name]
                tree.put(folder + name, key, lambda: data)
                result.files += 1
            result.indexed += 1
    return result


class PagefindService:
    """Pagefind's indexer as a process (``pagefind --service``), spoken to in its own
    protocol: messages are base64-encoded JSON, each ended by a comma.

    The ``pagefind`` package's client reads one response per tenth of a second, which
    at 100,000 records is hours; this one reads the responses on a thread as they come.
    """

    def __init__(self, executable: Path) -> None:
        self._executable = executable
        self._responses: dict[int, dict[str, Any]] = {}
        self._arrived = threading.Condition()
        self._next_id = 0
        self._closed = False

    def __enter__(self) -> PagefindService:
        try:
            self._process = subprocess.Popen([str(self._executable), "--service"], stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        except OSError as exc:
            raise SearchError(f"search: cannot run Pagefind ({self._executable}): {exc}") from None
        self._reader = threading.Thread(target=self._read, args=(self._process.stdout,), daemon=True,
                                        name="pagefind responses")
        self._reader.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process.stdin is not None:
            try:
                self._process.stdin.close()
            except OSError:
                pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._reader.join(timeout=10)

    def index(self, records: list[dict[str, Any]], language: str) -> dict[str, bytes]:
        """Index ``records`` in ``language``; return the bundle's files (path -> content)."""
        created = self._wait(self._send({"type": "NewIndex", "config": {"force_language": language}}))
        index_id = created["index_id"]
        # Records go ahead of their answers, a batch per write: Pagefind's service handles
        # one message after the other, in the order sent, so a page's number in the
        # index is its record's place in ``records`` all the same. Waiting for each
        # answer before sending the next cost more than Pagefind's work.
        sent: list[tuple[int, str]] = []
        for start in range(0, len(records), SEND_BATCH):
            sent += [(self._send({"type": "AddRecord", "index_id": index_id, "language": language, "sort": None,
                                  **record}, flush=False), record["url"])
                     for record in records[start:start + SEND_BATCH]]
            self._flush()
        for message_id, url in sent:
            self._wait(message_id, url)
        # The files come back in the answer (its WriteFiles answers before its files are
        # all written), to be placed in the output tree like every other file.
        done = self._wait(self._send({"type": "GetFiles", "index_id": index_id}))
        files = {}
        for file in done["files"]:
            name = file["path"].replace("\\", "/").lstrip("/")
            if name.startswith(f"{BUNDLE}/"):
                name = name[len(BUNDLE) + 1:]
            files[name] = base64.b64decode(file["content"])
        return files

    def _send(self, payload: dict[str, Any], flush: bool = True) -> int:
        self._next_id += 1
        message = {"message_id": self._next_id, "payload": payload}
        stdin = self._process.stdin
        assert stdin is not None
        try:
            stdin.write(base64.b64encode(json.dumps(message).encode("utf-8")) + b",")
        except BrokenPipeError:
            raise SearchError(f"search: Pagefind stopped (exit code {self._process.poll()})") from None
        if flush:
            self._flush()
        return self._next_id

    def _flush(self) -> None:
        try:
            self._process.stdin.flush()  # type: ignore[union-attr]
        except BrokenPipeError:
            raise SearchError(f"search: Pagefind stopped (exit code {self._process.poll()})") from None

    def _wait(self, message_id: int, subject: str = "") -> dict[str, Any]:
        with self._arrived:
            while message_id not in self._responses:
                if self._closed:
                    raise SearchError(f"search: Pagefind stopped (exit code {self._process.poll()}) "
                                      f"before answering{' about ' + subject if subject else ''}")
                self._arrived.wait()
            payload = self._responses.pop(message_id)
        if payload.get("type") == "Error":
            raise SearchError(f"search: Pagefind failed{' on ' + subject if subject else ''}: "
                              f"{payload.get('message')}")
        return payload

    def _read(self, stdout: IO[bytes] | None) -> None:
        assert stdout is not None
        pending = bytearray()  # an answer with the files can be hundreds of megabytes
        try:
            while chunk := stdout.read1(1 << 20):  # type: ignore[attr-defined]
                start = len(pending)
                pending += chunk
                if chunk.find(b",") < 0:
                    continue
                end = pending.rindex(b",", start)
                messages, pending = bytes(pending[:end]).split(b","), pending[end + 1:]
                decoded = [json.loads(base64.b64decode(m)) for m in messages if m]
                with self._arrived:
                    for response in decoded:
                        payload = response.get("payload") or {}
                        message_id = response.get("message_id")
                        if message_id is None and payload.get("original_message"):
                            message_id = json.loads(payload["original_message"]).get("message_id")
                        if message_id is not None:
                            self._responses[message_id] = payload
                    self._arrived.notify_all()
        finally:
            with self._arrived:
                self._closed = True
                self._arrived.notify_all()


def search_enabled(search_setting: bool) -> bool:
    """Whether the site gets search: the setting, and Pagefind at hand."""
    return search_setting and pagefind_executable() is not None

