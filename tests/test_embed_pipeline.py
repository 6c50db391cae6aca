"""The embedding pipeline streams: decoding runs ahead by a bounded amount, in worker
processes or threads with the same result, bad files are reported and skipped, and an
interruption loses at most the batch being worked on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from archive_sim.state_store import StateStore
from archive_sim.embed.pipeline import PROCESS_CHUNK, decode_for_model, decoded_in_order, embed_images

from repo_images import ILLUSTRATIONS, PHOTOGRAPHS, SAMPLES

# JPEGs (draft decoding), an RGBA PNG, a grayscale scan, small colour photographs.
FILES = [PHOTOGRAPHS / "1890CliffHouseSF.jpg", SAMPLES / "coffee.png", SAMPLES / "camera.png",
         SAMPLES / "chelsea.png", ILLUSTRATIONS / "Figure 01.png", SAMPLES / "grace_hopper.jpg"]


class MeanColourBackbone:
    """A stand-in model: features are each image's mean colour per quadrant (fast, exact)."""

    model_id = "mean-colour/test"
    input_size = 32
    dim = 12

    def __init__(self) -> None:
        self.calls: list[int] = []

    def features(self, batch: np.ndarray) -> np.ndarray:
        self.calls.append(len(batch))
        b = np.asarray(batch, dtype=np.float32)
        h = self.input_size // 2
        quads = [b[:, :h, :h], b[:, :h, h:], b[:, h:, :h], b[:, h:, h:]]
        return np.concatenate([q.mean(axis=(1, 2)) for q in quads], axis=1) + 1.0


@pytest.fixture()
def jobs(tmp_path: Path) -> list[tuple[str, str]]:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(FILES[0].read_bytes()[:2000])  # a truncated JPEG
    paths = [str(p) for p in FILES[:3]] + [str(broken)] + [str(p) for p in FILES[3:]]
    return [(f"hash{i}", p) for i, p in enumerate(paths)]


def test_decode_reports_a_bad_file_instead_of_raising(tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    array, error = decode_for_model(str(empty), 32)
    assert array is None and error == "empty file"
    array, error = decode_for_model(str(FILES[1]), 32)
    assert error is None and array.shape == (32, 32, 3) and array.dtype == np.uint8


@pytest.mark.parametrize("decoder", ["threads", "processes"])
def test_decoded_in_order_keeps_job_order_and_reports_failures(jobs, decoder: str) -> None:
    out = list(decoded_in_order(jobs, 32, workers=2, ahead=4, decoder=decoder))
    assert [h for h, _ in out] == [h for h, _ in jobs]
    failed = {h: error for h, (array, error) in out if array is None}
    assert list(failed) == ["hash3"] and "decode" in failed["hash3"]
    for (h, path), (_, (array, _)) in zip(jobs, out):
        if h != "hash3":
            np.testing.assert_array_equal(array, decode_for_model(path, 32)[0])


@pytest.mark.parametrize("decoder", ["threads", "processes"])
def test_decoding_reads_jobs_only_a_bounded_amount_ahead(decoder: str) -> None:
    pulled = 0

    def endless():
        nonlocal pulled
        while True:
            pulled += 1
            yield f"h{pulled}", str(FILES[1])

    stream = decoded_in_order(endless(), 16, workers=2, ahead=8, decoder=decoder)
    for _ in range(20):
        next(stream)
    stream.close()
    chunk = PROCESS_CHUNK if decoder == "processes" else 1
    # 20 consumed, at most ``ahead`` (rounded up to whole chunks) beyond them.
    assert 20 <= pulled <= 20 + 8 + chunk


def test_processes_and_threads_store_the_same_vectors(jobs, tmp_path: Path) -> None:
    stored = {}
    for decoder in ("threads", "processes"):
        backbone = MeanColourBackbone()
        with StateStore(tmp_path / decoder) as store:
            result = embed_images(jobs, backbone, store, batch_size=2, workers=2, decoder=decoder)
            good = [h for h, _ in jobs if h != "hash3"]
            stored[decoder] = store.vectors(backbone.model_id, good)
        assert result.embedded == len(jobs) - 1
        assert set(result.failed) == {"hash3"}
        assert backbone.calls == [2, 2, 2]  # full batches; the failed file does not leave a gap
    np.testing.assert_array_equal(stored["threads"], stored["processes"])
    np.testing.assert_allclose(np.linalg.norm(stored["threads"], axis=1), 1.0, atol=1e-6)


def test_an_interruption_loses_at_most_the_current_batch(jobs, tmp_path: Path) -> None:
    stored_batches = []

    def progress(count: int) -> None:
        stored_batches.append(count)
        if sum(stored_batches) >= 4:
            raise KeyboardInterrupt  # the user pressed Ctrl-C after the second batch was stored

    good = [(h, p) for h, p in jobs if h != "hash3"]
    backbone = MeanColourBackbone()
    with StateStore(tmp_path) as store:
        with pytest.raises(KeyboardInterrupt):
            embed_images(good, backbone, store, batch_size=2, workers=2, progress=progress, decoder="processes")
        assert store.missing_vectors(backbone.model_id, [h for h, _ in good]) == sorted(h for h, _ in good[4:])


def test_configure_threads_sizes_tensorflows_pools_before_first_use() -> None:
    code = ("from archive_sim.embed.backbones import configure_threads\n"
            "assert configure_threads(1, 1)\n"
            "import tensorflow as tf\n"
            "tf.constant(1.0) + 1.0\n"
            "assert tf.config.threading.get_intra_op_parallelism_threads() == 1\n"
            "assert tf.config.threading.get_inter_op_parallelism_threads() == 1\n"
            "assert not configure_threads(2)  # too late: the runtime is running\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
