"""What the browser tests share: the test collection, building and serving a site, screenshots.

Input: real images from the example collection (examples/collection, credited in its
CREDITS.md). Output: a collection folder and configs that
``archive-sim build`` turns into a site, a local static server for it (404.html for
missing paths, as static hosts do, and a log of the paths asked for), and
screenshots under build/screenshots/ (or $ARCHIVE_SIM_SCREENSHOTS).
"""

from __future__ import annotations

import csv
import functools
import http.server
import io
import json
import os
import shutil
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from PIL import Image

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "collection"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(os.environ.get("ARCHIVE_SIM_SCREENSHOTS", REPO / "build" / "screenshots"))
ORIGINAL = EXAMPLES / "photographs" / "1888Slum.jpg"
SUB_PATH = "/sub/path/"
SITE_URL = "https://example.org/sub/path/"  # where the site built with site.url says it is published
PHOTOS = ["1896NewsBoyGirl.jpg", "IceManLondon1919.jpg", "SchoolKidsConnemaraIreland1901.jpg",
          "Edinburgh1920s.jpg", "OregonTrail1870s.jpg", "BoxedBedEarly1900s.jpg", "1920sGuadalope.jpg",
          "1890CliffHouseSF.jpg", "GasPrices1939.jpg", "40sCouple.jpg", "HalloweenEarly1900s.jpg",
          "1948CarsGrandma.jpg"]
FIGURES = [f"Figure {n:02d}.png" for n in range(1, 9)]
TITLES = {  # Swedish titles with letters beyond ASCII: alt text and tooltips come from here
    "1888Slum": "Bakgård i slumkvarter, 1888",
    "slum-reprint": "Bakgård i slumkvarter (omtryck)",
    "1896NewsBoyGirl": "Tidningsförsäljare",
    "Figure 01": "Träsnitt med blomranka",
    "Figure 01 kopia": "Träsnitt med blomranka (kopia)",
}


@dataclass(frozen=True)
class Site:
    folder: Path
    url: str            # where the local server serves it, ending in /
    requests: list[str]  # paths the server was asked for, in order
    items: list[dict]   # api/v1/items.json

    def item(self, item_id: str) -> dict:
        return next(it for it in self.items if it["id"] == item_id)

    def map_points(self, scope: str = "all") -> list[dict]:
        return json.loads((self.folder / f"api/v1/map/{scope}.json").read_text("utf-8"))["points"]


def archive_sim_command() -> tuple[list[str], dict[str, str]]:
    """The installed ``archive-sim`` beside this Python, else the checkout as a module."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    script = Path(sys.executable).with_name("archive-sim")
    if script.exists():
        env.pop("PYTHONPATH", None)
        return [str(script)], env
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return [sys.executable, "-m", "archive_sim"], env


def make_collection(root: Path) -> None:
    photos = root / "collection" / "photographs"
    figures = root / "collection" / "illustrations"
    photos.mkdir(parents=True)
    figures.mkdir(parents=True)
    for name in PHOTOS:
        shutil.copy(EXAMPLES / "photographs" / name, photos / name)
    shutil.copy(ORIGINAL, photos / ORIGINAL.name)
    for name in FIGURES:
        shutil.copy(EXAMPLES / "illustrations" / name, figures / name)
    shutil.copy(EXAMPLES / "illustrations" / FIGURES[0], figures / "Figure 01 kopia.png")  # an exact copy
    # The same picture, another file: cropped, scaled down and recompressed.
    img = Image.open(ORIGINAL).convert("RGB")
    w, h = img.size
    crop = img.crop((int(w * 0.04), int(h * 0.04), int(w * 0.96), int(h * 0.95)))
    crop.resize((crop.width * 2 // 3, crop.height * 2 // 3)).save(photos / "slum-reprint.jpg", quality=70)
    with (root / "collection" / "metadata.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "title", "date", "creator", "description"])
        for item_id, title in TITLES.items():
            slum = "Slum" in item_id or "slum" in item_id
            # A creator and a description to search by (test_search.py): the photographer's
            # name is in no title; the description's word is in both categories.
            writer.writerow([item_id, title, "1888" if slum else "", "Jacob Riis" if slum else "",
                             f"{title}, ur testsamlingen"])


def write_config(root: Path, language: str, out: str, url: str | None = None) -> Path:
    labels = ({"photographs": "Fotografier", "illustrations": "Illustrationer"} if language == "sv"
              else {"photographs": "Photographs", "illustrations": "Illustrations"})
    title = "Testarkiv" if language == "sv" else "Test archive"
    config = root / f"config-{out}.yaml"
    config.write_text(
        f"site:\n  title: {title}\n  language: {language}\n  items_per_page: 6\n"
        + (f"  url: {url}\n" if url else "") +
        f"  category_labels: {json.dumps(labels, ensure_ascii=False)}\n"
        "source:\n  path: collection\n  metadata: collection/metadata.csv\n"
        "neighbors:\n  k: 6\n"
        f"state_dir: .state\noutput_dir: {out}\n", encoding="utf-8")
    return config


class _SiteHandler(http.server.SimpleHTTPRequestHandler):
    """A static host: files as they are, 404.html (status 404) for anything missing.
    The site is served under ``prefix`` (``/`` or a sub-path such as ``/sub/path/``)."""

    log: list[str]
    prefix: str = "/"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        pass

    def send_head(self):
        self.log.append(urlsplit(self.path).path)
        inside = self.path.startswith(self.prefix)
        if inside:
            self.path = "/" + self.path[len(self.prefix):]
        path = Path(self.translate_path(self.path))
        if inside and path.exists():
            return super().send_head()
        page = Path(self.directory) / "404.html"
        body = page.read_bytes() if page.exists() else b"Not found\n"
        self.send_response(404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # A browser that closes a page drops the downloads still running: not an error.
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


def serve(folder: Path, prefix: str = "/") -> tuple[http.server.ThreadingHTTPServer, str, list[str]]:
    """Serve ``folder`` at ``prefix`` on a free localhost port: (server, base URL, log of paths asked for)."""
    log: list[str] = []
    handler = functools.partial(type("Handler", (_SiteHandler,), {"log": log, "prefix": prefix}),
                                directory=str(folder))
    server = _Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}{prefix}", log


def screenshot(page, name: str, full_page: bool = False) -> Path:
    """Save a screenshot for a person to look at; the name says what it shows."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def map_ready(page, timeout: float = 20_000) -> None:
    page.wait_for_selector("canvas.map-canvas[data-state=ready]", timeout=timeout)


def wait_for_map(page, condition: str, timeout: float = 30_000) -> None:
    """Wait until ``condition`` (JavaScript) holds on the map page; when it does not, the
    failure says what the map held (its ``stats()``), not only that time ran out."""
    try:
        page.wait_for_function(condition, timeout=timeout)
    except Exception as error:
        stats = page.evaluate("window.archiveSimMap && window.archiveSimMap.stats()")
        raise AssertionError(f"{condition} did not hold within {timeout / 1000:g} s; map: {stats}") from error
