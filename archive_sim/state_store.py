"""Item records and the state store: what exists, what changed, what was computed.

Input: items from a source and results from later stages. Output: one SQLite file
(``<state_dir>/state.sqlite``) holding the catalog, a fingerprint cache of image
files, vectors keyed by (content hash, model id), neighbour lists, map points and
the problems each stage met. Each write is one transaction, so an interrupted stage
leaves the previous state, never half of a new one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .slugs import slugify

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,
    category TEXT NOT NULL,
    slug TEXT NOT NULL,
    title TEXT NOT NULL,
    image TEXT NOT NULL,
    metadata TEXT NOT NULL,
    link TEXT,
    content_hash TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS vectors (
    content_hash TEXT NOT NULL,
    model TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (content_hash, model)
);
CREATE TABLE IF NOT EXISTS neighbors (
    item_id TEXT NOT NULL,
    model TEXT NOT NULL,
    neighbors TEXT NOT NULL,
    PRIMARY KEY (item_id, model)
);
CREATE TABLE IF NOT EXISTS map_points (
    scope TEXT NOT NULL,
    item_id TEXT NOT NULL,
    x REAL NOT NULL,
    y REAL NOT NULL,
    PRIMARY KEY (scope, item_id)
);

CREATE TABLE IF NOT EXISTS problems (
    stage TEXT NOT NULL,
    subject TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (stage, subject)
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS phashes (
    content_hash TEXT PRIMARY KEY,
    phash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS local_matches (
    hash_a TEXT NOT NULL,
    hash_b TEXT NOT NULL,
    params TEXT NOT NULL,
    matches INTEGER NOT NULL,
    PRIMARY KEY (hash_a, hash_b, params)
);
CREATE TABLE IF NOT EXISTS reuse_groups (
    model TEXT PRIMARY KEY,
    groups TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS calibrations (
    model TEXT NOT NULL,
    category TEXT NOT NULL,
    calibration TEXT NOT NULL,
    PRIMARY KEY (model, category)
);
CREATE TABLE IF NOT EXISTS downloads (
    url TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    content_hash TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS download_failures (
    url TEXT PRIMARY KEY,
    item_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    runs INTEGER NOT NULL,
    since TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS item_sources (
    item_id TEXT PRIMARY KEY,
    record TEXT,
    image_url TEXT,
    image_name TEXT
);
"""
# The live site's manifest and the spare's (the site that the last publish replaced).
_MANIFEST_TABLE = """CREATE TABLE IF NOT EXISTS {name} (
    path TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    key TEXT NOT NULL DEFAULT ''
);
"""
SCHEMA += _MANIFEST_TABLE.format(name="site_files") + _MANIFEST_TABLE.format(name="spare_files")
# Each map point's cell in the map's thumbnail atlases (``site.atlas.assign_cells``),
# and the picture drawn there (content hash, size; '' where not known).
_ATLAS_CELLS_TABLE = """CREATE TABLE IF NOT EXISTS atlas_cells (
    scope TEXT NOT NULL,
    item_id TEXT NOT NULL,
    cell INTEGER NOT NULL,
    content_hash TEXT NOT NULL DEFAULT '',
    width INTEGER NOT NULL DEFAULT 0,
    height INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, item_id)
);
"""
SCHEMA += _ATLAS_CELLS_TABLE
# Each search index of the live site (``site.search``): its folder, the key of its files,
# what it was made with, and its records as JSON: [[item id, record digest, page id], ...].
SCHEMA += """CREATE TABLE IF NOT EXISTS search_parts (
    folder TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    basis TEXT NOT NULL,
    pages TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Item:
    """One record as a source describes it, before its image is looked at."""

    id: str
    category: str
    title: str
    image: str  # a local path (or, for remote sources, a URL)
    metadata: dict[str, str] = field(default_factory=dict)
    link: str | None = None
    record: str | None = None      # the source record it came from (e.g. a IIIF manifest URL)
    image_name: str | None = None  # the archive's own name for the image (e.g. Arosenius "images.0.image")

    @property
    def slug(self) -> str:
        return slugify(self.id)


# CatalogItem, Neighbor and SiteFile are named tuples, not frozen dataclasses: a
# build at 100,000 items makes millions of them, and a tuple is made (and pickled
# to a render worker) four times faster.
class CatalogItem(NamedTuple):
    """An item whose image has been read: what every later stage works on."""

    id: str
    category: str
    slug: str
    title: str
    image: str
    metadata: dict[str, str]
    link: str | None
    content_hash: str
    width: int
    height: int


class Neighbor(NamedTuple):
    id: str
    similarity: float
    duplicate: bool      # an exact copy: the same file, or similarity at the duplicate threshold
    copy: bool = False   # the same picture: an exact copy, or near by perceptual hash or similarity
    matched: bool = False  # the same composition, confirmed by local evidence (local_matching.py)
    matches: int = 0       # keypoint matches that agree on one geometry (0: none, or not checked)


def neighbors_text(neighbors: Sequence[Neighbor]) -> str:
    """A neighbour list as the store keeps it."""
    return json.dumps([[n.id, n.similarity, n.duplicate, n.copy, n.matched, n.matches] for n in neighbors])


def parse_neighbors(text: str) -> list[Neighbor]:
    # Lists stored before copies were marked have three fields (no copy mark), before
    # re-ranking four (no local matches).
    return [Neighbor(n[0], n[1], n[2], bool(n[3]) if len(n) > 3 else n[2],
                     bool(n[4]) if len(n) > 4 else False, int(n[5]) if len(n) > 5 else 0)
            for n in json.loads(text)]


class NeighborLists(Mapping[str, list[Neighbor]]):
    """Neighbour lists by item id, held as the store keeps them (``neighbors_text``) and
    each parsed when first read: a rebuild's render reads every list to key the item
    pages, but shows only those that changed."""

    def __init__(self, texts: dict[str, str]) -> None:
        self._texts = texts
        self._parsed: dict[str, list[Neighbor]] = {}

    @classmethod
    def of(cls, lists: Mapping[str, Sequence[Neighbor]]) -> NeighborLists:
        return cls({item_id: neighbors_text(ns) for item_id, ns in lists.items()})

    def text(self, item_id: str) -> str:
        """The list of ``item_id`` as stored; that of no neighbour when it has none."""
        return self._texts.get(item_id, "[]")

    def __getitem__(self, item_id: str) -> list[Neighbor]:
        parsed = self._parsed.get(item_id)
        if parsed is None:
            parsed = self._parsed[item_id] = parse_neighbors(self._texts[item_id])
        return parsed

    def __iter__(self) -> Iterator[str]:
        return iter(self._texts)

    def __len__(self) -> int:
        return len(self._texts)


@dataclass(frozen=True)
class AtlasCells:
    """The cells of one map's points in its atlases, as the last render packed them:
    item id -> cell, the map layout they were packed for (``StateStore.map_layout``),
    how many points have been given a cell off the packing curve since, and the
    picture drawn in each cell (item id -> content hash, width, height). Ids no
    longer on the map are ghosts: their picture stays drawn in a cell no point shows."""

    cells: dict[str, int] = field(default_factory=dict)
    layout: str = ""
    off_curve: int = 0
    drawn: dict[str, tuple[str, int, int]] = field(default_factory=dict)


class SiteFile(NamedTuple):
    """A published file: its content hash, the stat that proves it is still that file,
    and the key of what it was made from (see ``site.output_tree``)."""

    sha256: str
    size: int
    mtime_ns: int
    inode: int
    key: str = ""


@dataclass(frozen=True)
class Download:
    """A remote image kept on disk, with the validators to ask whether it changed."""

    url: str
    path: str
    etag: str | None
    last_modified: str | None
    content_hash: str
    width: int
    height: int
    size: int


@dataclass(frozen=True)
class ItemSource:
    record: str | None
    image_url: str | None
    image_name: str | None


@dataclass(frozen=True)
class CatalogDiff:
    new: list[str]
    changed: list[str]
    removed: list[str]
    unchanged: int


class StateStore:
    """The state directory's SQLite database. Use as a context manager."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / "state.sqlite"
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._upgrade()
        self._db.executescript(SCHEMA)

    def _upgrade(self) -> None:
        """Bring a state store written by an earlier version up to ``SCHEMA``."""
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(map_points)")}
        if columns and "cell" in columns:
            # Atlas cells were a column of the map points; they are the render's now,
            # kept per map with the layout they were packed for (the current one).
            with self.transaction() as db:
                db.execute(_ATLAS_CELLS_TABLE)
                db.execute("INSERT OR REPLACE INTO atlas_cells (scope, item_id, cell) "
                           "SELECT scope, item_id, cell FROM map_points")
                db.execute("ALTER TABLE map_points DROP COLUMN cell")
                for key, value in list(db.execute("SELECT key, value FROM meta WHERE key LIKE 'cells:%'")):
                    # No layout had an id yet: the current one is "" (``map_layout``).
                    db.execute("INSERT OR REPLACE INTO meta VALUES (?,?)",
                               (f"atlas:{key[len('cells:'):]}", json.dumps({"layout": "", "off_curve": int(value)})))
                db.execute("DELETE FROM meta WHERE key LIKE 'cells:%'")
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(atlas_cells)")}
        if columns and "content_hash" not in columns:  # cells from before ghosts: pictures not known
            with self.transaction() as db:
                db.execute("ALTER TABLE atlas_cells ADD COLUMN content_hash TEXT NOT NULL DEFAULT ''")
                db.execute("ALTER TABLE atlas_cells ADD COLUMN width INTEGER NOT NULL DEFAULT 0")
                db.execute("ALTER TABLE atlas_cells ADD COLUMN height INTEGER NOT NULL DEFAULT 0")
        for table in ("site_files", "spare_files"):
            columns = {r[1] for r in self._db.execute(f"PRAGMA table_info({table})")}
            if columns and "key" not in columns:  # a manifest from before pages had keys
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN key TEXT NOT NULL DEFAULT ''")

    def _rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        return list(self._db.execute(sql, params))

    def _rows_in(self, sql: str, values: Sequence[str], params: tuple = ()) -> list[tuple]:
        """Rows of ``sql + " IN (...)"`` for ``values``, asked 500 at a time (SQLite limits
        the number of parameters of one statement)."""
        rows: list[tuple] = []
        for start in range(0, len(values), 500):
            chunk = list(values[start:start + 500])
            rows += self._db.execute(f"{sql} IN ({','.join('?' * len(chunk))})", (*params, *chunk))
        return rows

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "StateStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- catalog ---------------------------------------------------------------
    def items(self, category: str | None = None) -> list[CatalogItem]:
        sql = "SELECT id, category, slug, title, image, metadata, link, content_hash, width, height FROM items"
        rows = self._db.execute(sql + (" WHERE category = ?" if category else "") + " ORDER BY category, id",
                                (category,) if category else ())
        return [CatalogItem(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7], r[8], r[9]) for r in rows]

    def items_with_vectors(self, model: str) -> list[CatalogItem]:
        """The items that can be shown: those whose image has a vector for ``model``."""
        have = {r[0] for r in self._db.execute("SELECT content_hash FROM vectors WHERE model = ?", (model,))}
        return [it for it in self.items() if it.content_hash in have]

    def replace_items(self, items: Iterable[CatalogItem]) -> CatalogDiff:
        """Make the catalog exactly ``items``; report what is new, changed, removed."""
        items = list(items)
        old = {r[0]: r[1:] for r in self._db.execute(
            "SELECT id, category, title, image, metadata, link, content_hash FROM items")}
        new, changed, unchanged = [], [], 0
        for it in items:
            row = (it.category, it.title, it.image, json.dumps(it.metadata, sort_keys=True), it.link, it.content_hash)
            if it.id not in old:
                new.append(it.id)
            elif old[it.id] != row:
                changed.append(it.id)
            else:
                unchanged += 1
        removed = sorted(set(old) - {it.id for it in items})
        with self.transaction() as db:
            db.execute("DELETE FROM items")
            db.executemany(
                "INSERT INTO items VALUES (?,?,?,?,?,?,?,?,?,?)",
                [(it.id, it.category, it.slug, it.title, it.image, json.dumps(it.metadata, sort_keys=True),
                  it.link, it.content_hash, it.width, it.height) for it in items],
            )
            if removed:
                db.executemany("DELETE FROM neighbors WHERE item_id = ?", [(i,) for i in removed])
                db.executemany("DELETE FROM map_points WHERE item_id = ?", [(i,) for i in removed])
        return CatalogDiff(sorted(new), sorted(changed), removed, unchanged)

    # -- file fingerprints (so an unchanged file is not hashed or decoded again) --
    def known_file(self, path: str, size: int, mtime_ns: int) -> tuple[str, int, int] | None:
        row = self._db.execute(
            "SELECT content_hash, width, height FROM files WHERE path = ? AND size = ? AND mtime_ns = ?",
            (path, size, mtime_ns)).fetchone()
        return tuple(row) if row else None  # type: ignore[return-value]

    def remember_files(self, rows: Iterable[tuple[str, int, int, str, int, int]]) -> None:
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?)", rows)

    # -- vectors -------------------------------------------------------------------
    def missing_vectors(self, model: str, hashes: Iterable[str]) -> list[str]:
        have = {r[0] for r in self._db.execute("SELECT content_hash FROM vectors WHERE model = ?", (model,))}
        return sorted(set(hashes) - have)

    def put_vectors(self, model: str, rows: Iterable[tuple[str, np.ndarray]]) -> None:
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?,?,?)",
                [(h, model, np.asarray(v, dtype="<f4").tobytes()) for h, v in rows],
            )

    def vectors(self, model: str, hashes: list[str]) -> np.ndarray:
        """Vectors for ``hashes`` in that order, as one float32 matrix."""
        found: dict[str, bytes] = {}
        wanted = list(dict.fromkeys(hashes))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for h, blob in self._db.execute(
                    f"SELECT content_hash, vector FROM vectors WHERE model = ? AND content_hash IN ({marks})",
                    (model, *chunk)):
                found[h] = blob
        missing = [h for h in hashes if h not in found]
        if missing:
            raise KeyError(f"no {model} vector for {len(missing)} image(s), first {missing[0]}: run 'archive-sim embed'")
        if not hashes:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([np.frombuffer(found[h], dtype="<f4") for h in hashes])

    # -- neighbours ------------------------------------------------------------------
    def put_neighbors(self, model: str, lists: dict[str, list[Neighbor]]) -> None:
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO neighbors VALUES (?,?,?)",
                           [(item_id, model, neighbors_text(ns)) for item_id, ns in lists.items()])

    def neighbors(self, model: str, ids: Sequence[str] | None = None) -> dict[str, list[Neighbor]]:
        """Item id -> its neighbour list, for every item or for those of ``ids``."""
        return dict(self.neighbor_lists(model, ids))

    def neighbor_lists(self, model: str, ids: Sequence[str] | None = None) -> NeighborLists:
        """``neighbors``, each list parsed only when read."""
        sql = "SELECT item_id, neighbors FROM neighbors WHERE model = ?"
        rows = self._rows(sql, (model,)) if ids is None else self._rows_in(sql + " AND item_id", ids, (model,))
        return NeighborLists(dict(rows))

    # -- local matches (local_matching.py), by pair of image contents -------------------
    def put_local_matches(self, params: str, counts: dict[tuple[str, str], int]) -> None:
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO local_matches VALUES (?,?,?,?)",
                           [(a, b, params, n) for (a, b), n in counts.items()])

    def local_matches(self, params: str, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """The stored counts of those of ``pairs`` (each ordered as ``local_matching.pair_key``) checked before."""
        wanted = set(pairs)
        firsts = sorted({a for a, _ in wanted})
        rows = self._rows_in("SELECT hash_a, hash_b, matches FROM local_matches WHERE params = ? AND hash_a",
                             firsts, (params,))
        return {(a, b): n for a, b, n in rows if (a, b) in wanted}

    # -- perceptual hashes (copies.py), by image content ----------------------------------
    def put_phashes(self, rows: Iterable[tuple[str, int]]) -> None:
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO phashes VALUES (?,?)", [(h, f"{v:016x}") for h, v in rows])

    def phashes(self, hashes: Iterable[str]) -> dict[str, int]:
        """content hash -> 64-bit perceptual hash, for those of ``hashes`` that have one."""
        wanted = set(hashes)
        return {h: int(v, 16) for h, v in self._db.execute("SELECT content_hash, phash FROM phashes")
                if h in wanted}

    # -- groups of copies across the whole collection (copies.py) --------------------------
    def put_reuse_groups(self, model: str, groups: list[list[str]]) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO reuse_groups VALUES (?,?)", (model, json.dumps(groups)))

    def reuse_groups(self, model: str) -> list[list[str]]:
        row = self._db.execute("SELECT groups FROM reuse_groups WHERE model = ?", (model,)).fetchone()
        return json.loads(row[0]) if row else []

    # -- what "similar" means per category (calibration.py) ----------------------------------
    def put_calibration(self, model: str, category: str, calibration: dict | None) -> None:
        """The random-pair distribution of ``category`` (``Calibration.to_json``); none drops it."""
        with self.transaction() as db:
            if calibration is None:
                db.execute("DELETE FROM calibrations WHERE model = ? AND category = ?", (model, category))
            else:
                db.execute("INSERT OR REPLACE INTO calibrations VALUES (?,?,?)",
                           (model, category, json.dumps(calibration, sort_keys=True)))

    def calibrations(self, model: str) -> dict[str, dict]:
        """category -> its stored calibration, for ``model``."""
        return {c: json.loads(v) for c, v in self._db.execute(
            "SELECT category, calibration FROM calibrations WHERE model = ?", (model,))}

    # -- map points --------------------------------------------------------------------
    def put_map(self, scope: str, points: dict[str, tuple[float, float]], layout: str | None = None) -> None:
        """Replace a map's points: item id -> (x, y). ``layout``: the id of a new
        layout (the points moved); None when the points kept their places."""
        with self.transaction() as db:
            db.execute("DELETE FROM map_points WHERE scope = ?", (scope,))
            db.executemany("INSERT INTO map_points VALUES (?,?,?,?)",
                           [(scope, i, float(x), float(y)) for i, (x, y) in points.items()])
            if layout is not None:
                db.execute("INSERT OR REPLACE INTO meta VALUES (?,?)", (f"layout:{scope}", layout))

    def map_points(self, scope: str) -> dict[str, tuple[float, float]]:
        rows = self._db.execute("SELECT item_id, x, y FROM map_points WHERE scope = ?", (scope,))
        return {i: (x, y) for i, x, y in rows}

    def map_layout(self, scope: str) -> str:
        """The id of the layout the map's points are in: it changes when the map is
        laid out anew, not when points are added to it."""
        return self.get_meta(f"layout:{scope}") or ""

    def atlas_cells(self, scope: str) -> AtlasCells:
        """The atlas cells of a map's points as the last render recorded them."""
        meta = json.loads(self.get_meta(f"atlas:{scope}") or "{}")
        cells, drawn = {}, {}
        for item_id, cell, content_hash, width, height in self._db.execute(
                "SELECT item_id, cell, content_hash, width, height FROM atlas_cells WHERE scope = ?", (scope,)):
            cells[item_id] = cell
            if content_hash:
                drawn[item_id] = (content_hash, width, height)
        return AtlasCells(cells, meta.get("layout", ""), int(meta.get("off_curve", 0)), drawn)

    def replace_atlas_cells(self, maps: dict[str, AtlasCells | None]) -> None:
        """Record the atlas cells of every map the site shows (None: as recorded); those
        of other maps go."""
        with self.transaction() as db:
            shown = sorted(maps)
            marks = ",".join("?" * len(shown))
            db.execute(f"DELETE FROM atlas_cells WHERE scope NOT IN ({marks})", shown)
            db.execute(f"DELETE FROM meta WHERE key LIKE 'atlas:%' AND key NOT IN ({marks})",
                       [f"atlas:{scope}" for scope in shown])
            for scope, atlas in sorted(maps.items()):
                if atlas is None:
                    continue
                db.execute("DELETE FROM atlas_cells WHERE scope = ?", (scope,))
                db.executemany("INSERT INTO atlas_cells VALUES (?,?,?,?,?,?)",
                               [(scope, i, c, *atlas.drawn.get(i, ("", 0, 0))) for i, c in sorted(atlas.cells.items())])
                db.execute("INSERT OR REPLACE INTO meta VALUES (?,?)",
                           (f"atlas:{scope}", json.dumps({"layout": atlas.layout, "off_curve": atlas.off_curve})))

    def search_parts(self) -> list[tuple[str, str, str, dict[str, tuple[str, str]]]]:
        """The live site's search indexes as the last render recorded them: folder, key,
        basis, and item id -> (record digest, page id)."""
        return [(folder, key, basis, {i: (digest, page) for i, digest, page in json.loads(pages)})
                for folder, key, basis, pages in
                self._db.execute("SELECT folder, key, basis, pages FROM search_parts ORDER BY folder")]

    def replace_search_parts(self, parts: list[tuple[str, str, str, dict[str, tuple[str, str]]]]) -> None:
        """Record the search indexes of the site just published; an index whose folder
        and key are recorded already is not written again."""
        with self.transaction() as db:
            recorded = dict(db.execute("SELECT folder, key FROM search_parts"))
            folders = [part[0] for part in parts]
            db.execute(f"DELETE FROM search_parts WHERE folder NOT IN ({','.join('?' * len(folders))})", folders)
            for folder, key, basis, pages in parts:
                if recorded.get(folder) != key:
                    db.execute("INSERT OR REPLACE INTO search_parts VALUES (?,?,?,?)",
                               (folder, key, basis, json.dumps(sorted([i, *row] for i, row in pages.items()))))

    def map_scopes(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT DISTINCT scope FROM map_points ORDER BY scope")]

    def map_sizes(self) -> dict[str, int]:
        """Scope -> how many points its map has."""
        return dict(self._db.execute("SELECT scope, COUNT(*) FROM map_points GROUP BY scope"))

    def drop_map_scopes(self, keep: set[str]) -> None:
        with self.transaction() as db:
            for scope in set(self.map_scopes()) - keep:
                db.execute("DELETE FROM map_points WHERE scope = ?", (scope,))

    # -- problems ------------------------------------------------------------------------
    def set_problems(self, stage: str, problems: dict[str, str]) -> None:
        """Replace the recorded problems of ``stage`` (subject -> one-line reason)."""
        with self.transaction() as db:
            db.execute("DELETE FROM problems WHERE stage = ?", (stage,))
            db.executemany("INSERT INTO problems VALUES (?,?,?)", [(stage, s, r) for s, r in problems.items()])

    def add_problems(self, stage: str, problems: dict[str, str]) -> None:
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO problems VALUES (?,?,?)",
                           [(stage, s, r) for s, r in problems.items()])

    def problems(self, stage: str | None = None) -> dict[str, str]:
        sql = "SELECT subject, reason FROM problems" + (" WHERE stage = ?" if stage else "") + " ORDER BY subject"
        return dict(self._db.execute(sql, (stage,) if stage else ()).fetchall())

    # -- the published site: what each file holds, to rewrite only what changed ----------
    def site_manifest(self, paths: Sequence[str] | None = None) -> dict[str, "SiteFile"]:
        """The live site's files (all, or those of ``paths`` that it has) but its media
        (``site_media``)."""
        sql = "SELECT path, sha256, size, mtime_ns, inode, key FROM site_files"
        rows = self._rows(sql) if paths is None else self._rows_in(sql + " WHERE path", paths)
        return {r[0]: SiteFile(*r[1:]) for r in rows}

    def site_media(self) -> set[str]:
        """The live site's media files: thumbnails and atlases, each named by its content."""
        value = self.get_meta("site_media")
        return set(value.split("\n")) - {""} if value is not None else set()

    def replace_site_manifest(self, files: dict[str, "SiteFile"], site_id: str | None = None,
                              media: Iterable[str] = (), live: dict[str, "SiteFile"] | None = None) -> None:
        """Record the site just published: its ``files``, its ``media`` and ``site_id``
        (its marker's id). The manifest it replaces becomes the spare's (``publish``
        keeps the replaced site as the spare). ``live``: the manifest read for this
        build (``site_manifest()``); when ``files`` equal it, as after a build where
        nothing changed, its rows stay and serve as the spare's too."""
        unchanged = live is not None and files == live
        with self.transaction() as db:
            if not unchanged:
                # Renaming, not copying: at 100,000 items a manifest is 800,000 rows.
                # (Copying the live rows in SQLite and writing only the changed ones is no faster.)
                db.execute("DROP TABLE spare_files")
                db.execute("ALTER TABLE site_files RENAME TO spare_files")
                db.execute(_MANIFEST_TABLE.format(name="site_files"))
                # In key order: appending to the index is twice as fast as inserting into it.
                db.executemany("INSERT INTO site_files VALUES (?,?,?,?,?,?)",
                               [(path, *f) for path, f in sorted(files.items())])
            db.execute("DELETE FROM meta WHERE key IN ('spare_site_id', 'site_media', 'spare_is_live')")
            db.execute("UPDATE meta SET key = 'spare_site_id' WHERE key = 'site_id'")
            if unchanged:
                db.execute("INSERT INTO meta VALUES ('spare_is_live', '1')")
            if site_id is not None:
                db.execute("INSERT INTO meta VALUES ('site_id', ?)", (site_id,))
            # Media files need no row each: their names say their content, and the
            # build lists the media folder itself. One text, not 400,000 rows.
            db.execute("INSERT INTO meta VALUES ('site_media', ?)", ("\n".join(sorted(media)),))

    def spare_files(self, site_id: str | None) -> set[str] | None:
        """The files of the spare site if ``site_id`` is its id, else None (not known)."""
        if site_id is None or self.get_meta("spare_site_id") != site_id:
            return None
        table = "site_files" if self.get_meta("spare_is_live") == "1" else "spare_files"
        return {r[0] for r in self._db.execute(f"SELECT path FROM {table}")}

    # -- downloads of remote images (validators for conditional requests) ----------------
    def downloads(self) -> dict[str, Download]:
        return {r[0]: Download(*r) for r in self._db.execute(
            "SELECT url, path, etag, last_modified, content_hash, width, height, size FROM downloads")}

    def remember_download(self, d: Download) -> None:
        """Record one finished download (its own transaction, so an interrupted fetch keeps it)."""
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO downloads VALUES (?,?,?,?,?,?,?,?)",
                       (d.url, d.path, d.etag, d.last_modified, d.content_hash, d.width, d.height, d.size))

    def forget_downloads(self, keep: set[str]) -> list[str]:
        """Drop the records of URLs not in ``keep``; return their file paths (for the caller to delete)."""
        gone = [(url, path) for url, path in self._db.execute("SELECT url, path FROM downloads")
                if url not in keep]
        with self.transaction() as db:
            db.executemany("DELETE FROM downloads WHERE url = ?", [(url,) for url, _ in gone])
        return [path for _, path in gone]

    def set_download_failures(self, failures: dict[str, tuple[str, str]], today: str) -> dict[str, tuple[int, str]]:
        """Make the failure list exactly ``failures`` (url -> (item id, reason)).

        Returns url -> (runs failed in a row, since) so that the summary can say how
        long an image has been failing; a URL that succeeded is dropped from the list.
        """
        old = {r[0]: (r[1], r[2]) for r in self._db.execute("SELECT url, runs, since FROM download_failures")}
        rows, result = [], {}
        for url, (item_id, reason) in failures.items():
            runs, since = old.get(url, (0, today))
            rows.append((url, item_id, reason, runs + 1, since))
            result[url] = (runs + 1, since)
        with self.transaction() as db:
            db.execute("DELETE FROM download_failures")
            db.executemany("INSERT INTO download_failures VALUES (?,?,?,?,?)", rows)
        return result

    def download_failures(self) -> dict[str, tuple[str, str, int, str]]:
        """url -> (item id, reason, runs failed in a row, since)."""
        return {r[0]: tuple(r[1:]) for r in self._db.execute(  # type: ignore[misc]
            "SELECT url, item_id, reason, runs, since FROM download_failures ORDER BY url")}

    # -- where each item came from (record, image URL, the archive's image name) -----------
    def item_sources(self) -> dict[str, ItemSource]:
        return {r[0]: ItemSource(r[1], r[2], r[3]) for r in self._db.execute(
            "SELECT item_id, record, image_url, image_name FROM item_sources")}

    def replace_item_sources(self, sources: dict[str, ItemSource]) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM item_sources")
            db.executemany("INSERT INTO item_sources VALUES (?,?,?,?)",
                           [(i, s.record, s.image_url, s.image_name) for i, s in sources.items()])

    # -- meta --------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?,?)", (key, value))
