"""Ground truth of "the same picture": transformed copies of real images.

Input: a definition (JSON: which source images are originals, which are distractors,
per category, and which transforms each original gets) and the folder it names.
Output: a collection folder (one subfolder per category, the originals copied as
they are, every copy written as a new file) and ``GROUPS.json``: one group per
original listing it and its copies, each member with the transform that made it.
The transforms imitate how archives reuse pictures: cropped, rescaled, recompressed,
printed in black and white, halftoned or dithered, rotated on a scanner, framed by a
margin, mirrored, faded, or cut down to a detail. A category of ``"kind": "hand_copy"``
imitates a scribe instead (``handcopy.py``): each original is drawn into one
"manuscript" and copied by hand into another, among other scenes drawn in the same
manuscripts.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from .fsutil import atomic_write_text

GROUPS_VERSION = 1
# Transforms work on at most this many pixels along the long side, so that one huge
# scan does not make every copy huge; the original file itself is copied unchanged.
WORK_SIDE = 1600
PAPER = (246, 241, 230)


class GroundTruthError(ValueError):
    """The definition or a source image is unusable; the message names it."""


def _jpeg(img: Image.Image, path: Path, quality: int) -> None:
    img.save(path.with_suffix(".jpg"), "JPEG", quality=quality)


def _png(img: Image.Image, path: Path) -> None:
    img.save(path.with_suffix(".png"), "PNG")


def _offset(name: str, salt: str) -> float:
    """A stable pseudo-random number in [0, 1) per image, so crops differ between images."""
    return int(hashlib.sha256(f"{name}\0{salt}".encode()).hexdigest()[:8], 16) / 2**32


def crop(img: Image.Image, name: str, keep: float = 0.8) -> Image.Image:
    """Keep ``keep`` of each side, the window placed off-centre."""
    w, h = img.size
    cw, ch = max(1, round(w * keep)), max(1, round(h * keep))
    x = round((w - cw) * _offset(name, "crop-x"))
    y = round((h - ch) * _offset(name, "crop-y"))
    return img.crop((x, y, x + cw, y + ch))


def heavy_crop(img: Image.Image, name: str) -> Image.Image:
    """A detail: half of each side (a quarter of the picture)."""
    return crop(img, name + "/heavy", keep=0.5)


def rescale(img: Image.Image, factor: float = 0.4) -> Image.Image:
    w, h = img.size
    return img.resize((max(1, round(w * factor)), max(1, round(h * factor))), Image.Resampling.BICUBIC)


def grayscale(img: Image.Image) -> Image.Image:
    return img.convert("L")


def rotate(img: Image.Image, degrees: float = 4.0) -> Image.Image:
    """A crooked scan: turned a little, the corners filled with paper."""
    return img.convert("RGB").rotate(degrees, Image.Resampling.BICUBIC, expand=True, fillcolor=PAPER)


def border(img: Image.Image, fraction: float = 0.1) -> Image.Image:
    """A page margin around the picture."""
    pad = max(1, round(min(img.size) * fraction))
    return ImageOps.expand(img.convert("RGB"), border=pad, fill=PAPER)


def mirror(img: Image.Image) -> Image.Image:
    return ImageOps.mirror(img)


def fade(img: Image.Image) -> Image.Image:
    """An old print: contrast gone, brightened, toned brown."""
    gray = ImageEnhance.Contrast(img.convert("L")).enhance(0.55)
    gray = ImageEnhance.Brightness(gray).enhance(1.15)
    return ImageOps.colorize(gray, black=(60, 35, 15), white=(250, 235, 205))


def halftone(img: Image.Image, cells: int = 110, angle: float = 45.0) -> Image.Image:
    """A printed halftone: black dots on a rotated grid, dot area = darkness.

    ``cells`` dots across the short side, like a coarse newspaper screen.
    """
    gray = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    h, w = gray.shape
    cell = max(3.0, min(h, w) / cells)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = np.deg2rad(angle)
    u = xx * np.cos(a) + yy * np.sin(a)
    v = -xx * np.sin(a) + yy * np.cos(a)
    du = np.mod(u, cell) - cell / 2
    dv = np.mod(v, cell) - cell / 2
    radius = np.sqrt((1.0 - gray) * cell * cell / np.pi)
    ink = np.hypot(du, dv) <= radius
    return Image.fromarray(np.where(ink, 0, 255).astype(np.uint8), "L")


def dither(img: Image.Image) -> Image.Image:
    """Two tones only, Floyd-Steinberg error diffusion (Pillow's mode "1")."""
    return img.convert("L").convert("1").convert("L")


def reprint(img: Image.Image) -> Image.Image:
    """Several at once, as a later book would: black and white, smaller, crooked, with a margin."""
    return border(rotate(rescale(grayscale(img), 0.6), 2.0), 0.06)


@dataclass(frozen=True)
class Transform:
    apply: Callable[[Image.Image, str], Image.Image]
    write: Callable[[Image.Image, Path], None]


def _plain(fn: Callable[[Image.Image], Image.Image]) -> Callable[[Image.Image, str], Image.Image]:
    return lambda img, name: fn(img)


TRANSFORMS: dict[str, Transform] = {
    "crop": Transform(crop, lambda im, p: _jpeg(im.convert("RGB"), p, 88)),
    "rescale": Transform(_plain(rescale), lambda im, p: _jpeg(im.convert("RGB"), p, 90)),
    "recompress": Transform(_plain(lambda im: im), lambda im, p: _jpeg(im.convert("RGB"), p, 20)),
    "grayscale": Transform(_plain(grayscale), lambda im, p: _jpeg(im, p, 88)),
    "rotate": Transform(_plain(rotate), lambda im, p: _jpeg(im, p, 88)),
    "border": Transform(_plain(border), lambda im, p: _jpeg(im, p, 88)),
    "mirror": Transform(_plain(mirror), lambda im, p: _jpeg(im.convert("RGB"), p, 88)),
    "fade": Transform(_plain(fade), lambda im, p: _jpeg(im, p, 85)),
    "halftone": Transform(_plain(halftone), _png),
    "dither": Transform(_plain(dither), _png),
    "heavy_crop": Transform(heavy_crop, lambda im, p: _jpeg(im.convert("RGB"), p, 88)),
    "reprint": Transform(_plain(reprint), lambda im, p: _jpeg(im, p, 70)),
}


def transform_image(img: Image.Image, transform: str, name: str) -> Image.Image:
    """Apply the named transform to ``img``; ``name`` makes per-image choices (crop windows) stable."""
    if transform not in TRANSFORMS:
        raise GroundTruthError(f"transform {transform!r}: unknown (expected one of: {', '.join(TRANSFORMS)})")
    return TRANSFORMS[transform].apply(img, name)


def copy_id(original_id: str, transform: str) -> str:
    return f"{original_id}--{transform}"


def assign_transforms(originals: list[str], per_original: int, transforms: list[str]) -> dict[str, list[str]]:
    """Give each original ``per_original`` transforms, every transform used equally often.

    Original ``i`` gets transforms ``i, i + s, i + 2s, ...`` (mod n) with a step ``s``
    coprime with n, so the combinations vary: two similar transforms (halftone and
    dither) listed side by side never land in the same group and help each other.
    """
    n = len(transforms)
    if not 1 <= per_original <= n:
        raise GroundTruthError(f"per_original = {per_original}: expected 1 to {n}")
    step = max([s for s in range(1, max(2, n // 2)) if math.gcd(s, n) == 1] or [1])
    return {name: [transforms[(i + j * step) % n] for j in range(per_original)]
            for i, name in enumerate(originals)}


def _load_work_image(path: Path) -> Image.Image:
    from .imaging import ImageError, load_rgb

    try:
        img = load_rgb(path)
    except ImageError as exc:
        raise GroundTruthError(f"{path}: {exc}") from None
    if max(img.size) > WORK_SIDE:
        scale = WORK_SIDE / max(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                         Image.Resampling.LANCZOS)
    return img


def build(definition: dict[str, Any], source_root: Path, out: Path) -> dict[str, Any]:
    """Write the collection under ``out/collection`` and return the GROUPS document.

    ``definition``: ``{"per_original": n, "transforms": [...], "categories": {name:
    {"folder": "photos", "originals": [file, ...], "distractors": [file, ...]}}}``.
    """
    transforms = definition.get("transforms") or list(TRANSFORMS)
    for name in transforms:
        if name not in TRANSFORMS:
            raise GroundTruthError(f"transforms: {name!r} is unknown (expected one of: {', '.join(TRANSFORMS)})")
    per_original = int(definition.get("per_original", 4))
    groups = []
    for category, spec in sorted(definition["categories"].items()):
        folder = source_root / spec["folder"]
        target = out / "collection" / category
        target.mkdir(parents=True, exist_ok=True)
        if spec.get("kind") == "hand_copy":
            groups += _hand_copies(category, spec, folder, target)
            continue
        for file in spec.get("distractors", []):
            _copy_source(folder / file, target)
        plan = assign_transforms(spec["originals"], per_original, transforms)
        for file, chosen in plan.items():
            source = folder / file
            _copy_source(source, target)
            original_id = Path(file).stem
            img = _load_work_image(source)
            members = [{"id": original_id, "transform": "original"}]
            for name in chosen:
                out_img = transform_image(img, name, original_id)
                TRANSFORMS[name].write(out_img, target / copy_id(original_id, name))
                members.append({"id": copy_id(original_id, name), "transform": name})
            groups.append({"category": category, "items": members})
    return {"version": GROUPS_VERSION, "groups": groups}


def _hand_copies(category: str, spec: dict[str, Any], folder: Path, target: Path) -> list[dict[str, Any]]:
    """Originals drawn in one manuscript and copied into the next; distractors' halves drawn once each."""
    from .handcopy import MANUSCRIPTS, copied_by_hand, drawn

    groups = []
    for i, file in enumerate(spec["originals"]):
        img = _load_work_image(_source(folder / file))
        stem, first, second = Path(file).stem, i % len(MANUSCRIPTS), (i + 1) % len(MANUSCRIPTS)
        original_id, copy = f"{stem}--ms{first}", f"{stem}--ms{second}-copy"
        _jpeg(drawn(img, MANUSCRIPTS[first], original_id), target / original_id, 90)
        _jpeg(copied_by_hand(img, MANUSCRIPTS[second], copy), target / copy, 90)
        groups.append({"category": category, "items": [{"id": original_id, "transform": "hand_original"},
                                                        {"id": copy, "transform": "hand_copy"}]})
    # Each distractor photograph gives two scenes (its left and right halves), so the
    # manuscripts hold more other scenes than the originals alone.
    scene = 0
    for file in spec.get("distractors", []):
        img = _load_work_image(_source(folder / file))
        w, h = img.size
        for half, box in (("left", (0, 0, w // 2, h)), ("right", (w - w // 2, 0, w, h))):
            manuscript = MANUSCRIPTS[scene % len(MANUSCRIPTS)]
            name = f"{Path(file).stem}-{half}--ms{scene % len(MANUSCRIPTS)}"
            _jpeg(drawn(img.crop(box), manuscript, name), target / name, 90)
            scene += 1
    return groups


def _source(path: Path) -> Path:
    if not path.is_file():
        raise GroundTruthError(f"{path}: source image not found")
    return path


def _copy_source(source: Path, target: Path) -> None:
    if not source.is_file():
        raise GroundTruthError(f"{source}: source image not found")
    shutil.copyfile(source, target / source.name)


def write(definition_path: Path, source_root: Path, out: Path) -> Path:
    """Build the set named by ``definition_path`` into ``out``; return the GROUPS.json path."""
    try:
        definition = json.loads(definition_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise GroundTruthError(f"{definition_path}: cannot read the definition: {exc}") from None
    if out.exists() and any(out.iterdir()):
        raise GroundTruthError(f"{out}: folder is not empty; give a new or empty folder")
    groups = build(definition, source_root, out)
    path = out / "GROUPS.json"
    atomic_write_text(path, json.dumps(groups, indent=1, ensure_ascii=False) + "\n")
    return path


def built(definition: Path, data: Path, given: Path | None, scratch: Path) -> tuple[Path, list]:
    """The ground-truth folder (``given``, or built from ``definition`` into ``scratch``) and its groups."""
    from .evaluation import load_groups

    folder = given
    if folder is None:
        folder = scratch
        write(definition, data, folder)
    return folder, load_groups(folder / "GROUPS.json")
