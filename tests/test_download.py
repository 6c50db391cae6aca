"""The downloader against a real HTTP server: retries, limits, validators, atomic files.

Pure helpers (URL checks, Retry-After, backoff, the host rate limit) are tested
without a network; everything else against ``FakeArchive`` on localhost, whose
faults are real HTTP behaviour (a stalled response, a cut-off body, a redirect loop).
"""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

import pytest
from PIL import Image

from archive_sim.state_store import Download
from archive_sim.config import FetchSettings
from archive_sim.download import (FetchError, HostLimiter, HttpClient, UnsafeUrlError, backoff_delay,
                                  image_file_name, is_remote, parse_retry_after, remove_partial_files,
                                  resolve_url, user_agent)
from archive_sim.fsutil import sha256_file

from fake_archive import FakeArchive

SETTINGS = FetchSettings(timeout=1.0, retries=2, backoff=0.02, rate_limit=0, contact="tests@example.org",
                         max_image_bytes=1_000_000)


@pytest.fixture(scope="module")
def archive():
    with FakeArchive(slow_seconds=3.0) as fake:
        yield fake


@pytest.fixture()
def client(archive, tmp_path):
    with HttpClient(SETTINGS, tmp_path / "images", trusted=[archive.url]) as http:
        yield http


def _image_url(archive: FakeArchive, name: str) -> str:
    return f"{archive.url}/api/images/700x/{name}.jpg"


def _no_partial_files(folder: Path) -> None:
    assert not [p for p in folder.rglob("*") if p.name.endswith(".part")]


# -- pure helpers ------------------------------------------------------------------------------
@pytest.mark.parametrize("value, base, expected", [
    ("images/700x/a.jpg", "https://arkiv.example.org/api/documents", "https://arkiv.example.org/api/images/700x/a.jpg"),
    ("/iiif/x", "http://h.example/a/b", "http://h.example/iiif/x"),
    ("//cdn.example/x.jpg", "https://h.example/", "https://cdn.example/x.jpg"),
    ("HTTPS://Upper.example/x", None, "HTTPS://Upper.example/x"),
])
def test_urls_are_resolved_against_the_source(value, base, expected):
    assert resolve_url(value, base) == expected


@pytest.mark.parametrize("value, base", [
    ("file:///etc/passwd", None), ("javascript:alert(1)", "https://h.example/"), ("ftp://h.example/x", None),
    ("data:image/png;base64,AAAA", "https://h.example/"), ("relative/only.jpg", None), ("http://", None),
    ("http://[::1", None),
])
def test_only_http_and_https_urls_with_a_host_are_fetched(value, base):
    with pytest.raises(UnsafeUrlError):
        resolve_url(value, base)


def test_remote_values_are_told_from_local_paths():
    assert is_remote("https://h.example/a.jpg") and is_remote("file:///x") and is_remote("javascript:x")
    assert not is_remote("images/a.jpg") and not is_remote("/abs/a.jpg") and not is_remote("C:\\a.jpg")


def test_retry_after_in_seconds_and_as_a_date():
    now = 1_700_000_000.0
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:40 GMT", now) == pytest.approx(20.0)
    assert parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now) == 0.0  # in the past: now
    assert parse_retry_after("soon", now) is None and parse_retry_after(None, now) is None


def test_backoff_doubles_with_jitter():
    rng = random.Random(1)
    for attempt in range(5):
        delay = backoff_delay(attempt, 0.5, rng)
        assert 0.25 * 2 ** attempt <= delay <= 0.5 * 2 ** attempt


def test_the_host_limit_spaces_requests_per_host_and_honours_a_deferral():
    now = [100.0]
    limiter = HostLimiter(4.0, clock=lambda: now[0], sleep=lambda s: None)
    waits = [limiter.reserve("a.example") for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.25, 0.5, 0.75])
    assert limiter.reserve("b.example") == 0.0  # another host is not held up
    limiter.defer("b.example", 10.0)
    assert limiter.reserve("b.example") == pytest.approx(10.0)
    assert HostLimiter(0).reserve("a") == 0.0


