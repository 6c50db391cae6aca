"""``archive-sim compare --model A --model B``: how far two models agree on what looks alike.

Input: the catalog, two model names (each with the configured descriptor) and k.
Vectors missing for either model are embedded and cached like a build's (by image
content and model id). Output: for every item, how many of its top-k neighbours
(exact cosine, within its category) the two models share, as a table of counts and
shares; the items where they disagree most as a self-contained HTML page with
thumbnails (and all of it as JSON with ``--json``). With ``rerank.enabled`` the same
counts follow for the lists re-ranked by local matches (each model's first
``rerank.candidates`` checked, as the index stage does).
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..state_store import CatalogItem, Neighbor, StateStore
from ..config import Settings
from ..embed.descriptors import descriptor_model_id, load_descriptor, searchable
from ..embed.pipeline import embed_images
from ..fsutil import atomic_write_text
from ..imaging import ImageError, load_rgb, save_jpeg
from ..progress import Report
from ..slugs import slugify
from . import Command, add_settings_options, existing_state, positive, settings_from, state_lock, verbosity

THUMBNAIL = 120


class CompareError(RuntimeError):
    """The comparison cannot run; the message says why."""


@dataclass(frozen=True)
class Agreement:
    k: int
    shared: dict[str, int]            # item id -> neighbours both models list in their top k
    possible: dict[str, int]          # item id -> min(k, members of its category - 1)
    top_a: dict[str, list[str]]
    top_b: dict[str, list[str]]

    def counts(self) -> list[int]:
        """counts[s]: the items sharing exactly s of their top-k neighbours."""
        counts = [0] * (self.k + 1)
        for value in self.shared.values():
            counts[value] += 1
        return counts

    def mean_shared(self) -> float:
        return float(np.mean(list(self.shared.values()))) if self.shared else 0.0

    def disagreements(self, n: int) -> list[str]:
        """The ``n`` items the models agree on least: fewest shared, then the shared ones ranked lowest."""

        def overlap_at_ranks(item_id: str) -> float:
            a, b = self.top_a[item_id], self.top_b[item_id]
            return sum(len(set(a[:d]) & set(b[:d])) / d for d in range(1, len(a) + 1)) / max(1, len(a))

        full = [i for i in self.shared if self.possible[i] > 0]
        return sorted(full, key=lambda i: (self.shared[i] / self.possible[i], overlap_at_ranks(i), i))[:n]


def top_k(vectors: np.ndarray, ids: list[str], categories: list[str], k: int, block: int = 1024) -> dict[str, list[str]]:
    """Each item's ``k`` most similar others of its category by exact cosine; ties by id."""
    result: dict[str, list[str]] = {}
    for category in sorted(set(categories)):
        rows = sorted((i for i, c in enumerate(categories) if c == category), key=lambda i: ids[i])
        sub = vectors[rows]
        for start in range(0, len(rows), block):
            sims = sub[start:start + block] @ sub.T
            for r in range(sims.shape[0]):
                sims[r, start + r] = -np.inf  # never its own neighbour
                order = np.lexsort((np.arange(len(rows)), -sims[r]))[:min(k, len(rows) - 1)]
                result[ids[rows[start + r]]] = [ids[rows[j]] for j in order]
    return result


def agreement(top_a: dict[str, list[str]], top_b: dict[str, list[str]], k: int) -> Agreement:
    shared = {i: len(set(top_a[i]) & set(top_b[i])) for i in top_a}
    possible = {i: len(top_a[i]) for i in top_a}
    return Agreement(k, shared, possible, top_a, top_b)


def format_table(result: Agreement, names: tuple[str, str]) -> str:
    total = len(result.shared)
    counts = result.counts()
    lines = [f"{names[0]} vs {names[1]}: top-{result.k} neighbours shared, {total} items",
             f"{'shared':>8}  {'items':>7}  {'share':>7}"]
    for s in range(result.k, -1, -1):
        lines.append(f"{f'{s}/{result.k}':>8}  {counts[s]:>7}  {counts[s] / total if total else 0:>7.1%}")
    lines.append(f"mean shared: {result.mean_shared():.2f} of {result.k}")
    short = sum(1 for i in result.shared if result.possible[i] < result.k)
    if short:
        lines.append(f"({short} items are in categories with {result.k} or fewer items and have fewer neighbours)")
    return "\n".join(lines)


def _thumbnail(item: CatalogItem, cache: Path) -> str:
    """A small JPEG as a data URI, so that the page is one file that works anywhere."""
    path = cache / f"{item.content_hash[:24]}.jpg"
    if not path.exists():
        try:
            save_jpeg(load_rgb(Path(item.image), min_side=THUMBNAIL), path, THUMBNAIL, quality=75)
        except (ImageError, OSError):
            return ""
    return "data:image/jpeg;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font: 15px/1.45 system-ui, sans-serif; margin: 1.5rem; color: #1b1b1b; background: #fafafa; }}
