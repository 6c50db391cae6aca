"""Build the shipped ground-truth set of "the same picture" into a folder.

Input: a definition and the real images it names: ``bench/groundtruth.json`` and this
repository's images, or with ``--data DIR`` (a larger real collection)
``bench/groundtruth-data.json`` and the images in DIR. Output:
``OUT/collection/<category>/...`` (originals, transformed copies, hand copies,
distractors) and ``OUT/GROUPS.json`` for ``archive-sim evaluate``.
Usage: python bench/make_groundtruth.py OUT [--definition FILE] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from archive_sim.groundtruth import GroundTruthError, write  # noqa: E402
from image_folders import add_data_option, ground_truth  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="new or empty folder to write into")
    parser.add_argument("--definition", type=Path, help="default: the one that goes with --data")
    add_data_option(parser)
    args = parser.parse_args(argv)
    definition, source_root = ground_truth(args.data)
    start = time.perf_counter()
    try:
        groups_path = write(args.definition or definition, source_root, args.out)
    except GroundTruthError as exc:
        print(f"make_groundtruth: {exc}", file=sys.stderr)
        return 1
    groups = json.loads(groups_path.read_text(encoding="utf-8"))["groups"]
    images = sum(1 for p in (args.out / "collection").rglob("*") if p.is_file())
    copies = sum(len(g["items"]) - 1 for g in groups)
    print(f"wrote {args.out / 'collection'} and {groups_path} in {time.perf_counter() - start:.1f} s")
    print(f"groups={len(groups)} copies={copies} images={images}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
