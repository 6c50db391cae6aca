"""Publish a built site: swap the finished staging folder in for the live one.

Input: the output folder. Output: a fresh staging folder beside it to build into,
and ``publish()`` that replaces the live folder by renames only, so a visitor
sees either the previous site or the new one. A folder that archive-sim did not
make is never replaced (a marker file tells them apart).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

MARKER = ".archive-sim-site"


class PublishError(RuntimeError):
    pass


def check_output_dir(out: Path) -> None:
    """Refuse to overwrite a non-empty folder that is not an archive-sim site."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise PublishError(
            f"output_dir = {str(out)!r}: exists and was not made by archive-sim; "
            f"choose another folder or remove it (nothing was written)")


def staging_dir(out: Path) -> Path:
    """A clean folder beside ``out`` (same file system, so the final rename is atomic)."""
    previous = out.parent / f".{out.name}.previous"
    if not out.exists() and previous.exists():
        os.replace(previous, out)  # a publish was cut off between its two renames
    staging = out.parent / f".{out.name}.staging"
    if staging.exists():
        shutil.rmtree(staging)  # left by an interrupted build; never published
    staging.mkdir(parents=True)
    (staging / MARKER).write_text("This folder is written by archive-sim and replaced on every build.\n")
    return staging


def publish(staging: Path, out: Path) -> None:
    """Replace ``out`` by ``staging``: rename the old site aside, the new one in, then delete the old."""
    check_output_dir(out)
    old = out.parent / f".{out.name}.previous"
    if old.exists():
        shutil.rmtree(old)
    if out.exists():
        os.replace(out, old)
    os.replace(staging, out)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)
