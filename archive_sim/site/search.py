"""The site's search index: one Pagefind record per item, made from the site model.

Input: the site model, the site's language, the indexes the last build made (from the
state store) and the output tree.
Output: Pagefind bundles under ``pagefind/<category>/<n>/`` in the tree, each of at most
``PART_RECORDS`` items of one category: its index, one fragment per item and Pagefind's
own search UI files, so the search page works from any static host with no other host
contacted; and ``pagefind/pagefind.js``, the module the search page loads (Pagefind's,
leaving out hidden records and searching the indexes as one: ``static/search-indexes.js``).
The search page merges the bundles, each labelled with its category (the category
filter). Each record holds an item's title and every metadata value (creator, date,
description, ...) and its thumbnail. Records come from the model, not from the
rendered pages, so a theme's templates cannot lose what is searchable. What each index
holds (item, record digest, Pagefind's page id) goes back to the state store for the
next build.

Pagefind can neither add a record to an index nor take one out, so a rebuild keeps an
index whose records are still current, and new or changed items go to new small
indexes (``plan_search``); records of items gone or changed stay in a kept index, left
out of the results by the search page's module, until they pass ``HIDDEN_SHARE`` of it.
A kept index's files are linked from the live site, Pagefind not run for it. The rest
Pagefind indexes in its own process (``pagefind --service``), records sent in item id
order, so the same records give the same bytes; the files are placed in the tree,
where a file whose content is the live copy's keeps it. Indexes have no filters: Pagefind
writes a filter's values in no fixed order, so the category is each index's label on
the search page, not a filter in it.

The index is made after the pages, not beside them in a thread of the render: its
Python work would take the interpreter from the pages rendered in the same process.
"""

from __future__ import annotations

import base64
import hashlib
import json
import posixpath
import shutil
import subprocess
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple

from ..state_store import SiteFile
from .model import SiteModel
from .output_tree import OutputTree

BUNDLE = "pagefind"                  # the bundle's folder in the site
SEARCH_PAGE = "search/index.html"
_FORMAT = "2"                         # bump when the records' shape changes


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
# A kept index may hold records of items gone or changed since it was made, left out of
# the results by the search page, up to this share of its records; past it, it is made again.
HIDDEN_SHARE = 0.02
SEARCH_MODULE = f"{BUNDLE}/"         # the folder of the module the search page loads: Pagefind's, less the hidden
INDEXES_SCRIPT = "static/search-indexes.js"  # what that module makes of Pagefind's, from the site's root


class Record(NamedTuple):
    """What Pagefind's record of an item holds: the item page's and its thumbnail's paths
    from the site's root, the title, and ``content``: title and every metadata value."""

    url: str
    content: str
    title: str
    image: str

    def as_pagefind(self) -> dict[str, Any]:
        """The record as Pagefind's service takes it. Paths are from the site's root (the
        search page prefixes the way to it). The thumbnail's path follows the url's "#",
        and the search page makes it the result's image: Pagefind indexes the words of
        every meta value, and a thumbnail's name is a word no other item has (at 100,000
        items, two fifths of Pagefind's work, and index files that visitors download
        larger for words nobody searches)."""
        return {"url": f"{self.url}#{self.image}", "content": self.content, "meta": {"title": self.title}}

    def digest(self) -> str:
        return hashlib.sha256("\0".join(self).encode("utf-8")).hexdigest()[:32]


def item_records(model: SiteModel) -> dict[str, Record]:
    """Each item's search record, by item id."""
    records = {}
    for item in model.items:
        values = [value for _, value in sorted(item.metadata.items()) if value and value != item.title]
        records[item.id] = Record("/" + model.item_path(item), ". ".join([item.title, *values]), item.title,
                                  "/" + model.card_src(item))
    return records


class IndexedPart(NamedTuple):
    """A search index as it was made: its folder, the key of its files, what it was made
    with (``index_basis``), and its records: item id -> (record digest, Pagefind's page id)."""

    folder: str
    key: str
    basis: str
    pages: dict[str, tuple[str, str]]


@dataclass
class PlannedPart:
    """One index of the site: the items whose records it shows, and the live index it
    keeps (None: it is made anew from those records)."""

    folder: str
    label: str
    members: list[str]
    kept: IndexedPart | None = None


@dataclass
class SearchPlan:
    """Where each item's record is: ``parts`` in the search page's order, with ``records``
    and ``digests`` by item id, made with ``basis``."""

    parts: list[PlannedPart]
    records: dict[str, Record]
    digests: dict[str, str]
    basis: str

    @property
    def bundles(self) -> list[dict[str, str]]:
        """The indexes the search page merges: each one's folder and its category's label
        (the search page's category filter, Pagefind's ``mergeFilter``)."""
        return [{"path": part.folder, "label": part.label} for part in self.parts]

    def hidden(self) -> list[str]:
        """The page ids of kept records whose items are gone or changed."""
        hidden = []
        for part in self.parts:
            if part.kept is not None:
                shown = set(part.members)
                hidden += [page for item_id, (_, page) in part.kept.pages.items() if item_id not in shown]
        return sorted(hidden)

    def key_of(self, part: PlannedPart) -> str:
        if part.kept is not None:
            return part.kept.key
        digest = hashlib.sha256(f"{self.basis}\0".encode("utf-8"))
        for item_id in part.members:
            digest.update(f"{item_id}\0{self.digests[item_id]}\0".encode("utf-8"))
        return digest.hexdigest()


