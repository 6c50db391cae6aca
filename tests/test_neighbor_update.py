"""A rebuild after items were added and removed gives the neighbour lists and copies a
build from scratch gives, while searching only the lists that can change: real
pictures of the example collection, cropped and in gray as well, embedded with the
build's descriptor."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from archive_sim.config import ModelSettings  # noqa: E402
from archive_sim.copy_detection import CopyRule, CopyState, find_copies, phash_image, update_copies  # noqa: E402
from archive_sim.embed.descriptors import load_descriptor  # noqa: E402
from archive_sim.embed.pipeline import l2_normalise  # noqa: E402
from archive_sim.imaging import load_rgb, model_array  # noqa: E402
from archive_sim.neighbor_update import RawLists, update_lists  # noqa: E402
from archive_sim.neighbors import RecentItems, build_index, indexed_items, nearest_neighbors, save_index  # noqa: E402

COLLECTION = Path(__file__).resolve().parents[1] / "examples" / "collection"
K = 10
THRESHOLD = 0.9999


def _crop(img: Image.Image) -> Image.Image:
    w, h = img.size
    return img.crop((w // 10, h // 10, w - w // 12, h - h // 12))


@pytest.fixture(scope="module")
def pictures() -> dict[str, object]:
    """Every picture of the collection, cropped and in gray as well: ids, content hashes, vectors, pHashes."""
    files = sorted(p for p in COLLECTION.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    originals = [load_rgb(p) for p in files]
    images = (originals + [_crop(img) for img in originals]
              + [ImageOps.grayscale(img).convert("RGB") for img in originals])
    descriptor = load_descriptor(ModelSettings())
    arrays = np.stack([model_array(img, descriptor.input_size) for img in images])
    vectors = l2_normalise(np.concatenate([descriptor.features(arrays[i:i + 16]) for i in range(0, len(arrays), 16)]))
    ids = [f"{kind}/{p.parent.name}/{p.stem}" for kind in ("original", "crop", "gray") for p in files]
    return {"ids": ids, "hashes": [f"h-{i}" for i in ids], "vectors": vectors.astype(np.float32),
            "phashes": [phash_image(img) for img in images]}


def _same_lists(a: dict, b: dict) -> bool:
    """The same neighbours in the same order, similarities equal to the 4th decimal (Annoy
    computes them in float32, the exact search in float32 matrix products)."""
    return a.keys() == b.keys() and all(
        [nb.id for nb in a[i]] == [nb.id for nb in b[i]]
        and all(abs(x.similarity - y.similarity) <= 1e-4 for x, y in zip(a[i], b[i])) for i in a)


def _scratch(ids, hashes, vectors):
    index = build_index(vectors, 50)
    return RawLists.from_lists(ids, hashes, nearest_neighbors(index, ids, hashes, K, THRESHOLD), K, "key")


def _split(pictures, seed: int = 5):
    """The collection before (some gray versions still to come, a few items since removed) and after."""
    ids, hashes, vectors = pictures["ids"], pictures["hashes"], pictures["vectors"]
    rng = np.random.default_rng(seed)
    n = len(ids)
    later = set(rng.choice(np.arange(2 * n // 3, n), size=8, replace=False).tolist())
    removed = set(rng.choice(np.arange(0, 2 * n // 3), size=3, replace=False).tolist())
    before = [i for i in range(n) if i not in later]
    after = [i for i in range(n) if i not in removed]
    return before, after, removed, later


def test_updated_lists_equal_lists_built_from_scratch(pictures) -> None:
    ids, hashes, vectors = pictures["ids"], pictures["hashes"], pictures["vectors"]
    before, after, removed, later = _split(pictures)
    previous = _scratch([ids[i] for i in before], [hashes[i] for i in before], vectors[before])
    updated, change = update_lists(previous, [ids[i] for i in after], [hashes[i] for i in after],
                                   vectors[after], K, "key")
    scratch = _scratch([ids[i] for i in after], [hashes[i] for i in after], vectors[after])
    assert _same_lists(updated.as_lists(THRESHOLD), scratch.as_lists(THRESHOLD))
    # Searched again: the new items and the lists that held a removed one; other lists only
    # took new items in, and a list that changed is reported as changed.
    previous_lists = previous.as_lists(THRESHOLD)
    gone = {ids[i] for i in removed}
    assert change.searched == len(later) + sum(1 for item_id, nbs in previous_lists.items()
                                               if item_id not in gone and gone & {nb.id for nb in nbs})
    for item_id, neighbours in updated.as_lists(THRESHOLD).items():
        if previous_lists.get(item_id) != neighbours:
            assert item_id in change.changed
    assert change.entered > 0
    assert len(change.changed) < len(after)


def test_nothing_added_or_removed_changes_nothing(pictures) -> None:
    ids, hashes, vectors = pictures["ids"], pictures["hashes"], pictures["vectors"]
    previous = _scratch(ids, hashes, vectors)
    updated, change = update_lists(previous, ids, hashes, vectors, K, "key")
    assert change.changed == set() and change.searched == 0
    assert updated.as_lists(THRESHOLD) == previous.as_lists(THRESHOLD)


def test_a_changed_image_is_searched_again_under_its_id(pictures) -> None:
    ids, hashes, vectors = pictures["ids"], pictures["hashes"], pictures["vectors"]
    previous = _scratch(ids, hashes, vectors)
    # The first original now shows the gray version of the second picture.
    second_gray = ids.index(ids[1].replace("original/", "gray/"))
    changed_vectors = vectors.copy()
    changed_vectors[0] = vectors[second_gray]
    changed_hashes = [hashes[second_gray]] + hashes[1:]
    updated, change = update_lists(previous, ids, changed_hashes, changed_vectors, K, "key")
    assert ids[0] in change.changed
    scratch = _scratch(ids, changed_hashes, changed_vectors)
    assert _same_lists(updated.as_lists(THRESHOLD), scratch.as_lists(THRESHOLD))
    first = updated.as_lists(THRESHOLD)[ids[0]]
    assert first[0].id == ids[second_gray] and first[0].duplicate


def test_updated_copies_equal_copies_found_from_scratch(pictures) -> None:
    ids, hashes, vectors, phashes = pictures["ids"], pictures["hashes"], pictures["vectors"], pictures["phashes"]
    rule = CopyRule(hash_distance=10, similarity=0.9)
    before, after, removed, later = _split(pictures, seed=11)
    old = find_copies([ids[i] for i in before], [hashes[i] for i in before], [phashes[i] for i in before],
                      vectors[before], rule)
    state = CopyState.of(old, [ids[i] for i in before], [hashes[i] for i in before], "key")
    graph, touched = update_copies(CopyState.from_bytes(state.to_bytes()), [ids[i] for i in after],
                                   [hashes[i] for i in after], [phashes[i] for i in after], vectors[after], rule)
    scratch = find_copies([ids[i] for i in after], [hashes[i] for i in after], [phashes[i] for i in after],
                          vectors[after], rule)
    assert graph.partners == scratch.partners
    assert graph.groups() == scratch.groups()
    # The gray versions are copies of their originals by pHash: new pairs were found.
    assert any(ids[i] in graph.partners for i in later)
    # Every item whose copies differ from before is named as touched.
    for item_id in {ids[i] for i in after}:
        if old.of(item_id) != graph.of(item_id):
            assert item_id in touched


def test_items_added_since_the_annoy_file_are_found_by_exact_search_beside_it(pictures, tmp_path) -> None:
    ids, hashes, vectors = pictures["ids"], pictures["hashes"], pictures["vectors"]
    path = tmp_path / "photographs.ann"
    save_index(build_index(vectors[:100], 10), ids[:100], path, hashes[:100])
    assert indexed_items(path) == set(zip(ids[:100], hashes[:100]))
    RecentItems(ids[100:], vectors[100:]).save(path)
    recent = RecentItems.load(path)
    found = recent.similarities(vectors[120])
    assert max(found, key=found.get) == ids[120] and found[ids[120]] == 1.0
    assert set(found) == set(ids[100:])
    # Building the Annoy file again takes the recent items in: none are left beside it.
    save_index(build_index(vectors, 10), ids, path, hashes)
    assert RecentItems.load(path).ids == []
