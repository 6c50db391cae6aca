"""The render's "Find by image" part: the page, linked from every page's header; the
exported model and each category's search data and cards, which a rebuild keeps where
their inputs did not change; nothing of it (and one line saying why) where it cannot
work or is turned off.

Real images of the example collection, with stand-in vectors (no CNN); the model file
is the real export of the default descriptor. Needs onnxruntime-web vendored
(``make vendor-web``), as the page does.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest

from archive_sim import search_data
from archive_sim.cli import main
from archive_sim.config import load_settings
from archive_sim.site.find import runtime_dir
from archive_sim.state_store import StateStore

from fake_archive import build_with_stand_in_vectors
from repo_images import figures, photographs

pytestmark = pytest.mark.slow
FIND_FILES = ("find/", "static/find/", "static/vendor/")


def render(config: Path) -> str:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["render", "--config", str(config)])
    assert code == 0, err.getvalue()
    return err.getvalue()


def snapshot(site: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(site).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in site.rglob("*") if p.is_file()}


def collection_config(root: Path, site: str = "") -> Path:
    for folder, files in (("photographs", photographs(150_000)[:6]), ("illustrations", figures()[:4])):
        (root / "collection" / folder).mkdir(parents=True, exist_ok=True)
        for path in files:
            shutil.copy(path, root / "collection" / folder / path.name)
    config = root / "config.yaml"
    config.write_text(f"site: {{title: Sökarkiv{site}}}\nsource: {{path: collection}}\nneighbors: {{k: 4}}\n"
                      "output_dir: site\n", encoding="utf-8")
    return config


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    if runtime_dir(None) is None:
        pytest.fail("onnxruntime-web is not vendored: run 'make vendor-web' and reinstall")
    config = collection_config(tmp_path_factory.mktemp("find-site"))
    build_with_stand_in_vectors(config)
    return config


def test_the_site_has_the_find_page_with_its_model_and_search_data(built: Path) -> None:
    site = built.parent / "site"
    settings = load_settings(built)
    for page in ("index.html", "photographs/index.html", "find/index.html"):
        assert 'href="' in (site / page).read_text("utf-8")
    assert '<a class="site-nav__find" href="find/index.html"' in (site / "index.html").read_text("utf-8")
    assert 'href="../find/index.html"' in (site / "photographs/index.html").read_text("utf-8")
    page = (site / "find/index.html").read_text("utf-8")
    assert 'id="find-file" class="find__file" type="file" accept="image/*"' in page
    assert 'id="find-camera" class="find__file" type="file" accept="image/*" capture="environment"' in page
    assert "lämnar aldrig din webbläsare" in page

    manifest = json.loads((site / "find/model.json").read_text("utf-8"))
    model_file = site / manifest["model"]
    cached = list((settings.state_dir / "find").glob("*.onnx"))
    assert len(cached) == 1 and model_file.read_bytes() == cached[0].read_bytes()
    assert (manifest["input"], manifest["output"], manifest["input_size"], manifest["dim"]) == ("image", "vector",
                                                                                                317, 1280)
    with StateStore(settings.state_dir) as store:
        items = store.items()
    assert [c["name"] for c in manifest["categories"]] == ["illustrations", "photographs"]
    for entry in manifest["categories"]:
        header = json.loads((site / entry["header"]).read_text("utf-8"))
        data = search_data.from_files(header, (site / "find" / header["data"]).read_bytes())
        members = sorted(it.id for it in items if it.category == entry["name"])
        assert sorted(data.ids) == members and entry["count"] == len(members)
        cards = json.loads((site / entry["cards"]).read_text("utf-8"))
        assert [c["id"] for c in cards["items"]] == data.ids
        for card in cards["items"]:
            assert (site / card["url"]).is_file() and (site / card["thumbnail"]["src"]).is_file()
        assert (site / cards["category"]["map_url"]).is_file()
    # One WebAssembly build of the runtime, the one the worker loads.
    assert [p.name for p in (site / "static/vendor/onnxruntime-web").glob("*.wasm")] == ["ort-wasm-simd-threaded.wasm"]


def test_a_rebuild_makes_again_only_the_search_data_of_the_category_that_changed(built: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(built.parent, root, symlinks=True, copy_function=shutil.copy2)
    config = root / "config.yaml"
    render(config)  # the copy's files are not the ones its manifest names: settle once
    site = root / "site"
    cache = next((root / ".archive-sim" / "find").glob("*.onnx"))
    exported = cache.stat().st_mtime_ns
    settled = snapshot(site)
    render(config)
    assert snapshot(site) == settled
    assert cache.stat().st_mtime_ns == exported, "the model was exported again"

    shutil.copy(figures()[5], root / "collection" / "illustrations" / figures()[5].name)
    build_with_stand_in_vectors(config)
    after = snapshot(site)
    changed = {rel for rel in after if rel.startswith("find/") and after[rel] != settled.get(rel)}
    manifest = json.loads((site / "find/model.json").read_text("utf-8"))
    illustrations = json.loads((site / "find/illustrations.json").read_text("utf-8"))
    assert changed == {"find/model.json", "find/illustrations.json", f"find/{illustrations['data']}",
                       "find/illustrations.cards.json"}
    assert illustrations["count"] == 5 and manifest["categories"][0]["count"] == 5
    assert cache.stat().st_mtime_ns == exported


def test_a_site_without_the_find_page_carries_none_of_its_files(built: Path, tmp_path: Path) -> None:
    root = tmp_path / "off"
    shutil.copytree(built.parent, root, symlinks=True, copy_function=shutil.copy2)
    config = root / "config.yaml"
    config.write_text(config.read_text("utf-8").replace("site: {title: Sökarkiv}", "site: {title: Sökarkiv, find: false}"))
    said = render(config)
    site = root / "site"
    assert not [rel for rel in snapshot(site) if rel.startswith(FIND_FILES)]
    assert "find/index.html" not in (site / "index.html").read_text("utf-8")
    assert "Find by image" not in said

    # Turned on, with a backbone that cannot run in a browser: the page is left out, and
    # the render says why in one line.
    config.write_text(config.read_text("utf-8").replace("find: false", "find: true") + "model: {name: ResNet50}\n")
    build_with_stand_in_vectors(config)
    said = render(config)
    lines = [line for line in said.splitlines() if "Find by image" in line]
    assert lines == ["Find by image left out of the site: model.name = 'ResNet50' with weights 'imagenet': only the "
                     "EfficientNet-Lite backbones with their bundled weights run in the browser"]
    assert not [rel for rel in snapshot(site) if rel.startswith(FIND_FILES)]
