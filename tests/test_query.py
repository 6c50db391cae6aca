"""Search by example: ``archive-sim query`` finds the original of a transformed copy, from
a file or from a URL, with the model and descriptor the site was built with."""

from __future__ import annotations

import http.server
import json
import threading
from functools import partial
from pathlib import Path

import pytest
from PIL import Image

from archive_sim.groundtruth import transform_image

from repo_images import PHOTOGRAPHS, figures

pytestmark = pytest.mark.slow  # the CNN embeds a collection and every query

PHOTOS = [PHOTOGRAPHS / n for n in ("1850Geography.jpg", "1880Paris.jpg", "1888Slum.jpg", "1890CliffHouseSF.jpg",
                                    "1896NewsBoyGirl.jpg", "1920sGuadalope.jpg", "1920sFamilyPhoto.jpg")]
FIGURES = figures()[:5]
ORIGINAL = PHOTOGRAPHS / "1888Slum.jpg"


@pytest.fixture(scope="module")
def built(tmp_path_factory, make_collection, cli):
    """fetch, embed and index (all that query needs) of photos and book illustrations."""
    root = tmp_path_factory.mktemp("query")
    make_collection(root, {"photographs": PHOTOS, "illustrations": FIGURES})
    common = ["--images", str(root / "collection"), "--out", str(root / "site"), "-q"]
    for stage in ("fetch", "embed", "index"):
        run = cli(stage, *common)
        assert run.code == 0, run.err
    # Copies that are not in the collection, as a researcher would hold them.
    img = Image.open(ORIGINAL).convert("RGB")
    held = root / "held"
    held.mkdir()
    reprint = transform_image(transform_image(img, "grayscale", "q"), "rescale", "q")
    reprint.save(held / "gray-reprint.jpg", quality=40)
    transform_image(img, "crop", "q").save(held / "cropped.jpg", quality=70)
    return root, common[:-1], held


def test_a_transformed_copy_finds_its_original_first(built, cli) -> None:
    _, common, held = built
    run = cli("query", str(held / "gray-reprint.jpg"), *common, "--json")
    assert run.code == 0, run.err
    doc = json.loads(run.out)
    first = doc["hits"][0]
    assert (first["id"], first["category"], first["copy"]) == (ORIGINAL.stem, "photographs", True)
    assert first["hash_distance"] <= 7
    assert [h["copy"] for h in doc["hits"]].count(True) == 1  # no other photo is the same picture
    assert len(doc["hits"]) == 10
    sims = [h["similarity"] for h in doc["hits"][1:]]
    assert sims == sorted(sims, reverse=True) and first["similarity"] > sims[0]
    assert {h["category"] for h in doc["hits"]} == {"photographs", "illustrations"}
    assert doc["model"].startswith("efficientnet_lite0/imagenet/")
    assert "query answered in" in run.err


@pytest.fixture(scope="module")
def searcher(built):
    """The loaded model and indexes, as the command holds them, for several questions in a row."""
    from archive_sim.state_store import StateStore
    from archive_sim.commands.query import Searcher
    from archive_sim.config import settings_for_folder

    root, _, _ = built
    settings = settings_for_folder(root / "collection", root / "site")
    with StateStore(settings.state_dir) as store:
        yield Searcher(settings, store)


def test_an_item_of_the_collection_finds_itself_at_similarity_one(built, searcher) -> None:
    root, _, _ = built
    hits = searcher.search(root / "collection" / "illustrations" / FIGURES[2].name, 4)
    assert hits[0].id == FIGURES[2].stem and hits[0].similarity >= 0.9999 and hits[0].hash_distance == 0
    assert hits[0].copy and not any(h.copy for h in hits[1:])
    assert len(hits) == 4


def test_a_crop_finds_its_whole(built, searcher) -> None:
    _, _, held = built
    hits = searcher.search(held / "cropped.jpg", 3)
    assert len(hits) == 3 and hits[0].id == ORIGINAL.stem


def test_a_category_limits_the_search(built, searcher) -> None:
    _, _, held = built
    hits = searcher.search(held / "gray-reprint.jpg", 10, category="illustrations")
    assert {h.category for h in hits} == {"illustrations"} and len(hits) == len(FIGURES)
    assert not any(h.copy for h in hits)


def test_an_image_from_a_url_is_downloaded_and_found(built, cli) -> None:
    _, common, held = built
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(held))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        run = cli("query", f"{base}/gray-reprint.jpg", *common, "-k", "3")
        assert run.code == 0, run.err
        lines = run.out.strip().splitlines()  # a table: id, title, similarity, copy mark
        assert lines[0].split()[:5] == ["#", "similarity", "copy", "category", "id"]
        assert len(lines) == 4
        assert lines[1].split()[0] == "1" and ORIGINAL.stem in lines[1] and "Samma bild" in lines[1]
        assert "Samma bild" not in lines[2] + lines[3]
        run = cli("query", f"{base}/nothing-here.jpg", *common)
        assert run.code == 1 and "nothing-here.jpg" in run.err and "404" in run.err
    finally:
        server.shutdown()
        server.server_close()


def test_bad_queries_say_what_is_wrong_in_one_line(built, cli, tmp_path: Path) -> None:
    _, common, held = built
    (tmp_path / "notes.jpg").write_text("not an image")
    for args, expected in [
        ((str(held / "missing.jpg"), *common), "missing.jpg: file not found"),
        ((str(tmp_path / "notes.jpg"), *common), "notes.jpg: not an image Pillow can read"),
        ((str(held / "gray-reprint.jpg"), *common, "--category", "paintings"),
         "--category 'paintings': not in this build (categories: illustrations, photographs)"),
    ]:
        run = cli("query", *args)
        assert run.code == 1 and expected in run.err and len(run.err.strip().splitlines()) == 1, run.err
    with pytest.raises(SystemExit):
        cli("query", str(held / "gray-reprint.jpg"), *common, "-k", "0")
