"""Periodic rebuilds: work proportional to the change, stable maps, atomic publishing.

A real collection is built, changed (3 added, 1 changed, 1 removed) and rebuilt; then
builds are killed with SIGKILL during embed, render and publish, and run again.
Everything runs through the installed ``archive-sim`` command, as a cron job would.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from PIL import Image, ImageOps

from repo_images import figures, photographs

PHOTOS = photographs(under_bytes=120_000)[:16]
FIGURES = figures()[:8]
EXTRA = photographs(under_bytes=120_000)[16:19]
pytestmark = pytest.mark.slow  # every test builds a site with the installed command and the CNN
CONFIG = ("site:\n  title: Veckoarkiv\n  items_per_page: 6\nsource:\n  path: collection\n"
          "model:\n  batch_size: 4\nneighbors:\n  k: 5\nmap:\n  relayout_share: 0.5\noutput_dir: public\n")


def archive_sim(root: Path, *args: str, kill_at: str | None = None) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("archive-sim")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "archive_sim"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "SOURCE_DATE_EPOCH": "1700000000"}
    env.pop("ARCHIVE_SIM_KILL_AT", None)
    if kill_at:
        env["ARCHIVE_SIM_KILL_AT"] = kill_at
    if script.exists():
        env.pop("PYTHONPATH", None)
    return subprocess.run([*command, *args], cwd=root, env=env, capture_output=True, text=True, timeout=600)


def make_collection(root: Path) -> None:
    for category, files in {"photographs": PHOTOS, "illustrations": FIGURES}.items():
        (root / "collection" / category).mkdir(parents=True)
        for p in files:
            shutil.copy(p, root / "collection" / category / p.name)
    (root / "config.yaml").write_text(CONFIG)


def snapshot(site: Path) -> dict[str, tuple[str, int, int]]:
    """Each file's content hash, mtime and inode."""
    result = {}
    for path in site.rglob("*"):
        if path.is_file():
            st = path.stat()
            result[path.relative_to(site).as_posix()] = (hashlib.sha256(path.read_bytes()).hexdigest(),
                                                         st.st_mtime_ns, st.st_ino)
    return result


def vector_hashes(root: Path) -> set[str]:
    with sqlite3.connect(root / ".archive-sim" / "state.sqlite") as db:
        return {r[0] for r in db.execute("SELECT content_hash FROM vectors")}


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_site_complete(site: Path, expected_ids: set[str] | None = None) -> set[str]:
    """The published site is whole: every listed item has its page, neighbours and images."""
    items = json.loads((site / "api/v1/items.json").read_text(encoding="utf-8"))["items"]
    ids = [it["id"] for it in items]
    assert len(ids) == len(set(ids)), "an item is listed twice"
    schema = json.loads((site / "api/v1/schema/neighbors.schema.json").read_text())
    for it in items:
        assert (site / it["url"]).is_file()
        assert (site / it["image"]["src"]).is_file()
        doc = json.loads((site / it["neighbors_url"]).read_text(encoding="utf-8"))
        jsonschema.validate(doc, schema)
        for n in doc["neighbors"]:
            assert (site / n["url"]).is_file(), f"{it['id']} links to a missing page {n['url']}"
    for scope in ["all", *{it["category"] for it in items}]:
        points = json.loads((site / f"api/v1/map/{scope}.json").read_text())["points"]
        assert {p["id"] for p in points} == {it["id"] for it in items if scope in ("all", it["category"])}
    if expected_ids is not None:
        assert set(ids) == expected_ids
    return set(ids)


def change_collection(root: Path) -> dict[str, Path]:
    """Add 3 photos, change 1 figure, remove 1 photo; return the files that must be embedded."""
    photos = root / "collection" / "photographs"
    for p in EXTRA:
        shutil.copy(p, photos / p.name)
    changed = root / "collection" / "illustrations" / FIGURES[2].name
    ImageOps.mirror(Image.open(changed)).save(changed)
    (photos / PHOTOS[5].name).unlink()
    return {**{p.stem: photos / p.name for p in EXTRA}, FIGURES[2].stem: changed}


def expected_ids_after_change() -> set[str]:
    return {p.stem for p in PHOTOS + FIGURES + EXTRA} - {PHOTOS[5].stem}


