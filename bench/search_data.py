"""Compact search data (archive_sim/search_data.py) at 100,000 items in one category.

Input: synthetic descriptor-like vectors (unit length, a decaying spectrum over 1280
dimensions, items in clusters of near-duplicates) and random pHashes; queries are
items with noise added, as a transformed copy moves a real vector. Output, for
several encodings (PCA dimensions x bits per code): bytes an item (codes + pHash),
the whole data per item (PCA and ids included), the share of the exact top 10 that
the compact top 10 finds, how often the true item comes first, and the time of one
query against the exact search (numpy, float32, same queries, same run); for the
shipped encoding (``search_data.DIMENSIONS`` at 8 bits) also the browser's search
(templates/static/find/find-core.js) timed in Node, when Node is installed. The
others are for the choice. The last line holds the shipped encoding's figures.

    PYTHONPATH=. python bench/search_data.py [--items 100000] [--queries 50]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from archive_sim import search_data

CORE = Path(__file__).resolve().parents[1] / "templates" / "static" / "find" / "find-core.js"
NODE_TIMER = """
const fs = require("fs");
const core = require(process.argv[2]);
const header = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
const bin = fs.readFileSync(process.argv[4]);
const queries = JSON.parse(fs.readFileSync(process.argv[5], "utf8"));
let start = performance.now();
const data = core.readSearchData(header, bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.length));
const readMs = performance.now() - start;
start = performance.now();
for (const q of queries) core.search(data, Float32Array.from(q), [0, 0], 10, 7, 0.93);
process.stdout.write(JSON.stringify({readMs, queryMs: (performance.now() - start) / queries.length}));
"""


def node_query_ms(header: dict, binary: bytes, queries: np.ndarray) -> tuple[float, float] | None:
    """(ms to read the data, ms a query) of the browser's code in Node; None without Node."""
    node = shutil.which("node")
    if node is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "t.js").write_text(NODE_TIMER)
        (folder / "h.json").write_text(json.dumps(header))
        (folder / "d.bin").write_bytes(binary)
        (folder / "q.json").write_text(json.dumps(queries.tolist()))
        done = subprocess.run([node, str(folder / "t.js"), str(CORE), str(folder / "h.json"), str(folder / "d.bin"),
                               str(folder / "q.json")], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    return result["readMs"], result["queryMs"]


def synthetic(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors with a 1/sqrt(i) spectrum, in clusters of about 20 (a collection's series)."""
    latent = 256
    basis = rng.standard_normal((latent, dim)).astype(np.float32) / np.sqrt(dim)
    spectrum = (1.0 / np.sqrt(np.arange(1, latent + 1))).astype(np.float32)
    centres = rng.standard_normal((max(1, n // 20), latent)).astype(np.float32) * spectrum
    z = centres[rng.integers(0, len(centres), n)] + 0.5 * rng.standard_normal((n, latent)).astype(np.float32) * spectrum
    x = z @ basis + 0.02 * rng.standard_normal((n, dim)).astype(np.float32)
    x += 0.6 / np.sqrt(dim)  # descriptors after ReLU share a positive mean direction
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def quantised_4bit(data: search_data.SearchData, vectors: np.ndarray) -> search_data.SearchData:
    """The same PCA with 4-bit codes (two to a byte when stored)."""
    projected = (vectors - data.mean) @ data.components.astype(np.float32).T
    scale = np.abs(projected).max(axis=0) / 7.0
    scale[scale == 0] = 1.0
    codes = np.clip(np.rint(projected / scale), -7, 7).astype(np.int8)
    return search_data.SearchData(data.ids, data.mean, data.components, scale.astype(np.float32), codes,
                                  data.phashes, data.has_phash)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    dim = 1280
    vectors = synthetic(args.items, dim, rng)
    ids = [f"item{i}" for i in range(args.items)]
    phashes = rng.integers(0, 2**63, args.items, dtype=np.int64).tolist()
    truth = rng.choice(args.items, args.queries, replace=False)
    queries = vectors[truth] + 0.015 * rng.standard_normal((args.queries, dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    start = time.perf_counter()
    exact_top = [np.argsort(-(vectors @ q))[:10] for q in queries]
    exact_s = (time.perf_counter() - start) / args.queries
    print(f"{args.items} items, {dim} dimensions, {args.queries} queries; exact float32 search "
          f"{exact_s * 1000:.1f} ms a query ({vectors.nbytes / args.items:.0f} bytes an item)")

    shipped = None
    for dims, bits in [(64, 8), (96, 8), (search_data.DIMENSIONS, 8), (240, 4)]:
        start = time.perf_counter()
        data = search_data.build(ids, vectors, phashes, dims=dims)
        build_s = time.perf_counter() - start
        if bits == 4:
            data = quantised_4bit(data, vectors)
        header, binary = search_data.to_files(data, "x.bin", "synthetic")
        item_bytes = dims * bits // 8 + search_data.HASH_BYTES
        total = (len(binary) - data.codes.nbytes + args.items * dims * bits // 8
                 + len(search_data.header_json(header).encode()))
        overlaps, firsts = [], []
        start = time.perf_counter()
        for q, exact, t in zip(queries, exact_top, truth):
            found = search_data.search(data, q, None, k=10, hash_distance=None, copy_similarity=None)
            positions = {int(m.id[4:]) for m in found}
            overlaps.append(len(positions & set(exact.tolist())) / 10)
            firsts.append(int(found[0].id[4:]) == t)
        query_s = (time.perf_counter() - start) / args.queries
        print(f"PCA {dims:3d} x {bits} bits: {item_bytes:3d} bytes an item ({total / args.items:.1f} with PCA and ids), "
              f"top-10 overlap {np.mean(overlaps):.3f} (min {np.min(overlaps):.1f}), true item first "
              f"{np.mean(firsts):.0%}, query {query_s * 1000:.1f} ms, build {build_s:.1f} s", flush=True)
        if dims == search_data.DIMENSIONS and bits == 8:
            timed = node_query_ms(header, binary, queries[:10])
            if timed is not None:
                print(f"  the browser's search (find-core.js) in Node: reading the data {timed[0]:.0f} ms, "
                      f"a query {timed[1]:.0f} ms", flush=True)
            shipped = (item_bytes, total / args.items, np.mean(overlaps), np.mean(firsts), query_s,
                       timed[1] if timed else float("nan"))
    item_bytes, total_bytes, overlap, first, query_s, js_ms = shipped
    print(f"items={args.items} bytes_per_item={item_bytes} bytes_per_item_with_ids={total_bytes:.1f} "
          f"top10_overlap={overlap:.3f} true_first={first:.2f} query_ms={query_s * 1000:.1f} "
          f"exact_query_ms={exact_s * 1000:.1f} js_query_ms={js_ms:.0f}")


if __name__ == "__main__":
    main()
