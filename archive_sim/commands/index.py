"""``archive-sim index``: one Annoy index per category, every item's neighbours, and copies.

Input: items with vectors for the configured model (and descriptor). Output:
``<state>/index/<model>/<category>.ann`` with ``.ids.json`` (and ``whitening.npz``
when the descriptor whitens), neighbour lists with copies marked, the groups of
copies across the whole collection, and per category the similarity of random pairs
of its pictures (``calibration.py``: what "similar" means there), in the state store. With ``rerank.enabled``,
each list's first ``rerank.candidates`` are checked for local evidence of the same
composition and re-ranked (``local_matching.py``); pair counts are kept by image
content, so only pairs not checked before are matched. Perceptual hashes are
computed once per image. When nothing changed, nothing is loaded; a category whose
members, vectors, copies and settings have not changed is not rebuilt.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from annoy import AnnoyIndex

from ..state_store import Neighbor, StateStore
from ..config import Settings
from ..calibration import (ALL_PAIRS_UP_TO, BANDS, LEVELS, Calibration, calibrate, random_pair_similarities,
                           settled)
from ..copy_detection import CopyRule, CopyState, compute_phashes, find_copies, mark_copies, update_copies
from ..embed.descriptors import WHITENING_FILE, descriptor_model_id, searchable
from ..local_matching import (FeatureCache, MatchParams, cache_limit, count_matches, locality_order, pairs_to_check,
                              rerank_lists)
from ..neighbor_update import RawLists, update_lists
from ..neighbors import RecentItems, build_index, indexed_items, nearest_neighbors, save_index, signature
from ..progress import Report
from . import RunOptions, stage_command
from ..slugs import category_slug
from ..slugs import slugify

COPIES_FILE = "copies.npz"  # the copy pairs of the last build, to update
# Items added, changed or removed since a category's Annoy file was built, as a share of
# the category, above which the file is built again.
ANNOY_REBUILD_SHARE = 0.1


def _phashes(settings: Settings, store: StateStore, items, report: Report) -> dict[str, int]:
    """The pHash of every item's image, computing only those not cached."""
    path_of: dict[str, str] = {}
    for it in items:
        path_of.setdefault(it.content_hash, it.image)
    known = store.phashes(path_of)
    missing = sorted(set(path_of) - set(known))
    if missing:
        with report.progress(len(missing), "perceptual hashes") as advance:
            found, failed = compute_phashes([(h, path_of[h]) for h in missing], settings.model.workers, advance)
        store.put_phashes(found.items())
        known.update(found)
        for content_hash, reason in failed.items():
            report.problem(path_of[content_hash], f"no perceptual hash: {reason}")
    return known


def match_params(settings: Settings) -> MatchParams:
    r = settings.rerank
    return MatchParams(r.method, r.geometry, r.side, r.features, r.ratio, r.tolerance)


def rerank_stage(settings: Settings, store: StateStore, lists: dict[str, list[Neighbor]],
                 path_by_hash: dict[str, str], hash_of: dict[str, str], report: Report,
                 vectors: np.ndarray | None = None, hashes: list[str] | None = None) -> tuple[dict, int]:
    """``lists`` re-ranked by local matches, and how many pairs had to be matched (the rest were stored).

    ``vectors`` (rows of ``hashes``) let a category larger than the feature cache be
    matched neighbourhood by neighbourhood."""
    r = settings.rerank
    params = match_params(settings)
    wanted = pairs_to_check(lists, hash_of, r.candidates)
    counts = store.local_matches(params.key(), wanted)
    missing = wanted - set(counts)
    if missing:
        order = None
        if vectors is not None and hashes is not None and len(hashes) > cache_limit(params) // 4:
            order = locality_order(hashes, vectors, cache_limit(params), settings.map.seed)
        cache = FeatureCache(params)
        with report.progress(len(missing), "local matches") as advance:
            found = count_matches(missing, path_by_hash, params, settings.model.workers, advance, cache, order)
        for content_hash, reason in sorted(cache.failed.items()):
            report.problem(path_by_hash[content_hash], f"no local matches: {reason}")
        # A pair with an unreadable image counts nothing now and is tried again next time.
        store.put_local_matches(params.key(), {p: n for p, n in found.items()
                                               if p[0] not in cache.failed and p[1] not in cache.failed})
        counts.update(found)
    return rerank_lists(lists, hash_of, counts, r.candidates, r.min_matches), len(missing)