def test_the_user_agent_names_the_tool_and_the_contact():
    agent = user_agent("ops@museum.example")
    assert agent.startswith("archive-sim/") and "ops@museum.example" in agent


# -- against the server ------------------------------------------------------------------------
def test_an_image_is_written_whole_under_a_name_from_its_url(archive, client, tmp_path):
    url = _image_url(archive, next(iter(archive.images)))
    result = client.fetch_image(url)
    assert result.status == "downloaded" and result.download is not None
    path = Path(result.download.path)
    assert path.parent.parent == tmp_path / "images"
    assert path.stem == image_file_name(url).split("/")[1] and path.suffix == ".jpg"
    assert sha256_file(path) == result.download.content_hash
    assert path.read_bytes() == archive.images[next(iter(archive.images))]
    with Image.open(path) as img:
        assert (result.download.width, result.download.height) == img.size
    assert result.download.etag and result.download.last_modified
    hit = archive.hits(url.split(archive.url)[1])[-1]
    assert "archive-sim/" in hit.user_agent and "tests@example.org" in hit.user_agent


def test_an_unchanged_image_is_not_downloaded_again_and_a_changed_one_is(archive, client):
    name = list(archive.images)[3]
    url = _image_url(archive, name)
    first = client.fetch_image(url)
    served = archive.image_bytes_served()
    again = client.fetch_image(url, first.download)
    assert again.status == "not_modified" and again.download == first.download
    assert archive.image_bytes_served() == served
    assert archive.hits(f"{name}.jpg", 304)
    # Only a Last-Modified to go on: If-Modified-Since alone gets a 304 too.
    dated = Download(**{**first.download.__dict__, "etag": None})
    assert client.fetch_image(url, dated).status == "not_modified"
    # The archive replaces the picture: a new ETag, downloaded in full.
    original = archive.images[name]
    try:
        archive.replace_image(name, archive.images[list(archive.images)[4]])
        changed = client.fetch_image(url, first.download)
        assert changed.status == "downloaded"
        assert changed.download.content_hash != first.download.content_hash
        assert changed.download.path == first.download.path  # same URL, same file
    finally:
        archive.replace_image(name, original)


def test_a_validator_without_its_file_asks_again_in_full(archive, client):
    url = _image_url(archive, list(archive.images)[5])
    first = client.fetch_image(url)
    Path(first.download.path).unlink()
    again = client.fetch_image(url, first.download)
    assert again.status == "downloaded" and Path(again.download.path).is_file()


def test_a_500_then_success_is_retried(archive, client):
    archive.reset_faults()
    before = len(archive.hits("fault-500"))
    result = client.fetch_image(_image_url(archive, "fault-500"))
    assert result.status == "downloaded"
    statuses = [h.status for h in archive.hits("fault-500")][before:]
    assert statuses == [500, 200]


def test_a_429_waits_as_long_as_retry_after_says(archive, tmp_path):
    archive.reset_faults()
    before = len(archive.hits("fault-429"))
    patient = HttpClient(SETTINGS.model_copy(update={"backoff": 0.01}), tmp_path / "images", trusted=[archive.url])
    with patient:
        result = patient.fetch_image(_image_url(archive, "fault-429"))
    assert result.status == "downloaded"
    hits = archive.hits("fault-429")[before:]
    assert [h.status for h in hits] == [429, 200]
    assert hits[1].at - hits[0].at >= 0.95  # Retry-After: 1, although the backoff was 0.01 s


def test_a_retry_after_beyond_the_limit_fails_at_once(archive, tmp_path):
    archive.reset_faults()
    strict = HttpClient(SETTINGS.model_copy(update={"max_retry_after": 0.5}), tmp_path / "images",
                        trusted=[archive.url])
    with strict:
        start = time.monotonic()
        result = strict.fetch_image(_image_url(archive, "fault-429"))
    assert result.status == "failed" and "429" in result.reason and "max_retry_after" in result.reason
    assert time.monotonic() - start < 0.9


