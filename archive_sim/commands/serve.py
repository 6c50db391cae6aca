"""``archive-sim serve``: preview the built site on a local web server.

Input: the output folder. Output: an HTTP server on localhost (default port 8000)
serving it as a static host would, including the site's own ``404.html`` for
missing pages; Ctrl-C stops it.
"""

from __future__ import annotations

import functools
import http.server
from pathlib import Path


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    verbose = False

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        if self.verbose:
            super().log_message(format, *args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        page = Path(self.directory) / "404.html"
        if code != 404 or not page.is_file():
            super().send_error(code, message, explain)
            return
        body = page.read_bytes()
        self.send_response(404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def make_server(site: Path, host: str = "127.0.0.1", port: int = 8000, verbose: bool = False):
    handler_class = type("Handler", (SiteHandler,), {"verbose": verbose})
    handler = functools.partial(handler_class, directory=str(site))
    return http.server.ThreadingHTTPServer((host, port), handler)


def run(site: Path, host: str, port: int, verbose: bool = False) -> None:
    server = make_server(site, host, port, verbose)
    print(f"Serving {site} at http://{host}:{server.server_address[1]}/ (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
