"""``archive-sim build``: fetch, embed, index, map and render, in that order.

Input: settings. Output: the published site; each stage skips the work its inputs
do not require, so a second build with nothing changed embeds and lays out nothing.
"""

from __future__ import annotations

from ..state_store import StateStore
from ..config import Settings
from ..progress import Report
from . import RunOptions, add_allow_shrink, add_relayout, embed, fetch, index, maps, render, stage_command


def run(settings: Settings, store: StateStore, report: Report, options: RunOptions = RunOptions()) -> None:
    for stage in (fetch, embed, index, maps, render):
        stage.run(settings, store, report, options)


COMMAND = stage_command(
    "build", run, options=(add_relayout, add_allow_shrink), says_where=True,
    help="Run fetch, embed, index, map and render: the whole site, doing only what changed.",
    description="""Build the site: fetch, embed, index, map and render, in that order.

Each stage skips what its inputs do not require, so a weekly rebuild with a few new
items embeds only those. The site is written beside the published one and swapped in
at the end: an interrupted or failed build leaves the published site as it was, and
the next build carries on where this one stopped.""",
    epilog="""examples:
  archive-sim build                          config.yaml in this folder
  archive-sim build --config archive.yaml -v
  archive-sim build --images photos/ --out site/""")
