"""Publish a built site: swap the finished staging folder in for the live one.

Input: the output folder. Output: a fresh staging folder beside it to build into,
and ``publish()``, which exchanges staging and live in one atomic step (Linux
``renameat2(RENAME_EXCHANGE)``; two renames where the kernel or file system lacks
it), so a visitor or a crash sees either the previous site or the new one, never a
mix. A folder that archive-sim did not make is never replaced (a marker tells).
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
from pathlib import Path

from .faults import checkpoint

MARKER = ".archive-sim-site"
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


def _previous(out: Path) -> Path:
    return out.parent / f".{out.name}.previous"


def staging_dir(out: Path) -> Path:
    """A clean folder beside ``out`` (same file system, so the swap is atomic)."""
    previous = _previous(out)
    if not out.exists() and previous.exists():
        os.replace(previous, out)  # a two-rename publish was cut off between its renames
    if previous.exists():
        shutil.rmtree(previous)
    staging = out.parent / f".{out.name}.staging"
    if staging.exists():
        shutil.rmtree(staging)  # left by an interrupted build; never published
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
    """Make ``staging`` the live site at ``out`` and delete the site it replaces."""
    check_output_dir(out)
    checkpoint("publish:before")
    if out.exists() and _exchange(staging, out):
        checkpoint("publish:swapped")
        _fsync_dir(out.parent)
        shutil.rmtree(staging, ignore_errors=True)  # now holds the old site
        return
    previous = _previous(out)
    if out.exists():
        os.replace(out, previous)
    checkpoint("publish:between-renames")
    os.replace(staging, out)
    _fsync_dir(out.parent)
    shutil.rmtree(previous, ignore_errors=True)
