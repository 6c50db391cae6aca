"""A real HTTP archive on localhost for tests and benchmarks, with real images and real faults.

Input: the repository's own images (the book illustrations and the smallest
photographs of the example collection, scaled to at most 480 px once per process;
details of them where more are asked for), or the files given. Output: a threaded
HTTP server (``FakeArchive``) serving

- an Arosenius-shaped JSON API: ``/api/documents?type=Konstverk|Fotografi&count=&page=``
  answering ``{"total", "documents": [{"id", "title", "images": [{"image"}], ...}]}``
  and images at ``/api/images/700x/<name>.jpg`` (ETag, Last-Modified, 304s);
- a second JSON API shape: ``/api2/records?offset=&limit=`` with ``links.next``;
- IIIF Presentation 3.0: ``/iiif/3/top.json`` (a collection of two collections of
  manifests), manifests ``/iiif/3/manifest/<name>.json``; Presentation 2.1:
  ``/iiif/2/collection.json`` and ``/iiif/2/manifest/<name>.json``; and an Image API
  at ``/iiif/image/<name>/<region>/<size>/<rotation>/<quality>.<format>`` that really
  resizes with Pillow (plus ``info.json``);
- faults among the documents: a 500 then success, a 429 with Retry-After then
  success, a response slower than any sane timeout, a truncated body, HTML served as
  an image, a decompression bomb, a redirect loop, a redirect to ftp://, an image
  over the size limit, a document without images, ids ``../../etc/passwd`` and
  ``a/b``, a duplicate id, and markup in a title;
- faults a test adds: the image ``fault-drip`` (Content-Length 2000, one byte every
  ``drip_seconds``), redirects of image names to any URL (``redirects``), and IIIF 3
  manifests whose image is any URL (``manifest_images``).

Every response is logged (path, status, body bytes, User-Agent) for assertions.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import re
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from PIL import Image

from repo_images import figures, photographs

LAST_MODIFIED = "Mon, 02 Jan 2023 10:00:00 GMT"
ORIGINAL_SIDE = 480
HOMEPAGE = "https://archive.example.org/objects/"
# Fault documents: id -> image name. Each image name triggers its fault below.
FAULTS = {
    "F-500": "fault-500",             # HTTP 500 once, then the image
    "F-429": "fault-429",             # HTTP 429 with Retry-After: 1 once, then the image
    "F-slow": "fault-slow",           # answers after ``slow_seconds``
    "F-truncated": "fault-truncated",  # Content-Length says N, half is sent
    "F-html": "fault-html",           # 200 text/html
    "F-bomb": "fault-bomb",           # a 10000 x 10000 PNG
    "F-loop": "fault-loop",           # redirects in a circle
    "F-ftp": "fault-ftp",             # redirects to ftp://
    "F-huge": "fault-huge",           # 3 MB, over the tests' max_image_bytes
}
# The faults a fetch recovers from; the others are reported failures.
RECOVERABLE = {"F-500", "F-429"}
TRAVERSAL_IDS = ("../../etc/passwd", "a/b")


def archive_sources(illustrations: list[Path], photos: list[Path]) -> tuple[Path, ...]:
    """The book illustrations, then the photographs from the smallest file up."""
    return tuple(illustrations + sorted(photos, key=lambda p: p.stat().st_size))


def repo_sources() -> tuple[Path, ...]:
    return archive_sources(figures(), photographs())


@functools.lru_cache(maxsize=None)
def prepared_images(count: int = 64,
                    sources: tuple[Path, ...] | None = None) -> tuple[tuple[str, bytes, int, int], ...]:
    """``(name, jpeg bytes, width, height)`` of ``count`` real images, longest side <= 480.

    Past the last of ``sources`` (default: ``repo_sources()``) they go round again as
    details (each side cut to its middle 70% per round), as an archive holds a detail
    of a picture beside the whole: ``count`` distinct files, however many are asked for.
    """
    sources = sources or repo_sources()
    result = []
    for n in range(count):
        path, detail = sources[n % len(sources)], n // len(sources)
        with Image.open(path) as img:
            img.draft("RGB", (ORIGINAL_SIDE, ORIGINAL_SIDE))
            rgb = img.convert("RGB")
        keep = 0.7 ** detail
        w, h = rgb.size
        left, top = round(w * (1 - keep) / 2), round(h * (1 - keep) / 2)
        rgb = rgb.crop((left, top, max(left + 1, w - left), max(top + 1, h - top)))
        rgb.thumbnail((ORIGINAL_SIDE, ORIGINAL_SIDE))
        buffer = io.BytesIO()
        rgb.save(buffer, "JPEG", quality=80)
        name = re.sub(r"[^A-Za-z0-9]+", "-", path.stem).strip("-") + (f"-detail-{detail}" if detail else "")
        result.append((name, buffer.getvalue(), rgb.width, rgb.height))
    return tuple(result)


@functools.lru_cache(maxsize=None)
def bomb_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buffer, "PNG")
    return buffer.getvalue()


@dataclass(frozen=True)
class Hit:
    path: str
    status: int
    bytes: int
    user_agent: str
    at: float


class FakeArchive:
    """Use as a context manager; ``url`` is the server's root (no trailing slash)."""

    def __init__(self, images: int = 64, latency: float = 0.0, slow_seconds: float = 4.0,
                 faults: bool = True, sources: tuple[Path, ...] | None = None) -> None:
        prepared = prepared_images(images, sources)
        self.images: dict[str, bytes] = {name: data for name, data, _, _ in prepared}
        self.sizes: dict[str, tuple[int, int]] = {name: (w, h) for name, _, w, h in prepared}
        self.latency = latency
        self.slow_seconds = slow_seconds
        names = list(self.images)
        half = len(names) // 2
        self.categories: dict[str, list[dict[str, Any]]] = {
            "Konstverk": [self._document(f"K-{i:03d}", name) for i, name in enumerate(names[:half])],
            "Fotografi": [self._document(f"P-{i:03d}", name) for i, name in enumerate(names[half:])],
        }
        if faults:
            self.categories["Fotografi"] += [self._document(doc_id, image) for doc_id, image in FAULTS.items()]
            self.categories["Fotografi"].append(self._document(TRAVERSAL_IDS[0], names[half]))
            self.categories["Konstverk"].append(self._document(TRAVERSAL_IDS[1], names[0]))
            # The same id in both categories: the second one is a duplicate.
            self.categories["Fotografi"].append(self._document("K-000", names[-1]))
            self.categories["Fotografi"].append({"id": "no-image", "title": "Utan bild", "images": []})
            self.categories["Konstverk"][1]["title"] = "</script><script>alert('x')</script> & <b>Porträtt</b>"
        self.hidden: set[str] = set()          # document ids left out of listings
        self.failing_manifests: set[str] = set()  # manifest names answered with 500
        self.unavailable: set[str] = set()        # image names answered with 503, until removed
        self.redirects: dict[str, str] = {}        # image name -> where a 302 sends it
        self.manifest_images: dict[str, str] = {}  # IIIF 3 manifest name -> its image's URL (no service)
        self.drip_seconds = 1.0                    # between the bytes of fault-drip
        self.log: list[Hit] = []
        self.in_flight = 0       # requests being answered right now
        self.max_in_flight = 0   # the most at once since the last reset_counts()
        self._once: set[str] = set()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @staticmethod
    def _document(doc_id: str, image: str) -> dict[str, Any]:
        return {"id": doc_id, "title": f"Verk {doc_id}", "type": ["Konstverk"], "item_date_str": "1905",
                "collection": {"museum": "Göteborgs konstmuseum"}, "images": [{"image": image}]}

    # -- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> "FakeArchive":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        handler = type("Handler", (_Handler,), {"archive": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False  # a handler stuck in the slow fault must not hold up stop()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- what the tests look at ------------------------------------------------------------------
    def record(self, hit: Hit) -> None:
        with self._lock:
            self.log.append(hit)

    def hits(self, pattern: str = "", status: int | None = None) -> list[Hit]:
        with self._lock:
            return [h for h in self.log if re.search(pattern, h.path) and (status is None or h.status == status)]

    def image_bytes_served(self) -> int:
        return sum(h.bytes for h in self.hits(r"/images/|/iiif/image/", 200))

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def reset_counts(self) -> None:
        with self._lock:
            self.max_in_flight = self.in_flight

    def reset_faults(self) -> None:
        """The one-off faults (500, 429) fire again on the next request."""
        with self._lock:
            self._once.clear()

    def first_time(self, key: str) -> bool:
        with self._lock:
            if key in self._once:
                return False
            self._once.add(key)
            return True

    def documents(self, category: str) -> list[dict[str, Any]]:
        return [d for d in self.categories.get(category, []) if d["id"] not in self.hidden]

    def all_documents(self) -> list[dict[str, Any]]:
        return [d for docs in self.categories.values() for d in docs if d["id"] not in self.hidden]

    def replace_image(self, name: str, data: bytes) -> None:
        self.images[name] = data

    def add_document(self, category: str, doc_id: str, image: str, title: str | None = None) -> None:
        document = self._document(doc_id, image)
        if title is not None:
            document["title"] = title
        self.categories.setdefault(category, []).append(document)


