"""Search by example: how long ``archive-sim query`` takes once the model is loaded.

Input: the shipped ground truth (``bench/groundtruth.json`` built from this
repository's images, ``bench/groundtruth-data.json`` from a larger folder given as ``--data DIR``,
or ``--groundtruth DIR``), indexed with the default settings (fetch, embed, index;
kept in ``--keep DIR`` to skip that next time), and copies of its originals that are
not in the collection. Output: the time to load the model and indexes, the time of
each query (decode, embed, pHash, search every category, copies first), the model
call on one image alone as the baseline measured in the same run, and the index
search alone at archive scale (20,000 items in one category). The last line holds
the headline figures as name=value pairs.
Usage: python bench/query.py [--groundtruth DIR | --data DIR] [--keep DIR] [--queries N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from archive_sim.state_store import StateStore  # noqa: E402
from archive_sim.commands import embed, fetch, index  # noqa: E402
from archive_sim.commands.query import Searcher  # noqa: E402
from archive_sim.config import settings_for_folder  # noqa: E402
from archive_sim.embed.pipeline import decode_for_model  # noqa: E402
from archive_sim import groundtruth  # noqa: E402
from archive_sim.groundtruth import transform_image  # noqa: E402
from archive_sim.neighbors import build_index  # noqa: E402
from archive_sim.progress import Report  # noqa: E402
from image_folders import add_data_option, ground_truth  # noqa: E402

SCALE_ITEMS = 20_000


def held_copies(collection: Path, groups, folder: Path, n: int) -> list[tuple[Path, str]]:
    """``n`` copies (grayscale, turned) of ground-truth originals, made apart from the collection."""
    folder.mkdir(parents=True, exist_ok=True)
    result = []
    for group in groups[:n]:
        original = group.members[0].id
        source = next(p for p in collection.rglob("*") if p.is_file() and p.stem == original)
        img = transform_image(transform_image(Image.open(source).convert("RGB"), "grayscale", original), "rotate",
                              original)
        path = folder / f"{original}-held.jpg"
        img.save(path, quality=70)
        result.append((path, original))
    return result


def search_at_scale(dim: int, k: int = 10, runs: int = 50) -> float:
    """Median seconds of one Annoy search plus one pHash scan over ``SCALE_ITEMS`` items."""
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(SCALE_ITEMS, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    hashes = rng.integers(0, 2**63, size=SCALE_ITEMS, dtype=np.int64).astype(np.uint64)
    idx = build_index(vectors, 10)
    times = []
    for q in vectors[:runs]:
        start = time.perf_counter()
        idx.get_nns_by_vector(q, k, include_distances=True)
        np.nonzero(np.bitwise_count(hashes ^ np.uint64(12345)) <= 7)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groundtruth", type=Path, help="a folder made by make_groundtruth.py (default: build one)")
    add_data_option(parser)
    parser.add_argument("--keep", type=Path, help="keep the state here (default: a temporary folder)")
    parser.add_argument("--queries", type=int, default=20)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="archive-sim-query-bench-") as tmp:
        definition, source_root = ground_truth(args.data)
        gt, groups = groundtruth.built(definition, source_root, args.groundtruth, Path(tmp) / "groundtruth")
        work = args.keep or Path(tmp) / "work"
        settings = settings_for_folder(gt / "collection", work / "site")
        report = Report(verbosity=0)
        with StateStore(settings.state_dir) as store:
            for stage in (fetch, embed, index):
                stage.run(settings, store, report)
            items = len(store.items())
            start = time.perf_counter()
            searcher = Searcher(settings, store)
            load = time.perf_counter() - start
        queries = held_copies(gt / "collection", groups, Path(tmp) / "held", args.queries)
        times, found = [], 0
        for path, original in queries:
            start = time.perf_counter()
            hits = searcher.search(path, 10)
            times.append(time.perf_counter() - start)
            found += hits[0].id.split("--")[0] == original
        one = decode_for_model(str(queries[0][0]), searcher.backbone.input_size)[0][None]
        model_call = min(_timed(lambda: searcher.backbone.features(one)) for _ in range(5))
        scale = search_at_scale(searcher.indexes[next(iter(searcher.indexes))][0].f)
    median, worst = statistics.median(times), max(times)
    print(f"ground truth {gt}: {items} items; model {searcher.mid}")
    print(f"model and indexes loaded in {load:.2f} s")
    print(f"{len(times)} queries: median {median:.3f} s, slowest {worst:.3f} s; "
          f"the same picture first in {found} of {len(times)}")
    print(f"model call on one image alone: {model_call:.3f} s; a query takes {median / model_call:.2f}x that")
    print(f"index search and pHash scan over {SCALE_ITEMS} items: {scale * 1000:.2f} ms")
    print(f"load_s={load:.2f} query_median_s={median:.3f} query_max_s={worst:.3f} model_call_s={model_call:.3f} "
          f"query_vs_model_call={median / model_call:.2f} search_20k_ms={scale * 1000:.2f} found_first={found}/{len(times)}")
    return 0


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    sys.exit(main())