@pytest.fixture(scope="module")
def first_build(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("weekly")
    make_collection(root)
    result = archive_sim(root, "build")
    assert result.returncode == 0, result.stderr
    return root


def copy_of(first_build: Path, tmp_path: Path) -> Path:
    root = tmp_path / "copy"
    shutil.copytree(first_build, root, symlinks=True)
    return root


def test_a_rebuild_writes_exactly_what_changed(first_build: Path, tmp_path: Path) -> None:
    root = copy_of(first_build, tmp_path)
    settle = archive_sim(root, "build")  # the copy broke hard links: settle the manifest first
    assert settle.returncode == 0, settle.stderr
    site = root / "public"
    before_site = snapshot(site)
    before_vectors = vector_hashes(root)
    before_map = {p["id"]: (p["x"], p["y"], p["cell"]) for p in
                  json.loads((site / "api/v1/map/all.json").read_text())["points"]}

    must_embed = change_collection(root)
    result = archive_sim(root, "build", "-v")
    assert result.returncode == 0, result.stderr

    # Embedded: exactly the 3 new images and the changed one.
    assert vector_hashes(root) - before_vectors == {file_hash(p) for p in must_embed.values()}
    assert "embedded 4" in result.stderr
    assert re.search(r"new 3, changed 1, removed 1", result.stderr)

    # Written: exactly the files whose bytes changed; the rest keep bytes, mtime and inode.
    after_site = snapshot(site)
    differs = {rel for rel, (digest, _, _) in after_site.items()
               if rel not in before_site or before_site[rel][0] != digest}
    written = set(re.findall(r"^wrote (\S+)$", result.stderr, re.MULTILINE))
    assert written == differs
    for rel in set(after_site) - written:
        assert after_site[rel] == before_site[rel], f"{rel} was rewritten with the same content"
    assert f"files written {len(written)}" in result.stderr
    assert len(written) < len(after_site) / 2
    removed_slug_pages = [rel for rel in before_site if rel not in after_site and rel.endswith("index.html")]
    assert len(removed_slug_pages) == 1

    # Stable map: every item that stayed keeps its position and its cell in the atlases.
    after_map = {p["id"]: (p["x"], p["y"], p["cell"]) for p in
                 json.loads((site / "api/v1/map/all.json").read_text())["points"]}
    kept = set(before_map) & set(after_map) - {FIGURES[2].stem}
    assert kept and all(after_map[i] == before_map[i] for i in kept)
    assert_site_complete(site, expected_ids_after_change())

    # And a build with nothing changed writes nothing at all.
    again = archive_sim(root, "build")
    assert "embedded 0" in again.stderr and "files written 0" in again.stderr


def stored_lists(root: Path) -> dict[str, list]:
    with sqlite3.connect(root / ".archive-sim" / "state.sqlite") as db:
        return {item_id: json.loads(data) for item_id, data in db.execute("SELECT item_id, neighbors FROM neighbors")}


def test_a_rebuild_updates_the_lists_a_build_from_scratch_makes(first_build: Path, tmp_path: Path) -> None:
    root = copy_of(first_build, tmp_path)
    change_collection(root)
    result = archive_sim(root, "build", "-v")
    assert result.returncode == 0, result.stderr
    updated = stored_lists(root)
    # Only the lists that could change were computed: not all of them.
    counted = re.search(r"(\d+) lists updated", result.stderr)
    assert counted and 0 < int(counted.group(1)) < len(updated), result.stderr

    # From scratch: without the last build's lists, copy pairs and Annoy files.
    shutil.rmtree(root / ".archive-sim" / "index")
    again = archive_sim(root, "index")
    assert again.returncode == 0, again.stderr
    scratch = stored_lists(root)
    assert updated.keys() == scratch.keys() == expected_ids_after_change()
    for item_id, neighbours in scratch.items():
        mine = updated[item_id]
        # id, copy, matched and matches alike; similarity to the 4th decimal (Annoy's float32)
        assert [[n[0], *n[2:]] for n in mine] == [[n[0], *n[2:]] for n in neighbours], item_id
        assert all(abs(a[1] - b[1]) <= 1e-4 for a, b in zip(mine, neighbours)), item_id


def test_relayout_lays_the_map_out_again(first_build: Path, tmp_path: Path) -> None:
    root = copy_of(first_build, tmp_path)
    result = archive_sim(root, "map", "--relayout")
    assert result.returncode == 0, result.stderr
    assert "3 laid out" in result.stderr


@pytest.mark.parametrize("kill_at", ["embed:batch", "render:pages", "publish:before", "publish:swapped"])
def test_a_killed_build_leaves_the_site_whole_and_the_next_run_completes(
        first_build: Path, tmp_path: Path, kill_at: str) -> None:
    root = copy_of(first_build, tmp_path)
    site = root / "public"
    previous_ids = assert_site_complete(site)
    change_collection(root)

    killed = archive_sim(root, "build", kill_at=kill_at)
    assert killed.returncode == -9, killed.stderr
    # Whatever instant it died at, the live site is one whole build: the old or the new.
    ids = assert_site_complete(site)
    assert ids in (previous_ids, expected_ids_after_change())
    assert not (site / ".archive-sim-site").exists() or (site / "index.html").exists()

    rerun = archive_sim(root, "build")
    assert rerun.returncode == 0, rerun.stderr
    assert_site_complete(site, expected_ids_after_change())
    assert sorted(p.name for p in root.glob(".public.*")) == [".public.lock", ".public.spare"], \
        "staging folders left behind"
    with sqlite3.connect(root / ".archive-sim" / "state.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM items").fetchone()[0] == len(expected_ids_after_change())


def test_a_second_build_while_one_runs_stops_at_once(first_build: Path) -> None:
    import fcntl

    with open(first_build / ".archive-sim" / "lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            result = archive_sim(first_build, "build")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    assert result.returncode == 1
    assert "another archive-sim run" in result.stderr and "Traceback" not in result.stderr


def test_two_state_folders_never_publish_into_one_output_folder_at_once(first_build: Path, tmp_path: Path) -> None:
    """Two configs with their own state folders and the same output_dir: while one
    publishes there, the other stops at once, before it writes anything."""
    import fcntl

    root = copy_of(first_build, tmp_path)
    shutil.copytree(root / ".archive-sim", root / ".other-state")
    (root / "other.yaml").write_text(CONFIG + "state_dir: .other-state\n")
    before = snapshot(root / "public")
    with open(root / ".public.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            result = archive_sim(root, "render", "--config", "other.yaml")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    assert result.returncode == 1
    assert "another archive-sim run" in result.stderr and "public" in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(root / "public") == before
    assert archive_sim(root, "render", "--config", "other.yaml").returncode == 0, "the lock is let go"


def test_the_same_inputs_give_a_byte_identical_site(first_build: Path, tmp_path: Path) -> None:
    root = tmp_path / "twin"
    make_collection(root)
    result = archive_sim(root, "build", "-q")
    assert result.returncode == 0, result.stderr
    twin = {rel: digest for rel, (digest, _, _) in snapshot(root / "public").items()}
    original = {rel: digest for rel, (digest, _, _) in snapshot(first_build / "public").items()}
    assert twin == original
