"""Every source behind one interface: JSON APIs, IIIF 3.0 and 2.1, CSV.

The remote sources read ``FakeArchive`` over real HTTP; the pure readers (dotted
paths, IIIF language maps, Image API requests) are tested on plain data.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from archive_sim.commands.fetch import source_urls
from archive_sim.config import parse_settings
from archive_sim.download import HttpClient
from archive_sim.sources import SourceError, open_source
from archive_sim.sources.iiif import image_request, text_of
from archive_sim.sources.records import as_text, lookup, plain_text

from fake_archive import FAULTS, TRAVERSAL_IDS, FakeArchive

FETCH = {"contact": "tests@example.org", "timeout": 2, "retries": 1, "backoff": 0.01, "rate_limit": 0}


@pytest.fixture(scope="module")
def archive():
    with FakeArchive() as fake:
        yield fake


def _scan(source: dict, tmp_path: Path, language: str = "sv"):
    settings = parse_settings({"source": source, "fetch": FETCH}, "test", tmp_path)
    with HttpClient(settings.fetch, trusted=source_urls(settings.source)) as http:
        return open_source(settings.source, http, language).scan()


def _arosenius(archive: FakeArchive, **extra) -> dict:
    return {"type": "json_api", "preset": "arosenius", "url": f"{archive.url}/api/documents",
            "categories": {"Konstverk": "artworks", "Fotografi": "photographs"}, **extra}


# -- pure readers ---------------------------------------------------------------------------
def test_dotted_paths_walk_dicts_and_lists():
    record = {"images": [{"image": "a"}, {"image": "b"}], "n": {"m": 3}}
    assert lookup(record, "images.0.image") == "a" and lookup(record, "images.-1.image") == "b"
    assert lookup(record, "images.5.image") is None and lookup(record, "n.m.x") is None
    assert lookup(record, "") is record


def test_values_become_plain_display_text():
    assert plain_text("<span>Oil on <b>canvas</b></span>") == "Oil on canvas"
    assert plain_text("Salt &amp; pepper") == "Salt & pepper"
    assert plain_text("  a \n b  ") == "a b"
    assert as_text(["1890", 1891, None, {"x": 1}]) == "1890; 1891"
    assert as_text("  <b>Bold</b>\n & more ") == "<b>Bold</b> & more"  # kept as text; pages escape it
    assert as_text({"x": 1}) is None and as_text(True) is None
    assert len(plain_text("x" * 5000)) == 2000 and len(as_text("y" * 5000)) == 2000


def test_iiif_labels_in_every_shape_pick_the_site_language():
    assert text_of({"en": ["Paintings"], "sv": ["Målningar"]}, "sv") == "Målningar"
    assert text_of({"en": ["Paintings"], "sv": ["Målningar"]}, "en") == "Paintings"
    assert text_of({"none": ["1905"]}, "sv") == "1905"
    assert text_of({"fr": ["Peintures"]}, "sv") == "Peintures"
    assert text_of([{"@value": "Teckning", "@language": "sv"}, {"@value": "Drawing", "@language": "en"}], "en") == "Drawing"
    assert text_of("plain <i>v2</i> label", "sv") == "plain v2 label"
    assert text_of(None, "sv") is None


@pytest.mark.parametrize("service, width, height, expected", [
    ({"id": "https://i.example/img1", "type": "ImageService3", "profile": "level1"}, 4000, 3000,
     "https://i.example/img1/full/1024,/0/default.jpg"),
    ({"id": "https://i.example/img1/", "type": "ImageService3", "profile": "level2"}, 3000, 4000,
     "https://i.example/img1/full/,1024/0/default.jpg"),
    ({"id": "https://i.example/img1", "type": "ImageService3", "profile": "level1"}, 800, 600,
     "https://i.example/img1/full/max/0/default.jpg"),
    ({"@id": "https://i.example/img2", "@context": "http://iiif.io/api/image/2/context.json",
      "profile": "http://iiif.io/api/image/2/level1.json"}, 800, 600, "https://i.example/img2/full/full/0/default.jpg"),
    ({"@id": "https://i.example/img2", "@context": "http://iiif.io/api/image/2/context.json",
      "profile": ["http://iiif.io/api/image/2/level0.json"],
      "sizes": [{"width": 250, "height": 188}, {"width": 1500, "height": 1125}, {"width": 3000, "height": 2250}]},
     3000, 2250, "https://i.example/img2/full/1500,/0/default.jpg"),
    ({"@id": "https://i.example/img3", "@context": "http://library.stanford.edu/iiif/image-api/1.1/context.json",
      "profile": "http://library.stanford.edu/iiif/image-api/1.1/compliance.html#level1"}, 5000, 1000,
     "https://i.example/img3/full/1024,/0/native.jpg"),
])
def test_the_image_api_is_asked_for_a_bounded_size(service, width, height, expected):
    assert image_request(service, width, height, 1024) == expected


def test_a_level0_service_without_sizes_asks_for_nothing():
    assert image_request({"id": "https://i.example/x", "type": "ImageService3", "profile": "level0"}, 9000, 9000,
                         1024) is None


# -- JSON API -----------------------------------------------------------------------------------
def test_the_arosenius_preset_reads_both_categories_page_by_page(archive, tmp_path):
    scan = _scan(_arosenius(archive, pagination={"size": 7}), tmp_path)
    by_id = {it.id: it for it in scan.items}
    konstverk = [d["id"] for d in archive.documents("Konstverk")]
    fotografi = [d["id"] for d in archive.documents("Fotografi") if d["images"] and d["id"] != "K-000"]
    assert set(by_id) == set(konstverk) | set(fotografi)
    assert len(scan.items) >= 60 + len(FAULTS)
    assert {it.category for it in scan.items} == {"artworks", "photographs"}
    assert all(by_id[i].category == "artworks" for i in konstverk)
    item = by_id["K-002"]
    name = archive.categories["Konstverk"][2]["images"][0]["image"]
    assert item.image == f"{archive.url}/api/images/700x/{name}.jpg"
    assert item.image_name == name and item.title == "Verk K-002"
    assert item.metadata == {"date": "1905", "museum": "Göteborgs konstmuseum"}
    # Every page was asked for with the preset's parameters.
    pages = [parse_qs(urlsplit(h.path).query) for h in archive.hits(r"^/api/documents")]
    assert all(p["sort"] == ["insert_id"] and p["count"] == ["7"] for p in pages)
    assert {"1", "2", "5"} <= {p["page"][0] for p in pages if p["type"] == ["Konstverk"]}
    # Traversal ids are data, kept exactly.
    assert set(TRAVERSAL_IDS) <= set(by_id)


def test_bad_records_are_reported_and_skipped(archive, tmp_path):
    scan = _scan(_arosenius(archive), tmp_path)
    reasons = "\n".join(f"{k}: {v}" for k, v in scan.problems.items())
    assert "no-image" in reasons and "no image at 'images.0.image'" in reasons
    assert "duplicate id 'K-000' (first in category 'artworks')" in reasons
    assert sum(1 for it in scan.items if it.id == "K-000") == 1
    assert next(it for it in scan.items if it.id == "K-000").category == "artworks"


def test_an_api_with_a_next_link_and_a_category_field(archive, tmp_path):
    source = {"type": "json_api", "url": f"{archive.url}/api2/records", "params": {"limit": "9"},
              "pagination": {"style": "next", "next": "links.next", "size_param": None},
              "records": "data", "fields": {"id": "identifier", "title": "name", "image": "media.url",
                                            "category": "kind", "link": "page"},
              "categories": {"Konstverk": "art"}}
    scan = _scan(source, tmp_path)
    expected = [d["id"] for d in archive.documents("Konstverk") if d["images"]]
    assert sorted(it.id for it in scan.items) == sorted(expected)
    assert all(it.category == "art" and it.image.startswith(f"{archive.url}/api/images/700x/") for it in scan.items)
    assert scan.items[0].link.startswith("https://archive.example.org/objects/")
    assert any("not listed in source.categories" in r for r in scan.problems.values())
    offsets = {parse_qs(urlsplit(h.path).query).get("offset", ["0"])[0] for h in archive.hits("^/api2/records")}
    assert {"0", "9", "18"} <= offsets


def test_a_javascript_link_is_dropped_but_the_item_kept(archive, tmp_path):
    source = {"type": "json_api", "url": f"{archive.url}/api2/records",
              "pagination": {"style": "offset", "size": 50, "size_param": "limit"}, "records": "data",
              "fields": {"id": "identifier", "title": "name", "image": "media.url", "category": "kind",
                         "link": "page"}}
    items = {it.id: it for it in _scan(source, tmp_path).items}
    assert items["P-001"].link is None
    assert items["P-002"].link == "https://archive.example.org/objects/P-002"
    assert {it.category for it in items.values()} == {"Konstverk", "Fotografi"}
    assert items["F-500"].category == "Fotografi" and items["a/b"].category == "Konstverk"


def test_a_failing_listing_stops_the_scan_with_one_line(archive, tmp_path):
    with pytest.raises(SourceError) as info:
        _scan(_arosenius(archive, url=f"{archive.url}/api/nowhere"), tmp_path)
    message = str(info.value)
    assert "HTTP 404" in message and "unchanged" in message and "\n" not in message
    with pytest.raises(SourceError, match="no list of records at 'items'"):
        _scan(_arosenius(archive, records="items"), tmp_path)


# -- IIIF -----------------------------------------------------------------------------------------
def test_a_iiif3_collection_of_collections(archive, tmp_path):
    scan = _scan({"type": "iiif", "url": f"{archive.url}/iiif/3/top.json", "image_size": 256,
                  "categories": {"Målningar": "paintings", "Fotografier": "photographs"}}, tmp_path)
    names = list(archive.images)
    assert len(scan.items) == len(names) and not scan.problems
    by_id = {it.id: it for it in scan.items}
    first = by_id[f"{archive.url}/iiif/3/manifest/{names[0]}.json"]
    assert first.category == "paintings" and first.title == f"{names[0]} (skanning)"
    assert first.metadata["Datum"] == "1905" and first.metadata["Technique"] == "Oil on canvas"
    assert first.metadata["rights"] == "http://creativecommons.org/publicdomain/mark/1.0/"
    assert first.metadata["Attribution"] == "Fake Archive, Göteborg"
    assert first.link == f"https://archive.example.org/objects/{names[0]}"
    assert first.record == first.id
    width, height = archive.sizes[names[0]]
    size = "256," if width >= height else ",256"
    assert first.image == f"{archive.url}/iiif/image/{names[0]}/full/{size}/0/default.jpg"
    assert by_id[f"{archive.url}/iiif/3/manifest/{names[-1]}.json"].category == "photographs"


def test_iiif_category_from_metadata_and_an_id_label(archive, tmp_path):
    scan = _scan({"type": "iiif", "url": f"{archive.url}/iiif/2/collection.json", "category_from": "metadata",
                  "category_label": "type", "id_label": "Date"}, tmp_path, language="en")
    # Every manifest has Date 1899: one id, so all but the first are duplicates.
    assert [it.id for it in scan.items] == ["1899"]
    assert sum("duplicate id '1899'" in r for r in scan.problems.values()) == 5
    assert scan.items[0].category == "Drawing"


def test_a_iiif21_collection_and_manifest(archive, tmp_path):
    scan = _scan({"type": "iiif", "url": f"{archive.url}/iiif/2/collection.json", "image_size": 200}, tmp_path)
    names = list(archive.images)[:6]
    assert [it.id for it in scan.items] == [f"{archive.url}/iiif/2/manifest/{n}.json" for n in names]
    item = scan.items[0]
    assert item.category == "Teckningar" and item.title == f"Teckning {names[0]}"
    assert item.metadata["Type"] == "Teckning" and item.metadata["Date"] == "1899"
    assert item.metadata["rights"] == "https://creativecommons.org/licenses/by/4.0/"
    assert item.metadata["attribution"] == "Fake Archive"
    assert item.link == f"https://archive.example.org/objects/{names[0]}"
    width, height = archive.sizes[names[0]]
    size = "full" if max(width, height) <= 200 else ("200," if width >= height else ",200")
    assert item.image == f"{archive.url}/iiif/image/{names[0]}/full/{size}/0/default.jpg"
    one = _scan({"type": "iiif", "url": f"{archive.url}/iiif/2/manifest/{names[1]}.json"}, tmp_path)
    assert len(one.items) == 0 and "no collection label" in next(iter(one.problems.values()))


def test_an_unreadable_manifest_is_reported_and_marked_unreachable(archive, tmp_path):
    name = list(archive.images)[2]
    archive.failing_manifests.add(name)
    try:
        scan = _scan({"type": "iiif", "url": f"{archive.url}/iiif/3/top.json"}, tmp_path)
    finally:
        archive.failing_manifests.discard(name)
    url = f"{archive.url}/iiif/3/manifest/{name}.json"
    assert scan.unreachable == {url}
    assert "HTTP 500" in scan.problems[f"manifest {url}"]
    assert len(scan.items) == len(archive.images) - 1


def test_a_iiif_url_that_is_not_iiif_stops_the_scan(archive, tmp_path):
    with pytest.raises(SourceError, match="neither a collection nor a manifest"):
        _scan({"type": "iiif", "url": f"{archive.url}/api/documents?type=Konstverk"}, tmp_path)


# -- CSV --------------------------------------------------------------------------------------------
def test_a_csv_with_urls_paths_and_bad_rows(archive, tmp_path):
    local = tmp_path / "pics" / "one.jpg"
    local.parent.mkdir()
    local.write_bytes(next(iter(archive.images.values())))
    names = list(archive.images)
    (tmp_path / "items.csv").write_text(
        "id,category,image,title,link,date,notes\n"
        f"A1,Foto,{archive.url}/api/images/700x/{names[0]}.jpg,<b>Bold</b> title,https://a.example/A1,1901,x\n"
        f"A2,Foto,api/images/700x/{names[1]}.jpg,Relative,javascript:alert(1),1902,\n"
        "A3,Konst,pics/one.jpg,Local file,,1903,y\n"
        "A4,Konst,file:///etc/passwd,Sneaky,,,\n"
        ",Konst,pics/one.jpg,No id,,,\n"
        "A5,,pics/one.jpg,No category,,,\n"
        "A3,Konst,pics/one.jpg,Again,,,\n",
        encoding="utf-8")
    settings = parse_settings({"source": {"type": "csv", "path": "items.csv", "base_url": f"{archive.url}/",
                                          "metadata": ["date"]}}, "test", tmp_path)
    scan = open_source(settings.source).scan()
    by_id = {it.id: it for it in scan.items}
    assert sorted(by_id) == ["A1", "A2", "A3"]
    assert by_id["A1"].title == "<b>Bold</b> title" and by_id["A1"].link == "https://a.example/A1"
    assert by_id["A1"].metadata == {"date": "1901"}
    assert by_id["A2"].image == f"{archive.url}/api/images/700x/{names[1]}.jpg" and by_id["A2"].link is None
    # With a base URL, relative values are URLs; without, paths beside the CSV.
    assert by_id["A3"].image == f"{archive.url}/pics/one.jpg"
    reasons = " | ".join(f"{k}: {v}" for k, v in scan.problems.items())
    assert "A4" in reasons and "only http and https" in reasons
    assert "items.csv:6: no 'id'" in reasons and "A5" in reasons and "duplicate id 'A3'" in reasons
    plain = parse_settings({"source": {"type": "csv", "path": "items.csv"}}, "test", tmp_path)
    items = {it.id: it for it in open_source(plain.source).scan().items}
    assert items["A3"].image == str(tmp_path / "pics" / "one.jpg")
    assert items["A1"].metadata == {"date": "1901", "notes": "x"}


def test_a_csv_without_the_needed_columns_is_one_clear_error(tmp_path):
    (tmp_path / "items.csv").write_text("name,picture\nx,y\n", encoding="utf-8")
    settings = parse_settings({"source": {"type": "csv", "path": "items.csv"}}, "test", tmp_path)
    with pytest.raises(SourceError, match="no column 'id'"):
        open_source(settings.source).scan()
