"""Quality of finding the same picture: every descriptor variant, pHash alone, and the combination.

Input: the shipped ground truth, built into a temporary folder (``bench/groundtruth.json``
from this repository's images, or ``bench/groundtruth-data.json`` from ``--data DIR`` such
as a larger real collection), or ``--groundtruth DIR`` built before with make_groundtruth.py. Each
variant runs the real stages (fetch once, then embed and index) and is scored as
``archive-sim evaluate`` scores a build.
Output: per variant hit@1/3/5 and MRR of its neighbour lists alone and as item pages
rank them (copies first, with copy thresholds chosen from that variant's own pairs),
hit@1 per transform, model speed (a batch of 32, decoding apart) against the
classifier's own pooling measured in the same run; pHash alone; the pair statistics of the best variant (pHash
distances, similarities of copies and of different pictures) that set the thresholds.
Then the second stage on the best variant's lists: every re-ranking variant (local
matching method and geometry, times the matches that confirm a neighbour) with hit@1,
hit@5 and MRR per class (machine-made copies, hand copies for tuning, hand copies held
out), the share of "matched" marks that are right, and its cost per item (wall time
with the configured workers, and CPU time) beside the embed stage's cost per image.
The last line holds the headline figures as name=value pairs.
Usage: python bench/quality.py [--groundtruth DIR | --data DIR] [--model NAME] [--variants a,b,...]
                               [--rerank a,b,...] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from archive_sim.state_store import StateStore  # noqa: E402
from archive_sim.commands import fetch, index  # noqa: E402
from archive_sim.commands.evaluate import rankings  # noqa: E402
from archive_sim.config import CopiesSettings, DescriptorSettings, Settings, settings_for_folder  # noqa: E402
from archive_sim.embed.descriptors import descriptor_model_id, load_descriptor, searchable, vector_tag  # noqa: E402
from archive_sim.embed.pipeline import decode_for_model, embed_images  # noqa: E402
from archive_sim.copy_detection import copies_first  # noqa: E402
from archive_sim.evaluation import Evaluation, Group, evaluate, format_table  # noqa: E402
from archive_sim.local_matching import MatchParams, count_matches, pairs_to_check, rerank_lists  # noqa: E402
from archive_sim import groundtruth  # noqa: E402
from archive_sim.progress import Report  # noqa: E402
from image_folders import add_data_option, ground_truth  # noqa: E402

MS2 = [1.0, 0.707]
MS3 = [1.414, 1.0, 0.707]
# name -> model.descriptor settings. "avg" is the classifier's own pooling (the baseline).
VARIANTS: dict[str, dict] = {
    "avg": {"pooling": "avg", "scales": [1.0]},
    "avg-white": {"pooling": "avg", "scales": [1.0], "whiten": True},
    "gem": {"pooling": "gem", "scales": [1.0]},
    "gem-ms2": {"pooling": "gem", "scales": MS2},
    "gem-ms2-gray": {"pooling": "gem", "scales": MS2, "colour": "gray"},
    "gem-ms2-white": {"pooling": "gem", "scales": MS2, "whiten": True},
    "gem-ms3": {"pooling": "gem", "scales": MS3},
    "gem-ms3-ds": {"pooling": "gem", "scales": MS3, "descreen": 1.0},
    "gem-ms3-ds-gray": {"pooling": "gem", "scales": MS3, "descreen": 1.0, "colour": "gray"},
    "gem-ms3-ds-white": {"pooling": "gem", "scales": MS3, "descreen": 1.0, "whiten": True},
}
# name -> local matching parameters (archive_sim/local_matching.py).
RERANK_VARIANTS: dict[str, MatchParams] = {
    "orb": MatchParams("orb", side=512, features=500),
    "orb-1000": MatchParams("orb", side=512, features=1000),
    "sift": MatchParams("sift", side=512, features=500),
    "sift-homography": MatchParams("sift", "homography", side=512, features=500),
    "sift-edges": MatchParams("sift-edges", side=512, features=500),
    "sift-edges-384px": MatchParams("sift-edges", side=384, features=500),
    "sift-edges-384px-300": MatchParams("sift-edges", side=384, features=300),
    "sift-edges-homography": MatchParams("sift-edges", "homography", side=512, features=500),
}
MIN_MATCHES = (6, 8, 10, 12, 15, 20)
CANDIDATES = 10
CLASSES = ("machine", "hand", "hand_heldout")
OFF = CopiesSettings(hash_distance=None, similarity=None)
SPEED_BATCH = 32  # images per timed model call (model.batch_size's default)
SIMILARITY_GRID = [round(0.70 + 0.02 * i, 2) for i in range(15)]
HASH_GRID = list(range(0, 22, 2))


def with_descriptor(settings: Settings, descriptor: DescriptorSettings, copies: CopiesSettings) -> Settings:
    model = settings.model.model_copy(update={"descriptor": descriptor})
    return settings.model_copy(update={"model": model, "copies": copies})


def model_speeds(backbones: dict[str, object], paths: list[str], rounds: int = 5) -> dict[str, float]:
    """Images per second through each model alone (decoding apart), one batch of ``paths``.

    The variants take turns, round after round, and each keeps its best round: other
    processes on the machine slow every variant alike and only ever slow a run down.
    """
    batches: dict[int, np.ndarray] = {}
    for backbone in backbones.values():
        size = backbone.input_size
        if size not in batches:
            batches[size] = np.stack([a for a, _ in (decode_for_model(p, size) for p in paths) if a is not None])
        backbone.features(batches[size])  # trace and warm up
    best = {name: float("inf") for name in backbones}
    for _ in range(rounds):
        for name, backbone in backbones.items():
            start = time.perf_counter()
            backbone.features(batches[backbone.input_size])
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: len(batches[backbones[name].input_size]) / seconds for name, seconds in best.items()}


def embed_variant(settings: Settings, store: StateStore, done: dict[str, str], cpu: dict[str, float] | None = None):
    """Vectors for the settings' descriptor; the loaded model, or None when the vectors were copied.
    ``cpu`` gets the CPU seconds per image of embedding (model loading apart) under the model id."""
    mid = descriptor_model_id(settings.model)
    items = store.items()
    hashes = sorted({it.content_hash for it in items})
    tag = vector_tag(settings.model.descriptor)
    if tag in done and done[tag] != mid:  # whitening changes the id, not the vectors: copy them
        store.put_vectors(mid, zip(hashes, store.vectors(done[tag], hashes)))
        return None
    path_of = {it.content_hash: it.image for it in items}
    missing = store.missing_vectors(mid, hashes)
    done[tag] = mid
    backbone = load_descriptor(settings.model)
    if missing:
        start = time.process_time()
        embed_images([(h, path_of[h]) for h in missing], backbone, store, settings.model.batch_size,
                     settings.model.workers)
        if cpu is not None:
            cpu[mid] = (time.process_time() - start) / len(missing)
    return backbone


def score(store: StateStore, settings: Settings, groups, how: str) -> Evaluation:
    ranked, category_of = rankings(store, settings, how)
    return evaluate(ranked, groups, category_of)


def pair_statistics(store: StateStore, settings: Settings, groups) -> dict:
    """Similarities and pHash distances of copy pairs (same group) and of all other pairs."""
    mid = descriptor_model_id(settings.model)
    items = store.items_with_vectors(mid)
    vectors, _ = searchable(store.vectors(mid, [it.content_hash for it in items]), settings.model.descriptor)
    known = store.phashes(it.content_hash for it in items)
    hashes = np.array([known[it.content_hash] for it in items], dtype=np.uint64)
    group_of = {m.id: g for g, group in enumerate(groups) for m in group.members}
    label = np.array([group_of.get(it.id, -1 - i) for i, it in enumerate(items)])
    upper = np.triu(np.ones((len(items), len(items)), dtype=bool), 1)
    same = (label[:, None] == label[None, :]) & upper
    other = ~(label[:, None] == label[None, :]) & upper
    sims = vectors @ vectors.T
    dist = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
    return {"pos_sim": sims[same], "neg_sim": sims[other], "pos_hash": dist[same], "neg_hash": dist[other]}


def choose_thresholds(stats: dict) -> tuple[int, float]:
    """The copy thresholds the defaults take, from the ground truth's pairs.

    Hash: half the distance of the closest two different pictures (pHash distances of
    unrelated pictures pile up near 32 of 64 bits; a collection a hundred times larger
    than the ground truth reaches lower, so only half the observed gap is trusted).
    Similarity: halfway between the most similar two different pictures and a perfect
    match, so that a copy must be much closer than anything unrelated ever came.
    """
    hash_distance = int(stats["neg_hash"].min()) // 2
    worst = float(stats["neg_sim"].max())
    similarity = math.ceil((worst + (1.0 - worst) / 2) * 100) / 100
    return hash_distance, similarity


def reuse_quality(found: list[list[str]], groups) -> tuple[int, int]:
    """Found groups that hold one picture only, and ground-truth groups found whole."""
    group_of = {m.id: g for g, group in enumerate(groups) for m in group.members}
    pure = sum(1 for f in found if len({group_of.get(i, ("other", i)) for i in f}) == 1)
    found_sets = [set(f) for f in found]
    whole = sum(1 for group in groups if {m.id for m in group.members} in found_sets)
    return pure, whole


def threshold_table(stats: dict) -> str:
    lines = ["pHash distance <=   copy pairs found   different-picture pairs marked"]
    for d in HASH_GRID:
        lines.append(f"{d:>17}   {np.mean(stats['pos_hash'] <= d):>17.3f}   {int(np.sum(stats['neg_hash'] <= d)):>30}")
    lines += ["", "similarity >=   copy pairs found   different-picture pairs marked"]
    for t in SIMILARITY_GRID:
        lines.append(f"{t:>13.2f}   {np.mean(stats['pos_sim'] >= t):>16.3f}   {int(np.sum(stats['neg_sim'] >= t)):>30}")
    lines.append(f"(copy pairs {len(stats['pos_sim'])}, different-picture pairs {len(stats['neg_sim'])}; closest "
                 f"different pictures: pHash distance {int(stats['neg_hash'].min())}, "
                 f"similarity {float(stats['neg_sim'].max()):.4f})")
    return "\n".join(lines)


def group_classes(definition: dict, groups: list[Group], category_of: dict[str, str]) -> dict[str, list[Group]]:
    """The ground truth's groups by class: machine-made copies, hand copies for tuning, hand copies held out."""
    kinds = definition["categories"]
    classes: dict[str, list[Group]] = {c: [] for c in CLASSES}
    for group in groups:
        spec = kinds.get(category_of.get(group.members[0].id, ""), {})
        name = "machine" if spec.get("kind") != "hand_copy" else "hand_heldout" if spec.get("held_out") else "hand"
        classes[name].append(group)
    return classes


