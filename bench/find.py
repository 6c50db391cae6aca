"""Find by image in a real browser, against ``archive-sim query`` on the same build.

Input: the example collection (examples/collection), built with the default settings
into a temporary folder; the descriptor exported to ONNX (float16 weights), each
category's compact search data and find/model.json written beside it, with the
Web Worker and the vendored onnxruntime-web (make vendor-web first); 24 queries
that are altered copies of collection items (crop, rescale, JPEG, gray, rotate,
halftone). Output: per query, the true item's rank in the browser and in
``archive-sim query`` and their top-10 overlap; the model's load time and each
answer's time in headless Chromium (software rendering, the worker on a plain page:
the find/ page itself is not part of the site yet); the model plus runtime size
(as stored and gzip-compressed, as a static host sends it); the search data's bytes
an item. The last line holds the headline figures.

    make vendor-web install-browser
    PYTHONPATH=. .venv/bin/python bench/find.py [--work DIR]

``--work DIR`` keeps the build there, so that a second run rebuilds nothing.
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
import shutil
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

PAGE = """<!doctype html><meta charset="utf-8"><title>find bench</title><link rel="icon" href="data:,">
<script>
const worker = new Worker("static/find/find-worker.js");
let pending = null;
worker.onmessage = (e) => { const p = pending; pending = null; p(e.data); };
function ask(message) { return new Promise((resolve) => { pending = resolve; worker.postMessage(message); }); }
window.loadModel = () => ask({type: "load", base: new URL(".", location.href).href});
window.findUrl = async (url) => {
  const blob = await (await fetch(url)).blob();
  return ask({type: "find", file: new File([blob], url), k: 10});
};
</script>"""


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


def main() -> None:
    vendor = STATIC / "vendor" / "onnxruntime-web"
    if not (vendor / "VERSION").exists():
        sys.exit("onnxruntime-web is not vendored: run 'make vendor-web' first")
    from archive_sim import search_data
    from archive_sim.commands.query import Searcher
    from archive_sim.config import load_settings
    from archive_sim.embed.descriptors import descriptor_model_id
    from archive_sim.embed.onnx_export import export_descriptor, write_model
    from archive_sim.imaging import load_rgb
    from archive_sim.sitemodel import category_slug
    from archive_sim.state_store import StateStore

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="folder for the build (default: a temporary one)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.work:
            tmp = args.work.resolve()
            tmp.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(tmp / "find-site", ignore_errors=True)
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

        # The find/ files, as the site will carry them.
        site = tmp / "find-site"
        (site / "find").mkdir(parents=True)
        shutil.copytree(STATIC / "find", site / "static" / "find")
        shutil.copytree(vendor, site / "static" / "vendor" / "onnxruntime-web")
        exported = export_descriptor(settings.model)
        model_bytes = write_model(exported, site / "find" / "descriptor.onnx", float16=True)
        phashes = store.phashes(it.content_hash for it in items)
        categories, item_bytes, data_bytes = [], [], 0
        for name in sorted({it.category for it in items}):
            members = [it for it in items if it.category == name]
            vectors = store.vectors(mid, [it.content_hash for it in members])
            data = search_data.build([it.id for it in members], vectors,
                                     [phashes.get(it.content_hash) for it in members])
            slug = category_slug(name)
            header, binary = search_data.write_category(site / "find", slug, data, mid)
            data_bytes += header.stat().st_size + binary.stat().st_size
            item_bytes.append(data.item_bytes())
            categories.append((name, f"find/{slug}.json", len(members)))
        (site / "find" / "model.json").write_text(json.dumps(search_data.manifest(
            mid, "find/descriptor.onnx", exported.input_size, exported.dim, settings.copies.hash_distance,
            settings.copies.similarity, categories)), "utf-8")
        (site / "index.html").write_text(PAGE, "utf-8")

        # Queries: every transform applied to four items each (24 in all).
        queries = []
        originals = sorted(items, key=lambda it: it.id)
        for t, (label, fn) in enumerate(transforms().items()):
            for it in originals[t::len(originals) // 4][:4]:
                path = site / "queries" / f"{label}-{len(queries)}.jpg"
                path.parent.mkdir(exist_ok=True)
                fn(load_rgb(Path(it.image))).save(path, "JPEG", quality=92)
                queries.append((it.id, label, path))

        searcher = Searcher(settings, store)
        reference = [[h.id for h in searcher.search(path, 10)] for _, _, path in queries]
        store.close()

        from playwright.sync_api import sync_playwright

        server, url = serve(site)
        runtime = [p for p in vendor.iterdir() if p.suffix in {".js", ".mjs", ".wasm"}]
        stored = model_bytes + sum(p.stat().st_size for p in runtime)
        compressed = len(gzip.compress((site / "find" / "descriptor.onnx").read_bytes(), 6)) + sum(
            len(gzip.compress(p.read_bytes(), 6)) for p in runtime)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                     args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.on("console", lambda m: print(f"  console {m.type}: {m.text}") if m.type == "error" else None)
                page.goto(url)
                start = time.perf_counter()
                ready = page.evaluate("loadModel()")
                load_s = time.perf_counter() - start
                if ready["type"] != "ready":
                    sys.exit(f"the worker could not load the model: {ready}")
                print(f"model loaded in the browser in {load_s:.1f} s", flush=True)
                overlaps, firsts, reference_firsts, answers = [], [], [], []
                for (truth, label, path), expected in zip(queries, reference):
                    start = time.perf_counter()
                    result = page.evaluate("(u) => findUrl(u)", f"queries/{path.name}")
                    answers.append(time.perf_counter() - start)
                    if result["type"] != "results":
                        sys.exit(f"{path.name}: {result}")
                    got = [m["id"] for m in result["matches"]]
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
