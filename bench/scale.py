"""Index, map and render at archive scale: a generated collection of 100,000 items.

Input: nothing but a few real photographs from the example collection, whose thumbnails
every item shares (hard links, so the media cache costs inodes, not gigabytes).
Output: printed figures for the real ``index``, ``map`` and ``render`` commands run
on a state folder holding the generated catalog and vectors: the time of each
stage, the peak memory (RSS) of the whole run, item pages rendered per second,
and Annoy recall@10 against exact search on a random sample of items. The last
line holds the headline figures.

Vectors have the structure of real CNN features: non-negative, L2-normalised,
drawn around a few thousand "motifs" in a low-dimensional latent space (so most
items have close relatives and some have near-copies), with a share of items
sharing one image file (the same content hash, as duplicates in a real archive do).

    PYTHONPATH=. python bench/scale.py [--items 100000] [--categories 4] [--sample 1000] [--keep DIR]
                                       [--add 0.01] [--remove N] [--rerank] [--fresh-site]

Then the weekly rebuild: ``--add`` (1 %) new items from the same motifs and a few
removed, and ``index``, ``map`` and ``render`` run again; recall is checked after it.
``--fresh-site`` makes the render of a ``--keep`` state a first build again: the site,
its manifests and the map atlases are set aside before the stages run and removed
after (file creation right after mass deletions is dear on ext4 without a journal;
a run started within minutes of another's end still meets the inodes it freed).

Last line: items=… peak_rss_mb=… index_s=… map_s=… render_first_s=… render_noop_s=…
render_pages_per_s=… search_s=… search_noop_s=… recall_at_10=… rebuild_1pct_s=…
rebuild_vs_full=…; render_noop_s is the third render, with nothing changed, from the site
the second one replaced; search_s is the first render's search index (Pagefind; part of
render_first_s) and search_noop_s the third's; rebuild_1pct_s is the rebuild's index +
map + render and rebuild_vs_full that over the first build's (kept in ``first-build.json``
for a ``--keep`` run of ``--stages rebuild``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from image_folders import IN_REPO
DIM = 1280  # EfficientNet-Lite0's pooled features


def peak_rss_mb() -> float:
    """Peak resident memory so far of this process and of any finished child, in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0  # ru_maxrss is in KiB on Linux


def python_speed_s() -> float:
    """Seconds for a fixed pure-Python workload: this machine's speed at the time of the
    run (on shared virtual machines it was seen to vary twofold within an hour)."""
    began = time.process_time()
    sum(i * i for i in range(5_000_000))
    return time.process_time() - began


