"""Benchmark: the map ("Bildrelationer") with 1,000, 10,000 and 50,000 points in Chromium.

For each size, writes a map site: a map document (``api/v1/map/all.json``, as a build
writes it) with points in clusters like a t-SNE map, its atlases packed by
``archive_sim.site.atlas`` from real thumbnails (the repository's or --data's, repeated), and the real
map page and map.js. Serves it on localhost and opens it in headless Debian Chromium
(/usr/bin/chromium, through Playwright). Measures:

- first frame: navigation start to the first frame with every thumbnail drawn;
- zoom frame: the mean interval between frames while the map zooms in continuously
  (16.7 ms is the 60 Hz ceiling; median and 95th percentile are printed too), drawn three ways: WebGL as map.js chooses
  it, WebGL with instanced quads forced, and the Canvas 2D fallback, the baseline
  measured in the same run (``zoom_2d_vs_webgl`` = how many times slower it is).

Headless Chromium draws WebGL with SwiftShader on the CPU, where instancing costs
about 20 us per instance; map.js sees the software renderer and gives each quad six
vertices instead, and uses instancing on a GPU (not measured here).

    python bench/map.py [--sizes 1000,10000,50000] [--keep DIR] [--data DIR]

Last line, per size n: first_frame_ms_<n>, zoom_frame_ms_<n>, zoom_frame_instanced_ms_<n>,
zoom_frame_2d_ms_<n>, zoom_2d_vs_webgl_<n>.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
try:
    import archive_sim  # noqa: F401 - the installed package when there is one
except ImportError:
    sys.path.insert(0, str(HERE.parent))

from archive_sim.site.atlas import Tile, build_atlases, packing_order  # noqa: E402
from archive_sim.site.i18n import labels  # noqa: E402
from archive_sim.config import SiteSettings  # noqa: E402
from archive_sim.site.model import dumps  # noqa: E402
from archive_sim.site.pages import every_page_context  # noqa: E402
from archive_sim.site.templates import builtin_dir, environment  # noqa: E402
from image_folders import add_data_option, image_folders  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
NO_WEBGL = """(() => { const get = HTMLCanvasElement.prototype.getContext;
  HTMLCanvasElement.prototype.getContext = function (type, options) {
    return /webgl/.test(type) ? null : get.call(this, type, options); }; })();"""
# name -> (query string, init script): how map.js is made to draw each way
RENDERERS = {
    "webgl": ("", None),                       # map.js chooses: six vertices a quad on software WebGL
    "instanced": ("?renderer=instanced", None),  # WebGL instanced quads, forced
    "2d": ("", NO_WEBGL),                      # the fallback, as a browser without WebGL 2 gets it
}
# Zoom in by 3% a frame for 90 frames (about 14x), timing each frame.
ZOOM = """(frames) => new Promise(done => {
  const map = window.archiveSimMap, times = [], draws = [];
  let n = 0;
  function tick(t) {
    times.push(t);
    draws.push(map.stats().drawMs);
    if (n++ >= frames) return done({times, draws, loaded: map.stats().loaded});
    map.zoomBy(1.03);
    requestAnimationFrame(tick);
  }
  requestAnimationFrame(tick);
})"""


def real_thumbnails(folders: dict[str, Path], size: int = 128,
                    limit: int = 60) -> dict[str, tuple[Image.Image, int, int]]:
    """Thumbnails of real photographs and illustrations: content hash -> (image, width, height)."""
    files = (sorted(folders["photographs"].glob("*.jpg"))[:limit - 12]
             + sorted(folders["illustrations"].glob("*.png")))
    out = {}
    for path in files:
        with Image.open(path) as img:
            width, height = img.size
            thumb = img.convert("RGB")
            thumb.thumbnail((size, size))
        out[hashlib.sha256(path.read_bytes()).hexdigest()] = (thumb, width, height)
    return out


def clustered_positions(count: int, seed: int = 0) -> np.ndarray:
    """Points in [0, 1]² in Gaussian clusters of uneven size, as t-SNE maps look.

    A cluster's spread grows with the square root of its size: t-SNE gives clusters
    about the same density, whatever their size.
    """
    rng = np.random.default_rng(seed)
    clusters = max(4, count // 400)
    centres = rng.random((clusters, 2)) * 0.8 + 0.1
    shares = rng.dirichlet(np.ones(clusters))
    spread = 0.25 * np.sqrt(shares)
    which = rng.choice(clusters, size=count, p=shares)
    xy = centres[which] + rng.normal(size=(count, 2)) * spread[which, None]
    xy -= xy.min(axis=0)
    return xy / xy.max()


def write_map_site(folder: Path, count: int, thumbs: dict[str, tuple[Image.Image, int, int]],
                   top: int = 128, seed: int = 0, removed_every: int = 0) -> dict[str, float]:
    """A site holding one map page of ``count`` points; returns what it took to write.
    ``removed_every``: every n-th point along the packing curve is left out, and its
    cell blank (as points removed since the atlases were packed)."""
    started = time.perf_counter()
    hashes = sorted(thumbs)
    xy = clustered_positions(count, seed)
    tiles = []
    for i in range(count):
        h = hashes[i % len(hashes)]
        _, width, height = thumbs[h]
        tiles.append(Tile(f"p{i:06d}", h, width, height, float(xy[i, 0]), float(xy[i, 1])))
    if removed_every:
        order = packing_order(tiles)
        tiles = [replace(tiles[i], cell=number) for number, i in enumerate(order) if number % removed_every]
    atlases = build_atlases(tiles, folder, top, lambda tile: thumbs[tile.content_hash][0])
    atlas_s = time.perf_counter() - started
    points = [{"id": t.key, "slug": t.key, "category": "bench", "title": f"Bild {t.key}",
               "x": round(t.x, 5), "y": round(t.y, 5), "width": t.width, "height": t.height,
               "url": f"bench/{t.key}/index.html", "thumb": f"media/{top}/{t.content_hash[:24]}.jpg",
               "cell": atlases.cells[t.key]} for t in tiles]
    document = {"version": 1, "scope": "all", "model": "bench", "points": points, "atlas": atlases.document()}
    data = folder / "api/v1/map/all.json"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text(dumps(document), encoding="utf-8")
    t = labels("sv")
    scope = {"name": "all", "label": t["map_all"], "url": "map/index.html", "data_url": "api/v1/map/all.json"}
    every_page = every_page_context(SiteSettings(title="Bench", language="sv"), t, [])
    html = environment(None, every_page).get_template("map.html").render(
        root="../", canonical=None, page_title="Bench", page_description="Bench",
        scope={"name": "all", "label": scope["label"]}, scopes=[{**scope, "current": True}],
        data_url=scope["data_url"])
    (folder / "map").mkdir(exist_ok=True)
    (folder / "map/index.html").write_text(html, encoding="utf-8")
    shutil.copytree(builtin_dir() / "static", folder / "static", dirs_exist_ok=True)
    return {"atlas_s": atlas_s, "atlases": len(atlases.files), "json_mb": data.stat().st_size / 1e6,
            "atlas_mb": sum((folder / f).stat().st_size for f in atlases.files) / 1e6}


def measure(browser, url: str, renderer: str, frames: int = 90) -> dict[str, float]:
    query, script = RENDERERS[renderer]
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    if script:
        context.add_init_script(script)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + query)
    page.wait_for_selector("canvas[data-state=ready]", timeout=300_000)
    used = page.evaluate("[window.archiveSimMap.renderer(), window.archiveSimMap.stats().geometry]")
    assert used[0] == ("2d" if renderer == "2d" else "webgl"), used
    first = page.evaluate("performance.getEntriesByName('map-first-frame')[0].startTime")
    page.wait_for_timeout(300)
    run = page.evaluate(ZOOM, frames)
    context.close()
    if errors:
        raise RuntimeError(f"{url}: {errors[0]}")
    gaps = np.diff(run["times"])[5:]  # the first frames still settle
    return {"geometry": used[1], "first_frame_ms": first, "zoom_frame_ms": float(np.mean(gaps)),
            "zoom_frame_median_ms": float(np.median(gaps)),
            "zoom_frame_p95_ms": float(np.percentile(gaps, 95)),
            "zoom_draw_ms": float(statistics.mean(run["draws"][5:])), "loaded": run["loaded"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000", help="comma-separated point counts")
    parser.add_argument("--keep", type=Path, help="write the sites here and keep them (default: a temp folder)")
    add_data_option(parser)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]

    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(HERE.parent / "tests" / "browser"))
    from support import serve  # the browser tests' static server

    work = args.keep or Path(tempfile.mkdtemp(prefix="archive-sim-map-bench-"))
    thumbs = real_thumbnails(image_folders(args.data))
    print(f"{len(thumbs)} real thumbnails, repeated; sites in {work}")
    headline = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        for count in sizes:
            folder = work / f"map-{count}"
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            made = write_map_site(folder, count, thumbs)
            server, base, _ = serve(folder)
            try:
                results = {name: measure(browser, base + "map/index.html", name) for name in RENDERERS}
            finally:
                server.shutdown()
                server.server_close()
            print(f"{count:>6} points: atlases {made['atlases']} ({made['atlas_mb']:.1f} MB, drawn in "
                  f"{made['atlas_s']:.1f} s), JSON {made['json_mb']:.1f} MB")
            for name, r in results.items():
                label = f"{name} ({r['geometry']})" if r["geometry"] else name
                print(f"  {label:>21}: first frame {r['first_frame_ms']:7.0f} ms   zoom frame mean "
                      f"{r['zoom_frame_ms']:6.1f} ms, median {r['zoom_frame_median_ms']:6.1f}, p95 {r['zoom_frame_p95_ms']:6.1f}   draw (CPU) "
                      f"{r['zoom_draw_ms']:6.2f} ms   atlases loaded per level {r['loaded']}")
            gl, inst, flat = results["webgl"], results["instanced"], results["2d"]
            headline += [f"first_frame_ms_{count}={gl['first_frame_ms']:.0f}",
                         f"zoom_frame_ms_{count}={gl['zoom_frame_ms']:.1f}",
                         f"zoom_frame_instanced_ms_{count}={inst['zoom_frame_ms']:.1f}",
                         f"zoom_frame_2d_ms_{count}={flat['zoom_frame_ms']:.1f}",
                         f"zoom_2d_vs_webgl_{count}={flat['zoom_frame_ms'] / gl['zoom_frame_ms']:.2f}"]
            if not args.keep:
                shutil.rmtree(folder, ignore_errors=True)
        browser.close()
    print(" ".join(headline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
