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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

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
CREATE TABLE IF NOT EXISTS site_files (
    path TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
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

    @property
    def slug(self) -> str:
        return slugify(self.id)


@dataclass(frozen=True)
class CatalogItem:
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


@dataclass(frozen=True)
class Neighbor:
    id: str
    similarity: float
    duplicate: bool


@dataclass(frozen=True)
class SiteFile:
    """A published file: its content hash, and the stat that proves it is still that file."""

    sha256: str
    size: int
    mtime_ns: int
    inode: int


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
        self._db.executescript(SCHEMA)

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
            db.executemany(
                "INSERT OR REPLACE INTO neighbors VALUES (?,?,?)",
                [(item_id, model, json.dumps([[n.id, n.similarity, n.duplicate] for n in ns]))
                 for item_id, ns in lists.items()],
            )

    def neighbors(self, model: str) -> dict[str, list[Neighbor]]:
        rows = self._db.execute("SELECT item_id, neighbors FROM neighbors WHERE model = ?", (model,))
        return {item_id: [Neighbor(n[0], n[1], n[2]) for n in json.loads(data)] for item_id, data in rows}

    # -- map points --------------------------------------------------------------------
    def put_map(self, scope: str, points: dict[str, tuple[float, float]]) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM map_points WHERE scope = ?", (scope,))
            db.executemany("INSERT INTO map_points VALUES (?,?,?,?)",
                           [(scope, i, float(x), float(y)) for i, (x, y) in points.items()])

    def map_points(self, scope: str) -> dict[str, tuple[float, float]]:
        rows = self._db.execute("SELECT item_id, x, y FROM map_points WHERE scope = ?", (scope,))
        return {i: (x, y) for i, x, y in rows}

    def map_scopes(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT DISTINCT scope FROM map_points ORDER BY scope")]

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
    def site_manifest(self) -> dict[str, "SiteFile"]:
        return {r[0]: SiteFile(*r[1:]) for r in self._db.execute(
            "SELECT path, sha256, size, mtime_ns, inode FROM site_files")}

    def replace_site_manifest(self, files: dict[str, "SiteFile"]) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM site_files")
            db.executemany("INSERT INTO site_files VALUES (?,?,?,?,?)",
                           [(path, f.sha256, f.size, f.mtime_ns, f.inode) for path, f in files.items()])

    # -- meta --------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?,?)", (key, value))
