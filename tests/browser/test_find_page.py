"""The "Find by image" page in Chromium, at desktop and phone size: a transformed copy of
a collection item finds that item first, with links to its page and to the map; a
file that is not an image and a browser without WebAssembly each get a clear message;
axe finds nothing on the page with its results."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageOps

from support import EXAMPLES, screenshot
from test_accessibility import violations

SIZES = {"desktop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}
# Loading the model: a few seconds here, a minute on a loaded machine.
READY = 180_000


@pytest.fixture(scope="module")
def queries(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("find-queries")
    photo = Image.open(EXAMPLES / "photographs" / "1896NewsBoyGirl.jpg").convert("RGB")
    w, h = photo.size
    copy = ImageOps.grayscale(photo.crop((w // 10, h // 12, w - w // 9, h - h // 10)))
    copy.resize((copy.width // 2, copy.height // 2)).save(folder / "scan.jpg", quality=55)
    (folder / "notes.jpg").write_text("a shopping list, not a picture\n", encoding="utf-8")
    return {"copy": folder / "scan.jpg", "text": folder / "notes.jpg"}


def ready(page) -> None:
    page.wait_for_selector("#find-form[data-state=ready]", timeout=READY)


@pytest.mark.parametrize("size", list(SIZES))
def test_a_copy_of_an_item_finds_that_item_first(open_page, sv, queries, size) -> None:
    page = open_page(viewport=SIZES[size])
    page.goto(sv.url + "index.html")
    page.locator(".site-nav a[href='find/index.html']").click()
    assert page.url == sv.url + "find/index.html"
    assert "lämnar aldrig din webbläsare" in page.inner_text("main")
    ready(page)
    page.set_input_files("#find-file", str(queries["copy"]))
    page.wait_for_selector("#find-form[data-state=results]", timeout=60_000)
    first = page.locator("#find-list > li").first
    assert first.get_attribute("data-id") == "1896NewsBoyGirl"
    item = sv.item("1896NewsBoyGirl")
    assert first.locator("a.card__link").get_attribute("href") == "../" + item["url"]
    assert first.locator("a.find__map").get_attribute("href") == f"../map/photographs/index.html?focus={item['slug']}"
    assert "Tidningsförsäljare" in first.inner_text() and "Likhet" in first.inner_text()
    assert page.locator("#find-list > li").count() >= 10
    # The picture went nowhere: every request was for the site's own files.
    assert not [p for p in sv.requests if "scan" in p]
    screenshot(page, f"find-results-{size}", full_page=True)
    assert violations(page) == []
    first.locator("a.find__map").click()
    page.wait_for_selector("canvas.map-canvas[data-state=ready]", timeout=20_000)


def test_a_file_that_is_not_an_image_says_so(open_page, en, queries) -> None:
    page = open_page(viewport=SIZES["phone"])
    page.goto(en.url + "find/index.html")
    ready(page)
    page.set_input_files("#find-file", str(queries["text"]))
    page.wait_for_selector("#find-form[data-state=error]", timeout=60_000)
    assert page.inner_text("#find-status").startswith("notes.jpg is not an image this browser can read")
    assert page.locator("#find-results").is_hidden()
    screenshot(page, "find-not-an-image-phone")
    assert violations(page) == []


def test_a_browser_without_webassembly_is_told_so(open_page, en) -> None:
    page = open_page(init_script="delete window.WebAssembly;")
    page.goto(en.url + "find/index.html")
    page.wait_for_selector("#find-form[data-state=unsupported]", timeout=20_000)
    assert page.inner_text("#find-status").startswith("This browser cannot run WebAssembly")
    assert page.locator("#find-file").is_disabled() and page.locator("#find-camera").is_disabled()
    assert violations(page) == []
