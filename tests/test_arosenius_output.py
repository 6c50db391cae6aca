"""``compat: arosenius``: files the Arosenius archive's frontend reads unchanged.

A site is built from an Arosenius-shaped archive over HTTP (stand-in vectors, no
CNN), and its ``nearest_neighbors/`` and ``tsne_data/`` files are checked for the
exact shape that frontend reads: key sets, types, order, counts, truncation, and
file names that cannot leave the folder whatever the id.
"""

from __future__ import annotations

import numpy as np
import pytest

from archive_sim.state_store import CatalogItem, Neighbor, StateStore
from archive_sim.site.arosenius import arosenius_documents, file_names, neighbor_entries, truncate4
from archive_sim.config import load_settings
from archive_sim.embed.descriptors import descriptor_model_id
from archive_sim.slugs import category_slug
from archive_sim.slugs import slugify

from fake_archive import FakeArchive, build_with_stand_in_vectors

UNSAFE_IDS = ("../../etc/passwd", "a/b", "..", "Åsa på ön", ".hidden")


# -- pure parts --------------------------------------------------------------------------------
def test_similarity_is_truncated_not_rounded():
    assert truncate4(0.75769) == 0.7576
    assert truncate4(0.99999) == 0.9999
    assert truncate4(0.5) == 0.5
    assert truncate4(-0.12345) == -0.1234


def test_file_names_keep_safe_ids_and_slug_the_rest():
    names = file_names(["nkm-1", "PRIV-4271", "GUB0101444-0308", "v1.2_final", *UNSAFE_IDS])
    assert names["nkm-1"] == "nkm-1" and names["PRIV-4271"] == "PRIV-4271" and names["v1.2_final"] == "v1.2_final"
    for unsafe in UNSAFE_IDS:
        assert names[unsafe] == slugify(unsafe)
        assert "/" not in names[unsafe] and not names[unsafe].startswith(".")
    assert len(set(names.values())) == len(names)


def test_ids_that_differ_only_in_case_get_distinct_file_names():
    names = file_names(["nkm-1", "NKM-1", "other"])
    assert names["other"] == "other"
    assert names["nkm-1"] != names["NKM-1"] and names["nkm-1"].casefold() != names["NKM-1"].casefold()


def _item(item_id: str, category: str = "c", content: str | None = None) -> CatalogItem:
    return CatalogItem(item_id, category, slugify(item_id), item_id, "/x", {}, None,
                       content or f"hash-{item_id}", 700, 500)


def test_neighbour_entries_put_the_item_first_and_stay_in_their_category():
    items = {i: _item(i) for i in ("a", "b", "c", "d")} | {"x": _item("x", "other"), "dup": _item("dup", content="hash-a")}
    rng = np.random.default_rng(3)
    vectors = {i: rng.normal(size=8) for i in items}
    vectors["dup"] = vectors["a"]
    ranked = [Neighbor("dup", 1.0, True), Neighbor("b", 0.9, False), Neighbor("x", 0.8, False),
              Neighbor("c", 0.1, False), Neighbor("gone", 0.05, False)]
    entries = neighbor_entries(items["a"], ranked, vectors, items)
    assert entries[0] == {"similarity": 1.0, "filename": "a"}
    assert entries[1] == {"similarity": 1.0, "filename": "dup"}  # the same file: exactly 1.0
    assert [e["filename"] for e in entries[2:]] in (["b", "c"], ["c", "b"])
    for entry in entries[2:]:
        a, b = vectors["a"], vectors[entry["filename"]]
        assert entry["similarity"] == int(float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) * 10000) / 10000.0
    sims = [e["similarity"] for e in entries]
    assert sims == sorted(sims, reverse=True)


def test_a_category_named_all_does_not_overwrite_the_map_of_everything():
    items = [_item("a", "all"), _item("b", "other")]
    vectors = {"a": np.ones(4), "b": np.ones(4)}
    points = {"all": {"a": (0.0, 1.0), "b": (1.0, 0.0)}, category_slug("all"): {"a": (0.5, 0.5)}}
    docs = arosenius_documents(items, {}, vectors, points, {})
    assert [r["id"] for r in docs["tsne_data/image_tsne_projections_all.json"]] == ["a"]
    assert docs["tsne_data/image_tsne_projections_all.json"][0]["x"] == "0.0000"