def index_basis(language: str, version: str) -> str:
    """What every index is made with besides its records."""
    return hashlib.sha256(f"{_FORMAT}\0{version}\0{language}".encode("utf-8")).hexdigest()[:32]


def _part_number(folder: str) -> int:
    return int(folder.rstrip("/").rsplit("/", 1)[1])


def plan_search(model: SiteModel, basis: str, previous: list[IndexedPart]) -> SearchPlan:
    """Place every item's record in an index of its category (``pagefind/<category>/<n>/``).

    An index made before keeps the records still current (same item, same record); it
    is kept as it is while the rest (items gone or changed) are at most ``HIDDEN_SHARE``
    of its records, else made again from the current ones. Records in no kept index
    (new and changed items) go to a new index; like a binary counter, a new index takes
    in every smaller index not full (smallest first) while it stays within
    ``PART_RECORDS``, so a week's new items are indexed with few others and a category
    keeps few indexes."""
    records = item_records(model)
    digests = {item_id: record.digest() for item_id, record in records.items()}
    ids_of: dict[str, list[str]] = {}
    for item in model.items:
        ids_of.setdefault(item.category, []).append(item.id)
    by_folder = {part.folder: part for part in previous if part.basis == basis}
    parts: list[PlannedPart] = []
    for category in model.categories:
        prefix = f"{BUNDLE}/{category.slug}/"
        mine: list[PlannedPart] = []
        placed: set[str] = set()
        for folder in sorted((f for f in by_folder if f.startswith(prefix) and f[len(prefix):-1].isdigit()),
                             key=_part_number):
            part = by_folder[folder]
            if len(part.pages) > PART_RECORDS:
                continue  # made with a larger PART_RECORDS: its items are placed anew
            # The record's url names the category: a digest still current is of this category.
            current = sorted(i for i, (digest, _) in part.pages.items() if digests.get(i) == digest and i not in placed)
            if not current:
                continue
            placed.update(current)
            kept = part if len(part.pages) - len(current) <= HIDDEN_SHARE * len(part.pages) else None
            mine.append(PlannedPart(folder, category.label, current, kept))
        unplaced = sorted(i for i in ids_of.get(category.name, []) if i not in placed)
        number = max((_part_number(p.folder) for p in mine), default=0)
        for start in range(0, len(unplaced), PART_RECORDS):
            number += 1
            new = PlannedPart(f"{prefix}{number}/", category.label, unplaced[start:start + PART_RECORDS])
            for other in sorted(mine, key=lambda p: (len(p.members), _part_number(p.folder))):
                if len(other.members) > len(new.members) or len(other.members) + len(new.members) > PART_RECORDS:
                    break  # too large, as is every one after it
                mine.remove(other)
                new = PlannedPart(min(new.folder, other.folder, key=_part_number), category.label,
                                  sorted(new.members + other.members))
            mine.append(new)
        parts += sorted(mine, key=lambda p: _part_number(p.folder))
    return SearchPlan(parts, records, digests, basis)


def pagefind_version(executable: Path) -> str:
    """What ``pagefind --version`` says: part of the index's key."""
    try:
        done = subprocess.run([str(executable), "--version"], capture_output=True, text=True, timeout=60)
    except OSError as exc:
        raise SearchError(f"search: cannot run Pagefind ({executable}): {exc}") from None
    if done.returncode != 0:
        raise SearchError(f"search: {executable} --version failed: {done.stderr.strip() or done.returncode}")
    return done.stdout.strip()


@dataclass
class SearchResult:
    records: int = 0
    indexes: int = 0
    indexed: int = 0        # indexes made anew (the rest carried over from the live site)
    files: int = 0
    hidden: int = 0         # records of kept indexes that the search page leaves out
    parts: list[IndexedPart] = field(default_factory=list)   # what the store keeps for the next build


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


def page_ids(files: dict[str, bytes]) -> dict[str, str]:
    """Each page's url (less the thumbnail's path after "#") -> its Pagefind page id (a
    result's ``id``), from an index's fragments: gzip-compressed ``pagefind_dcd`` and
    JSON whose first field is the url."""
    found = {}
    for name, data in files.items():
        if not (name.startswith("fragment/") and name.endswith(".pf_fragment")):
            continue
        # The url comes first: only the fragment's head is decompressed, and parsed whole
        # only where the url holds an escape (never a slug's) or runs past the head.
        head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, 4096)
        start = head.find(b'"url":"')
        end = head.find(b'"', start + 7) if start >= 0 else -1
        raw = head[start + 7:end]
        if end < 0 or b"\\" in raw:
            url = json.loads(zlib.decompress(data, 16 + zlib.MAX_WBITS)[len(b"pagefind_dcd"):])["url"]
        else:
            url = raw.decode("utf-8")
        found[url.partition("#")[0]] = name[len("fragment/"):-len(".pf_fragment")]  # less the thumbnail
    return found


