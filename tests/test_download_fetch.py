"""``archive-sim fetch`` against an Arosenius-shaped archive over real HTTP.

It must fetch everything fetchable, report each failure with its reason, leave no
partial file, download 0 image bytes on a second run, resume after SIGKILL without
corruption, keep what a failed download had, and refuse a source that shrank.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

import archive_sim
from archive_sim.state_store import StateStore
from archive_sim.cli import main
from archive_sim.fsutil import sha256_file

from fake_archive import FAULTS, RECOVERABLE, TRAVERSAL_IDS, FakeArchive

FETCH = ("  contact: tests@example.org\n  timeout: 1\n  retries: 2\n  backoff: 0.02\n"
         "  max_image_bytes: 1000000\n")
FAILING_REASONS = {
    "F-slow": "no response within 1 s",
    "F-truncated": "body cut off",
    "F-html": "served as text/html",
    "F-bomb": "too many pixels",
    "F-loop": "more than 5 redirects",
    "F-ftp": "not http(s)",
    "F-huge": "more than fetch.max_image_bytes",
}


def write_config(root: Path, archive: FakeArchive, fetch_extra: str = "rate_limit: 0") -> Path:
    config = root / "config.yaml"
    config.write_text(
        "source:\n  type: json_api\n  preset: arosenius\n"
        f"  url: {archive.url}/api/documents\n"
        "  categories: {Konstverk: artworks, Fotografi: photographs}\n"
        "  pagination: {size: 10}\n"
        f"fetch:\n{FETCH}  {fetch_extra}\n", encoding="utf-8")
    return config


def fetch(config: Path, *args: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["fetch", "--config", str(config), *args])
    return code, err.getvalue()


def expected_ids(archive: FakeArchive) -> set[str]:
    ids = {d["id"] for d in archive.all_documents() if d["images"]}
    return ids - (set(FAULTS) - RECOVERABLE)


def expected_images(archive: FakeArchive) -> set[str]:
    wanted = expected_ids(archive)
    return {d["images"][0]["image"] for d in archive.all_documents() if d["id"] in wanted}


def check_catalog(root: Path, wanted: set[str]) -> None:
    """Every item is there, its image whole and exactly what the catalog says."""
    state = root / ".archive-sim"
    with StateStore(state) as store:
        items = store.items()
    assert {it.id for it in items} == wanted
    for it in items:
        path = Path(it.image)
        assert path.is_relative_to(state / "images"), it.image
        assert sha256_file(path) == it.content_hash
        with Image.open(path) as img:
            img.load()
            assert img.size == (it.width, it.height)
    assert not list(root.rglob("*.part"))
    with sqlite3.connect(state / "state.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    root = tmp_path_factory.mktemp("faulty")
    with FakeArchive(slow_seconds=3.0) as archive:
        config = write_config(root, archive)
        first = fetch(config, "-v")
        hits_after_first = len(archive.log)
        second = fetch(config)
        yield root, archive, first, second, hits_after_first


def test_everything_fetchable_is_fetched(faulty):
    root, archive, (code, err), *_ = faulty
    assert code == 0, err
    wanted = expected_ids(archive)
    assert len(wanted) >= 60
    check_catalog(root, wanted)


def test_each_failure_is_reported_with_its_reason(faulty):
    _, archive, (_, err), *_ = faulty
    assert "Traceback" not in err
    for item_id, reason in FAILING_REASONS.items():
        lines = [line for line in err.splitlines() if line.strip().startswith(f"{item_id} <")]
        assert lines and reason in lines[-1], f"{item_id}:\n{err}"
        assert "tried again next run" in lines[-1]
    assert "no-image" in err and "duplicate id 'K-000'" in err
    assert f"download failed {len(FAILING_REASONS)}" in err


def test_no_file_is_written_outside_the_state_folder(faulty):
    root, *_ = faulty
    assert sorted(p.name for p in root.iterdir()) == [".archive-sim", "config.yaml"]
    images = root / ".archive-sim" / "images"
    for path in images.rglob("*"):
        if path.is_file():
            assert len(path.stem) == 64 and path.parent.name == path.stem[:2]
    with StateStore(root / ".archive-sim") as store:
        items = {it.id: it for it in store.items()}
    assert set(TRAVERSAL_IDS) <= set(items)
    assert not Path("/etc/passwd.jpg").exists()


def test_a_second_run_downloads_no_image_bytes(faulty):
    root, archive, first, (code, err), hits_after_first = faulty
    assert code == 0, err
    second_hits = archive.log[hits_after_first:]
    images = [h for h in second_hits if "/images/" in h.path and "/fault-" not in h.path]
    assert sum(h.bytes for h in images) == 0
    revalidated = [h for h in second_hits if "/images/" in h.path and h.status == 304]
    assert len(revalidated) == len(expected_images(archive))
    assert "bytes downloaded 0" in err and "downloaded 0," in err
    check_catalog(root, expected_ids(archive))
    # Failures are asked for again, and say since when they fail.
    for item_id in FAILING_REASONS:
        assert any(FAULTS[item_id] in h.path for h in second_hits), item_id
    assert "2 runs" in err


@pytest.fixture()
def clean_archive():
    with FakeArchive(faults=False) as archive:
        yield archive


def test_a_fetch_killed_midway_resumes_complete_and_uncorrupted(clean_archive, tmp_path):
    archive = clean_archive
    config = write_config(tmp_path, archive, "rate_limit: 20")
    env = {**os.environ, "PYTHONPATH": str(Path(archive_sim.__file__).resolve().parents[1])}
    process = subprocess.Popen([sys.executable, "-m", "archive_sim", "fetch", "--config", str(config), "-q"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(archive.hits(r"/images/", 200)) < 20 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    assert process.poll() is None, "the fetch ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    downloaded_before = len(archive.hits(r"/images/", 200))
    assert downloaded_before < len(archive.images)
    mark = len(archive.log)

    code, err = fetch(config)
    assert code == 0, err
    check_catalog(tmp_path, expected_ids(archive))
    again = [h for h in archive.log[mark:] if "/images/" in h.path]
    # Resumed, not restarted: what was stored before the kill is only revalidated
    # (up to ``concurrency`` responses may have been in flight, unrecorded).
    revalidated = sum(1 for h in again if h.status == 304)
    assert revalidated >= max(10, downloaded_before - 8)
    assert sum(1 for h in again if h.status == 200) == len(expected_images(archive)) - revalidated


def test_a_failed_download_keeps_the_previous_image_and_is_retried_next_run(clean_archive, tmp_path):
    archive = clean_archive
    config = write_config(tmp_path, archive)
    assert fetch(config)[0] == 0
    with StateStore(tmp_path / ".archive-sim") as store:
        before = {it.id: it for it in store.items()}
    doc = archive.categories["Fotografi"][0]
    name = doc["images"][0]["image"]
    archive.unavailable.add(name)
    code, err = fetch(config)
    assert code == 0
    line = next(line for line in err.splitlines() if line.strip().startswith(f"{doc['id']} <"))
    assert "HTTP 503" in line and "previous image is kept" in line
    with StateStore(tmp_path / ".archive-sim") as store:
        after = {it.id: it for it in store.items()}
        assert store.download_failures()[f"{archive.url}/api/images/700x/{name}.jpg"][2] == 1
    assert after == before
    archive.unavailable.discard(name)
    code, err = fetch(config)
    assert code == 0 and doc["id"] not in err
    with StateStore(tmp_path / ".archive-sim") as store:
        assert store.download_failures() == {}
    check_catalog(tmp_path, expected_ids(archive))


def test_a_source_that_shrinks_stops_the_run_unless_allowed(clean_archive, tmp_path):
    archive = clean_archive
    config = write_config(tmp_path, archive)
    assert fetch(config)[0] == 0
    everything = expected_ids(archive)
    images = tmp_path / ".archive-sim" / "images"
    files_before = sorted(p for p in images.rglob("*") if p.is_file())

    archive.hidden = set(sorted(everything)[: len(everything) // 3])
    code, err = fetch(config)
    assert code == 1
    assert err.count("\n") == 2 and "archive-sim: the source lost" in err  # a stage line and one error line
    assert "fetch.max_shrink 20%" in err and "--allow-shrink" in err and "nothing was changed" in err
    check_catalog(tmp_path, everything)
    assert sorted(p for p in images.rglob("*") if p.is_file()) == files_before

    archive.hidden = set(everything)
    code, err = fetch(config)
    assert code == 1 and "lists no items at all" in err

    archive.hidden = set(sorted(everything)[: len(everything) // 3])
    code, err = fetch(config, "--allow-shrink")
    assert code == 0, err
    assert f"removed {len(archive.hidden)}" in err
    check_catalog(tmp_path, everything - archive.hidden)
    # The images of the items that left are deleted with them.
    assert len([p for p in images.rglob("*") if p.is_file()]) == len(files_before) - len(archive.hidden)

    archive.hidden |= set(sorted(everything - archive.hidden)[:3])  # a few items leaving is normal
    code, err = fetch(config)
    assert code == 0 and "removed 3" in err, err
