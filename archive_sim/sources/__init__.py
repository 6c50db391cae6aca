"""Where items come from: one small interface over every kind of source.

Input: the ``source`` settings and, for remote sources, an HTTP client for JSON.
Output: a ``SourceScan``: the items the source lists (id, category, title, image
path or URL, metadata, link back to the archive), the problems met per record, and
the records that could not be read this time (their items are kept, not dropped).
A source whose listing itself fails raises ``SourceError``; nothing is changed then.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..state_store import Item

if TYPE_CHECKING:
    from ..config import SourceSettings


class SourceError(RuntimeError):
    """The source as a whole could not be read; the message says what and why in one line."""


@dataclass
class SourceScan:
    items: list[Item] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)  # subject (file or record) -> reason
    # Records (e.g. IIIF manifests, by URL) that failed this time: items that came
    # from them before are kept as they were instead of leaving the site.
    unreachable: set[str] = field(default_factory=set)


class Source(Protocol):
    def scan(self) -> SourceScan: ...


class JsonClient(Protocol):
    """What a remote source needs from HTTP (``download.HttpClient`` provides it)."""

    def get_json(self, url: str, params: dict[str, str] | None = None) -> Any: ...

    def get_json_many(self, urls: Iterable[str]) -> Iterator[tuple[str, Any, str | None]]: ...


def open_source(settings: "SourceSettings", http: JsonClient | None = None, language: str = "sv") -> Source:
    """The source named by ``settings.type``; ``http`` is required for remote ones."""
    if settings.type == "local":
        from .local import LocalFolderSource

        return LocalFolderSource(settings.path, settings.metadata, settings.categories, settings.follow_symlinks)
    if settings.type == "csv":
        from .csv_source import CsvSource

        return CsvSource(settings)
    if http is None:
        raise ValueError(f"source.type = {settings.type!r} needs an HTTP client")
    if settings.type == "json_api":
        from .json_api import JsonApiSource

        return JsonApiSource(settings, http)
    if settings.type == "iiif":
        from .iiif import IiifSource

        return IiifSource(settings, http, language)
    raise ValueError(f"source.type = {settings.type!r}: unknown source")
