"""Decode, orient, convert and resize images; write thumbnails.

Input: image files in any mode Pillow reads (JPEG, PNG, TIFF, ...; L, P, RGBA,
CMYK, 16-bit). Output: 8-bit RGB Pillow images with EXIF orientation applied,
fixed-size arrays for a CNN, and JPEG thumbnails. Anything unreadable raises
``ImageError`` with a one-line reason that the caller pairs with the file name.
Every decode draws its pixels' memory from one ``DecodeBudget`` per process, so
threads decoding large images at once take turns instead of adding up.
"""

from __future__ import annotations

import io
import os
import struct
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import simplejpeg
from PIL import Image, UnidentifiedImageError

from .fsutil import atomic_write_bytes

_TRANSPARENT_MODES = {"RGBA", "LA", "PA", "La", "RGBa"}
_BACKGROUND = (255, 255, 255)
# What Pillow raises on a malformed EXIF block (the pixels themselves may be fine).
_EXIF_ERRORS = (SyntaxError, ValueError, OSError, struct.error, KeyError, IndexError, TypeError)


class ImageError(ValueError):
    """The file is not an image we can use; the message says why in one line."""


# Pillow holds RGB, RGBA, CMYK, I and F in 4 bytes a pixel (L, P and 1 in one).
BYTES_PER_PIXEL = 4
# Pillow's own pixel limit (about 89 Mpx), used when it is switched off.
DEFAULT_PIXEL_LIMIT = 89_478_485
# Full-size copies a decode for ``min_side`` holds at its peak, by mode: Image.reduce
# works on these in place, on LA and RGBA through a premultiplied copy, and the other
# modes (P, 1, 16-bit) are converted to one of those first.
_COPIES = {"L": 1, "RGB": 1, "RGBX": 1, "CMYK": 1, "I": 1, "F": 1, "LA": 2, "RGBA": 2}
# A decode for a picture of ``min_side`` keeps at least this many times that size before
# the caller's own resize (which reduces by 2-3 and then filters): the pixels come out
# as before for all but images many times the size asked for.
_REDUCE_GAP = 3
_ORIENTATIONS = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                 4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
                 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}


class DecodeBudget:
    """Bytes of decoded pixels that all threads of a process may hold at once.

    A decode asks for its estimated peak before it starts and waits while others
    hold the rest; one larger than the whole budget runs alone. ``capacity``
    defaults to one image at the pixel limit (about 358 MB).
    """

    def __init__(self, capacity: int | None = None) -> None:
        limit = Image.MAX_IMAGE_PIXELS or DEFAULT_PIXEL_LIMIT
        self.capacity = capacity if capacity is not None else BYTES_PER_PIXEL * limit
        self.used = 0
        self._cond = threading.Condition()

    @contextmanager
    def held(self, cost: int, cancelled: Callable[[], bool] | None = None) -> Iterator[None]:
        cost = max(0, min(cost, self.capacity))
        with self._cond:
            while self.used and self.used + cost > self.capacity:
                if cancelled is not None and cancelled():
                    raise ImageError("interrupted")
                self._cond.wait(0.2)
            self.used += cost
        try:
            yield
        finally:
            with self._cond:
                self.used -= cost
                self._cond.notify_all()


# One per process, not per caller: memory is the process's, whichever stage or thread decodes.
PROCESS_BUDGET = DecodeBudget()


def _one_block_per_image() -> None:
    """Have Pillow allocate an image in one block, unless PILLOW_BLOCK_SIZE says otherwise.

    Pillow's default 16 MB blocks come from glibc's per-thread heaps, which keep what
    is freed: eight threads that decoded one 88 Mpx PNG after another held 1.0-1.3 GB
    though the budget let only one decode at a time (0.34 GB). A block above glibc's
    mmap threshold (32 MB at most) is mapped and returned on free.
    """
    if "PILLOW_BLOCK_SIZE" not in os.environ:
        Image.core.set_block_size(1 << 30)


_one_block_per_image()


def decoded_bytes(img: Image.Image) -> int:
    """What decoding ``img`` at its current size (after ``draft``) allocates, at most."""
    return img.width * img.height * BYTES_PER_PIXEL


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


def _reducible(img: Image.Image) -> Image.Image:
    """``img`` in a mode ``Image.reduce`` averages correctly (not palette indices or bits)."""
    if img.mode in _COPIES:
        return img
    if img.mode in ("P", "PA"):
        return img.convert("RGBA" if img.mode == "PA" or "transparency" in img.info else "RGB")
    if img.mode == "1":
        return img.convert("L")
    if img.mode.startswith("I;16"):
        return img.convert("I")
    return img.convert("RGBA" if img.mode in _TRANSPARENT_MODES else "RGB")


def load_rgb(path: Path, min_side: int | None = None, budget: DecodeBudget = PROCESS_BUDGET) -> Image.Image:
    """Decode ``path`` as upright 8-bit RGB.

    ``min_side`` lets JPEG decode at a reduced scale (DCT scaling via ``draft``) while
    keeping both sides at least that large: 2-3x faster on large photographs. Other
    formats decode in full and are then reduced (``Image.reduce``) to a few times
    ``min_side`` before any conversion, so a 9400 x 9400 PNG holds its full size once.
    """
    img = _open(path)
    try:
        if min_side and img.format == "JPEG":
            img.draft("RGB", (min_side, min_side))
        # Without min_side, a transparent image is converted at full size: up to four copies.
        copies = _COPIES.get(img.mode, 3) if min_side else 4
        with budget.held(decoded_bytes(img) * copies):
            img.load()
            orientation = _orientation(img)
            if min_side:
                factor = min(img.size) // (min_side * _REDUCE_GAP)
                if factor >= 2:
                    img = _reducible(img).reduce(factor)
            rgb = _to_rgb(img)
            return rgb.transpose(_ORIENTATIONS[orientation]) if orientation in _ORIENTATIONS else rgb
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


def image_size(path: Path, budget: DecodeBudget = PROCESS_BUDGET,
               cancelled: Callable[[], bool] | None = None) -> tuple[int, int]:
    """Width and height as displayed (after EXIF rotation), decoding the whole file once.

    Decoding (at reduced scale for JPEG) is what finds truncated and corrupt files.
    ``cancelled`` ends a wait for the decode budget (an interrupted download).
    """
    img = _open(path)
    try:
        size = img.size
        if img.format == "JPEG":
            img.draft("RGB", (64, 64))
        with budget.held(decoded_bytes(img), cancelled):
            img.load()
            orientation = _orientation(img)
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, ImageError):
            raise
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
