"""End to end: a folder of real images becomes a complete "Liknande" site.

The build runs as a user runs it (the installed ``archive-sim`` command, from another
folder), on real photographs and book illustrations from the example collection, with a
transformed copy of one photo and a set of broken and unusual files mixed in.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from PIL import Image

from repo_images import PHOTOGRAPHS, figures, photographs

ORIGINAL = PHOTOGRAPHS / "1888Slum.jpg"
PHOTOS = [p for p in photographs(under_bytes=150_000) if p != ORIGINAL][:22]
FIGURES = figures()
pytestmark = pytest.mark.slow  # every test reads a site the installed command built with the CNN
BROKEN = {"corrupt.jpg", "truncated.jpg", "empty.png", "notes.jpg", "huge.png"}


def archive_sim_command() -> list[str]:
    script = Path(sys.executable).with_name("archive-sim")
    return [str(script)] if script.exists() else [sys.executable, "-m", "archive_sim"]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if Path(sys.executable).with_name("archive-sim").exists():
        env.pop("PYTHONPATH", None)  # the installed package, not a checkout
    return subprocess.run([*archive_sim_command(), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)


def make_collection(root: Path) -> None:
    photos = root / "collection" / "photographs"
    figures = root / "collection" / "illustrations"
    photos.mkdir(parents=True)
    figures.mkdir(parents=True)
    for p in PHOTOS + [ORIGINAL]:
        shutil.copy(p, photos / p.name)
    for p in FIGURES:
        shutil.copy(p, figures / p.name)
    # Same picture, different file: cropped, rescaled and recompressed.
    img = Image.open(ORIGINAL).convert("RGB")
    w, h = img.size
    crop = img.crop((int(w * 0.06), int(h * 0.05), int(w * 0.94), int(h * 0.93)))
    crop.resize((crop.width * 3 // 5, crop.height * 3 // 5)).save(photos / "slum-reprint.jpg", quality=55)
    # An exact copy under another name (and an id with spaces and non-ASCII letters).
    shutil.copy(FIGURES[0], figures / "Åsa på ön.png")
    # Unusual but usable images.
    Image.open(PHOTOS[1]).convert("CMYK").save(photos / "cmyk-photo.jpg")
    gray = np.asarray(Image.open(PHOTOS[2]).convert("L"), dtype=np.uint16) * 257
    Image.fromarray(gray).save(photos / "sixteen-bit.png")
    Image.open(PHOTOS[3]).convert("RGB").quantize(64).save(photos / "palette.png", transparency=0)
    Image.new("RGB", (1, 1), (200, 30, 30)).save(photos / "one-pixel.png")
    # Broken files: each must be skipped with a reason naming it.
    (photos / "corrupt.jpg").write_bytes(os.urandom(5000))
    data = ORIGINAL.read_bytes()
    (photos / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (photos / "empty.png").write_bytes(b"")
    (photos / "notes.jpg").write_text("<html><body>not an image</body></html>")
    Image.new("L", (9500, 9500)).save(photos / "huge.png")  # over Pillow's pixel limit
    with (root / "collection" / "metadata.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "title", "date", "creator", "description"])
        writer.writerow([ORIGINAL.stem, "<script>alert('x')</script> Slum & courtyard", "1888", "Jacob Riis",
                         "A courtyard <b>photographed</b> in 1888."])
    (root / "config.yaml").write_text(
        "site:\n  title: Testarkiv\n  items_per_page: 10\n"
        "source:\n  path: collection\n  metadata: collection/metadata.csv\n"
        "neighbors:\n  k: 8\n"
        "output_dir: public\n", encoding="utf-8")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("archive")
    make_collection(root)
    first = run_cli("build", "--config", "config.yaml", cwd=root)
    assert first.returncode == 0, first.stderr
    second = run_cli("build", "--config", "config.yaml", cwd=root)
    assert second.returncode == 0, second.stderr
    return root, first, second


def load(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_every_item_has_a_page_and_a_valid_neighbour_document(built) -> None:
    root, _, _ = built
    site = root / "public"
    schema_dir = site / "api" / "v1" / "schema"
    items_doc = load(site / "api/v1/items.json")
    jsonschema.validate(items_doc, load(schema_dir / "items.schema.json"))
    neighbor_schema = load(schema_dir / "neighbors.schema.json")
    ids = {it["id"] for it in items_doc["items"]}
    expected = ({p.stem for p in PHOTOS + FIGURES + [ORIGINAL]}
                | {"slum-reprint", "Åsa på ön", "cmyk-photo", "sixteen-bit", "palette", "one-pixel"})
    assert ids == expected
    for it in items_doc["items"]:
        assert {"id", "category", "slug", "title", "url"} <= it.keys()
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", it["slug"])
        page = site / it["url"]
        assert page.is_file(), it["url"]
        doc = load(site / it["neighbors_url"])
        jsonschema.validate(doc, neighbor_schema)
        assert doc["id"] == it["id"] and doc["version"] == 1
        assert it["id"] not in {n["id"] for n in doc["neighbors"]}, "an item is never its own neighbour"
        sims = [n["similarity"] for n in doc["neighbors"]]
        assert sims == sorted(sims, reverse=True)
        assert len(sims) == min(8, sum(1 for o in items_doc["items"] if o["category"] == it["category"]) - 1)
        for n in doc["neighbors"]:
            assert (site / n["url"]).is_file() and (site / n["thumbnail"]).is_file()
        assert (site / it["image"]["src"]).is_file()


def test_a_transformed_copy_finds_its_original_first(built) -> None:
    root, _, _ = built
    items = {it["id"]: it for it in load(root / "public/api/v1/items.json")["items"]}
    copy = load(root / "public" / items["slum-reprint"]["neighbors_url"])
    assert copy["neighbors"][0]["id"] == ORIGINAL.stem
    assert copy["neighbors"][0]["similarity"] > 0.8
    assert copy["neighbors"][0]["duplicate"] is False  # the same picture, but not the same file
    back = load(root / "public" / items[ORIGINAL.stem]["neighbors_url"])
    assert back["neighbors"][0]["id"] == "slum-reprint"


def test_an_exact_copy_is_kept_and_marked(built) -> None:
    root, _, _ = built
    items = {it["id"]: it for it in load(root / "public/api/v1/items.json")["items"]}
    doc = load(root / "public" / items["Åsa på ön"]["neighbors_url"])
    first = doc["neighbors"][0]
    assert first["id"] == FIGURES[0].stem and first["similarity"] == 1.0 and first["duplicate"] is True
    page = (root / "public" / items["Åsa på ön"]["url"]).read_text(encoding="utf-8")
    assert "Exakt kopia" in page


def test_broken_files_are_reported_by_name_and_the_build_finishes(built) -> None:
    _, first, _ = built
    for name in BROKEN:
        lines = [line for line in first.stderr.splitlines() if name in line]
        assert lines, f"{name} not reported:\n{first.stderr}"
    assert "Skipped 5" in first.stderr
    assert "Traceback" not in first.stderr
    assert re.search(r"empty\.png: empty file", first.stderr)
    assert re.search(r"huge\.png: too many pixels", first.stderr)


def test_a_second_build_embeds_nothing(built) -> None:
    _, first, second = built
    assert re.search(r"embedded \d\d", first.stderr)
    assert "embedded 0" in second.stderr
    assert "0 images embedded" in second.stderr


def test_titles_and_metadata_are_escaped(built) -> None:
    root, _, _ = built
    items = {it["id"]: it for it in load(root / "public/api/v1/items.json")["items"]}
    page = (root / "public" / items[ORIGINAL.stem]["url"]).read_text(encoding="utf-8")
    assert "<script>alert" not in page and "<b>photographed" not in page
    assert "&lt;script&gt;" in page and "Jacob Riis" in page
    assert items[ORIGINAL.stem]["title"].startswith("<script>")  # the data keeps the original text


def test_maps_place_every_item_in_the_unit_square(built) -> None:
    root, _, _ = built
    site = root / "public"
    schema = load(site / "api/v1/schema/map.schema.json")
    items = load(site / "api/v1/items.json")["items"]
    all_map = load(site / "api/v1/map/all.json")
    jsonschema.validate(all_map, schema)
    assert {p["id"] for p in all_map["points"]} == {it["id"] for it in items}
    for category in {it["category"] for it in items}:
        doc = load(site / f"api/v1/map/{category}.json")
        jsonschema.validate(doc, schema)
        assert {p["id"] for p in doc["points"]} == {it["id"] for it in items if it["category"] == category}
        xs = [p["x"] for p in doc["points"]]
        ys = [p["y"] for p in doc["points"]]
        assert max(max(xs) - min(xs), max(ys) - min(ys)) == pytest.approx(1.0)
        assert (site / f"map/{category}/index.html").is_file()
        for p in doc["points"]:
            assert (site / p["thumb"]).is_file()
    assert (site / "map/index.html").is_file()


def test_category_pages_are_paged(built) -> None:
    root, _, _ = built
    site = root / "public"
    photos = load(site / "api/v1/map/photographs.json")["points"]
    pages = -(-len(photos) // 10)
    assert (site / f"photographs/page/{pages}/index.html").is_file()
    assert not (site / f"photographs/page/{pages + 1}").exists()
    listed = set()
    for n in range(1, pages + 1):
        page = site / ("photographs/index.html" if n == 1 else f"photographs/page/{n}/index.html")
        listed |= set(re.findall(r'href="\.\./(?:\.\./\.\./)?(?:photographs/)?([a-z0-9-]+)/index\.html"',
                                 page.read_text(encoding="utf-8")))
    assert {p["slug"] for p in photos} <= listed


def test_nothing_is_written_outside_the_state_and_output_folders(built) -> None:
    root, _, _ = built
    # ... and the site that the second build replaced, kept beside the output folder to
    # become the next build's staging folder (output_tree.staging_dir), and the output
    # folder's lock (output_tree.locked).
    assert sorted(p.name for p in root.iterdir()) == [".archive-sim", ".public.lock", ".public.spare", "collection",
                                                      "config.yaml", "public"]


def test_the_site_is_served_for_preview(built) -> None:
    from archive_sim.commands.serve import make_server

    root, _, _ = built
    server = make_server(root / "public", port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_address[1]}/") as response:
            html = response.read().decode("utf-8")
        assert "Testarkiv" in html and 'lang="sv"' in html
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{server.server_address[1]}/no/such/page/")
        assert missing.value.code == 404 and "Testarkiv" in missing.value.read().decode("utf-8")
    finally:
        server.shutdown()
        server.server_close()


def test_a_plain_folder_needs_no_config(tmp_path: Path) -> None:
    images = tmp_path / "images"
    for category, files in {"fotografier": PHOTOS[:6], "tryck": FIGURES[:5]}.items():
        (images / category).mkdir(parents=True)
        for p in files:
            shutil.copy(p, images / category / p.name)
    result = run_cli("build", "--images", str(images), "--out", str(tmp_path / "out"), "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    items = load(tmp_path / "out/api/v1/items.json")["items"]
    assert {it["category"] for it in items} == {"fotografier", "tryck"}
    assert {it["id"] for it in items} == {p.stem for p in PHOTOS[:6] + FIGURES[:5]}
    assert (tmp_path / ".out.archive-sim" / "state.sqlite").is_file()
    assert (tmp_path / "out/static").is_dir() and any((tmp_path / "out/static").iterdir())
