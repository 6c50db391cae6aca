/* Find by image: the pure computations, shared by the Web Worker and by tests in Node.
 *
 * Input: RGBA pixels of a decoded picture (EXIF orientation applied by the browser),
 * the search data of a category (docs/json-api.md, "Search by example data").
 * Output: the model input as archive_sim/imaging.py makes it (alpha over white,
 * Pillow's JPEG draft scaling, box reduction and bilinear resampling), the 64-bit
 * pHash as imagehash computes it, and the ranked matches of archive_sim/search_data.py.
 * Pixel steps round to 8 bits between passes, as Pillow does.
 */
(function (root) {
  "use strict";

  // RGBA (any alpha) -> RGB over white: archive_sim/imaging.py, _to_rgb.
  function rgbOverWhite(rgba, width, height) {
    const out = new Uint8Array(width * height * 3);
    for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
      const a = rgba[i + 3];
      if (a === 255) {
        out[j] = rgba[i]; out[j + 1] = rgba[i + 1]; out[j + 2] = rgba[i + 2];
      } else {
        for (let c = 0; c < 3; c++) {
          out[j + c] = Math.round((rgba[i + c] * a + 255 * (255 - a)) / 255);
        }
      }
    }
    return { pixels: out, width, height, channels: 3 };
  }

  // Pillow's JPEG draft: the largest DCT scale 1/1, 1/2, 1/4 or 1/8 that keeps both
  // sides at least minSide (PIL.JpegImagePlugin.draft).
  function draftScale(width, height, minSide) {
    const scale = Math.min(Math.floor(width / minSide), Math.floor(height / minSide));
    for (const s of [8, 4, 2]) {
      if (scale >= s) return s;
    }
    return 1;
  }

  // Box average over factor x factor blocks (Pillow's Image.reduce; partial edge blocks
  // average the pixels they have). Also stands in for JPEG's DCT scaling.
  function reduce(img, fx, fy) {
    if (fx === 1 && fy === 1) return img;
    const { pixels, width, height, channels } = img;
    const w = Math.ceil(width / fx), h = Math.ceil(height / fy);
    const out = new Uint8Array(w * h * channels);
    for (let y = 0; y < h; y++) {
      const y0 = y * fy, y1 = Math.min(y0 + fy, height);
      for (let x = 0; x < w; x++) {
        const x0 = x * fx, x1 = Math.min(x0 + fx, width);
        const count = (y1 - y0) * (x1 - x0);
        for (let c = 0; c < channels; c++) {
          let sum = 0;
          for (let yy = y0; yy < y1; yy++) {
            for (let xx = x0; xx < x1; xx++) sum += pixels[(yy * width + xx) * channels + c];
          }
          out[(y * w + x) * channels + c] = Math.floor((sum + count / 2) / count);
        }
      }
    }
    return { pixels: out, width: w, height: h, channels };
  }

  const FILTERS = {
    bilinear: { support: 1, f: (x) => { x = Math.abs(x); return x < 1 ? 1 - x : 0; } },
    lanczos: {
      support: 3,
      f: (x) => {
        if (x === 0) return 1;
        if (x <= -3 || x >= 3) return 0;
        const px = Math.PI * x;
        return (Math.sin(px) / px) * (Math.sin(px / 3) / (px / 3));
      },
    },
  };

  // Pillow's precompute_coeffs (libImaging/Resample.c) for one axis.
  function coefficients(inSize, in0, in1, outSize, filter) {
    const scale = (in1 - in0) / outSize;
    const filterScale = Math.max(scale, 1);
    const support = filter.support * filterScale;
    const bounds = [], weights = [];
    for (let xx = 0; xx < outSize; xx++) {
      const center = in0 + (xx + 0.5) * scale;
      const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
      const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
      const k = new Float64Array(xmax);
      let total = 0;
      for (let x = 0; x < xmax; x++) {
        const w = filter.f((x + xmin - center + 0.5) / filterScale);
        k[x] = w; total += w;
      }
      if (total !== 0) for (let x = 0; x < xmax; x++) k[x] /= total;
      bounds.push(xmin); weights.push(k);
    }
    return { bounds, weights };
  }

  function clip8(v) {
    return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
  }

  function resampleHorizontal(img, outWidth, box, filter) {
    const { pixels, width, height, channels } = img;
    const { bounds, weights } = coefficients(width, box[0], box[1], outWidth, filter);
    const out = new Uint8Array(outWidth * height * channels);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < outWidth; x++) {
        const k = weights[x], x0 = bounds[x];
        for (let c = 0; c < channels; c++) {
          let s = 0;
          for (let i = 0; i < k.length; i++) s += pixels[(y * width + x0 + i) * channels + c] * k[i];
          out[(y * outWidth + x) * channels + c] = clip8(s);
        }
      }
    }
    return { pixels: out, width: outWidth, height, channels };
  }

  function resampleVertical(img, outHeight, box, filter) {
    const { pixels, width, height, channels } = img;
    const { bounds, weights } = coefficients(height, box[0], box[1], outHeight, filter);
    const out = new Uint8Array(width * outHeight * channels);
    for (let y = 0; y < outHeight; y++) {
      const k = weights[y], y0 = bounds[y];
      for (let x = 0; x < width; x++) {
        for (let c = 0; c < channels; c++) {
          let s = 0;
          for (let i = 0; i < k.length; i++) s += pixels[((y0 + i) * width + x) * channels + c] * k[i];
          out[(y * width + x) * channels + c] = clip8(s);
        }
      }
    }
    return { pixels: out, width, height: outHeight, channels };
  }

  // Image.resize(size, filter, reducing_gap): reduce by whole factors while the image
  // stays reducingGap times the target, then resample (horizontal pass first).
  function resize(img, outWidth, outHeight, filterName, reducingGap) {
    const filter = FILTERS[filterName];
    let box = [0, 0, img.width, img.height];
    if (reducingGap) {
      const fx = Math.max(1, Math.floor(img.width / outWidth / reducingGap));
      const fy = Math.max(1, Math.floor(img.height / outHeight / reducingGap));
      if (fx > 1 || fy > 1) {
        img = reduce(img, fx, fy);
        box = [0, 0, box[2] / fx, box[3] / fy];
      }
    }
    if (outWidth !== img.width || box[0] !== 0 || box[2] !== img.width) {
      img = resampleHorizontal(img, outWidth, [box[0], box[2]], filter);
    }
    if (outHeight !== img.height || box[1] !== 0 || box[3] !== img.height) {
      img = resampleVertical(img, outHeight, [box[1], box[3]], filter);
    }
    return img;
  }

  // The model's input: archive_sim/imaging.py load_rgb(min_side=size) + model_array(size).
  function modelInput(rgb, size, isJpeg) {
    let img = rgb;
    if (isJpeg) {
      const s = draftScale(img.width, img.height, size);
      img = reduce(img, s, s);
    }
    img = resize(img, size, size, "bilinear", 2.0);
    return Float32Array.from(img.pixels);  // NHWC, [0, 255]
  }

  // Pillow's convert("L"): ITU-R 601-2 luma in 16-bit fixed point.
  function luma(img) {
    const { pixels, width, height } = img;
    const out = new Uint8Array(width * height);
    for (let i = 0, j = 0; j < out.length; i += 3, j++) {
      out[j] = (pixels[i] * 19595 + pixels[i + 1] * 38470 + pixels[i + 2] * 7471 + 0x8000) >> 16;
    }
    return { pixels: out, width, height, channels: 1 };
  }

  // imagehash.phash of load_rgb(min_side=128), as archive_sim/copy_detection.py: gray,
  // Lanczos to 32x32, 2-D DCT-II, the 8x8 lowest frequencies against their median.
  // Returns [high 32 bits, low 32 bits] (the big-endian 64-bit value).
  function phash(rgb, isJpeg) {
    let img = rgb;
    if (isJpeg) {
      const s = draftScale(img.width, img.height, 128);
      img = reduce(img, s, s);
    }
    const small = resize(luma(img), 32, 32, "lanczos", 0);
    const n = 32, p = small.pixels;
    const cos = new Float64Array(n * n);
    for (let k = 0; k < n; k++) for (let i = 0; i < n; i++) cos[k * n + i] = Math.cos(Math.PI * k * (2 * i + 1) / (2 * n));
    const rows = new Float64Array(8 * n);  // DCT along axis 0 (columns), first 8 frequencies
    for (let k = 0; k < 8; k++) {
      for (let x = 0; x < n; x++) {
        let s = 0;
        for (let y = 0; y < n; y++) s += p[y * n + x] * cos[k * n + y];
        rows[k * n + x] = 2 * s;
      }
    }
    const low = new Float64Array(64);
    for (let k = 0; k < 8; k++) {
      for (let l = 0; l < 8; l++) {
        let s = 0;
        for (let x = 0; x < n; x++) s += rows[k * n + x] * cos[l * n + x];
        low[k * 8 + l] = 2 * s;
      }
    }
    const sorted = Array.from(low).sort((a, b) => a - b);
    const median = (sorted[31] + sorted[32]) / 2;
    let hi = 0, lo = 0;
    for (let i = 0; i < 64; i++) {
      const bit = low[i] > median ? 1 : 0;
      if (i < 32) hi = (hi * 2 + bit) >>> 0; else lo = (lo * 2 + bit) >>> 0;
    }
    return [hi, lo];
  }

  function halfToFloat(h) {
    const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e === 0) return s * m * 2 ** -24;
    if (e === 31) return m ? NaN : s * Infinity;
    return s * (1 + m / 1024) * 2 ** (e - 15);
  }

  // The arrays of one category's search data, viewed in place in its binary file.
  function readSearchData(header, buffer) {
    if (header.format !== 1) throw new Error(`search data format ${header.format}: this page reads format 1`);
    const views = {};
    for (const a of header.arrays) {
      const T = { float32: Float32Array, float16: Uint16Array, int8: Int8Array, uint8: Uint8Array }[a.dtype];
      views[a.name] = new T(buffer, a.offset, a.bytes / T.BYTES_PER_ELEMENT);
    }
    const components = new Float32Array(views.components.length);
    for (let i = 0; i < components.length; i++) components[i] = halfToFloat(views.components[i]);
    return { ids: header.ids, count: header.count, dims: header.dims, dim: header.vector_dim,
             mean: views.mean, components, scale: views.scale, codes: views.codes,
             phashes: views.phashes, hasPhash: views.has_phash };
  }

  function popcount(v) {
    v -= (v >>> 1) & 0x55555555;
    v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
    return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
  }

  // archive_sim/search_data.py search(): similarity from the codes, copies first.
  function search(data, query, queryHash, k, hashDistance, copySimilarity) {
    const { count, dims, dim, mean, components, scale, codes, phashes, hasPhash } = data;
    const projected = new Float32Array(dims);
    for (let j = 0; j < dims; j++) {
      let s = 0;
      for (let i = 0; i < dim; i++) s += components[j * dim + i] * query[i];
      projected[j] = s * scale[j];
    }
    let base = 0;
    for (let i = 0; i < dim; i++) base += mean[i] * query[i];
    const sims = new Float32Array(count);
    for (let n = 0; n < count; n++) {
      let s = base;
      const row = n * dims;
      for (let j = 0; j < dims; j++) s += codes[row + j] * projected[j];
      sims[n] = Math.max(-1, Math.min(1, s));
    }
    const order = Array.from({ length: count }, (_, i) => i).sort((a, b) => sims[b] - sims[a] || a - b);
    const candidates = new Set(order.slice(0, k));
    const distances = new Int32Array(count).fill(-1);
    if (queryHash) {
      for (let n = 0; n < count; n++) {
        if (!(hasPhash[n >> 3] & (1 << (n & 7)))) continue;
        const o = n * 8;
        const hi = ((phashes[o] << 24) | (phashes[o + 1] << 16) | (phashes[o + 2] << 8) | phashes[o + 3]) >>> 0;
        const lo = ((phashes[o + 4] << 24) | (phashes[o + 5] << 16) | (phashes[o + 6] << 8) | phashes[o + 7]) >>> 0;
        distances[n] = popcount((hi ^ queryHash[0]) >>> 0) + popcount((lo ^ queryHash[1]) >>> 0);
        if (hashDistance != null && distances[n] <= hashDistance) candidates.add(n);
      }
    }
    const found = Array.from(candidates, (n) => {
      const d = distances[n] >= 0 ? distances[n] : null;
      const similarity = Math.round(sims[n] * 1e4) / 1e4;
      const copy = (hashDistance != null && d !== null && d <= hashDistance)
        || (copySimilarity != null && sims[n] >= copySimilarity);
      return { id: data.ids[n], similarity, copy, hashDistance: d };
    });
    found.sort((a, b) => (a.copy === b.copy ? 0 : a.copy ? -1 : 1) || b.similarity - a.similarity
      || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return found.slice(0, k);
  }

  const api = { rgbOverWhite, draftScale, reduce, resize, modelInput, luma, phash, readSearchData, search };
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  else root.FindCore = api;
})(typeof self !== "undefined" ? self : this);
