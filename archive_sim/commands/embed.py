"""``archive-sim embed``: a vector for every catalogued image that lacks one.

Input: the catalog and the model settings. Output: L2-normalised vectors in the
state store keyed by (content hash, model id). Images already embedded with this
model are not touched, and the model is not even loaded when nothing is missing.
"""

from __future__ import annotations

from ..catalog import StateStore
from ..config import Settings
from ..embed.backbones import load_backbone, model_id
from ..embed.pipeline import embed_images
from . import RunOptions
from ..faults import checkpoint
from ..report import Report


def run(settings: Settings, store: StateStore, report: Report, options: RunOptions = RunOptions()) -> int:
    with report.stage("embed") as stage:
        mid = model_id(settings.model.name, settings.model.weights)
        items = store.items()
        path_of: dict[str, str] = {}
        for it in items:
            path_of.setdefault(it.content_hash, it.image)
        missing = store.missing_vectors(mid, path_of)
        if not missing:
            store.set_problems("embed", {})
            stage.note = f"0 images embedded, {len(path_of)} cached ({settings.model.name})"
            report.counts["embedded"] = 0
            return 0
        backbone = load_backbone(settings.model.name, settings.model.weights)
        with report.progress(len(missing), f"embed ({settings.model.name})") as advance:
            def stored(count: int) -> None:
                advance(count)
                checkpoint("embed:batch")

            result = embed_images([(h, path_of[h]) for h in missing], backbone, store,
                                  settings.model.batch_size, settings.model.workers, stored)
        problems = {path_of[h]: reason for h, reason in result.failed.items()}
        store.set_problems("embed", problems)
        for subject, reason in problems.items():
            report.problem(subject, reason)
        report.counts["embedded"] = result.embedded
        stage.note = (f"{result.embedded} images embedded, {len(path_of) - len(missing)} cached, "
                      f"{len(problems)} failed ({settings.model.name})")
        return result.embedded