def wrapper_module(primary: str, hidden: list[str]) -> str:
    """The module the search page gives Pagefind's UI as its bundle: Pagefind's own (that
    of the index ``primary``), with the site's indexes searched as one and the pages
    ``hidden`` left out (``static/search-indexes.js``)."""
    target = json.dumps("./" + primary[len(BUNDLE) + 1:] + "pagefind.js")
    return (
        "// Pagefind's search module, with the site's indexes searched as one and the records\n"
        "// of items gone or changed since their index was made left out: static/search-indexes.js.\n"
        f"import * as pagefind from {target};\n"
        f"import {{ searchIndexes }} from {json.dumps(posixpath.relpath(INDEXES_SCRIPT, SEARCH_MODULE))};\n"
        f"export * from {target};\n"
        f"const site = searchIndexes(pagefind, new Set({json.dumps(hidden)}));\n"
        "export const options = site.options, mergeIndex = site.mergeIndex, filters = site.filters,\n"
        "  search = site.search, debouncedSearch = site.debouncedSearch;\n")


def write_index(tree: OutputTree, plan: SearchPlan, language: str, executable: Path,
                processes: int = 1) -> SearchResult:
    """Place the site's search indexes of ``plan`` in ``tree``: each kept one linked from
    the live site (made anew when its files are not there as made: its ``kept`` is
    cleared in ``plan``, so that the search module hides none of it), the rest made by
    Pagefind, with up to ``processes`` Pagefind processes at once; and the module the
    search page loads (``pagefind.js`` in ``SEARCH_MODULE``)."""
    result = SearchResult(records=len(plan.records), indexes=len(plan.parts))
    indexes = {rel: row for rel, row in tree.manifest.items() if rel.startswith(f"{BUNDLE}/")}
    made: list[PlannedPart] = []
    for part in plan.parts:
        carried = carry_over(tree, part.folder, part.kept.key, indexes) if part.kept is not None else 0
        if carried:
            result.files += carried
            result.parts.append(part.kept)
        else:
            part.kept = None
            made.append(part)

    def make(part: PlannedPart) -> tuple[dict[str, bytes], dict[str, str]]:
        with PagefindService(executable) as service:
            files = service.index([plan.records[i].as_pagefind() for i in part.members], language)
        return files, page_ids(files)  # here: while the files of another index are written

    # Largest first, so that no large index is left to run alone at the end.
    made.sort(key=lambda part: -len(part.members))
    with ThreadPoolExecutor(max(1, min(processes, len(made) or 1))) as pool:
        for part, (files, pages) in zip(made, pool.map(make, made)):
            key = plan.key_of(part)
            for name in sorted(files):
                data = files[name]
                tree.put(part.folder + name, key, lambda: data)
                result.files += 1
            result.parts.append(IndexedPart(part.folder, key, plan.basis,
                                            {i: (plan.digests[i], pages[plan.records[i].url])
                                             for i in part.members}))
            result.indexed += 1
    result.parts.sort(key=lambda p: p.folder)
    hidden = plan.hidden()
    result.hidden = len(hidden)
    if plan.parts:
        tree.put_data(f"{SEARCH_MODULE}pagefind.js", wrapper_module(plan.parts[0].folder, hidden))
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
        if sent:
            self._arrival(sent[-1][0])  # answered in order: the others are in, to be checked
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

    def _arrival(self, message_id: int, subject: str = "") -> None:
        """Wait until the answer to ``message_id`` has come."""
        with self._arrived:
            while message_id not in self._responses:
                if self._closed:
                    raise SearchError(f"search: Pagefind stopped (exit code {self._process.poll()}) "
                                      f"before answering{' about ' + subject if subject else ''}")
                self._arrived.wait()

    def _wait(self, message_id: int, subject: str = "") -> dict[str, Any]:
        self._arrival(message_id, subject)
        with self._arrived:
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
                if chunk.find(b",") >= 0:
                    end = pending.rindex(b",", start)
                    messages, pending = bytes(pending[:end]).split(b","), pending[end + 1:]
                    self._deliver([json.loads(base64.b64decode(m)) for m in messages if m])
                if len(chunk) < 16384:
                    # Pagefind answers a record in about half a millisecond: a few
                    # milliseconds before the next read gather a dozen answers into it,
                    # where reading each as it came cost half of this process's work on the index.
                    time.sleep(0.005)
        finally:
            with self._arrived:
                self._closed = True
                self._arrived.notify_all()

    def _deliver(self, responses: list[dict[str, Any]]) -> None:
        """Hand the answers read to whoever waits for them, by message id."""
        with self._arrived:
            for response in responses:
                payload = response.get("payload") or {}
                message_id = response.get("message_id")
                if message_id is None and payload.get("original_message"):
                    message_id = json.loads(payload["original_message"]).get("message_id")
                if message_id is not None:
                    self._responses[message_id] = payload
            self._arrived.notify_all()


def search_enabled(search_setting: bool) -> bool:
    """Whether the site gets search: the setting, and Pagefind at hand."""
    return search_setting and pagefind_executable() is not None