# -- a built site ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("compat")
    with FakeArchive(faults=False) as archive:
        names = list(archive.images)
        for n, unsafe in enumerate(UNSAFE_IDS):
            archive.add_document("Fotografi", unsafe, names[-1 - n])
        archive.add_document("Konstverk", "XSS-1", names[1], title="</script><script>alert('x')</script> <b>Bold</b>")
        config = root / "config.yaml"
        config.write_text(
            "site: {title: Arosenius, language: sv}\n"
            "source:\n  type: json_api\n  preset: arosenius\n"
            f"  url: {archive.url}/api/documents\n"
            "  categories: {Konstverk: konstverk, Fotografi: photographs}\n"
            "fetch: {contact: tests@example.org, rate_limit: 0}\n"
            "compat: arosenius\noutput_dir: site\n", encoding="utf-8")
        build_with_stand_in_vectors(config)
        yield root, archive, load_settings(config)


def test_nearest_neighbour_files_have_the_exact_shape(site, read_json):
    root, archive, settings = site
    out = root / "site"
    with StateStore(settings.state_dir) as store:
        items = store.items()
        mid = descriptor_model_id(settings.model)
        matrix = store.vectors(mid, [it.content_hash for it in items])
    vectors = dict(zip((it.id for it in items), matrix.astype(np.float64)))
    names = {}
    for category in ("konstverk", "photographs"):
        members = [it for it in items if it.category == category]
        names.update(file_names([it.id for it in members]))
        assert len(members) > 30
        files = sorted((out / "nearest_neighbors" / category).glob("*.json"))
        assert len(files) == len(members)
        for it in members:
            doc = read_json(out / "nearest_neighbors" / category / f"{names[it.id]}.json")
            assert isinstance(doc, list) and len(doc) == 30
            assert doc[0] == {"similarity": 1.0, "filename": it.id}
            member_ids = {m.id for m in members}
            for entry in doc[1:]:
                assert set(entry) == {"similarity", "filename"}
                assert isinstance(entry["similarity"], float) and entry["filename"] in member_ids
                assert entry["filename"] != it.id
                a, b = vectors[it.id], vectors[entry["filename"]]
                cosine = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
                assert entry["similarity"] == int(cosine * 10000) / 10000.0
                assert round(entry["similarity"], 4) == entry["similarity"]
            sims = [e["similarity"] for e in doc]
            assert sims == sorted(sims, reverse=True)
            assert len({e["filename"] for e in doc}) == 30
    # The original ids are kept in the data; the file names of unsafe ones are slugs.
    for unsafe in UNSAFE_IDS:
        path = out / "nearest_neighbors" / "photographs" / f"{slugify(unsafe)}.json"
        assert read_json(path)[0]["filename"] == unsafe
    assert names["P-003"] == "P-003"


def test_tsne_files_have_the_exact_shape(site, read_json):
    root, archive, settings = site
    out = root / "site" / "tsne_data"
    with StateStore(settings.state_dir) as store:
        items = {it.id: it for it in store.items()}
    documents = {d["id"]: d for docs in archive.categories.values() for d in docs}
    for scope in ("konstverk", "photographs", "all"):
        rows = read_json(out / f"image_tsne_projections_{scope}.json")
        members = {i for i, it in items.items() if scope == "all" or it.category == scope}
        assert [r["id"] for r in rows] == sorted(members)
        for row in rows:
            assert list(row) == ["id", "image", "width", "height", "x", "y"]
            assert row["image"] == documents[row["id"]]["images"][0]["image"]  # the archive's image name
            item = items[row["id"]]
            assert (row["width"], row["height"]) == (item.width, item.height)
            assert isinstance(row["x"], str) and isinstance(row["y"], str)
            assert -50.0 <= float(row["x"]) <= 50.0 and -50.0 <= float(row["y"]) <= 50.0
        xs = [float(r["x"]) for r in rows]
        assert max(xs) - min(xs) > 50  # spread like t-SNE output, not squeezed into [0, 1]
    assert sorted(p.name for p in out.iterdir()) == [
        "image_tsne_projections_all.json", "image_tsne_projections_konstverk.json",
        "image_tsne_projections_photographs.json"]


def test_nothing_is_written_outside_the_site_and_state(site):
    root, _, _ = site
    assert sorted(p.name for p in root.iterdir()) == [".archive-sim", ".site.lock", "config.yaml", "site"]
    for path in (root / "site" / "nearest_neighbors").rglob("*"):
        assert path.resolve().is_relative_to((root / "site" / "nearest_neighbors").resolve())
    assert not (root / "etc").exists() and not (root / "site" / "etc").exists()


def test_titles_are_escaped_in_pages_and_kept_in_data(site, site_items):
    root, _, _ = site
    out = root / "site"
    for page in out.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert "<script>alert" not in html and "<b>Bold" not in html, page
    items = site_items(out)
    assert items["XSS-1"]["title"].startswith("</script><script>alert")
    page = (out / items["XSS-1"]["url"]).read_text(encoding="utf-8")
    assert "&lt;/script&gt;&lt;script&gt;alert(" in page

