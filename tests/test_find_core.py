"""The browser's side of "Find by image" (templates/static/find/find-core.js, run in
Node) prepares a picture and searches as the build does: the same model input and
pHash as Pillow and imagehash on the example collection's files, and the same
matches as archive_sim/search_data.py."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from archive_sim import search_data
from archive_sim.copy_detection import phash_file, phash_image
from archive_sim.imaging import load_rgb, model_array

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "templates" / "static" / "find" / "find-core.js"
COLLECTION = REPO / "examples" / "collection"
SUFFIXES = {".jpg", ".jpeg", ".png"}

HARNESS = """
const core = require(process.argv[2]);
let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  const job = JSON.parse(input);
  const prepared = job.images.map((j) => {
    const rgb = {pixels: new Uint8Array(Buffer.from(j.rgb, "base64")), width: j.width, height: j.height, channels: 3};
    const m = core.modelInput(rgb, j.size, j.isJpeg);
    return {model: Buffer.from(Uint8Array.from(m)).toString("base64"), phash: core.phash(rgb, j.isJpeg)};
  });
  let matches = [];
  if (job.search) {
    const bin = Buffer.from(job.search.binary, "base64");
    const buffer = bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.length);
    const data = core.readSearchData(job.search.header, buffer);
    matches = job.search.queries.map((q) =>
      core.search(data, Float32Array.from(q.vector), q.hash, 10, 7, 0.93));
  }
  process.stdout.write(JSON.stringify({prepared, matches}));
});
"""


def _node(tmp_path: Path, job: dict) -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the browser code is checked with it")
    harness = tmp_path / "harness.js"
    harness.write_text(HARNESS)
    done = subprocess.run([node, str(harness), str(CORE)], input=json.dumps(job), capture_output=True,
                          text=True, check=True, timeout=300)
    return json.loads(done.stdout)


def _files() -> list[Path]:
    return sorted(p for p in COLLECTION.rglob("*") if p.suffix.lower() in SUFFIXES)


def _job(img: Image.Image, is_jpeg: bool, size: int = 317) -> dict:
    return {"rgb": base64.b64encode(np.asarray(img).tobytes()).decode(), "width": img.width,
            "height": img.height, "size": size, "isJpeg": is_jpeg}


def test_model_input_and_phash_match_the_build(tmp_path: Path) -> None:
    files = _files()[::2]
    # The browser decodes at full size (EXIF orientation applied); the build lets libjpeg scale.
    images = [_job(load_rgb(p), p.suffix.lower() in {".jpg", ".jpeg"}) for p in files]
    result = _node(tmp_path, {"images": images})
    for path, got in zip(files, result["prepared"]):
        js = np.frombuffer(base64.b64decode(got["model"]), np.uint8).reshape(317, 317, 3).astype(int)
        build = model_array(load_rgb(path, min_side=317), 317).astype(int)
        difference = np.abs(js - build)
        assert difference.mean() < 0.5 and difference.max() <= 4, (path.name, difference.mean(), difference.max())
        js_hash = (got["phash"][0] << 32) | got["phash"][1]
        assert js_hash == phash_file(path), path.name


def test_search_in_the_browser_ranks_as_the_reference(tmp_path: Path) -> None:
    files = _files()
    # Vectors of real pictures without a model: their 12x12 colour thumbnails, normalised.
    def vector(img: Image.Image) -> np.ndarray:
        v = model_array(img, 12).astype(np.float32).ravel()
        return v / np.linalg.norm(v)

    images = [load_rgb(p) for p in files]
    vectors = np.stack([vector(img) for img in images])
    phashes = [phash_image(img) for img in images]
    phashes[3] = None  # an item whose pHash is unknown
    data = search_data.build([p.stem for p in files], vectors, phashes, dims=24)
    header, binary = search_data.to_files(data, "x.bin", "thumbnails")
    queries = [img.rotate(2, fillcolor=(255, 255, 255)) for img in images[::4]]
    qv = [vector(q) for q in queries]
    qh = [phash_image(q) for q in queries]
    job = {"images": [], "search": {"header": header, "binary": base64.b64encode(binary).decode(),
                                    "queries": [{"vector": v.tolist(), "hash": [h >> 32, h & 0xFFFFFFFF]}
                                                for v, h in zip(qv, qh)]}}
    result = _node(tmp_path, job)
    for v, h, got in zip(qv, qh, result["matches"]):
        expected = search_data.search(data, v, h, k=10)
        assert [m["id"] for m in got] == [m.id for m in expected]
        assert [m["copy"] for m in got] == [m.copy for m in expected]
        assert [m["hashDistance"] for m in got] == [m.hash_distance for m in expected]
        assert np.allclose([m["similarity"] for m in got], [m.similarity for m in expected], atol=2e-4)