def matched_precision(lists: dict, groups: list[Group]) -> tuple[float, int]:
    """The share of neighbours marked matched that are of the item's own group, and how many were marked."""
    group_of = {m.id: g for g, group in enumerate(groups) for m in group.members}
    marks = [(item_id, nb.id) for item_id, ns in lists.items() for nb in ns if nb.matched]
    right = sum(1 for a, b in marks if a in group_of and group_of[a] == group_of.get(b))
    return (right / len(marks) if marks else 1.0), len(marks)


def rerank_variants(store: StateStore, settings: Settings, classes: dict[str, list[Group]], groups: list[Group],
                    chosen: list[str]) -> tuple[list[dict], dict]:
    """Every re-ranking variant on the lists in the store: scores per class, precision of the marks, cost."""
    mid = descriptor_model_id(settings.model)
    items = store.items_with_vectors(mid)
    category_of = {it.id: it.category for it in items}
    hash_of = {it.id: it.content_hash for it in items}
    path_of = {it.content_hash: it.image for it in items}
    lists = store.neighbors(mid)
    pairs = pairs_to_check(lists, hash_of, CANDIDATES)

    def scores(ranked: dict) -> dict[str, dict[str, Evaluation]]:
        out = {}
        for how, order in (("alone", lambda ns: ns), ("site", copies_first)):
            ids = {i: [nb.id for nb in order(ns)] for i, ns in ranked.items()}
            out[how] = {c: evaluate(ids, classes[c], category_of) for c in CLASSES}
        return out

    first = {"name": "first stage", "min": "", "scores": scores(lists), "precision": (1.0, 0), "wall_ms": 0.0,
             "cpu_ms": 0.0}
    rows = [first]
    for name in chosen:
        params = RERANK_VARIANTS[name]
        wall, cpu = time.perf_counter(), time.process_time()
        counts = count_matches(pairs, path_of, params, settings.model.workers)
        wall, cpu = (time.perf_counter() - wall) / len(lists) * 1000, (time.process_time() - cpu) / len(lists) * 1000
        for minimum in MIN_MATCHES:  # the counts are made once; the threshold only sorts
            ranked = rerank_lists(lists, hash_of, counts, CANDIDATES, minimum)
            rows.append({"name": name, "min": minimum, "scores": scores(ranked), "wall_ms": wall, "cpu_ms": cpu,
                         "precision": matched_precision(ranked, groups)})
        print(f"  re-rank {name}: {wall:.0f} ms per item ({cpu:.0f} ms CPU), {len(pairs)} pairs", flush=True)
    return rows, first