def build_with_stand_in_vectors(config: Path, dims: int = 64) -> None:
    """fetch, stand-ins for embed and map, then index and render.

    Vectors are drawn from each image's hash instead of a CNN, map positions are
    their first two coordinates instead of t-SNE: the site is real in every part
    but those values, and no model is loaded. For tests of what surrounds the
    model (sources, item pages, compatibility output).
    """
    import numpy as np

    from archive_sim.state_store import StateStore
    from archive_sim.cli import main
    from archive_sim.config import load_settings
    from archive_sim.embed.descriptors import descriptor_model_id
    from archive_sim.slugs import category_slug

    def run(command: str) -> None:
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main([command, "--config", str(config), "-q"])
        assert code == 0, f"{command}: {err.getvalue()}"

    run("fetch")
    settings = load_settings(config)
    mid = descriptor_model_id(settings.model)
    with StateStore(settings.state_dir) as store:
        items = store.items()
        vectors = {}
        for item in items:
            vector = np.random.default_rng(int(item.content_hash[:12], 16)).normal(size=dims)
            vectors[item.id] = vector / np.linalg.norm(vector)
        store.put_vectors(mid, [(it.content_hash, vectors[it.id]) for it in items])
        scopes = {"all": items}
        for item in items:
            scopes.setdefault(category_slug(item.category), []).append(item)
        for scope, members in scopes.items():
            xy = np.array([vectors[it.id][:2] for it in members])
            xy = (xy - xy.min(axis=0)) / np.maximum(xy.max(axis=0) - xy.min(axis=0), 1e-9)
            store.put_map(scope, {it.id: (float(x), float(y)) for it, (x, y) in zip(members, xy)})
    run("index")
    run("render")


