"""Item pages written by several processes: the same site as one process writes, and
no worker outlives a build that is killed.

A small collection of real photographs is built with stand-in vectors (no CNN), then
its site is rendered with one, two and three processes; the worker threshold is set
to zero and the chunks to three items, so that a dozen items make several tasks.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archive_sim.config import Settings, load_settings
from archive_sim.site import workers as render_workers
from archive_sim.site.output_tree import OutputTree
from archive_sim.site.pages import SiteWriter
from archive_sim.site.workers import RenderWorkers, load_site_model, plan_tasks, render_site
from archive_sim.state_store import StateStore

from fake_archive import build_with_stand_in_vectors
from repo_images import photographs

PHOTOS = photographs(under_bytes=150_000)[:14]


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    root = tmp_path_factory.mktemp("workers")
    for n, photo in enumerate(PHOTOS):
        folder = root / "collection" / ("portraits" if n % 3 else "streets")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(photo, folder / photo.name)
    config = root / "config.yaml"
    config.write_text("site: {title: Verkstad, items_per_page: 4}\nsource: {path: collection}\n"
                      "neighbors: {k: 5}\noutput_dir: site\n", encoding="utf-8")
    build_with_stand_in_vectors(config)
    return load_settings(config)


def render(settings: Settings, staging: Path, processes: int) -> tuple[SiteWriter, int]:
    """Write the whole site into ``staging`` with ``processes`` processes; also count progress."""
    reported = []
    with StateStore(settings.state_dir) as store:
        # Files unchanged since the last build are carried over from the live site, by
        # this process and by the workers alike.
        writer = render_site(settings, store, staging, settings.output_dir, settings.state_dir / "media",
                             progress=reported.append, processes=processes, min_items=0, chunk=3)
    assert len(writer.model.items) == len(PHOTOS)
    return writer, sum(reported)


def contents(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("processes", [2, 3])
def test_several_processes_write_the_same_site_as_one(settings: Settings, tmp_path: Path, processes: int) -> None:
    alone, progress_alone = render(settings, tmp_path / "one", 1)
    shared, progress_shared = render(settings, tmp_path / "many", processes)
    assert contents(tmp_path / "many") == contents(tmp_path / "one")
    assert (shared.result.pages, shared.result.json_files) == (alone.result.pages, alone.result.json_files)
    assert (shared.tree.changes.unchanged, sorted(shared.tree.changes.written)) == (
        alone.tree.changes.unchanged, sorted(alone.tree.changes.written))
    assert alone.tree.changes.unchanged > len(PHOTOS), "item pages were carried over from the live site"
    assert set(shared.tree.changes.files) == set(alone.tree.changes.files)
    assert progress_alone == progress_shared == len(PHOTOS), "every item page is reported once"


def test_the_render_command_starts_workers_before_its_thumbnails_and_builds_the_same_site(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``archive-sim render`` spawns its workers before it makes thumbnails and gives
    them their tasks later (``RenderWorkers.start``): the site is the one a single
    process builds."""
    monkeypatch.setattr(render_workers, "MIN_ITEMS", 0)
    sites = {}
    for processes in (1, 2):
        root = tmp_path / f"processes-{processes}"
        for n, photo in enumerate(PHOTOS[:6]):
            folder = root / "collection" / ("portraits" if n % 3 else "streets")
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(photo, folder / photo.name)
        config = root / "config.yaml"
        config.write_text(f"site: {{title: Verkstad, processes: {processes}}}\nsource: {{path: collection}}\n"
                          "neighbors: {k: 3}\noutput_dir: site\n", encoding="utf-8")
        build_with_stand_in_vectors(config)
        sites[processes] = contents(root / "site")
    assert len(sites[1]) > 20 and sites[2] == sites[1]


def test_a_worker_carries_over_the_live_files_it_would_write_again(settings: Settings, tmp_path: Path) -> None:
    """Every task, maps included, done by a worker (this process claims none): a page
    whose key the live site's copy has is linked from it, neither rendered nor written."""
    with StateStore(settings.state_dir) as store:
        model = load_site_model(settings, store)
        tasks = plan_tasks(model, store.map_sizes())
        writer = SiteWriter(OutputTree(tmp_path / "staging", settings.output_dir, store.site_manifest()), settings,
                            model)
    assert [t.scope for t in tasks if t.scope], "the state has maps"
    with RenderWorkers(settings, tmp_path / "staging", settings.output_dir, settings.state_dir / "media", 1) as workers:
        workers.start(frozenset(), tasks)
        workers.merge_into(writer)
    assert writer.result.pages == len(PHOTOS) + len(model.map_scopes(""))
    changes = writer.tree.changes
    assert changes.written == [] and changes.unchanged == writer.result.pages + writer.result.json_files
    assert changes.rendered == 0, "a page whose key is unchanged was rendered again"


