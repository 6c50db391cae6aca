"""``archive-sim plugins``: the source types and backbones that settings can name.

Input: the registries (built-ins and installed entry points). Output: one line per
source type (``source.type``) and per backbone (``model.name``) with what it is and,
for a third-party one, the entry point it came from.
"""

from __future__ import annotations

import argparse
import json

from . import Command
from ..plugins import Plugins, default_plugins


def listing(plugins: Plugins) -> str:
    """The registries as text: a heading per kind, then ``name  description`` lines."""
    lines: list[str] = []
    for heading, registry in (("Source types (source.type)", plugins.sources),
                              ("Backbones (model.name)", plugins.backbones)):
        width = max((len(p.name) for p in registry), default=0)
        lines.append(f"{heading}:")
        for plugin in registry:
            origin = "" if plugin.origin == "built-in" else f"  [{plugin.origin}]"
            lines.append(f"  {plugin.name.ljust(width)}  {plugin.description}{origin}")
        lines.append("")
    return "\n".join(lines).rstrip("\n")


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts instead of a list")


def _main(args: argparse.Namespace) -> int:
    plugins = default_plugins()
    if args.json:
        document = {kind: [{"name": p.name, "description": p.description, "origin": p.origin} for p in registry]
                    for kind, registry in (("sources", plugins.sources), ("backbones", plugins.backbones))}
        print(json.dumps(document, indent=1, ensure_ascii=False))
    else:
        print(listing(plugins))
    return 0


COMMAND = Command(
    "plugins", "List the source types and backbones the settings can name.",
    """List the source types (source.type in the settings) and the backbones (model.name)
that are registered: the built-ins, and those installed packages add through the
entry points archive_sim.sources and archive_sim.backbones.""",
    _arguments, _main)
