"""A collection on disk: one subfolder per category, one image file per item.

Input: a folder (``<root>/<category>/**/<file>``) and an optional metadata CSV with
columns ``id,title,date,creator,description`` (more columns are kept as metadata).
Output: items whose id is the file stem and whose title comes from the CSV or,
failing that, from the file name. Hidden files are ignored; every other file is
offered, and the fetch stage reports those that turn out not to be images. A
symbolic link (a file or a folder) that leads out of the collection folder is
skipped with a reason unless ``follow_symlinks``; a link loop is reported.
"""

from __future__ import annotations

import csv
import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from ..plugins import Plugin
from ..settings_base import Section
from ..state_store import Item
from . import SourceContext, SourceScan

METADATA_FIELDS = ("title", "date", "creator", "description")


def read_metadata_csv(path: Path) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Rows of the metadata CSV by id, and problems met (subject -> reason)."""
    rows: dict[str, dict[str, str]] = {}
    problems: dict[str, str] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or "id" not in reader.fieldnames:
                problems[str(path)] = "metadata CSV has no 'id' column; ignored"
                return rows, problems
            for line, row in enumerate(reader, start=2):
                item_id = (row.get("id") or "").strip()
                if not item_id:
                    problems[f"{path}:{line}"] = "row without an id; ignored"
                    continue
                if item_id in rows:
                    problems[f"{path}:{line}"] = f"id {item_id!r} appears twice; the first row is kept"
                    continue
                rows[item_id] = {k.strip(): (v or "").strip() for k, v in row.items()
                                 if k and k != "id" and v and v.strip()}
    except FileNotFoundError:
        problems[str(path)] = "metadata CSV not found; titles come from file names"
    except (UnicodeDecodeError, csv.Error) as exc:
        problems[str(path)] = f"metadata CSV unreadable ({exc}); titles come from file names"
    return rows, problems


def title_from_stem(stem: str) -> str:
    return " ".join(stem.replace("_", " ").split()) or stem


class LocalSourceSettings(Section):
    type: Literal["local"] = Field("local", description="A folder on disk: one subfolder per category.")
    path: Path = Field(Path("collection"), description="The collection folder (relative to the config file).")
    metadata: Path | None = Field(
        None, description="A CSV with an `id` column (the file stem) and `title`, `date`, `creator`, "
                          "`description`; other columns are kept as metadata too.")
    categories: list[str] | None = Field(
        None, description="The subfolders to include; leave it out for every subfolder.")
    follow_symlinks: bool = Field(
        False, description="Follow symbolic links that lead out of the collection folder "
                           "(default: skip them, naming each).")

    @field_validator("categories")
    @classmethod
    def _non_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("an empty list would select nothing; leave it out for all folders")
        return value


def inside(path: Path, folder: Path) -> bool:
    """Is ``path`` (resolved) within ``folder`` (resolved)?"""
    return path == folder or folder in path.parents


def link_problem(path: Path, root: Path, follow: bool) -> str | None:
    """Why the link ``path`` is not followed (it loops, is broken or leaves ``root``), or None."""
    try:
        target = path.resolve(strict=True)
    except RuntimeError:  # Python 3.11 reports a loop so
        return "symbolic link loop; skipped"
    except OSError as exc:
        return ("symbolic link loop; skipped" if exc.errno == errno.ELOOP else
                f"broken symbolic link (to {os.readlink(path)}); skipped")
    if not follow and not inside(target, root):
        return (f"symbolic link to {target}, outside the collection folder; skipped "
                f"(source.follow_symlinks: true follows it)")
    return None


def walk_files(folder: Path, root: Path, follow: bool, problems: dict[str, str],
               seen: frozenset[Path] = frozenset()) -> Iterator[Path]:
    """Files under ``folder`` in name order, hidden ones left out, links checked by ``link_problem``.

    ``seen`` are the real folders above this one: one met again is a loop.
    """
    real = folder.resolve()
    if real in seen:
        problems[str(folder)] = f"symbolic link loop (back to {real}); skipped"
        return
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        problems[str(folder)] = f"cannot read the folder: {exc.strerror}; skipped"
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        if entry.is_symlink():
            problem = link_problem(path, root, follow)
            if problem:
                problems[str(path)] = problem
                continue
        if entry.is_dir():
            yield from walk_files(path, root, follow, problems, seen | {real})
        elif entry.is_file():
            yield path


class LocalFolderSource:
    def __init__(self, settings: LocalSourceSettings, context: SourceContext | None = None) -> None:
        self.root = settings.path
        self.metadata = settings.metadata
        self.categories = settings.categories
        self.follow_symlinks = settings.follow_symlinks

    def scan(self) -> SourceScan:
        scan = SourceScan()
        if not self.root.is_dir():
            raise FileNotFoundError(f"source.path = {str(self.root)!r}: not a folder")
        metadata, scan.problems = read_metadata_csv(self.metadata) if self.metadata else ({}, {})
        root = self.root.resolve()
        folders = []
        for path in sorted(self.root.iterdir()):
            if path.name.startswith("."):
                continue
            problem = link_problem(path, root, self.follow_symlinks) if path.is_symlink() else None
            if problem:
                scan.problems[str(path)] = problem
            elif path.is_dir():
                folders.append(path)
        if self.categories is not None:
            present = {p.name for p in folders}
            for name in self.categories:
                if name not in present:
                    scan.problems[str(self.root / name)] = "category folder listed in source.categories does not exist"
            folders = [p for p in folders if p.name in self.categories]
        seen: dict[str, Path] = {}
        for folder in folders:
            for path in walk_files(folder, root, self.follow_symlinks, scan.problems, frozenset({root})):
                item_id = path.stem
                if item_id in seen:
                    scan.problems[str(path)] = f"duplicate id {item_id!r} (also {seen[item_id]}); skipped"
                    continue
                seen[item_id] = path
                meta = dict(metadata.get(item_id, {}))
                title = meta.pop("title", "") or title_from_stem(item_id)
                scan.items.append(Item(id=item_id, category=folder.name, title=title, image=str(path),
                                       metadata=meta))
        return scan


SOURCE = Plugin("local", LocalSourceSettings, LocalFolderSource,
                "A folder on disk: each subfolder a category, each image file an item.")
