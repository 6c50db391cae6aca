"""MkDocs hook: fills pages with text made from the installed package, so it cannot drift.

- ``<!-- settings-reference -->`` becomes the configuration reference made from the
  settings models (``archive_sim.config_reference.settings_reference``);
- ``<!-- json-schema: NAME -->`` becomes the JSON Schema ``archive_sim/schemas/NAME``
  as a code block, the same file a build copies to ``api/v1/schema/``.
"""

from __future__ import annotations

import re
from importlib.resources import files
from typing import Any

from archive_sim.config_reference import settings_reference

SETTINGS = "<!-- settings-reference -->"
SCHEMA = re.compile(r"<!-- json-schema: ([\w.]+) -->")


def _schema_block(match: re.Match[str]) -> str:
    text = (files("archive_sim") / "schemas" / match.group(1)).read_text(encoding="utf-8")
    return f"```json\n{text.rstrip()}\n```"


def on_page_markdown(markdown: str, **_: Any) -> str:
    if SETTINGS in markdown:
        markdown = markdown.replace(SETTINGS, settings_reference())
    return SCHEMA.sub(_schema_block, markdown)