def run(settings: Settings, store: StateStore, report: Report, options: RunOptions = RunOptions()) -> int:
    with report.stage("index") as stage:
        mid = descriptor_model_id(settings.model)
        items = store.items_with_vectors(mid)
        categories = sorted({it.category for it in items})
        folder = settings.state_dir / "index" / slugify(mid)
        nb, cp = settings.neighbors, settings.copies
        rr = settings.rerank
        params = (mid, nb.k, nb.trees, nb.duplicate_threshold, settings.map.seed, cp.hash_distance, cp.similarity,
                  *((rr.candidates, rr.min_matches, match_params(settings).key()) if rr.enabled else ()))
        calibration_params = (BANDS, LEVELS, ALL_PAIRS_UP_TO)
        everything = signature([it.id for it in items], [it.content_hash for it in items], *params,
                               calibration_params)
        if (store.get_meta(f"index:{mid}") == everything
                and all((folder / f"{category_slug(c)}.ann").exists() for c in categories)):
            stage.note = f"{len(categories)} categories, 0 rebuilt"
            store.set_meta("rerank_seconds", "0")
            return 0
        phashes = _phashes(settings, store, items, report)
        vectors, whitening = searchable(store.vectors(mid, [it.content_hash for it in items]),
                                        settings.model.descriptor)
        if whitening is not None:
            whitening.save(folder / WHITENING_FILE)
        else:
            (folder / WHITENING_FILE).unlink(missing_ok=True)
        space = whitening.fingerprint() if whitening is not None else "raw"
        ids = [it.id for it in items]
        content = [it.content_hash for it in items]
        rule = CopyRule(cp.hash_distance, cp.similarity)
        copies_path = folder / COPIES_FILE
        copy_key = signature([], [], mid, space, cp.hash_distance, cp.similarity, nb.trees, settings.map.seed)
        previous_copies = CopyState.load(copies_path)
        if previous_copies is not None and previous_copies.key == copy_key:
            graph, touched = update_copies(previous_copies, ids, content, [phashes.get(h) for h in content],
                                           vectors, rule)
        else:
            graph = find_copies(ids, content, [phashes.get(h) for h in content], vectors, rule, nb.trees,
                                settings.map.seed)
            touched = set(ids)
        hash_of = {it.id: it.content_hash for it in items}
        path_by_hash = {it.content_hash: it.image for it in items}
        rebuilt = matched_pairs = updated_lists = annoy_rebuilt = 0
        rerank_seconds = 0.0
        # What a category's searched lists depend on besides its items, and what the
        # published lists depend on besides those.
        search_key = signature([], [], mid, nb.k, nb.trees, settings.map.seed, space)
        rows_of: dict[str, list[int]] = {}
        for i, it in enumerate(items):
            rows_of.setdefault(it.category, []).append(i)
        calibrations_in_use = store.calibrations(mid)  # kept while measuring again moves them little
        for category in categories:
            rows = rows_of[category]
            members = [ids[i] for i in rows]
            hashes = [content[i] for i in rows]
            copies = graph.fingerprint(members)
            calibration_sig = signature(members, hashes, mid, settings.map.seed, space, copies, calibration_params)
            if store.get_meta(f"calibration:{mid}:{category}") != calibration_sig:
                position = {item_id: n for n, item_id in enumerate(members)}
                copy_pairs = [(position[a], position[b]) for a in members for b in graph.of(a) if b in position]
                measured = calibrate(random_pair_similarities(vectors[rows], copy_pairs, settings.map.seed,
                                                              keys=members))
                in_use = calibrations_in_use.get(category)
                calibration = settled(Calibration.from_json(in_use) if in_use else None, measured)
                store.put_calibration(mid, category, calibration.to_json() if calibration else None)
                store.set_meta(f"calibration:{mid}:{category}", calibration_sig)
            sig = signature(members, hashes, *params, space, copies)
            path = folder / f"{category_slug(category)}.ann"
            if store.get_meta(f"index:{mid}:{category}") == sig and path.exists():
                continue
            lists_path = path.with_suffix(".lists.npz")
            previous = RawLists.load(lists_path) if path.exists() else None
            same_marking = store.get_meta(f"index-marking:{mid}:{category}") == repr(params)
            index = None
            if previous is not None and previous.space == search_key:
                raw, change = update_lists(previous, members, hashes, vectors[rows], nb.k, search_key)
                redo = change.changed | (touched & set(members)) if same_marking else set(members)
                updated_lists += len(redo)
            else:
                index = build_index(vectors[rows], nb.trees, settings.map.seed)
                raw = RawLists.from_lists(members, hashes, nearest_neighbors(index, members, hashes, nb.k,
                                                                             nb.duplicate_threshold),
                                          nb.k, search_key)
                redo = set(members)
            position = {m: j for j, m in enumerate(members)}
            lists = raw.as_lists(nb.duplicate_threshold, sorted(position[m] for m in redo))
            lists = mark_copies(lists, graph, set(members), hash_of, nb.k, nb.duplicate_threshold)
            if rr.enabled:
                start = time.perf_counter()
                whole = len(redo) == len(members)
                lists, checked = rerank_stage(settings, store, lists, path_by_hash, hash_of, report,
                                              vectors[rows] if whole else None, hashes if whole else None)
                rerank_seconds += time.perf_counter() - start
                matched_pairs += checked
            # The lists go to the store before the searched lists they came from are saved:
            # interrupted in between, the next run updates from the older ones again.
            store.put_neighbors(mid, lists)
            raw.save(lists_path)
            annoy_rebuilt += _publish_index(index, path, members, hashes, vectors[rows], nb.trees, settings.map.seed)
            store.set_meta(f"index:{mid}:{category}", sig)
            store.set_meta(f"index-marking:{mid}:{category}", repr(params))
            rebuilt += 1
        CopyState.of(graph, ids, content, copy_key).save(copies_path)
        category_of = {it.id: it.category for it in items}
        groups = graph.groups(order=lambda i: (category_of[i], i))
        store.put_reuse_groups(mid, groups)
        store.set_meta(f"index:{mid}", everything)
        store.set_meta("rerank_seconds", f"{rerank_seconds:.3f}")
        stage.note = (f"{len(categories)} categories, {rebuilt} rebuilt ({updated_lists} lists updated, "
                      f"{annoy_rebuilt} Annoy indexes built), "
                      f"{graph.pair_count()} copy pairs "
                      f"in {len(groups)} groups"
                      + (f", {matched_pairs} pairs matched in {rerank_seconds:.1f} s" if rr.enabled else ""))
        return rebuilt


def _publish_index(index: AnnoyIndex | None, path: Path, members: list[str], hashes: list[str],
                   vectors: np.ndarray, trees: int, seed: int) -> int:
    """Save the category's search index for ``query``; return 1 if an Annoy index was built.

    Annoy cannot add items, and building one costs several times the searches of a 1 %
    update, so the items added or changed since the Annoy file was built are kept beside
    it (``RecentItems``, searched exactly) until they and the items removed since exceed
    ``ANNOY_REBUILD_SHARE`` of the category."""
    if index is None:
        indexed = indexed_items(path)
        if indexed is not None:
            fresh = [i for i, key in enumerate(zip(members, hashes)) if key not in indexed]
            stale = len(indexed - set(zip(members, hashes)))
            if len(fresh) + stale <= ANNOY_REBUILD_SHARE * len(members):
                RecentItems([members[i] for i in fresh], vectors[fresh]).save(path)
                return 0
        index = build_index(vectors, trees, seed)
    save_index(index, members, path, hashes)
    return 1


COMMAND = stage_command(
    "index", run,
    help="Build one Annoy index per category and every item's nearest neighbours.",
    description="""Build one Annoy index per category and every item's list of nearest
neighbours (neighbors.k of them), with the copies of the same picture first.""")
