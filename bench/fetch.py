"""Benchmark: images per second fetched from an archive with network latency,
concurrent (fetch.concurrency, default 8) versus one at a time.

Serves an Arosenius-shaped archive (tests/fake_archive.py: real images from this
repository or ``--data DIR``, JSON listing, ``images/700x/<name>.jpg``) on localhost with a
simulated latency on every response (default 50 ms), and runs ``archive-sim fetch``
into a fresh state folder: once with ``concurrency: 1`` (one image at a time, as the
archive's own download script did) and once with the concurrency asked for. Both
do the same work per image: request, stream to a temporary file, decode check,
hash, atomic rename, catalog record. The per-host rate limit is off (0) so that
the measurement is of the downloader, not of the politeness setting. A third run
on the warm state (every image answered 304 Not Modified) is reported too.

    python bench/fetch.py [--images 120] [--latency 0.05] [--concurrency 8] [--repeat 2] [--data DIR]

Last line: images=… latency_ms=… concurrent_img_s=… sequential_img_s=… speedup=…
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from archive_sim.state_store import StateStore  # noqa: E402
from archive_sim.cli import main  # noqa: E402

from fake_archive import FakeArchive, archive_sources  # noqa: E402
from image_folders import add_data_option, image_folders, images_in  # noqa: E402


def write_config(folder: Path, url: str, concurrency: int) -> Path:
    config = folder / "config.yaml"
    config.write_text(
        "source:\n  type: json_api\n  preset: arosenius\n"
        f"  url: {url}/api/documents\n"
        "  categories: {Konstverk: artworks, Fotografi: photographs}\n"
        f"fetch:\n  contact: bench@example.org\n  concurrency: {concurrency}\n  rate_limit: 0\n", encoding="utf-8")
    return config


def timed_fetch(config: Path) -> float:
    err = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stderr(err):
        code = main(["fetch", "--config", str(config), "-q"])
    elapsed = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"fetch failed: {err.getvalue()}")
    return elapsed


def run(archive: FakeArchive, workdir: Path, concurrency: int, repeat: int, expected: int) -> tuple[float, float]:
    """Best cold time and the warm (all 304) time of ``repeat`` fresh fetches."""
    best, warm = float("inf"), float("inf")
    for n in range(repeat):
        folder = workdir / f"c{concurrency}-{n}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        config = write_config(folder, archive.url, concurrency)
        best = min(best, timed_fetch(config))
        with StateStore(folder / ".archive-sim") as store:
            count = len(store.items())
        if count != expected:
            raise SystemExit(f"expected {expected} items, fetched {count}")
        warm = min(warm, timed_fetch(config))
    return best, warm


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=120,
                        help="images in the archive (past the real images, details of them)")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every response")
    parser.add_argument("--concurrency", type=int, default=8, help="fetch.concurrency of the concurrent run")
    parser.add_argument("--repeat", type=int, default=2, help="runs per setting; the best is kept")
    add_data_option(parser)
    args = parser.parse_args()
    sources = None  # the repository's images
    if args.data:
        folders = image_folders(args.data)
        sources = archive_sources(images_in(folders["illustrations"]), images_in(folders["photographs"]))

    with tempfile.TemporaryDirectory(prefix="archive-sim-bench-fetch-") as tmp, \
            FakeArchive(images=args.images, latency=args.latency, faults=False, sources=sources) as archive:
        workdir = Path(tmp)
        n = len(archive.images)
        print(f"archive: {n} images ({sum(map(len, archive.images.values())) / 1e6:.1f} MB) at {archive.url}, "
              f"{args.latency * 1000:.0f} ms per response")
        sequential, sequential_warm = run(archive, workdir, 1, args.repeat, n)
        print(f"one at a time:   {sequential:6.2f} s  {n / sequential:7.1f} img/s   "
              f"(rebuild, all 304: {n / sequential_warm:7.1f} img/s)")
        concurrent, concurrent_warm = run(archive, workdir, args.concurrency, args.repeat, n)
        print(f"concurrency {args.concurrency}:   {concurrent:6.2f} s  {n / concurrent:7.1f} img/s   "
              f"(rebuild, all 304: {n / concurrent_warm:7.1f} img/s)")
        print(f"images={n} latency_ms={args.latency * 1000:.0f} concurrency={args.concurrency} "
              f"concurrent_img_s={n / concurrent:.1f} sequential_img_s={n / sequential:.1f} "
              f"speedup={sequential / concurrent:.2f}")


if __name__ == "__main__":
    main_bench()
