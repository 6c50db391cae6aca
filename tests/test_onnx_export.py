"""The descriptor exported to ONNX gives the build's own vectors: onnxruntime against
Keras on real photographs and illustrations of the example collection."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from archive_sim.config import DescriptorSettings, ModelSettings  # noqa: E402
from archive_sim.embed.descriptors import Whitening, load_descriptor  # noqa: E402
from archive_sim.embed.onnx_export import ExportError, export_descriptor, write_model  # noqa: E402
from archive_sim.embed.pipeline import decode_for_model, l2_normalise  # noqa: E402

COLLECTION = Path(__file__).resolve().parents[1] / "examples" / "collection"


def _images(size: int, count: int = 3) -> np.ndarray:
    files = sorted(COLLECTION.glob("photographs/*.jpg"))[:count] + sorted(COLLECTION.glob("illustrations/*.png"))[:count]
    arrays = [decode_for_model(str(f), size)[0] for f in files]
    return np.stack(arrays).astype(np.float32)


def _onnx_vectors(path: Path, batch: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: batch})[0]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(l2_normalise(a) * l2_normalise(b), axis=1)


@pytest.mark.parametrize("float16", [False, True], ids=["float32", "float16"])
def test_default_descriptor_matches_keras(tmp_path: Path, float16: bool) -> None:
    settings = ModelSettings()
    exported = export_descriptor(settings)
    path = tmp_path / "descriptor.onnx"
    size_bytes = write_model(exported, path, float16=float16)
    keras_model = load_descriptor(settings)
    assert exported.input_size == keras_model.input_size == 317
    batch = _images(exported.input_size)
    expected = l2_normalise(keras_model.features(batch))
    got = _onnx_vectors(path, batch)
    assert got.shape == expected.shape == (len(batch), 1280)
    cosines = _cosines(got, expected)
    assert cosines.min() >= 0.999, cosines
    if float16:  # half the file a browser downloads: 3.4 M weights at 2 bytes and the graph
        assert size_bytes < 7.5e6


def test_other_descriptor_options_and_whitening_match_keras(tmp_path: Path) -> None:
    settings = ModelSettings(descriptor=DescriptorSettings(scales=[1.0, 0.5], colour="gray", descreen=1.0))
    keras_model = load_descriptor(settings)
    batch = _images(keras_model.input_size)
    expected = l2_normalise(keras_model.features(batch))
    # A PCA whitening of these vectors (the build learns one on the whole collection).
    mean = expected.mean(axis=0)
    _, s, vt = np.linalg.svd(expected - mean, full_matrices=False)
    whitening = Whitening(mean, vt[:4].T / s[:4])
    path = tmp_path / "white.onnx"
    write_model(export_descriptor(settings, whitening), path)
    got = _onnx_vectors(path, batch)
    cosines = _cosines(got, whitening.apply(expected))
    assert cosines.min() >= 0.999, cosines


def test_a_backbone_that_cannot_be_exported_names_the_setting() -> None:
    with pytest.raises(ExportError, match="model.name = 'InceptionV3'"):
        export_descriptor(ModelSettings(name="InceptionV3"))
