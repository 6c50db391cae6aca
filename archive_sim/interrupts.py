"""Ctrl-C and SIGTERM end a run the same way: as an exception the stages clean up after.

Input: SIGINT (Python raises ``KeyboardInterrupt``) and SIGTERM (by default the
process would die at once, leaving partial files). Output: SIGTERM raised as
``Terminated``, a ``KeyboardInterrupt``, so that every ``except KeyboardInterrupt``
and ``finally`` runs for both, and the exit code of each: 130 and 143 (128 + signal).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Terminated(KeyboardInterrupt):
    """SIGTERM, from a service manager or ``kill``."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


@contextmanager
def signals_raise() -> Iterator[None]:
    """Within the block, SIGTERM raises ``Terminated`` in the main thread (as SIGINT raises KeyboardInterrupt)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; a caller on another thread keeps the defaults
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """The shell's convention: 128 plus the number of the signal that ended the run."""
    return 128 + (signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT)
