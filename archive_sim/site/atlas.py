"""Pack a map's thumbnails into atlas images, at several levels of detail.

Input: the points of one map (item id, image content hash, original size, x and y
in [0, 1]) and a function that opens a point's thumbnail. Output: JPEG atlases in
a cache folder, each named by a digest of everything that decides its pixels (so an
unchanged atlas is never drawn twice), and an ``AtlasSet``: per level its cell size,
grid and files, and per point its cell number, which the map document carries.

Points are packed along a Hilbert curve over their map position, so that each atlas
holds one compact region of the map: a browser zoomed into one corner loads only
the sharp atlases of that corner. A rebuild keeps each point's cell
(``stable_cells``): new points take the cells no point holds or go after the last,
so adding a few items redraws the last atlas of each level, not every atlas behind
the first new point on the curve; and that atlas is drawn from where the last build
left it (its lossless canvas, kept in the cache beside it), so only the new points'
thumbnails are opened; a removed point's picture stays in its cell as a
ghost that no point names, so removing items redraws nothing. The cells are packed
along the curve anew when the map is laid out anew, or once more than
``map.relayout_share`` of the points sit off the curve or the cells hold that many
ghosts and gaps (``assign_cells``). All levels share the same cell order; a point's
place in level L follows from its cell number alone (see ``cell_origin``), and the
drawn part of a cell from the original size (see ``fitted``), which map.js
computes with the same arithmetic.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import struct
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

from ..fsutil import atomic_write_bytes
from ..state_store import AtlasCells

ATLAS_SIDE = 2048      # WebGL 2 guarantees textures of at least 2048 px a side
PADDING = 1            # empty pixels around each thumbnail: no bleeding between cells
QUALITY = 82
FORMAT = 2             # raise when the same inputs would give different pixels
BACKGROUND = (180, 177, 168)
SMALLEST_CELL = 16
# Base-level pixels that a browser must fetch and decode before the first frame.
BASE_LEVEL_BUDGET = 4 * ATLAS_SIDE * ATLAS_SIDE
ATLAS_DIR = "media/atlas"
RECENT_PIXELS = 4_000_000
# Pillow keeps RGB as four bytes a pixel: RGBX is the same layout, and a thumbnail
# decoded as RGBX (``imaging.load_thumbnail``) is drawn from in place, with no copy.
# A JPEG of an RGBX canvas is the JPEG of its RGB, byte for byte.
CANVAS_MODE = "RGBX"
# A kept canvas: width and height, then its pixels as Pillow holds them. Raw, not PNG:
# PNG took 0.3-0.4 s to write a 2048 px canvas, raw bytes a few hundredths.
CANVAS_HEADER = struct.Struct("<II")


@dataclass(frozen=True)
class Tile:
    """One point of a map, as the packer needs it."""

    key: str            # the item id
    content_hash: str
    width: int          # original image size: decides the thumbnail's shape
    height: int
    x: float
    y: float
    cell: int = -1      # its cell from ``stable_cells``; -1 everywhere: pack along the curve


@dataclass(frozen=True)
class Level:
    """One level of detail: thumbnails ``cell`` px a side, ``capacity`` per atlas."""

    cell: int
    columns: int
    capacity: int
    images: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {"cell": self.cell, "columns": self.columns, "capacity": self.capacity,
                "images": list(self.images)}


@dataclass
class AtlasSet:
    cells: dict[str, int]                  # item id -> cell number (the packing order)
    levels: list[Level]
    made: int = 0                          # atlases drawn by this call (the rest were cached)
    failed: dict[str, str] = field(default_factory=dict)  # item id -> why its cell is blank

    def document(self) -> dict[str, Any]:
        """The ``atlas`` member of a map document."""
        return {"padding": PADDING, "levels": [level.as_json() for level in self.levels]}

    @property
    def files(self) -> list[str]:
        return [path for level in self.levels for path in level.images]


# -- pure layout ------------------------------------------------------------------------
def lod_cells(count: int, top: int) -> list[int]:
    """Cell sizes, smallest first: each level doubles the last, up to ``top``.

    The smallest level holds every point and is loaded before the first frame, so it
    is kept within ``BASE_LEVEL_BUDGET`` pixels: 32 px cells up to 16,384 points,
    16 px beyond.
    """
    base = 32
    while base > SMALLEST_CELL and count * base * base > BASE_LEVEL_BUDGET:
        base //= 2
    base = min(base, top)
    cells = [base]
    while cells[-1] * 2 < top:
        cells.append(cells[-1] * 2)
    if cells[-1] != top:
        cells.append(top)
    return cells


def hilbert_keys(xs: np.ndarray, ys: np.ndarray, order: int = 16) -> np.ndarray:
    """Distance along a Hilbert curve of ``2**order`` x ``2**order`` cells of each (x, y) in [0, 1]."""
    n = 1 << order
    x = np.clip(np.rint(np.asarray(xs, dtype=np.float64) * (n - 1)), 0, n - 1).astype(np.int64)
    y = np.clip(np.rint(np.asarray(ys, dtype=np.float64) * (n - 1)), 0, n - 1).astype(np.int64)
    d = np.zeros_like(x)
    s = n >> 1
    while s > 0:
        rx = (x & s) > 0
        ry = (y & s) > 0
        d += s * s * ((3 * rx.astype(np.int64)) ^ ry.astype(np.int64))
        # Rotate the quadrant so that the curve inside it starts where the last one ended.
        flip = ~ry & rx
        x = np.where(flip, n - 1 - x, x)
        y = np.where(flip, n - 1 - y, y)
        x, y = np.where(~ry, y, x), np.where(~ry, x, y)
        s >>= 1
    return d


def packing_order(tiles: Sequence[Tile]) -> list[int]:
    """Indices of ``tiles`` in cell order: along the Hilbert curve, ties by id."""
    if not tiles:
        return []
    keys = hilbert_keys(np.array([t.x for t in tiles]), np.array([t.y for t in tiles]))
    return sorted(range(len(tiles)), key=lambda i: (int(keys[i]), tiles[i].key))


def stable_cells(ids: Sequence[str], xs: Sequence[float], ys: Sequence[float],
                 previous: Mapping[str, int], ghosts: Collection[str] = ()) -> tuple[list[int], dict[str, int], int]:
    """Cells for the points ``ids``, keeping the ``previous`` cell of each point that had
    one; returns the cells, the ghosts kept (``{id: cell}``) and how many points got a
    cell off the curve.

    A ghost is a point of ``previous`` no longer on the map whose picture may stay drawn
    in its cell (those of ``ghosts``): its cell is not shown, and its atlas need not be
    drawn again for its going. New points, in curve order, take the cells that neither a
    point nor a ghost holds (gaps), then follow the last cell. A ``previous`` that is not
    a set of distinct cells is ignored: all points are packed along the curve (as
    ``packing_order``), with no ghost and none off the curve.
    """
    n = len(ids)
    keys = hilbert_keys(np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)) if n else np.zeros(0)
    curve = sorted(range(n), key=lambda i: (int(keys[i]), ids[i]))
    kept = {i: previous[item_id] for i, item_id in enumerate(ids) if item_id in previous}
    if not kept or len(set(previous.values())) != len(previous) or min(previous.values()) < 0:
        cells = [0] * n
        for number, i in enumerate(curve):
            cells[i] = number
        return cells, {}, 0
    on_map = set(ids)
    staying = {g: cell for g, cell in previous.items() if g not in on_map and g in ghosts}
    cells = [-1] * n
    for i, cell in kept.items():
        cells[i] = cell
    held = set(kept.values()) | set(staying.values())
    end = max(held) + 1
    new = [i for i in curve if i not in kept]
    free = [cell for cell in range(end) if cell not in held][:len(new)]
    free += range(end, end + len(new) - len(free))
    for i, cell in zip(new, free):
        cells[i] = cell
    return cells, staying, len(new)


def assign_cells(ids: Sequence[str], xs: Sequence[float], ys: Sequence[float], previous: AtlasCells,
                 layout: str, relayout_share: float,
                 drawn: Mapping[str, tuple[str, int, int]] | None = None) -> AtlasCells:
    """The cells of a map's points (``ids`` at ``xs``, ``ys``, showing the pictures
    ``drawn``: id -> content hash, width, height) in map layout ``layout``: ``previous``'s
    kept while the layout is (``stable_cells``; a removed point whose picture
    ``previous`` knows stays a ghost), unless more than ``relayout_share`` of the points
    would then sit off the packing curve, or the cells would hold that many ghosts and
    gaps: then they are packed along the curve anew."""
    drawn = drawn or {}
    kept = previous.cells if previous.layout == layout else {}
    cells, staying, off_curve = stable_cells(ids, xs, ys, kept, previous.drawn.keys())
    if kept:
        off_curve += previous.off_curve
        idle = max([*cells, *staying.values()], default=-1) + 1 - len(ids)  # ghosts and gaps
        if off_curve + idle > relayout_share * len(ids):
            cells, staying, off_curve = stable_cells(ids, xs, ys, {})
    placed = dict(zip(ids, cells))
    pictures = {i: drawn[i] for i in ids if i in drawn}
    for ghost, cell in staying.items():
        placed[ghost] = cell
        pictures[ghost] = previous.drawn[ghost]
    return AtlasCells(placed, layout, off_curve, pictures)


def grid_shape(count: int, cell: int, side: int = ATLAS_SIDE) -> tuple[int, int]:
    """``(columns, capacity)`` of every atlas of a level.

    A level that fits one atlas gets a square-ish one, not a 2048 px wide strip. Its
    width is a power of two, so that it changes only when the map grows fourfold:
    a new width would move every cell, and every atlas would be drawn again.
    """
    per_side = max(1, side // cell)
    columns = 1
    while columns * columns < count and columns < per_side:
        columns *= 2
    columns = min(columns, per_side)
    return columns, columns * per_side


def cell_origin(cell_number: int, columns: int, capacity: int, cell: int) -> tuple[int, int, int]:
    """``(atlas index, left, top)`` in pixels of a cell's corner."""
    atlas, within = divmod(cell_number, capacity)
    row, column = divmod(within, columns)
    return atlas, column * cell, row * cell


