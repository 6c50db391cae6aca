"""``archive-sim build``: fetch, embed, index, map and render, in that order.

Input: settings. Output: the published site; each stage skips the work its inputs
do not require, so a second build with nothing changed embeds and lays out nothing.
"""

from __future__ import annotations

from ..state_store import StateStore
from ..config import Settings
from ..progress import Report
from . import RunOptions, embed, fetch, index, map as map_stage, render


def run(settings: Settings, store: StateStore, report: Report, options: RunOptions = RunOptions()) -> None:
    for stage in (fetch, embed, index, map_stage, render):
        stage.run(settings, store, report, options)
