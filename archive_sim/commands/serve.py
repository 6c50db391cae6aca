"""``archive-sim serve``: preview the built site on a local web server.

Input: the output folder. Output: an HTTP server on localhost (default port 8000)
serving it as a static host would, including the site's own ``404.html`` for
missing pages; Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import functools
import http.server
from pathlib import Path

from . import Command, RunError, add_settings_options, settings_from


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


def _arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_options(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 picks a free one)")


def _main(args: argparse.Namespace) -> int:
    site = args.out.resolve() if args.out is not None and args.config is None else settings_from(args).output_dir
    if not (site / "index.html").exists():
        raise RunError(f"{site}: no site here yet; run 'archive-sim build' first")
    run(site, args.host, args.port, args.verbose)
    return 0


COMMAND = Command(
    "serve", "Preview the built site on a local web server.",
    """Preview the built site on a local web server, as a static host would serve it
(with the site's own 404 page). Ctrl-C stops it.""",
    _arguments, _main,
    epilog="""examples:
  archive-sim serve
  archive-sim serve --out site/ --port 0""")
