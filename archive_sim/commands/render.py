"""``archive-sim render``: write the site and publish it in one step.

Input: items with vectors, neighbour lists and map points from the state store.
Output: the complete site in ``output_dir`` (built in a staging folder beside it,
then swapped in). Thumbnails are cached in ``<state>/media`` by content hash.
"""

from __future__ import annotations

from ..config import Settings
from ..embed.descriptors import descriptor_model_id
from ..progress import Report
from ..site.arosenius import write_arosenius
from ..site.media import make_media
from ..site.model import media_sizes
from ..site.output_tree import check_output_dir, locked, publish, staging_dir
from ..site.search import MISSING, pagefind_executable, write_index
from ..site.workers import RenderWorkers, render_site, worker_count
from ..state_store import StateStore
from . import RunOptions, stage_command


class NothingToRenderError(RuntimeError):
    pass


def run(settings: Settings, store: StateStore, report: Report, options: RunOptions = RunOptions()) -> int:
    with report.stage("render") as stage, locked(settings.output_dir):
        mid = descriptor_model_id(settings.model)
        out = settings.output_dir
        check_output_dir(out)
        items = store.items_with_vectors(mid)
        if not items:
            raise NothingToRenderError(
                "no items with vectors to render: run 'archive-sim build' (or fetch and embed) first, "
                "and check that the source holds images")
        cache = settings.state_dir / "media"
        sizes = media_sizes(settings.map.thumbnail_size)
        staging = staging_dir(out)
        # The render's processes start up while the thumbnails are made.
        with RenderWorkers(settings, staging, out, cache, worker_count(settings, len(items))) as workers:
            with report.progress(len(items), "thumbnails") as advance:
                made, failed = make_media(items, cache, sizes, settings.model.workers, advance)
            for item_id, reason in failed.items():
                report.problem(item_id, reason)
            store.set_problems("render", failed)
            items = [it for it in items if it.id not in failed]
            with report.progress(len(items), "pages", unit="page") as advance:
                writer = render_site(settings, store, staging, out, cache, frozenset(failed), advance, items=items,
                                     workers=workers)
        result, tree = writer.result, writer.tree
        if settings.site.find and writer.find_unavailable is not None:
            report.say(f"Find by image left out of the site: {writer.find_unavailable}")
        executable = pagefind_executable()
        search_parts = []
        if writer.search_plan is not None and executable is not None:
            with report.stage("search") as search_stage:
                found = write_index(tree, writer.search_plan, settings.site.language, executable,
                                    settings.site.processes)
                search_parts = found.parts
                search_stage.note = (f"{found.records} items; {found.indexed} of {found.indexes} "
                                     f"indexes made anew, {found.files} files"
                                     + (f"; {found.hidden} records of items gone or changed hidden" if found.hidden
                                        else ""))
        elif settings.site.search:
            report.say(MISSING)
        if settings.compat == "arosenius":
            write_arosenius(writer.json, store, mid, items)  # nearest_neighbors/, tsne_data/
        report.notes += result.notes
        for item_id, reason in result.map_problems.items():
            report.problem(item_id, reason)
        site_id = tree.seal()
        tree.prune()  # what the replaced site had and this one has not
        publish(staging, out)
        changes = tree.changes
        # After the swap: a crash before this line leaves a manifest whose inodes no
        # longer match, which only costs rewriting those files next time.
        store.replace_site_manifest(changes.files, site_id, changes.media, live=tree.manifest)
        store.replace_atlas_cells(result.atlas_cells)
        store.replace_search_parts(search_parts)
        report.counts["pages"] = result.pages
        report.counts["files written"] = len(changes.written)
        report.written = changes.written
        for rel in changes.written:
            report.detail(f"wrote {rel}")
        stage.note = (f"{result.pages} pages, {result.json_files} JSON files; {changes.rendered} made, "
                      f"{len(changes.written)} files written, {changes.unchanged} unchanged; "
                      f"{made} new thumbnails -> {out}")
        return result.pages


COMMAND = stage_command(
    "render", run, says_where=True,
    help="Write the static site (pages, JSON API, thumbnails) and publish it atomically.",
    description="""Write the static site from the state: item and category pages, the JSON API,
thumbnails and the map. The site is made in a folder beside output_dir and swapped in
at once; files that did not change are not written again.""")
