"""Reading untrusted records: dotted paths, display text, unique ids, category maps.

Input: parsed JSON records and values from remote or CSV sources. Output: display
strings (whitespace collapsed, length capped; markup is kept as text, because
pages escape it, except where a format says values are HTML: ``plain_text``), the
items with duplicate ids removed (the first kept, the rest reported), and site
categories from source values. Pure functions, no I/O.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Any

from ..state_store import Item

# Titles and metadata values longer than this are cut: one record must not bloat every page.
MAX_TEXT = 2000


def lookup(record: Any, path: str) -> Any:
    """The value at a dotted ``path`` (``images.0.image``) in nested dicts and lists, or None."""
    if path == "":
        return record
    value = record
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and re.fullmatch(r"-?\d+", part):
            index = int(part)
            value = value[index] if -len(value) <= index < len(value) else None
        else:
            return None
        if value is None:
            return None
    return value


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "p", "div", "li"):
            self.parts.append(" ")


def clean_text(value: str) -> str:
    """``value`` with whitespace collapsed and at most ``MAX_TEXT`` characters."""
    text = " ".join(value.split())
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1].rstrip() + "…"


def plain_text(value: str) -> str:
    """``value`` as text where it is HTML by definition (IIIF values may hold a subset).

    Templates escape everything anyway; this is so that a visitor reads
    "Oil on canvas", not "<span>Oil on canvas</span>".
    """
    if "<" in value and ">" in value:
        parser = _TextOnly()
        parser.feed(value)
        parser.close()
        value = "".join(parser.parts)
    elif "&" in value:
        value = html.unescape(value)
    return clean_text(value)


def as_text(value: Any) -> str | None:
    """A record value as display text: strings and numbers as they are, lists joined; else None."""
    if value is None or isinstance(value, (dict, bool)):
        return None
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        text = clean_text(value)
        return text or None
    if isinstance(value, list):
        texts = [t for t in (as_text(v) for v in value) if t]
        return "; ".join(texts) or None
    return None


def as_id(value: Any) -> str | None:
    """An id from a record: a non-empty string or an integer, kept exactly (ids are not display text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip() and len(value) <= 500 and "\x00" not in value:
        return value.strip()
    return None


def site_category(value: str | None, mapping: dict[str, str]) -> str | None:
    """The site category for a source value: mapped when a mapping is given (unlisted: None)."""
    if value is None:
        return None
    if not mapping:
        return value
    return mapping.get(value)


def report_unlisted(unlisted: dict[str, int], noun: str, problems: dict[str, str]) -> None:
    """One problem line per source category value that source.categories leaves out."""
    for value, count in sorted(unlisted.items()):
        problems[f"source category {value!r}"] = (
            f"{count} {noun}{'s' if count > 1 else ''} in a category not listed in source.categories; skipped")


def unique_items(items: list[Item], problems: dict[str, str]) -> list[Item]:
    """``items`` with each id once (the first); each later duplicate reported by its record."""
    seen: dict[str, Item] = {}
    kept = []
    for item in items:
        first = seen.get(item.id)
        if first is not None:
            where = item.record or item.image
            problems[f"{item.category}/{item.id} ({where})"] = (
                f"duplicate id {item.id!r} (first in category {first.category!r}); skipped")
            continue
        seen[item.id] = item
        kept.append(item)
    return kept
