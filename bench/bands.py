"""Where the similarity bands fall on a ground truth: copies, other pictures, random pairs.

Input: the config of a build of the ground truth (``bench/make_groundtruth.py OUT``,
then ``archive-sim fetch``, ``embed`` and ``index`` with ``source.path: OUT/collection``)
and its ``OUT/GROUPS.json``. Output: per category, the random-pair percentiles the
index stored and, for each band (and below the last), the share of the ground
truth's pairs of the same picture (machine-made and hand copies) and of every item's
nearest other picture (not a copy) that lie in it.
With ``--cost N`` instead: the time to calibrate one category of N random 1,280-d
vectors (1 % of them copies), and how far the 99.9th percentile moves between seeds
on N clustered vectors.
Usage: python bench/bands.py CONFIG GROUPS.json | python bench/bands.py --cost 100000
Last line: copies_top=… copies_banded=… nearest_other_banded=… pairs=… (or calibrate_s=… p999_spread=…)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402

from archive_sim.calibration import BANDS, Calibration, calibrate, random_pair_similarities  # noqa: E402
from archive_sim.config import load_settings  # noqa: E402
from archive_sim.embed.descriptors import descriptor_model_id  # noqa: E402
from archive_sim.state_store import StateStore  # noqa: E402

NAMES = [name for name, _ in BANDS] + ["none"]


def shares(bands: list[str]) -> str:
    counts = Counter(bands)
    return " ".join(f"{name}={counts[name] / max(1, len(bands)):.2f}" for name in NAMES)


def cost(n: int) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(n, 1280)).astype(np.float32)
    copies = [(i, i + 1) for i in range(0, n // 50, 2)]
    times = []
    for _ in range(3):
        start = time.perf_counter()
        calibrate(random_pair_similarities(vectors, copies))
        times.append(time.perf_counter() - start)
    centres = rng.normal(size=(200, 1280)).astype(np.float32)
    clustered = centres[rng.integers(0, 200, n)] * 0.6 + rng.normal(size=(n, 1280)).astype(np.float32)
    p999 = [calibrate(random_pair_similarities(clustered, seed=seed)).quantiles[99.9] for seed in range(5)]
    print(f"{n} items: calibration {min(times):.2f} s (best of 3); 99.9th percentile over 5 seeds: {p999}")
    print(f"calibrate_s={min(times):.2f} p999_spread={max(p999) - min(p999):.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path, nargs="?", help="the config the ground truth was built with")
    parser.add_argument("groups", type=Path, nargs="?", help="its GROUPS.json")
    parser.add_argument("--cost", type=int, metavar="N", help="time the calibration of N random vectors instead")
    args = parser.parse_args()
    if args.cost:
        cost(args.cost)
        return
    if args.config is None or args.groups is None:
        parser.error("give CONFIG and GROUPS.json, or --cost N")
    groups = json.loads(args.groups.read_text("utf-8"))["groups"]
    group_of = {it["id"]: n for n, g in enumerate(groups) for it in g["items"]}
    settings = load_settings(args.config)
    model = descriptor_model_id(settings.model)
    with StateStore(settings.state_dir) as store:
        calibrations = {c: Calibration.from_json(d) for c, d in store.calibrations(model).items()}
        items = {it.id: it for it in store.items_with_vectors(model)}
        neighbors = store.neighbors(model)
    copies_all: list[str] = []
    nearest_all: list[str] = []
    for category, calibration in sorted(calibrations.items()):
        quantiles = " ".join(f"p{p:g}={q:.3f}" for p, q in sorted(calibration.quantiles.items()))
        copies, nearest = [], []
        for item_id, listed in neighbors.items():
            if items[item_id].category != category:
                continue
            mine = group_of.get(item_id)
            for nb in listed:
                if mine is not None and group_of.get(nb.id) == mine and item_id < nb.id:
                    copies.append(calibration.band(nb.similarity) or "none")
            other = next((nb for nb in listed if group_of.get(nb.id, -1) != mine or mine is None), None)
            if other is not None and not other.copy:
                nearest.append(calibration.band(other.similarity) or "none")
        print(f"{category}: {calibration.pairs} random pairs, {quantiles}")
        print(f"  {len(copies)} pairs of the same picture (found in the lists): {shares(copies)}")
        print(f"  {len(nearest)} items' nearest other picture: {shares(nearest)}")
        copies_all += copies
        nearest_all += nearest
    top = sum(b == NAMES[0] for b in copies_all) / max(1, len(copies_all))
    banded = sum(b != "none" for b in copies_all) / max(1, len(copies_all))
    other = sum(b != "none" for b in nearest_all) / max(1, len(nearest_all))
    print(f"copies_top={top:.3f} copies_banded={banded:.3f} nearest_other_banded={other:.3f} "
          f"pairs={len(copies_all)}")


if __name__ == "__main__":
    main()
