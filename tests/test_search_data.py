"""Compact search data finds what the exact search finds: real pictures of the example
collection and altered copies of them, embedded with the build's descriptor."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from archive_sim import search_data  # noqa: E402
from archive_sim.config import ModelSettings  # noqa: E402
from archive_sim.copy_detection import phash_image  # noqa: E402
from archive_sim.embed.descriptors import load_descriptor  # noqa: E402
from archive_sim.embed.pipeline import l2_normalise  # noqa: E402
from archive_sim.imaging import load_rgb, model_array  # noqa: E402

COLLECTION = Path(__file__).resolve().parents[1] / "examples" / "collection"


def _crop(img: Image.Image) -> Image.Image:
    w, h = img.size
    return img.crop((w // 10, h // 10, w - w // 12, h - h // 12))


def _gray(img: Image.Image) -> Image.Image:
    return ImageOps.grayscale(img).convert("RGB")


def _reprint(img: Image.Image) -> Image.Image:
    """Smaller, rotated a little, saved as a poor JPEG: a scan of a print."""
    small = img.resize((max(1, img.width // 2), max(1, img.height // 2)), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    small.rotate(3, expand=False, fillcolor=(255, 255, 255)).save(buffer, "JPEG", quality=40)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _picture(item_id: str) -> str:
    return item_id.split("/", 1)[1]


@pytest.fixture(scope="module")
def embedded() -> dict[str, object]:
    """Items: every picture of the collection, cropped and in gray as well; queries: reprints."""
    files = sorted(p for p in COLLECTION.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    originals = [load_rgb(p) for p in files]
    descriptor = load_descriptor(ModelSettings())
    size = descriptor.input_size

    def embed(images: list[Image.Image]) -> np.ndarray:
        arrays = np.stack([model_array(img, size) for img in images])
        return l2_normalise(np.concatenate([descriptor.features(arrays[i:i + 16]) for i in range(0, len(arrays), 16)]))

    items = originals + [_crop(img) for img in originals] + [_gray(img) for img in originals]
    ids = [f"{kind}/{p.parent.name}/{p.stem}" for kind in ("original", "crop", "gray") for p in files]
    queries = [_reprint(img) for img in originals[::2]]
    return {
        "ids": ids,
        "vectors": embed(items),
        "phashes": [phash_image(img) for img in items],
        "query_vectors": embed(queries),
        "query_hashes": [phash_image(img) for img in queries],
        "truth": [f"original/{p.parent.name}/{p.stem}" for p in files[::2]],
    }


def test_compact_top10_overlaps_exact_top10(embedded) -> None:
    vectors = embedded["vectors"]
    data = search_data.build(embedded["ids"], vectors, embedded["phashes"])
    assert data.dims == search_data.DIMENSIONS and data.item_bytes() <= 128
    overlaps, firsts = [], []
    for q in embedded["query_vectors"]:
        order = np.argsort(-(vectors @ q))
        exact = {embedded["ids"][i] for i in order[:10]}
        found = search_data.search(data, q, None, k=10, hash_distance=None, copy_similarity=None)
        overlaps.append(len(exact & {m.id for m in found}) / 10)
        # The same picture first (its original, crop and gray copy are near ties).
        firsts.append(_picture(found[0].id) == _picture(embedded["ids"][order[0]]))
    print(f"top-10 overlap {np.mean(overlaps):.3f} (min {min(overlaps):.1f}), same picture first "
          f"{np.mean(firsts):.0%} over {len(overlaps)} queries, {len(vectors)} items")
    assert np.mean(overlaps) >= 0.9
    assert np.mean(firsts) >= 0.95


def test_copies_come_first_and_the_files_read_back_the_same(embedded) -> None:
    data = search_data.build(embedded["ids"], embedded["vectors"], embedded["phashes"])
    header, binary = search_data.to_files(data, "photographs.bin", "model/x")
    assert header["count"] == len(embedded["ids"]) and all(a["offset"] % 4 == 0 for a in header["arrays"])
    reread = search_data.from_files(header, binary)
    by_hash = 0
    for q, h in zip(embedded["query_vectors"], embedded["query_hashes"]):
        found = search_data.search(reread, q, h, k=10)
        assert found == search_data.search(data, q, h, k=10)
        copies = [m for m in found if m.copy]
        assert found[:len(copies)] == copies  # copies before everything else
        # Every item whose pHash is within 7 bits is listed as a copy, however low its similarity.
        close = {i for i, p in zip(embedded["ids"], embedded["phashes"]) if bin(p ^ h).count("1") <= 7}
        assert close <= {m.id for m in copies}
        by_hash += bool(close)
    assert by_hash >= len(embedded["query_hashes"]) // 2  # the pHash side is exercised


def test_the_same_items_give_the_same_files_and_fingerprint(embedded) -> None:
    ids, vectors, phashes = embedded["ids"], embedded["vectors"], embedded["phashes"]
    first = search_data.to_files(search_data.build(ids, vectors, phashes), "c.bin", "m")
    again = search_data.to_files(search_data.build(ids, vectors.copy(), list(phashes)), "c.bin", "m")
    assert first == again
    hashes = [f"content-{i}" for i in range(len(ids))]
    same = search_data.fingerprint("m", ids, hashes, phashes)
    assert same == search_data.fingerprint("m", list(ids), list(hashes), list(phashes))
    changed = hashes[:5] + ["edited"] + hashes[6:]
    assert search_data.fingerprint("m", ids, changed, phashes) != same
    assert search_data.fingerprint("other-model", ids, hashes, phashes) != same


def test_a_header_of_another_format_is_refused_by_name(embedded) -> None:
    data = search_data.build(embedded["ids"][:5], embedded["vectors"][:5], [None] * 5)
    header, binary = search_data.to_files(data, "x.bin", "m")
    assert search_data.from_files(header, binary).has_phash.sum() == 0
    with pytest.raises(ValueError, match="format 2"):
        search_data.from_files({**header, "format": 2}, binary)
