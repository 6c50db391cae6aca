"""A picture copied by hand into another manuscript is confirmed by local matches, listed
first and marked "matched" in the neighbour JSON, where the global descriptor alone
ranks other pictures of the same manuscript first; pictures that only look alike are
never marked; a rebuild matches only the pairs it has not matched before."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from archive_sim.cli import main  # noqa: E402
from archive_sim.config import ConfigError, RerankSettings, parse_settings  # noqa: E402
from archive_sim.handcopy import MANUSCRIPTS, copied_by_hand, drawn  # noqa: E402
from archive_sim.local_matching import (MatchParams, agreeing_matches, extract, locality_order,  # noqa: E402
                                        pair_key, rerank, rerank_lists)
from archive_sim.state_store import Neighbor, StateStore  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PHOTOS = REPO / "examples" / "collection" / "photographs"
SCENE = "1888Slum.jpg"
OTHER_SCENES = ["1890CliffHouseSF.jpg", "Edinburgh1920s.jpg", "LondonStreets1900.jpg", "OregonTrail1870s.jpg"]
LATE_SCENE = "WalkingLibraryLondon1930.jpg"
SCHEMA = REPO / "archive_sim" / "schemas" / "neighbors.schema.json"
DEFAULTS = RerankSettings()
PARAMS = MatchParams(DEFAULTS.method, DEFAULTS.geometry, DEFAULTS.side, DEFAULTS.features, DEFAULTS.ratio,
                     DEFAULTS.tolerance)


def _photo(name: str) -> Image.Image:
    return Image.open(PHOTOS / name).convert("RGB")


@pytest.fixture(scope="module")
def manuscripts(tmp_path_factory) -> Path:
    """One scene drawn in the painted manuscript and copied by hand into the pen one,
    beside four other scenes drawn in the pen manuscript (same paper, same hand)."""
    root = tmp_path_factory.mktemp("manuscripts")
    folder = root / "collection" / "manuscripts"
    folder.mkdir(parents=True)
    drawn(_photo(SCENE), MANUSCRIPTS[0], "scene").save(folder / "scene--painted.jpg", quality=90)
    copied_by_hand(_photo(SCENE), MANUSCRIPTS[1], "copy").save(folder / "scene--pen-copy.jpg", quality=90)
    for name in OTHER_SCENES:
        drawn(_photo(name), MANUSCRIPTS[1], name).save(folder / f"{Path(name).stem}--pen.jpg", quality=90)
    return root


def test_a_hand_copy_agrees_with_its_model_and_other_scenes_of_its_manuscript_do_not(manuscripts: Path) -> None:
    folder = manuscripts / "collection" / "manuscripts"
    copy = extract(folder / "scene--pen-copy.jpg", PARAMS)
    model = agreeing_matches(copy, extract(folder / "scene--painted.jpg", PARAMS), PARAMS)
    others = [agreeing_matches(copy, extract(folder / f"{Path(n).stem}--pen.jpg", PARAMS), PARAMS)
              for n in OTHER_SCENES]
    assert model >= DEFAULTS.min_matches
    assert max(others) < DEFAULTS.min_matches
    # Either way round, the same evidence.
    assert agreeing_matches(extract(folder / "scene--painted.jpg", PARAMS), copy, PARAMS) >= DEFAULTS.min_matches


def test_an_image_without_texture_has_no_matches(tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 200), (240, 230, 210)).save(blank)
    features = extract(blank, PARAMS)
    assert len(features.points) == 0
    assert agreeing_matches(features, features, PARAMS) == 0


def _build(root: Path, *stages: str) -> None:
    for stage in stages:
        assert main([stage, "--images", str(root / "collection"), "--out", str(root / "site"), "-q"]) == 0


def _lists(root: Path) -> dict[str, list[Neighbor]]:
    with StateStore(root / ".site.archive-sim") as store:
        (model,) = {row[0] for row in store._rows("SELECT DISTINCT model FROM neighbors")}
        return store.neighbors(model)


def test_the_index_stage_lists_the_hand_copy_first_and_marks_it(manuscripts: Path, capsys) -> None:
    _build(manuscripts, "fetch", "embed")
    assert main(["index", "--images", str(manuscripts / "collection"), "--out", str(manuscripts / "site")]) == 0
    first_run = capsys.readouterr().err
    assert re.search(r"\d+ pairs matched", first_run)
    lists = _lists(manuscripts)
    for item, other in (("scene--pen-copy", "scene--painted"), ("scene--painted", "scene--pen-copy")):
        top = lists[item][0]
        assert (top.id, top.matched) == (other, True) and top.matches >= DEFAULTS.min_matches
        assert not any(nb.matched for nb in lists[item][1:])
    # The global descriptor alone does not put the copy first: the other pen drawings look more alike.
    by_similarity = sorted(lists["scene--pen-copy"], key=lambda nb: -nb.similarity)
    assert by_similarity[0].id != "scene--painted"
    for item in (f"{Path(n).stem}--pen" for n in OTHER_SCENES):
        assert not any(nb.matched for nb in lists[item])

    # The neighbour JSON says which neighbours the local evidence confirmed.
    _build(manuscripts, "render")
    documents = {p.stem: json.loads(p.read_text(encoding="utf-8"))
                 for p in (manuscripts / "site" / "api" / "v1" / "neighbors").rglob("*.json")}
    document = next(d for d in documents.values() if d["id"] == "scene--pen-copy")
    jsonschema.validate(document, json.loads(SCHEMA.read_text(encoding="utf-8")))
    first = document["neighbors"][0]
    assert (first["id"], first["matched"]) == ("scene--painted", True) and first["matches"] >= DEFAULTS.min_matches
    assert [n["matched"] for n in document["neighbors"][1:]] == [False] * (len(document["neighbors"]) - 1)


def test_a_rebuild_matches_only_the_pairs_it_has_not_matched(manuscripts: Path, capsys) -> None:
    _build(manuscripts, "fetch", "embed", "index")
    capsys.readouterr()
    assert main(["index", "--images", str(manuscripts / "collection"), "--out", str(manuscripts / "site")]) == 0
    assert "0 rebuilt" in capsys.readouterr().err
    with StateStore(manuscripts / ".site.archive-sim") as store:
        stored_before = store._rows("SELECT COUNT(*) FROM local_matches")[0][0]
    late = manuscripts / "collection" / "manuscripts" / "late--pen.jpg"
    drawn(_photo(LATE_SCENE), MANUSCRIPTS[1], "late").save(late, quality=90)
    _build(manuscripts, "fetch", "embed")
    assert main(["index", "--images", str(manuscripts / "collection"), "--out", str(manuscripts / "site")]) == 0
    matched = int(re.search(r"(\d+) pairs matched", capsys.readouterr().err).group(1))
    # Only pairs with the new picture are new: every other pair's count is taken from the store.
    assert 0 < matched <= len(OTHER_SCENES) + 2
    with StateStore(manuscripts / ".site.archive-sim") as store:
        assert store._rows("SELECT COUNT(*) FROM local_matches")[0][0] == stored_before + matched
    lists = _lists(manuscripts)
    assert lists["scene--pen-copy"][0].id == "scene--painted" and lists["scene--pen-copy"][0].matched
    assert not any(nb.matched for nb in lists["late--pen"])


def test_rerank_puts_confirmed_neighbours_first_by_their_matches() -> None:
    neighbours = [Neighbor("a", 0.9, False), Neighbor("b", 0.8, False), Neighbor("c", 0.7, False),
                  Neighbor("d", 0.6, False), Neighbor("e", 0.5, False)]
    matches = {"a": 3, "b": 14, "c": 40, "e": 90}
    ranked = rerank(neighbours, matches, candidates=4, min_matches=12)
    assert [(nb.id, nb.matched, nb.matches) for nb in ranked] == [
        ("c", True, 40), ("b", True, 14), ("a", False, 3), ("d", False, 0), ("e", False, 0)]
    # Below the threshold nothing moves.
    assert [nb.id for nb in rerank(neighbours, {"e": 11}, 5, 12)] == ["a", "b", "c", "d", "e"]


def test_pair_counts_are_shared_by_both_items_of_a_pair() -> None:
    hash_of = {"x": "h1", "y": "h2", "z": "h3"}
    lists = {"x": [Neighbor("y", 0.5, False), Neighbor("z", 0.4, False)],
             "y": [Neighbor("z", 0.6, False), Neighbor("x", 0.5, False)]}
    counts = {pair_key("h2", "h1"): 20, pair_key("h3", "h2"): 2}
    ranked = rerank_lists(lists, hash_of, counts, candidates=2, min_matches=12)
    assert [(nb.id, nb.matched) for nb in ranked["x"]] == [("y", True), ("z", False)]
    assert [(nb.id, nb.matched) for nb in ranked["y"]] == [("x", True), ("z", False)]


def test_stored_lists_keep_their_marks_and_older_lists_read_as_unmatched(tmp_path: Path) -> None:
    with StateStore(tmp_path) as store:
        store.put_neighbors("m", {"a": [Neighbor("b", 0.5, False, False, True, 17)]})
        assert store.neighbors("m")["a"] == [Neighbor("b", 0.5, False, False, True, 17)]
        with store.transaction() as db:
            db.execute("INSERT INTO neighbors VALUES ('c', 'm', ?)", (json.dumps([["a", 0.4, False, True]]),))
        assert store.neighbors("m")["c"] == [Neighbor("a", 0.4, False, True, False, 0)]
        store.put_local_matches("p", {("h1", "h2"): 9})
        assert store.local_matches("p", [("h1", "h2"), ("h1", "h3")]) == {("h1", "h2"): 9}
        assert store.local_matches("other", [("h1", "h2")]) == {}


def test_rerank_settings_are_checked() -> None:
    settings = parse_settings({"rerank": {"method": "orb", "min_matches": 20}}, "cfg", Path("."))
    assert (settings.rerank.method, settings.rerank.min_matches) == ("orb", 20)
    assert not parse_settings({"rerank": {"enabled": False}}, "cfg", Path(".")).rerank.enabled
    with pytest.raises(ConfigError, match=r"rerank\.method"):
        parse_settings({"rerank": {"method": "surf"}}, "cfg", Path("."))
    with pytest.raises(ConfigError, match=r"rerank\.min_matches = 2"):
        parse_settings({"rerank": {"min_matches": 2}}, "cfg", Path("."))


def test_an_unreadable_image_is_reported_and_its_pairs_are_tried_again(tmp_path: Path) -> None:
    from archive_sim.commands.index import rerank_stage
    from archive_sim.config import Settings
    from archive_sim.progress import Report

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not a jpeg")
    paths = {"h-good": str(PHOTOS / SCENE), "h-other": str(PHOTOS / OTHER_SCENES[0]), "h-broken": str(broken)}
    hash_of = {"good": "h-good", "other": "h-other", "broken": "h-broken"}
    lists = {"good": [Neighbor("broken", 0.9, False), Neighbor("other", 0.8, False)],
             "other": [Neighbor("good", 0.8, False)], "broken": [Neighbor("good", 0.9, False)]}
    report = Report(verbosity=0)
    with StateStore(tmp_path / "state") as store:
        ranked, matched = rerank_stage(Settings(), store, lists, paths, hash_of, report)
        assert matched == 2 and [nb.id for nb in ranked["good"]] == ["broken", "other"]
        assert list(report.problems) == [str(broken)] and report.problems[str(broken)].startswith("no local matches")
        # The readable pair is kept; the broken one is matched again on the next build.
        assert rerank_stage(Settings(), store, lists, paths, hash_of, Report(verbosity=0))[1] == 1


def test_a_category_larger_than_the_feature_cache_is_matched_neighbourhood_by_neighbourhood() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)) * 10
    vectors = np.concatenate([c + rng.normal(size=(40, 16)) for c in centres]).astype(np.float32)
    hashes = [f"h{i:03d}" for i in range(120)]
    order = locality_order(hashes, vectors, limit=160)  # room for clusters of 40
    ranks = np.array([order[h] for h in hashes])
    assert sorted(ranks) == list(range(120))
    for c in range(3):  # each neighbourhood is matched in one run, not spread over the category
        block = np.sort(ranks[c * 40:(c + 1) * 40])
        assert block[-1] - block[0] == 39
    # Within the cache, plain hash order.
    assert locality_order(hashes[:30], vectors[:30], limit=160) == {h: i for i, h in enumerate(hashes[:30])}
