"""The search index: Pagefind's records from the site model, placed like every site file.

Pagefind's real binary indexes items built from the example collection's images; a
second build with the same records runs no indexer and links the live indexes, a
build where records changed indexes them again and keeps the files whose bytes
stayed, and a build that adds and removes items indexes the new ones alone, the
search module leaving the removed ones out.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
from pathlib import Path

import pytest
from PIL import Image

from archive_sim.site.model import SiteModel
from archive_sim.site.output_tree import OutputTree
import archive_sim.site.search as search
from archive_sim.site.search import (BUNDLE, IndexedPart, PagefindService, SearchError, index_basis, item_records,
                                     pagefind_executable, pagefind_version, plan_search, search_enabled,
                                     write_index)
from archive_sim.state_store import CatalogItem
from archive_sim.slugs import slugify
from repo_images import figures, photographs

pytestmark = pytest.mark.skipif(pagefind_executable() is None, reason="Pagefind's binary is a core dependency")


def catalog(creator: str = "Jacob Riis") -> list[CatalogItem]:
    items = []
    for category, files in (("photographs", photographs()[:6]), ("illustrations", figures()[:4])):
        for n, path in enumerate(files):
            width, height = Image.open(path).size
            metadata = {"date": f"18{80 + n}", "creator": creator if category == "photographs" else "Okänd",
                        "description": f"{path.stem} ur exempelsamlingen", "place": "Stockholm" if n == 0 else ""}
            items.append(CatalogItem(path.stem, category, slugify(path.stem), f"Bild {path.stem}", str(path),
                                     metadata, None, hashlib.sha256(path.read_bytes()).hexdigest(), width, height))
    return items


def model_of(items: list[CatalogItem]) -> SiteModel:
    return SiteModel(items, {}, "m", category_labels={"photographs": "Fotografier", "illustrations": "Illustrationer"})


def files_under(root: Path) -> dict[str, tuple[str, int]]:
    return {p.relative_to(root).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_ino)
            for p in (root / BUNDLE).rglob("*") if p.is_file()}


def build(tmp_path: Path, name: str, items: list[CatalogItem], before=None):
    """Index ``items`` into a new folder; ``before``: the build this one follows (its
    folder is the live site, its manifest and indexes what the store recorded)."""
    staging = tmp_path / name
    staging.mkdir()
    live, tree_before, result_before = before if before is not None else (None, None, None)
    tree = OutputTree(staging, live, tree_before.changes.files if tree_before is not None else None)
    plan = plan_search(model_of(items), basis(), result_before.parts if result_before is not None else [])
    result = write_index(tree, plan, "sv", pagefind_executable(), processes=2)
    return staging, tree, result


def basis() -> str:
    return index_basis("sv", pagefind_version(pagefind_executable()))


def module_hidden(staging: Path) -> list[str]:
    """The page ids the search module leaves out."""
    text = (staging / BUNDLE / "pagefind.js").read_text("utf-8")
    return json.loads(re.search(r"new Set\((\[.*?\])\)", text).group(1))


def test_every_item_is_a_record_of_its_categorys_index_with_its_title_metadata_and_thumbnail() -> None:
    model = model_of(catalog())
    records = item_records(model)
    first = records[photographs()[0].stem].as_pagefind()
    assert first["meta"]["title"] == f"Bild {photographs()[0].stem}"
    for value in ("Jacob Riis", "1880", "Stockholm", "ur exempelsamlingen"):
        assert value in first["content"]
    # The thumbnail's path follows the page's, after "#": a meta value would be indexed as words.
    page, thumbnail = first["url"].split("#")
    assert page.startswith("/photographs/") and page.endswith("/index.html")
    assert thumbnail == "/" + model.card(model.by_id[photographs()[0].stem])["thumb"]["src"]
    assert list(first["meta"]) == ["title"]
    plan = plan_search(model, basis(), [])
    assert {part.folder: len(part.members) for part in plan.parts} == {"pagefind/photographs/1/": 6,
                                                                       "pagefind/illustrations/1/": 4}
    # The search page's category filter: each index labelled with its category.
    assert plan.bundles == [{"path": "pagefind/illustrations/1/", "label": "Illustrationer"},
                            {"path": "pagefind/photographs/1/", "label": "Fotografier"}]


def test_each_bundle_holds_its_index_and_pagefinds_own_ui_from_no_other_host(tmp_path: Path) -> None:
    staging, tree, result = build(tmp_path, "a", catalog())
    assert result.indexed == 2 and result.records == 10
    files = files_under(staging)
    for category in ("photographs", "illustrations"):
        for name in ("pagefind-entry.json", "pagefind.js", "pagefind-ui.js", "pagefind-ui.css", "wasm.sv.pagefind"):
            assert f"{BUNDLE}/{category}/1/{name}" in files
    assert sum(rel.startswith(f"{BUNDLE}/photographs/1/fragment/") for rel in files) == 6  # one per item
    # The search page's module: the first index's Pagefind, nothing hidden.
    assert '"./illustrations/1/pagefind.js"' in (staging / BUNDLE / "pagefind.js").read_text("utf-8")
    assert module_hidden(staging) == []
    assert {len(part.pages) for part in result.parts} == {4, 6}
    assert set(files) == set(tree.changes.files)
    # A fragment holds the record: its words and its thumbnail, gzip-compressed.
    fragments = b"".join(gzip.decompress((staging / rel).read_bytes()) for rel in files if "/fragment/" in rel)
    assert b"Jacob Riis" in fragments and b"/media/" in fragments
    # Its words are in the index a search reads; its thumbnail's name is not a word there.
    words = b"".join(gzip.decompress((staging / rel).read_bytes()) for rel in files if rel.endswith(".pf_index"))
    model = model_of(catalog())
    assert b"riis" in words.lower()
    assert not any(it.content_hash[:24].encode() in words for it in model.items)
    for text in (staging / rel for rel in files if rel.endswith((".js", ".css"))):
        # Pagefind's UI loads nothing from another host (its files name some in comments).
        assert not re.search(rb"""(import\(|fetch\(|src=|url\()\s*["']?https?://""", text.read_bytes())


def test_a_rebuild_with_the_same_records_links_the_live_index_without_indexing(tmp_path: Path) -> None:
    first = build(tmp_path, "live", catalog())
    live = first[0]
    staging, tree, result = build(tmp_path, "next", catalog(), first)
    assert not result.indexed and result.parts == first[2].parts
    assert files_under(staging) == files_under(live)  # the same files, by inode: hard links
    assert tree.changes.written == []


def test_a_changed_record_is_indexed_again_with_its_category_alone(tmp_path: Path) -> None:
    first = build(tmp_path, "live", catalog())
    live = first[0]
    staging, tree, result = build(tmp_path, "next", catalog(creator="Hilma af Klint"), first)
    assert result.indexed == 1  # the photographs' creator changed; the illustrations' index is linked
    before, after = files_under(live), files_under(staging)
    changed = {rel for rel in after if before.get(rel, ("", 0))[0] != after[rel][0]}
    assert changed and set(tree.changes.written) == changed
    assert all(rel.startswith(f"{BUNDLE}/photographs/1/") for rel in changed)
    assert sum("/fragment/" in rel for rel in changed) == 6
    kept = set(after) - changed
    assert any(rel.startswith(f"{BUNDLE}/photographs/") for rel in kept)  # Pagefind's UI files, unchanged
    assert all(after[rel][1] == before[rel][1] for rel in kept)


def test_the_same_records_give_the_same_bytes(tmp_path: Path) -> None:
    a, _, _ = build(tmp_path, "a", catalog())
    b, _, _ = build(tmp_path, "b", catalog())
    assert {rel: d for rel, (d, _) in files_under(a).items()} == {rel: d for rel, (d, _) in files_under(b).items()}


def test_without_pagefinds_binary_the_site_has_no_search(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PAGEFIND_BINARY_PATH", str(tmp_path / "no-such-pagefind"))
    assert pagefind_executable() is None
    assert not search_enabled(True)
    monkeypatch.delenv("PAGEFIND_BINARY_PATH")
    assert search_enabled(True) and not search_enabled(False)


def test_a_pagefind_that_stops_is_a_clear_error(tmp_path: Path) -> None:
    stops = tmp_path / "pagefind"
    stops.write_text("#!/bin/sh\nexit 3\n")
    os.chmod(stops, 0o755)
    with pytest.raises(SearchError, match="Pagefind stopped"):
        with PagefindService(stops) as service:
            service.index([r.as_pagefind() for r in item_records(model_of(catalog())).values()], "sv")


def test_a_large_category_is_split_into_indexes_of_at_most_part_records(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search, "PART_RECORDS", 4)
    plan = plan_search(model_of(catalog()), basis(), [])
    parts = {part.folder: part.members for part in plan.parts}
    assert list(parts) == ["pagefind/illustrations/1/", "pagefind/photographs/1/", "pagefind/photographs/2/"]
    assert len(parts["pagefind/photographs/1/"]) == 4 and len(parts["pagefind/photographs/2/"]) == 2
    assert sorted(parts["pagefind/photographs/1/"] + parts["pagefind/photographs/2/"]) == sorted(
        it.id for it in catalog() if it.category == "photographs")
    assert [b["label"] for b in plan.bundles] == ["Illustrationer", "Fotografier", "Fotografier"]


def indexed(folder: str, members: list[str], digests: dict[str, str], gone: int = 0) -> IndexedPart:
    """A part as a build recorded it, holding ``members`` and ``gone`` records of items since removed."""
    pages = {i: (digests[i], f"sv_{n:07x}") for n, i in enumerate(members)}
    pages.update({f"gone-{folder}-{n}": ("x", f"sv_gone{n:03d}") for n in range(gone)})
    return IndexedPart(folder, f"key of {folder}", basis(), pages)


def test_new_items_go_to_a_small_index_that_takes_in_the_smaller_ones_like_a_binary_counter(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search, "PART_RECORDS", 8)
    items = [it for it in catalog() if it.category == "photographs"]
    model = model_of(items)
    digests = plan_search(model, basis(), []).digests
    ids = sorted(digests)
    def placed(*previous: IndexedPart) -> dict[str, tuple[list[str], bool]]:
        return {p.folder: (p.members, p.kept is not None) for p in plan_search(model, basis(), list(previous)).parts}

    one, two = "pagefind/photographs/1/", "pagefind/photographs/2/"
    # The new item (the last) takes in index 2 (one item, no more than the new ones),
    # and no more: index 1 holds more than the two. Two records indexed, four kept.
    assert placed(indexed(one, ids[:4], digests), indexed(two, ids[4:5], digests)) == {
        one: (ids[:4], True), two: (ids[4:], False)}
    # Having taken in one, the new index takes in the next no larger than itself, while
    # it stays within PART_RECORDS (5 here: index 1 would make 6).
    monkeypatch.setattr(search, "PART_RECORDS", 5)
    assert placed(indexed(one, ids[:3], digests), indexed(two, ids[3:4], digests),
                  indexed("pagefind/photographs/3/", ids[4:5], digests)) == {one: (ids[:3], True), two: (ids[3:], False)}
    monkeypatch.setattr(search, "PART_RECORDS", 8)
    # Every index larger than the new items: they go to an index of their own.
    assert placed(indexed(one, ids[:2], digests), indexed(two, ids[2:5], digests)) == {
        one: (ids[:2], True), two: (ids[2:5], True), "pagefind/photographs/3/": (ids[5:], False)}
    # A full index takes in nothing.
    monkeypatch.setattr(search, "PART_RECORDS", 5)
    assert placed(indexed(one, ids[:5], digests)) == {one: (ids[:5], True), two: (ids[5:], False)}


def test_records_of_items_gone_are_hidden_until_they_pass_a_share_of_their_index(
        monkeypatch: pytest.MonkeyPatch) -> None:
    items = [it for it in catalog() if it.category == "photographs"]
    model = model_of(items)
    digests = plan_search(model, basis(), []).digests
    ids = sorted(digests)
    monkeypatch.setattr(search, "HIDDEN_SHARE", 0.25)
    kept = plan_search(model, basis(), [indexed("pagefind/photographs/1/", ids, digests, gone=2)])
    assert [p.kept is not None for p in kept.parts] == [True]  # 2 of 8 gone: hidden
    assert kept.hidden() == ["sv_gone000", "sv_gone001"]
    again = plan_search(model, basis(), [indexed("pagefind/photographs/1/", ids, digests, gone=3)])
    assert [p.kept is not None for p in again.parts] == [False] and again.hidden() == []  # 3 of 9: made again
    assert again.parts[0].members == ids
    # An index made with another Pagefind or language is not kept.
    other = indexed("pagefind/photographs/1/", ids, digests)._replace(basis="another")
    assert [p.kept for p in plan_search(model, basis(), [other]).parts] == [None]


def test_a_rebuild_that_adds_and_removes_items_indexes_the_new_ones_and_hides_the_removed(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(search, "HIDDEN_SHARE", 0.25)
    everything = catalog()
    removed, added = everything[0], everything[5]
    first = build(tmp_path, "live", everything[:5] + everything[6:])
    staging, tree, result = build(tmp_path, "next", everything[1:], first)
    assert result.indexed == 1 and result.hidden == 1
    before, after = files_under(first[0]), files_under(staging)
    # The kept indexes are the live files, linked; the new item is in an index of its own.
    for folder in ("photographs/1/", "illustrations/1/"):
        kept = [rel for rel in before if rel.startswith(f"{BUNDLE}/{folder}")]
        assert kept and all(after[rel] == before[rel] for rel in kept)
    assert sum(rel.startswith(f"{BUNDLE}/photographs/2/fragment/") for rel in after) == 1
    new_part = next(p for p in result.parts if p.folder == "pagefind/photographs/2/")
    assert list(new_part.pages) == [added.id]
    # The search module leaves out the removed item's page, by the id Pagefind gave it.
    old_part = next(p for p in first[2].parts if p.folder == "pagefind/photographs/1/")
    assert module_hidden(staging) == [old_part.pages[removed.id][1]]
    page = gzip.decompress((staging / BUNDLE / "photographs/1/fragment" / f"{old_part.pages[removed.id][1]}.pf_fragment")
                           .read_bytes())
    assert removed.slug.encode() in page


def test_a_page_id_is_read_from_its_fragment_whatever_its_url_holds() -> None:
    def fragment(url: str) -> bytes:
        # As Pagefind writes it: no spaces, UTF-8 as it is.
        return gzip.compress(b"pagefind_dcd" + json.dumps({"url": url, "content": "x"}, separators=(",", ":"),
                                                          ensure_ascii=False).encode())

    urls = ["/photographs/plain/index.html", '/a "quoted" \\ path/index.html', "/åäö/index.html",
            f"/{'long-' * 1000}/index.html"]
    # As a record's url is: the page's path, then its thumbnail's after "#".
    files = {f"fragment/sv_{n}.pf_fragment": fragment(f"{url}#/media/240/{n:024x}.jpg") for n, url in enumerate(urls)}
    files["pagefind-entry.json"] = b"{}"
    assert search.page_ids(files) == {url: f"sv_{n}" for n, url in enumerate(urls)}
