"""What the user sees while a command runs: progress bars, messages, the summary.

Input: events from the stages (counts, problems, timings). Output: progress bars
with counts and ETA on stderr (tqdm, off with ``-q`` or when not a terminal), and
a summary at the end: items, new, changed, removed, skipped with reasons, time per
stage. ``-v`` lists every skipped file; by default the first few are shown.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, TextIO

from tqdm import tqdm

SHOWN_PROBLEMS = 10


@dataclass
class StageTiming:
    name: str
    seconds: float
    note: str = ""


@dataclass
class Report:
    verbosity: int = 1  # 0 quiet, 1 normal, 2 verbose
    out: TextIO = field(default_factory=lambda: sys.stderr)
    stages: list[StageTiming] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    written: list[str] = field(default_factory=list)  # site files the last render wrote
    notes: list[str] = field(default_factory=list)    # one line each in the summary

    def say(self, message: str) -> None:
        if self.verbosity >= 1:
            print(message, file=self.out, flush=True)

    def detail(self, message: str) -> None:
        if self.verbosity >= 2:
            print(message, file=self.out, flush=True)

    @contextmanager
    def stage(self, name: str) -> Iterator[StageTiming]:
        timing = StageTiming(name, 0.0)
        start = time.perf_counter()
        self.detail(f"[{name}] starting")
        try:
            yield timing
        finally:
            timing.seconds = time.perf_counter() - start
            self.stages.append(timing)
            self.say(f"[{name}] {timing.note or 'done'} ({timing.seconds:.1f} s)")

    @contextmanager
    def progress(self, total: int, description: str, unit: str = "img") -> Iterator[Callable[[int], None]]:
        bar = tqdm(total=total, desc=description, unit=unit, file=self.out, leave=False,
                   disable=True if self.verbosity == 0 or total == 0 else None, dynamic_ncols=True)
        try:
            yield bar.update
        finally:
            bar.close()

    def problem(self, subject: str, reason: str) -> None:
        self.problems[subject] = reason
        self.detail(f"skipped {subject}: {reason}")

    def summary(self) -> str:
        lines = []
        if self.counts:
            lines.append("Summary: " + ", ".join(f"{k} {v}" for k, v in self.counts.items()))
        if self.stages:
            lines.append("Time: " + ", ".join(f"{s.name} {s.seconds:.1f} s" for s in self.stages)
                         + f" (total {sum(s.seconds for s in self.stages):.1f} s)")
        lines += [f"Note: {note}" for note in self.notes]
        if self.problems:
            lines.append(f"Skipped {len(self.problems)}:")
            shown = self.problems if self.verbosity >= 2 else dict(list(self.problems.items())[:SHOWN_PROBLEMS])
            lines += [f"  {subject}: {reason}" for subject, reason in shown.items()]
            if len(shown) < len(self.problems):
                lines.append(f"  ... and {len(self.problems) - len(shown)} more (-v lists all)")
        return "\n".join(lines)
