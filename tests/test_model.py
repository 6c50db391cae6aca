"""The EfficientNet-Lite port is right: real ImageNet weights, read without torch,
classify real photos correctly, and the pipeline stores that same model's features."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from archive_sim.state_store import StateStore  # noqa: E402
from archive_sim.embed.backbones import BackboneError, load_backbone  # noqa: E402
from archive_sim.embed.efficientnet_lite import LITE_VARIANTS, build_model  # noqa: E402
from archive_sim.embed.pipeline import embed_images  # noqa: E402
from archive_sim.imaging import load_rgb, model_array  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "samples"
CAT_CLASSES = {281, 282, 285}  # tabby, tiger cat, Egyptian cat
ESPRESSO = 967


def _pipeline_input(name: str, size: int) -> np.ndarray:
    return model_array(load_rgb(SAMPLES / name, min_side=size), size)[None].astype(np.float32)


@pytest.mark.parametrize("variant", sorted(LITE_VARIANTS))
def test_classifies_real_photos(variant: str) -> None:
    classifier = build_model(variant, include_top=True)
    size = LITE_VARIANTS[variant].input_size
    cat = classifier(_pipeline_input("chelsea.png", size), training=False).numpy()[0]
    coffee = classifier(_pipeline_input("coffee.png", size), training=False).numpy()[0]
    assert int(np.argmax(cat)) in CAT_CLASSES
    assert int(np.argmax(coffee)) == ESPRESSO
    # Confidently so: the right class clearly ahead of a class unrelated to either photo.
    assert coffee[ESPRESSO] - np.sort(coffee)[-2] > 1.0


def test_pipeline_stores_the_classifiers_pooled_features(tmp_path: Path) -> None:
    import keras

    classifier = build_model("efficientnet_lite0", include_top=True)
    pooled = keras.Model(classifier.input, classifier.get_layer("features").output)
    images = ["chelsea.png", "coffee.png", "astronaut.png"]
    expected = pooled(np.concatenate([_pipeline_input(n, 224) for n in images]), training=False).numpy()
    assert expected.shape == (3, 1280)

    backbone = load_backbone("efficientnet_lite0")
    with StateStore(tmp_path) as store:
        result = embed_images([(f"h{i}", str(SAMPLES / n)) for i, n in enumerate(images)], backbone, store,
                              batch_size=2)
        stored = store.vectors(backbone.model_id, ["h0", "h1", "h2"])
    assert result.embedded == 3 and not result.failed
    normalised = expected / np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(stored, normalised, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(stored, axis=1), 1.0, atol=1e-5)


def test_unknown_model_names_the_setting() -> None:
    with pytest.raises(BackboneError, match="model.name: 'ResNet5O' is not one of"):
        load_backbone("ResNet5O")


def test_keras_application_without_internet_says_which_setting_fixes_it(monkeypatch) -> None:
    import keras

    def offline(*args, **kwargs):
        if kwargs.get("weights") == "imagenet":
            raise OSError("URL fetch failure: no route to host")
        raise AssertionError("only the download should be attempted")

    monkeypatch.setattr(keras.applications, "ResNet50", offline)
    with pytest.raises(BackboneError) as info:
        load_backbone("ResNet50", "imagenet")
    assert "model.weights" in str(info.value) and "local weights file" in str(info.value)


def test_keras_application_runs_with_a_local_weights_file(tmp_path: Path) -> None:
    import keras

    weights = tmp_path / "mobilenet.weights.h5"
    keras.applications.MobileNetV2(include_top=False, pooling="avg", weights=None,
                                   input_shape=(224, 224, 3)).save_weights(weights)
    backbone = load_backbone("MobileNetV2", str(weights))
    features = backbone.features(_pipeline_input("coffee.png", 224))
    assert features.shape == (1, 1280)
    assert backbone.model_id.startswith("MobileNetV2/file-")
