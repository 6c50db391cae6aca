"""``archive-sim evaluate GROUPS.json``: how well the current build finds the same picture.

Input: a ground-truth file of groups of items that show the same picture, and the
state of the last build (its neighbour lists and perceptual hashes). Output: hit@1,
hit@3, hit@5 and mean reciprocal rank per category and per transform, as tables on
stdout or one JSON document (``--json``). ``--ranking`` chooses what is scored: the
lists as item pages show them (copies first, then neighbours confirmed by local
matches), the re-ranked lists without copies first, the lists by similarity alone
(the first stage), or perceptual hashes alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from ..state_store import StateStore
from ..config import Settings
from ..copy_detection import copies_first, hash_ranking
from ..embed.descriptors import descriptor_model_id
from ..evaluation import Evaluation, GroupsError, evaluate, format_table, load_groups
from . import Command, UsageError, add_settings_options, existing_state, settings_from

RANKINGS = {
    "site": "as item pages show them: copies first, then confirmed by local matches, then by similarity",
    "reranked": "confirmed by local matches first, then by similarity (no copies first)",
    "similarity": "the neighbour lists by descriptor similarity alone",
    "phash": "perceptual-hash distance alone (same category)",
}


class EvaluateError(RuntimeError):
    """Nothing to score; the message says what to run first."""


def rankings(store: StateStore, settings: Settings, how: str) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Each item's ranked other items under ``how``, and each item's category."""
    mid = descriptor_model_id(settings.model)
    items = store.items_with_vectors(mid)
    category_of = {it.id: it.category for it in items}
    if how == "phash":
        known = store.phashes(it.content_hash for it in items)
        if not known:
            raise EvaluateError("no perceptual hashes yet: run 'archive-sim build' (or index) first")
        ranked = hash_ranking([it.id for it in items], [it.category for it in items],
                              [known.get(it.content_hash) for it in items], settings.neighbors.k)
        return ranked, category_of
    lists = store.neighbors(mid)
    if not lists:
        raise EvaluateError(f"no neighbour lists for {mid}: run 'archive-sim build' (or index) first")
    if how == "similarity":
        ordered = {i: sorted(ns, key=lambda nb: (-nb.similarity, nb.id)) for i, ns in lists.items()}
    elif how == "reranked":
        ordered = lists
    else:
        ordered = {i: copies_first(ns) for i, ns in lists.items()}
    return {i: [nb.id for nb in ns] for i, ns in ordered.items()}, category_of


def report_text(result: Evaluation, groups_file: Path, how: str, model: str) -> str:
    lines = [f"{groups_file}: {result.overall.queries} queries, ranking {how} ({RANKINGS[how]}), model {model}", "",
             format_table(result.by_category, "category"), "", format_table(result.by_transform, "transform")]
    if result.missing:
        shown = ", ".join(result.missing[:10]) + (" ..." if len(result.missing) > 10 else "")
        lines += ["", f"not in the build ({len(result.missing)}): {shown}"]
    return "\n".join(lines)


def run(settings: Settings, store: StateStore, groups_file: Path, how: str = "site", as_json: bool = False,
        out: TextIO | None = None) -> Evaluation:
    out = out or sys.stdout
    groups = load_groups(groups_file)
    ranked, category_of = rankings(store, settings, how)
    result = evaluate(ranked, groups, category_of)
    if result.overall.queries == 0:
        raise EvaluateError(f"{groups_file}: none of its groups has two items in this build "
                            f"(first missing: {result.missing[0] if result.missing else '-'})")
    model = descriptor_model_id(settings.model)
    if as_json:
        document = {"groups_file": str(groups_file), "ranking": how, "model": model, **result.as_dict()}
        print(json.dumps(document, indent=1, ensure_ascii=False), file=out)
    else:
        print(report_text(result, groups_file, how, model), file=out)
    return result


def _arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_options(parser)
    parser.add_argument("groups", type=Path, metavar="GROUPS.json",
                        help='groups of items showing the same picture: {"groups": [{"items": [id, ...]}, ...]}')
    parser.add_argument("--ranking", choices=tuple(RANKINGS), default="site",
                        help="site: as item pages list them, copies first (default); reranked: neighbours "
                             "confirmed by local matches first; similarity: by descriptor similarity alone; "
                             "phash: by perceptual hash alone")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts instead of tables")


def _main(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    existing_state(settings)
    try:
        with StateStore(settings.state_dir) as store:
            run(settings, store, args.groups, args.ranking, args.json)
    except GroupsError as exc:
        raise UsageError(str(exc)) from None
    return 0


COMMAND = Command(
    "evaluate", "Score the build against ground-truth groups of the same picture.",
    """Score the current build against ground-truth groups of items that show the same
picture: hit@1, hit@3, hit@5 and mean reciprocal rank per category and per transform.
Reads the state of the last build and changes nothing.""",
    _arguments, _main,
    epilog="""examples:
  archive-sim evaluate groups.json
  archive-sim evaluate groups.json --ranking phash --json""")
