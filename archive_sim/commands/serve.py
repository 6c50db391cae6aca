"""``archive-sim serve``: preview the built site on a local web server.

Input: the output folder. Output: an HTTP server on localhost (default port 8000)
serving it as a static host would; Ctrl-C stops it.
"""

from __future__ import annotations

import functools
import http.server
from pathlib import Path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        pass


def make_server(site: Path, host: str = "127.0.0.1", port: int = 8000, verbose: bool = False):
    handler_class = http.server.SimpleHTTPRequestHandler if verbose else _QuietHandler
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
