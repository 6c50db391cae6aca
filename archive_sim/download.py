"""HTTP for remote sources: polite, bounded, resumable downloads.

Input: URLs (a source's JSON documents and its items' images), the ``fetch``
settings, and per image what the last run kept (file and validators). Output:
parsed JSON documents, and images written atomically under ``<state>/images/``
(named by a hash of their URL, never by an id), each decoded once before it is
kept; every failure comes back as a one-line reason instead of an exception.

Every request has a timeout, goes through a per-host rate limit, names the tool and
a contact in its User-Agent, follows a bounded number of redirects and only ever
http(s), and connects only to public addresses or trusted origins (``transport``,
checked again on every redirect). Connection errors, timeouts, 429 and 5xx are
retried with exponential backoff (Retry-After honoured); other answers fail at once.
Each download, retries included, ends by ``fetch.deadline``; ``abort`` ends them all.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import os
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import requests
from PIL import Image

from . import __version__
from .addresses import AddressPolicy, RefusedAddress, origin_of
from .state_store import Download
from .config import FetchSettings
from .imaging import ImageError, image_size
from .transport import Connections, Watchdog, guarded_session

T = TypeVar("T")
# A JSON listing or manifest larger than this is not one an archive means to serve.
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
CHUNK = 64 * 1024
PART_SUFFIX = ".part"
_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp",
               "JPEG2000": ".jp2"}
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


class FetchError(Exception):
    """A request that failed for good; the message is the reason, in one line."""


class UnsafeUrlError(FetchError):
    """A URL that archive-sim will not request (not http(s), no host)."""


class DeadlineError(FetchError):
    """A download that did not finish by ``fetch.deadline``, or that an interrupt ended."""


class _Retry(Exception):
    """A failure worth another attempt; ``wait`` is the server's Retry-After, if any."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


# -- pure helpers --------------------------------------------------------------------------
def user_agent(contact: str | None) -> str:
    """The User-Agent: the tool, its version, what it does and whom to contact."""
    who = f"; contact: {contact.strip()}" if contact and contact.strip() else ""
    return f"archive-sim/{__version__} (similar-items site builder{who})"


def resolve_url(value: str, base: str | None = None) -> str:
    """``value`` resolved against ``base``; raises ``UnsafeUrlError`` unless http(s) with a host."""
    value = value.strip()
    url = urljoin(base, value) if base else value
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        raise UnsafeUrlError(f"not a valid URL: {value!r} ({exc})") from None
    if parts.scheme.lower() not in ("http", "https"):
        shown = f"a {parts.scheme}: URL" if parts.scheme else "not a URL"
        raise UnsafeUrlError(f"{value!r} is {shown}; only http and https are fetched")
    if not host:
        raise UnsafeUrlError(f"{value!r} has no host")
    return url


def is_remote(value: str) -> bool:
    """Does ``value`` name a URL (any scheme) rather than a local path?"""
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", value.strip())) and not re.match(r"^[A-Za-z]:[\\/]", value)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)


