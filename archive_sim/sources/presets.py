"""Ready-made settings for JSON APIs whose shape is known, by preset name.

Input: a preset name from ``source.preset``. Output: default ``json_api`` settings
(plain data, merged under what config.yaml gives: a key set there wins, and inside
``pagination`` and ``fields`` each sub-key wins on its own).
"""

from __future__ import annotations

from typing import Any

# The Ivar Arosenius archive's API (github.com/CDH-DevTeam/arosenius-api):
# ``GET documents?type=<type>&count=<n>&page=<p>`` answers
# ``{"total": N, "documents": [{"id", "title", "images": [{"image": "<name>"}], ...}]}``
# and serves each image at ``images/<size>x/<name>.jpg`` beside ``documents``.
AROSENIUS: dict[str, Any] = {
    # Its default order is random (reseeded every 20 minutes), which would make pages
    # overlap and skip; insert_id gives a fixed order to page through.
    "params": {"sort": "insert_id"},
    "category_param": "type",
    "pagination": {"style": "page", "size": 100, "size_param": "count", "page_param": "page",
                   "first_page": 1, "total": "total"},
    "records": "documents",
    "fields": {"id": "id", "title": "title", "image": "images.0.image"},
    # Relative: resolved against ``url``, as the archive's own scripts did (700 px wide).
    "image_url": "images/700x/{image}.jpg",
    "metadata": {"date": "item_date_str", "description": "description", "museum": "collection.museum",
                 "genre": "genre"},
}

PRESETS: dict[str, dict[str, Any]] = {"arosenius": AROSENIUS}
MERGED_SECTIONS = ("pagination", "fields")


def apply_preset(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (raw ``source`` settings) with its preset's defaults filled in."""
    preset = PRESETS.get(str(data.get("preset")))
    if preset is None:
        return data
    merged = {**preset, **data}
    for section in MERGED_SECTIONS:
        if isinstance(data.get(section), dict) and section in preset:
            merged[section] = {**preset[section], **data[section]}
    return merged
