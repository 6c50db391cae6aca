"""The map explains itself: a panel for the selected picture, categories in colour with a
legend, a layout that fills the view with little overlap, sharp thumbnails when zoomed in
deep, the view in the address, and a phone's first screen; at desktop and phone size."""

from __future__ import annotations

import io
import json
import re
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image

from support import TITLES, map_ready, screenshot, wait_for_map
from test_accessibility import violations
from test_map import api, on_top

SIZES = {
    "desktop": {"viewport": {"width": 1366, "height": 768}},
    "phone": {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True},
}
MEDIA = re.compile(r"^/media/(240|480)/")


def select(page, size: str, slug: str) -> None:
    """Click (desktop) or tap (phone) the thumbnail of ``slug``."""
    where = api(page, f"locate({json.dumps(slug)})")
    assert where and where["visible"], slug
    if size == "phone":
        page.touchscreen.tap(where["x"], where["y"])
    else:
        page.mouse.click(where["x"], where["y"])


def canvas_box(page) -> dict:
    return page.locator("canvas.map-canvas").bounding_box()


@pytest.mark.parametrize("size", list(SIZES))
def test_selecting_a_picture_opens_a_panel_with_its_likes(open_page, sv, size) -> None:
    page = open_page(reduced_motion="reduce", **SIZES[size])
    asked: list[str] = []
    page.on("request", lambda r: asked.append(urlsplit(r.url).path))
    page.goto(sv.url + "map/index.html")
    map_ready(page)
    item = sv.item("1888Slum")
    select(page, size, item["slug"])
    panel = page.get_by_role("dialog", name=TITLES["1888Slum"])
    panel.wait_for(state="visible")
    assert page.evaluate("document.getElementById('map-panel').contains(document.activeElement)"), "focus moved in"
    page.wait_for_selector(f"#map-panel[data-loaded='{item['slug']}']")
    # A larger image than the map's: the item thumbnails, loaded once the panel opened.
    image = panel.locator("img.map-panel__image")
    # It loads beside the panel's documents, not before them: on a busy machine, after.
    page.wait_for_function("(() => { const i = document.querySelector('#map-panel img.map-panel__image');"
                           " return i && i.complete && i.naturalWidth > 0; })()")
    assert MEDIA.match(urlsplit(image.evaluate("i => i.currentSrc")).path)
    assert image.evaluate("i => i.complete && i.naturalWidth") >= 240
    assert "1888" in panel.locator("dl").inner_text(), "the metadata of the item page"
    # Its top likes, from its neighbour JSON, read when the panel opened.
    assert "/" + item["neighbors_url"] in asked
    neighbours = json.loads((sv.folder / item["neighbors_url"]).read_text("utf-8"))["neighbors"]
    steps = panel.locator("ol li")
    assert steps.count() == min(6, len(neighbours))
    assert steps.first.inner_text().startswith(neighbours[0]["title"])
    assert panel.get_by_role("link", name="Öppna").get_attribute("href").endswith(item["url"])
    found = violations(page)
    assert not found, found
    screenshot(page, f"map-panel-{size}")

    # Each like is a step on the map: the selection moves there, in view beside the panel.
    first = neighbours[0]
    panel.locator("ol li button").first.click()
    page.wait_for_function(f"window.archiveSimMap.selected() === {json.dumps(first['slug'])}")
    panel = page.get_by_role("dialog", name=first["title"])
    panel.wait_for(state="visible")
    page.wait_for_selector(f"#map-panel[data-loaded='{first['slug']}']")

    def beside_panel(slug: str) -> bool:
        r, box, sheet = api(page, f"locate({json.dumps(slug)})"), canvas_box(page), panel.bounding_box()
        inside = box["x"] <= r["x"] <= box["x"] + box["width"] and box["y"] <= r["y"] <= box["y"] + box["height"]
        under = sheet["x"] <= r["x"] <= sheet["x"] + sheet["width"] and sheet["y"] <= r["y"] <= sheet["y"] + sheet["height"]
        return inside and not under

    page.wait_for_timeout(100)
    assert beside_panel(first["slug"])

    # "Show similar on map" marks its likes and brings them all into view.
    likes = json.loads((sv.folder / sv.item(first["id"])["neighbors_url"]).read_text("utf-8"))["neighbors"]
    panel.get_by_role("button", name="Visa liknande på kartan").click()
    page.wait_for_function("document.getElementById('map-live').textContent.includes('markerade')")
    page.wait_for_timeout(100)
    assert all(beside_panel(n["slug"]) for n in likes)
    screenshot(page, f"map-panel-similar-{size}")

    # Esc closes the panel and gives the focus back to the map.
    page.keyboard.press("Escape")
    panel.wait_for(state="hidden")
    assert page.evaluate("document.activeElement.id") == "map-canvas"


