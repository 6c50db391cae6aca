"""Command line: build the parser from the command modules, run the one asked for.

Input: ``archive-sim <command> [options]``; each command is a module of
``archive_sim.commands`` declaring ``COMMAND``. Output: the command's work and the
exit code: 0 done (items may have been skipped, and are listed), 1 the run failed
(one line says why), 2 the configuration or the arguments are invalid, 130
interrupted (the published site is unchanged).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from . import __version__

# Command name -> its module, in the order ``archive-sim --help`` lists them.
COMMAND_MODULES = {"build": "build", "fetch": "fetch", "embed": "embed", "index": "index", "map": "maps",
                   "render": "render", "serve": "serve", "query": "query", "compare": "compare",
                   "evaluate": "evaluate", "plugins": "plugins"}

DESCRIPTION = """Build a static 'Liknande' (similar items) site for an image archive.

Every item gets a page listing the items that look most like it, found with a CNN,
and a place on a map of the collection. 'archive-sim build' does all of it; the other
commands run one stage, or answer questions about a build."""

EPILOG = """Run 'archive-sim COMMAND --help' for a command's options.

examples:
  archive-sim build --images photos/ --out site/   a plain folder, one subfolder per category
  archive-sim build --config config.yaml           everything the settings file says
  archive-sim serve                                preview the site on http://127.0.0.1:8000/"""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of the command ``only`` (a run imports just its own module)."""
    parser = argparse.ArgumentParser(prog="archive-sim", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"archive-sim {__version__}")
    subparsers = parser.add_subparsers(dest="command_name", required=True, metavar="COMMAND")
    for name, module in COMMAND_MODULES.items():
        if only in (None, name):
            importlib.import_module(f".commands.{module}", __package__).COMMAND.add_to(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv[0] if argv and argv[0] in COMMAND_MODULES else None).parse_args(argv)
    # TensorFlow's start-up chatter (CPU features, oneDNN) is noise to a user.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from .commands import RunError, UsageError
    from .embed.backbones import BackboneError
    from .interrupts import exit_code, signals_raise
    from .plugins import PluginError
    from .site.output_tree import PublishError

    try:
        with signals_raise():
            return args.command.main(args)
    except UsageError as exc:
        print(f"archive-sim: {exc}", file=sys.stderr)
        return 2
    except (BackboneError, PluginError) as exc:
        print(f"archive-sim: invalid configuration: {exc}", file=sys.stderr)
        return 2
    except (RunError, PublishError, FileNotFoundError, KeyError, RuntimeError) as exc:
        message = exc.args[0] if exc.args else str(exc)
        print(f"archive-sim: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print("archive-sim: interrupted; the published site is unchanged and the next run carries on",
              file=sys.stderr)
        return exit_code(exc)
    except Exception as exc:
        if getattr(args, "verbose", False):
            raise
        print(f"archive-sim: unexpected error: {type(exc).__name__}: {exc} "
              f"(the published site is unchanged; run again with -v for the details)", file=sys.stderr)
        return 1
