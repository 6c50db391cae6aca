"""Benchmark: a full build versus the weekly rebuild after adding 1% new items.

Generates a collection of N items (default 2,000) from real images (this repository's,
or those of ``--data DIR``) and transformed variants of them (crop, mirror, rotation, colour,
scale), builds it from scratch with the installed ``archive-sim``, adds 1% new
items and rebuilds. The fixed cost of any run (starting Python, importing
TensorFlow, loading the model) is measured on its own and reported apart, so the
ratio compares the work itself.

    python bench/rebuild.py [--items 2000] [--workdir /tmp/archive-sim-bench] [--data DIR]

Last line: items=… full_s=… rebuild_s=… fixed_s=… rebuild_vs_full=… files_written=… files_total=…
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

from image_folders import add_data_option, image_folders, images_in


def originals(folders: dict[str, Path]) -> dict[str, list[Path]]:
    return {category: images_in(folder) for category, folder in folders.items()}


def variant(img: Image.Image, rng: random.Random) -> Image.Image:
    """A plausible other copy of the same picture: cropped, turned, recoloured, rescaled."""
    w, h = img.size
    left, top = int(w * rng.uniform(0, 0.15)), int(h * rng.uniform(0, 0.15))
    right, bottom = w - int(w * rng.uniform(0, 0.15)), h - int(h * rng.uniform(0, 0.15))
    out = img.crop((left, top, max(right, left + 8), max(bottom, top + 8)))
    if rng.random() < 0.5:
        out = ImageOps.mirror(out)
    out = out.rotate(rng.uniform(-6, 6), expand=True, fillcolor=(255, 255, 255))
    out = ImageEnhance.Color(out).enhance(rng.uniform(0.3, 1.4))
    out = ImageEnhance.Brightness(out).enhance(rng.uniform(0.8, 1.2))
    scale = rng.uniform(0.35, 0.8)
    return out.resize((max(8, int(out.width * scale)), max(8, int(out.height * scale))))


def generate(root: Path, count: int, seed: int, prefix: str, folders: dict[str, Path]) -> list[Path]:
    rng = random.Random(seed)
    sources = originals(folders)
    written = []
    cache: dict[Path, Image.Image] = {}
    per_category = {c: count * len(files) // sum(len(f) for f in sources.values()) for c, files in sources.items()}
    per_category["photographs"] += count - sum(per_category.values())
    for category, n in per_category.items():
        folder = root / category
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            source = sources[category][i % len(sources[category])]
            if source not in cache:
                img = Image.open(source)
                img.draft("RGB", (800, 800))
                img = img.convert("RGB")
                img.thumbnail((800, 800))
                cache[source] = img
            path = folder / f"{prefix}{i:05d}-{source.stem.replace(' ', '_')}.jpg"
            variant(cache[source], rng).save(path, quality=85)
            written.append(path)
    return written


def archive_sim(workdir: Path, *args: str) -> tuple[float, str]:
    script = Path(sys.executable).with_name("archive-sim")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "archive_sim"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    start = time.perf_counter()
    result = subprocess.run([*command, *args], cwd=workdir, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"archive-sim {' '.join(args)} failed:\n{result.stderr}")
    return elapsed, result.stderr


def fixed_cost() -> float:
    """Start Python, import the CLI and TensorFlow, build the configured model and make its
    first call (one batch, the only shape embed uses): what every run that embeds anything pays."""
    code = ("import numpy as np; import archive_sim.cli; from archive_sim.config import Settings; "
            "from archive_sim.embed.descriptors import load_descriptor; "
            "s = Settings().model; b = load_descriptor(s); "
            "b.features(np.zeros((s.batch_size, b.input_size, b.input_size, 3), np.uint8))")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/archive-sim-bench-rebuild"))
    add_data_option(parser)
    args = parser.parse_args()
    folders = image_folders(args.data)
    work = args.workdir
    if work.exists():
        shutil.rmtree(work)
    collection = work / "collection"
    started = time.perf_counter()
    generate(collection, args.items, seed=1, prefix="v", folders=folders)
    print(f"generated {args.items} items in {time.perf_counter() - started:.1f} s", flush=True)
    (work / "config.yaml").write_text("source:\n  path: collection\nsite:\n  items_per_page: 48\n")

    full_s, full_log = archive_sim(work, "build")
    print(f"full build: {full_s:.1f} s", flush=True)
    added = max(1, args.items // 100)
    new_files = generate(work / "incoming", added, seed=2, prefix="n", folders=folders)
    for path in new_files:
        target = collection / path.parent.name / path.name
        shutil.move(path, target)
    rebuild_s, rebuild_log = archive_sim(work, "build")
    print(f"rebuild after adding {added} items: {rebuild_s:.1f} s", flush=True)
    fixed_s = min(fixed_cost() for _ in range(2))
    print(f"fixed cost (Python, TensorFlow import, model build): {fixed_s:.1f} s", flush=True)

    written = int(re.search(r"files written (\d+)", rebuild_log).group(1))
    total = sum(1 for p in (work / "site").rglob("*") if p.is_file())
    for line in rebuild_log.splitlines():
        if line.startswith(("Summary", "Time", "[")):
            print("  " + line)
    ratio = (rebuild_s - fixed_s) / (full_s - fixed_s)
    print(f"items={args.items} full_s={full_s:.1f} rebuild_s={rebuild_s:.1f} fixed_s={fixed_s:.1f} "
          f"rebuild_vs_full={ratio:.3f} files_written={written} files_total={total}")


if __name__ == "__main__":
    main()
