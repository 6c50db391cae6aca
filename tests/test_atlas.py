"""Map atlases: packing order, grid arithmetic and the atlases drawn from real thumbnails."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from archive_sim.site import atlas
from archive_sim.site.atlas import (Tile, assign_cells, build_atlases, cell_origin, fitted, grid_shape, hilbert_keys,
                                    lod_cells, stable_cells)
from archive_sim.state_store import AtlasCells

from repo_images import photographs

PHOTOS = [p for p in photographs() if p.suffix.lower() == ".jpg"][:6]


def test_levels_double_up_to_the_map_thumbnail_size_and_the_base_level_stays_small():
    assert lod_cells(46, 128) == [32, 64, 128]
    assert lod_cells(16_384, 128) == [32, 64, 128]
    assert lod_cells(50_000, 128) == [16, 32, 64, 128]
    assert lod_cells(10, 100) == [32, 64, 100]
    assert lod_cells(10, 24) == [24]
    for count in (1, 1000, 50_000, 200_000):
        assert count * lod_cells(count, 128)[0] ** 2 <= atlas.BASE_LEVEL_BUDGET or lod_cells(count, 128)[0] == 16


def test_the_hilbert_curve_visits_every_cell_once_stepping_to_a_neighbour():
    order = 4
    n = 1 << order
    ys, xs = np.mgrid[0:n, 0:n]
    keys = hilbert_keys(xs.ravel() / (n - 1), ys.ravel() / (n - 1), order=order)
    assert sorted(keys.tolist()) == list(range(n * n))
    by_key = np.argsort(keys)
    steps = np.abs(np.diff(xs.ravel()[by_key])) + np.abs(np.diff(ys.ravel()[by_key]))
    assert set(steps.tolist()) == {1}


def test_an_atlas_holds_one_region_of_the_map():
    rng = np.random.default_rng(3)
    tiles = [Tile(f"i{i}", f"h{i}", 100, 80, float(x), float(y)) for i, (x, y) in enumerate(rng.random((4096, 2)))]
    order = atlas.packing_order(tiles)
    chunk = [tiles[i] for i in order[:256]]  # the first atlas of 128 px cells
    xs, ys = [t.x for t in chunk], [t.y for t in chunk]
    # 1/16 of the points: a random pick would spread over the whole square.
    assert (max(xs) - min(xs)) * (max(ys) - min(ys)) < 0.2


def test_grid_arithmetic_places_every_cell_inside_its_atlas_without_overlap():
    for count, cell in ((5, 32), (4096, 32), (4097, 32), (50_000, 16), (300, 128)):
        columns, capacity = grid_shape(count, cell)
        assert columns * cell <= atlas.ATLAS_SIDE and capacity // columns * cell <= atlas.ATLAS_SIDE
        seen = set()
        for number in range(count):
            place = cell_origin(number, columns, capacity, cell)
            assert place not in seen
            seen.add(place)
        assert max(a for a, _, _ in seen) == math.ceil(count / capacity) - 1
    assert grid_shape(5, 32) == (4, 4 * 64)  # small maps get a square-ish atlas
    # ... whose width holds while the map grows, so that its cells stay where they are
    assert grid_shape(2000, 32) == grid_shape(2020, 32) == grid_shape(4096, 32) == (64, 64 * 64)
    assert grid_shape(700, 32) == grid_shape(1024, 32) == (32, 32 * 64)


def test_points_keep_their_cells_and_new_ones_fill_the_gaps_then_follow_the_last():
    rng = np.random.default_rng(5)
    ids = [f"i{n:03d}" for n in range(100)]
    xy = rng.random((100, 2))
    first, ghosts, off = stable_cells(ids, xy[:, 0], xy[:, 1], {})
    assert off == 0 and ghosts == {}
    assert first == [atlas.packing_order([Tile(i, "", 1, 1, x, y) for i, (x, y) in zip(ids, xy)]).index(n)
                     for n in range(100)]
    previous = dict(zip(ids, first))
    # Remove three points, add five: one removed point may stay drawn (a ghost), the
    # two others leave gaps, which new points fill first.
    gone = [ids[first.index(10)], ids[first.index(40)], ids[first.index(99)]]
    ids2 = [i for i in ids if i not in gone] + [f"new{n}" for n in range(5)]
    xy2 = np.vstack([xy[[n for n, i in enumerate(ids) if i not in gone]], rng.random((5, 2))])
    cells, ghosts, off = stable_cells(ids2, xy2[:, 0], xy2[:, 1], previous, ghosts={gone[1]})
    assert ghosts == {gone[1]: 40}
    assert all(cells[n] == previous[i] for n, i in enumerate(ids2) if i in previous), "no point moves"
    assert off == 5
    assert sorted(cells[-5:]) == [10, 99, 100, 101, 102], "the gaps first, then after the last"
    assert sorted([*cells, *ghosts.values()]) == list(range(103)), "each cell held once"
    # A map that shrank keeps its points where they were; the cells left are gaps.
    keep = ids[:50]
    shrunk, ghosts, off = stable_cells(keep, xy[:50, 0], xy[:50, 1], previous)
    assert shrunk == [previous[i] for i in keep] and ghosts == {} and off == 0
    # Broken previous cells (two points in one cell) are ignored: packed again along the curve.
    assert stable_cells(ids, xy[:, 0], xy[:, 1], {ids[0]: 3, ids[1]: 3}) == (first, {}, 0)


def test_cells_are_kept_within_one_layout_and_packed_anew_for_a_new_one():
    rng = np.random.default_rng(3)
    ids = [f"i{n:03d}" for n in range(40)]
    xy = rng.random((40, 2))
    first = assign_cells(ids, xy[:, 0], xy[:, 1], AtlasCells(), "layout-1", relayout_share=0.2)
    assert sorted(first.cells.values()) == list(range(40)) and first.off_curve == 0
    # Four points added to the same layout: the forty keep their cells, four sit off the curve.
    grown_ids = ids + [f"new{n}" for n in range(4)]
    grown_xy = np.vstack([xy, rng.random((4, 2))])
    grown = assign_cells(grown_ids, grown_xy[:, 0], grown_xy[:, 1], first, "layout-1", relayout_share=0.2)
    assert all(grown.cells[i] == first.cells[i] for i in ids) and grown.off_curve == 4
    # Past the share off the curve (4 + 7 > 0.2 * 51): packed along the curve again.
    more_ids = grown_ids + [f"more{n}" for n in range(7)]
    more_xy = np.vstack([grown_xy, rng.random((7, 2))])
    more = assign_cells(more_ids, more_xy[:, 0], more_xy[:, 1], grown, "layout-1", relayout_share=0.2)
    assert more.off_curve == 0
    assert more.cells == assign_cells(more_ids, more_xy[:, 0], more_xy[:, 1], AtlasCells(), "x", 0.2).cells
    # A new layout of the same points: the old cells say nothing about it.
    moved = rng.random((44, 2))
    relaid = assign_cells(grown_ids, moved[:, 0], moved[:, 1], grown, "layout-2", relayout_share=0.2)
    assert relaid.layout == "layout-2" and relaid.off_curve == 0
    assert list(relaid.cells.values()) == stable_cells(grown_ids, moved[:, 0], moved[:, 1], {})[0]


def test_removed_points_stay_drawn_as_ghosts_until_the_cells_are_packed_anew():
    rng = np.random.default_rng(4)
    ids = [f"i{n:03d}" for n in range(40)]
    xy = rng.random((40, 2))
    pictures = {i: (f"hash-{i}", 40, 30) for i in ids}
    first = assign_cells(ids, xy[:, 0], xy[:, 1], AtlasCells(), "layout-1", 0.2, pictures)
    assert first.drawn == pictures
    # Three removed: their cells and pictures stay, so no atlas changes for them.
    kept = ids[3:]
    after = assign_cells(kept, xy[3:, 0], xy[3:, 1], first, "layout-1", 0.2, {i: pictures[i] for i in kept})
    assert after.cells == first.cells and after.drawn == first.drawn and after.off_curve == 0
    # A point whose picture is not known leaves a gap instead, which a new point fills.
    unknown = AtlasCells(first.cells, "layout-1", 0, {i: p for i, p in pictures.items() if i != ids[0]})
    grown = [*kept, "new"]
    refilled = assign_cells(grown, [*xy[3:, 0], 0.5], [*xy[3:, 1], 0.5], unknown, "layout-1", 0.2)
    assert refilled.cells["new"] == first.cells[ids[0]] and ids[0] not in refilled.cells
    assert {ids[1], ids[2]} <= refilled.cells.keys() and refilled.off_curve == 1
    # Ghosts count against the share: past it (9 of 31 > 0.2), the cells are packed anew.
    fewer = ids[9:]
    packed = assign_cells(fewer, xy[9:, 0], xy[9:, 1], first, "layout-1", 0.2)
    assert sorted(packed.cells.values()) == list(range(31)) and packed.cells.keys() == set(fewer)


def test_the_index_map_and_query_stages_do_not_import_the_site_layer():
    import subprocess
    import sys

    code = ("import sys; import archive_sim.commands.index, archive_sim.commands.maps, archive_sim.commands.query; "
            "print(sorted(m for m in sys.modules if m.startswith('archive_sim.site')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_adding_points_redraws_only_the_last_atlas_of_each_level(tmp_path, thumbs):
    tiles = make_tiles(thumbs, 60)  # 360 points: several atlases per level at side=256
    ids, xs, ys = [t.key for t in tiles], [t.x for t in tiles], [t.y for t in tiles]
    cells, _, _ = stable_cells(ids, xs, ys, {})
    placed = [Tile(t.key, t.content_hash, t.width, t.height, t.x, t.y, c) for t, c in zip(tiles, cells)]
    first = build_atlases(placed, tmp_path, 64, lambda t: thumbs[t.content_hash][0], side=256)
    assert all(len(level.images) > 2 for level in first.levels)
    rng = np.random.default_rng(9)
    extra = [Tile(f"extra{n}", h, w, hh, float(x), float(y))
             for n, ((h, (_, (w, hh))), (x, y)) in enumerate(zip(list(thumbs.items())[:4], rng.random((4, 2))))]
    grown = tiles + extra
    cells2, _, _ = stable_cells([t.key for t in grown], [t.x for t in grown], [t.y for t in grown], first.cells)
    placed2 = [Tile(t.key, t.content_hash, t.width, t.height, t.x, t.y, c) for t, c in zip(grown, cells2)]
    second = build_atlases(placed2, tmp_path, 64, lambda t: thumbs[t.content_hash][0], side=256)
    assert all(second.cells[t.key] == first.cells[t.key] for t in tiles)
    assert second.made <= len(second.levels) + 1, "only the last atlas of a level takes the new points"
    packed = build_atlases(grown, tmp_path / "packed", 64, lambda t: thumbs[t.content_hash][0], side=256)
    assert packed.made > 2 * second.made, "packing along the curve again would redraw far more"


def test_the_last_atlas_grows_from_its_kept_canvas_with_the_pixels_of_a_whole_drawing(tmp_path, thumbs):
    tiles = make_tiles(thumbs, 60)
    cells, _, _ = stable_cells([t.key for t in tiles], [t.x for t in tiles], [t.y for t in tiles], {})
    # In cell order: the last seven are those a week's new points would take.
    placed = sorted((Tile(t.key, t.content_hash, t.width, t.height, t.x, t.y, c) for t, c in zip(tiles, cells)),
                    key=lambda t: t.cell)
    opened: list[str] = []

    def open_thumb(tile: Tile) -> Image.Image:
        opened.append(tile.key)
        return thumbs[tile.content_hash][0]

    first = build_atlases(placed[:-7], tmp_path / "weekly", 64, open_thumb, side=256)
    opened.clear()
    grown = build_atlases(placed, tmp_path / "weekly", 64, open_thumb, side=256, previous_cells=len(placed) - 7)
    assert 0 < grown.made <= 2 * len(grown.levels)
    assert opened and set(opened) <= {t.key for t in placed[-7:]}, "only the new points' thumbnails are opened"
    whole = build_atlases(placed, tmp_path / "whole", 64, lambda t: thumbs[t.content_hash][0], side=256)
    assert grown.files == whole.files
    for path in whole.files:
        assert (tmp_path / "weekly" / path).read_bytes() == (tmp_path / "whole" / path).read_bytes(), path
    assert first.files != grown.files


def test_removing_points_redraws_no_atlas(tmp_path, thumbs):
    tiles = make_tiles(thumbs, 60)
    ids, xs, ys = [t.key for t in tiles], [t.x for t in tiles], [t.y for t in tiles]
    pictures = {t.key: (t.content_hash, t.width, t.height) for t in tiles}
    first_cells = assign_cells(ids, xs, ys, AtlasCells(), "l", 0.5, pictures)

    def draw(cells: AtlasCells, shown: list[Tile], cache: Path):
        on_map = {t.key for t in shown}
        placed = [Tile(t.key, t.content_hash, t.width, t.height, t.x, t.y, cells.cells[t.key]) for t in shown]
        placed += [Tile(i, *cells.drawn[i], 0.0, 0.0, c) for i, c in cells.cells.items() if i not in on_map]
        return build_atlases(placed, cache, 64, lambda t: thumbs[t.content_hash][0], side=256)

    first = draw(first_cells, tiles, tmp_path)
    left = tiles[::2] + tiles[1::4]  # a quarter removed, all over the map
    after_cells = assign_cells([t.key for t in left], [t.x for t in left], [t.y for t in left], first_cells, "l", 0.5,
                               {t.key: pictures[t.key] for t in left})
    after = draw(after_cells, left, tmp_path)
    assert after.made == 0 and after.files == first.files
    assert all(after.cells[t.key] == first.cells[t.key] for t in left)


def test_fitted_keeps_the_shape_and_fills_the_cell():
    assert fitted(1000, 500, 30) == (30, 15)
    assert fitted(480, 640, 126) == (95, 126)
    assert fitted(1, 1, 14) == (14, 14)
    assert fitted(5000, 3, 30) == (30, 1)


@pytest.fixture()
def thumbs(tmp_path):
    """Real photographs as 128 px thumbnails, keyed by a fake content hash."""
    out = {}
    for n, path in enumerate(PHOTOS):
        img = Image.open(path).convert("RGB")
        img.thumbnail((128, 128))
        out[f"{n:064x}"] = (img, Image.open(path).size)
    return out


def make_tiles(thumbs, copies: int) -> list[Tile]:
    rng = np.random.default_rng(0)
    tiles = []
    for k in range(copies):
        for h, (_, (w, hh)) in thumbs.items():
            x, y = rng.random(2)
            tiles.append(Tile(f"{h[-4:]}-{k}", h, w, hh, float(x), float(y)))
    return tiles


def _softened_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference after a blur of about a pixel: blind to one-pixel shifts."""
    def soft(x: np.ndarray) -> np.ndarray:
        img = Image.fromarray(x.astype(np.uint8))
        return np.asarray(img.filter(ImageFilter.GaussianBlur(1.5)), dtype=np.int16)
    return float(np.abs(soft(a) - soft(b)).mean())


