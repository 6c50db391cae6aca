"""A hostile archive or listing cannot hold a fetch forever, exhaust its memory, make it
request internal services, or lead it out of its folders.

Against ``FakeArchive`` over real HTTP on localhost: a body that drips one byte at a
time, a second server on another loopback port standing for an internal service,
image names with ``..`` segments, and PNGs of 88 megapixels made in the test. Ctrl-C
and SIGTERM are sent to a real ``archive-sim fetch`` process.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

import archive_sim
from archive_sim.addresses import AddressPolicy, Origin, RefusedAddress, address_kind
from archive_sim.config import ConfigError, FetchSettings, parse_settings
from archive_sim.cli import main
from archive_sim.download import FetchError, HttpClient
from archive_sim.fsutil import sha256_file
from archive_sim.state_store import CatalogItem, StateStore

from fake_archive import FakeArchive

SETTINGS = FetchSettings(timeout=1.0, retries=2, backoff=0.02, rate_limit=0, contact="tests@example.org",
                         max_image_bytes=1_000_000, deadline=3)


@pytest.fixture(scope="module")
def archive():
    with FakeArchive(images=8, faults=False) as fake:
        fake.drip_seconds = 0.5
        yield fake


@pytest.fixture(scope="module")
def internal():
    """Another service on this machine, on another loopback port: not the source."""
    with FakeArchive(images=2, faults=False) as fake:
        yield fake


def _image_url(archive: FakeArchive, name: str) -> str:
    return f"{archive.url}/api/images/700x/{name}.jpg"


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def _fetch(config: Path) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["fetch", "--config", str(config), "-v"])
    return code, err.getvalue()


def _arosenius_config(root: Path, archive: FakeArchive, fetch: str = "") -> Path:
    config = root / "config.yaml"
    config.write_text(
        "source:\n  type: json_api\n  preset: arosenius\n"
        f"  url: {archive.url}/api/documents\n"
        "  categories: {Konstverk: artworks, Fotografi: photographs}\n"
        "fetch:\n  contact: tests@example.org\n  rate_limit: 0\n  timeout: 1\n  retries: 0\n"
        f"{fetch}", encoding="utf-8")
    return config


# -- deadlines --------------------------------------------------------------------------------
def test_a_body_that_drips_ends_at_the_deadline_and_leaves_no_file(archive, tmp_path):
    # One byte every 0.5 s never trips the 1 s timeout between bytes; 2000 bytes would take 1000 s.
    with HttpClient(SETTINGS, tmp_path / "images", trusted=[archive.url]) as http:
        start = time.monotonic()
        result = http.fetch_image(_image_url(archive, "fault-drip"))
        elapsed = time.monotonic() - start
    assert result.status == "failed" and result.download is None
    assert "not done within fetch.deadline (3 s)" in result.reason and "\n" not in result.reason
    assert 2.9 <= elapsed < 5
    assert _files(tmp_path / "images") == []


def test_a_listing_that_drips_ends_at_the_deadline(archive):
    with HttpClient(SETTINGS, trusted=[archive.url]) as http:
        start = time.monotonic()
        with pytest.raises(FetchError, match=r"fetch\.deadline \(3 s\)"):
            http.get_json(_image_url(archive, "fault-drip"))
        assert time.monotonic() - start < 5


def test_a_fetch_names_a_download_past_its_deadline_and_tries_it_next_run(tmp_path):
    with FakeArchive(images=4, faults=False) as archive:
        archive.drip_seconds = 0.5
        archive.add_document("Fotografi", "D-1", "fault-drip")
        config = _arosenius_config(tmp_path, archive, "  deadline: 2\n")
        code, err = _fetch(config)
        expected = {d["id"] for d in archive.all_documents()} - {"D-1"}
    assert code == 0, err
    line = next(line for line in err.splitlines() if line.strip().startswith("D-1 <"))
    assert "not done within fetch.deadline (2 s)" in line and "tried again next run" in line
    assert set(_catalog(tmp_path)) == expected
    assert not list(tmp_path.rglob("*.part"))


def test_the_default_deadline_grows_with_the_size_limit():
    assert FetchSettings().download_deadline == 60 + 50_000_000 / 250_000
    assert FetchSettings(max_image_bytes=1_000_000).download_deadline == 64
    assert FetchSettings(deadline=10).download_deadline == 10


# -- Ctrl-C and SIGTERM -------------------------------------------------------------------------
def _interrupted_fetch(config: Path, archive: FakeArchive, sig: int) -> tuple[int, str, float]:
    """Run ``archive-sim fetch`` until its two workers hang in dripping downloads, then send ``sig``.

    Returns the exit code, stderr and the seconds from the signal to the exit.
    """
    env = {**os.environ, "PYTHONPATH": str(Path(archive_sim.__file__).resolve().parents[1])}
    drips = len(archive.hits("fault-drip"))
    process = subprocess.Popen([sys.executable, "-m", "archive_sim", "fetch", "--config", str(config), "-q"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        give_up = time.monotonic() + 60
        while len(archive.hits("fault-drip")) < drips + 2 and time.monotonic() < give_up and process.poll() is None:
            time.sleep(0.05)
        assert process.poll() is None and len(archive.hits("fault-drip")) == drips + 2
        time.sleep(0.5)  # the last finished downloads are recorded
        sent = time.monotonic()
        process.send_signal(sig)
        _, err = process.communicate(timeout=30)
        return process.returncode, err, time.monotonic() - sent
    finally:
        process.kill()


def _catalog(root: Path) -> dict[str, CatalogItem]:
    with StateStore(root / ".archive-sim") as store:
        items = store.items()
    for item in items:
        assert sha256_file(Path(item.image)) == item.content_hash
    return {it.id: it for it in items}


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupt_stops_within_seconds_and_keeps_what_finished(tmp_path, sig, code):
    with FakeArchive(images=12, faults=False) as archive:
        finished = {d["id"] for d in archive.all_documents()}
        for number in range(2):  # listed last: both workers hang in them once the rest is done
            archive.add_document("Fotografi", f"D-{number}", f"fault-drip-{number}")
        config = _arosenius_config(tmp_path, archive, "  concurrency: 2\n  deadline: 600\n")
        returncode, err, stopped_after = _interrupted_fetch(config, archive, sig)
        assert len(archive.hits(r"/images/", 200)) == len(finished) + 2
    assert returncode == code, err
    assert stopped_after < 5
    assert "interrupted" in err and "Traceback" not in err
    assert not list(tmp_path.rglob("*.part"))
    assert set(_catalog(tmp_path)) == finished


def test_an_interrupted_run_deletes_nothing_and_the_next_run_carries_on(tmp_path):
    with FakeArchive(images=12, faults=False) as archive:
        config = _arosenius_config(tmp_path, archive, "  concurrency: 2\n  deadline: 600\n")
        assert _fetch(config)[0] == 0
        before = _catalog(tmp_path)
        images = sorted(p for p in (tmp_path / ".archive-sim" / "images").rglob("*") if p.is_file())
        gone = {d["id"] for d in archive.documents("Konstverk")[:2]}
        archive.hidden |= gone  # two items leave the source
        for number in range(2):
            archive.add_document("Fotografi", f"D-{number}", f"fault-drip-{number}")
        returncode, err, _ = _interrupted_fetch(config, archive, signal.SIGINT)
        assert returncode == 130, err
        # The run could not tell the two that left from those it did not reach: nothing is deleted.
        assert _catalog(tmp_path) == before
        assert sorted(p for p in (tmp_path / ".archive-sim" / "images").rglob("*") if p.is_file()) == images

        archive.hidden |= {"D-0", "D-1"}
        code, err = _fetch(config)
    assert code == 0 and "removed 2" in err, err
    assert set(_catalog(tmp_path)) == set(before) - gone


# -- requests where they do not belong -------------------------------------------------------------
def test_an_internal_service_is_refused_without_a_request(internal, archive, tmp_path):
    seen = len(internal.log)
    port = internal.url.rsplit(":", 1)[1]
    with HttpClient(SETTINGS, tmp_path / "images", trusted=[archive.url]) as http:
        result = http.fetch_image(_image_url(internal, next(iter(internal.images))))
    assert result.status == "failed"
    assert result.reason == (f"refused: 127.0.0.1 is a loopback address, and http://127.0.0.1:{port} is neither "
                             f"the source's own origin nor in fetch.allowed_origins")
    assert internal.log[seen:] == []  # not one request


def test_a_redirect_to_an_internal_service_is_refused(internal, archive, tmp_path):
    seen = len(internal.log)
    archive.redirects["to-internal"] = _image_url(internal, next(iter(internal.images)))
    with HttpClient(SETTINGS, tmp_path / "images", trusted=[archive.url]) as http:
        result = http.fetch_image(_image_url(archive, "to-internal"))
    assert result.status == "failed" and result.reason.startswith("refused: 127.0.0.1 is a loopback address")
    assert [h.status for h in archive.hits("to-internal")] == [302]
    assert internal.log[seen:] == []  # not one request
    assert _files(tmp_path / "images") == []


def test_a_host_name_is_checked_for_the_address_it_resolves_to(internal, tmp_path):
    seen = len(internal.log)
    port = internal.url.rsplit(":", 1)[1]
    url = f"http://localhost:{port}/api/images/700x/{next(iter(internal.images))}.jpg"
    with HttpClient(SETTINGS, tmp_path / "images", trusted=[internal.url]) as http:  # 127.0.0.1, not localhost
        result = http.fetch_image(url)
    assert result.status == "failed" and result.reason.startswith("refused: localhost (")
    assert "loopback address" in result.reason
    assert internal.log[seen:] == []  # not one request


def test_an_origin_in_allowed_origins_may_be_internal(internal, archive, tmp_path):
    settings = SETTINGS.model_copy(update={"allowed_origins": [internal.url]})
    archive.redirects["to-allowed"] = _image_url(internal, next(iter(internal.images)))
    with HttpClient(settings, tmp_path / "images", trusted=[archive.url]) as http:
        result = http.fetch_image(_image_url(archive, "to-allowed"))
    assert result.status == "downloaded", result.reason
    assert Path(result.download.path).read_bytes() == next(iter(internal.images.values()))


def test_public_addresses_pass_and_every_other_kind_is_named():
    origin = Origin("https", "images.example.org", 443)
    policy = AddressPolicy()
    assert policy.allowed(origin, ["93.184.216.34"]) == ["93.184.216.34"]
    assert policy.allowed(origin, ["10.0.0.7", "2606:2800:220:1::1"]) == ["2606:2800:220:1::1"]
    kinds = {"127.0.0.1": "loopback", "::1": "loopback", "10.1.2.3": "private", "192.168.0.1": "private",
             "169.254.169.254": "link-local", "fe80::1": "link-local", "224.0.0.1": "multicast",
             "0.0.0.0": "unspecified", "240.0.0.1": "reserved", "::ffff:10.0.0.1": "private",
             "100.64.0.1": "non-public"}
    for address, kind in kinds.items():
        assert address_kind(address) == kind, address
        with pytest.raises(RefusedAddress, match=f"is a {kind} address"):
            policy.allowed(origin, [address])
    assert AddressPolicy([origin]).allowed(origin, ["10.1.2.3"]) == ["10.1.2.3"]


def test_allowed_origins_must_be_origins(tmp_path):
    with pytest.raises(ConfigError, match="allowed_origins"):
        parse_settings({"fetch": {"allowed_origins": ["http://10.0.0.5:8080/iiif"]}}, "test", tmp_path)
    settings = parse_settings({"fetch": {"allowed_origins": ["http://10.0.0.5:8080"]}}, "test", tmp_path)
    assert settings.fetch.allowed_origins == ["http://10.0.0.5:8080"]


def test_a_manifest_pointing_at_an_internal_service_is_named_and_not_published(internal, tmp_path):
    seen = len(internal.log)
    with FakeArchive(images=6, faults=False) as archive:
        name = list(archive.images)[1]
        archive.manifest_images[name] = _image_url(internal, next(iter(internal.images)))
        config = tmp_path / "config.yaml"
        config.write_text(
            f"source:\n  type: iiif\n  url: {archive.url}/iiif/3/top.json\n"
            "  categories: {Målningar: paintings, Fotografier: photographs}\n"
            "fetch: {contact: tests@example.org, rate_limit: 0, retries: 0}\n", encoding="utf-8")
        code, err = _fetch(config)
        manifest = f"{archive.url}/iiif/3/manifest/{name}.json"
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.strip().startswith(f"{manifest} <")]
    assert len(lines) == 1 and "loopback address" in lines[0] and "tried again next run" in lines[0]
    with StateStore(tmp_path / ".archive-sim") as store:
        ids = {it.id for it in store.items()}
    assert manifest not in ids and len(ids) == len(archive.images) - 1
    assert internal.log[seen:] == []  # not one request


def test_an_image_name_with_dot_segments_is_skipped_and_never_requested(tmp_path):
    with FakeArchive(images=4, faults=False) as archive:
        archive.add_document("Konstverk", "T-1", "../../../etc/passwd")
        archive.add_document("Konstverk", "T-2", "2019/../../../secret")
        archive.add_document("Konstverk", "T-3", "/etc/passwd")
        config = _arosenius_config(tmp_path, archive)
        code, err = _fetch(config)
        paths = [h.path for h in archive.hits()]
    assert code == 0, err
    for item_id in ("T-1", "T-2"):
        line = next(line for line in err.splitlines() if f"(id '{item_id}')" in line)
        assert "'.' or '..' segment" in line and "skipped" in line
    assert all(p.startswith(("/api/documents?", "/api/images/700x/")) for p in paths), paths
    assert any(p == "/api/images/700x/%2Fetc/passwd.jpg" for p in paths)  # a leading slash stays in the path
    with StateStore(tmp_path / ".archive-sim") as store:
        assert {it.id for it in store.items()} & {"T-1", "T-2", "T-3"} == set()


# -- memory ------------------------------------------------------------------------------------------
# The child reports its own peak: /proc's VmHWM starts afresh at exec, whereas the
# rusage of a child started by a large parent (this test's image) includes the parent's.
PEAK_CHILD = ("import re, sys\nfrom archive_sim.cli import main\ncode = main(sys.argv[1:])\n"
              "print(re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1))\n"
              "sys.exit(code)")


def _peak_fetch_mb(root: Path, archive: FakeArchive) -> float:
    """Peak resident memory of one ``archive-sim fetch`` process, in MB."""
    root.mkdir()
    config = _arosenius_config(root, archive, "  concurrency: 8\n")
    env = {**os.environ, "PYTHONPATH": str(Path(archive_sim.__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", PEAK_CHILD, "fetch", "--config", str(config), "-q"],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1]) / 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak from /proc")
def test_eight_large_pngs_are_checked_one_at_a_time(tmp_path):
    # 9400 x 9400 = 88 Mpx, under the pixel limit; one solid colour compresses to 0.3 MB.
    buffer = io.BytesIO()
    Image.new("RGB", (9400, 9400), (180, 40, 30)).save(buffer, "PNG")
    with FakeArchive(images=8, faults=False) as archive:
        small = _peak_fetch_mb(tmp_path / "small", archive)
        for name in archive.images:
            archive.replace_image(name, buffer.getvalue())
        large = _peak_fetch_mb(tmp_path / "large", archive)
    with StateStore(tmp_path / "large" / ".archive-sim") as store:
        assert {(it.width, it.height) for it in store.items()} == {(9400, 9400)}
    # One decoded image is 9400 * 9400 * 4 bytes = 337 MB; eight at once were 2.4 GB.
    assert large - small < 500, (small, large)


DECODE_CHILD = ("import re, sys\nfrom concurrent.futures import ThreadPoolExecutor\nfrom pathlib import Path\n"
                "from archive_sim.imaging import load_rgb\n"
                "with ThreadPoolExecutor(len(sys.argv) - 1) as pool:\n"
                "    sizes = list(pool.map(lambda p: load_rgb(Path(p), min_side=224).size, sys.argv[1:]))\n"
                "print(sizes, re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1))")


def _peak_decode_mb(paths: list[Path]) -> float:
    """Peak resident memory, in MB, of a process decoding ``paths`` for the model, one thread each."""
    env = {**os.environ, "PYTHONPATH": str(Path(archive_sim.__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", DECODE_CHILD, *map(str, paths)], env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1]) / 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak from /proc")
def test_decoding_large_pngs_for_the_model_on_two_threads_holds_one_at_a_time(tmp_path):
    # Embedding decodes on model.workers (2) threads. An RGBA PNG of 88 Mpx holds 2 x 337 MB
    # while it is decoded and reduced (Pillow reduces RGBA through a premultiplied copy).
    large, small = [tmp_path / "large-1.png", tmp_path / "large-2.png"], [tmp_path / "small-1.png"]
    Image.new("RGBA", (9400, 9400), (30, 90, 160, 200)).save(large[0], "PNG")
    large[1].write_bytes(large[0].read_bytes())
    Image.new("RGBA", (400, 300), (30, 90, 160, 200)).save(small[0], "PNG")
    baseline, peak = _peak_decode_mb(small), _peak_decode_mb(large)
    assert peak - baseline < 900, (baseline, peak)  # two at once: over 1,350 MB


# -- folders ---------------------------------------------------------------------------------------
def _picture(path: Path, colour: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), colour).save(path, "JPEG")


def _local_scan(root: Path, **extra):
    from archive_sim.sources import open_source

    settings = parse_settings({"source": {"type": "local", "path": str(root), **extra}}, "test", root)
    return open_source(settings.source).scan()


def test_links_out_of_the_collection_are_skipped_with_a_reason_and_loops_named(tmp_path):
    root, outside = tmp_path / "collection", tmp_path / "elsewhere"
    _picture(root / "art" / "a.jpg", (200, 0, 0))
    _picture(root / "art" / "sub" / "b.jpg", (0, 200, 0))
    _picture(outside / "secret.jpg", (0, 0, 200))
    (root / "art" / "inner.jpg").symlink_to(root / "art" / "sub" / "b.jpg")
    (root / "art" / "leak.jpg").symlink_to(outside / "secret.jpg")
    (root / "art" / "loop").symlink_to(root)
    (root / "art" / "gone.jpg").symlink_to(tmp_path / "nothing.jpg")
    (root / "photos").symlink_to(outside)
    (root / "cycle").symlink_to(root / "cycle")  # a category folder that is a link to itself

    scan = _local_scan(root)
    assert sorted(it.id for it in scan.items) == ["a", "b", "inner"]
    problems = scan.problems
    assert problems[str(root / "art" / "leak.jpg")] == (
        f"symbolic link to {outside / 'secret.jpg'}, outside the collection folder; skipped "
        f"(source.follow_symlinks: true follows it)")
    assert "outside the collection folder" in problems[str(root / "photos")]
    assert problems[str(root / "art" / "loop")].startswith("symbolic link loop")
    assert problems[str(root / "art" / "gone.jpg")].startswith("broken symbolic link")
    assert problems[str(root / "cycle")] == "symbolic link loop; skipped"

    followed = _local_scan(root, follow_symlinks=True)
    assert sorted((it.category, it.id) for it in followed.items) == [
        ("art", "a"), ("art", "b"), ("art", "inner"), ("art", "leak"), ("photos", "secret")]
    assert followed.problems[str(root / "art" / "loop")].startswith("symbolic link loop")


def test_csv_image_paths_outside_its_folder_are_refused(tmp_path):
    folder = tmp_path / "catalogue"
    _picture(folder / "pics" / "one.jpg", (10, 20, 30))
    _picture(tmp_path / "secret.jpg", (30, 20, 10))
    (folder / "pics" / "link.jpg").symlink_to(tmp_path / "secret.jpg")
    (folder / "items.csv").write_text(
        "id,category,image\nA1,Foto,pics/one.jpg\n"
        f"A2,Foto,{tmp_path / 'secret.jpg'}\nA3,Foto,../secret.jpg\nA4,Foto,pics/link.jpg\n", encoding="utf-8")
    from archive_sim.sources import open_source

    def scan(**extra):
        settings = parse_settings({"source": {"type": "csv", "path": "items.csv", **extra}}, "test", folder)
        return open_source(settings.source).scan()

    strict = scan()
    assert [it.id for it in strict.items] == ["A1"]
    reasons = {k.rsplit(":", 1)[1]: v for k, v in strict.problems.items()}
    assert reasons == {
        "3": f"id 'A2': image '{tmp_path / 'secret.jpg'}' is outside the CSV's folder "
             f"(source.follow_symlinks: true accepts it); skipped",
        "4": "id 'A3': image '../secret.jpg' is outside the CSV's folder (source.follow_symlinks: true accepts it); "
             "skipped",
        "5": "id 'A4': image 'pics/link.jpg' is outside the CSV's folder (source.follow_symlinks: true accepts it); "
             "skipped"}
    assert sorted(it.id for it in scan(follow_symlinks=True).items) == ["A1", "A2", "A3", "A4"]
