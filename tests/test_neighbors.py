"""Neighbour lists say which items look alike, with honest similarities; maps
place every item inside the unit square, the same way on every run."""

from __future__ import annotations

import numpy as np
import pytest

from archive_sim.neighbors import build_index, load_index, nearest_neighbors, save_index, similarity_from_angular
from archive_sim.projection import MapLayout, extend, layout, new_items, normalise_positions, project

DIM = 64


def _clustered(n: int, clusters: int = 5, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, DIM))
    labels = np.arange(n) % clusters
    vectors = centres[labels] + 0.35 * rng.normal(size=(n, DIM))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def _lists(vectors, k=10, hashes=None, trees=10, threshold=0.9999):
    ids = [f"item-{i:03d}" for i in range(len(vectors))]
    hashes = hashes or [f"hash-{i}" for i in range(len(vectors))]
    index = build_index(vectors, trees)
    return ids, nearest_neighbors(index, ids, hashes, k, threshold)


@pytest.fixture(scope="module")
def clustered():
    vectors = _clustered(120)
    ids, lists = _lists(vectors, k=10)
    return vectors, ids, lists


def test_an_item_is_never_its_own_neighbour(clustered):
    _, ids, lists = clustered
    assert set(lists) == set(ids)
    for item_id, neighbours in lists.items():
        assert item_id not in [nb.id for nb in neighbours]


def test_lists_hold_k_items_sorted_best_first(clustered):
    _, _, lists = clustered
    for neighbours in lists.values():
        assert len(neighbours) == 10
        sims = [nb.similarity for nb in neighbours]
        assert sims == sorted(sims, reverse=True)
        assert len({nb.id for nb in neighbours}) == 10


def test_similarity_is_one_minus_cosine_distance_to_4_decimals(clustered):
    vectors, ids, lists = clustered
    position = {item_id: i for i, item_id in enumerate(ids)}
    cos = vectors.astype(np.float64) @ vectors.astype(np.float64).T
    for item_id, neighbours in lists.items():
        i = position[item_id]
        for nb in neighbours:
            expected = cos[i, position[nb.id]]
            assert nb.similarity == round(nb.similarity, 4)
            assert abs(nb.similarity - expected) <= 0.5e-4 + 1e-5, (item_id, nb, expected)


def test_the_neighbours_are_the_truly_nearest(clustered):
    vectors, ids, lists = clustered
    cos = vectors.astype(np.float64) @ vectors.astype(np.float64).T
    np.fill_diagonal(cos, -np.inf)
    recall = []
    for i, item_id in enumerate(ids):
        exact = {ids[j] for j in np.argsort(-cos[i])[:10]}
        recall.append(len(exact & {nb.id for nb in lists[item_id]}) / 10)
        # Every neighbour is from the item's own cluster (clusters are well apart here).
        assert all(int(nb.id[-3:]) % 5 == i % 5 for nb in lists[item_id])
    assert np.mean(recall) >= 0.95


def test_an_identical_vector_is_listed_first_as_a_duplicate():
    vectors = _clustered(40)
    vectors[7] = vectors[3]  # the same picture scanned twice: a different file, the same vector
    ids, lists = _lists(vectors, k=5)
    first = lists[ids[3]][0]
    assert (first.id, first.similarity, first.duplicate) == (ids[7], 1.0, True)
    first = lists[ids[7]][0]
    assert (first.id, first.similarity, first.duplicate) == (ids[3], 1.0, True)
    others = [nb for nbs in lists.values() for nb in nbs if {nb.id} - {ids[3], ids[7]}]
    assert not any(nb.duplicate for nb in others)


def test_the_same_file_twice_is_a_duplicate_even_when_many_copies_exist():
    vectors = _clustered(30)
    hashes = [f"hash-{i}" for i in range(30)]
    for copy in (11, 12, 13, 14, 15):  # five more copies of item 10's file
        vectors[copy] = vectors[10]
        hashes[copy] = hashes[10]
    ids, lists = _lists(vectors, k=3, hashes=hashes)
    for i in (10, 11, 12, 13, 14, 15):
        neighbours = lists[ids[i]]
        assert len(neighbours) == 3
        assert ids[i] not in [nb.id for nb in neighbours]
        assert all(nb.duplicate and nb.similarity == 1.0 for nb in neighbours)
        # Ties are broken by id, so the list does not flip between runs.
        assert [nb.id for nb in neighbours] == sorted(nb.id for nb in neighbours)


def test_a_shared_content_hash_marks_a_duplicate_even_below_the_threshold():
    vectors = _clustered(20)
    hashes = [f"hash-{i}" for i in range(20)]
    hashes[5] = hashes[0]  # same bytes, vector recomputed with float noise
    ids, lists = _lists(vectors, k=19, hashes=hashes)
    marked = {nb.id for nb in lists[ids[0]] if nb.duplicate}
    assert marked == {ids[5]}


@pytest.mark.parametrize("n, k, expected", [(1, 30, 0), (2, 30, 1), (5, 30, 4), (31, 30, 30), (60, 30, 30)])
def test_lists_have_min_k_and_n_minus_1_entries(n, k, expected):
    ids, lists = _lists(_clustered(n), k=k)
    assert all(len(neighbours) == expected for neighbours in lists.values())