def test_atlases_hold_each_thumbnail_where_the_layout_says(tmp_path, thumbs):
    tiles = make_tiles(thumbs, 20)  # 120 points
    opened = []

    def open_thumb(tile: Tile) -> Image.Image:
        opened.append(tile.key)
        return thumbs[tile.content_hash][0]

    result = build_atlases(tiles, tmp_path, 128, open_thumb, side=512)
    assert [lv.cell for lv in result.levels] == [32, 64, 128]
    assert sorted(result.cells.values()) == list(range(len(tiles)))
    assert result.made == len(result.files) and not result.failed
    assert len(opened) <= len(thumbs) * 3, "repeated images are decoded once, not once per level"
    for level in result.levels:
        assert len(level.images) == math.ceil(len(tiles) / level.capacity)
        sheets = [np.asarray(Image.open(tmp_path / p), dtype=np.int16) for p in level.images]
        for tile in tiles[::7]:
            index, left, top = cell_origin(result.cells[tile.key], level.columns, level.capacity, level.cell)
            w, h = fitted(tile.width, tile.height, level.cell - 2 * atlas.PADDING)
            got = sheets[index][top + 1:top + 1 + h, left + 1:left + 1 + w]
            want = np.asarray(thumbs[tile.content_hash][0].resize((w, h), Image.Resampling.LANCZOS), dtype=np.int16)
            assert got.shape == want.shape
            # A thumbnail is drawn whole, or with at most a pixel a side cropped (see
            # atlas._fitted_image): compared softened, so that a one-pixel shift
            # passes and another picture does not. JPEG, not bit-exact.
            assert _softened_difference(got, want) < 16, (level.cell, tile.key)
            others = [t for t in thumbs.values() if t[0] is not thumbs[tile.content_hash][0]]
            assert all(_softened_difference(got, np.asarray(img.resize((w, h), Image.Resampling.LANCZOS),
                                                            dtype=np.int16)) > 24
                       for img, (ow, oh) in others if fitted(ow, oh, level.cell - 2 * atlas.PADDING) == (w, h))
            if w < level.cell - 2:  # the padding beside a narrow thumbnail stays background
                assert np.abs(sheets[index][top + 1 + h // 2, left + level.cell - 1] - atlas.BACKGROUND).max() < 24


def test_a_second_build_draws_nothing_and_a_change_redraws_only_its_atlases(tmp_path, thumbs):
    tiles = make_tiles(thumbs, 30)

    def open_thumb(tile: Tile) -> Image.Image:
        return thumbs[tile.content_hash][0]

    first = build_atlases(tiles, tmp_path, 64, open_thumb, side=256)
    again = build_atlases(tiles, tmp_path, 64, open_thumb, side=256)
    assert again.made == 0 and again.files == first.files and again.cells == first.cells
    last = max(tiles, key=lambda t: first.cells[t.key])
    changed = [t if t.key != last.key else Tile(t.key, "f" * 64, t.width, t.height, t.x, t.y) for t in tiles]
    thumbs["f" * 64] = thumbs[last.content_hash]
    third = build_atlases(changed, tmp_path, 64, open_thumb, side=256)
    assert third.made == len(third.levels), "one atlas per level holds the changed point"
    assert atlas.prune_atlases(tmp_path, set(third.files)) == len(third.levels)
    assert sorted(p.name for p in (tmp_path / atlas.ATLAS_DIR).glob("*.jpg")) == sorted(Path(f).name for f in third.files)
    # A canvas is kept for the last atlas of a level that can still grow, and goes with it.
    canvases = {p.stem for p in (tmp_path / atlas.ATLAS_DIR).glob("*.canvas")}
    assert canvases and canvases <= {Path(level.images[-1]).stem for level in third.levels}


def test_an_unreadable_thumbnail_is_reported_and_drawn_again_once_repaired(tmp_path, thumbs):
    tiles = make_tiles(thumbs, 2)
    bad = tiles[3]

    def broken(tile: Tile) -> Image.Image:
        if tile.content_hash == bad.content_hash:
            raise OSError("cannot identify image file")
        return thumbs[tile.content_hash][0]

    first = build_atlases(tiles, tmp_path, 64, broken)
    assert set(first.failed) == {t.key for t in tiles if t.content_hash == bad.content_hash}
    assert "cannot identify image file" in first.failed[bad.key]
    repaired = build_atlases(tiles, tmp_path, 64, lambda t: thumbs[t.content_hash][0])
    assert not repaired.failed and repaired.made == len(repaired.levels)
    assert set(repaired.files).isdisjoint(first.files)


def test_a_state_store_with_cells_in_its_map_points_keeps_them_as_the_renders(tmp_path):
    import sqlite3

    from archive_sim.state_store import StateStore

    with sqlite3.connect(tmp_path / "state.sqlite") as db:  # the map points as the map stage once wrote them
        db.execute("CREATE TABLE map_points (scope TEXT NOT NULL, item_id TEXT NOT NULL, x REAL NOT NULL, "
                   "y REAL NOT NULL, cell INTEGER NOT NULL, PRIMARY KEY (scope, item_id))")
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.executemany("INSERT INTO map_points VALUES (?,?,?,?,?)",
                       [("all", "a", 0.1, 0.2, 1), ("all", "b", 0.5, 0.5, 0), ("photos", "a", 0.3, 0.4, 0)])
        db.execute("INSERT INTO meta VALUES ('cells:all', '1')")
    with StateStore(tmp_path) as store:
        assert store.map_points("all") == {"a": (0.1, 0.2), "b": (0.5, 0.5)}
        assert store.atlas_cells("all") == AtlasCells({"a": 1, "b": 0}, store.map_layout("all"), 1)
        assert store.atlas_cells("photos").cells == {"a": 0}
        store.put_map("all", {"a": (0.1, 0.2), "b": (0.5, 0.5), "c": (0.9, 0.9)})
        kept = assign_cells(["a", "b", "c"], [0.1, 0.5, 0.9], [0.2, 0.5, 0.9], store.atlas_cells("all"),
                            store.map_layout("all"), relayout_share=0.9)
        assert kept.cells == {"a": 1, "b": 0, "c": 2} and kept.off_curve == 2
        # The pictures drawn are kept with the cells (what lets a removed point stay a ghost).
        drawn = AtlasCells({"a": 1, "gone": 0}, "l", 1, {"a": ("h1", 40, 30), "gone": ("h2", 30, 40)})
        store.replace_atlas_cells({"all": drawn, "photos": AtlasCells({"a": 0}, "l", 0)})
        assert store.atlas_cells("all") == drawn
        # None: a map whose cells did not change keeps them; a map not shown loses its own.
        store.replace_atlas_cells({"all": None})
        assert store.atlas_cells("all") == drawn and store.atlas_cells("photos") == AtlasCells()
