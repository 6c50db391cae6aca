"""Find by image in Chromium: the Web Worker decodes a picture, runs the ONNX model with
the vendored onnxruntime-web and searches the compact data as the Python reference
does, with files from the example collection; a file that is not an image gets its
own error. (make test-browser vendors onnxruntime-web first.)"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from support import REPO, serve

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

STATIC = REPO / "templates" / "static"
COLLECTION = REPO / "examples" / "collection"
PAGE = """<!doctype html><meta charset="utf-8"><title>find</title><link rel="icon" href="data:,">
<script>
const worker = new Worker("static/find/find-worker.js");
function ask(message) {
  return new Promise((resolve) => { worker.onmessage = (e) => resolve(e.data); worker.postMessage(message); });
}
window.loadModel = () => ask({type: "load", base: new URL(".", location.href).href});
window.findUrl = async (url) => {
  const blob = await (await fetch(url)).blob();
  return ask({type: "find", file: new File([blob], url.split("/").pop()), k: 10});
};
</script>"""


@pytest.fixture(scope="module")
def find_site(tmp_path_factory):
    """A folder with the find/ files of 12 collection items in two categories, and queries."""
    if not (STATIC / "vendor" / "onnxruntime-web" / "VERSION").exists():
        pytest.fail("onnxruntime-web is not vendored: run 'make vendor-web' (make test-browser does)")
    import onnxruntime as ort

    from archive_sim import search_data
    from archive_sim.config import ModelSettings
    from archive_sim.copy_detection import phash_file
    from archive_sim.embed.onnx_export import export_descriptor, write_model
    from archive_sim.embed.pipeline import decode_for_model

    root = tmp_path_factory.mktemp("find-site")
    shutil.copytree(STATIC / "find", root / "static" / "find")
    shutil.copytree(STATIC / "vendor" / "onnxruntime-web", root / "static" / "vendor" / "onnxruntime-web")
    (root / "find").mkdir()
    settings = ModelSettings()
    exported = export_descriptor(settings)
    write_model(exported, root / "find" / "descriptor.onnx", float16=True)
    session = ort.InferenceSession(str(root / "find" / "descriptor.onnx"), providers=["CPUExecutionProvider"])

    def embed(path: Path) -> np.ndarray:
        array = decode_for_model(str(path), exported.input_size)[0]
        return session.run(None, {"image": array[None].astype(np.float32)})[0][0]

    files = {"photographs": sorted(COLLECTION.glob("photographs/*.jpg"))[:6],
             "illustrations": sorted(COLLECTION.glob("illustrations/Figure *.png"))[:6]}
    data, categories = {}, []
    for name, paths in files.items():
        data[name] = search_data.build([p.stem for p in paths], np.stack([embed(p) for p in paths]),
                                       [phash_file(p) for p in paths])
        search_data.write_category(root / "find", name, data[name], exported.model_id)
        categories.append((name, f"find/{name}.json", len(paths)))
    (root / "find" / "model.json").write_text(json.dumps(search_data.manifest(
        exported.model_id, "find/descriptor.onnx", exported.input_size, exported.dim, 7, 0.93, categories)))
    (root / "index.html").write_text(PAGE)

    queries = root / "queries"
    queries.mkdir()
    photo = Image.open(files["photographs"][2]).convert("RGB")
    w, h = photo.size
    photo.crop((w // 10, h // 10, w - w // 8, h - h // 8)).save(queries / "crop.jpg", quality=60)
    figure = Image.open(files["illustrations"][4]).convert("RGB")
    figure.rotate(3, expand=True, fillcolor=(255, 255, 255)).save(queries / "rotated.png")
    (queries / "notes.jpg").write_text("not a picture at all\n")

    def reference(name: str) -> list[tuple[str, bool]]:
        path = queries / name
        vector, query_hash = embed(path), phash_file(path)
        found = []
        for category, d in data.items():
            found += [(m.copy, m.similarity, m.id) for m in search_data.search(d, vector, query_hash, 10)]
        return [(i, copy) for copy, _, i in sorted(found, key=lambda m: (not m[0], -m[1], m[2]))[:10]]

    server, url, _ = serve(root)
    try:
        yield {"url": url, "reference": reference,
               "truth": {"crop.jpg": files["photographs"][2].stem, "rotated.png": files["illustrations"][4].stem}}
    finally:
        server.shutdown()
        server.server_close()


def test_the_browser_finds_the_picture_as_the_reference_search(find_site, page) -> None:
    page.goto(find_site["url"])
    ready = page.evaluate("loadModel()")
    assert ready["type"] == "ready", ready
    for name, truth in find_site["truth"].items():
        result = page.evaluate("(u) => findUrl(u)", f"queries/{name}")
        assert result["type"] == "results", result
        got = [(m["id"], m["copy"]) for m in result["matches"]]
        assert got[0][0] == truth
        expected = find_site["reference"](name)
        assert got[0] == expected[0]  # the same first item, marked a copy or not alike
        assert len(set(got) & set(expected)) >= 9, (got, expected)


def test_a_file_that_is_not_an_image_gets_its_own_error(find_site, page) -> None:
    page.goto(find_site["url"])
    assert page.evaluate("loadModel()")["type"] == "ready"
    result = page.evaluate("(u) => findUrl(u)", "queries/notes.jpg")
    assert result["type"] == "error" and result["code"] == "not-image"
    assert "notes.jpg is not an image" in result["message"]
