"""Item ids from outside -> safe, stable slugs for paths.

Input: any string id (spaces, dots, slashes, non-ASCII letters, ``../..``).
Output: a lowercase ASCII slug of ``[a-z0-9-]`` that is never empty, never ``.``
or ``..``, and cannot name a path outside its folder. When the mapping loses
information (the slug is not the id itself), a short hash of the id is appended
after ``--`` so that distinct ids keep distinct slugs.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_MAX_BASE = 60
# Top-level names the site itself uses; a category slug never takes one of them.
RESERVED_SLUGS = {"all", "api", "map", "media", "static", "404", "index", "reuse"}
# Letters that do not decompose into ASCII under NFKD but have a usual spelling.
_TRANSLITERATION = str.maketrans({"ß": "ss", "æ": "ae", "Æ": "ae", "ø": "o", "Ø": "o", "đ": "d", "ł": "l", "Ł": "l", "þ": "th"})


def slugify(item_id: str) -> str:
    """Return the slug of ``item_id`` (pure: same id, same slug, on every run)."""
    text = unicodedata.normalize("NFKD", item_id.translate(_TRANSLITERATION))
    ascii_text = text.encode("ascii", "ignore").decode("ascii").lower()
    base = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:_MAX_BASE].strip("-")
    if base and base == item_id:
        return base
    digest = hashlib.sha1(item_id.encode("utf-8")).hexdigest()[:8]
    # "--" never occurs in a base, so never in an id kept as it is: an id that spells
    # out another id's slug ("nkm-1-<hash of NKM-1>") cannot take that slug.
    return f"{base}--{digest}" if base else f"item--{digest}"


def category_slug(name: str) -> str:
    """The slug of category ``name``: its folder on the site and its map's scope name."""
    slug = slugify(name)
    if slug in RESERVED_SLUGS:
        # The same "--<hash>" form as slugify: no kept-as-is name can produce it.
        return f"{slug}--{hashlib.sha1(name.encode('utf-8')).hexdigest()[:8]}"
    return slug
