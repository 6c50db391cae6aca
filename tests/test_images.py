"""Every kind of image an archive holds either loads as upright 8-bit RGB or is
refused with a one-line reason; nothing in between (no crash, no blank picture)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from archive_sim.imaging import ImageError, image_size, load_rgb, model_array, save_jpeg

from repo_images import ILLUSTRATIONS, PHOTOGRAPHS, SAMPLES

SMALL_JPEG = PHOTOGRAPHS / "1888Slum.jpg"  # 640 x 360
GREY_PNG = SAMPLES / "camera.png"  # 512 x 512, L
COLOUR_PNG = SAMPLES / "chelsea.png"  # 451 x 300, RGB


@pytest.fixture(scope="module")
def large_jpeg(tmp_path_factory) -> Path:
    """A photograph stored as a camera writes it: 2288 x 2776 pixels, a JPEG of about 1 MB."""
    path = tmp_path_factory.mktemp("large") / "scan.jpg"
    with Image.open(PHOTOGRAPHS / "1850Geography.jpg") as img:  # 572 x 694
        img.convert("RGB").resize((2288, 2776), Image.Resampling.BICUBIC).save(path, quality=92)
    return path


def _assert_usable(img: Image.Image) -> None:
    assert img.mode == "RGB"
    arr = model_array(img, 224)
    assert arr.shape == (224, 224, 3)
    assert arr.dtype == np.uint8


def _assert_refused(path: Path, *words: str) -> str:
    with pytest.raises(ImageError) as info:
        load_rgb(path)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message and message
    assert any(word in message.lower() for word in words), message
    # image_size (used by fetch) refuses the same files, for the same reason.
    with pytest.raises(ImageError) as again:
        image_size(path)
    assert any(word in str(again.value).lower() for word in words), str(again.value)
    return message


# --- usable images ----------------------------------------------------------------


def test_a_cmyk_jpeg_loads_as_rgb_with_its_colours(tmp_path):
    path = tmp_path / "cmyk.jpg"
    original = Image.open(COLOUR_PNG).convert("RGB")
    original.convert("CMYK").save(path, quality=95)
    assert Image.open(path).mode == "CMYK"

    img = load_rgb(path)
    _assert_usable(img)
    assert img.size == original.size
    # Colours survive the round trip (Pillow's CMYK conversion is naive but invertible).
    diff = np.abs(np.asarray(img, dtype=int) - np.asarray(original, dtype=int)).mean()
    assert diff < 12
    assert image_size(path) == original.size


def test_a_16_bit_greyscale_png_keeps_its_contrast(tmp_path):
    grey = np.asarray(Image.open(GREY_PNG).convert("L"), dtype=np.uint16)
    path = tmp_path / "scan16.png"
    Image.fromarray(grey * 257).save(path)  # full 16-bit range, as a scanner writes it
    assert Image.open(path).mode == "I;16"

    img = load_rgb(path)
    _assert_usable(img)
    arr = np.asarray(img)
    # Not clipped to white (the naive convert('L') result) nor crushed to black.
    assert (arr == 255).mean() < 0.05
    assert (arr == 0).mean() < 0.05
    assert arr.std() > 30
    # Same picture as the 8-bit original: the grey levels map back one to one.
    assert np.abs(arr[..., 0].astype(int) - grey.astype(int)).max() <= 1
    assert (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all()


def test_a_palette_png_with_transparency_loads_on_white(tmp_path):
    src = Image.open(COLOUR_PNG).convert("RGB").quantize(64)
    pal = np.asarray(src).copy()
    clear = 63
    pal[:50, :80] = clear  # top-left corner is transparent
    img_p = Image.fromarray(pal, "P")
    img_p.putpalette(src.getpalette())
    img_p.info["transparency"] = clear
    path = tmp_path / "palette.png"
    img_p.save(path, transparency=clear)
    reopened = Image.open(path)
    assert reopened.mode == "P" and "transparency" in reopened.info

    img = load_rgb(path)
    _assert_usable(img)
    arr = np.asarray(img)
    assert (arr[:50, :80] == 255).all()
    assert arr[60:, 90:].std() > 20  # the rest is still the photograph


def test_an_rgba_png_shows_its_transparent_area_as_white(tmp_path):
    rgba = np.dstack([np.asarray(Image.open(COLOUR_PNG).convert("RGB")),
                      np.full((300, 451), 255, dtype=np.uint8)])
    rgba[100:200, 150:300, :3] = 0  # black pixels...
    rgba[100:200, 150:300, 3] = 0  # ...that are fully transparent
    rgba[0:20, 0:20, 3] = 128  # and a half-transparent corner
    path = tmp_path / "cutout.png"
    Image.fromarray(rgba, "RGBA").save(path)

    img = load_rgb(path)
    _assert_usable(img)
    arr = np.asarray(img).astype(int)
    assert (arr[100:200, 150:300] == 255).all()
    # Half transparent: halfway between the pixel and white.
    expected = (rgba[0:20, 0:20, :3].astype(int) * 128 + 255 * 127) / 255
    assert np.abs(arr[0:20, 0:20] - expected).max() <= 2
    # Opaque pixels are untouched.
    assert np.abs(arr[250:, :100] - rgba[250:, :100, :3].astype(int)).max() <= 1


def test_the_archives_own_rgba_photos_load(tmp_path):
    path = PHOTOGRAPHS / "1860sSamauris.png"
    assert Image.open(path).mode == "RGBA"
    img = load_rgb(path)
    _assert_usable(img)
    assert img.size == image_size(path) == (500, 411)


def test_a_one_pixel_image_loads(tmp_path):
    path = tmp_path / "dot.png"
    Image.new("RGB", (1, 1), (10, 200, 30)).save(path)
    img = load_rgb(path)
    _assert_usable(img)
    assert image_size(path) == (1, 1)
    assert (model_array(img, 224) == (10, 200, 30)).all()


def test_exif_orientation_6_is_applied_by_image_size_and_load_rgb(tmp_path):
    stored = Image.open(SMALL_JPEG).convert("RGB")  # 640 wide, 360 high as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "phone.jpg"
    stored.save(path, exif=exif, quality=95)

    assert image_size(path) == (360, 640)
    img = load_rgb(path)
    _assert_usable(img)
    assert img.size == (360, 640)
    # The displayed picture is the stored one turned clockwise.
    expected = np.asarray(stored.transpose(Image.Transpose.ROTATE_270), dtype=int)
    assert np.abs(np.asarray(img, dtype=int) - expected).mean() < 4
    # Draft decoding keeps the rotation too.
    small = load_rgb(path, min_side=100)
    assert small.width < small.height


def test_a_photo_with_a_corrupt_exif_block_still_loads(tmp_path):
    # As archives' files come: the pixels decode, the EXIF block (here: not a TIFF
    # header where one must be) does not parse.
    path = tmp_path / "scan.jpg"
    broken_exif = b"Exif\x00\x00" + b"\xff\xff\xbeZ\x17#\xff\xff" * 32
    Image.open(PHOTOGRAPHS / "MementoMori1865.jpg").save(path, exif=broken_exif, dpi=(300, 300), quality=90)
    with pytest.raises(SyntaxError):
        Image.open(path).getexif()
    assert image_size(path) == (800, 666)
    img = load_rgb(path, min_side=224)
    _assert_usable(img)
    assert min(img.size) >= 224


@pytest.mark.parametrize("path", [
    PHOTOGRAPHS / "dorothea-lange.jpg",  # L
    PHOTOGRAPHS / "1880Paris.jpg",  # RGB
    GREY_PNG,  # L
    COLOUR_PNG,  # RGB
    PHOTOGRAPHS / "1860sSamauris.png",  # RGBA
    ILLUSTRATIONS / "Figure 05.png",  # RGBA, a scanned print
], ids=lambda path: path.name)
def test_photos_of_every_mode_in_the_archive_load(path: Path):
    img = load_rgb(path)
    _assert_usable(img)
    assert img.size == image_size(path)


def test_min_side_decodes_a_large_jpeg_smaller_but_never_below_min_side(large_jpeg: Path):
    full = image_size(large_jpeg)
    img = load_rgb(large_jpeg, min_side=300)
    assert img.mode == "RGB"
    assert min(img.size) >= 300
    assert img.width < full[0] and img.height < full[1]
    # Aspect ratio kept (within the rounding of DCT scaling).
    assert abs(img.width / img.height - full[0] / full[1]) < 0.01
    # Without min_side the whole image is decoded.
    assert load_rgb(large_jpeg).size == full


def test_min_side_larger_than_the_image_returns_it_whole():
    img = load_rgb(SMALL_JPEG, min_side=2000)
    assert img.size == (640, 360)


def test_model_array_keeps_the_whole_picture_not_a_crop(tmp_path):
    # A wide image with a red left edge and a blue right edge: both must survive.
    arr = np.full((100, 400, 3), 128, dtype=np.uint8)
    arr[:, :40] = (255, 0, 0)
    arr[:, -40:] = (0, 0, 255)
    out = model_array(Image.fromarray(arr), 224)
    assert out.shape == (224, 224, 3)
    assert tuple(out[112, 5]) == (255, 0, 0)
    assert tuple(out[112, -5]) == (0, 0, 255)


def test_save_jpeg_fits_within_max_side_and_never_enlarges(tmp_path):
    img = load_rgb(SMALL_JPEG)
    path = tmp_path / "thumbs" / "t.jpg"
    path.parent.mkdir()
    size = save_jpeg(img, path, 240)
    assert size == (240, 135)
    with Image.open(path) as written:
        assert written.format == "JPEG" and written.size == size
    assert save_jpeg(img, tmp_path / "big.jpg", 5000) == (640, 360)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# --- unusable files -----------------------------------------------------------------


def test_a_truncated_jpeg_is_refused(tmp_path):
    data = SMALL_JPEG.read_bytes()
    path = tmp_path / "half.jpg"
    path.write_bytes(data[: len(data) // 2])
    _assert_refused(path, "truncated", "cannot decode")


def test_an_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    assert "empty file" in _assert_refused(path, "empty")


def test_a_text_file_named_jpg_is_refused(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("Inventarienummer NKM 1, olja på duk\n", encoding="utf-8")
    assert "not an image" in _assert_refused(path, "not an image")


def test_an_html_error_page_saved_as_png_is_refused(tmp_path):
    path = tmp_path / "download.png"
    path.write_text("<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>"
                    "<body><h1>Not Found</h1></body></html>\n", encoding="utf-8")
    assert "not an image" in _assert_refused(path, "not an image")


def test_a_missing_file_is_refused(tmp_path):
    _assert_refused(tmp_path / "gone.jpg", "not found")


@pytest.mark.parametrize("factor", [1.5, 3.0])  # Pillow warns up to 2x its limit, errors beyond
def test_an_image_over_the_pixel_limit_is_refused(tmp_path, monkeypatch, factor):
    path = tmp_path / "huge.png"
    Image.open(GREY_PNG).save(path)  # 512 x 512 = 262,144 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", int(512 * 512 / factor))
    _assert_refused(path, "too many pixels")


def test_the_pixel_limit_does_not_refuse_smaller_images(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 512 * 512)
    _assert_usable(load_rgb(GREY_PNG))
