"""A collection on disk: one subfolder per category, one image file per item.

Input: a folder (``<root>/<category>/**/<file>``) and an optional metadata CSV with
columns ``id,title,date,creator,description`` (more columns are kept as metadata).
Output: items whose id is the file stem and whose title comes from the CSV or,
failing that, from the file name. Hidden files are ignored; every other file is
offered, and the fetch stage reports those that turn out not to be images.
"""

from __future__ import annotations

import csv
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

    @field_validator("categories")
    @classmethod
    def _non_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("an empty list would select nothing; leave it out for all folders")
        return value


class LocalFolderSource:
    def __init__(self, settings: LocalSourceSettings, context: SourceContext | None = None) -> None:
        self.root = settings.path
        self.metadata = settings.metadata
        self.categories = settings.categories

    def scan(self) -> SourceScan:
        scan = SourceScan()
        if not self.root.is_dir():
            raise FileNotFoundError(f"source.path = {str(self.root)!r}: not a folder")
        metadata, scan.problems = read_metadata_csv(self.metadata) if self.metadata else ({}, {})
        folders = sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if self.categories is not None:
            present = {p.name for p in folders}
            for name in self.categories:
                if name not in present:
                    scan.problems[str(self.root / name)] = "category folder listed in source.categories does not exist"
            folders = [p for p in folders if p.name in self.categories]
        seen: dict[str, Path] = {}
        for folder in folders:
            files = sorted(p for p in folder.rglob("*")
                           if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))
            for path in files:
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
