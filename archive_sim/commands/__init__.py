"""One module per CLI command, each declaring itself as ``COMMAND = Command(...)``.

A ``Command`` holds the command's name, its one-line help, the description its
``--help`` shows, a function adding its options to an argparse parser, and
``main(args) -> exit code``. ``cli`` only builds the parser from these and calls
``main``. This package also holds what commands share: the settings options
(``--config``, ``--images``, ``--out``, ``-v``, ``-q``), reading settings from them,
the one-run-per-state-folder lock and ``stage_command`` for the pipeline stages.

Each stage reads the state the stage before it wrote and writes its own:
fetch -> catalog, embed -> vectors, index -> neighbours, map -> map points,
render -> the published site. ``build`` runs them in order.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Settings


class RunError(RuntimeError):
    """A failure already phrased for the user (exit code 1)."""


class UsageError(RuntimeError):
    """Invalid arguments or configuration, already phrased for the user (exit code 2)."""


@dataclass(frozen=True)
class RunOptions:
    """Per-run choices from the command line (settings hold everything else)."""

    relayout: bool = False      # lay the maps out from scratch instead of placing new items
    allow_shrink: bool = False  # accept a source that lost many of its items


@dataclass(frozen=True)
class Command:
    """A CLI command as its module declares it."""

    name: str                                            # as typed: archive-sim <name>
    help: str                                            # one line in ``archive-sim --help``
    description: str                                     # the top of ``archive-sim <name> --help``
    add_arguments: Callable[[argparse.ArgumentParser], None]
    main: Callable[[argparse.Namespace], int]            # runs it; returns the exit code
    epilog: str = ""                                     # examples, after the options

    def add_to(self, subparsers: Any) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(self.name, help=self.help, description=self.description,
                                       epilog=self.epilog or None,
                                       formatter_class=argparse.RawDescriptionHelpFormatter)
        self.add_arguments(parser)
        parser.set_defaults(command=self)
        return parser


# -- what commands share --------------------------------------------------------------------
def add_settings_options(parser: argparse.ArgumentParser) -> None:
    """--config / --images / --out and how much to print: every command that reads settings."""
    where = parser.add_argument_group("settings")
    where.add_argument("-c", "--config", type=Path, default=None, metavar="FILE",
                       help="settings file (default: config.yaml in the current folder)")
    where.add_argument("--images", type=Path, metavar="DIR",
                       help="build from a plain folder instead: each subfolder is a category, each image an item")
    where.add_argument("--out", type=Path, metavar="SITE",
                       help="output folder (overrides output_dir; with --images, state is kept beside it)")
    loud = parser.add_mutually_exclusive_group()
    loud.add_argument("-v", "--verbose", action="store_true", help="list every skipped file and stage details")
    loud.add_argument("-q", "--quiet", action="store_true", help="no progress bars or stage lines, only errors")


def positive(text: str) -> int:
    """An argparse type: a whole number of 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: expected 1 or more")
    return value


def settings_from(args: argparse.Namespace) -> "Settings":
    """The settings the options name; a bad file or option raises ``UsageError``."""
    from ..config import ConfigError, load_settings, settings_for_folder

    try:
        if args.images is not None:
            if args.config is not None:
                raise RunError("give either --config or --images, not both")
            if not args.images.is_dir():
                raise RunError(f"--images {args.images}: not a folder")
            return settings_for_folder(args.images, args.out or Path("site"))
        settings = load_settings(args.config or Path("config.yaml"))
    except ConfigError as exc:
        raise UsageError(f"invalid configuration: {exc}") from None
    if args.out is not None:
        settings = settings.model_copy(update={"output_dir": args.out.resolve()})
    return settings


def existing_state(settings: "Settings") -> None:
    """Stop with one line when there is no build to read."""
    if not (settings.state_dir / "state.sqlite").exists():
        raise RunError(f"{settings.state_dir}: no build state here; run 'archive-sim build' first")


@contextmanager
def state_lock(state_dir: Path) -> Iterator[None]:
    """One run per state folder: a second one stops at once instead of corrupting the first."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / "lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise RunError(f"another archive-sim run ({holder}) is using {state_dir}; wait for it to finish") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}")
        lock.flush()
        yield


def verbosity(args: argparse.Namespace) -> int:
    return 0 if args.quiet else 2 if args.verbose else 1


# -- the pipeline stages --------------------------------------------------------------------
def add_relayout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--relayout", action="store_true",
                        help="lay the maps out from scratch (default: keep positions, place new items)")


def add_allow_shrink(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-shrink", action="store_true",
                        help="accept a source that lists no items or lost more than fetch.max_shrink "
                             "of them (default: stop and change nothing)")


Stage = Callable[..., Any]  # run(settings, store, report, options)


def stage_command(name: str, run: Stage, help: str, description: str,
                  options: tuple[Callable[[argparse.ArgumentParser], None], ...] = (),
                  says_where: bool = False, epilog: str = "") -> Command:
    """The command of a pipeline stage: settings, the state lock, a report at the end.

    ``says_where``: a stage that publishes the site ends by saying how to view it.
    """

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        add_settings_options(parser)
        for add in options:
            add(parser)

    def main(args: argparse.Namespace) -> int:
        from ..progress import Report
        from ..state_store import StateStore

        settings = settings_from(args)
        report = Report(verbosity=verbosity(args))
        options_ = RunOptions(relayout=getattr(args, "relayout", False),
                              allow_shrink=getattr(args, "allow_shrink", False))
        with state_lock(settings.state_dir), StateStore(settings.state_dir) as store:
            run(settings, store, report, options_)
        if not args.quiet:
            print(report.summary(), file=sys.stderr)
        if says_where:
            how = f"--config {args.config}" if args.config else ""
            if args.out is not None or args.images is not None:
                how = f"--out {settings.output_dir}"
            print(f"Site written to {settings.output_dir}. View it with: archive-sim serve {how}".rstrip(),
                  file=sys.stderr)
        return 0

    return Command(name, help, description, add_arguments, main, epilog)
