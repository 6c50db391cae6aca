"""Named crash points, so tests can kill a build exactly where it hurts most.

Input: the environment variable ``ARCHIVE_SIM_KILL_AT`` (a checkpoint name, or
unset). Output: at that checkpoint the process sends itself SIGKILL: no cleanup,
no ``finally``, exactly like a power cut or the OOM killer. Unset (always, outside
tests), a checkpoint costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "ARCHIVE_SIM_KILL_AT"


def checkpoint(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
