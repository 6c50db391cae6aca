"""Backbones: one small interface over every CNN the pipeline can embed with.

Input: ``model.name`` and ``model.weights`` from the settings, and the registry of
backbones (``plugins``). Output: a ``Backbone`` with a stable ``model_id`` (the
cache key of its vectors), its ``input_size`` and ``features(batch)``: uint8 RGB
images (N, S, S, 3) -> float32 (N, D) pooled features. This module also declares
the built-in backbones: EfficientNet-Lite0/1/2 (weights bundled) and the
keras.applications models. Keras is imported only when a backbone is built, so the
commands that do not embed start fast.

A backbone is one ``Plugin``: a name, its settings model (``ModelSettings`` or a
subclass with settings of its own), ``input_size`` and a builder
``factory(settings) -> (Keras model ending in global average pooling, preprocess or None)``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..config import ModelSettings
from ..plugins import Plugin, PluginError
from .efficientnet_lite import LITE_VARIANTS, WeightsNotInstalledError, build_model

if TYPE_CHECKING:
    from ..plugins import Registry

# Bump when image preprocessing changes: vectors made before are then recomputed.
PREPROCESS_VERSION = 1


class BackboneError(RuntimeError):
    """The model cannot be built; the message names the setting that fixes it."""


@dataclass(frozen=True)
class _KerasApp:
    module: str
    size: int


# Name -> (keras.applications submodule with its preprocess_input, input size).
KERAS_APPLICATIONS: dict[str, _KerasApp] = {
    "InceptionV3": _KerasApp("inception_v3", 299),
    "InceptionResNetV2": _KerasApp("inception_resnet_v2", 299),
    "Xception": _KerasApp("xception", 299),
    "ResNet50": _KerasApp("resnet50", 224),
    "ResNet101": _KerasApp("resnet", 224),
    "ResNet152": _KerasApp("resnet", 224),
    "ResNet50V2": _KerasApp("resnet_v2", 224),
    "VGG16": _KerasApp("vgg16", 224),
    "VGG19": _KerasApp("vgg19", 224),
    "DenseNet121": _KerasApp("densenet", 224),
    "MobileNetV2": _KerasApp("mobilenet_v2", 224),
    "EfficientNetB0": _KerasApp("efficientnet", 224),
    "EfficientNetB1": _KerasApp("efficientnet", 240),
    "EfficientNetB2": _KerasApp("efficientnet", 260),
    "EfficientNetB3": _KerasApp("efficientnet", 300),
    "EfficientNetV2B0": _KerasApp("efficientnet_v2", 224),
    "ConvNeXtTiny": _KerasApp("convnext", 224),
}


class Backbone:
    """A feature extractor: uint8 images in, pooled float32 features out."""

    def __init__(self, model_id: str, input_size: int, model: Any, preprocess: Callable | None = None) -> None:
        import tensorflow as tf

        self.model_id = model_id
        self.input_size = input_size
        self.model = model
        self.preprocess = preprocess
        self.dim = int(model.output_shape[-1])
        spec = tf.TensorSpec((None, input_size, input_size, 3), tf.float32)

        def run(x):
            if preprocess is not None:
                x = preprocess(x)
            return model(x, training=False)

        # A compiled graph is about 2.4x faster than eager calls on CPU; XLA
        # (jit_compile) was much slower on these machines, so it stays off.
        self._run = tf.function(run, input_signature=[spec])

    def features(self, batch: np.ndarray) -> np.ndarray:
        return self._run(np.asarray(batch, dtype=np.float32)).numpy()


def configure_threads(intra_op: int, inter_op: int | None = None) -> bool:
    """Size TensorFlow's thread pools before its first op; False if it is too late.

    TensorFlow sizes its pools from the machine's cores, not from the CPUs this
    process may use (a container's or a batch job's share): on a 64-core host with
    2 allowed, 64 threads would fight over 2 cores. ``inter_op`` defaults to
    ``intra_op``, as TensorFlow's own default does.
    """
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(max(1, intra_op))
        tf.config.threading.set_inter_op_parallelism_threads(max(1, inter_op or intra_op))
    except RuntimeError:  # the runtime is already initialised; its pools stay as they are
        return False
    return True


def _weights_tag(weights: str) -> str:
    if weights in ("imagenet", "none"):
        return weights
    digest = hashlib.sha256(Path(weights).read_bytes()).hexdigest()[:12]
    return f"file-{digest}"


def _registry(registry: "Registry | None") -> "Registry":
    if registry is not None:
        return registry
    from ..plugins import default_plugins

    return default_plugins().backbones


def _plugin(name: str, registry: "Registry | None") -> Plugin:
    try:
        return _registry(registry).get(name)
    except PluginError as exc:
        raise BackboneError(str(exc)) from None


def model_id(name: str, weights: str = "imagenet", registry: "Registry | None" = None) -> str:
    """The cache key of vectors made by ``name`` with ``weights`` (no model is built)."""
    _plugin(name, registry)
    if weights not in ("imagenet", "none") and not Path(weights).is_file():
        raise BackboneError(f"model.weights = {weights!r}: file not found (use 'imagenet', 'none' or a weights file)")
    return f"{name}/{_weights_tag(weights)}/p{PREPROCESS_VERSION}"


def load_backbone(name: str, weights: str = "imagenet", registry: "Registry | None" = None,
                  settings: ModelSettings | None = None) -> Backbone:
    """Build the backbone ``name`` with ``weights`` ("imagenet", "none" or a file).

    ``registry`` defaults to the built-ins and entry points; ``settings`` are the
    whole ``model`` settings, for a backbone with settings of its own.
    """
    plugin = _plugin(name, registry)
    model_id_ = model_id(name, weights, registry)
    if settings is None:
        settings = plugin.settings.model_validate({"name": name, "weights": weights})
    model, preprocess = plugin.factory(settings)
    return Backbone(model_id_, plugin.input_size, model, preprocess)


def _efficientnet_lite(settings: ModelSettings) -> tuple[Any, None]:
    if settings.weights != "imagenet":
        raise BackboneError(f"model.weights = {settings.weights!r}: {settings.name} loads only its "
                            "bundled ImageNet weights")
    try:
        return build_model(settings.name, include_top=False), None
    except WeightsNotInstalledError as exc:
        raise BackboneError(str(exc)) from None


def _keras_application(settings: ModelSettings) -> tuple[Any, Callable]:
    import importlib

    import keras

    name, weights = settings.name, settings.weights
    app = KERAS_APPLICATIONS[name]
    constructor = getattr(keras.applications, name)
    preprocess = importlib.import_module(f"keras.applications.{app.module}").preprocess_input
    shape = (app.size, app.size, 3)
    try:
        model = constructor(include_top=False, pooling="avg", input_shape=shape,
                            weights="imagenet" if weights == "imagenet" else None)
    except Exception as exc:  # Keras raises several types for a failed download
        if weights == "imagenet":
            raise BackboneError(
                f"model.weights = 'imagenet': Keras could not download the ImageNet weights of {name} "
                f"({type(exc).__name__}); without internet, set model.weights to a local weights file "
                f"or use model.name: efficientnet_lite0 (bundled)"
            ) from None
        raise
    if weights not in ("imagenet", "none"):
        try:
            model.load_weights(weights)
        except Exception as exc:
            raise BackboneError(f"model.weights = {weights!r}: cannot load into {name}: {exc}") from None
    return model, preprocess


LITE_BACKBONES = tuple(
    Plugin(name, ModelSettings, _efficientnet_lite,
           f"EfficientNet-Lite{name[-1]}, {v.input_size} px, ImageNet weights bundled (no download).",
           input_size=v.input_size)
    for name, v in sorted(LITE_VARIANTS.items()))
KERAS_BACKBONES = tuple(
    Plugin(name, ModelSettings, _keras_application,
           f"keras.applications.{name}, {app.size} px; ImageNet weights downloaded by Keras, or a local file.",
           input_size=app.size)
    for name, app in sorted(KERAS_APPLICATIONS.items()))


def feature_map(backbone: Backbone) -> tuple[Any, Callable | None]:
    """The backbone's last feature map, before its global pooling, for any input size.

    Returns a Keras model (float RGB (N, H, W, 3) -> (N, h, w, C), the same weights)
    and the preprocessing to apply before it (None when the model has it built in).
    Retrieval descriptors (GeM, several scales) pool this map themselves.
    """
    import keras

    model = backbone.model
    pooling = model.layers[-1]
    if not isinstance(pooling, keras.layers.GlobalAveragePooling2D):
        raise BackboneError(f"model {backbone.model_id}: its last layer is {type(pooling).__name__}, "
                            "not global average pooling; it has no feature map to pool")
    fixed = keras.Model(model.input, pooling.input)
    # The built model accepts only its own input size; a clone with an open size shares
    # the layer structure and gets the same weights.
    flexible = keras.models.clone_model(fixed, input_tensors=keras.Input((None, None, 3)))
    flexible.set_weights(fixed.get_weights())
    return flexible, backbone.preprocess