@pytest.mark.parametrize("size", list(SIZES))
def test_the_all_items_map_outlines_each_category_in_its_legend_colour(open_page, sv, size) -> None:
    page = open_page(**SIZES[size])
    page.goto(sv.url + "map/index.html")
    map_ready(page)
    assert page.get_by_text("Bilder som liknar varandra ligger nära varandra").is_visible()
    legend = page.get_by_role("list", name="Kategorier")
    assert legend.locator("li").all_inner_texts() == ["Illustrationer", "Fotografier"]
    colours = page.evaluate("""() => [0, 1].map(i => getComputedStyle(document.querySelector('.map-legend li:nth-child('
        + (i + 1) + ') span')).backgroundColor)""")
    page.wait_for_timeout(200)
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB"), dtype=np.int16)
    points = {p["slug"]: p for p in sv.map_points()}
    checked = set()
    for slug, x, y, width in on_top(page, sv):
        category = points[slug]["category"]
        r = api(page, f"locate({json.dumps(slug)})")
        edge = x - r["width"] / 2 + 0.8  # inside the outline on the thumbnail's left edge
        if category in checked or api(page, f"at({edge}, {y})") != slug or width < 12:
            continue
        want = np.array([int(v) for v in re.findall(r"\d+", colours[0 if category == "illustrations" else 1])[:3]])
        assert np.abs(shot[int(y), int(edge)] - want).max() < 50, (slug, shot[int(y), int(edge)], want)
        checked.add(category)
    assert checked == {"illustrations", "photographs"}
    page.goto(sv.url + "map/photographs/index.html")
    map_ready(page)
    assert page.locator(".map-legend").count() == 0, "one category: nothing to tell apart"


@pytest.mark.parametrize("size", list(SIZES))
def test_the_map_fills_the_view_and_nearly_every_picture_is_reachable(open_page, sv, size) -> None:
    page = open_page(**SIZES[size])
    page.goto(sv.url + "map/index.html")
    map_ready(page)
    box = canvas_box(page)
    # The map and its controls fit the first screen.
    height = SIZES[size]["viewport"]["height"]
    for control in ("canvas.map-canvas", ".map-zoom", ".map-legend"):
        b = page.locator(control).bounding_box()
        assert b["y"] + b["height"] <= height, control
    rects = [api(page, f"locate({json.dumps(p['slug'])})") for p in sv.map_points()]
    x0 = min(r["x"] - r["width"] / 2 for r in rects)
    x1 = max(r["x"] + r["width"] / 2 for r in rects)
    y0 = min(r["y"] - r["height"] / 2 for r in rects)
    y1 = max(r["y"] + r["height"] / 2 for r in rects)
    across, down = (x1 - x0) / box["width"], (y1 - y0) / box["height"]
    assert max(across, down) >= 0.85 and across * down >= 0.45, (across, down)
    # At the first zoom nearly every thumbnail shows its middle, where a pointer reaches it.
    assert len(on_top(page, sv)) >= 0.9 * len(rects)


def test_the_layout_moves_old_points_little_when_items_are_added(open_page, sv) -> None:
    document = json.loads((sv.folder / "api/v1/map/all.json").read_text("utf-8"))
    fewer = {**document, "points": document["points"][:-4]}

    def layout(doc: dict) -> dict[str, tuple[float, float]]:
        page = open_page(**SIZES["desktop"])
        page.route("**/api/v1/map/all.json", lambda route: route.fulfill(json=doc))
        page.goto(sv.url + "map/index.html")
        map_ready(page)
        where = page.evaluate("(slugs) => slugs.map(s => window.archiveSimMap.position(s))",
                              [p["slug"] for p in doc["points"]])
        return {p["slug"]: (w["x"], w["y"], w["size"]) for p, w in zip(doc["points"], where)}

    before, again, after = layout(fewer), layout(fewer), layout(document)
    assert before == again, "the same document, the same map"
    moves = [np.hypot(after[s][0] - x, after[s][1] - y) / after[s][2] for s, (x, y, _) in before.items()]
    assert np.median(moves) < 0.15 and max(moves) < 1.0, sorted(moves)[-5:]