MARKS_RIGHT = 0.95  # a frontend shows "the same motif" on a matched neighbour: it must be right


def choose_rerank(rows: list[dict], embed_ms: float) -> dict:
    """The default: machine-made copies lose nothing (hit@1 as pages rank them stays at the first
    stage's, and alone does not fall), at least ``MARKS_RIGHT`` of the "matched" marks are
    right, and an item costs at most the CPU time of embedding an image (when the run
    embedded); of those, the best MRR on the tuning hand copies, then the cheapest. The
    held-out hand copies take no part."""
    first = rows[0]["scores"]
    keep = [r for r in rows[1:]
            if r["scores"]["site"]["machine"].overall.hits[1] >= first["site"]["machine"].overall.hits[1]
            and r["scores"]["alone"]["machine"].overall.hits[1] >= first["alone"]["machine"].overall.hits[1]
            and r["precision"][0] >= MARKS_RIGHT and (not embed_ms or r["cpu_ms"] <= embed_ms)]
    return max(keep or rows[:1], key=lambda r: (round(r["scores"]["site"]["hand"].overall.mrr, 4), -r["cpu_ms"]))


def rerank_table(rows: list[dict], embed_ms: float) -> str:
    head = (f"{'re-ranking':<22} {'min':>3}  " + "  ".join(f"{c + ' h@1 h@5 MRR':>26}" for c in CLASSES)
            + f"  {'machine alone h@1':>17}  {'marks right':>11}  {'ms/item':>7}  {'CPU ms':>6}  {'x embed':>7}")
    lines = [head]
    for r in rows:
        cells = []
        for c in CLASSES:
            o = r["scores"]["site"][c].overall
            cells.append(f"{o.hits[1]:>10.3f} {o.hits[5]:>6.3f} {o.mrr:>6.3f}  ")
        precision, marks = r["precision"]
        lines.append(f"{r['name']:<22} {r['min']!s:>3}  " + "".join(cells)
                     + f"{r['scores']['alone']['machine'].overall.hits[1]:>17.3f}  "
                     + f"{precision:>6.3f} ({marks:>3})  {r['wall_ms']:>7.0f}  {r['cpu_ms']:>6.0f}  "
                     + f"{r['cpu_ms'] / embed_ms if embed_ms else 0:>7.2f}")
    return "\n".join(lines)