@pytest.mark.parametrize("name, reason", [
    ("fault-slow", r"no response within 1 s \(gave up after 3 attempts\)"),
    ("fault-truncated", r"body cut off.*announced.*gave up after 3 attempts"),
    ("fault-html", r"not a usable image: .* \(served as text/html\)"),
    ("fault-bomb", r"not a usable image: too many pixels"),
    ("fault-loop", r"more than 5 redirects"),
    ("fault-ftp", r"redirected to a URL that is not http\(s\)"),
    ("fault-huge", r"more than fetch.max_image_bytes"),
    ("no-such-image", r"HTTP 404"),
])
def test_each_failure_is_reported_with_its_reason_and_leaves_no_file(archive, client, tmp_path, name, reason):
    result = client.fetch_image(_image_url(archive, name))
    assert result.status == "failed" and result.download is None
    assert result.bytes == 0
    assert re.search(reason, result.reason), result.reason
    assert "\n" not in result.reason
    images = tmp_path / "images"
    assert not images.exists() or not [p for p in images.rglob("*") if p.is_file()]


def test_4xx_answers_are_not_retried(archive, client):
    before = len(archive.hits("no-such-thing"))
    client.fetch_image(_image_url(archive, "no-such-thing"))
    assert len(archive.hits("no-such-thing")) - before == 1


def test_an_unsafe_url_is_refused_without_a_request(client):
    result = client.fetch_image("file:///etc/passwd")
    assert result.status == "failed" and "only http and https" in result.reason


def test_json_documents_and_their_failures(archive, client):
    doc = client.get_json(f"{archive.url}/api/documents", {"type": "Konstverk", "count": "3", "page": "2"})
    assert len(doc["documents"]) == 3 and doc["total"] > 3
    with pytest.raises(FetchError, match="not JSON"):
        client.get_json(_image_url(archive, "fault-html"))
    with pytest.raises(FetchError, match="HTTP 404"):
        client.get_json(f"{archive.url}/nowhere.json")
    results = list(client.get_json_many([f"{archive.url}/iiif/3/top.json", f"{archive.url}/nowhere.json"]))
    assert results[0][1]["type"] == "Collection" and results[0][2] is None
    assert results[1][1] is None and "404" in results[1][2]


def test_a_refused_connection_is_retried_then_reported(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    url = f"http://127.0.0.1:{port}/x.jpg"
    with HttpClient(SETTINGS, tmp_path / "images", trusted=[url]) as http:
        result = http.fetch_image(url)
    assert result.status == "failed"
    assert "connection failed" in result.reason and "refused" in result.reason and "3 attempts" in result.reason


def test_downloads_run_concurrently_and_the_rate_limit_holds(archive, tmp_path):
    names = list(archive.images)[10:26]
    with FakeArchive(images=len(archive.images), latency=0.1, faults=False) as slow:
        for concurrency in (1, 8):
            slow.reset_counts()
            settings = SETTINGS.model_copy(update={"concurrency": concurrency})
            with HttpClient(settings, tmp_path / f"c{concurrency}", trusted=[slow.url]) as http:
                results = list(http.fetch_images((_image_url(slow, n), None) for n in names))
            assert [r.status for r in results] == ["downloaded"] * 16
            if concurrency == 1:
                assert slow.max_in_flight == 1
            else:  # 100 ms per response: the workers overlap
                assert 4 <= slow.max_in_flight <= 8
        limited = SETTINGS.model_copy(update={"concurrency": 8, "rate_limit": 20.0})
        with HttpClient(limited, tmp_path / "limited", trusted=[slow.url]) as http:
            start = time.monotonic()
            results = list(http.fetch_images((_image_url(slow, n), None) for n in names[:8]))
            elapsed = time.monotonic() - start
    assert all(r.status == "downloaded" for r in results)
    assert elapsed >= 7 * 0.05  # 20 requests per second to one host: 8 starts span 350 ms at least


def test_leftover_partial_files_are_removed(tmp_path):
    folder = tmp_path / "images" / "ab"
    folder.mkdir(parents=True)
    (folder / ".abc.123.part").write_bytes(b"half")
    (folder / "abc.jpg").write_bytes(b"whole")
    assert remove_partial_files(tmp_path / "images") == 1
    _no_partial_files(tmp_path)
    assert (folder / "abc.jpg").exists()
