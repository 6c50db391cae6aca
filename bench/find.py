"""Find by image in a real browser, against ``archive-sim query`` on the same build.

Input: the example collection (examples/collection), built with the default settings
into a temporary folder: the site carries the find/ page, its model and each
category's search data (make vendor-web first, and the find extra); 24 queries that
are altered copies of collection items (crop, rescale, JPEG, gray, rotate, halftone).
Output: per query, the true item's rank on the find page and in ``archive-sim query``
and their top-10 overlap; the model's load time and each answer's time (from the
file handed to the page to the results shown) in headless Chromium at desktop size
(1366x768, software rendering); the model plus runtime size (as stored and
gzip-compressed, as a static host sends it); the search data's bytes an item. The
last line holds the headline figures.

    make vendor-web install-browser
    PYTHONPATH=. .venv/bin/python bench/find.py [--work DIR]

``--work DIR`` keeps the build there, so that a second run rebuilds nothing.

``--scale N`` measures the search alone at collection size instead: one category of N
items (synthetic unit vectors of ``--dim`` dimensions and random 64-bit pHashes; only
sizes and times are measured) written by archive_sim/search_data.py as the render
writes it, then fetched, read and searched in the same browser by find-core.js's
``readSearchData`` and ``search``, as find-worker.js calls them, with a query vector
already computed. It prints the files' bytes an item (as stored and gzip-compressed),
the time to fetch and read them, and the median and slowest of 10 queries.

    PYTHONPATH=. .venv/bin/python bench/find.py --scale 100000
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gzip
import http.server
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image, ImageFilter, ImageOps  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
COLLECTION = REPO / "examples" / "collection"
STATIC = REPO / "templates" / "static"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCALE_QUERIES = 10

def transforms() -> dict[str, callable]:
    def crop(img):
        w, h = img.size
        return img.crop((w // 8, h // 8, w - w // 10, h - h // 10))

    def rescale(img):
        return img.resize((max(1, img.width // 3), max(1, img.height // 3)), Image.Resampling.BICUBIC)

    def jpeg(img):
        buffer = io.BytesIO()
        img.save(buffer, "JPEG", quality=25)
        return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")

    def gray(img):
        return ImageOps.grayscale(img).convert("RGB")

    def rotate(img):
        return img.rotate(4, expand=True, fillcolor=(255, 255, 255))

    def halftone(img):
        # A coarse screen: dots on a 4-pixel grid, then the blur of a scan.
        g = ImageOps.grayscale(img)
        a = np.asarray(g, dtype=np.float32) / 255
        yy, xx = np.mgrid[0:a.shape[0], 0:a.shape[1]]
        screen = (np.sin(xx * np.pi / 2) * np.sin(yy * np.pi / 2) + 1) / 2
        dots = Image.fromarray(((a > screen) * 255).astype(np.uint8))
        return dots.filter(ImageFilter.GaussianBlur(0.8)).convert("RGB")

    return {"crop": crop, "rescale": rescale, "jpeg": jpeg, "gray": gray, "rotate": rotate, "halftone": halftone}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


SCALE_PAGE = """<!doctype html><meta charset="utf-8"><title>search data at scale</title>
<script src="find-core.js"></script>"""

# In the page: fetch and read the category as find-worker.js does, then time the queries.
SCALE_SCRIPT = """async ([header, query, hash, k, hashDistance, copySimilarity, runs]) => {
  const start = performance.now();
  const headerDoc = await (await fetch(header)).json();
  const binary = await (await fetch(new URL(headerDoc.data, new URL(header, location.href)))).arrayBuffer();
  const data = FindCore.readSearchData(headerDoc, binary);
  const loadMs = performance.now() - start;
  const vector = new Float32Array(query), times = [];
  let first = null;
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    const matches = FindCore.search(data, vector, hash, k, hashDistance, copySimilarity);
    times.push(performance.now() - t);
    first = first || matches[0];
  }
  return { loadMs, times, first, count: data.count };
}"""


def scale(n: int, dim: int, seed: int) -> None:
    """Search data of one category of ``n`` items, searched in the browser (see the docstring)."""
    from archive_sim import search_data

    rng = np.random.default_rng(seed)
    ids = [f"PHO-{i:06d}" for i in range(n)]
    vectors = rng.standard_normal((n, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    hashes = [int(h) for h in rng.integers(0, 2**64, size=n, dtype=np.uint64)]
    # The query: an item's vector, slightly moved, as an altered copy of it would be.
    target = n // 2
    query = vectors[target] + 0.3 * rng.standard_normal(dim, dtype=np.float32) / np.sqrt(dim)
    query /= np.linalg.norm(query)
    query_hash = hashes[target] ^ 0b101  # two bits off: a copy by pHash
    start = time.perf_counter()
    data = search_data.build(ids, vectors, hashes)
    del vectors
    with tempfile.TemporaryDirectory(prefix="bench-find-scale-") as tmp:
        root = Path(tmp)
        (root / "find").mkdir()
        header_path, binary_path = search_data.write_category(root / "find", "photographs", data, "synthetic")
        print(f"search data of {n} items ({dim} dimensions) built and written in "
              f"{time.perf_counter() - start:.1f} s", flush=True)
        (root / "find-core.js").write_bytes((STATIC / "find" / "find-core.js").read_bytes())
        (root / "index.html").write_text(SCALE_PAGE, "utf-8")
        header_bytes, binary_bytes = header_path.stat().st_size, binary_path.stat().st_size
        gzipped = sum(len(gzip.compress(p.read_bytes(), 6)) for p in (header_path, binary_path))
        total = header_bytes + binary_bytes

        from playwright.sync_api import sync_playwright

        server, url = serve(root)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1366, "height": 768})
                page.goto(url + "index.html")
                result = page.evaluate(SCALE_SCRIPT, ["find/photographs.json", query.tolist(),
                                                      [query_hash >> 32, query_hash & 0xFFFFFFFF], 10, 7, 0.93,
                                                      SCALE_QUERIES])
                browser.close()
        finally:
            server.shutdown()
    if result["count"] != n or result["first"]["id"] != ids[target]:
        sys.exit(f"the browser's search went wrong: {result['count']} items read, first match {result['first']}")
    times = result["times"]
    print(f"files: header {header_bytes / 1e6:.2f} MB (ids), binary {binary_bytes / 1e6:.2f} MB "
          f"(PCA mean and components, and {data.item_bytes()} bytes an item of codes and pHash); "
          f"{total / n:.1f} bytes an item stored, {gzipped / n:.1f} gzip-compressed")
    print(f"fetch and read in the browser {result['loadMs']:.0f} ms; {SCALE_QUERIES} queries: "
          f"{np.median(times):.0f} ms median, {max(times):.0f} ms slowest, {min(times):.0f} ms fastest "
          f"(the item altered first each time)")
    print(f"items={n} data_bytes_per_item={total / n:.1f} query_ms_median={np.median(times):.0f} "
          f"query_ms_max={max(times):.0f} load_ms={result['loadMs']:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="folder for the build (default: a temporary one)")
    parser.add_argument("--scale", type=int, metavar="N",
                        help="measure the search data and search alone, over one category of N synthetic items")
    parser.add_argument("--dim", type=int, default=1280, help="descriptor dimensions with --scale (default 1280)")
    parser.add_argument("--seed", type=int, default=0, help="random seed with --scale")
    args = parser.parse_args()
    if args.scale:
        scale(args.scale, args.dim, args.seed)
        return
    vendor = STATIC / "vendor" / "onnxruntime-web"
    if not (vendor / "VERSION").exists():
        sys.exit("onnxruntime-web is not vendored: run 'make vendor-web' first")
    from archive_sim import search_data
    from archive_sim.commands.query import Searcher
    from archive_sim.config import load_settings
    from archive_sim.embed.descriptors import descriptor_model_id
    from archive_sim.imaging import load_rgb
    from archive_sim.state_store import StateStore

    with contextlib.ExitStack() as stack:
        if args.work:
            tmp = args.work.resolve()
            tmp.mkdir(parents=True, exist_ok=True)
        else:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-find-")))
        config = tmp / "config.yaml"
        text = (REPO / "config.yaml").read_text("utf-8")
        text = text.replace("path: examples/collection", f"path: {COLLECTION}")
        text = text.replace("metadata: examples/collection/", f"metadata: {COLLECTION}/")
        config.write_text(text.replace("state_dir: .archive-sim", f"state_dir: {tmp / 'state'}")
                          .replace("output_dir: site", f"output_dir: {tmp / 'site'}"), "utf-8")
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "archive_sim", "build", "--config", str(config), "-q"],
                       check=True, cwd=REPO)
        print(f"built the example collection in {time.perf_counter() - start:.0f} s", flush=True)
        settings = load_settings(config)
        store = StateStore(settings.state_dir)
        mid = descriptor_model_id(settings.model)
        items = store.items_with_vectors(mid)

        site = tmp / "site"
        if not (site / "find" / "model.json").exists():
            sys.exit("the built site has no find/ page: install the find extra (make install-test) and run "
                     "'make vendor-web'")
        manifest = json.loads((site / "find" / "model.json").read_text("utf-8"))
        model_file = site / manifest["model"]
        item_bytes, data_bytes = [], 0
        for entry in manifest["categories"]:
            header = json.loads((site / entry["header"]).read_text("utf-8"))
            data_bytes += (site / entry["header"]).stat().st_size + (site / "find" / header["data"]).stat().st_size
            item_bytes.append(header["dims"] + search_data.HASH_BYTES)

        # Queries: every transform applied to four items each (24 in all).
        queries = []
        originals = sorted(items, key=lambda it: it.id)
        for t, (label, fn) in enumerate(transforms().items()):
            for it in originals[t::len(originals) // 4][:4]:
                path = tmp / "queries" / f"{label}-{len(queries)}.jpg"
                path.parent.mkdir(exist_ok=True)
                fn(load_rgb(Path(it.image))).save(path, "JPEG", quality=92)
                queries.append((it.id, label, path))

        searcher = Searcher(settings, store)
        reference = [[h.id for h in searcher.search(path, 10)] for _, _, path in queries]
        store.close()

        from playwright.sync_api import sync_playwright

        server, url = serve(site)
        runtime = [p for p in (site / "static" / "vendor" / "onnxruntime-web").iterdir()
                   if p.suffix in {".js", ".mjs", ".wasm"}]
        stored = model_file.stat().st_size + sum(p.stat().st_size for p in runtime)
        compressed = len(gzip.compress(model_file.read_bytes(), 6)) + sum(
            len(gzip.compress(p.read_bytes(), 6)) for p in runtime)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                     args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page(viewport={"width": 1366, "height": 768})
                page.on("console", lambda m: print(f"  console {m.type}: {m.text}") if m.type == "error" else None)
                start = time.perf_counter()
                page.goto(url + "find/index.html")
                page.wait_for_selector("#find-form[data-state=ready], #find-form[data-state=error]", timeout=300_000)
                load_s = time.perf_counter() - start
                if page.get_attribute("#find-form", "data-state") != "ready":
                    sys.exit(f"the find page could not load the model: {page.inner_text('#find-status')}")
                print(f"model loaded in the browser in {load_s:.1f} s", flush=True)
                overlaps, firsts, reference_firsts, answers = [], [], [], []
                for (truth, label, path), expected in zip(queries, reference):
                    page.evaluate("document.getElementById('find-form').removeAttribute('data-state')")
                    start = time.perf_counter()
                    page.set_input_files("#find-file", str(path))
                    page.wait_for_selector("#find-form[data-state=results], #find-form[data-state=error]",
                                           timeout=120_000)
                    answers.append(time.perf_counter() - start)
                    if page.get_attribute("#find-form", "data-state") != "results":
                        sys.exit(f"{path.name}: {page.inner_text('#find-status')}")
                    got = page.eval_on_selector_all("#find-list > li", "els => els.map(e => e.dataset.id)")[:10]
                    overlaps.append(len(set(got) & set(expected)) / max(1, len(expected)))
                    firsts.append(bool(got) and got[0] == truth)
                    reference_firsts.append(bool(expected) and expected[0] == truth)
                    print(f"  {label:8s} {truth:40.40s} browser first {'yes' if firsts[-1] else 'NO '}  "
                          f"query first {'yes' if reference_firsts[-1] else 'NO '}  overlap {overlaps[-1]:.1f}  "
                          f"{answers[-1]:.2f} s", flush=True)
                browser.close()
        finally:
            server.shutdown()
        n_items = len(items)
        print(f"{len(queries)} queries over {n_items} items: top-10 overlap with archive-sim query "
              f"{np.mean(overlaps):.3f}, true item first {np.mean(firsts):.0%} (query: {np.mean(reference_firsts):.0%}); "
              f"first answer {answers[0]:.2f} s, then {np.median(answers[1:]):.2f} s median, {max(answers):.2f} s "
              f"slowest (model loaded in {load_s:.1f} s); model + runtime "
              f"{stored / 1e6:.1f} MB stored, {compressed / 1e6:.1f} MB gzip; search data "
              f"{data_bytes / n_items:.0f} bytes an item at {n_items} items (PCA included), "
              f"{max(item_bytes)} an item in the codes")
        print(f"top10_overlap={np.mean(overlaps):.3f} true_first={np.mean(firsts):.2f} "
              f"first_answer_s={answers[0]:.2f} slowest_answer_s={max(answers):.2f} model_mb={compressed / 1e6:.1f} "
              f"data_bytes_per_item={max(item_bytes)} load_s={load_s:.1f}")


if __name__ == "__main__":
    main()
