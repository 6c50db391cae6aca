"""Where items come from: one small interface over every kind of source.

Input: the ``source`` settings, the registry of source types (``plugins``) and,
for remote sources, an HTTP client for JSON.
Output: a ``SourceScan``: the items the source lists (id, category, title, image
path or URL, metadata, link back to the archive), the problems met per record, and
the records that could not be read this time (their items are kept, not dropped).
A source whose listing itself fails raises ``SourceError``; nothing is changed then.

A source type is one module: a settings model (a ``Section`` with ``type:
Literal["name"]``), a class built as ``cls(settings, context)`` with a ``scan()``
method, and a ``Plugin`` declaring both (see local.py, the smallest).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..state_store import Item

if TYPE_CHECKING:
    from ..plugins import Registry


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


@dataclass(frozen=True)
class SourceContext:
    """What a source gets besides its settings."""

    http: JsonClient | None = None  # None for a run that makes no requests
    language: str = "sv"            # the site's language, for sources with labels in several


def open_source(settings: Any, http: JsonClient | None = None, language: str = "sv",
                registry: "Registry | None" = None) -> Source:
    """The source that ``settings.type`` names in ``registry`` (default: the built-ins and entry points)."""
    if registry is None:
        from ..plugins import default_plugins

        registry = default_plugins().sources
    plugin = registry.get(settings.type)
    if plugin.remote and http is None:
        raise ValueError(f"source.type = {settings.type!r} needs an HTTP client")
    return plugin.factory(settings, SourceContext(http, language))
