"""``archive-sim embed``: a vector for every catalogued image that lacks one.

Input: the catalog and the model settings. Output: L2-normalised vectors in the
state store keyed by (content hash, model id). Images already embedded with this
model are not touched, and the model is not even loaded when nothing is missing.
"""

from __future__ import annotations

from ..state_store import StateStore
from ..config import Settings
from ..embed.backbones import BackboneError, configure_threads
from ..embed.descriptors import descriptor_model_id, load_descriptor
from ..embed.pipeline import available_cores, embed_images
from . import RunOptions, stage_command
from ..crash_points import checkpoint
from ..progress import Report


def run(settings: Settings, store: StateStore, report: Report, options: RunOptions = RunOptions()) -> int:
    with report.stage("embed") as stage:
        mid = descriptor_model_id(settings.model)
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
        with report.progress(len(missing), f"embed ({settings.model.name})") as advance:
            def stored(count: int) -> None:
                advance(count)
                checkpoint("embed:batch")

            jobs = [(h, path_of[h]) for h in missing]
            if settings.model.scheduler:
                try:
                    from ..embed.distributed import connect, embed_on_cluster
                except ImportError:
                    raise BackboneError(f"model.scheduler = {settings.model.scheduler!r}: Dask is not installed "
                                        "(pip install 'archive-sim[distributed]')") from None
                with connect(settings.model.scheduler) as client:
                    result = embed_on_cluster(jobs, settings.model.name, settings.model.weights, store, client,
                                              settings.model.batch_size, decode_threads=settings.model.workers,
                                              progress=stored, descriptor=settings.model.descriptor)
            else:
                configure_threads(available_cores())  # the CPUs this process may use, not the host's
                result = embed_images(jobs, load_descriptor(settings.model), store,
                                      settings.model.batch_size, settings.model.workers, stored)
        problems = {path_of[h]: reason for h, reason in result.failed.items()}
        store.set_problems("embed", problems)
        for subject, reason in problems.items():
            report.problem(subject, reason)
        report.counts["embedded"] = result.embedded
        stage.note = (f"{result.embedded} images embedded, {len(path_of) - len(missing)} cached, "
                      f"{len(problems)} failed ({settings.model.name})")
        return result.embedded


COMMAND = stage_command(
    "embed", run,
    help="Compute a CNN vector for every image that lacks one (cached by image hash and model).",
    description="""Compute a vector for every image that has none yet with the configured model
(model: in the settings). Vectors are kept by image content and model, so an image
that did not change is never embedded again.""")
