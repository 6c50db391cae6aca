"""A IIIF collection becomes a site: bounded image requests, and item pages that
show the manifest's label, metadata, rights and homepage.

Built over real HTTP from ``FakeArchive`` (stand-in vectors, no CNN).
"""

from __future__ import annotations

import html
import re
from urllib.parse import unquote

import pytest

from archive_sim.state_store import StateStore

from fake_archive import HOMEPAGE, FakeArchive, build_with_stand_in_vectors

SIZE = 200


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("iiif")
    with FakeArchive(faults=False) as archive:
        config = root / "config.yaml"
        config.write_text(
            "site: {title: IIIF-arkivet, language: sv}\n"
            f"source:\n  type: iiif\n  url: {archive.url}/iiif/3/top.json\n  image_size: {SIZE}\n"
            "  categories: {Målningar: paintings, Fotografier: photographs}\n"
            "fetch: {contact: tests@example.org, rate_limit: 0, retries: 1, backoff: 0.01}\n"
            "output_dir: site\n", encoding="utf-8")
        build_with_stand_in_vectors(config)
        yield root, archive, config


def test_images_are_asked_of_the_image_api_at_a_bounded_size(site):
    root, archive, _ = site
    requests = archive.hits(r"^/iiif/image/", 200)
    assert len(requests) == len(archive.images)
    for hit in requests:
        size = unquote(hit.path).split("/")[5]
        assert size in (f"{SIZE},", f",{SIZE}", "max"), hit.path
    with StateStore(root / ".archive-sim") as store:
        items = store.items()
    assert len(items) == len(archive.images)
    assert all(max(it.width, it.height) <= SIZE for it in items)
    assert any(max(it.width, it.height) == SIZE for it in items)  # really resized, not just small


def test_the_item_page_shows_label_metadata_rights_and_homepage(site, site_items):
    root, archive, _ = site
    name = list(archive.images)[0]
    item = site_items(root / "site")[f"{archive.url}/iiif/3/manifest/{name}.json"]
    page = html.unescape((root / "site" / item["url"]).read_text(encoding="utf-8"))
    assert re.search(rf"<h1[^>]*>{re.escape(name)} \(skanning\)</h1>", page)
    rows = dict(re.findall(r"<dt>(.*?)</dt>\s*<dd>(.*?)</dd>", page, flags=re.S))
    assert rows["Datum"] == "1905"
    assert rows["Technique"] == "Oil on canvas"
    assert rows["Rättigheter"] == "http://creativecommons.org/publicdomain/mark/1.0/"
    assert rows["Attribution"] == "Fake Archive, Göteborg"
    assert re.search(rf'<a class="button" href="{re.escape(HOMEPAGE + name)}"[^>]*>Visa i arkivet', page)
    assert item["category"] == "paintings"


def test_a_manifest_that_fails_keeps_its_item(site, cli):
    root, archive, config = site
    name = list(archive.images)[5]
    archive.failing_manifests.add(name)
    try:
        run = cli("fetch", "--config", str(config))
    finally:
        archive.failing_manifests.discard(name)
    assert run.code == 0, run.err
    line = next(line for line in run.err.splitlines() if f"manifest/{name}.json" in line)
    assert "HTTP 500" in line and "kept as it was" in line
    with StateStore(root / ".archive-sim") as store:
        ids = {it.id for it in store.items()}
    assert f"{archive.url}/iiif/3/manifest/{name}.json" in ids and len(ids) == len(archive.images)