DRIVER = """
import os, signal, sys
from pathlib import Path
from archive_sim.state_store import StateStore
from archive_sim.config import load_settings
from archive_sim.site.workers import RenderWorkers, load_site_model, plan_tasks

settings = load_settings(Path(sys.argv[1]))
with StateStore(settings.state_dir) as store:
    tasks = plan_tasks(load_site_model(settings, store), {scope: 1 for scope in store.map_scopes()})
cache = settings.state_dir / "media"
with RenderWorkers(settings, Path(sys.argv[2]), settings.output_dir, cache, 2) as workers:
    workers.start(frozenset(), tasks)
    print(*workers.pids, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_workers_die_with_a_killed_build(settings: Settings, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent),
                                                                      os.environ.get("PYTHONPATH")]))}
    killed = subprocess.run([sys.executable, "-c", DRIVER, str(settings.state_dir.parent / "config.yaml"),
                             str(tmp_path / "staging")], capture_output=True, text=True, env=env, timeout=120)
    assert killed.returncode == -9, killed.stderr
    pids = [int(p) for p in killed.stdout.split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(_running(pid) for pid in pids):
        time.sleep(0.05)
    assert not [pid for pid in pids if _running(pid)], "a render worker outlived the build that started it"
    # Left alone, the workers would have written their item pages (a dozen take
    # them a second or two); orphaned, they stopped before writing anything.
    staging = tmp_path / "staging"
    assert not staging.exists() or not [p for p in staging.rglob("*") if p.is_file()]


def _running(pid: int) -> bool:
    try:
        return not Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except OSError:
        return False


def test_a_staging_folder_that_holds_the_old_site_never_changes_the_live_one(settings: Settings, tmp_path: Path) -> None:
    """The staging folder starts as the replaced site (output_tree.staging_dir), whose files
    are mostly hard links to the live site's: a changed file must replace the link,
    never be written through it."""
    from archive_sim.state_store import SiteFile
    from archive_sim.site.model import dumps

    live, staging = tmp_path / "live", tmp_path / "staging"
    (live / "api").mkdir(parents=True)
    (staging / "api").mkdir(parents=True)
    kept, changed, copied, stale = (f"api/{name}.json" for name in ("kept", "changed", "copied", "stale"))
    manifest = {}
    for rel, document in ((kept, {"a": 1}), (changed, {"b": 1}), (copied, {"c": 1})):
        data = dumps(document).encode()
        (live / rel).write_bytes(data)
        st = (live / rel).stat()
        manifest[rel] = SiteFile(hashlib.sha256(data).hexdigest(), st.st_size, st.st_mtime_ns, st.st_ino)
    os.link(live / kept, staging / kept)
    os.link(live / changed, staging / changed)
    shutil.copy2(live / copied, staging / copied)  # same bytes, another file
    (staging / stale).write_text("{}")
    tree = OutputTree(staging, live, manifest)
    tree.put_data(kept, dumps({"a": 1}))
    tree.put_data(changed, dumps({"b": 2}))
    tree.put_data(copied, dumps({"c": 1}))
    assert tree.prune() == 1 and not (staging / stale).exists()

    assert (live / changed).read_text() == dumps({"b": 1}), "the live file was written through a hard link"
    assert (staging / changed).read_text() == dumps({"b": 2})
    assert (staging / kept).stat().st_ino == (live / kept).stat().st_ino
    assert (staging / copied).stat().st_ino == (live / copied).stat().st_ino, "the copy is replaced by the live file"
    assert tree.changes.written == [changed] and tree.changes.unchanged == 2


def test_a_staging_folder_whose_files_are_known_is_pruned_without_a_walk(
        settings: Settings, tmp_path: Path, monkeypatch) -> None:
    """At 100,000 items a walk over the spare site's folders was a quarter of a rebuild;
    its manifest, kept by the state store, says what it holds."""
    staging = tmp_path / "staging"
    known = {"a/kept/index.html", "a/gone/index.html", "api/old.json", "b/c/index.html"}
    for rel in known:
        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        (staging / rel).write_text("old")
    tree = OutputTree(staging, None, present=known)
    tree.put_data("a/kept/index.html", "Kept")

    def no_walk(*args, **kwargs):
        raise AssertionError("the staging folder was walked")

    monkeypatch.setattr(os, "walk", no_walk)
    assert tree.prune() == 3
    files = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
    assert files == ["a/kept/index.html"]
    assert not (staging / "a/gone").exists() and not (staging / "b").exists() and not (staging / "api").exists()


def test_a_build_where_nothing_changed_keeps_the_manifest_rows_and_the_spare_is_the_live_sites(
        tmp_path: Path) -> None:
    """After a build that changed nothing, the manifest is not written again (800,000 rows at
    100,000 items), and the spare site, which the next build fills, is known to hold the
    live site's files."""
    from archive_sim.state_store import SiteFile

    def files(*names: str) -> dict[str, SiteFile]:
        return {name: SiteFile(hashlib.sha256(name.encode()).hexdigest(), 1, 2, hash(name) % 1000, "k")
                for name in names}

    with StateStore(tmp_path / "state") as store:
        store.replace_site_manifest(files("a.html", "b.html"), "site-1")
        store.replace_site_manifest(files("a.html", "c.html"), "site-2", live=store.site_manifest())
        assert store.spare_files("site-1") == {"a.html", "b.html"}
        live = store.site_manifest()
        store.replace_site_manifest(dict(live), "site-3", ["media/128/x.jpg"], live=live)
        assert store.site_manifest() == files("a.html", "c.html")
        assert store.spare_files("site-2") == {"a.html", "c.html"} and store.spare_files("site-1") is None
        assert store.site_media() == {"media/128/x.jpg"}
        store.replace_site_manifest(files("d.html"), "site-4", live=store.site_manifest())
        assert store.spare_files("site-3") == {"a.html", "c.html"}
        assert store.site_manifest() == files("d.html")
