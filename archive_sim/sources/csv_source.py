"""A collection listed in a CSV file: one row per item.

Input: ``csv`` settings: the file (UTF-8, a header row), which columns hold id,
category, image, title and link, which columns to keep as metadata (default: all
the others), an optional base URL and category map. Output: items whose image is an
http(s) URL (absolute, or relative to ``base_url``) or a local path (relative to
the CSV file's folder). A row without id, category or image is reported and skipped,
and so is a path that is absolute or leads out of the CSV's folder (``..``, a link),
unless ``follow_symlinks``.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from ..download import UnsafeUrlError, is_remote, resolve_url
from ..plugins import Plugin
from ..settings_base import Section, http_url
from ..state_store import Item
from . import SourceContext, SourceError, SourceScan
from .local import inside
from .records import as_id, as_text, report_unlisted, site_category, unique_items


class CsvColumns(Section):
    """The CSV's column names for each part of an item."""

    id: str = Field("id", description="The column holding each item's id.")
    category: str = Field("category", description="The column holding the category.")
    image: str = Field("image", description="The column holding the image: a URL or a path.")
    title: str = Field("title", description="The column holding the title.")
    link: str = Field("link", description="The column holding a link to the item in the archive.")


class CsvSourceSettings(Section):
    type: Literal["csv"] = Field(description="A CSV file with one row per item.")
    path: Path = Field(Path("items.csv"), description="The CSV file (UTF-8 with a header row).")
    base_url: str | None = Field(
        None, description="Relative image values are URLs against this; without it, paths relative to "
                          "the CSV file's folder.")
    columns: CsvColumns = Field(CsvColumns(), description="Which columns hold id, category, image, title, link.")
    metadata: list[str] | None = Field(
        None, description="Columns kept as metadata; leave it out for every other column.")
    categories: dict[str, str] = Field(
        default_factory=dict, description="Source category value -> site category; empty keeps all as they are.")
    follow_symlinks: bool = Field(
        False, description="Accept local image paths (and links) that lead out of the CSV file's folder "
                           "(default: skip those rows, naming each).")

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)


class OutsideFolderError(ValueError):
    """A local image path that leads out of the CSV's folder."""


class CsvSource:
    def __init__(self, settings: CsvSourceSettings, context: SourceContext | None = None) -> None:
        self.settings = settings

    def scan(self) -> SourceScan:
        s, cols = self.settings, self.settings.columns
        path: Path = s.path
        scan = SourceScan()
        items: list[Item] = []
        unlisted: Counter[str] = Counter()
        try:
            with path.open(newline="", encoding="utf-8-sig") as f:
                reader = csv.DictReader(f)
                header = [h.strip() for h in reader.fieldnames or []]
                for required in (cols.id, cols.category, cols.image):
                    if required not in header:
                        raise SourceError(f"source.path = {str(path)!r}: no column {required!r} "
                                          f"(columns: {', '.join(header) or 'none'})")
                own = {cols.id, cols.category, cols.image, cols.title, cols.link}
                keep = [c for c in (s.metadata if s.metadata is not None else header) if c not in own]
                for line, raw in enumerate(reader, start=2):
                    row = {(k or "").strip(): (v or "") for k, v in raw.items() if isinstance(v, str)}
                    item = self._item(row, keep, f"{path}:{line}", scan.problems, unlisted)
                    if item is not None:
                        items.append(item)
        except FileNotFoundError:
            raise SourceError(f"source.path = {str(path)!r}: file not found") from None
        except (UnicodeDecodeError, csv.Error) as exc:
            raise SourceError(f"source.path = {str(path)!r}: not a readable UTF-8 CSV ({exc})") from None
        report_unlisted(unlisted, "row", scan.problems)
        scan.items = unique_items(items, scan.problems)
        return scan

    def _item(self, row: dict[str, str], keep: list[str], subject: str, problems: dict[str, str],
              unlisted: Counter[str]) -> Item | None:
        s, cols = self.settings, self.settings.columns
        item_id = as_id(row.get(cols.id))
        if item_id is None:
            problems[subject] = f"no {cols.id!r}; skipped"
            return None
        value = (row.get(cols.category) or "").strip()
        if not value:
            problems[subject] = f"id {item_id!r}: no {cols.category!r}; skipped"
            return None
        category = site_category(value, s.categories)
        if category is None:
            unlisted[value] += 1
            return None
        image = (row.get(cols.image) or "").strip()
        if not image:
            problems[subject] = f"id {item_id!r}: no {cols.image!r}; skipped"
            return None
        try:
            image = self._image(image)
        except (UnsafeUrlError, OutsideFolderError) as exc:
            problems[subject] = f"id {item_id!r}: image {exc}; skipped"
            return None
        link = (row.get(cols.link) or "").strip() or None
        if link is not None:
            try:
                link = resolve_url(link, s.base_url)
            except UnsafeUrlError:
                link = None  # only http(s) links back; the item itself is fine
        metadata = {c: t for c in keep if (t := as_text(row.get(c)))}
        title = as_text(row.get(cols.title)) or item_id
        return Item(id=item_id, category=category, title=title, image=image, metadata=metadata, link=link)

    def _image(self, value: str) -> str:
        """An http(s) URL, or a local path within the CSV's folder; other URL schemes are refused."""
        if is_remote(value):
            return resolve_url(value)
        if self.settings.base_url:
            return resolve_url(value, self.settings.base_url)
        path = Path(value)
        folder = self.settings.path.parent
        full = path if path.is_absolute() else folder / path
        if not self.settings.follow_symlinks and not inside(full.resolve(), folder.resolve()):
            raise OutsideFolderError(f"{value!r} is outside the CSV's folder (source.follow_symlinks: true "
                                     f"accepts it)")
        return str(full)


SOURCE = Plugin("csv", CsvSourceSettings, CsvSource,
                "A CSV file with one row per item; images are URLs or paths beside the file.")
