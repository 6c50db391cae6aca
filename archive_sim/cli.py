"""Command line: parse arguments, load settings, call one command module.

Input: ``archive-sim <command> [options]``. Output: the command's work, progress on
stderr, a summary at the end, and the exit code: 0 done (items may have been
skipped, and are listed), 1 the run failed (one line says why), 2 the
configuration or the arguments are invalid.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import __version__

STAGES = {
    "fetch": "Read the collection from its source and record every item and image.",
    "embed": "Compute a CNN vector for every image that lacks one (cached by image hash and model).",
    "index": "Build one Annoy index per category and every item's nearest neighbours.",
    "map": "Lay out t-SNE maps per category and for all items.",
    "render": "Write the static site (pages, JSON API, thumbnails) and publish it atomically.",
    "build": "Run fetch, embed, index, map and render: the whole site, doing only what changed.",
}


# Commands that answer questions about a build instead of making one.
TOOLS = {
    "query": "Find the items that look most like an image (a file or an http(s) URL), "
             "embedded with the model the site was built with.",
    "compare": "Compare two models: how many of every item's top-k neighbours they share, "
               "and a page of the items where they disagree most.",
    "evaluate": "Score the current build against ground-truth groups of the same picture: "
                "hit@1, hit@3, hit@5 and mean reciprocal rank per category.",
}


class RunError(RuntimeError):
    """A failure already phrased for the user."""


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", type=Path, default=None, metavar="FILE",
                        help="settings file (default: config.yaml in the current folder)")
    parser.add_argument("--images", type=Path, metavar="DIR",
                        help="build from a plain folder instead: each subfolder is a category, each image an item")
    parser.add_argument("--out", type=Path, metavar="SITE",
                        help="output folder (overrides output_dir; with --images, state is kept beside it)")
    loud = parser.add_mutually_exclusive_group()
    loud.add_argument("-v", "--verbose", action="store_true", help="list every skipped file and stage details")
    loud.add_argument("-q", "--quiet", action="store_true", help="no progress bars or stage lines, only errors")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="archive-sim",
        description="Build a static 'Liknande' (similar items) site for an image archive.")
    parser.add_argument("--version", action="version", version=f"archive-sim {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in STAGES.items():
        sub = commands.add_parser(name, help=text, description=text)
        _common(sub)
        if name in ("map", "build"):
            sub.add_argument("--relayout", action="store_true",
                             help="lay the maps out from scratch (default: keep positions, place new items)")
        if name in ("fetch", "build"):
            sub.add_argument("--allow-shrink", action="store_true",
                             help="accept a source that lists no items or lost more than fetch.max_shrink "
                                  "of them (default: stop and change nothing)")
    serve = commands.add_parser("serve", help="Preview the built site on a local web server.",
                                description="Preview the built site on a local web server.")
    _common(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 picks a free one)")
    _add_tools(commands)
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: expected 1 or more")
    return value


def _add_tools(commands) -> None:
    query = commands.add_parser("query", help=TOOLS["query"], description=TOOLS["query"])
    _common(query)
    query.add_argument("image", metavar="IMAGE", help="an image file, or an http(s) URL to download it from")
    query.add_argument("--category", metavar="C", help="search this category only (default: all)")
    query.add_argument("-k", type=_positive, default=10, help="how many items to list (default: 10)")
    query.add_argument("--json", action="store_true", help="print JSON for scripts instead of a table")
    compare = commands.add_parser("compare", help=TOOLS["compare"], description=TOOLS["compare"])
    _common(compare)
    compare.add_argument("--model", action="append", required=True, metavar="NAME", dest="models",
                         help="a model name as in model.name; give exactly two (vectors are cached like a build's)")
    compare.add_argument("-k", type=_positive, default=4, help="neighbours per item to compare (default: 4)")
    compare.add_argument("--html", type=Path, metavar="FILE",
                         help="page of the items they disagree on most (default: compare-A-B.html here)")
    compare.add_argument("--show", type=_positive, default=30, help="items on that page (default: 30)")
    compare.add_argument("--json", action="store_true", help="print JSON for scripts instead of a table")
    evaluate = commands.add_parser("evaluate", help=TOOLS["evaluate"], description=TOOLS["evaluate"])
    _common(evaluate)
    evaluate.add_argument("groups", type=Path, metavar="GROUPS.json",
                          help='groups of items showing the same picture: {"groups": [{"items": [id, ...]}, ...]}')
    evaluate.add_argument("--ranking", choices=("site", "similarity", "phash"), default="site",
                          help="site: as item pages list them, copies first (default); similarity: by "
                               "descriptor similarity alone; phash: by perceptual hash alone")
    evaluate.add_argument("--json", action="store_true", help="print JSON for scripts instead of tables")


def _tool(args: argparse.Namespace, settings) -> int:
    """query and evaluate only read the state; compare adds vectors, so it takes the lock."""
    from .state_store import StateStore
    from .evaluation import GroupsError
    from .progress import Report

    if not (settings.state_dir / "state.sqlite").exists():
        raise RunError(f"{settings.state_dir}: no build state here; run 'archive-sim build' first")
    if args.command == "query":
        from .commands import query

        with StateStore(settings.state_dir) as store:
            query.run(settings, store, args.image, args.category, args.k, args.json)
    elif args.command == "evaluate":
        from .commands import evaluate

        try:
            with StateStore(settings.state_dir) as store:
                evaluate.run(settings, store, args.groups, args.ranking, args.json)
        except GroupsError as exc:
            print(f"archive-sim: {exc}", file=sys.stderr)
            return 2
    else:
        from .commands import compare

        report = Report(verbosity=0 if args.quiet or args.json else 2 if args.verbose else 1)
        with _exclusive(settings.state_dir), StateStore(settings.state_dir) as store:
            compare.run(settings, store, args.models, args.k, args.html, args.show, args.json, report)
        if report.problems and not args.quiet:
            print(report.summary(), file=sys.stderr)
    return 0


def _settings(args: argparse.Namespace):
    from .config import load_settings, settings_for_folder

    if args.images is not None:
        if args.config is not None:
            raise RunError("give either --config or --images, not both")
        if not args.images.is_dir():
            raise RunError(f"--images {args.images}: not a folder")
        return settings_for_folder(args.images, args.out or Path("site"))
    settings = load_settings(args.config or Path("config.yaml"))
    if args.out is not None:
        settings = settings.model_copy(update={"output_dir": args.out.resolve()})
    return settings


@contextmanager
def _exclusive(state_dir: Path) -> Iterator[None]:
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


def _serve(args: argparse.Namespace) -> int:
    from .commands import serve

    site = args.out.resolve() if args.out is not None and args.config is None else _settings(args).output_dir
    if not (site / "index.html").exists():
        raise RunError(f"{site}: no site here yet; run 'archive-sim build' first")
    serve.run(site, args.host, args.port, args.verbose)
    return 0


def _run(args: argparse.Namespace) -> int:
    from .config import ConfigError

    if args.command == "serve":
        return _serve(args)
    try:
        settings = _settings(args)
    except ConfigError as exc:
        print(f"archive-sim: invalid configuration: {exc}", file=sys.stderr)
        return 2
    if args.command in TOOLS:
        return _tool(args, settings)
    import importlib

    from .state_store import StateStore
    from .progress import Report

    module = importlib.import_module(f".commands.{args.command}", __package__)
    report = Report(verbosity=0 if args.quiet else 2 if args.verbose else 1)
    from .commands import RunOptions

    options = RunOptions(relayout=getattr(args, "relayout", False),
                         allow_shrink=getattr(args, "allow_shrink", False))
    with _exclusive(settings.state_dir), StateStore(settings.state_dir) as store:
        module.run(settings, store, report, options)
    if not args.quiet:
        print(report.summary(), file=sys.stderr)
    if args.command in ("build", "render"):
        how = f"--config {args.config}" if args.config else ""
        if args.out is not None or args.images is not None:
            how = f"--out {settings.output_dir}"
        print(f"Site written to {settings.output_dir}. View it with: archive-sim serve {how}".rstrip(),
              file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # TensorFlow's start-up chatter (CPU features, oneDNN) is noise to a user.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from .embed.backbones import BackboneError
    from .interrupts import exit_code, signals_raise
    from .publish import PublishError

    try:
        with signals_raise():
            return _run(args)
    except BackboneError as exc:
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