@pytest.mark.parametrize("size", list(SIZES))
def test_deep_zoom_draws_the_item_thumbnails_of_what_is_in_view(open_page, sv, size) -> None:
    page = open_page(**SIZES[size])
    asked: list[str] = []
    page.on("request", lambda r: asked.append(urlsplit(r.url).path))
    item = sv.item("1896NewsBoyGirl")
    page.goto(sv.url + "map/index.html")
    map_ready(page)
    at = api(page, f"position({json.dumps(item['slug'])})")
    page.goto(sv.url + f"map/index.html#x={at['x']}&y={at['y']}&z=1000")  # as deep as the map goes
    page.reload()
    map_ready(page)
    wait_for_map(page, "window.archiveSimMap.stats().deep > 0")
    where = api(page, f"locate({json.dumps(item['slug'])})")
    assert max(where["width"], where["height"]) > 128 * 1.1, "past the sharpest atlas cell"
    page.wait_for_timeout(400)
    thumbs = {urlsplit(p).path for p in asked if MEDIA.match(p)}
    visible = {p["slug"] for p in sv.map_points() if api(page, f"locate({json.dumps(p['slug'])})")["visible"]}
    wanted = {"/" + re.sub(r"^media/\d+/", f"media/{n}/", p["thumb"]) for p in sv.map_points() if p["slug"] in visible
              for n in (240, 480)}
    assert thumbs and thumbs <= wanted, "only the thumbnails of what is in view"
    assert api(page, "stats().deep") == len(visible)
    screenshot(page, f"map-deep-zoom-{size}")


def test_a_deep_zoom_thumbnail_that_failed_to_load_is_asked_for_again(open_page, watch, sv) -> None:
    page = open_page(**SIZES["desktop"])
    watch.expect_error("ERR_CONNECTION_RESET")
    failed: list[str] = []

    def fail_once(route) -> None:
        path = urlsplit(route.request.url).path
        if path in failed:
            route.continue_()
        else:
            failed.append(path)
            route.abort("connectionreset")

    page.route(re.compile(r".*/media/(240|480)/.*"), fail_once)
    item = sv.item("1896NewsBoyGirl")
    page.goto(sv.url + "map/index.html")
    map_ready(page)
    at = api(page, f"position({json.dumps(item['slug'])})")
    page.goto(sv.url + f"map/index.html#x={at['x']}&y={at['y']}&z=1000")
    page.reload()
    map_ready(page)
    wait_for_map(page, "window.archiveSimMap.stats().deep > 0")
    assert failed, "the thumbnails' first requests were made to fail"


@pytest.mark.parametrize("size", list(SIZES))
def test_the_view_is_in_the_address_and_comes_back_from_it(open_page, sv, size) -> None:
    page = open_page(reduced_motion="reduce", **SIZES[size])
    page.goto(sv.url + "map/index.html")
    map_ready(page)
    page.locator("canvas.map-canvas").focus()
    for key in ("+", "+", "ArrowLeft", "n", "Enter"):
        page.keyboard.press(key)
    selected = api(page, "selected()")
    page.wait_for_function(f"location.hash.includes('sel=' + {json.dumps(selected)}) && location.hash.includes('panel=1')")
    page.wait_for_timeout(400)
    shared, view = page.url, api(page, "view()")
    other = open_page(reduced_motion="reduce", **SIZES[size])
    other.goto(shared)
    map_ready(other)
    assert api(other, "selected()") == selected
    assert other.get_by_role("dialog", name=next(p["title"] for p in sv.map_points() if p["slug"] == selected)).is_visible()
    restored = api(other, "view()")
    assert restored["scale"] == pytest.approx(view["scale"], rel=1e-3)
    assert restored["x"] == pytest.approx(view["x"], abs=1e-4) and restored["y"] == pytest.approx(view["y"], abs=1e-4)
