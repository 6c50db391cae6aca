"""The real images the tests use, every one of them inside this repository.

Input: the example collection (``examples/collection``: historical photographs and
18th-century book illustrations, credited in its CREDITS.md) and ``tests/data/samples``
(photographs from scikit-image and matplotlib, credited in tests/data/SOURCES.md).
Output: their folders and sorted file lists. Nothing here reads outside the repository.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_COLLECTION = REPO / "examples" / "collection"
PHOTOGRAPHS = EXAMPLE_COLLECTION / "photographs"
ILLUSTRATIONS = EXAMPLE_COLLECTION / "illustrations"
SAMPLES = Path(__file__).resolve().parent / "data" / "samples"


def photographs(under_bytes: int | None = None) -> list[Path]:
    """The example photographs by name; only the files smaller than ``under_bytes`` if given."""
    files = sorted(p for p in PHOTOGRAPHS.iterdir() if p.is_file())
    return [p for p in files if under_bytes is None or p.stat().st_size < under_bytes]


def figures() -> list[Path]:
    """The book illustrations (``Figure NN.png``: RGBA and RGB scans of printed pages) by name."""
    return sorted(ILLUSTRATIONS.glob("Figure *.png"))
