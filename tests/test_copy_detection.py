"""Near-copies of a real photo are marked "the same picture", listed first on its page and
grouped on the reuse page across categories; unrelated photos are never marked."""

from __future__ import annotations

import random
import re
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from PIL import Image

from archive_sim.state_store import Neighbor, StateStore
from archive_sim.config import ConfigError, parse_settings
from archive_sim.copy_detection import (CopyGraph, CopyRule, copies_first, find_copies, hamming, hash_pairs,
                                        hash_ranking, mark_copies, phash_file)
from archive_sim.groundtruth import transform_image

from repo_images import PHOTOGRAPHS, figures

ORIGINAL = PHOTOGRAPHS / "1880Paris.jpg"
UNRELATED = [PHOTOGRAPHS / n for n in ("1850Geography.jpg", "1888Slum.jpg", "1890CliffHouseSF.jpg",
                                       "1896NewsBoyGirl.jpg", "1920sFamilyPhoto.jpg", "1948CarsGrandma.jpg")]
FIGURES = figures()[:4]
# Copies the pHash test alone catches (each differs from the original in colour or
# resolution, not in what is shown where): they must all be marked.
PHOTO_COPIES = {"paris-gray": "grayscale", "paris-halftone": "halftone", "paris-rescale": "rescale"}
PRINT_COPY = ("paris-faded-print", "fade")  # the same picture in another category


@pytest.fixture(scope="module")
def site(tmp_path_factory, make_collection, cli):
    root = tmp_path_factory.mktemp("copies")
    collection = make_collection(root, {"photographs": [ORIGINAL, *UNRELATED], "prints": FIGURES})
    photos, prints = collection / "photographs", collection / "prints"
    img = Image.open(ORIGINAL).convert("RGB")
    for name, transform in PHOTO_COPIES.items():
        out = transform_image(img, transform, name)
        if transform == "halftone":
            out.save(photos / f"{name}.png")
        else:
            out.convert("RGB").save(photos / f"{name}.jpg", quality=60)
    transform_image(img, PRINT_COPY[1], PRINT_COPY[0]).save(prints / f"{PRINT_COPY[0]}.jpg", quality=80)
    # Every stage but the map, whose layout these tests do not look at.
    for stage in ("fetch", "embed", "index", "render"):
        run = cli(stage, "--images", str(collection), "--out", str(root / "site"), "-q")
        assert run.code == 0, run.err
    return root / "site"


def _similar_cards(page: str) -> list[tuple[str, bool]]:
    """(linked item folder, labelled 'Samma bild') for each card of the "Liknande" list, in page order."""
    section = page[page.index('class="similar"'):]
    cards = section.split("<li>")[1:]
    result = []
    for card in cards:
        href = re.search(r'class="card__link" href="([^"]+)"', card).group(1)
        result.append((href.split("/")[-2], "Samma bild" in card))
    return result


@pytest.mark.slow
def test_copies_of_a_real_photo_are_marked_and_listed_first(site: Path, site_items, read_json) -> None:
    items = site_items(site)
    doc = read_json(site / items[ORIGINAL.stem]["neighbors_url"])
    jsonschema.validate(doc, read_json(site / "api/v1/schema/neighbors.schema.json"))
    marked = {n["id"] for n in doc["neighbors"] if n["copy"]}
    assert marked == set(PHOTO_COPIES)  # the print copy is in another category: not in this list
    assert all(n["duplicate"] is False for n in doc["neighbors"])
    page = (site / items[ORIGINAL.stem]["url"]).read_text(encoding="utf-8")
    cards = _similar_cards(page)
    slugs = {items[i]["slug"]: i for i in items}
    first = [slugs[folder] for folder, _ in cards[:len(PHOTO_COPIES)]]
    assert set(first) == set(PHOTO_COPIES)
    assert all(label for _, label in cards[:len(PHOTO_COPIES)])
    assert not any(label for _, label in cards[len(PHOTO_COPIES):])
    # And each copy finds the original (and its sibling copies) first, marked.
    for copy in PHOTO_COPIES:
        listed = read_json(site / items[copy]["neighbors_url"])["neighbors"]
        assert {n["id"] for n in listed if n["copy"]} == {ORIGINAL.stem, *PHOTO_COPIES} - {copy}
        copy_page = (site / items[copy]["url"]).read_text(encoding="utf-8")
        assert slugs[_similar_cards(copy_page)[0][0]] in {ORIGINAL.stem, *PHOTO_COPIES}


