"""What every settings section shares: the base model and the checks of URLs and templates.

Input: nothing of its own. Output: ``Section`` (unknown keys refused, values frozen)
and the validators ``http_url`` and ``url_template`` that source settings use, kept
apart from config.py so a source module can declare its settings without importing it.
"""

from __future__ import annotations

import string
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A part of config.yaml: unknown keys are errors, and settings never change once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def http_url(value: str) -> str:
    """``value`` if it is an absolute http(s) URL; otherwise a ValueError saying so."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("expected an absolute http:// or https:// URL")
    return value


def url_template(value: str | None, allowed: tuple[str, ...]) -> str | None:
    """Check that a URL template only uses the placeholders ``allowed``."""
    if value is None:
        return None
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError as exc:
        raise ValueError(f"not a valid template ({exc})") from None
    unknown = sorted(names - set(allowed))
    if unknown:
        raise ValueError(f"unknown placeholder {{{unknown[0]}}} (allowed: "
                         + ", ".join(f"{{{a}}}" for a in allowed) + ")")
    return value