table.counts {{ border-collapse: collapse; margin: 1rem 0; }} .counts td, .counts th {{ padding: .2rem .8rem; text-align: right; }}
.row {{ display: grid; grid-template-columns: 10rem 1fr 1fr; gap: 1rem; padding: 1rem 0; border-top: 1px solid #ddd; }}
.strip {{ display: flex; gap: .4rem; flex-wrap: wrap; align-items: flex-start; }}
figure {{ margin: 0; width: {size}px; font-size: 12px; overflow-wrap: anywhere; }}
img {{ max-width: 100%; max-height: {size}px; display: block; box-sizing: border-box; border: 3px solid transparent; }}
.shared img {{ border-color: #2e7d32; }} .muted {{ color: #666; }}
</style></head><body>
<h1>{title}</h1>
<p class="muted">Each item's {k} most similar items of its category, by exact cosine similarity, for both models.
A green frame marks a neighbour both models list. The items where the models agree least come first.</p>
<table class="counts"><tr><th>shared</th><th>items</th><th>share</th></tr>{count_rows}</table>
<p>Mean shared: {mean:.2f} of {k}.</p>
{rows}
</body></html>
"""


def write_page(path: Path, result: Agreement, names: tuple[str, str], items: dict[str, CatalogItem],
               shown: list[str], cache: Path) -> None:
    def figure(item_id: str, shared: bool) -> str:
        it = items[item_id]
        src = _thumbnail(it, cache)
        label = html.escape(it.title if it.title == it.id else f"{it.title} ({it.id})")
        image = f'<img src="{src}" alt="{html.escape(it.title)}">' if src else ""
        return f'<figure class="{"shared" if shared else ""}">{image}<figcaption>{label}</figcaption></figure>'

    total = len(result.shared)
    counts = result.counts()
    count_rows = "".join(f"<tr><td>{s}/{result.k}</td><td>{counts[s]}</td><td>{counts[s] / max(1, total):.1%}</td></tr>"
                         for s in range(result.k, -1, -1))
    rows = []
    for item_id in shown:
        both = set(result.top_a[item_id]) & set(result.top_b[item_id])
        strips = []
        for name, top in zip(names, (result.top_a[item_id], result.top_b[item_id])):
            strips.append(f'<div><p class="muted">{html.escape(name)}</p><div class="strip">'
                          + "".join(figure(o, o in both) for o in top) + "</div></div>")
        rows.append(f'<section class="row"><div>{figure(item_id, False)}<p class="muted">'
                    f'{result.shared[item_id]}/{result.possible[item_id]} shared · '
                    f'{html.escape(items[item_id].category)}</p></div>{"".join(strips)}</section>')
    title = f"{names[0]} vs {names[1]}: where the neighbours differ"
    atomic_write_text(path, _PAGE.format(title=html.escape(title), size=THUMBNAIL, k=result.k,
                                         count_rows=count_rows, mean=result.mean_shared(), rows="\n".join(rows)))


def _settings_for(settings: Settings, name: str) -> Settings:
    return settings.model_copy(update={"model": settings.model.model_copy(update={"name": name})})


def model_vectors(settings: Settings, store: StateStore, items: list[CatalogItem],
                  report: Report) -> tuple[str, dict[str, np.ndarray]]:
    """The model's vectors (in the space its indexes would use) for ``items``, embedding what is missing."""
    mid = descriptor_model_id(settings.model)
    path_of: dict[str, str] = {}
    for it in items:
        path_of.setdefault(it.content_hash, it.image)
    missing = store.missing_vectors(mid, path_of)
    if missing:
        backbone = load_descriptor(settings.model)
        with report.progress(len(missing), f"embed ({settings.model.name})") as advance:
            result = embed_images([(h, path_of[h]) for h in missing], backbone, store,
                                  settings.model.batch_size, settings.model.workers, advance)
        for content_hash, reason in result.failed.items():
            report.problem(path_of[content_hash], f"{settings.model.name}: {reason}")
    still_missing = set(store.missing_vectors(mid, path_of))
    have = [h for h in path_of if h not in still_missing]
    raw = store.vectors(mid, have) if have else np.zeros((0, 1), np.float32)
    vectors, _ = searchable(raw, settings.model.descriptor)
    return mid, dict(zip(have, vectors))


def reranked_top_k(settings: Settings, store: StateStore, usable: list[CatalogItem], vectors: np.ndarray,
                   k: int, report: Report) -> dict[str, list[str]]:
    """Each item's top ``k`` after its first ``rerank.candidates`` (exact cosine) are re-ranked by local matches."""
    from .index import rerank_stage

    ids = [it.id for it in usable]
    row = {item_id: r for r, item_id in enumerate(ids)}
    depth = max(k, settings.rerank.candidates)
    candidates = top_k(vectors, ids, [it.category for it in usable], depth)
    lists = {i: [Neighbor(o, round(float(vectors[row[i]] @ vectors[row[o]]), 4), False) for o in others]
             for i, others in candidates.items()}
    hash_of = {it.id: it.content_hash for it in usable}
    path_by_hash = {it.content_hash: it.image for it in usable}
    reranked, _ = rerank_stage(settings, store, lists, path_by_hash, hash_of, report)
    return {i: [nb.id for nb in ns[:k]] for i, ns in reranked.items()}


def run(settings: Settings, store: StateStore, models: list[str], k: int = 4, html_path: Path | None = None,
        shown: int = 30, as_json: bool = False, report: Report | None = None, out: TextIO | None = None) -> Agreement:
    out = out or sys.stdout
    if len(models) != 2:
        raise CompareError(f"give exactly two --model options (got {len(models)})")
    if models[0] == models[1]:
        raise CompareError(f"--model {models[0]} twice: name two different models")
    if k < 1:
        raise CompareError(f"-k {k}: compare at least one neighbour")
    report = report or Report(verbosity=0)
    items = store.items()
    if not items:
        raise CompareError("the catalog is empty: run 'archive-sim fetch' (or build) first")
    mids, vectors = [], []
    for name in models:
        mid, by_hash = model_vectors(_settings_for(settings, name), store, items, report)
        mids.append(mid)
        vectors.append(by_hash)
    usable = [it for it in items if it.content_hash in vectors[0] and it.content_hash in vectors[1]]
    ids = [it.id for it in usable]
    categories = [it.category for it in usable]
    matrices = [np.stack([v[it.content_hash] for it in usable]) for v in vectors]
    tops = [top_k(m, ids, categories, k) for m in matrices]
    result = agreement(tops[0], tops[1], k)
    reranked = None
    if settings.rerank.enabled:
        reranked = agreement(*(reranked_top_k(settings, store, usable, m, k, report) for m in matrices), k)
    names = (models[0], models[1])
    by_id = {it.id: it for it in usable}
    worst = result.disagreements(shown)
    if html_path is None:
        html_path = Path.cwd() / f"compare-{slugify(models[0])}-{slugify(models[1])}.html"
    write_page(html_path, result, names, by_id, worst, settings.state_dir / "compare-thumbnails")
    if as_json:
        counts = result.counts()
        document: dict[str, Any] = {
            "version": 1, "models": mids, "k": k, "items": len(ids), "mean_shared": round(result.mean_shared(), 4),
            "shared": [{"shared": s, "items": counts[s], "share": round(counts[s] / max(1, len(ids)), 4)}
                       for s in range(k, -1, -1)],
            "disagreements": [{"id": i, "shared": result.shared[i], "a": result.top_a[i], "b": result.top_b[i]}
                              for i in worst],
            "per_item": {i: result.shared[i] for i in sorted(result.shared)},
            "html": str(html_path),
        }
        if reranked is not None:
            counts = reranked.counts()
            document["reranked"] = {
                "candidates": settings.rerank.candidates, "mean_shared": round(reranked.mean_shared(), 4),
                "shared": [{"shared": s, "items": counts[s], "share": round(counts[s] / max(1, len(ids)), 4)}
                           for s in range(k, -1, -1)],
                "per_item": {i: reranked.shared[i] for i in sorted(reranked.shared)}}
        print(json.dumps(document, indent=1, ensure_ascii=False), file=out)
    else:
        print(format_table(result, names), file=out)
        if reranked is not None:
            print(f"\nRe-ranked by local matches (the first {settings.rerank.candidates} of each list checked):",
                  file=out)
            print(format_table(reranked, names), file=out)
        print(f"\nThe {len(worst)} items they agree on least: {html_path}", file=out)
    return result


def _arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_options(parser)
    parser.add_argument("--model", action="append", required=True, metavar="NAME", dest="models",
                        help="a model name as in model.name; give exactly two (vectors are cached like a build's)")
    parser.add_argument("-k", type=positive, default=4, help="neighbours per item to compare (default: 4)")
    parser.add_argument("--html", type=Path, metavar="FILE",
                        help="page of the items they disagree on most (default: compare-A-B.html here)")
    parser.add_argument("--show", type=positive, default=30, help="items on that page (default: 30)")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts instead of a table")


def _main(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    existing_state(settings)
    # It adds vectors to the state, so it takes the lock like a build.
    report = Report(verbosity=0 if args.json else verbosity(args))
    with state_lock(settings.state_dir), StateStore(settings.state_dir) as store:
        run(settings, store, args.models, args.k, args.html, args.show, args.json, report)
    if report.problems and not args.quiet:
        print(report.summary(), file=sys.stderr)
    return 0


COMMAND = Command(
    "compare", "Compare two models: how many of every item's top-k neighbours they share.",
    """Compare two models on the collection: how many of every item's top-k neighbours
they share, and a page of the items where they disagree most. Vectors either model
lacks are computed and kept, as a build would.""",
    _arguments, _main,
    epilog="""examples:
  archive-sim compare --model efficientnet_lite0 --model MobileNetV2
  archive-sim compare --model efficientnet_lite0 --model efficientnet_lite2 -k 10 --json""")