@pytest.mark.slow
def test_an_unrelated_photo_is_never_marked(site: Path, site_items, read_json) -> None:
    items = site_items(site)
    picture = {ORIGINAL.stem, *PHOTO_COPIES, PRINT_COPY[0]}
    for item_id, it in items.items():
        listed = read_json(site / it["neighbors_url"])["neighbors"]
        wrongly = [n["id"] for n in listed if n["copy"] and not {item_id, n["id"]} <= picture]
        assert not wrongly, f"{item_id}: {wrongly} marked as the same picture"
    for p in UNRELATED:
        page = (site / items[p.stem]["url"]).read_text(encoding="utf-8")
        assert not any(label for _, label in _similar_cards(page))
        assert "Samma bild på andra ställen" not in page


@pytest.mark.slow
def test_the_reuse_report_groups_copies_across_categories(site: Path, site_items, read_json) -> None:
    doc = read_json(site / "api/v1/reuse.json")
    jsonschema.validate(doc, read_json(site / "api/v1/schema/reuse.schema.json"))
    assert [[it["id"] for it in g["items"]] for g in doc["groups"]] == [
        sorted([ORIGINAL.stem, *PHOTO_COPIES]) + [PRINT_COPY[0]]]  # ordered by category, then id
    assert doc["groups"][0]["categories"] == ["photographs", "prints"]
    assert doc["rule"] == {"hash_distance": 7, "similarity": 0.93}
    page = (site / "reuse/index.html").read_text(encoding="utf-8")
    items = site_items(site)
    for it in doc["groups"][0]["items"]:
        assert f'href="../{it["url"]}"' in page
        assert (site / it["thumbnail"]).is_file()
    for p in UNRELATED:
        assert items[p.stem]["url"] not in page
    # Every member's page links to its group's own page, which shows every member.
    group_page = doc["groups"][0]["page"]
    assert group_page == f'reuse/group/{min(doc["groups"][0]["items"], key=lambda it: it["id"])["slug"]}/index.html'
    assert f'href="../{group_page}"' in page
    shown = (site / group_page).read_text(encoding="utf-8")
    for it in doc["groups"][0]["items"]:
        member_page = (site / it["url"]).read_text(encoding="utf-8")
        assert f'../../{group_page}">Samma bild på andra ställen' in member_page
        assert f'href="../../../{it["url"]}"' in shown
    assert f'Samma bild på {len(doc["groups"][0]["items"])} ställen</h1>' in shown


@pytest.mark.slow
def test_the_index_stage_does_nothing_when_nothing_changed(site: Path, cli) -> None:
    run = cli("index", "--images", str(site.parent / "collection"), "--out", str(site))
    assert run.code == 0 and "0 rebuilt" in run.err, run.err


# -- the parts, without a model ------------------------------------------------------------


def test_phash_sees_photometric_copies_of_a_real_photo_and_not_other_photos(tmp_path: Path) -> None:
    img = Image.open(ORIGINAL).convert("RGB")
    original = phash_file(ORIGINAL)
    for transform in ("grayscale", "halftone", "dither", "fade", "rescale"):
        path = tmp_path / f"{transform}.png"
        transform_image(img, transform, "x").save(path)
        assert hamming(original, phash_file(path)) <= 7, transform
    for p in UNRELATED:
        assert hamming(original, phash_file(p)) > 7, p.name


@pytest.mark.parametrize("max_distance", [6, 7, 11])
@pytest.mark.parametrize("brute_below", [10**9, 0], ids=["all-pairs", "multi-index"])
def test_hash_pairs_finds_exactly_the_close_pairs(max_distance: int, brute_below: int) -> None:
    rng = random.Random(max_distance)
    hashes: list[int | None] = [rng.getrandbits(64) for _ in range(300)]
    for i in range(0, 300, 3):  # near copies, some at exactly the limit, some just past it
        flipped = rng.sample(range(64), rng.randint(1, max_distance + 1))
        if i % 2:  # all flips in one 16-bit chunk: the hardest case for the chunk index
            flipped = rng.sample(range(16 * (i % 4), 16 * (i % 4) + 16), min(max_distance, 16))
        hashes.append(hashes[i] ^ sum(1 << b for b in flipped))
    hashes[3] = None
    expected = {(i, j, hamming(a, b)) for i, a in enumerate(hashes) for j, b in enumerate(hashes)
                if i < j and a is not None and b is not None and hamming(a, b) <= max_distance}
    found = hash_pairs(hashes, max_distance, brute_below=brute_below, block=64)
    assert found == sorted(expected)
    assert len(expected) >= 60


def test_copy_rule_tests_can_be_turned_off() -> None:
    assert CopyRule(6, 0.9).matches(6, 0.1) and CopyRule(6, 0.9).matches(40, 0.9)
    assert not CopyRule(6, 0.9).matches(7, 0.89)
    assert not CopyRule(None, 0.9).matches(0, 0.5)
    assert not CopyRule(6, None).matches(None, 1.0)