def fitted(width: int, height: int, inner: int) -> tuple[int, int]:
    """Thumbnail size inside a cell: the long side fills ``inner`` px, shape kept.

    Written as floor(v + 0.5) on doubles, which map.js computes to the same pixel.
    """
    scale = inner / max(width, height)
    return max(1, math.floor(width * scale + 0.5)), max(1, math.floor(height * scale + 0.5))


def atlas_digest(cell: int, columns: int, source_size: int, members: Sequence[Tile | None]) -> str:
    """Names an atlas by everything its pixels depend on (None: a blank cell)."""
    recipe = [FORMAT, PADDING, QUALITY, BACKGROUND, cell, columns, source_size,
              [None if t is None else (t.content_hash, t.width, t.height) for t in members]]
    return hashlib.sha256(json.dumps(recipe, separators=(",", ":")).encode("ascii")).hexdigest()


def atlas_path(digest: str) -> str:
    return f"{ATLAS_DIR}/{digest[:24]}.jpg"


# -- drawing ----------------------------------------------------------------------------
class _Missing(NamedTuple):
    """An atlas to draw: its path, the kept canvas it starts from (None: a blank one),
    the first cell that canvas does not hold, and whether to keep its own canvas."""

    path: str
    start: Path | None
    drawn_before: int
    keep_canvas: bool


