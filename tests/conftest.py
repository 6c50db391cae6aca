"""Setup the test modules share: running the CLI, reading JSON, laying out a collection.

Input: the installed ``archive_sim`` package and the repository's own images
(``repo_images``). Output: fixtures; each returns a function, so module-scoped
fixtures that build a site once can use them as well as the tests.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Set before any test module imports TensorFlow, whose C++ log lines would bury the report.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str


def run_cli(*args: str) -> CliResult:
    """``archive-sim ARGS`` in this process (cheaper than a new one: TensorFlow stays
    imported and models stay loaded), with its exit code and what it printed."""
    from archive_sim.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return CliResult(code, out.getvalue(), err.getvalue())


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def site_items(site: Path) -> dict[str, dict[str, Any]]:
    """A built site's items (``api/v1/items.json``) by id."""
    return {it["id"]: it for it in read_json(site / "api/v1/items.json")["items"]}


def make_collection(root: Path, categories: Mapping[str, Iterable[Path]]) -> Path:
    """``root/collection/<category>/`` holding a copy of each file; returns the collection folder."""
    collection = root / "collection"
    for category, files in categories.items():
        folder = collection / category
        folder.mkdir(parents=True, exist_ok=True)
        for path in files:
            shutil.copy(path, folder / path.name)
    return collection


@pytest.fixture(scope="session")
def cli() -> Callable[..., CliResult]:
    return run_cli


@pytest.fixture(scope="session", name="read_json")
def read_json_fixture() -> Callable[[Path], Any]:
    return read_json


@pytest.fixture(scope="session", name="site_items")
def site_items_fixture() -> Callable[[Path], dict[str, dict[str, Any]]]:
    return site_items


@pytest.fixture(scope="session", name="make_collection")
def make_collection_fixture() -> Callable[[Path, Mapping[str, Iterable[Path]]], Path]:
    return make_collection
