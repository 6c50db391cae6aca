"""Publish a built site: swap the finished staging folder in for the live one.

Input: the output folder. Output: a fresh staging folder beside it to build into,
and ``publish()``, which exchanges staging and live in one atomic step (Linux
``renameat2(RENAME_EXCHANGE)``; two renames where the kernel or file system lacks
it), so a visitor or a crash sees either the previous site or the new one, never a
mix. A folder that archive-sim did not make is never replaced (a marker tells).

The replaced site is not deleted (hundreds of thousands of files take minutes to
delete here): it is kept aside (``.<out>.spare``) and becomes the next staging
folder, where the render keeps each file that is still right and replaces the rest
(``render.SiteWriter``), so a rebuild touches only the files that changed.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
from pathlib import Path

from .crash_points import checkpoint

MARKER = ".archive-sim-site"
_MARKER_TEXT = "This folder is written by archive-sim and replaced on every build.\n"
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


class PublishError(RuntimeError):
    pass


def check_output_dir(out: Path) -> None:
    """Refuse to overwrite a non-empty folder that is not an archive-sim site."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise PublishError(
            f"output_dir = {str(out)!r}: exists and was not made by archive-sim; "
            f"choose another folder or remove it (nothing was written)")


def marker_text(site_id: str) -> str:
    """The marker of a site whose files ``site_id`` names (``SiteWriter.seal``)."""
    return f"{_MARKER_TEXT}site {site_id}\n"


def site_id_of(folder: Path) -> str | None:
    """The id in ``folder``'s marker; None without a marker or with one that names none."""
    try:
        lines = (folder / MARKER).read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    ids = [line[5:] for line in lines if line.startswith("site ")]
    return ids[0] if ids else None


def _previous(out: Path) -> Path:
    return out.parent / f".{out.name}.previous"


def _spare(out: Path) -> Path:
    return out.parent / f".{out.name}.spare"


def _retire(old_site: Path, out: Path) -> None:
    """Keep a site that is no longer live as the starting point of the next build."""
    spare = _spare(out)
    if spare.exists():
        shutil.rmtree(spare)
    os.replace(old_site, spare)


def staging_dir(out: Path) -> Path:
    """A folder beside ``out`` (same file system, so the swap is atomic) to build into.

    It starts as the site that the last build replaced, or what an interrupted
    build left: never live, so anything in it may be replaced. The render keeps
    only the files it would write itself and deletes the rest (``SiteWriter.prune``).
    """
    previous = _previous(out)
    if not out.exists() and previous.exists():
        os.replace(previous, out)  # a two-rename publish was cut off between its renames
    if previous.exists():
        _retire(previous, out)
    staging = out.parent / f".{out.name}.staging"
    spare = _spare(out)
    if staging.exists():
        if spare.exists():
            shutil.rmtree(spare)
    elif spare.exists():
        os.replace(spare, staging)
    else:
        staging.mkdir(parents=True)
    return staging


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories; False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, f"cannot swap {a} and {b}: {os.strerror(code)}")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(staging: Path, out: Path) -> None:
    """Make ``staging`` the live site at ``out``; the site it replaces is kept aside for the next build."""
    check_output_dir(out)
    checkpoint("publish:before")
    if out.exists() and _exchange(staging, out):
        checkpoint("publish:swapped")
        _fsync_dir(out.parent)
        _retire(staging, out)  # now holds the old site
        return
    previous = _previous(out)
    if out.exists():
        os.replace(out, previous)
    checkpoint("publish:between-renames")
    os.replace(staging, out)
    _fsync_dir(out.parent)
    if previous.exists():
        _retire(previous, out)
