"""One module per CLI command; ``cli`` only parses arguments and calls ``run``.

Each stage command reads the state the stage before it wrote and writes its own:
fetch -> catalog, embed -> vectors, index -> neighbours, map -> map points,
render -> the published site. ``build`` runs them in order.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class RunOptions:
    """Per-run choices from the command line (settings hold everything else)."""

    relayout: bool = False      # lay the maps out from scratch instead of placing new items
    allow_shrink: bool = False  # accept a source that lost many of its items
