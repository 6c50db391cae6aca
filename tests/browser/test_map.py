"""The map ("Bildrelationer") as visitors use it: mouse, keyboard, touch; WebGL and Canvas 2D."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from urllib.parse import urlsplit

import jsonschema
import numpy as np
import pytest
from PIL import Image

from support import REPO, TITLES, map_ready, screenshot, serve

NO_WEBGL = """(() => { const get = HTMLCanvasElement.prototype.getContext;
  HTMLCanvasElement.prototype.getContext = function (type, options) {
    return /webgl/.test(type) ? null : get.call(this, type, options); }; })();"""
# Each slug whose thumbnail's centre is on the canvas, on top: [slug, x, y, width].
ON_TOP = """(slugs) => { const b = document.querySelector('canvas.map-canvas').getBoundingClientRect();
  return slugs.map(slug => [slug, window.archiveSimMap.locate(slug)])
  .filter(([slug, r]) => r && r.x > b.left + 2 && r.x < b.right - 2 && r.y > b.top + 2 && r.y < b.bottom - 2
          && window.archiveSimMap.at(r.x, r.y) === slug)
  .map(([slug, r]) => [slug, r.x, r.y, r.width]); }"""
PLACEHOLDER = np.array([180, 177, 168])  # --map-ph: a thumbnail not drawn from an atlas


def api(page, expression: str):
    return page.evaluate(f"window.archiveSimMap.{expression}")


def on_top(page, site, scope: str = "all") -> list[list]:
    return page.evaluate(ON_TOP, [p["slug"] for p in site.map_points(scope)])


def drawn_from_atlases(page, spots: list[list]) -> float:
    """Share of thumbnails whose middle is not the flat grey of a placeholder."""
    box = page.locator("canvas.map-canvas").bounding_box()
    shot = np.asarray(Image.open(io.BytesIO(page.locator("canvas.map-canvas").screenshot())).convert("RGB"),
                      dtype=np.int16)
    drawn = 0
    for _, x, y, width in spots:
        cx, cy, r = int(x - box["x"]), int(y - box["y"]), max(1, int(width / 4))
        patch = shot[max(0, cy - r):cy + r + 1, max(0, cx - r):cx + r + 1].reshape(-1, 3)
        drawn += np.abs(patch.mean(axis=0) - PLACEHOLDER).max() > 4 or patch.std(axis=0).max() > 2
    return drawn / len(spots)


def test_the_map_draws_every_thumbnail_from_atlases_with_webgl(page, sv) -> None:
    asked: list[str] = []
    page.on("request", lambda r: asked.append(urlsplit(r.url).path))
    page.goto(sv.url + "map/index.html")
    map_ready(page)
    assert page.locator("canvas.map-canvas").get_attribute("data-renderer") == "webgl"
    assert api(page, "stats().points") == len(sv.items)
    schema = json.loads((sv.folder / "api/v1/schema/map.schema.json").read_text("utf-8"))
    for scope in ("all", "photographs", "illustrations"):
        jsonschema.validate(json.loads((sv.folder / f"api/v1/map/{scope}.json").read_text("utf-8")), schema)
    levels = json.loads((sv.folder / "api/v1/map/all.json").read_text("utf-8"))["atlas"]["levels"]
    assert len(levels[0]["images"]) == 1
    spots = on_top(page, sv)
    assert len(spots) >= len(sv.items) // 3
    assert drawn_from_atlases(page, spots) >= 0.9
    screenshot(page, "map-all-webgl")
    # Only this site's files were asked for: the page, its CSS and JS, one map document, atlases.
    atlases = {"/" + path for level in levels for path in level["images"]}
    page_files = {"/map/index.html", "/static/style.css", "/static/map.js", "/api/v1/map/all.json"}
    assert page_files <= set(asked) and "/" + levels[0]["images"][0] in asked
    assert set(asked) <= page_files | atlases, asked


def test_zoom_loads_sharper_atlases_and_a_click_opens_the_item(page, sv) -> None:
    page.goto(sv.url + "map/index.html")
    map_ready(page)
    levels = json.loads((sv.folder / "api/v1/map/all.json").read_text("utf-8"))["atlas"]["levels"]
    top = {"/" + path for path in levels[-1]["images"]}
    fit = api(page, "view().scale")
    box = page.locator("canvas.map-canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(6):
        page.mouse.wheel(0, -300)
        page.wait_for_timeout(50)
    assert api(page, "view().scale") >= 3.9 * fit
    page.wait_for_function("window.archiveSimMap.stats().loaded.slice(-1)[0] > 0")
    assert top & set(sv.requests), "the sharpest level was loaded"
    spots = on_top(page, sv)
    assert spots and drawn_from_atlases(page, spots) >= 0.9
    slug, x, y, _ = max(spots, key=lambda s: s[3])
    point = next(p for p in sv.map_points() if p["slug"] == slug)
    page.mouse.move(x, y)
    tip = page.locator("#map-tooltip")
    tip.wait_for(state="visible")
    assert tip.inner_text() == point["title"]
    screenshot(page, "map-zoomed-hover")
    page.mouse.click(x, y)  # a click opens the panel (the map makes room for it); its "Öppna" opens the item
    panel = page.get_by_role("dialog", name=point["title"])
    panel.wait_for(state="visible")
    page.wait_for_timeout(400)
    zoomed = api(page, "view()")
    panel.get_by_role("link", name="Öppna").click()
    page.wait_for_url(sv.url + point["url"])
    assert page.locator("h1").inner_text() == point["title"]
    # Back on the map, the view is where the visitor left it.
    page.go_back()
    map_ready(page)
    back = api(page, "view()")
    assert back["scale"] == pytest.approx(zoomed["scale"]) and back["x"] == pytest.approx(zoomed["x"])


def test_show_on_map_centres_and_highlights_the_item(page, sv) -> None:
    item = sv.item("1896NewsBoyGirl")
    page.goto(sv.url + item["url"])
    page.get_by_role("link", name="Visa på kartan").click()
    page.wait_for_url(f"**/map/photographs/index.html?focus={item['slug']}")
    map_ready(page)
    assert api(page, "selected()") == item["slug"]
    where = api(page, f"locate({json.dumps(item['slug'])})")
    box = page.locator("canvas.map-canvas").bounding_box()
    assert where["visible"]
    assert abs(where["x"] - (box["x"] + box["width"] / 2)) < 2
    assert abs(where["y"] - (box["y"] + box["height"] / 2)) < 2
    assert max(where["width"], where["height"]) >= 150, "zoomed in on it"
    tip = page.locator("#map-tooltip")
    assert tip.is_visible() and tip.inner_text() == TITLES["1896NewsBoyGirl"]
    # A link leads back to the item the map was opened from.
    back = page.get_by_role("link", name=f"Tillbaka till {TITLES['1896NewsBoyGirl']}")
    assert back.is_visible() and back.get_attribute("href").endswith(item["url"])
    # The ring is drawn in the focus colour just outside the thumbnail.
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB"), dtype=np.int16)
    ring = shot[int(where["y"]), int(where["x"] - where["width"] / 2 - 3)]
    assert np.abs(ring - np.array([0x0b, 0x57, 0xd0])).max() < 40, ring
    screenshot(page, "map-focus-from-item")


def test_the_keyboard_does_what_the_mouse_does(open_page, sv) -> None:
    page = open_page(reduced_motion="reduce")
    page.goto(sv.url + "map/index.html")
    map_ready(page)
    for _ in range(25):  # the map is reached with Tab like any control
        if page.evaluate("document.activeElement.id") == "map-canvas":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "map-canvas"
    points = {p["slug"]: p for p in sv.map_points()}
    fit = api(page, "view()")

    page.keyboard.press("n")  # select the picture nearest the centre
    first = api(page, "selected()")
    tip = page.locator("#map-tooltip")
    tip.wait_for(state="visible")  # drawn with the next frame
    assert first and tip.inner_text() == points[first]["title"]
    assert points[first]["title"] in page.locator("#map-live").inner_text()
    page.keyboard.press("Escape")
    assert api(page, "selected()") is None
    tip.wait_for(state="hidden")

    page.keyboard.press("+")
    assert api(page, "view().scale") == pytest.approx(fit["scale"] * 1.5)
    page.keyboard.press("ArrowRight")
    assert api(page, "view().x") > fit["x"]
    page.keyboard.press("0")
    assert api(page, "view()")["scale"] == pytest.approx(fit["scale"])

    # Shift + arrow: the nearest picture that way, as pointing at it would.
    page.keyboard.press("n")
    start = api(page, "selected()")
    box = page.locator("canvas.map-canvas").bounding_box()
    here = api(page, f"locate({json.dumps(start)})")
    direction, sign = ("ArrowRight", 1) if here["x"] < box["x"] + box["width"] / 2 else ("ArrowLeft", -1)
    page.keyboard.press(f"Shift+{direction}")
    moved = api(page, "selected()")
    assert moved != start
    assert sign * (api(page, f"locate({json.dumps(moved)})")["x"] - api(page, f"locate({json.dumps(start)})")["x"]) > 0
    page.wait_for_function("t => document.getElementById('map-tooltip').textContent === t", arg=points[moved]["title"])
    screenshot(page, "map-keyboard-selection")

    # The zoom buttons come next in the tab order.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.zoom") == "in"
    before = api(page, "view().scale")
    page.keyboard.press("Enter")
    assert api(page, "view().scale") > before
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")  # opens the panel of the selected picture, focus in it
    panel = page.get_by_role("dialog", name=points[moved]["title"])
    panel.wait_for(state="visible")
    assert page.evaluate("document.activeElement.id") == "map-panel-title"
    page.keyboard.press("Escape")  # closes it, focus back on the map
    panel.wait_for(state="hidden")
    assert page.evaluate("document.activeElement.id") == "map-canvas"
    assert api(page, "selected()") == moved
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")  # from the panel's heading to its "Öppna"
    assert page.evaluate("document.activeElement.textContent") == "Öppna"
    page.keyboard.press("Enter")
    page.wait_for_url(sv.url + points[moved]["url"])


def test_touch_pinch_zooms_and_a_tap_selects_then_opens(open_page, sv) -> None:
    page = open_page(viewport={"width": 390, "height": 780}, has_touch=True, is_mobile=True,
                     reduced_motion="reduce")
    page.goto(sv.url + "map/illustrations/index.html")
    map_ready(page)
    fit = api(page, "view().scale")
    # Pinch around a thumbnail: it stays between the fingers.
    slug, cx, cy, _ = max(on_top(page, sv, "illustrations"), key=lambda s: s[3])
    cdp = page.context.new_cdp_session(page)

    def touch(kind: str, spread: float | None) -> None:
        points = [] if spread is None else [{"x": cx - spread, "y": cy, "id": 0}, {"x": cx + spread, "y": cy, "id": 1}]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    touch("touchStart", 30)
    for spread in range(40, 100, 10):
        touch("touchMove", spread)
    touch("touchEnd", None)
    assert api(page, "view().scale") == pytest.approx(3 * fit, rel=0.05)
    screenshot(page, "map-phone-pinched")
    where = api(page, f"locate({json.dumps(slug)})")
    x, y = where["x"], where["y"]
    assert abs(x - cx) < 2 and abs(y - cy) < 2
    page.touchscreen.tap(x, y)
    assert api(page, "selected()") == slug
    page.locator("#map-tooltip").wait_for(state="visible")
    page.locator("#map-panel").wait_for(state="visible")
    where = api(page, f"locate({json.dumps(slug)})")  # the panel took room: the map moved
    page.touchscreen.tap(where["x"], where["y"])
    url = next(p["url"] for p in sv.map_points("illustrations") if p["slug"] == slug)
    page.wait_for_url(sv.url + url)


def test_without_webgl_the_map_draws_with_canvas_2d(open_page, sv) -> None:
    page = open_page(init_script=NO_WEBGL)
    page.goto(sv.url + "map/photographs/index.html")
    map_ready(page)
    assert page.locator("canvas.map-canvas").get_attribute("data-renderer") == "2d"
    spots = on_top(page, sv, "photographs")
    assert len(spots) >= 5 and drawn_from_atlases(page, spots) >= 0.9
    screenshot(page, "map-photographs-canvas2d")
    slug, x, y, _ = spots[0]
    page.mouse.click(x, y)
    point = next(p for p in sv.map_points("photographs") if p["slug"] == slug)
    page.get_by_role("dialog", name=point["title"]).get_by_role("link", name="Öppna").click()
    page.wait_for_url(sv.url + point["url"])


def test_the_scope_switcher_shows_one_category_at_a_time(page, sv) -> None:
    page.goto(sv.url + "map/index.html")
    map_ready(page)
    scopes = page.get_by_role("navigation", name="Bildrelationer")
    assert scopes.get_by_role("link", name="Alla bilder").get_attribute("aria-current") == "page"
    scopes.get_by_role("link", name="Illustrationer").click()
    page.wait_for_url("**/map/illustrations/index.html")
    map_ready(page)
    assert page.get_by_role("navigation", name="Bildrelationer").get_by_role(
        "link", name="Illustrationer").get_attribute("aria-current") == "page"
    assert api(page, "stats().points") == sum(1 for it in sv.items if it["category"] == "illustrations")
    assert page.locator("h1").inner_text() == "Bildrelationer: Illustrationer"


def test_english_map_speaks_english(page, en) -> None:
    page.goto(en.url + "map/index.html")
    map_ready(page)
    assert page.locator("h1").inner_text() == "Image relations: All images"
    assert page.get_by_role("button", name="Zoom in").is_visible()
    assert page.locator("#map-help").is_hidden()
    page.get_by_text("How to use the map").click()
    assert "Shift + arrow key" in page.locator("#map-help").inner_text()
    page.locator("canvas.map-canvas").focus()
    page.keyboard.press("n")
    assert f"of {len(en.items)}" in page.locator("#map-live").inner_text()


@pytest.fixture(scope="module")
def big_map(tmp_path_factory):
    """3,000 points packed by the benchmark's generator: several atlases per level."""
    sys.path.insert(0, str(REPO / "bench"))  # bench/map.py's own imports
    spec = importlib.util.spec_from_file_location("bench_map", REPO / "bench" / "map.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    folder = tmp_path_factory.mktemp("big-map")
    bench.write_map_site(folder, 3000, bench.real_thumbnails(bench.image_folders(None), limit=24))
    server, url, log = serve(folder)
    yield folder, url, log
    server.shutdown()
    server.server_close()


def test_zoomed_in_only_the_atlases_in_view_are_loaded(page, big_map) -> None:
    folder, url, log = big_map
    levels = json.loads((folder / "api/v1/map/all.json").read_text("utf-8"))["atlas"]["levels"]
    assert [len(level["images"]) for level in levels] == [1, 3, 12]
    page.goto(url + "map/index.html")
    map_ready(page)
    assert api(page, "stats().loaded") == [1, 0, 0], "the first frame needs the smallest level only"
    # Zoom in on the picture furthest up and left: one corner of the map.
    points = json.loads((folder / "api/v1/map/all.json").read_text("utf-8"))["points"]
    corner = min(points, key=lambda p: p["x"] + p["y"])
    where = api(page, f"locate({json.dumps(corner['slug'])})")
    page.mouse.move(where["x"], where["y"])
    for _ in range(12):
        page.mouse.wheel(0, -400)
        page.wait_for_timeout(30)
    page.wait_for_function("window.archiveSimMap.stats().loaded[2] > 0")
    page.wait_for_timeout(500)
    loaded = api(page, "stats().loaded")
    sharp = {"/" + path for path in levels[2]["images"]} & set(log)
    assert 0 < loaded[2] == len(sharp) <= 4, (loaded, sharp)
    screenshot(page, "map-3000-zoomed")


@pytest.fixture(scope="module")
def map_with_gaps(tmp_path_factory):
    """3,000 points of which every third is gone since the atlases were packed: their
    cells are blank, and the cells of the points left have gaps."""
    sys.path.insert(0, str(REPO / "bench"))
    spec = importlib.util.spec_from_file_location("bench_map", REPO / "bench" / "map.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    folder = tmp_path_factory.mktemp("map-with-gaps")
    bench.write_map_site(folder, 3000, bench.real_thumbnails(bench.image_folders(None), limit=24), removed_every=3)
    server, url, log = serve(folder)
    yield folder, url
    server.shutdown()
    server.server_close()


def test_points_are_drawn_from_their_own_cells_when_removed_points_left_gaps(page, map_with_gaps) -> None:
    folder, url = map_with_gaps
    points = json.loads((folder / "api/v1/map/all.json").read_text("utf-8"))["points"]
    cells = sorted(p["cell"] for p in points)
    assert len(points) == 2000 and cells[-1] > len(points), "the cells have gaps"
    page.goto(url + "map/index.html")
    map_ready(page)
    assert api(page, "stats().points") == 2000
    spots = page.evaluate(ON_TOP, [p["slug"] for p in points])
    assert len(spots) >= 100
    # A point drawn from the cell at its place in the list, not its own, would show a
    # blank cell (the flat grey of a placeholder) a third of the time.
    assert drawn_from_atlases(page, spots) >= 0.97
