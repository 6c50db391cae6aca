"""Embedding throughput on real archive files, against this machine's bound.

Input: real images (JPEG and PNG photographs, greyscale and colour, and scans of book
illustrations): this repository's own, or with ``--data DIR`` the larger set in DIR
(a larger real collection), cycled to at least ``--images`` files. Output: printed figures,
all from this one run on the same files:
  - decode-only and CNN-only throughput of the default backbone, each alone;
  - the machine's bound for this work, cores / (decode + CNN core-seconds per image);
  - the end-to-end ``embed_images`` pipeline, and its share of that bound;
  - the per-image baseline (one ``predict`` call per image after a full decode, as
    the Arosenius scripts and PixPlot do) with InceptionV3 at 299x299 and with the
    default backbone, and the pipeline's speed-up over each;
  - the same three figures for the default retrieval descriptor (the backbone run
    at several image scales), which is what ``archive-sim embed`` runs by default;
  - that descriptor exported to ONNX (embed/onnx_export.py) under onnxruntime on CPU,
    beside the Keras model on the same decoded images: images/s of each, the speed
    ratio, and the cosine between their vectors (the Keras model stays the definition).
The machine is shared, so each measured stage is repeated ``--rounds`` times,
interleaved, and the best round of each is used; load averages are printed so a
noisy run can be recognised. The last line holds the headline figures.

    PYTHONPATH=. python bench/embed.py [--images 344] [--rounds 3] [--decoder threads|processes]
                                       [--data DIR] [--onnx-only]
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from image_folders import add_data_option, image_folders, images_in  # noqa: E402


def real_files(folders: list[Path], minimum: int) -> list[str]:
    """Every image in ``folders``, repeated in order until there are at least ``minimum``."""
    files = sorted(str(p) for folder in folders for p in images_in(folder))
    if not files:
        sys.exit(f"no images in {', '.join(map(str, folders))}")
    repeats = -(-minimum // len(files))
    return (files * repeats)[:max(minimum, len(files))]


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def per_image_baseline(files: list[str], model, size: int, preprocess) -> float:
    """Images/s of the one-call-per-image loop: keras load_img (full decode) + predict."""
    import keras

    def run() -> None:
        for path in files:
            img = keras.utils.load_img(path, target_size=(size, size))
            x = preprocess(keras.utils.img_to_array(img)[None])
            model.predict(x, verbose=0)

    model.predict(np.zeros((1, size, size, 3), np.float32), verbose=0)  # build the predict function once
    seconds, _ = timed(run)
    return len(files) / seconds


def cnn_only(backbone, arrays: np.ndarray, batch: int) -> None:
    for start in range(0, len(arrays), batch):
        backbone.features(arrays[start:start + batch])


def measure(backbone, jobs: list[tuple[str, str]], cores: int, decoder: str, batch: int,
            rounds: int) -> tuple[float, float, float, float]:
    """Best-of-``rounds`` decode-only, CNN-only and pipeline images/s of ``backbone``, and the bound."""
    from archive_sim.state_store import StateStore
    from archive_sim.embed.pipeline import decoded_in_order, embed_images

    n, size = len(jobs), backbone.input_size
    print(f"model {backbone.model_id} ({size}x{size} input)")
    backbone.features(np.zeros((batch, size, size, 3), np.uint8))  # trace the compiled function once
    decode_s, cnn_s, pipe_s = [], [], []
    for round_ in range(rounds):
        seconds, decoded = timed(lambda: [d for _, (d, _) in decoded_in_order(
            jobs, size, cores, ahead=2 * batch, decoder=decoder) if d is not None])
        decode_s.append(seconds)
        arrays = np.stack(decoded)
        del decoded
        cnn_s.append(timed(functools.partial(cnn_only, backbone, arrays, batch))[0])
        del arrays
        with tempfile.TemporaryDirectory() as tmp, StateStore(Path(tmp)) as store:
            seconds, result = timed(lambda: embed_images(jobs, backbone, store, batch, cores, decoder=decoder))
        assert result.embedded + len(result.failed) == n
        pipe_s.append(seconds)
        print(f"  round {round_ + 1}: decode {n / decode_s[-1]:6.1f} img/s   cnn {n / cnn_s[-1]:6.1f} img/s   "
              f"pipeline {n / pipe_s[-1]:6.1f} img/s   (load {os.getloadavg()[0]:.2f})", flush=True)
    decode_rate, cnn_rate, pipe_rate = n / min(decode_s), n / min(cnn_s), n / min(pipe_s)
    decode_core_s, cnn_core_s = cores / decode_rate, cores / cnn_rate
    bound = cores / (decode_core_s + cnn_core_s)
    print(f"  decode {decode_core_s * 1000:.1f} ms, CNN {cnn_core_s * 1000:.1f} ms core-time per image; "
          f"bound = {cores} / ({decode_core_s:.4f} + {cnn_core_s:.4f}) = {bound:.1f} img/s; "
          f"pipeline {pipe_rate:.1f} img/s = {pipe_rate / bound:.0%} of it", flush=True)
    return decode_rate, cnn_rate, pipe_rate, bound


def onnx_against_keras(descriptor, settings, jobs: list[tuple[str, str]], cores: int, decoder: str,
                       batch: int, rounds: int) -> tuple[float, float, float, float]:
    """Best-of-``rounds`` images/s of the Keras descriptor and of its ONNX graph on the same
    decoded images, and the smallest and mean cosine between their vectors."""
    import onnxruntime as ort

    from archive_sim.embed.onnx_export import export_descriptor
    from archive_sim.embed.pipeline import decoded_in_order, l2_normalise

    size = descriptor.input_size
    exported = export_descriptor(settings)
    options = ort.SessionOptions()
    options.intra_op_num_threads = cores
    session = ort.InferenceSession(exported.proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    arrays = np.stack([d for _, (d, _) in decoded_in_order(jobs, size, cores, ahead=2 * batch, decoder=decoder)
                       if d is not None]).astype(np.float32)
    n = len(arrays)

    def keras_run() -> np.ndarray:
        return np.concatenate([descriptor.features(arrays[i:i + batch]) for i in range(0, n, batch)])

    def onnx_run() -> np.ndarray:
        return np.concatenate([session.run(None, {"image": arrays[i:i + batch]})[0] for i in range(0, n, batch)])

    descriptor.features(arrays[:batch])
    session.run(None, {"image": arrays[:batch]})
    keras_s, onnx_s = [], []
    for round_ in range(rounds):
        seconds, keras_vectors = timed(keras_run)
        keras_s.append(seconds)
        seconds, onnx_vectors = timed(onnx_run)
        onnx_s.append(seconds)
        print(f"  round {round_ + 1}: keras {n / keras_s[-1]:6.1f} img/s   onnxruntime {n / onnx_s[-1]:6.1f} img/s   "
              f"(load {os.getloadavg()[0]:.2f})", flush=True)
    cosines = np.sum(l2_normalise(keras_vectors) * onnx_vectors, axis=1)
    keras_rate, onnx_rate = n / min(keras_s), n / min(onnx_s)
    print(f"ONNX graph of {exported.model_id} on {n} images: keras {keras_rate:.1f} img/s, onnxruntime "
          f"{onnx_rate:.1f} img/s ({onnx_rate / keras_rate:.2f}x); cosine min {cosines.min():.5f} "
          f"mean {cosines.mean():.5f}", flush=True)
    return keras_rate, onnx_rate, float(cosines.min()), float(cosines.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=344, help="files to embed (>= 300; real files cycled)")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions of each stage (best one counts)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--decoder", choices=("threads", "processes"), default="threads",
                        help="the decode pool (threads: the pipeline's default)")
    parser.add_argument("--baseline-images", type=int, default=0,
                        help="files for the per-image baselines (default: all of --images)")
    add_data_option(parser)
    parser.add_argument("--onnx-only", action="store_true",
                        help="only the Keras descriptor against its ONNX graph")
    args = parser.parse_args()

    from archive_sim.config import ModelSettings
    from archive_sim.embed.backbones import configure_threads, load_backbone
    from archive_sim.embed.descriptors import load_descriptor
    from archive_sim.embed.pipeline import available_cores

    cores = available_cores()
    configure_threads(cores)
    folders = list(image_folders(args.data).values())
    files = real_files(folders, args.images)
    jobs = [(f"job{i}", path) for i, path in enumerate(files)]
    n = len(jobs)
    decoder = args.decoder
    print(f"{n} files ({len(set(files))} distinct, {sum(os.path.getsize(f) for f in set(files)) / 1e6:.0f} MB) "
          f"from {args.data or 'this repository'}, {cores} cores, decoder={decoder}, batch={args.batch}")
    print(f"load average at start: {os.getloadavg()[0]:.2f}")

    settings = ModelSettings()
    if args.onnx_only:
        keras_rate, onnx_rate, cos_min, cos_mean = onnx_against_keras(
            load_descriptor(settings), settings, jobs, cores, decoder, args.batch, args.rounds)
        print(f"onnx_img_s={onnx_rate:.1f} keras_descriptor_img_s={keras_rate:.1f} "
              f"onnx_vs_keras={onnx_rate / keras_rate:.2f} onnx_cosine_min={cos_min:.5f}")
        return
    # The headline: the default backbone with its own pooling, one model call per batch
    # (what the issue and the per-image baselines compare). The default retrieval
    # descriptor runs the same backbone at several scales per image; it is measured
    # too, as a second figure, since it is what 'archive-sim embed' runs by default.
    backbone = load_backbone(settings.name, settings.weights)
    size = backbone.input_size
    decode_rate, cnn_rate, pipe_rate, bound = measure(backbone, jobs, cores, decoder, args.batch, args.rounds)
    descriptor = load_descriptor(settings)
    if descriptor.model_id != backbone.model_id:
        measure(descriptor, jobs, cores, decoder, args.batch, max(1, args.rounds - 1))
    keras_rate, onnx_rate, cos_min, _ = onnx_against_keras(descriptor, settings, jobs, cores, decoder,
                                                           args.batch, max(1, args.rounds - 1))

    import keras

    base_files = files[:args.baseline_images] if args.baseline_images else files
    inception = keras.applications.InceptionV3(include_top=False, pooling="avg", weights=None,
                                               input_shape=(299, 299, 3))
    inception_rate = per_image_baseline(base_files, inception, 299,
                                        keras.applications.inception_v3.preprocess_input)
    print(f"per-image InceptionV3 299x299 (weights=None): {inception_rate:.1f} img/s on {len(base_files)} files",
          flush=True)
    del inception
    default_rate = per_image_baseline(base_files, backbone.model, size, lambda x: x)  # as PixPlot calls it
    print(f"per-image {settings.name} {size}x{size}: {default_rate:.1f} img/s on {len(base_files)} files")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    print(f"pipeline_img_s={pipe_rate:.1f} decode_img_s={decode_rate:.1f} cnn_only_img_s={cnn_rate:.1f} "
          f"pipeline_vs_bound={pipe_rate / bound:.2f} vs_per_image_inception={pipe_rate / inception_rate:.1f} "
          f"vs_per_image_default={pipe_rate / default_rate:.1f} onnx_vs_keras={onnx_rate / keras_rate:.2f} "
          f"onnx_cosine_min={cos_min:.5f}")


if __name__ == "__main__":
    main()
