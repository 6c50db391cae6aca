"""Where the benchmarks find real images: in this repository, unless ``--data`` names more.

Input: nothing, or ``--data DIR``, a larger folder holding ``photos/``, ``ecco/`` and
``samples/``. Output: the folder of each kind of
image, and the ground-truth definition that goes with them. Without ``--data`` a
benchmark reads only what a clone holds: the example collection's photographs and
book illustrations, and the test photographs in tests/data.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
IN_REPO = {
    "photographs": REPO / "examples" / "collection" / "photographs",
    "illustrations": REPO / "examples" / "collection" / "illustrations",
    "samples": REPO / "tests" / "data" / "samples",
}
# The same kinds in a --data folder.
IN_DATA = {"photographs": "photos", "illustrations": "ecco", "samples": "samples"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff"}


def add_data_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path,
                        help="a larger folder of real images with photos/, ecco/ and samples/ in it, for example "
                             "a collection of your own (default: the images in this repository)")


def image_folders(data: Path | None) -> dict[str, Path]:
    """Kind of image -> its folder: the repository's own, or those in ``data``."""
    if data is None:
        return dict(IN_REPO)
    folders = {kind: data / name for kind, name in IN_DATA.items()}
    for folder in folders.values():
        if not folder.is_dir():
            raise SystemExit(f"--data {data}: no folder {folder.name}/ in it (expected photos/, ecco/ and samples/)")
    return folders


def images_in(folder: Path) -> list[Path]:
    """The image files in ``folder``, by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def ground_truth(data: Path | None) -> tuple[Path, Path]:
    """The ground-truth definition for these images, and the folder its ``folder`` entries are in."""
    if data is None:
        return HERE / "groundtruth.json", REPO
    return HERE / "groundtruth-data.json", data
