"""Retrieval descriptors: one vector per image, made for finding the same picture.

Input: a ``Backbone`` and the ``model.descriptor`` settings. Output: a backbone-like
object (``model_id``, ``input_size``, ``dim``, ``features``) whose vectors pool the
last feature map with generalized-mean (GeM) pooling over one or more image scales,
optionally after colour normalisation (gray) and a descreening blur; and
``Whitening``, a PCA whitening learned on the collection's vectors at index time.
Global average pooling of a classifier is tuned to name objects; GeM weights the
strongest local responses, which is what survives a crop, a reprint or a halftone.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..fsutil import atomic_write_bytes
from .backbones import Backbone, feature_map, load_backbone, model_id

# Fewer vectors than this give a whitening that is mostly noise: it is then skipped.
MIN_WHITENING_ITEMS = 64
# Regularised whitening: each eigenvalue gets this share of their mean added, so the
# weakest directions (noise in a small collection) are not blown up.
WHITENING_SHRINKAGE = 0.3
_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, what Pillow's convert("L") uses


def _number(x: float) -> str:
    return f"{x:g}"


def vector_tag(d: Any) -> str:
    """The part of the descriptor that changes the stored vectors; '' for the classifier's own pooling."""
    parts = []
    if d.pooling == "gem":
        parts.append(f"gem{_number(d.gem_p)}")
    if list(d.scales) != [1.0]:
        parts.append("s" + ",".join(_number(s) for s in d.scales))
    if d.colour != "rgb":
        parts.append(d.colour)
    if d.descreen > 0:
        parts.append(f"ds{_number(d.descreen)}")
    if parts and d.pooling == "avg":
        parts.insert(0, "avg")
    return "-".join(parts)


def descriptor_tag(d: Any) -> str:
    """The whole descriptor, whitening included, as it appears in the model id."""
    tag = vector_tag(d)
    if d.whiten:
        tag = f"{tag or 'avg'}-white"
    return tag


def model_id_with(name: str, weights: str = "imagenet", descriptor: Any = None, registry: Any = None) -> str:
    """The model id of a backbone with ``descriptor`` (None: the classifier's own pooling)."""
    base = model_id(name, weights, registry)
    tag = descriptor_tag(descriptor) if descriptor is not None else ""
    return f"{base}/{tag}" if tag else base


def load_with(name: str, weights: str = "imagenet", descriptor: Any = None, registry: Any = None,
              settings: Any = None) -> "Backbone | DescriptorBackbone":
    """The feature extractor of a backbone with ``descriptor``: the plain backbone when it changes no pooling."""
    backbone = load_backbone(name, weights, registry, settings)
    full_id = model_id_with(name, weights, descriptor, registry)
    if descriptor is None or not vector_tag(descriptor):
        backbone.model_id = full_id  # whitening alone changes the id, not the vectors
        return backbone
    return DescriptorBackbone(backbone, descriptor, full_id)


def descriptor_model_id(model: Any) -> str:
    """The model id of ``model`` settings (name, weights, descriptor): the key of a build's vectors and lists."""
    return model_id_with(model.name, model.weights, model.descriptor, getattr(model, "backbones", None))


def load_descriptor(model: Any) -> "Backbone | DescriptorBackbone":
    """The feature extractor that ``model`` settings ask for."""
    return load_with(model.name, model.weights, model.descriptor, getattr(model, "backbones", None), model)


def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(np.ceil(3 * sigma)))
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-t * t / (2 * sigma * sigma))
    k /= k.sum()
    return np.outer(k, k).astype(np.float32)


