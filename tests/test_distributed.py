"""Embedding on a Dask cluster (its local, in-process cluster here) stores the same
vectors as one machine, batch by batch, and reports bad files and failed tasks
instead of stopping."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

distributed = pytest.importorskip("distributed")

from archive_sim.state_store import StateStore  # noqa: E402
from archive_sim.config import ConfigError, parse_settings  # noqa: E402
from archive_sim.embed import distributed as engine  # noqa: E402
from archive_sim.embed.backbones import BackboneError, load_backbone, model_id  # noqa: E402
from archive_sim.embed.pipeline import embed_images  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "samples"
NAMES = ["chelsea.png", "coffee.png", "astronaut.png", "camera.png", "rocket.jpg"]


@pytest.fixture(scope="module")
def client():
    # In-process workers: fast to start, and the test can patch what a task runs.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture()
def jobs(tmp_path: Path) -> list[tuple[str, str]]:
    broken = tmp_path / "not-an-image.jpg"
    broken.write_text("this is text, not a JPEG")
    paths = [str(SAMPLES / n) for n in NAMES[:2]] + [str(broken)] + [str(SAMPLES / n) for n in NAMES[2:]]
    return [(f"h{i}", p) for i, p in enumerate(paths)]


def test_cluster_stores_the_same_vectors_as_one_machine(client, jobs, tmp_path: Path) -> None:
    progress: list[int] = []
    with StateStore(tmp_path / "cluster") as store:
        result = engine.embed_on_cluster(jobs, "efficientnet_lite0", "imagenet", store, client, batch_size=2,
                                         images_per_task=2, progress=progress.append)
        good = [h for h, _ in jobs if h != "h2"]
        on_cluster = store.vectors(model_id("efficientnet_lite0"), good)
    assert result.embedded == 5
    assert set(result.failed) == {"h2"} and "not an image" in result.failed["h2"]
    assert progress == [2, 2, 2]  # one call per stored task of two, failed images counted too

    backbone = load_backbone("efficientnet_lite0")
    with StateStore(tmp_path / "local") as store:
        embed_images(jobs, backbone, store, batch_size=2)
        local = store.vectors(backbone.model_id, good)
    np.testing.assert_allclose(on_cluster, local, atol=1e-5)

    # Each worker built the model once and kept it for its later tasks.
    built = client.run(lambda dask_worker: len(dask_worker.plugins[engine.PLUGIN_NAME]._built))
    assert sum(built.values()) <= 2 and max(built.values()) == 1


def test_a_failed_task_marks_its_images_and_the_others_are_stored(client, jobs, tmp_path: Path,
                                                                  monkeypatch) -> None:
    real = engine.embed_batch

    def flaky(part, *args):
        if any(h == "h0" for h, _ in part):
            raise MemoryError("worker ran out of memory")
        return real(part, *args)

    monkeypatch.setattr(engine, "embed_batch", flaky)
    with StateStore(tmp_path) as store:
        result = engine.embed_on_cluster(jobs, "efficientnet_lite0", "imagenet", store, client, batch_size=2,
                                         images_per_task=2)
        missing = store.missing_vectors(model_id("efficientnet_lite0"), [h for h, _ in jobs])
    assert result.failed["h0"] == result.failed["h1"] == "embedding task failed: MemoryError: worker ran out of memory"
    assert result.embedded == 3 and missing == ["h0", "h1", "h2"]


def test_bad_model_setting_stops_before_any_task(client, jobs, tmp_path: Path) -> None:
    with StateStore(tmp_path) as store, pytest.raises(BackboneError, match="model.name: 'ResNet5O' is not one of"):
        engine.embed_on_cluster(jobs, "ResNet5O", "imagenet", store, client)


def test_scheduler_setting_is_checked(tmp_path: Path) -> None:
    assert parse_settings({"model": {"scheduler": "tcp://10.0.0.5:8786"}}, "c.yaml", tmp_path).model.scheduler
    assert parse_settings({"model": {"scheduler": "local"}}, "c.yaml", tmp_path).model.scheduler == "local"
    with pytest.raises(ConfigError, match="model.scheduler = 'dask'"):
        parse_settings({"model": {"scheduler": "dask"}}, "c.yaml", tmp_path)
    with pytest.raises(ConfigError, match="model.schedular: unknown key"):
        parse_settings({"model": {"schedular": "local"}}, "c.yaml", tmp_path)


def test_embed_command_runs_its_batches_on_the_configured_scheduler(client, tmp_path: Path) -> None:
    import shutil

    from archive_sim.commands import embed as embed_stage, fetch as fetch_stage
    from archive_sim.embed.descriptors import descriptor_model_id
    from archive_sim.progress import Report

    folder = tmp_path / "collection" / "photographs"
    folder.mkdir(parents=True)
    for name in NAMES[:3]:
        shutil.copy(SAMPLES / name, folder / name)
    settings = parse_settings({"source": {"path": "collection"}, "state_dir": "state", "output_dir": "site",
                               "model": {"scheduler": client.scheduler.address}}, "c.yaml", tmp_path)
    with StateStore(settings.state_dir) as store:
        fetch_stage.run(settings, store, Report(verbosity=0))
        with distributed.get_task_stream(client) as stream:
            assert embed_stage.run(settings, store, Report(verbosity=0)) == 3
        items = store.items()
        mid = descriptor_model_id(settings.model)  # the configured descriptor's vectors
        assert store.missing_vectors(mid, [it.content_hash for it in items]) == []
    assert any(task["key"].startswith("embed_batch") for task in stream.data)
