"""The search index: Pagefind's records from the site model, placed like every site file.

Pagefind's real binary indexes items built from the example collection's images; a
second build with the same records runs no indexer and links the live indexes, and a
build where one record changed indexes its category again and keeps the files whose
bytes stayed.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
from pathlib import Path

import pytest
from PIL import Image

from archive_sim.site.model import SiteModel
from archive_sim.site.output_tree import OutputTree
from archive_sim.site.search import (BUNDLE, PagefindService, SearchError, pagefind_executable,
                                     search_bundles, search_enabled, search_records, write_index)
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


def build(tmp_path: Path, name: str, items: list[CatalogItem], live: Path | None = None,
          manifest: dict | None = None):
    staging = tmp_path / name
    staging.mkdir()
    tree = OutputTree(staging, live, manifest)
    result = write_index(tree, model_of(items), "sv", pagefind_executable(), processes=2)
    return staging, tree, result


def test_every_item_is_a_record_of_its_categorys_index_with_its_title_metadata_and_thumbnail() -> None:
    model = model_of(catalog())
    records = search_records(model)
    assert {folder: len(r) for folder, r in records.items()} == {"pagefind/photographs/": 6, "pagefind/illustrations/": 4}
    first = next(r for r in records["pagefind/photographs/"] if r["meta"]["title"] == f"Bild {photographs()[0].stem}")
    for value in ("Jacob Riis", "1880", "Stockholm", "ur exempelsamlingen"):
        assert value in first["content"]
    assert first["url"].startswith("/photographs/") and first["url"].endswith("/index.html")
    assert first["meta"]["image"].startswith("/media/")
    # The search page's category filter: each index labelled with its category.
    assert search_bundles(model) == [{"path": "pagefind/illustrations/", "label": "Illustrationer"},
                                     {"path": "pagefind/photographs/", "label": "Fotografier"}]


def test_each_bundle_holds_its_index_and_pagefinds_own_ui_from_no_other_host(tmp_path: Path) -> None:
    staging, tree, result = build(tmp_path, "a", catalog())
    assert result.indexed == 2 and result.records == 10
    files = files_under(staging)
    for category in ("photographs", "illustrations"):
        for name in ("pagefind-entry.json", "pagefind.js", "pagefind-ui.js", "pagefind-ui.css", "wasm.sv.pagefind"):
            assert f"{BUNDLE}/{category}/{name}" in files
    assert sum(rel.startswith(f"{BUNDLE}/photographs/fragment/") for rel in files) == 6  # one per item
    assert set(files) == set(tree.changes.files)
    # A fragment holds the record: its words and its thumbnail, gzip-compressed.
    fragments = b"".join(gzip.decompress((staging / rel).read_bytes()) for rel in files if "/fragment/" in rel)
    assert b"Jacob Riis" in fragments and b"/media/" in fragments
    for text in (staging / rel for rel in files if rel.endswith((".js", ".css"))):
        # Pagefind's UI loads nothing from another host (its files name some in comments).
        assert not re.search(rb"""(import\(|fetch\(|src=|url\()\s*["']?https?://""", text.read_bytes())


def test_a_rebuild_with_the_same_records_links_the_live_index_without_indexing(tmp_path: Path) -> None:
    live, first, _ = build(tmp_path, "live", catalog())
    staging, tree, result = build(tmp_path, "next", catalog(), live, first.changes.files)
    assert not result.indexed
    assert files_under(staging) == files_under(live)  # the same files, by inode: hard links
    assert tree.changes.written == []


def test_a_changed_record_is_indexed_again_with_its_category_alone(tmp_path: Path) -> None:
    live, first, _ = build(tmp_path, "live", catalog())
    staging, tree, result = build(tmp_path, "next", catalog(creator="Hilma af Klint"), live, first.changes.files)
    assert result.indexed == 1  # the photographs' creator changed; the illustrations' index is linked
    before, after = files_under(live), files_under(staging)
    changed = {rel for rel in after if before.get(rel, ("", 0))[0] != after[rel][0]}
    assert changed and set(tree.changes.written) == changed
    assert all(rel.startswith(f"{BUNDLE}/photographs/") for rel in changed)
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
            service.index(search_records(model_of(catalog()))["pagefind/photographs/"], "sv")


def test_a_large_category_is_split_into_indexes_of_at_most_part_records(monkeypatch: pytest.MonkeyPatch) -> None:
    import archive_sim.site.search as search
    monkeypatch.setattr(search, "PART_RECORDS", 4)
    items = catalog()
    model = model_of(items)
    records = search_records(model)
    photographs_parts = [b["path"] for b in search_bundles(model) if b["label"] == "Fotografier"]
    assert photographs_parts == ["pagefind/photographs/1/", "pagefind/photographs/2/"]
    assert sorted(records) == sorted(b["path"] for b in search_bundles(model))
    assert sum(len(records[p]) for p in photographs_parts) == 6 and all(len(records[p]) for p in photographs_parts)
    # An item stays in its index when others change: the index is chosen by its id.
    renamed = [it._replace(title="Ny titel") if it.id == items[0].id else it for it in items]
    again = search_records(model_of(renamed))
    changed = [p for p in records if records[p] != again[p]]
    assert len(changed) == 1
