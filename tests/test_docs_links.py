"""Every relative link in README.md and the manual (docs/*.md) leads somewhere.

A link must name a file that exists in the repository and, when it names a heading
(``page.md#heading``), a heading of that page. Headings are turned into anchors as
MkDocs' table of contents does; the configuration page's headings include those of
the reference that the manual's build generates from the settings models.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from archive_sim.config_reference import settings_reference

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
SETTINGS_MARKER = "<!-- settings-reference -->"


def prose(text: str) -> str:
    """``text`` without code blocks and inline code, where brackets are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """The anchor Python-Markdown's toc extension (MkDocs' default) gives a heading."""
    text = re.sub(r"[`*]", "", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(page: Path) -> set[str]:
    text = page.read_text(encoding="utf-8")
    if SETTINGS_MARKER in text:
        text = text.replace(SETTINGS_MARKER, settings_reference())
    return {slug(h) for h in HEADING.findall(FENCE.sub("", text))}


def relative_links(page: Path) -> list[str]:
    links = LINK.findall(prose(page.read_text(encoding="utf-8")))
    return [link for link in links if not re.match(r"^[a-z][a-z0-9+.-]*:", link, re.IGNORECASE)]


def shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def broken_links(page: Path) -> list[str]:
    """One line per link of ``page`` that names no file, or no heading of the file it names."""
    broken = []
    for link in relative_links(page):
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.is_file():
            broken.append(f"{link}: no file {shown(target)}")
        elif anchor and target.suffix == ".md" and anchor not in anchors(target):
            broken.append(f"{link}: no heading #{anchor} in {shown(target)}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_the_readme_is_a_front_door_into_the_manual() -> None:
    readme = ROOT / "README.md"
    links = relative_links(readme)
    assert len(readme.read_text(encoding="utf-8").splitlines()) <= 200
    assert "docs/architecture.md" in links
    assert not [link for link in links if "shared/" in link]


def test_a_broken_link_and_a_missing_heading_are_found(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## A section (`with code`)\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text("[ok](other.md#a-section-with-code) [gone](missing.md) [no heading](other.md#nowhere)\n"
                    "`[in code](missing.md)` [web](https://example.org/x.md) ![img](other.md)\n",
                    encoding="utf-8")
    assert relative_links(page) == ["other.md#a-section-with-code", "missing.md", "other.md#nowhere", "other.md"]
    assert [line.split(":")[0] for line in broken_links(page)] == ["missing.md", "other.md#nowhere"]
