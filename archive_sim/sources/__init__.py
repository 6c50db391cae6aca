"""Where items come from. Every source has one small interface: ``scan()``.

Input: the ``source`` section of the settings. Output: a ``SourceScan`` with the
items the source lists (id, category, title, image path or URL, metadata, link) and
the records it had to skip, each with a one-line reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..catalog import Item
from ..config import SourceSettings


@dataclass
class SourceScan:
    items: list[Item] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)  # subject (file or record) -> reason


class Source(Protocol):
    def scan(self) -> SourceScan: ...


def open_source(settings: SourceSettings) -> Source:
    """The source named by ``settings.type``."""
    from .local import LocalFolderSource

    if settings.type == "local":
        return LocalFolderSource(settings.path, settings.metadata, settings.categories)
    raise ValueError(f"source.type = {settings.type!r}: unknown source")