@dataclass
class _Sheet:
    """An atlas being drawn."""

    level: int
    index: int
    todo: _Missing
    canvas: Image.Image
    last_cell: int
    failed: list[str] = field(default_factory=list)


def build_atlases(tiles: Sequence[Tile], cache: Path, top: int,
                  open_thumbnail: Callable[[Tile], Image.Image], side: int = ATLAS_SIDE,
                  previous_cells: int = 0) -> AtlasSet:
    """Pack ``tiles`` into atlases under ``cache``; draw only those not there yet.

    ``previous_cells``: how many cells the map had when its atlases were last drawn.
    The last atlas of each level keeps its canvas (``canvas_path``); an atlas whose
    cells up to there are those of such a canvas is drawn on it, opening only the
    thumbnails of the cells after: the same pixels as drawn whole.

    ``open_thumbnail`` returns a tile's thumbnail (at least ``top`` px for the
    sharpest level) or raises ``OSError``/``ValueError``; such a tile is reported in
    ``failed`` and its cell stays blank, and the atlas holding it is named apart so
    that a later build with the thumbnail repaired draws it again.

    Each tile is drawn in its ``cell``; a cell no tile holds is left blank (a gap). Tiles
    that carry no cells, or not distinct ones, are packed along the Hilbert curve.
    """
    slots: list[Tile | None]
    if tiles and all(t.cell >= 0 for t in tiles) and len({t.cell for t in tiles}) == len(tiles):
        slots = [None] * (max(t.cell for t in tiles) + 1)
        for tile in tiles:
            slots[tile.cell] = tile
    else:
        slots = [tiles[i] for i in packing_order(tiles)]
    count = len(slots)
    cells = {t.key: number for number, t in enumerate(slots) if t is not None}
    plan: list[tuple[int, int, int, list[str]]] = []   # (cell, columns, capacity, paths)
    missing: dict[tuple[int, int], _Missing] = {}      # (level, atlas) -> what to draw
    for level, cell in enumerate(lod_cells(count, top)):
        columns, capacity = grid_shape(count, cell, side)
        paths = []
        atlases = math.ceil(count / capacity)
        for index in range(atlases):
            first = index * capacity
            members = slots[first:first + capacity]
            path = atlas_path(atlas_digest(cell, columns, top, members))
            paths.append(path)
            if not (cache / path).is_file():
                before = previous_cells - first
                start = None
                if 0 < before < len(members):
                    kept = cache / canvas_path(atlas_path(atlas_digest(cell, columns, top, members[:before])))
                    start = kept if kept.is_file() else None
                # Only the last atlas of a level can grow: the others' canvases would be waste.
                missing[(level, index)] = _Missing(path, start, first + before if start else first,
                                                   index == atlases - 1 and len(members) < capacity)
        plan.append((cell, columns, capacity, paths))
    result = AtlasSet(cells, [])
    if missing:
        result.made, result.failed, renamed = _draw(slots, plan, missing, cache, open_thumbnail)
        for (level, index), path in renamed.items():
            plan[level][3][index] = path
    result.levels = [Level(cell, columns, capacity, tuple(paths)) for cell, columns, capacity, paths in plan]
    return result