def structured_vectors(n: int, seed: int, chunk: int = 5000, themes: int = 60, per_motif: int = 8,
                       latent: int = 48, factors: int = 6, strength: float = 3.0, noise: float = 0.05,
                       bias: float = 0.2, motifs: int | None = None,
                       draw_seed: int | None = None) -> Iterator[np.ndarray]:
    """``n`` CNN-like vectors in chunks, L2-normalised and non-negative (pooled ReLU features).

    Items are drawn around motifs (a building, a portrait pose, a plate style) that
    group into themes; the pictures of one motif differ along a few factors of their
    own (light, framing, wear) with decaying strength, plus a little noise: the low
    intrinsic dimension of real image features. A random lift maps the latent space
    to 1280 dimensions; a shared offset gives all images the common component
    that real pooled features have (median cosine about 0.4 here, 0.5 on the real
    photographs of a larger real collection). Items added later come from the same motifs: pass the
    first call's ``motifs`` (``n // per_motif``) and another ``draw_seed``.
    """
    rng = np.random.default_rng(seed)
    lift = rng.standard_normal((latent, DIM)).astype(np.float32) / np.sqrt(latent)
    motifs = max(1, n // per_motif) if motifs is None else motifs
    offset = rng.normal(bias, 0.3, DIM).astype(np.float32)
    theme_centres = rng.standard_normal((themes, latent)).astype(np.float32)
    centres = theme_centres[rng.integers(0, themes, motifs)] + 0.6 * rng.standard_normal((motifs, latent))
    directions = rng.standard_normal((motifs, factors, latent)).astype(np.float32) / np.sqrt(latent)
    scale = (strength * 0.7 ** np.arange(factors)).astype(np.float32)
    if draw_seed is not None:
        rng = np.random.default_rng(draw_seed)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        which = rng.integers(0, motifs, m)
        weights = rng.standard_normal((m, factors)).astype(np.float32) * scale
        z = (centres[which] + np.einsum("mf,mfl->ml", weights, directions[which])
             + noise * rng.standard_normal((m, latent)))
        x = np.maximum(z.astype(np.float32) @ lift + offset, 0.0) + rng.random((m, DIM), dtype=np.float32) * 0.01
        yield x / np.linalg.norm(x, axis=1, keepdims=True)


def content_hash(i: int) -> str:
    return hashlib.sha256(f"scale-bench-image-{i}".encode()).hexdigest()


def shared_thumbnails(cache: Path, sizes: tuple[int, ...], count: int = 12) -> list[tuple[str, dict[int, Path]]]:
    """Real thumbnails of ``count`` photographs, made once: (image path, size -> file)."""
    from archive_sim.imaging import load_rgb, save_jpeg

    photos = sorted(p for p in IN_REPO["photographs"].iterdir() if p.suffix.lower() in {".jpg", ".jpeg"})[:count]
    made = []
    for k, photo in enumerate(photos):
        img = load_rgb(photo, min_side=max(sizes))
        files = {}
        for size in sizes:
            files[size] = cache / "_shared" / f"{k}-{size}.jpg"
            save_jpeg(img, files[size], size)
        made.append((str(photo), files))
    return made


def populate(state_dir: Path, mid: str, items: int, categories: int, seed: int, duplicate_share: float) -> int:
    """Write the catalog, vectors, perceptual hashes and media cache of a generated collection
    for model id ``mid``; return the number of distinct images."""
    from PIL import Image

    from archive_sim.state_store import CatalogItem, StateStore
    from archive_sim.site.model import media_path, media_sizes
    from archive_sim.slugs import slugify

    cache = state_dir / "media"
    sizes = media_sizes(128)
    thumbs = shared_thumbnails(cache, sizes)
    dims = {path: Image.open(path).size for path, _ in thumbs}
    # Category sizes fall off like a real archive's: the first is the largest.
    weights = np.array([1.0 / (c + 1) for c in range(categories)])
    share = np.floor(weights / weights.sum() * items).astype(int)
    share[0] += items - share.sum()
    names = [f"category-{c}" for c in range(categories)]
    rng = np.random.default_rng(seed + 1)
    records: list[CatalogItem] = []
    hashes: list[str] = []
    photo_of: dict[str, int] = {}  # image -> which photograph's thumbnails it has
    i = 0
    for name, count in zip(names, share):
        for _ in range(count):
            # A share of items show the same image file as an earlier item.
            duplicate = hashes and rng.random() < duplicate_share
            h = hashes[int(rng.integers(0, len(hashes)))] if duplicate else content_hash(i)
            photo = photo_of.setdefault(h, i % len(thumbs))  # a repeated image shows the same photo
            path, _ = thumbs[photo]
            item_id = f"{name[:3].upper()}-{i:06d}"
            width, height = dims[path]
            records.append(CatalogItem(item_id, name, slugify(item_id), f"Item {i} of {name}", path,
                                       {"date": str(1850 + i % 100), "description": f"Generated item {i}."},
                                       None, h, width, height))
            hashes.append(h)
            i += 1
    distinct = list(dict.fromkeys(hashes))
    with StateStore(state_dir) as store:
        store.replace_items(records)
        del records
        offset = 0
        for chunk in structured_vectors(len(distinct), seed):
            store.put_vectors(mid, zip(distinct[offset:offset + len(chunk)], chunk))
            offset += len(chunk)
        # Like vectors, a perceptual hash is made once per image and cached; distinct
        # pictures have unrelated hashes.
        store.put_phashes((h, int(v)) for h, v in zip(distinct, rng.integers(0, 2**63, len(distinct))))
    for h in distinct:
        _, files = thumbs[photo_of[h]]
        for size in sizes:
            target = cache / media_path(h, size)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(files[size], target)
    return len(distinct)


def add_and_remove(state_dir: Path, mid: str, share: float, remove: int, seed: int) -> tuple[int, int]:
    """The weekly change: add ``share`` of the items as new ones (new images, from the motifs
    of the first build, spread over the categories as the items are) and remove ``remove``
    items; return (added, removed)."""
    from PIL import Image

    from archive_sim.state_store import CatalogItem, StateStore
    from archive_sim.site.model import media_path, media_sizes
    from archive_sim.slugs import slugify

    cache = state_dir / "media"
    sizes = media_sizes(128)
    thumbs = shared_thumbnails(cache, sizes)
    dims = {path: Image.open(path).size for path, _ in thumbs}
    with StateStore(state_dir) as store:
        items = store.items()
        rng = np.random.default_rng(seed + len(items))
        added = max(1, round(share * len(items)))
        distinct = len({it.content_hash for it in items})
        first = max(int(it.id.split("-")[1]) for it in items) + 1
        categories = [items[int(j)].category for j in rng.integers(0, len(items), added)]
        records, hashes = [], []
        for n, category in enumerate(categories):
            i = first + n
            h = content_hash(i)
            path, _ = thumbs[i % len(thumbs)]
            item_id = f"{category[:3].upper()}-{i:06d}"
            width, height = dims[path]
            records.append(CatalogItem(item_id, category, slugify(item_id), f"Item {i} of {category}", path,
                                       {"date": str(1850 + i % 100), "description": f"Generated item {i}."},
                                       None, h, width, height))
            hashes.append(h)
            for size in sizes:
                target = cache / media_path(h, size)
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.exists():
                    os.link(thumbs[i % len(thumbs)][1][size], target)
        gone = set(rng.choice(len(items), size=min(remove, len(items) - 1), replace=False).tolist())
        offset = 0
        for chunk in structured_vectors(added, seed, motifs=max(1, distinct // 8), draw_seed=seed + first):
            store.put_vectors(mid, zip(hashes[offset:offset + len(chunk)], chunk))
            offset += len(chunk)
        store.put_phashes((h, int(v)) for h, v in zip(hashes, rng.integers(0, 2**63, len(hashes))))
        store.replace_items([it for j, it in enumerate(items) if j not in gone] + records)
    return added, len(gone)


def recall_at_10(state_dir: Path, mid: str, descriptor, sample: int, seed: int) -> float:
    """Share of exact top-10 neighbours that the stored (Annoy) lists hold, over ``sample`` items.

    Ties count: a listed neighbour whose exact similarity is within rounding of the
    10th best is as right as the one it displaced.
    Exact search runs in the space the index searches (whitened, when the settings say so).
    """
    from archive_sim.state_store import StateStore
    from archive_sim.embed.descriptors import searchable

    with StateStore(state_dir) as store:
        items = store.items_with_vectors(mid)
        lists = store.neighbors(mid)
        rng = np.random.default_rng(seed)
        space, _ = searchable(store.vectors(mid, [it.content_hash for it in items]), descriptor)
        space = space / np.linalg.norm(space, axis=1, keepdims=True)  # Annoy's angular metric is cosine
        by_category: dict[str, list[int]] = {}
        for i, it in enumerate(items):
            by_category.setdefault(it.category, []).append(i)
        hits = total = 0
        for category, rows in sorted(by_category.items()):
            members = [items[i] for i in rows]
            picks = rng.choice(len(members), size=max(1, sample * len(members) // len(items)), replace=False)
            vectors = space[rows]
            position = {it.id: j for j, it in enumerate(members)}
            for p in picks:
                sims = vectors @ vectors[p]
                sims[p] = -np.inf
                top = np.argpartition(-sims, 10)[:10]
                tenth = sims[top].min()
                exact = {members[j].id for j in top}
                listed = [nb.id for nb in lists.get(members[p].id, [])[:10]]
                hits += sum(1 for other in listed if other in exact or sims[position[other]] >= tenth - 1e-4)
                total += 10
            del vectors
    return hits / total if total else 0.0


def set_site_aside(settings, aside: Path) -> None:
    """Leave the state as before its first render: no site (nor staging or spare
    folder), no manifests, no atlases or atlas cells, no search indexes recorded;
    thumbnails stay cached. The folders are moved into ``aside``, to be removed once
    the figures are taken: on ext4 without a journal, a file created within minutes
    of many deletions costs ten to twenty times the kernel time (the inode allocator
    steps over each recently deleted inode, ``recently_deleted`` in
    ``fs/ext4/ialloc.c``), which a real first build does not meet."""
    from archive_sim.site.atlas import ATLAS_DIR
    from archive_sim.state_store import StateStore

    out = settings.output_dir
    aside.mkdir(parents=True, exist_ok=True)
    atlases = settings.state_dir / "media" / ATLAS_DIR
    for n, path in enumerate([out, *out.parent.glob(f".{out.name}.*"), atlases]):
        if path.exists():
            path.rename(aside / f"{n}-{path.name}")
    with StateStore(settings.state_dir) as store:
        for _ in ("site", "spare"):  # the live site's manifest, then the spare's
            store.replace_site_manifest({}, None, ())
        store.replace_atlas_cells({})
        store.replace_search_parts([])  # else the first render keeps last week's partition


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--categories", type=int, default=4)
    parser.add_argument("--sample", type=int, default=1000, help="items checked against exact search")
    parser.add_argument("--duplicates", type=float, default=0.01, help="share of items repeating an image")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--trees", type=int, default=None, help="neighbors.trees (default: the setting's default)")
    parser.add_argument("--rerank", action="store_true",
                        help="re-rank lists by local matches (rerank.enabled); off by default: on these generated "
                             "items it extracts keypoints of every image (bench/rerank_cost.py measures that)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="build here and keep the result; a collection already generated there is reused")
    parser.add_argument("--stages", default="index,map,render,rebuild",
                        help="which stages to run, in order (render runs three times: the rebuilds are reported "
                             "apart; rebuild adds --add of the items, removes --remove, and runs index, map, render)")
    parser.add_argument("--add", type=float, default=0.01, help="share of the items the rebuild adds")
    parser.add_argument("--remove", type=int, default=None, help="items the rebuild removes (default: items / 2000)")
    parser.add_argument("--fresh-site", action="store_true",
                        help="set a kept state's site, manifests and atlases aside first (removed at the end): "
                             "the render is a first build")
    args = parser.parse_args()

    from archive_sim.state_store import StateStore
    from archive_sim.commands import index as index_stage, maps as map_stage, render as render_stage
    from archive_sim.config import parse_settings
    from archive_sim.embed.descriptors import descriptor_model_id
    from archive_sim.progress import Report

    root = args.keep or Path(tempfile.mkdtemp(prefix="archive-sim-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    (root / "collection").mkdir(exist_ok=True)
    config = {"source": {"path": "collection"}, "state_dir": "state", "output_dir": "site",
              "rerank": {"enabled": args.rerank}}
    if args.trees:
        config["neighbors"] = {"trees": args.trees}
    settings = parse_settings(config, "bench/scale.py", root)
    print(f"{args.items} items in {args.categories} categories under {root}, {os.cpu_count()} cores, "
          f"{settings.neighbors.trees} Annoy trees, re-ranking {'on' if args.rerank else 'off'}, "
          f"load average {os.getloadavg()[0]:.2f}, calibration {python_speed_s():.2f} s", flush=True)
    start = time.perf_counter()
    mid = descriptor_model_id(settings.model)
    if (settings.state_dir / "state.sqlite").exists():
        print(f"reusing the collection in {settings.state_dir}", flush=True)
    else:
        distinct = populate(settings.state_dir, mid, args.items, args.categories, args.seed, args.duplicates)
        print(f"generated: {distinct} distinct images, {time.perf_counter() - start:.1f} s, "
              f"peak RSS {peak_rss_mb():.0f} MB", flush=True)

    aside = root / "set-aside"  # a folder of this run's own in it: an interrupted run's may be there
    if args.fresh_site:
        set_site_aside(settings, aside / str(os.getpid()))
    stages = args.stages.split(",")
    first_build = root / "first-build.json"  # the first build's stage times, for a rebuild run later on --keep
    timings = {name: float("nan") for name in ("index", "map", "render")}
    rebuild = {name: float("nan") for name in ("index", "map", "render")}
    report = Report(verbosity=0, out=sys.stderr)
    commands = {"index": index_stage, "map": map_stage, "render": render_stage}

    def run(name: str, label: str) -> float:
        began = time.perf_counter()
        commands[name].run(settings, store, report)
        took = time.perf_counter() - began
        print(f"{label}: {took:.1f} s ({report.stages[-1].note}), peak RSS so far "
              f"{peak_rss_mb():.0f} MB, load average {os.getloadavg()[0]:.2f}", flush=True)
        return took

    with StateStore(settings.state_dir) as store:
        items = len(store.items_with_vectors(mid))  # a kept state may have grown past --items
        for name in (s for s in stages if s in commands):
            timings[name] = run(name, name)
        if all(name in stages for name in commands):
            first_build.write_text(json.dumps(timings))
        noop = float("nan")
        if "render" in stages:
            # The weekly case: the site exists and nothing changed. A second build starts
            # from the live site alone; from the third on, the staging folder is the site
            # that the last build replaced (the headline is the third).
            for label in ("render again, nothing changed", "render a third time, from the replaced site"):
                noop = run("render", label)
        rerank_s = float(store.get_meta("rerank_seconds") or "nan")  # index's share spent re-ranking
    # The search index's part of each render (the render stage's time includes it): the
    # first build's, and the third render's, when no searchable input changed.
    searches = [s.seconds for s in report.stages if s.name == "search"]
    search_s = searches[0] if searches else float("nan")
    search_noop_s = searches[-1] if len(searches) > 1 else float("nan")
    print(f"search index: {search_s:.1f} s on the first build "
          f"({search_s / timings['render']:.1%} of its render), {search_noop_s:.1f} s with nothing changed")
    if "rebuild" in stages:
        remove = args.remove if args.remove is not None else max(1, args.items // 2000)
        added, removed = add_and_remove(settings.state_dir, mid, args.add, remove, args.seed)
        print(f"rebuild: {added} items added, {removed} removed", flush=True)
        with StateStore(settings.state_dir) as store:
            for name in commands:
                rebuild[name] = run(name, f"rebuild {name}")
    print(f"calibration after the stages: {python_speed_s():.2f} s", flush=True)
    pages_per_s = items / timings["render"]
    recall = recall_at_10(settings.state_dir, mid, settings.model.descriptor, args.sample, args.seed)
    peak = peak_rss_mb()
    print(f"render: {pages_per_s:.0f} item pages/s (items / whole render stage); "
          f"recall@10 on {args.sample} sampled items: {recall:.4f}")
    first = json.loads(first_build.read_text()) if first_build.exists() else timings
    rebuild_s = sum(rebuild.values())
    ratio = rebuild_s / sum(first.values())
    if "rebuild" in stages:
        print("rebuild over first build, by stage: " + ", ".join(
            f"{name} {rebuild[name]:.1f} / {first[name]:.1f} s" for name in commands))
    shutil.rmtree(aside, ignore_errors=True)  # the figures are taken: the deletions no longer count
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)
    print(f"items={items} peak_rss_mb={peak:.0f} index_s={timings['index']:.1f} rerank_s={rerank_s:.1f} "
          f"map_s={timings['map']:.1f} render_first_s={timings['render']:.1f} render_noop_s={noop:.1f} "
          f"render_pages_per_s={pages_per_s:.0f} search_s={search_s:.1f} search_noop_s={search_noop_s:.1f} "
          f"recall_at_10={recall:.4f} rebuild_1pct_s={rebuild_s:.1f} rebuild_vs_full={ratio:.3f}")


if __name__ == "__main__":
    main()