def test_similarity_from_angular_distance():
    assert similarity_from_angular(0.0) == 1.0
    assert similarity_from_angular(np.sqrt(2.0)) == 0.0
    assert similarity_from_angular(2.0) == -1.0
    assert similarity_from_angular(2.0000001) == -1.0  # float noise stays in range


def test_an_index_saved_and_loaded_gives_the_same_neighbours(tmp_path):
    vectors = _clustered(50)
    ids = [f"Åkerö {i}" for i in range(50)]  # non-ASCII ids survive the id map
    hashes = [f"h{i}" for i in range(50)]
    before = nearest_neighbors(build_index(vectors, 10), ids, hashes, 8, 0.9999)

    path = tmp_path / "index" / "photographs.ann"
    save_index(build_index(vectors, 10), ids, path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["photographs.ann", "photographs.ids.json"]
    index, loaded_ids = load_index(path, DIM)
    assert loaded_ids == ids
    assert index.get_n_items() == 50
    after = nearest_neighbors(index, loaded_ids, hashes, 8, 0.9999)
    assert after == before


def test_the_same_inputs_give_the_same_lists():
    vectors = _clustered(80)
    assert _lists(vectors, k=10) == _lists(vectors, k=10)


# --- projection ---------------------------------------------------------------------


def _assert_in_unit_square_with_the_long_axis_spanning_it(points: np.ndarray) -> None:
    assert np.isfinite(points).all()
    assert points.min() >= 0.0 and points.max() <= 1.0
    low, high = points.min(axis=0), points.max(axis=0)
    spans = high - low
    long_axis = int(np.argmax(spans))
    assert low[long_axis] == pytest.approx(0.0, abs=1e-9)
    assert high[long_axis] == pytest.approx(1.0, abs=1e-9)
    short = 1 - long_axis
    # The shorter axis is centred: as much margin below as above.
    assert low[short] == pytest.approx(1.0 - high[short], abs=1e-9)


@pytest.mark.parametrize("n", [0, 1, 2, 5, 60])
def test_projection_positions_lie_in_the_unit_square(n):
    points = project(_clustered(n) if n else np.zeros((0, DIM), dtype=np.float32), seed=1)
    assert points.shape == (n, 2)
    if n == 0:
        return
    if n == 1:
        assert points.tolist() == [[0.5, 0.5]]
        return
    _assert_in_unit_square_with_the_long_axis_spanning_it(points)
    assert len({tuple(p) for p in points.round(6)}) == n  # distinct items, distinct places


def test_projection_is_the_same_for_the_same_seed():
    vectors = _clustered(60)
    first = project(vectors, perplexity=10, seed=42)
    assert np.array_equal(first, project(vectors, perplexity=10, seed=42))


def test_projection_keeps_clusters_together():
    vectors = _clustered(60, clusters=3)
    points = project(vectors, perplexity=10, seed=42)
    labels = np.arange(60) % 3
    centres = np.array([points[labels == c].mean(axis=0) for c in range(3)])
    spread = max(np.linalg.norm(points[labels == c] - centres[c], axis=1).mean() for c in range(3))
    gaps = min(np.linalg.norm(centres[a] - centres[b]) for a in range(3) for b in range(a + 1, 3))
    assert gaps > 2 * spread


@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")  # sklearn PCA, zero variance
def test_identical_vectors_share_one_place_in_a_small_map():
    vectors = np.repeat(_clustered(1), 4, axis=0)
    assert project(vectors).tolist() == [[0.5, 0.5]] * 4


def test_normalise_positions_keeps_proportions():
    points = normalise_positions(np.array([[-10.0, 5.0], [30.0, 5.0], [10.0, 15.0]]))
    # Width 40, height 10: x spans 0..1, y spans 0.25 of it, centred.
    np.testing.assert_allclose(points, [[0.0, 0.375], [1.0, 0.375], [0.5, 0.625]])


def test_new_items_join_their_likes_on_a_map_without_the_kept_items_vectors():
    vectors = _clustered(300)
    labels = np.arange(300) % 5
    ids = [f"item-{i:03d}" for i in range(300)]
    before = layout(ids[:280], ids[:280], vectors[:280], perplexity=20)
    saved = MapLayout.from_bytes(before.to_bytes())
    assert new_items(saved, ids, ids) == list(range(280, 300))
    after = extend(saved, ids, ids, vectors[280:])  # only the new items' vectors
    assert np.array_equal(after.raw[:280], before.raw)
    centres = np.array([before.raw[labels[:280] == c].mean(axis=0) for c in range(5)])
    for i in range(280, 300):
        assert np.argmin(np.linalg.norm(centres - after.raw[i], axis=1)) == labels[i]
    # A layout saved without its PCA coordinates places the same way from the kept items' vectors.
    without = MapLayout(*[getattr(saved, f) for f in ("ids", "hashes", "raw", "mean", "components", "low",
                                                      "span", "offset")])
    with pytest.raises(ValueError):
        extend(without, ids, ids, vectors[280:])
    again = extend(without, ids, ids, vectors[280:], old_vectors=vectors[:280])
    assert np.allclose(again.raw, after.raw, atol=1e-4)