def _draw(slots: Sequence[Tile | None], plan: list[tuple[int, int, int, list[str]]],
          missing: dict[tuple[int, int], _Missing], cache: Path,
          open_thumbnail: Callable[[Tile], Image.Image]) -> tuple[int, dict[str, str], dict[tuple[int, int], str]]:
    """Draw the ``missing`` atlases in one pass over the cells: each thumbnail is
    opened once for all levels, and at most one atlas per level is open at a time."""
    count = len(slots)
    open_sheets: dict[int, _Sheet] = {}
    failed: dict[str, str] = {}
    renamed: dict[tuple[int, int], str] = {}
    made = 0
    # Repeated images (exact copies, a benchmark's repeats) are decoded once while
    # they stay among the most recent few million pixels.
    recent: OrderedDict[str, Image.Image] = OrderedDict()
    held = 0

    def thumbnail(tile: Tile) -> Image.Image:
        nonlocal held
        image = recent.get(tile.content_hash)
        if image is not None:
            recent.move_to_end(tile.content_hash)
            return image
        image = open_thumbnail(tile)
        if image.mode != CANVAS_MODE:
            image = image.convert(CANVAS_MODE)
        recent[tile.content_hash] = image
        held += image.width * image.height
        while held > RECENT_PIXELS and len(recent) > 1:
            _, old = recent.popitem(last=False)
            held -= old.width * old.height
        return image

    for number, tile in enumerate(slots):
        wanted = []
        for level, (cell, columns, capacity, _) in enumerate(plan):
            index = number // capacity
            if (level, index) not in missing:
                continue
            sheet = open_sheets.get(level)
            if sheet is None or sheet.index != index:
                first = index * capacity
                last = min(count, first + capacity) - 1
                rows = math.ceil((last - first + 1) / columns)
                canvas = Image.new(CANVAS_MODE, (columns * cell, rows * cell), BACKGROUND)
                todo = missing[(level, index)]
                if todo.start is not None:
                    canvas.paste(_read_canvas(todo.start), (0, 0))
                sheet = open_sheets[level] = _Sheet(level, index, todo, canvas, last)
            if number >= sheet.todo.drawn_before:
                wanted.append((level, sheet))
        if wanted:
            source = None
            if tile is not None:
                try:
                    source = thumbnail(tile)
                except (OSError, ValueError) as exc:
                    failed[tile.key] = f"map thumbnail: {exc}"
            sheets = dict(wanted)
            # Largest level first, each drawn from what the one before left: every level
            # on the way, drawn or not, so that a cell's pixels never depend on which of
            # its atlases are drawn.
            for level in range(len(plan) - 1, min(sheets) - 1, -1):
                cell, columns, capacity, _ = plan[level]
                if source is not None:
                    source, drawn = _fitted_image(source, fitted(tile.width, tile.height, cell - 2 * PADDING))
                sheet = sheets.get(level)
                if sheet is None:
                    continue
                if source is not None:
                    _, left, top = cell_origin(number, columns, capacity, cell)
                    sheet.canvas.paste(drawn, (left + PADDING, top + PADDING))
                elif tile is not None:
                    sheet.failed.append(tile.content_hash)
                if number == sheet.last_cell:
                    renamed_path = _save(sheet, cache)
                    if renamed_path != sheet.todo.path:
                        renamed[(level, sheet.index)] = renamed_path
                    made += 1
                    del open_sheets[level]
    return made, failed, renamed


