/* Find by image: the Web Worker that embeds a visitor's picture and searches the collection.
 *
 * Messages in: {type: "load", base} with the site's root URL (it reads find/model.json,
 * the model and each category's search data beneath it); {type: "find", file, k,
 * categories} with a File or Blob. Messages out: {type: "ready", modelBytes},
 * {type: "results", matches, seconds} (matches: id, category, similarity, copy,
 * hashDistance; copies first) and {type: "error", code, message}. The picture never
 * leaves the browser: it is decoded, embedded and compared here.
 */
"use strict";

const here = new URL(".", self.location.href);
importScripts(new URL("find-core.js", here).href, new URL("../vendor/onnxruntime-web/ort.wasm.min.js", here).href);

let manifest = null, session = null, base = null;
const categoryData = new Map();  // category -> Promise of its search data, loaded once

async function fetchOk(url, as) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return as === "json" ? response.json() : response.arrayBuffer();
}

async function load(siteBase) {
  if (typeof WebAssembly !== "object") {
    throw Object.assign(new Error("this browser cannot run WebAssembly"), { code: "no-wasm" });
  }
  base = new URL(siteBase, self.location.href);
  manifest = await fetchOk(new URL("find/model.json", base), "json");
  ort.env.wasm.wasmPaths = new URL("../vendor/onnxruntime-web/", here).href;
  // Threads need a cross-origin-isolated page; a static host rarely sends those headers.
  ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  const model = await fetchOk(new URL(manifest.model, base), "bytes");
  session = await ort.InferenceSession.create(model, { executionProviders: ["wasm"] });
  // The first run sets up the kernels (seconds on a slow machine): pay it while loading,
  // not in the visitor's first answer.
  const size = manifest.input_size;
  await session.run({ [manifest.input]: new ort.Tensor("float32", new Float32Array(size * size * 3),
                                                       [1, size, size, 3]) });
  return model.byteLength;
}

function searchData(category) {
  if (!categoryData.has(category.name)) {
    categoryData.set(category.name, (async () => {
      const header = await fetchOk(new URL(category.header, base), "json");
      const binary = await fetchOk(new URL(header.data, new URL(category.header, base)), "bytes");
      return FindCore.readSearchData(header, binary);
    })());
  }
  return categoryData.get(category.name);
}

async function decode(file) {
  let bitmap;
  try {
    // from-image: EXIF orientation applied, as the build's ImageOps.exif_transpose.
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image", premultiplyAlpha: "none",
                                             colorSpaceConversion: "none" });
  } catch (error) {
    throw Object.assign(new Error(`${file.name || "the file"} is not an image this browser can read`),
                        { code: "not-image" });
  }
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  const { data } = context.getImageData(0, 0, bitmap.width, bitmap.height);
  bitmap.close();
  const head = new Uint8Array(await file.slice(0, 3).arrayBuffer());
  const isJpeg = head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff;
  return { rgb: FindCore.rgbOverWhite(data, canvas.width, canvas.height), isJpeg };
}

async function find(file, k, only) {
  const start = performance.now();
  const { rgb, isJpeg } = await decode(file);
  const size = manifest.input_size;
  const input = new ort.Tensor("float32", FindCore.modelInput(rgb, size, isJpeg), [1, size, size, 3]);
  const output = await session.run({ [manifest.input]: input });
  const vector = output[manifest.output].data;
  const hash = FindCore.phash(rgb, isJpeg);
  const categories = manifest.categories.filter((c) => !only || only.includes(c.name));
  const matches = [];
  for (const category of categories) {
    const data = await searchData(category);
    for (const m of FindCore.search(data, vector, hash, k, manifest.copies.hash_distance,
                                    manifest.copies.similarity)) {
      matches.push({ ...m, category: category.name });
    }
  }
  matches.sort((a, b) => (a.copy === b.copy ? 0 : a.copy ? -1 : 1) || b.similarity - a.similarity
    || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { matches: matches.slice(0, k), seconds: (performance.now() - start) / 1000 };
}

self.onmessage = async (event) => {
  const message = event.data;
  try {
    if (message.type === "load") {
      self.postMessage({ type: "ready", modelBytes: await load(message.base) });
    } else if (message.type === "find") {
      self.postMessage({ type: "results", ...(await find(message.file, message.k || 10, message.categories)) });
    }
  } catch (error) {
    self.postMessage({ type: "error", code: error.code || "failed", message: String(error.message || error) });
  }
};