def test_find_copies_joins_files_hashes_and_similar_vectors_into_groups() -> None:
    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(8, 32))
    vectors[5] = vectors[4] + 0.01 * rng.normal(size=32)  # a close vector: same picture
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"i{k}" for k in range(8)]
    content = [f"c{k}" for k in range(8)]
    content[1] = content[0]  # identical files
    phashes: list[int | None] = [random.Random(k).getrandbits(64) for k in range(8)]  # ~32 bits apart
    phashes[3] = phashes[2] ^ 0b11  # pHash distance 2 from i2 (and i6 has no hash)
    phashes[6] = None
    graph = find_copies(ids, content, phashes, vectors.astype(np.float32), CopyRule(2, 0.95), trees=5)
    assert graph.groups() == [["i0", "i1"], ["i2", "i3"], ["i4", "i5"]]
    assert graph.pair_count() == 3
    assert graph.of("i4")["i5"] == round(float(vectors[4] @ vectors[5]), 4)
    off = find_copies(ids, content, phashes, vectors.astype(np.float32), CopyRule(None, None))
    assert off.groups() == [["i0", "i1"]]  # identical files are always copies


def test_groups_are_connected_components_largest_first() -> None:
    graph = CopyGraph()
    for a, b in [("d", "e"), ("a", "b"), ("b", "c"), ("x", "y")]:
        graph.add(a, b, 0.95)
    assert graph.groups() == [["a", "b", "c"], ["d", "e"], ["x", "y"]]
    assert graph.groups(order=lambda i: {"y": 0}.get(i, 1))[1] == ["y", "x"]


def test_mark_copies_adds_the_copies_a_list_missed_and_keeps_its_length() -> None:
    lists = {"a": [Neighbor("n1", 0.8, False), Neighbor("n2", 0.7, False), Neighbor("n3", 0.6, False)]}
    graph = CopyGraph()
    graph.add("a", "n2", 0.7)
    graph.add("a", "far", 0.3)       # by hash, ranked too low to be listed
    graph.add("a", "elsewhere", 0.9)  # in another category: not for this list
    marked = mark_copies(lists, graph, {"a", "n1", "n2", "n3", "far"}, {i: i for i in ("a", "n1", "n2", "n3", "far")},
                         3, 0.9999)["a"]
    assert [(n.id, n.copy) for n in marked] == [("n1", False), ("n2", True), ("far", True)]
    assert [n.id for n in copies_first(marked)] == ["n2", "far", "n1"]


def test_hash_ranking_orders_by_distance_within_the_category() -> None:
    ranking = hash_ranking(["a", "b", "c", "d", "e"], ["x", "x", "x", "y", "x"], [0b0, 0b111, 0b1, 0, None], 2)
    assert ranking == {"a": ["c", "b"], "b": ["c", "a"], "c": ["a", "b"], "d": [], "e": []}


def test_lists_keep_their_copy_marks_in_the_state(tmp_path: Path) -> None:
    with StateStore(tmp_path) as store:
        store.put_neighbors("m", {"a": [Neighbor("b", 0.9, False, True), Neighbor("c", 1.0, True, True)]})
        assert store.neighbors("m")["a"] == [Neighbor("b", 0.9, False, True), Neighbor("c", 1.0, True, True)]
        store.put_phashes([("h1", 2**64 - 1), ("h2", 5)])
        assert store.phashes(["h1", "h2", "h3"]) == {"h1": 2**64 - 1, "h2": 5}
        store.put_reuse_groups("m", [["a", "b"]])
        assert store.reuse_groups("m") == [["a", "b"]] and store.reuse_groups("other") == []


def test_copies_settings_are_checked() -> None:
    settings = parse_settings({"copies": {"hash_distance": None, "similarity": 0.97}}, "cfg", Path("."))
    assert settings.copies.hash_distance is None and settings.copies.similarity == 0.97
    with pytest.raises(ConfigError, match=r"copies\.hash: unknown key \(expected one of: hash_distance, similarity\)"):
        parse_settings({"copies": {"hash": 3}}, "cfg", Path("."))
    with pytest.raises(ConfigError, match=r"copies\.similarity = 1\.5"):
        parse_settings({"copies": {"similarity": 1.5}}, "cfg", Path("."))