class DescriptorBackbone:
    """uint8 RGB (N, S, S, 3) at ``input_size`` -> (N, C) descriptors, summed over scales."""

    def __init__(self, backbone: Backbone, descriptor: Any, model_id: str) -> None:
        import tensorflow as tf

        fmap, preprocess = feature_map(backbone)
        self.model_id = model_id
        self.base_size = backbone.input_size
        scales = sorted(descriptor.scales, reverse=True)
        # Decoded once at the largest scale; smaller scales are resized from it.
        self.input_size = round(self.base_size * scales[0])
        sizes = [round(self.base_size * s) for s in scales]
        self.dim = int(fmap.output_shape[-1])
        gray = descriptor.colour == "gray"
        p = float(descriptor.gem_p)
        gem = descriptor.pooling == "gem"
        blur = None
        if descriptor.descreen > 0:
            kernel = _gaussian_kernel(descriptor.descreen * scales[0])
            blur = (tf.constant(np.tile(kernel[:, :, None, None], (1, 1, 3, 1))), kernel.shape[0] // 2)

        def pool(f):
            if gem:
                # The feature map is non-negative (after ReLU6); the floor keeps pow finite.
                return tf.pow(tf.reduce_mean(tf.pow(tf.maximum(f, 1e-6), p), axis=[1, 2]), 1.0 / p)
            return tf.reduce_mean(f, axis=[1, 2])

        def run(x):
            if gray:
                y = x[..., 0:1] * _LUMA[0] + x[..., 1:2] * _LUMA[1] + x[..., 2:3] * _LUMA[2]
                x = tf.concat([y, y, y], axis=-1)
            if blur is not None:
                kernel, r = blur
                x = tf.pad(x, [[0, 0], [r, r], [r, r], [0, 0]], mode="REFLECT")
                x = tf.nn.depthwise_conv2d(x, kernel, [1, 1, 1, 1], "VALID")
            total = None
            for size in sizes:
                xs = x if size == self.input_size else tf.image.resize(x, (size, size), antialias=True)
                if preprocess is not None:
                    xs = preprocess(xs)
                v = tf.math.l2_normalize(pool(fmap(xs, training=False)), axis=1)
                total = v if total is None else total + v
            return total

        spec = tf.TensorSpec((None, self.input_size, self.input_size, 3), tf.float32)
        self._run = tf.function(run, input_signature=[spec])

    def features(self, batch: np.ndarray) -> np.ndarray:
        return self._run(np.asarray(batch, dtype=np.float32)).numpy()


@dataclass(frozen=True)
class Whitening:
    """x -> normalise((x - mean) @ projection): decorrelated, equalised directions."""

    mean: np.ndarray        # (D,)
    projection: np.ndarray  # (D, d)

    @property
    def dim(self) -> int:
        return int(self.projection.shape[1])

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        out = (np.asarray(vectors, dtype=np.float64) - self.mean) @ self.projection
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.maximum(norms, 1e-12)).astype(np.float32)

    def fingerprint(self) -> str:
        digest = hashlib.sha256(np.ascontiguousarray(self.mean, dtype="<f8").tobytes())
        digest.update(np.ascontiguousarray(self.projection, dtype="<f8").tobytes())
        return digest.hexdigest()[:16]

    def save(self, path: Path) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, mean=self.mean, projection=self.projection)
        atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: Path) -> "Whitening":
        with np.load(path) as data:
            return cls(data["mean"], data["projection"])


def fit_whitening(vectors: np.ndarray, shrinkage: float = WHITENING_SHRINKAGE) -> Whitening | None:
    """Learn a PCA whitening from (n, D) vectors; None when there are too few to learn from."""
    n = len(vectors)
    if n < MIN_WHITENING_ITEMS:
        return None
    x = np.asarray(vectors, dtype=np.float64)
    mean = x.mean(axis=0)
    centred = x - mean
    covariance = centred.T @ centred / (n - 1)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    # At most n - 1 directions carry any variance; the rest are rounding noise.
    keep = eigenvalues > eigenvalues[0] * 1e-9
    keep[n - 1:] = False
    eigenvalues, eigenvectors = eigenvalues[keep], eigenvectors[:, keep]
    # Signs of eigenvectors are arbitrary; fix them so that the same input gives the same file.
    signs = np.sign(eigenvectors[np.argmax(np.abs(eigenvectors), axis=0), np.arange(eigenvectors.shape[1])])
    eigenvectors = eigenvectors * signs
    projection = eigenvectors / np.sqrt(eigenvalues + shrinkage * eigenvalues.mean())
    return Whitening(mean, projection)


WHITENING_FILE = "whitening.npz"  # beside a model's Annoy files; query applies the same


def searchable(vectors: np.ndarray, descriptor: Any) -> tuple[np.ndarray, Whitening | None]:
    """The collection's vectors in the space its indexes use: whitened when asked and learnable.

    The whitening is learned on the distinct rows of ``vectors`` (the same image
    twice would count twice otherwise) and returned for saving beside the indexes.
    """
    if not descriptor.whiten or len(vectors) == 0:
        return vectors, None
    whitening = fit_whitening(np.unique(vectors, axis=0))
    if whitening is None:
        return vectors, None
    return whitening.apply(vectors), whitening
