"""Pictures drawn by hand: a scene rendered as a manuscript illustration, and its copy by a scribe.

Input: a photograph (any Pillow image) and a manuscript style. Output: the scene
drawn in that manuscript's technique, palette and paper (``drawn``), or copied into
it by hand (``copied_by_hand``: the composition redrawn with a copyist's
distortions, a smooth elastic warp, other proportions and a slight turn). Used by
the ground truth (``groundtruth.py``) for the class a global descriptor misses: the
same composition in another hand, beside other scenes in the same hand.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image
from scipy import ndimage

# Drawings are made at this long side: a page's illustration, not a scan's pixels.
DRAW_SIDE = 640


@dataclass(frozen=True)
class Manuscript:
    """How one manuscript draws: technique, paper tone and grain, ink, and colours by tone (dark to light)."""

    technique: Literal["painted", "pen", "brush"]
    paper: tuple[int, int, int]
    grain: float
    ink: tuple[int, int, int]
    palette: tuple[tuple[int, int, int], ...]


MANUSCRIPTS: tuple[Manuscript, ...] = (
    # Vellum, flat body colours with dark outlines.
    Manuscript("painted", (236, 222, 190), 10.0, (45, 30, 20),
               ((40, 60, 120), (150, 40, 35), (70, 110, 60), (200, 160, 70))),
    # White paper, pen lines, hatching and a grey-blue wash.
    Manuscript("pen", (244, 240, 230), 5.0, (20, 20, 25),
               ((120, 130, 150), (175, 185, 200), (215, 220, 228))),
    # Dark parchment, sepia brush tones.
    Manuscript("brush", (212, 186, 145), 16.0, (70, 40, 20),
               ((95, 60, 35), (145, 105, 70), (185, 150, 110))),
)


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(int(hashlib.sha256(name.encode()).hexdigest()[:12], 16))


def _gray(img: Image.Image, side: int = DRAW_SIDE) -> np.ndarray:
    scale = side / max(img.size)
    size = (max(8, round(img.width * scale)), max(8, round(img.height * scale)))
    gray = img.convert("L").resize(size, Image.Resampling.LANCZOS)
    values = np.asarray(gray, dtype=np.float32) / 255.0
    # Stretch the tones: a faded photograph is drawn with the full range of the ink.
    lo, hi = np.percentile(values, (2, 98))
    return np.clip((values - lo) / max(hi - lo, 1e-3), 0, 1)


def _paper(shape: tuple[int, int], m: Manuscript, rng: np.random.Generator) -> np.ndarray:
    """The support: its tone, blotches at a large scale and fibres at a small one."""
    h, w = shape
    blotch = ndimage.gaussian_filter(rng.standard_normal((h, w)).astype(np.float32), 25)
    blotch /= max(float(np.abs(blotch).max()), 1e-6)
    fibre = ndimage.gaussian_filter(rng.standard_normal((h, w)).astype(np.float32), 0.8)
    shade = m.grain * blotch + 0.4 * m.grain * fibre
    return np.clip(np.array(m.paper, np.float32)[None, None, :] + shade[..., None], 0, 255)


def _outlines(gray: np.ndarray, sigma: float, share: float) -> np.ndarray:
    """Where a draughtsman puts lines: the strongest ``share`` of the tone's edges."""
    edges = ndimage.gaussian_gradient_magnitude(gray, sigma)
    return edges >= np.quantile(edges, 1.0 - share)


def _tones(gray: np.ndarray, levels: int, sigma: float) -> np.ndarray:
    """The picture simplified into ``levels`` flat tones (0 darkest), as a painter blocks it in."""
    smooth = ndimage.gaussian_filter(gray, sigma)
    bounds = np.quantile(smooth, np.linspace(0, 1, levels + 1)[1:-1])
    return np.digitize(smooth, bounds)


def _render(gray: np.ndarray, m: Manuscript, rng: np.random.Generator) -> Image.Image:
    page = _paper(gray.shape, m, rng)
    ink = np.array(m.ink, np.float32)
    palette = np.array(m.palette, np.float32)
    if m.technique == "painted":
        colour = palette[_tones(gray, len(palette), 2.5)]
        page = page * 0.25 + colour * 0.75
        lines = _outlines(gray, 2.0, 0.10)
    elif m.technique == "pen":
        tone = _tones(gray, len(palette), 2.0)
        wash = palette[tone]
        page = page * (0.55 + 0.45 * wash / 255.0)
        yy, xx = np.mgrid[0:gray.shape[0], 0:gray.shape[1]]
        hatch = ((xx + yy) % 7 == 0) & (tone == 0)
        lines = _outlines(gray, 1.2, 0.12) | hatch
    else:
        tone = _tones(gray, len(palette), 3.5)
        page = page * 0.35 + palette[tone] * 0.65
        lines = _outlines(gray, 3.0, 0.05)
    lines = ndimage.gaussian_filter(lines.astype(np.float32), 0.7)[..., None]
    page = page * (1 - lines) + ink * lines
    return Image.fromarray(np.clip(page, 0, 255).astype(np.uint8), "RGB")


def drawn(img: Image.Image, m: Manuscript, name: str) -> Image.Image:
    """``img``'s scene drawn in manuscript ``m``; ``name`` seeds the paper."""
    return _render(_gray(img), m, _rng(name))


def copyist_warp(gray: np.ndarray, rng: np.random.Generator, strength: float = 0.025) -> np.ndarray:
    """A hand's distortions: a smooth displacement of up to ``strength`` of the short side,
    other proportions (one side 85-115 % of the other's scale) and a turn of up to 3 degrees."""
    h, w = gray.shape
    stretch = rng.uniform(0.85, 1.15)
    angle = np.deg2rad(rng.uniform(-3, 3))
    out_h, out_w = h, max(8, round(w * stretch))
    yy, xx = np.mgrid[0:out_h, 0:out_w].astype(np.float32)
    field = [ndimage.zoom(rng.standard_normal((4, 4)).astype(np.float32), (out_h / 4, out_w / 4), order=3)[:out_h, :out_w]
             for _ in range(2)]
    amp = strength * min(h, w)
    cy, cx = out_h / 2, out_w / 2
    # Back to source coordinates: undo the turn about the centre, then the stretch.
    ry = (yy - cy) * np.cos(angle) - (xx - cx) * np.sin(angle) + cy + amp * field[0]
    rx = ((yy - cy) * np.sin(angle) + (xx - cx) * np.cos(angle) + cx) / stretch + amp * field[1]
    return ndimage.map_coordinates(gray, [ry, rx], order=1, mode="nearest")


def copied_by_hand(img: Image.Image, m: Manuscript, name: str) -> Image.Image:
    """``img``'s composition redrawn by a copyist in manuscript ``m``; ``name`` seeds the hand and the paper."""
    rng = _rng(name)
    gray = _gray(img)
    # A copyist leaves out fine detail: the scene is softened before it is redrawn.
    gray = copyist_warp(ndimage.gaussian_filter(gray, 1.2), rng)
    return _render(gray, m, rng)