def test_a_large_reuse_report_is_paged_and_every_link_finds_its_group(tmp_path: Path) -> None:
    """At 100,000 items the report on one page was 53 MB of HTML: it is split into
    pages of about REUSE_CARDS_PER_PAGE cards, never inside a group; each group's
    address in the JSON points at the page that holds it, and each group has a page
    of its own, which its members link to."""
    from archive_sim.state_store import CatalogItem
    from archive_sim.site.output_tree import OutputTree
    from archive_sim.site.pages import SiteWriter
    from archive_sim.site.model import REUSE_CARDS_PER_PAGE, SiteModel

    sizes = [REUSE_CARDS_PER_PAGE + 10] + [2 + n % 6 for n in range(80)]  # largest first, as stored
    groups, items = [], []
    for g, size in enumerate(sizes):
        members = [f"g{g:03d}-{m}" for m in range(size)]
        groups.append(members)
        items += [CatalogItem(i, "prints" if m % 2 else "photographs", i, f"Bild {i}", "/x.jpg", {}, None,
                              f"hash-{i}", 40, 30) for m, i in enumerate(members)]
    model = SiteModel(items, {}, "m", reuse_groups=groups)
    settings = parse_settings({"source": {"path": "c"}}, "test", tmp_path)
    writer = SiteWriter(OutputTree(tmp_path / "site", None), settings, model)
    writer.write_reuse()

    pages = sorted(p for p in (tmp_path / "site" / "reuse").rglob("index.html") if "group" not in p.parts)
    assert len(pages) > 2
    anchors: dict[str, str] = {}  # group anchor -> the page that holds it
    for page in pages:
        html = page.read_text(encoding="utf-8")
        found = re.findall(r'<section class="reuse-group" id="(group-\d+)"', html)
        cards = html.count('class="card__link"')
        assert cards <= REUSE_CARDS_PER_PAGE or len(found) == 1, "a page holds more than its share"
        for anchor in found:
            assert anchor not in anchors, "a group is on two pages"
            anchors[anchor] = page.relative_to(tmp_path / "site").as_posix()
        assert "81 grupp(er)" in html and 'class="pagination"' in html
    assert len(anchors) == len(groups)
    document = model.reuse_document()
    for group in document["groups"]:
        page, anchor = group["url"].split("#")
        assert anchors[anchor] == page
        own = (tmp_path / "site" / group["page"]).read_text(encoding="utf-8")
        assert own.count('class="card__link"') == len(group["items"])
        for it in group["items"]:
            assert model.reuse_url(it["id"]) == group["page"]


def test_a_group_keeps_its_address_when_other_groups_grow_or_appear() -> None:
    """The report lists groups largest first, so a new copy renumbers them; the links
    on item pages go to each group's own page, named by its member of least id, so a
    weekly rebuild does not make every member's page again for it."""
    from archive_sim.state_store import CatalogItem
    from archive_sim.site.model import SiteModel

    def model(groups: list[list[str]]) -> SiteModel:
        ids = sorted({i for g in groups for i in g})
        items = [CatalogItem(i, "photographs", i, i, "/x.jpg", {}, None, f"hash-{i}", 40, 30) for i in ids]
        return SiteModel(items, {}, "m", reuse_groups=groups)

    before = model([["a1", "a2", "a3"], ["b1", "b2"], ["c1", "c2"]])
    # c grows past a, and a new group d appears: numbers and report pages move.
    after = model([["c1", "c2", "c3", "c4"], ["a1", "a2", "a3"], ["b1", "b2"], ["d1", "d2"]])
    assert before.reuse_document()["groups"][0]["number"] == 1 and after.reuse_group_of["a1"] == 2
    for member in ("a1", "a2", "a3", "b1", "b2", "c1", "c2"):
        assert after.reuse_url(member) == before.reuse_url(member)
    assert after.reuse_url("c4") == before.reuse_url("c1") == "reuse/group/c1/index.html"
    assert after.reuse_url("d2") == "reuse/group/d1/index.html"
    assert before.reuse_url("d1") is None


def test_a_group_page_is_made_again_when_a_member_changes_and_only_then() -> None:
    """A group's page is keyed by its members (SiteModel.group_inputs), not by its
    context: a member's new title changes the key; another item's does not."""
    from archive_sim.state_store import CatalogItem
    from archive_sim.site.model import SiteModel

    def model(titles: dict[str, str]) -> SiteModel:
        items = [CatalogItem(i, "photographs", i, title, "/x.jpg", {}, None, f"hash-{i}", 40, 30)
                 for i, title in titles.items()]
        return SiteModel(items, {}, "m", reuse_groups=[["a", "b"]])

    titles = {"a": "Bild a", "b": "Bild b", "c": "Bild c"}
    before = model(titles)
    assert before.reuse_group_pages() == [("reuse/group/a/index.html", ["a", "b"])]
    inputs = before.group_inputs(["a", "b"])
    assert model({**titles, "c": "Ny titel"}).group_inputs(["a", "b"]) == inputs
    changed = model({**titles, "b": "Ny titel"})
    assert changed.group_inputs(["a", "b"]) != inputs
    assert [m["card"]["title"] for m in changed.group_cards(["a", "b"])["members"]] == ["Bild a", "Ny titel"]