class _Handler(BaseHTTPRequestHandler):
    archive: FakeArchive
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle's algorithm and
        # the client's delayed ACK add 40 ms to every response, which real servers avoid.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up on a slow or broken response: that is what the test is about

    # -- responses ----------------------------------------------------------------------------
    def _send(self, status: int, body: bytes = b"", content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self._log(status, len(body))  # before answering: the client may look at the log right after
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _log(self, status: int, size: int) -> None:
        """One line per answer; ``at`` is when the request arrived (before any simulated latency)."""
        self.archive.record(Hit(self.path, status, size, self.headers.get("User-Agent", ""), self._arrived))

    def _json(self, document: Any) -> None:
        self._send(200, json.dumps(document, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8")

    def _image(self, key: str, data: bytes, content_type: str = "image/jpeg") -> None:
        etag = '"' + hashlib.sha1(data).hexdigest()[:20] + '"'
        validators = {"ETag": etag, "Last-Modified": LAST_MODIFIED, "Cache-Control": "max-age=0"}
        match = self.headers.get("If-None-Match")
        if (match is not None and etag in [m.strip() for m in match.split(",")]) or (
                match is None and self.headers.get("If-Modified-Since") == LAST_MODIFIED):
            self._log(304, 0)
            self.send_response(304)
            for k, v in validators.items():
                self.send_header(k, v)
            self.end_headers()
            return
        self._send(200, data, content_type, validators)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self._arrived = time.monotonic()
        self.archive.enter()
        try:
            self._route()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a timeout test): nothing to answer
        finally:
            self.archive.leave()

    def _route(self) -> None:
        if self.archive.latency:
            time.sleep(self.archive.latency)
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        path = unquote(parts.path)
        routes = [
            (r"/api/documents", self._documents),
            (r"/api/images/700x/(.+)\.jpg", self._archive_image),
            (r"/api2/records", self._records),
            (r"/redirect/(.+)", self._redirect),
            (r"/iiif/3/top\.json", self._iiif3_top),
            (r"/iiif/3/collection/(.+)\.json", self._iiif3_collection),
            (r"/iiif/3/manifest/(.+)\.json", self._iiif3_manifest),
            (r"/iiif/2/collection\.json", self._iiif2_collection),
            (r"/iiif/2/manifest/(.+)\.json", self._iiif2_manifest),
            (r"/iiif/image/([^/]+)/info\.json", self._info),
            (r"/iiif/image/([^/]+)/([^/]+)/([^/]+)/([^/]+)/([^/.]+)\.(jpg|png)", self._iiif_image),
        ]
        for pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if match:
                handler(query, *match.groups())
                return
        self._send(404, b'{"error": "not found"}')

    # -- the Arosenius-shaped API -----------------------------------------------------------------
    def _documents(self, query: dict[str, str]) -> None:
        docs = self.archive.documents(query.get("type", ""))
        count = int(query.get("count", 100))
        page = max(1, int(query.get("page", 1)))
        self._json({"total": len(docs), "documents": docs[(page - 1) * count:page * count]})

    def _records(self, query: dict[str, str]) -> None:
        """Another API shape: offset/limit, records under ``data``, a ``links.next`` URL."""
        docs = [(category, d) for category in self.archive.categories for d in self.archive.documents(category)]
        offset, limit = int(query.get("offset", 0)), int(query.get("limit", 10))
        chunk = docs[offset:offset + limit]
        data = [{"identifier": d["id"], "name": d["title"], "kind": category,
                 "media": {"url": f"/api/images/700x/{d['images'][0]['image']}.jpg"} if d["images"] else {},
                 "page": f"javascript:alert('{d['id']}')" if d["id"] == "P-001" else f"{HOMEPAGE}{d['id']}"}
                for category, d in chunk]
        more = offset + limit < len(docs)
        self._json({"data": data, "links": {"next": f"records?offset={offset + limit}&limit={limit}" if more else None}})

    def _archive_image(self, query: dict[str, str], name: str) -> None:
        archive = self.archive
        some_image = next(iter(archive.images.values()))
        if name == "fault-500" and archive.first_time(name):
            self._send(500, b"Internal Server Error", "text/plain")
        elif name == "fault-429" and archive.first_time(name):
            self._send(429, b"Too Many Requests", "text/plain", {"Retry-After": "1"})
        elif name in archive.unavailable:
            self._send(503, b"Service Unavailable", "text/plain")
        elif name in archive.redirects:
            self._send(302, b"", "text/plain", {"Location": archive.redirects[name]})
        elif name.startswith("fault-drip"):
            self._drip(2000)
        elif name in ("fault-500", "fault-429"):
            self._image(name, some_image)
        elif name == "fault-slow":
            self._log(0, 0)  # logged on arrival too: the answer comes after the client gave up
            time.sleep(archive.slow_seconds)
            self._image(name, some_image)
        elif name == "fault-truncated":
            data = some_image
            self._log(200, len(data) // 2)
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
        elif name == "fault-html":
            self._send(200, b"<!doctype html><html><body>Image not found</body></html>", "text/html; charset=utf-8")
        elif name == "fault-bomb":
            self._image(name, bomb_png(), "image/png")
        elif name == "fault-loop":
            self._send(302, b"", "text/plain", {"Location": "/redirect/loop-a"})
        elif name == "fault-ftp":
            self._send(302, b"", "text/plain", {"Location": "ftp://127.0.0.1/image.jpg"})
        elif name == "fault-huge":
            self._send(200, b"\xff\xd8\xff" + bytes(3_000_000), "image/jpeg")
        elif name in archive.images:
            self._image(name, archive.images[name])
        else:
            self._send(404, b"not found", "text/plain")

    def _drip(self, length: int) -> None:
        """Headers at once, then one byte every ``drip_seconds``: never a stall long enough for a timeout."""
        self._log(200, length)
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.flush()
        for _ in range(length):
            time.sleep(self.archive.drip_seconds)
            self.wfile.write(b"\xff")
            self.wfile.flush()

    def _redirect(self, query: dict[str, str], name: str) -> None:
        following = {"loop-a": "/redirect/loop-b", "loop-b": "/redirect/loop-a"}.get(name, "/redirect/loop-a")
        self._send(302, b"", "text/plain", {"Location": following})

    # -- IIIF Presentation 3.0 ------------------------------------------------------------------
    def _iiif3_top(self, query: dict[str, str]) -> None:
        base = self.archive.url
        self._json({
            "@context": "http://iiif.io/api/presentation/3/context.json",
            "id": f"{base}/iiif/3/top.json", "type": "Collection", "label": {"en": ["The fake archive"]},
            "items": [
                {"id": f"{base}/iiif/3/collection/paintings.json", "type": "Collection",
                 "label": {"en": ["Paintings"], "sv": ["Målningar"]}},
                {"id": f"{base}/iiif/3/collection/photographs.json", "type": "Collection",
                 "label": {"en": ["Photographs"], "sv": ["Fotografier"]}},
            ]})

    def _iiif3_names(self, which: str) -> list[str]:
        names = list(self.archive.images)
        half = len(names) // 2
        return names[:half] if which == "paintings" else names[half:]

    def _iiif3_collection(self, query: dict[str, str], which: str) -> None:
        base = self.archive.url
        if which not in ("paintings", "photographs"):
            self._send(404)
            return
        items = [{"id": f"{base}/iiif/3/manifest/{name}.json", "type": "Manifest", "label": {"en": [name]}}
                 for name in self._iiif3_names(which)]
        label = {"en": ["Paintings"], "sv": ["Målningar"]} if which == "paintings" else {
            "en": ["Photographs"], "sv": ["Fotografier"]}
        self._json({"@context": "http://iiif.io/api/presentation/3/context.json",
                    "id": f"{base}/iiif/3/collection/{which}.json", "type": "Collection",
                    "label": label, "items": items})

    def _iiif3_manifest(self, query: dict[str, str], name: str) -> None:
        archive, base = self.archive, self.archive.url
        if name in archive.failing_manifests:
            self._send(500, b"Internal Server Error", "text/plain")
            return
        if name not in archive.images:
            self._send(404)
            return
        width, height = archive.sizes[name]
        canvas = f"{base}/iiif/3/manifest/{name}/canvas/1"
        service = f"{base}/iiif/image/{name}"
        elsewhere = archive.manifest_images.get(name)
        body = {"id": elsewhere, "type": "Image", "format": "image/jpeg", "width": width, "height": height} \
            if elsewhere else {"id": f"{service}/full/max/0/default.jpg", "type": "Image", "format": "image/jpeg",
                               "width": width, "height": height,
                               "service": [{"id": service, "type": "ImageService3", "profile": "level1"}]}
        self._json({
            "@context": "http://iiif.io/api/presentation/3/context.json",
            "id": f"{base}/iiif/3/manifest/{name}.json", "type": "Manifest",
            "label": {"en": [f"{name} <i>(scan)</i>"], "sv": [f"{name} (skanning)"]},
            "metadata": [
                {"label": {"en": ["Date"], "sv": ["Datum"]}, "value": {"none": ["1905"]}},
                {"label": {"en": ["Technique"]}, "value": {"en": ["<span>Oil on canvas</span>"]}},
            ],
            "rights": "http://creativecommons.org/publicdomain/mark/1.0/",
            "requiredStatement": {"label": {"en": ["Attribution"]}, "value": {"en": ["Fake Archive, Göteborg"]}},
            "homepage": [{"id": f"{HOMEPAGE}{name}", "type": "Text", "format": "text/html",
                          "label": {"en": ["Object page"]}}],
            "items": [{
                "id": canvas, "type": "Canvas", "width": width, "height": height,
                "items": [{"id": f"{canvas}/page", "type": "AnnotationPage", "items": [{
                    "id": f"{canvas}/page/a", "type": "Annotation", "motivation": "painting", "target": canvas,
                    "body": body}]}]}]})

    # -- IIIF Presentation 2.1 -------------------------------------------------------------------
    def _iiif2_collection(self, query: dict[str, str]) -> None:
        base = self.archive.url
        names = list(self.archive.images)[:6]
        self._json({"@context": "http://iiif.io/api/presentation/2/context.json",
                    "@id": f"{base}/iiif/2/collection.json", "@type": "sc:Collection", "label": "Teckningar",
                    "manifests": [{"@id": f"{base}/iiif/2/manifest/{n}.json", "@type": "sc:Manifest", "label": n}
                                  for n in names]})

    def _iiif2_manifest(self, query: dict[str, str], name: str) -> None:
        archive, base = self.archive, self.archive.url
        if name not in archive.images:
            self._send(404)
            return
        width, height = archive.sizes[name]
        canvas = f"{base}/iiif/2/manifest/{name}/canvas/c1"
        self._json({
            "@context": "http://iiif.io/api/presentation/2/context.json",
            "@id": f"{base}/iiif/2/manifest/{name}.json", "@type": "sc:Manifest",
            "label": [{"@value": f"Teckning {name}", "@language": "sv"}, {"@value": f"Drawing {name}", "@language": "en"}],
            "metadata": [{"label": "Date", "value": "1899"},
                         {"label": "Type", "value": [{"@value": "Teckning", "@language": "sv"},
                                                     {"@value": "Drawing", "@language": "en"}]}],
            "license": "https://creativecommons.org/licenses/by/4.0/",
            "attribution": "Fake Archive",
            "related": {"@id": f"{HOMEPAGE}{name}", "format": "text/html"},
            "sequences": [{"@type": "sc:Sequence", "canvases": [{
                "@id": canvas, "@type": "sc:Canvas", "label": "1", "width": width, "height": height,
                "images": [{"@type": "oa:Annotation", "motivation": "sc:painting", "on": canvas,
                            "resource": {"@id": f"{base}/iiif/image/{name}/full/full/0/default.jpg",
                                         "@type": "dctypes:Image", "format": "image/jpeg",
                                         "width": width, "height": height,
                                         "service": {"@context": "http://iiif.io/api/image/2/context.json",
                                                     "@id": f"{base}/iiif/image/{name}",
                                                     "profile": "http://iiif.io/api/image/2/level1.json"}}}]}]}]})

    # -- IIIF Image API -------------------------------------------------------------------------
    def _info(self, query: dict[str, str], name: str) -> None:
        if name not in self.archive.images:
            self._send(404)
            return
        width, height = self.archive.sizes[name]
        self._json({"@context": "http://iiif.io/api/image/3/context.json", "id": f"{self.archive.url}/iiif/image/{name}",
                    "type": "ImageService3", "protocol": "http://iiif.io/api/image", "profile": "level1",
                    "width": width, "height": height})

    def _iiif_image(self, query: dict[str, str], name: str, region: str, size: str, rotation: str,
                    quality: str, fmt: str) -> None:
        data = self.archive.images.get(name)
        if data is None:
            self._send(404)
            return
        if region != "full" or rotation != "0" or quality not in ("default", "native", "color"):
            self._send(400, b"only full region, no rotation", "text/plain")
            return
        with Image.open(io.BytesIO(data)) as img:
            img = img.convert("RGB")
        target = _iiif_size(size, img.width, img.height)
        if target is None:
            self._send(400, f"bad size {size}".encode(), "text/plain")
            return
        if target != img.size:
            img = img.resize(target, Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        img.save(buffer, "PNG" if fmt == "png" else "JPEG", quality=85)
        self._image(f"{name}/{size}", buffer.getvalue(), "image/png" if fmt == "png" else "image/jpeg")


def _iiif_size(size: str, width: int, height: int) -> tuple[int, int] | None:
    """The pixel size an Image API ``size`` parameter asks for (2.x and 3.0 forms, no upscaling)."""
    if size in ("full", "max"):
        return width, height
    match = re.fullmatch(r"(!)?(\d*),(\d*)", size)
    if match is None:
        return None
    confined, w, h = match.group(1), match.group(2), match.group(3)
    if w and h:
        if confined:
            scale = min(int(w) / width, int(h) / height)
            return max(1, round(width * scale)), max(1, round(height * scale))
        return int(w), int(h)
    if w:
        return int(w), max(1, round(height * int(w) / width))
    if h:
        return max(1, round(width * int(h) / height)), int(h)
    return None