def summary_row(name: str, result: Evaluation, speed: str) -> str:
    o = result.overall
    return f"{name:<18} {o.hits[1]:>6.3f} {o.hits[3]:>6.3f} {o.hits[5]:>6.3f} {o.mrr:>6.3f}  {speed}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groundtruth", type=Path, help="a folder made by make_groundtruth.py (default: build one)")
    add_data_option(parser)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, of: " + ", ".join(VARIANTS))
    parser.add_argument("--rerank", default=",".join(RERANK_VARIANTS),
                        help="re-ranking variants, comma-separated, of: " + ", ".join(RERANK_VARIANTS))
    parser.add_argument("--keep", type=Path, help="keep the state here (default: a temporary folder)")
    args = parser.parse_args(argv)
    chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}")
    reranks = [v.strip() for v in args.rerank.split(",") if v.strip()]
    unknown = [v for v in reranks if v not in RERANK_VARIANTS]
    if unknown:
        parser.error(f"unknown re-ranking variant {unknown[0]!r}")

    with tempfile.TemporaryDirectory(prefix="archive-sim-quality-") as tmp:
        definition_path, source_root = ground_truth(args.data)
        definition = json.loads(definition_path.read_text(encoding="utf-8"))
        gt, groups = groundtruth.built(definition_path, source_root, args.groundtruth, Path(tmp) / "groundtruth")
        work = args.keep or Path(tmp) / "work"
        settings = settings_for_folder(gt / "collection", work / "site")
        settings = settings.model_copy(update={
            "model": settings.model.model_copy(update={"name": args.model}),
            "neighbors": settings.neighbors.model_copy(update={"k": 30}),
            # The descriptor variants are scored on the first stage; the re-ranking comes after.
            "rerank": settings.rerank.model_copy(update={"enabled": False})})
        report = Report(verbosity=0)
        results: dict[str, Evaluation] = {}
        combined: dict[str, Evaluation] = {}
        speeds: dict[str, float | str] = {}
        backbones: dict[str, object] = {}
        stats: dict[str, dict] = {}
        thresholds: dict[str, tuple[int, float]] = {}
        reuse: dict[str, list[list[str]]] = {}
        embed_ms: dict[str, float] = {}
        with StateStore(settings.state_dir) as store:
            fetch.run(settings, store, report)
            n_images = len({it.content_hash for it in store.items()})
            print(f"ground truth {gt}: {len(groups)} groups, {n_images} images; model {args.model}", flush=True)
            done: dict[str, str] = {}
            for name in chosen:
                descriptor = DescriptorSettings(**VARIANTS[name])
                alone = with_descriptor(settings, descriptor, OFF)
                embed_cpu: dict[str, float] = {}
                backbone = embed_variant(alone, store, done, embed_cpu)
                embed_ms[name] = sum(embed_cpu.values()) * 1000  # 0 when the vectors were there
                if backbone is not None:
                    backbones[name] = backbone
                index.run(alone, store, report)
                results[name] = score(store, alone, groups, "similarity")
                stats[name] = pair_statistics(store, alone, groups)
                thresholds[name] = choose_thresholds(stats[name])
                copies = CopiesSettings(hash_distance=thresholds[name][0], similarity=thresholds[name][1])
                site = with_descriptor(settings, descriptor, copies)
                index.run(site, store, report)
                combined[name] = score(store, site, groups, "site")
                reuse[name] = store.reuse_groups(descriptor_model_id(site.model))
                print(f"  {name}: alone hit@1 {results[name].overall.hits[1]:.3f} MRR {results[name].overall.mrr:.3f}; "
                      f"with copies first hit@1 {combined[name].overall.hits[1]:.3f} "
                      f"MRR {combined[name].overall.mrr:.3f}", flush=True)
            results["phash"] = score(store, alone, groups, "phash")
            paths = sorted({it.content_hash: it.image for it in store.items()}.items())[:SPEED_BATCH]
            speeds.update(model_speeds(backbones, [p for _, p in paths]))
            for name in chosen:
                speeds.setdefault(name, "(the model of the variant without whitening)")
            # The second stage, on the lists of the best descriptor as a build makes them
            # with the configured copy thresholds (copies.*).
            best = max(chosen, key=lambda v: (round(combined[v].overall.mrr, 4),
                                              round(combined[v].overall.hits[1], 4), -chosen.index(v)))
            site_best = with_descriptor(settings, DescriptorSettings(**VARIANTS[best]), CopiesSettings())
            index.run(site_best, store, report)
            category_of = {it.id: it.category for it in store.items()}
            classes = group_classes(definition, groups, category_of)
            rerank_rows, _ = rerank_variants(store, site_best, classes, groups, reranks)

    # The default: the best score as item pages rank (copies first), MRR then hit@1;
    # among equals the cheapest (VARIANTS lists them from cheapest up).
    hash_distance, similarity = thresholds[best]
    results["combined"] = combined[best]
    base = speeds.get("avg") if isinstance(speeds.get("avg"), float) else None
    print()
    print(f"{'variant':<18} {'alone: hit@1':>12} {'hit@3':>6} {'hit@5':>6} {'MRR':>6}   "
          f"{'copies first: hit@1':>20} {'MRR':>6}  {'copies':>16}  model speed")
    for name in chosen:
        rate = speeds[name]
        speed = rate if isinstance(rate, str) else f"{rate:.1f} img/s" + (f" ({rate / base:.2f}x avg)" if base else "")
        a, c = results[name].overall, combined[name].overall
        rule = f"<={thresholds[name][0]} / >={thresholds[name][1]}"
        print(f"{name:<18} {a.hits[1]:>12.3f} {a.hits[3]:>6.3f} {a.hits[5]:>6.3f} {a.mrr:>6.3f}   "
              f"{c.hits[1]:>20.3f} {c.mrr:>6.3f}  {rule:>16}  {speed}")
    p = results["phash"].overall
    print(f"{'phash':<18} {p.hits[1]:>12.3f} {p.hits[3]:>6.3f} {p.hits[5]:>6.3f} {p.mrr:>6.3f}   (pHash distance alone)")
    print("(copies: pHash distance <= / similarity >= thresholds chosen for each variant from its own pairs)")
    transforms = sorted(results[best].by_transform)
    print()
    print("hit@1 per transform (query = the item with that transform); variants alone, then phash, "
          f"then {best} with copies first")
    print(f"{'variant':<18} " + " ".join(f"{t[:10]:>10}" for t in transforms))
    for name in chosen + ["phash", "combined"]:
        by = results[name].by_transform
        label = f"{best}+copies" if name == "combined" else name
        print(f"{label[:18]:<18} " + " ".join(f"{by[t].hits[1]:>10.3f}" if t in by else f"{'-':>10}" for t in transforms))
    for name, label in ((best, f"{best} alone"), ("phash", "phash alone"), ("combined", f"{best} with copies first")):
        print()
        print(f"{label}, per category")
        print(format_table(results[name].by_category, "category"))
    print()
    print(f"copy pairs of {best}:")
    print(threshold_table(stats[best]))
    pure, whole = reuse_quality(reuse[best], groups)
    print(f"chosen: copies.hash_distance = {hash_distance}, copies.similarity = {similarity}")
    print(f"reuse groups: {len(reuse[best])} found, {pure} of them hold one picture only; "
          f"{whole} of the {len(groups)} ground-truth groups found whole")
    print()
    print(f"re-ranking the {best} lists (copies first, copies.* as configured; the first {CANDIDATES} "
          f"neighbours checked); marks right: matched neighbours of the item's own group (marks made); "
          f"embed {embed_ms.get(best, 0):.0f} ms CPU per image")
    print(rerank_table(rerank_rows, embed_ms.get(best, 0.0)))
    pick = choose_rerank(rerank_rows, embed_ms.get(best, 0.0))
    print(f"chosen: rerank.method/geometry = {pick['name']}, rerank.min_matches = {pick['min']}")
    print()
    o = {name: r.overall for name, r in results.items()}
    figures = [f"best={best}"]
    for name in ("avg", best, "phash", "combined"):
        if name in o:
            figures += [f"{name}_hit1={o[name].hits[1]:.3f}", f"{name}_mrr={o[name].mrr:.3f}"]
    if base and isinstance(speeds.get(best), float):
        figures.append(f"{best}_speed_vs_avg={speeds[best] / base:.2f}")
    figures += [f"hash_distance={hash_distance}", f"similarity={similarity}", f"reuse_groups={len(reuse[best])}",
                f"reuse_pure={pure}", f"reuse_whole={whole}"]
    base_rows = rerank_rows[0]["scores"]["site"]
    figures += [f"rerank={pick['name']}/{pick['min']}"]
    for c in CLASSES:
        figures += [f"{c}_hit1={base_rows[c].overall.hits[1]:.3f}",
                    f"{c}_reranked_hit1={pick['scores']['site'][c].overall.hits[1]:.3f}"]
    figures += [f"rerank_cpu_ms_per_item={pick['cpu_ms']:.0f}", f"embed_cpu_ms_per_image={embed_ms.get(best, 0):.0f}"]
    print(" ".join(dict.fromkeys(figures)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
