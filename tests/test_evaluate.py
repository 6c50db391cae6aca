"""Scores of "the same picture" are right: a perfect ranking scores 1, a shuffled one
scores exactly what its ranks say, and ``archive-sim evaluate`` reads a build's lists."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from archive_sim.state_store import CatalogItem, Neighbor, StateStore
from archive_sim.config import settings_for_folder
from archive_sim.embed.descriptors import descriptor_model_id
from archive_sim.evaluation import ALL, Group, GroupsError, Member, evaluate, first_relevant_rank, load_groups, \
    parse_groups

from repo_images import EXAMPLE_COLLECTION

# Three pictures, each with copies, in two categories, and items that copy nothing.
GROUPS = [
    Group((Member("a", "original"), Member("a-crop", "crop"), Member("a-gray", "grayscale"))),
    Group((Member("b", "original"), Member("b-crop", "crop"))),
    Group((Member("c", "original"), Member("c-gray", "grayscale"))),
]
CATEGORY = {"a": "photos", "a-crop": "photos", "a-gray": "photos", "b": "photos", "b-crop": "photos",
            "x1": "photos", "x2": "photos", "c": "prints", "c-gray": "prints", "y1": "prints", "y2": "prints"}


def _others(item_id: str) -> list[str]:
    return sorted(i for i, c in CATEGORY.items() if c == CATEGORY[item_id] and i != item_id)


def _group_of(item_id: str) -> set[str]:
    for group in GROUPS:
        ids = {m.id for m in group.members}
        if item_id in ids:
            return ids - {item_id}
    return set()


def test_a_perfect_ranking_scores_one_everywhere() -> None:
    rankings = {}
    for item_id in CATEGORY:
        relevant = _group_of(item_id)
        rankings[item_id] = sorted(relevant) + [o for o in _others(item_id) if o not in relevant]
    result = evaluate(rankings, GROUPS, CATEGORY)
    assert set(result.by_category) == {"photos", "prints", ALL}
    assert result.by_category["photos"].queries == 5 and result.by_category["prints"].queries == 2
    assert result.overall.queries == 7  # every member of every group is a query; x and y are not
    for score in [*result.by_category.values(), *result.by_transform.values()]:
        assert score.hits == {1: 1.0, 3: 1.0, 5: 1.0} and score.mrr == 1.0
    assert result.missing == []


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_shuffled_ranking_scores_what_its_ranks_say(seed: int) -> None:
    rng = random.Random(seed)
    rankings = {}
    for item_id in CATEGORY:
        others = _others(item_id)
        rng.shuffle(others)
        rankings[item_id] = others
    result = evaluate(rankings, GROUPS, CATEGORY)
    # The expected value of each query, computed from its list position by hand.
    ranks = {i: min(rankings[i].index(r) for r in _group_of(i)) + 1 for i in CATEGORY if _group_of(i)}
    for category in ("photos", "prints"):
        mine = [r for i, r in ranks.items() if CATEGORY[i] == category]
        score = result.by_category[category]
        assert score.queries == len(mine)
        for k in (1, 3, 5):
            assert score.hits[k] == pytest.approx(sum(r <= k for r in mine) / len(mine))
        assert score.mrr == pytest.approx(sum(1 / r for r in mine) / len(mine))
    assert result.overall.mrr == pytest.approx(sum(1 / r for r in ranks.values()) / len(ranks))
    crop = [r for i, r in ranks.items() if i.endswith("-crop")]
    assert result.by_transform["crop"].hits[1] == pytest.approx(sum(r == 1 for r in crop) / len(crop))


def test_a_worst_ranking_scores_zero_and_short_lists_count_as_misses() -> None:
    rankings = {i: [o for o in _others(i) if o not in _group_of(i)] for i in CATEGORY}
    rankings["a"] = ["x1", "x2", "b", "b-crop", "a-gray"]  # found at rank 5
    result = evaluate(rankings, GROUPS, CATEGORY)
    photos = result.by_category["photos"]
    assert photos.hits == {1: 0.0, 3: 0.0, 5: pytest.approx(1 / 5)}
    assert photos.mrr == pytest.approx((1 / 5) / 5)
    assert result.by_category["prints"].mrr == 0.0


def test_members_missing_from_the_build_are_listed_and_do_not_count() -> None:
    category = {i: c for i, c in CATEGORY.items() if i not in ("a-gray", "c-gray")}
    rankings = {i: sorted(_group_of(i) & set(category)) + _others(i) for i in category}
    result = evaluate(rankings, GROUPS, category)
    assert result.missing == ["a-gray", "c-gray"]
    assert result.overall.queries == 4  # group c is left with one member: no query, no answer
    assert "prints" not in result.by_category


def test_first_relevant_rank() -> None:
    assert first_relevant_rank(["x", "y", "a"], {"a", "b"}) == 3
    assert first_relevant_rank(["x"], {"a"}) is None
    assert first_relevant_rank([], {"a"}) is None


@pytest.mark.parametrize("data, message", [
    ({"groups": "nope"}, "expected {\"groups\": [...]}"),
    ({"groups": [{"items": ["a"]}]}, "groups[0]: a group needs at least two items"),
    ({"groups": [{"items": ["a", 3]}]}, "groups[0].items[1]: expected an id"),
    ({"groups": [{"items": ["a", "b"]}, {"items": ["c", "a"]}]}, "groups[1].items[1]: 'a' is already in groups[0]"),
    ({"groups": [{"members": ["a", "b"]}]}, "groups[0].items: expected a list"),
])
def test_bad_groups_name_the_file_and_the_field(data, message: str) -> None:
    with pytest.raises(GroupsError) as info:
        parse_groups(data, "GROUPS.json")
    assert str(info.value).startswith("GROUPS.json: ") and message in str(info.value)


def test_groups_accept_plain_ids_and_transforms(tmp_path: Path) -> None:
    path = tmp_path / "GROUPS.json"
    path.write_text(json.dumps({"groups": [["a", "b"], {"items": [{"id": "c", "transform": "crop"}, "d"]}]}))
    groups = load_groups(path)
    assert groups[0].members == (Member("a"), Member("b"))
    assert groups[1].members == (Member("c", "crop"), Member("d"))
    with pytest.raises(GroupsError, match="not a readable JSON file"):
        (tmp_path / "bad.json").write_text("{")
        load_groups(tmp_path / "bad.json")


@pytest.fixture()
def built_lists(tmp_path: Path):
    """A state folder with a catalog, vectors and neighbour lists written by hand (no model)."""
    (tmp_path / "collection").mkdir()
    settings = settings_for_folder(tmp_path / "collection", tmp_path / "site")
    mid = descriptor_model_id(settings.model)
    items = [CatalogItem(i, c, i, i.upper(), f"/nowhere/{i}.jpg", {}, None, f"hash-{i}", 10, 10)
             for i, c in CATEGORY.items()]
    # Lists by similarity: a-gray is second for "a" but marked as a copy, so pages show it first.
    lists = {i: [Neighbor(o, round(0.9 - 0.1 * n, 4), False, False) for n, o in enumerate(_others(i))]
             for i in CATEGORY}
    lists["a"] = [Neighbor("x1", 0.8, False, False), Neighbor("a-gray", 0.7, False, True),
                  Neighbor("a-crop", 0.6, False, False), Neighbor("b", 0.5, False, False)]
    with StateStore(settings.state_dir) as store:
        store.replace_items(items)
        store.put_vectors(mid, [(it.content_hash, np.ones(4, np.float32) / 2) for it in items])
        store.put_neighbors(mid, lists)
    groups = tmp_path / "GROUPS.json"
    groups.write_text(json.dumps({"version": 1, "groups": [
        {"items": [{"id": m.id, "transform": m.transform} for m in g.members]} for g in GROUPS]}))
    return tmp_path, groups, lists


def test_evaluate_command_scores_the_lists_as_pages_show_them(built_lists, cli) -> None:
    root, groups, lists = built_lists
    args = ["evaluate", str(groups), "--images", str(root / "collection"), "--out", str(root / "site"), "--json"]
    run = cli(*args)
    assert run.code == 0, run.err
    site = json.loads(run.out)
    run = cli(*args, "--ranking", "similarity")
    assert run.code == 0, run.err
    plain = json.loads(run.out)
    assert site["ranking"] == "site" and plain["ranking"] == "similarity"
    # "a" finds a-gray first on its page (a copy), but only second by similarity.
    assert site["transforms"]["original"]["hit@1"] > plain["transforms"]["original"]["hit@1"]
    expected = evaluate({i: [nb.id for nb in ns] for i, ns in lists.items()}, GROUPS, CATEGORY)
    assert plain["categories"]["all"]["mrr"] == round(expected.overall.mrr, 4)
    assert set(site["categories"]) == {"photos", "prints", "all"}

    run = cli(*args[:-1])
    assert run.code == 0, run.err
    assert "hit@1" in run.out and "MRR" in run.out and "photos" in run.out and "grayscale" in run.out


def test_evaluate_command_scores_the_re_ranked_lists(tmp_path: Path, cli) -> None:
    """A list re-ranked by local matches keeps its order in the state: ``reranked`` scores
    it as stored, ``site`` puts copies first on top of it, ``similarity`` undoes it."""
    (tmp_path / "collection").mkdir()
    settings = settings_for_folder(tmp_path / "collection", tmp_path / "site")
    mid = descriptor_model_id(settings.model)
    items = [CatalogItem(i, c, i, i.upper(), f"/nowhere/{i}.jpg", {}, None, f"hash-{i}", 10, 10)
             for i, c in CATEGORY.items()]
    lists = {i: [Neighbor(o, round(0.9 - 0.1 * n, 4), False, False) for n, o in enumerate(_others(i))]
             for i in CATEGORY}
    # "b" had b-crop fourth by similarity; local matches confirmed it and moved it first.
    lists["b"] = [Neighbor("b-crop", 0.5, False, False, True, 30), Neighbor("a", 0.8, False, False),
                  Neighbor("x1", 0.7, False, False), Neighbor("a-crop", 0.6, False, False)]
    with StateStore(settings.state_dir) as store:
        store.replace_items(items)
        store.put_vectors(mid, [(it.content_hash, np.ones(4, np.float32) / 2) for it in items])
        store.put_neighbors(mid, lists)
    groups = tmp_path / "GROUPS.json"
    groups.write_text(json.dumps({"groups": [[m.id for m in g.members] for g in GROUPS]}))
    args = ["evaluate", str(groups), "--images", str(tmp_path / "collection"), "--out", str(tmp_path / "site"),
            "--json", "--ranking"]
    scores = {}
    for how in ("reranked", "site", "similarity"):
        run = cli(*args, how)
        assert run.code == 0, run.err
        scores[how] = json.loads(run.out)
    expected = evaluate({i: [nb.id for nb in ns] for i, ns in lists.items()}, GROUPS, CATEGORY)
    assert scores["reranked"]["categories"]["all"]["mrr"] == round(expected.overall.mrr, 4)
    ranks = {how: scores[how]["categories"]["photos"] for how in scores}
    assert ranks["reranked"]["hit@1"] == ranks["site"]["hit@1"] > ranks["similarity"]["hit@1"]


def test_evaluate_command_errors_are_one_line(built_lists, tmp_path: Path, cli) -> None:
    root, _, _ = built_lists
    common = ["--images", str(root / "collection"), "--out", str(root / "site")]
    run = cli("evaluate", str(tmp_path / "missing.json"), *common)
    assert run.code == 2 and "missing.json: file not found" in run.err, run.err
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"groups": [["p", "q"]]}))
    run = cli("evaluate", str(other), *common)
    assert run.code == 1, run.err
    assert "none of its groups has two items in this build" in run.err and len(run.err.strip().splitlines()) == 1
    (tmp_path / "empty").mkdir()
    run = cli("evaluate", str(other), "--images", str(tmp_path / "empty"), "--out", str(tmp_path / "x"))
    assert run.code == 1 and "no build state here" in run.err, run.err


# -- the ground truth the scores are measured against ---------------------------------------

def test_transforms_are_assigned_equally_and_in_varied_combinations() -> None:
    from archive_sim.groundtruth import TRANSFORMS, assign_transforms

    names = list(TRANSFORMS)
    plan = assign_transforms([f"o{i}" for i in range(24)], 2, names)
    used = [t for chosen in plan.values() for t in chosen]
    assert {used.count(t) for t in names} == {4}
    assert all(len(set(chosen)) == 2 for chosen in plan.values())
    assert len({tuple(chosen) for chosen in plan.values()}) == 12  # not always the same pairs
    assert not any({"halftone", "dither"} <= set(chosen) for chosen in plan.values())


def test_a_hand_copy_ground_truth_pairs_drawings_from_two_manuscripts(tmp_path: Path) -> None:
    from PIL import Image

    from archive_sim.groundtruth import write

    repo = Path(__file__).resolve().parents[1]
    definition = tmp_path / "definition.json"
    definition.write_text(json.dumps({"categories": {"manuscripts": {
        "kind": "hand_copy", "folder": "examples/collection/photographs",
        "originals": ["1888Slum.jpg", "abe.jpg"], "distractors": ["Lisbon1919.jpg"]}}}))
    groups = load_groups(write(definition, repo, tmp_path / "gt"))
    folder = tmp_path / "gt" / "collection" / "manuscripts"
    assert {p.name for p in folder.iterdir()} == {
        "1888Slum--ms0.jpg", "1888Slum--ms1-copy.jpg", "abe--ms1.jpg", "abe--ms2-copy.jpg",
        "Lisbon1919-left--ms0.jpg", "Lisbon1919-right--ms1.jpg"}
    assert [[(m.id, m.transform) for m in g.members] for g in groups] == [
        [("1888Slum--ms0", "hand_original"), ("1888Slum--ms1-copy", "hand_copy")],
        [("abe--ms1", "hand_original"), ("abe--ms2-copy", "hand_copy")]]
    # The copy is another drawing, not the same pixels: other proportions, other colours.
    original, copy = (Image.open(folder / f"1888Slum--{n}.jpg") for n in ("ms0", "ms1-copy"))
    assert original.height == copy.height and original.width != copy.width
    mean = [np.asarray(im.convert("RGB"), dtype=float).reshape(-1, 3).mean(axis=0) for im in (original, copy)]
    assert np.abs(mean[0] - mean[1]).max() > 20
    # Distractors share the manuscripts' look: the same paper and palette as the originals there.
    left = np.asarray(Image.open(folder / "Lisbon1919-left--ms0.jpg").convert("RGB"), dtype=float)
    assert np.abs(left.reshape(-1, 3).mean(axis=0) - mean[0]).max() < 40


def test_a_small_ground_truth_is_built_from_real_images(tmp_path: Path) -> None:
    from PIL import Image

    from archive_sim.groundtruth import GroundTruthError, write

    definition = tmp_path / "definition.json"
    definition.write_text(json.dumps({
        "per_original": 2, "transforms": ["mirror", "heavy_crop", "grayscale"],
        "categories": {"figures": {"folder": "illustrations", "originals": ["Figure 01.png", "Figure 02.png"],
                                   "distractors": ["Figure 03.png"]}}}))
    groups_file = write(definition, EXAMPLE_COLLECTION, tmp_path / "gt")
    groups = load_groups(groups_file)
    folder = tmp_path / "gt" / "collection" / "figures"
    files = {p.stem: p for p in folder.iterdir()}
    assert set(files) == {"Figure 01", "Figure 02", "Figure 03", "Figure 01--mirror", "Figure 01--heavy_crop",
                          "Figure 02--heavy_crop", "Figure 02--grayscale"}
    assert [[(m.id, m.transform) for m in g.members] for g in groups] == [
        [("Figure 01", "original"), ("Figure 01--mirror", "mirror"), ("Figure 01--heavy_crop", "heavy_crop")],
        [("Figure 02", "original"), ("Figure 02--heavy_crop", "heavy_crop"), ("Figure 02--grayscale", "grayscale")]]
    original = Image.open(files["Figure 01"]).convert("L")
    mirrored = Image.open(files["Figure 01--mirror"]).convert("L")
    assert mirrored.size == original.size
    left = np.asarray(original, dtype=float)
    assert np.abs(np.asarray(mirrored, dtype=float) - left[:, ::-1]).mean() < 3  # JPEG noise only
    detail = Image.open(files["Figure 01--heavy_crop"])
    assert detail.size == (round(original.width * 0.5), round(original.height * 0.5))
    assert Image.open(files["Figure 02--grayscale"]).mode == "L"
    with pytest.raises(GroundTruthError, match="not empty"):
        write(definition, EXAMPLE_COLLECTION, tmp_path / "gt")
    definition.write_text(json.dumps({"transforms": ["sepia"], "categories": {}}))
    with pytest.raises(GroundTruthError, match="'sepia' is unknown"):
        write(definition, EXAMPLE_COLLECTION, tmp_path / "other")