def _fitted_image(source: Image.Image, size: tuple[int, int]) -> tuple[Image.Image, Image.Image]:
    """``source`` drawn at ``size``, and the image to draw the next (smaller) level from.

    Levels halve, so a thumbnail is halved with a 2x2 box filter (a mipmap: a
    sixth of the cost of resampling) while that keeps it at least ``size``; then
    an image at most two pixels a side larger than ``size`` (the 128 px map
    thumbnail in a 126 px cell, its halves in 62, 30 and 14 px cells) is cropped to
    the middle, and any other is resampled. At 100,000 points the atlases of the
    two maps that show each item were most of a first render.
    """
    while source.width // 2 >= size[0] and source.height // 2 >= size[1]:
        source = source.reduce(2)
    width, height = source.size
    if 0 <= width - size[0] <= 2 and 0 <= height - size[1] <= 2:
        if (width, height) == size:
            return source, source
        left, top = (width - size[0]) // 2, (height - size[1]) // 2
        return source, source.crop((left, top, left + size[0], top + size[1]))
    resized = source.resize(size, Image.Resampling.BICUBIC)
    return resized, resized


def _save(sheet: _Sheet, cache: Path) -> str:
    path = sheet.todo.path
    if sheet.failed:
        # Not the clean digest: the next build finds no file under it and tries again.
        tag = hashlib.sha256((path + "|" + ",".join(sheet.failed)).encode("ascii")).hexdigest()
        path = atlas_path(tag)
    elif sheet.todo.keep_canvas:
        width, height = sheet.canvas.size
        atomic_write_bytes(cache / canvas_path(path), CANVAS_HEADER.pack(width, height) + sheet.canvas.tobytes())
    buffer = io.BytesIO()
    sheet.canvas.save(buffer, "JPEG", quality=QUALITY)
    atomic_write_bytes(cache / path, buffer.getvalue())
    return path


def canvas_path(atlas: str) -> str:
    """Where the lossless canvas of atlas ``atlas`` is kept (the last of a level only)."""
    return atlas[:-len(".jpg")] + ".canvas"


def _read_canvas(path: Path) -> Image.Image:
    data = path.read_bytes()
    width, height = CANVAS_HEADER.unpack_from(data)
    return Image.frombytes(CANVAS_MODE, (width, height), data[CANVAS_HEADER.size:])


def prune_atlases(cache: Path, keep: set[str]) -> int:
    """Delete cached atlases that no map uses any more, and their canvases; return how
    many atlases."""
    folder = cache / ATLAS_DIR
    removed = 0
    if not folder.is_dir():
        return 0
    for path in folder.glob("*.jpg"):
        if f"{ATLAS_DIR}/{path.name}" not in keep:
            path.unlink(missing_ok=True)
            removed += 1
    for path in folder.glob("*.canvas"):
        if f"{ATLAS_DIR}/{path.stem}.jpg" not in keep:
            path.unlink(missing_ok=True)
    return removed