def backoff_delay(attempt: int, base: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: about base, 2*base, 4*base ... (between half and all of it)."""
    return base * (2 ** attempt) * (0.5 + rng.random() / 2)


def image_file_name(url: str) -> str:
    """``ab/abcdef...`` (no extension): where a URL's image lives under ``images/``."""
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()
    return f"{digest[:2]}/{digest}"


def _short(exc: BaseException) -> str:
    """The useful part of a requests/urllib3 error ("Connection refused", not a page of repr)."""
    text = str(exc)
    found = _ERRNO.findall(text)
    if found:
        return found[-1].strip().rstrip(".").lower()
    inner = exc
    while inner.__context__ is not None and inner.__context__ is not inner:
        inner = inner.__context__
    name = type(inner).__name__
    return name if len(text) > 120 or not text else text


# -- rate limit ------------------------------------------------------------------------------
class HostLimiter:
    """At most ``rate`` request starts per second per host, shared by all worker threads."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def reserve(self, host: str) -> float:
        """Claim the next slot for ``host``; return the seconds to wait for it."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next.get(host, now))
            self._next[host] = start + self.interval
            return start - now

    def wait(self, host: str) -> None:
        delay = self.reserve(host)
        if delay > 0:
            self._sleep(delay)

    def defer(self, host: str, seconds: float) -> None:
        """No request to ``host`` for ``seconds`` (a 429 with Retry-After speaks for the whole host)."""
        with self._lock:
            self._next[host] = max(self._next.get(host, 0.0), self._clock() + seconds)


# -- results ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageResult:
    url: str
    status: str  # "downloaded", "not_modified" or "failed"
    download: Download | None = None
    reason: str = ""
    bytes: int = 0


@dataclass
class Traffic:
    requests: int = 0
    retries: int = 0
    image_bytes: int = 0
    document_bytes: int = 0
    not_modified: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


class HttpClient:
    """Sessions (one per worker thread), retries, limits, deadlines and atomic image files.

    Use as a context manager; ``images_dir`` is only needed for ``fetch_image``.
    ``trusted`` are the URLs whose origins may be on a non-public address (the
    source's own), besides ``fetch.allowed_origins``.
    """

    def __init__(self, settings: FetchSettings, images_dir: Path | None = None, *,
                 trusted: Iterable[str] = (), sleep: Callable[[float], None] | None = None) -> None:
        self.settings = settings
        self.images_dir = images_dir
        self.user_agent = user_agent(settings.contact)
        self.watchdog = Watchdog()
        # Waits end early on an abort unless a test brings its own clock.
        self._sleep = sleep or (lambda seconds: self.watchdog.aborted.wait(seconds))
        self.limiter = HostLimiter(settings.rate_limit, sleep=self._sleep)
        self.policy = AddressPolicy([*(origin_of(url) for url in trusted),
                                     *(origin_of(url) for url in settings.allowed_origins)])
        self.deadline = settings.download_deadline
        self.traffic = Traffic()
        self._rng = random.Random()
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    def __enter__(self) -> "HttpClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.abort()
        self.watchdog.close()
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()

    def abort(self) -> None:
        """End every running download now (their partial files are removed) and start no more."""
        self.watchdog.abort()

    def _session(self) -> tuple[requests.Session, Connections]:
        session = getattr(self._local, "session", None)
        if session is None:
            connections = Connections()
            session = guarded_session(self.policy, connections)
            session.headers["User-Agent"] = self.user_agent
            self.watchdog.register(connections)
            self._local.session, self._local.connections = session, connections
            with self._lock:
                self._sessions.append(session)
        return session, self._local.connections

    # -- one request, classified ----------------------------------------------------------
    def _get(self, session: requests.Session, url: str, headers: dict[str, str],
             params: dict[str, str] | None) -> requests.Response:
        timeout = self.settings.timeout
        self.traffic.add(requests=1)
        try:
            return session.get(url, headers=headers, params=params, timeout=(timeout, timeout), stream=True,
                               allow_redirects=False)
        except RefusedAddress as exc:
            raise FetchError(str(exc)) from None
        except (requests.exceptions.InvalidSchema, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidURL) as exc:
            raise FetchError(f"not a URL that can be fetched ({_short(exc)})") from None
        except requests.exceptions.Timeout:
            raise _Retry(f"no response within {timeout:g} s") from None
        except requests.exceptions.RequestException as exc:
            raise _Retry(f"connection failed: {_short(exc)}") from None

    def _send(self, session: requests.Session, url: str, headers: dict[str, str],
              params: dict[str, str] | None = None) -> requests.Response:
        """The answer at the end of at most ``max_redirects`` redirects, each hop checked like the first."""
        for _ in range(self.settings.max_redirects + 1):
            response = self._get(session, url, headers, params)
            if not response.is_redirect:
                break
            location = response.headers["Location"]
            response.close()
            try:
                url = resolve_url(location, url)
            except UnsafeUrlError:
                raise FetchError(f"redirected to a URL that is not http(s): {location[:200]}") from None
            params = None  # the new location carries its own query
        else:
            raise FetchError(f"more than {self.settings.max_redirects} redirects (fetch.max_redirects)")
        status = response.status_code
        if status == 304 or 200 <= status < 300:
            return response
        response.close()
        if status == 429 or status >= 500:
            wait = parse_retry_after(response.headers.get("Retry-After"), time.time())
            raise _Retry(f"HTTP {status} {response.reason or ''}".strip(), wait)
        raise FetchError(f"HTTP {status} {response.reason or ''}".strip())

    def _retrying(self, url: str, attempt: Callable[[requests.Session], T]) -> T:
        """``attempt`` until it succeeds, fails for good, runs out of tries or passes ``fetch.deadline``."""
        host = (urlsplit(url).hostname or "").lower()
        tries = self.settings.retries + 1
        reason = ""
        session, connections = self._session()
        ends = time.monotonic() + self.deadline
        with self.watchdog.deadline(connections, self.deadline):
            for number in range(tries):
                self._check(connections, reason)
                self.limiter.wait(host)
                try:
                    return attempt(session)
                except _Retry as exc:
                    self._check(connections, reason)
                    reason = exc.reason
                    if number + 1 >= tries:
                        break
                    delay = backoff_delay(number, self.settings.backoff, self._rng)
                    if exc.wait is not None:
                        if exc.wait > self.settings.max_retry_after:
                            raise FetchError(f"{reason}; the server asked to wait {exc.wait:.0f} s, longer than "
                                             f"fetch.max_retry_after ({self.settings.max_retry_after:g} s)") from None
                        delay = exc.wait
                        self.limiter.defer(host, exc.wait)
                    if time.monotonic() + delay > ends:
                        raise DeadlineError(f"{reason}; a retry in {delay:.0f} s would end after "
                                            f"fetch.deadline ({self.deadline:g} s)") from None
                    self.traffic.add(retries=1)
                    self._sleep(delay)
                except FetchError:
                    self._check(connections, reason)
                    raise
        raise FetchError(f"{reason} (gave up after {tries} attempt{'s' if tries > 1 else ''})")

    def _check(self, connections: Connections, reason: str) -> None:
        """Raise ``DeadlineError`` if the run was aborted or this download's deadline passed."""
        if self.watchdog.aborted.is_set():
            raise DeadlineError("interrupted")
        if connections.expired:
            last = f" (last: {reason})" if reason else ""
            raise DeadlineError(f"not done within fetch.deadline ({self.deadline:g} s){last}")

    def _body_chunks(self, response: requests.Response) -> Iterator[bytes]:
        """The body, turning a cut-off or stalled transfer into a retryable failure."""
        declared = _declared_length(response)
        got = 0
        try:
            for chunk in response.iter_content(CHUNK):
                got += len(chunk)
                yield chunk
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError,
                requests.exceptions.ContentDecodingError) as exc:
            if "timed out" in str(exc).lower():
                raise _Retry(f"body stalled: no data for {self.settings.timeout:g} s") from None
            announced = f" before the {declared} bytes it announced" if declared is not None else ""
            raise _Retry(f"body cut off: the connection closed{announced}") from None
        if declared is not None and got < declared:
            raise _Retry(f"body cut off: {got} of the {declared} bytes it announced")

    # -- JSON documents ---------------------------------------------------------------------
    def get_json(self, url: str, params: dict[str, str] | None = None) -> Any:
        """The JSON document at ``url``; raises ``FetchError`` with the reason."""
        url = resolve_url(url)

        def attempt(session: requests.Session) -> Any:
            response = self._send(session, url, {"Accept": "application/json, application/ld+json;q=0.9, */*;q=0.1"},
                                  params)
            with response:
                if response.status_code == 304:
                    raise FetchError("HTTP 304 to an unconditional request")
                declared = _declared_length(response)
                if declared is not None and declared > MAX_DOCUMENT_BYTES:
                    raise FetchError(f"document larger than {MAX_DOCUMENT_BYTES} bytes ({declared})")
                parts, size = [], 0
                for chunk in self._body_chunks(response):
                    size += len(chunk)
                    if size > MAX_DOCUMENT_BYTES:
                        raise FetchError(f"document larger than {MAX_DOCUMENT_BYTES} bytes")
                    parts.append(chunk)
            self.traffic.add(document_bytes=size)
            try:
                return json.loads(b"".join(parts))
            except (ValueError, UnicodeDecodeError) as exc:
                kind = response.headers.get("Content-Type", "").split(";")[0] or "no content type"
                raise FetchError(f"not JSON ({kind}): {str(exc).splitlines()[0]}") from None

        return self._retrying(url, attempt)

    def get_json_many(self, urls: Iterable[str]) -> Iterator[tuple[str, Any, str | None]]:
        """``(url, document, None)`` or ``(url, None, reason)`` for each URL, in order, fetched concurrently."""
        def one(url: str) -> tuple[str, Any, str | None]:
            try:
                return url, self.get_json(url), None
            except FetchError as exc:
                return url, None, str(exc)

        pool = ThreadPoolExecutor(max_workers=self.settings.concurrency, thread_name_prefix="json")
        try:
            yield from pool.map(one, list(urls))
        except BaseException:
            self.abort()  # an interrupt (or a caller that stopped reading): end the running requests now
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    # -- images ---------------------------------------------------------------------------------
    def fetch_image(self, url: str, previous: Download | None = None) -> ImageResult:
        """Download ``url`` into ``images_dir`` unless ``previous`` is still current (HTTP 304)."""
        if self.images_dir is None:
            raise ValueError("HttpClient was made without an images folder")
        try:
            url = resolve_url(url)
        except UnsafeUrlError as exc:
            return ImageResult(url, "failed", reason=str(exc))
        if previous is not None and not Path(previous.path).is_file():
            previous = None  # the file is gone: ask unconditionally
        headers = {"Accept": "image/*, */*;q=0.5"}
        if previous is not None and previous.etag:
            headers["If-None-Match"] = previous.etag
        if previous is not None and previous.last_modified:
            headers["If-Modified-Since"] = previous.last_modified
        target = self.images_dir / image_file_name(url)

        def attempt(session: requests.Session) -> ImageResult:
            response = self._send(session, url, headers)
            with response:
                if response.status_code == 304:
                    if previous is None:
                        raise FetchError("HTTP 304 to an unconditional request")
                    self.traffic.add(not_modified=1)
                    current = Download(url, previous.path, response.headers.get("ETag") or previous.etag,
                                       response.headers.get("Last-Modified") or previous.last_modified,
                                       previous.content_hash, previous.width, previous.height, previous.size)
                    return ImageResult(url, "not_modified", current)
                return self._store_image(url, response, target)

        try:
            return self._retrying(url, attempt)
        except FetchError as exc:
            return ImageResult(url, "failed", reason=str(exc))

    def _store_image(self, url: str, response: requests.Response, target: Path) -> ImageResult:
        limit = self.settings.max_image_bytes
        declared = _declared_length(response)
        if declared is not None and declared > limit:
            raise FetchError(f"{declared} bytes, more than fetch.max_image_bytes ({limit})")
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f".{target.name}.{uuid.uuid4().hex}{PART_SUFFIX}")
        digest, size = hashlib.sha256(), 0
        try:
            with open(part, "wb") as f:
                for chunk in self._body_chunks(response):
                    size += len(chunk)
                    if size > limit:
                        raise FetchError(f"more than fetch.max_image_bytes ({limit} bytes)")
                    digest.update(chunk)
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            try:
                width, height = image_size(part, cancelled=self.watchdog.aborted.is_set)
                with Image.open(part) as img:
                    extension = _EXTENSIONS.get(img.format or "", ".img")
            except ImageError as exc:
                served = response.headers.get("Content-Type", "").split(";")[0].strip()
                note = f" (served as {served})" if served and not served.startswith("image/") else ""
                raise FetchError(f"not a usable image: {exc}{note}") from None
            final = target.with_suffix(extension)
            os.replace(part, final)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        self.traffic.add(image_bytes=size)
        download = Download(url, str(final), response.headers.get("ETag"), response.headers.get("Last-Modified"),
                            digest.hexdigest(), width, height, size)
        return ImageResult(url, "downloaded", download, bytes=size)

    def fetch_images(self, jobs: Iterable[tuple[str, Download | None]]) -> Iterator[ImageResult]:
        """``fetch_image`` for every ``(url, previous)``, ``concurrency`` at a time, as each finishes."""
        pool = ThreadPoolExecutor(max_workers=self.settings.concurrency, thread_name_prefix="download")
        try:
            futures = [pool.submit(self.fetch_image, url, previous) for url, previous in jobs]
            for future in as_completed(futures):
                yield future.result()
        except BaseException:
            self.abort()  # an interrupt (or a caller that stopped reading): end the running downloads now
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _declared_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length")
    if value is None or response.headers.get("Content-Encoding"):
        return None  # a compressed body's length says nothing about the bytes we read
    try:
        return int(value)
    except ValueError:
        return None


def remove_partial_files(images_dir: Path) -> int:
    """Delete ``.part`` files an interrupted run left behind (only one run holds the state lock)."""
    count = 0
    if images_dir.is_dir():
        for path in images_dir.rglob(f"*{PART_SUFFIX}"):
            path.unlink(missing_ok=True)
            count += 1
    return count


def remove_unreferenced(images_dir: Path, keep: set[str]) -> int:
    """Delete image files that no download record points to any more."""
    count = 0
    if images_dir.is_dir():
        for path in images_dir.rglob("*"):
            if path.is_file() and str(path) not in keep:
                path.unlink(missing_ok=True)
                count += 1
    return count
