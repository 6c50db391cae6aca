"""Decode, orient, convert and resize images; write thumbnails.

Input: image files in any mode Pillow reads (JPEG, PNG, TIFF, ...; L, P, RGBA,
CMYK, 16-bit). Output: 8-bit RGB Pillow images with EXIF orientation applied,
fixed-size arrays for a CNN, and JPEG thumbnails. Anything unreadable raises
``ImageError`` with a one-line reason that the caller pairs with the file name.
"""

from __future__ import annotations

import io
import struct
import warnings
from pathlib import Path

import numpy as np
import simplejpeg
from PIL import Image, ImageOps, UnidentifiedImageError

from .fsutil import atomic_write_bytes

_TRANSPARENT_MODES = {"RGBA", "LA", "PA", "La", "RGBa"}
_BACKGROUND = (255, 255, 255)
# What Pillow raises on a malformed EXIF block (the pixels themselves may be fine).
_EXIF_ERRORS = (SyntaxError, ValueError, OSError, struct.error, KeyError, IndexError, TypeError)


class ImageError(ValueError):
    """The file is not an image we can use; the message says why in one line."""


def _open(path: Path) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Over Pillow's pixel limit is a warning up to 2x and an error beyond;
            # treat both as a refusal so that one huge file cannot exhaust memory.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
    except FileNotFoundError:
        raise ImageError("file not found") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"too many pixels ({exc})") from None
    except UnidentifiedImageError:
        size = path.stat().st_size
        raise ImageError("empty file" if size == 0 else "not an image Pillow can read") from None
    except OSError as exc:
        raise ImageError(f"cannot open: {exc}") from None
    limit = Image.MAX_IMAGE_PIXELS
    if limit and img.width * img.height > limit:
        img.close()
        raise ImageError(f"too many pixels ({img.width}x{img.height}, limit {limit})")
    if img.width < 1 or img.height < 1:
        raise ImageError(f"empty image ({img.width}x{img.height})")
    return img


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation tag (1 = as stored); a broken EXIF block counts as 1."""
    try:
        return int(img.getexif().get(0x0112, 1))
    except _EXIF_ERRORS:
        return 1


def _upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; keep the image as stored if its EXIF is unreadable."""
    try:
        return ImageOps.exif_transpose(img)
    except _EXIF_ERRORS:
        return img


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
    if mode in _TRANSPARENT_MODES:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _BACKGROUND + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode in {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}:
        # convert("L") clips 16-bit values at 255; scale the real range instead.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if mode == "RGB":
        return img
    return img.convert("RGB")


def load_rgb(path: Path, min_side: int | None = None) -> Image.Image:
    """Decode ``path`` as upright 8-bit RGB.

    ``min_side`` lets JPEG decode at a reduced scale (DCT scaling via ``draft``) while
    keeping both sides at least that large: 2-3x faster on large photographs.
    """
    img = _open(path)
    try:
        if min_side and img.format == "JPEG":
            img.draft("RGB", (min_side, min_side))
        img.load()
        return _to_rgb(_upright(img))
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(f"cannot decode: {exc}") from None


def load_thumbnail(path: Path) -> Image.Image:
    """Decode a thumbnail that ``save_jpeg`` wrote (already upright), as an RGBX image
    (RGB with a fourth unused byte) that shares the decoder's memory: read-only.

    simplejpeg hands the file to libjpeg-turbo in one call: the same pixels as
    Pillow in half the time, which Pillow spends parsing the JPEG's markers in Python
    (a map of 100,000 points decodes 200,000 thumbnails). RGBX is Pillow's own layout
    of RGB, so the pixels need no copy.
    """
    try:
        pixels = simplejpeg.decode_jpeg(path.read_bytes(), colorspace="RGBX")
    except (OSError, ValueError) as exc:
        raise ImageError(f"cannot decode thumbnail {path.name}: {exc}") from None
    return Image.frombuffer("RGBX", (pixels.shape[1], pixels.shape[0]), pixels, "raw", "RGBX", 0, 1)


def image_size(path: Path) -> tuple[int, int]:
    """Width and height as displayed (after EXIF rotation), decoding the whole file once.

    Decoding (at reduced scale for JPEG) is what finds truncated and corrupt files.
    """
    img = _open(path)
    try:
        size = img.size
        if img.format == "JPEG":
            img.draft("RGB", (64, 64))
        img.load()
        orientation = _orientation(img)
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"cannot decode: {exc}") from None
    finally:
        img.close()
    return (size[1], size[0]) if orientation in (5, 6, 7, 8) else size


def model_array(img: Image.Image, size: int) -> np.ndarray:
    """The whole picture resized to ``size`` x ``size`` as uint8 HxWx3.

    No centre crop: a crop would drop the margins where a reprint and its original
    differ least, and two items must be compared on everything they show.
    """
    resized = img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(resized, dtype=np.uint8)


def fit_within(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Size of a ``width`` x ``height`` image scaled down to fit ``max_side`` (never up)."""
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def save_jpeg(img: Image.Image, path: Path, max_side: int, quality: int = 82) -> tuple[int, int]:
    """Write a JPEG of ``img`` scaled to fit ``max_side``; return its size."""
    size = fit_within(img.width, img.height, max_side)
    out = img if size == img.size else img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    buffer = io.BytesIO()
    out.save(buffer, "JPEG", quality=quality, optimize=True, progressive=max(size) > 400)
    atomic_write_bytes(path, buffer.getvalue())
    return size
