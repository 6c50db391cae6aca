"""What the re-ranking by local matches costs per item, against embedding, projected to 100,000 items.

Input: the repository's own photographs (examples/collection), each listed as many
items with distinct content hashes, so that every item's features are really
extracted (as each image of a real collection would be); each item's neighbour list
is ``neighbors.k`` random items of its category. Output: wall and CPU time per item
of the index stage's re-ranking (``rerank.*`` settings; features extracted once per
image, the first ``rerank.candidates`` pairs of every list matched) and of embedding
with the default model and descriptor, both measured in the same run, and both
projected to 100,000 items. The re-ranking's cost per item does not grow with the
collection: each list checks a fixed number of candidates.
The last line holds the headline figures as name=value pairs.
Usage: python bench/rerank_cost.py [--items 600] [--embed-images 64] [--method M] [--side PX] [--features N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from archive_sim.commands.index import rerank_stage  # noqa: E402
from archive_sim.config import Settings  # noqa: E402
from archive_sim.embed.descriptors import load_descriptor  # noqa: E402
from archive_sim.embed.pipeline import embed_images  # noqa: E402
from archive_sim.progress import Report  # noqa: E402
from archive_sim.state_store import Neighbor, StateStore  # noqa: E402

PHOTOS = HERE.parent / "examples" / "collection" / "photographs"
TARGET = 100_000


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=600, help="items re-ranked (each a distinct image)")
    parser.add_argument("--embed-images", type=int, default=64, help="images embedded for the comparison")
    parser.add_argument("--method", choices=("sift", "sift-edges", "orb"), help="rerank.method (default: the setting's)")
    parser.add_argument("--side", type=int, help="rerank.side (default: the setting's)")
    parser.add_argument("--features", type=int, help="rerank.features (default: the setting's)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    photos = sorted(p for p in PHOTOS.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    settings = Settings()
    chosen = {key: value for key, value in (("method", args.method), ("side", args.side),
                                            ("features", args.features)) if value is not None}
    settings = settings.model_copy(update={"rerank": settings.rerank.model_copy(update=chosen)})
    rng = np.random.default_rng(args.seed)
    ids = [f"item-{i:06d}" for i in range(args.items)]
    hash_of = {item_id: f"{i:064x}" for i, item_id in enumerate(ids)}
    path_of = {hash_of[item_id]: str(photos[i % len(photos)]) for i, item_id in enumerate(ids)}
    k = settings.neighbors.k
    points = rng.random((args.items, 8))
    distances = ((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(distances, np.inf)
    lists = {item_id: [Neighbor(ids[j], round(0.9 - 0.01 * n, 4), False)
                       for n, j in enumerate(np.argsort(distances[i])[:k])]
             for i, item_id in enumerate(ids)}
    r = settings.rerank
    print(f"{args.items} items from {len(photos)} photographs, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}; rerank {r.method}/{r.geometry} at {r.side} px, "
          f"{r.features} keypoints, {r.candidates} candidates, "
          f"{settings.model.workers} workers", flush=True)
    with tempfile.TemporaryDirectory(prefix="archive-sim-rerank-cost-") as tmp, StateStore(Path(tmp)) as store:
        (_, pairs), rerank_wall, rerank_cpu = timed(
            lambda: rerank_stage(settings, store, lists, path_of, hash_of, Report(verbosity=0)))
        # Embedding the same photographs, as the embed stage does (decoding in workers, one model call a batch).
        backbone = load_descriptor(settings.model)
        jobs = [(f"{i:064x}", str(photos[i % len(photos)])) for i in range(args.embed_images)]
        embed_images(jobs[:settings.model.batch_size], backbone, store, settings.model.batch_size,
                     settings.model.workers)  # warm up: trace the model
        _, embed_wall, embed_cpu = timed(lambda: embed_images(
            [(f"e{h}", p) for h, p in jobs], backbone, store, settings.model.batch_size, settings.model.workers))
    per_item = rerank_wall / args.items, rerank_cpu / args.items
    per_image = embed_wall / args.embed_images, embed_cpu / args.embed_images
    print(f"re-rank: {pairs} pairs, {per_item[0] * 1000:.1f} ms per item ({per_item[1] * 1000:.1f} ms CPU)")
    print(f"embed:   {per_image[0] * 1000:.1f} ms per image ({per_image[1] * 1000:.1f} ms CPU)")
    print(f"at {TARGET:,} items: re-rank {per_item[0] * TARGET:.0f} s, embed {per_image[0] * TARGET:.0f} s")
    print(f"items={args.items} rerank_ms_per_item={per_item[0] * 1000:.1f} embed_ms_per_image={per_image[0] * 1000:.1f} "
          f"rerank_s={per_item[0] * TARGET:.0f} embed_s={per_image[0] * TARGET:.0f} "
          f"rerank_vs_embed={per_item[0] / per_image[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
