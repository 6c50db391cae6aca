"""Browser tests: a small real site, built once, served on localhost, driven in Chromium.

archive-sim builds the site from real photographs and book illustrations (in Swedish,
then the same state rendered again in English); Playwright drives Debian's
/usr/bin/chromium, never a browser it downloaded. Every page a test opens is watched:
a request to any other host is blocked and fails the test, as does a console error or
an uncaught exception.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from support import (CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, SITE_URL, SUB_PATH, Site, archive_sim_command,
                     make_collection, serve, write_config)


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("browser-site")
    make_collection(root)
    command, env = archive_sim_command()
    for language, out, url in (("sv", "public-sv", None), ("en", "public-en", None), ("sv", "public-url", SITE_URL)):
        config = write_config(root, language, out, url)
        result = subprocess.run([*command, "build", "--config", str(config), "-q"], cwd=root, env=env,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
    return root


def _site(built: Path, out: str, prefix: str = "/") -> Iterator[Site]:
    folder = built / out
    server, url, log = serve(folder, prefix)
    items = json.loads((folder / "api/v1/items.json").read_text("utf-8"))["items"]
    try:
        yield Site(folder, url, log, items)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def sv(built: Path) -> Iterator[Site]:
    yield from _site(built, "public-sv")


@pytest.fixture(scope="session")
def en(built: Path) -> Iterator[Site]:
    yield from _site(built, "public-en")


@pytest.fixture(scope="session")
def sv_sub(built: Path) -> Iterator[Site]:
    """The Swedish site (no site.url) served from a sub-path, as a host may."""
    yield from _site(built, "public-sv", SUB_PATH)


@pytest.fixture(scope="session")
def with_url(built: Path) -> Iterator[Site]:
    """The Swedish site built with site.url (SITE_URL), served at that URL's path."""
    yield from _site(built, "public-url", SUB_PATH)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@dataclass
class Watch:
    """What the pages of one test did that they must not."""

    blocked: list[str] = field(default_factory=list)   # requests to other hosts
    errors: list[str] = field(default_factory=list)    # console errors, uncaught exceptions
    expected: list[re.Pattern] = field(default_factory=list)

    def expect_error(self, pattern: str) -> None:
        self.expected.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.expected)]


@pytest.fixture()
def watch() -> Watch:
    return Watch()


@pytest.fixture()
def open_page(browser, watch: Watch) -> Iterator[Callable[..., object]]:
    """``open_page(**context options)``: a new page whose requests and errors are watched."""
    contexts = []

    def guard(route) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            watch.blocked.append(route.request.url)
            route.abort()

    def factory(init_script: str | None = None, **options):
        options.setdefault("viewport", {"width": 1280, "height": 900})
        context = browser.new_context(**options)
        contexts.append(context)
        context.route("**/*", guard)
        if init_script:
            context.add_init_script(init_script)
        page = context.new_page()
        page.on("console", lambda m: watch.errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: watch.errors.append(f"exception: {e}"))
        return page

    yield factory
    for context in contexts:
        context.close()
    assert not watch.blocked, f"requests left localhost: {watch.blocked}"
    assert not watch.unexpected(), f"errors in the browser: {watch.unexpected()}"


@pytest.fixture()
def page(open_page):
    return open_page()


def pytest_terminal_summary(terminalreporter) -> None:
    if SCREENSHOTS.is_dir() and any(SCREENSHOTS.glob("*.png")):
        terminalreporter.write_line(f"browser screenshots: {SCREENSHOTS}")
