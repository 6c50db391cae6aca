/* archive-sim map ("Bildrelationer"), no dependencies.
 *
 * Reads a map document (api/v1/map/<scope>.json): points with x, y in [0, 1] and a
 * cell number, and atlas levels (see archive_sim/atlas.py). The smallest level holds
 * every point and is loaded first; sharper levels are loaded only for the part of the
 * map in view, as you zoom in, and dropped again when they take too much memory.
 * Drawn with WebGL 2, one draw call per run of cells of an atlas (instanced quads on
 * a GPU, six vertices a quad on a software renderer), or with Canvas 2D where WebGL 2
 * is missing. Mouse, touch and keyboard can do the same things.
 */
(function () {
  'use strict';
  var canvas = document.querySelector('canvas[data-src]');
  if (!canvas) return;
  var root = canvas.getAttribute('data-root') || '';
  var TXT = {};
  try { TXT = JSON.parse(canvas.getAttribute('data-text') || '{}'); } catch (e) { /* keep defaults */ }
  var $ = function (id) { return document.getElementById(id); };
  var tip = $('map-tooltip'), live = $('map-live'), statusEl = $('map-status');
  var zoomBox = canvas.parentNode.querySelector('.map-zoom');
  var frame = canvas.parentNode, panel = $('map-panel'), backLink = $('map-back');
  function json(name, fallback) {
    try { return JSON.parse(canvas.getAttribute(name) || '') || fallback; } catch (e) { return fallback; }
  }
  // Category names in legend order (a point's colour is its place here), and the sizes
  // of the item thumbnails the site writes beside the map's (media/<size>/<hash>.jpg).
  var CATS = json('data-categories', []), MEDIA = json('data-media', []);
  var reduceMotion = window.matchMedia && matchMedia('(prefers-reduced-motion: reduce)').matches;

  var MINPX = 4;          // CSS px: the smallest a thumbnail is drawn
  var SPREADMAX = 20000;  // points up to which overlap is reduced (past it, thumbnails start at MINPX)
  var MAXLOADS = 4;       // sharper atlases loading at once
  var SETTLE = 150;       // ms the view rests before sharper atlases load
  var BUDGET = 160e6;     // bytes of sharper atlases kept (base level not counted)
  var NONE = 0, LOADING = 1, READY = 2, FAILED = 3;

  var pts = [], levels = [], pad = 1, base = 0.05, ring = 0, turned = false;
  var similar = [], big = {}, bigCount = 0, bigLoads = 0, deepDrawn = 0;
  var view = { x: 0.5, y: 0.5, s: 1 };  // world point at canvas centre, CSS px per world unit
  var fit = null, bounds = null, minS = 1, maxS = 1;
  var W = 0, H = 0, dpr = 1;
  var hover = -1, focus = -1, showFocusTip = false, moved = false;
  var raf = 0, anim = null, inflight = 0, lastMove = 0, settleTimer = 0, tipFor = -1, frameNo = 0, firstFrame = false;
  var R = null, drawMs = 0;
  var colors = { ph: '#b4b1a8', accent: '#0b57d0', halo: '#fff', cats: [] };
  var BIGMAX = 96;        // item thumbnails (240/480 px) kept for deep zoom
  var BIGLOADS = 6;       // of them loading at once
  var BIGRETRY = 2000;    // ms before a thumbnail that failed is asked for again
  var DECODE_WAIT = 1000; // ms an image's decode() is waited for at most

  function clamp(v, a, b) { return v < a ? a : v > b ? b : v; }
  function catIndex(name) {
    for (var c = 0; c < CATS.length; c++) if (CATS[c].name === name) return c;
    return -1;
  }
  function setStatus(msg) { if (statusEl) { statusEl.textContent = msg; statusEl.hidden = !msg; } }
  function announce(msg) { if (live) live.textContent = msg; }
  function fail(msg) { pts = []; canvas.setAttribute('data-state', 'error'); setStatus(msg); announce(msg); request(); }
  function fmt(s, o) { return String(s || '').replace(/\{(\w+)\}/g, function (m, k) { return k in o ? o[k] : m; }); }
  // '#rgb', '#rrggbb' or 'rgb(r, g, b)' -> [r, g, b, 1] in 0..1 for WebGL.
  function rgba(css, fallback) {
    var m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(css), n;
    if (m) {
      var h = m[1].length === 3 ? m[1].replace(/./g, '$&$&') : m[1];
      n = [0, 2, 4].map(function (i) { return parseInt(h.substr(i, 2), 16); });
    } else if ((m = /^rgba?\(\s*(\d+)[\s,]+(\d+)[\s,]+(\d+)/i.exec(css))) {
      n = [+m[1], +m[2], +m[3]];
    } else return fallback;
    return [n[0] / 255, n[1] / 255, n[2] / 255, 1];
  }
  function readColors() {
    var cs = getComputedStyle(canvas);
    [['ph', '--map-ph'], ['accent', '--focus'], ['halo', '--map-halo']].forEach(function (c) {
      colors[c[0]] = cs.getPropertyValue(c[1]).trim() || colors[c[0]];
    });
    colors.gl = { ph: rgba(colors.ph, [0.7, 0.7, 0.66, 1]), accent: rgba(colors.accent, [0, 0.34, 0.8, 1]),
                  halo: rgba(colors.halo, [1, 1, 1, 1]), cats: new Float32Array(32) };
    // --map-cat-0 .. --map-cat-7: the legend's colours, the outline of each category's points.
    colors.cats = [];
    for (var c = 0; c < 8; c++) {
      var v = cs.getPropertyValue('--map-cat-' + c).trim() || colors.accent;
      colors.cats.push(v);
      colors.gl.cats.set(rgba(v, [0, 0, 0, 1]), 4 * c);
    }
  }

  /* ---------- atlas geometry (the same arithmetic as archive_sim/atlas.py) ---------- */
  function fitted(w, h, inner) {
    var s = inner / Math.max(w, h);
    return [Math.max(1, Math.floor(w * s + 0.5)), Math.max(1, Math.floor(h * s + 0.5))];
  }
  // Pixel rectangle of point p inside its atlas of level L: [left, top, width, height].
  function uvOf(p, L) {
    var within = p.cell % L.capacity, col = within % L.columns, row = Math.floor(within / L.columns);
    var f = fitted(p.iw, p.ih, L.cell - 2 * pad);
    return [col * L.cell + pad, row * L.cell + pad, f[0], f[1]];
  }
  // The index in pts of the first point whose cell is at least ``cell`` (pts rise by cell).
  function firstAtCell(cell) {
    var lo = 0, hi = pts.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (pts[mid].cell < cell) lo = mid + 1; else hi = mid; }
    return lo;
  }
  function atlasOf(p, L) { return L.atlases[Math.floor(p.cell / L.capacity)]; }

  /* ---------- view geometry ---------- */
  function thumbScale() { return Math.max(view.s, MINPX / base); }
  function rect(p) {
    var k = thumbScale(), w = p.w * k, h = p.h * k;
    var cx = (p.x - view.x) * view.s + W / 2, cy = (p.y - view.y) * view.s + H / 2;
    return { x: cx - w / 2, y: cy - h / 2, w: w, h: h, cx: cx };
  }
  function inside(r, x, y) { return x >= r.x && x <= r.x + r.w && y >= r.y && y <= r.y + r.h; }
  function visible(r) { return r.x < W && r.y < H && r.x + r.w > 0 && r.y + r.h > 0; }
  // The map rectangle in view, grown by half the largest thumbnail.
  function viewBox() {
    var m = base * thumbScale() / view.s / 2;
    return { x0: view.x - W / 2 / view.s - m, x1: view.x + W / 2 / view.s + m,
             y0: view.y - H / 2 / view.s - m, y1: view.y + H / 2 / view.s + m };
  }
  function meets(a, b) { return a.x0 <= b.x1 && a.x1 >= b.x0 && a.y0 <= b.y1 && a.y1 >= b.y0; }
  function hit(x, y) {
    if (focus >= 0 && inside(rect(pts[focus]), x, y)) return focus;
    if (hover >= 0 && inside(rect(pts[hover]), x, y)) return hover;
    var k = thumbScale() / view.s, wx = view.x + (x - W / 2) / view.s, wy = view.y + (y - H / 2) / view.s;
    for (var i = pts.length - 1; i >= 0; i--) {
      var p = pts[i];
      if (Math.abs(wx - p.x) * 2 <= p.w * k && Math.abs(wy - p.y) * 2 <= p.h * k) return i;
    }
    return -1;
  }

  function computeFit() {
    if (!pts.length || !W || !H) return;
    var b = { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
    pts.forEach(function (p) {
      b.x0 = Math.min(b.x0, p.x - p.w / 2); b.x1 = Math.max(b.x1, p.x + p.w / 2);
      b.y0 = Math.min(b.y0, p.y - p.h / 2); b.y1 = Math.max(b.y1, p.y + p.h / 2);
    });
    var margin = Math.min(24, W / 12);
    var s = Math.max(1, Math.min((W - 2 * margin) / Math.max(b.x1 - b.x0, base),
                                 (H - 2 * margin) / Math.max(b.y1 - b.y0, base)));
    bounds = b;
    fit = { x: (b.x0 + b.x1) / 2, y: (b.y0 + b.y1) / 2, s: s };
    minS = s / 2;
    // Zoom in until a thumbnail is drawn at twice the size of its sharpest atlas cell,
    // or at the size of the largest item thumbnail, which deep zoom draws from.
    var top = levels.length ? levels[levels.length - 1].cell : 128;
    maxS = Math.max(s * 4, Math.max(2 * top, MEDIA.length ? MEDIA[MEDIA.length - 1] : 0) / base);
  }

  /* ---------- layout: less overlap, and the map turned to fill the view ---------- */
  // Points closer than d (map units) are pushed apart for a few rounds, each pair by a
  // share of what it lacks, so that in a dense cluster each thumbnail keeps a part of
  // itself on top, where the pointer reaches it. Deterministic (the same document
  // gives the same map) and local: a point moves only where others crowd it, so the
  // items a rebuild adds move their old neighbours a little and nothing else.
  function spread(list, d, rounds) {
    var n = list.length, X = new Float64Array(n), Y = new Float64Array(n);
    var DX = new Float64Array(n), DY = new Float64Array(n), d2 = d * d, i, j;
    for (i = 0; i < n; i++) { X[i] = list[i].x; Y[i] = list[i].y; }
    for (var round = 0; round < rounds; round++) {
      var x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
      for (i = 0; i < n; i++) { x0 = Math.min(x0, X[i]); x1 = Math.max(x1, X[i]); y0 = Math.min(y0, Y[i]); y1 = Math.max(y1, Y[i]); }
      var gx = Math.floor((x1 - x0) / d) + 1, gy = Math.floor((y1 - y0) / d) + 1;
      if (gx * gy > 16 * n + 64) return;  // a sparse map: nothing to do
      // Points bucketed by grid cell of side d (a counting sort): a pair closer than
      // d lies in the same or a neighbouring cell.
      var cellOf = new Int32Array(n), start = new Int32Array(gx * gy + 1), order = new Int32Array(n);
      for (i = 0; i < n; i++) {
        cellOf[i] = Math.floor((X[i] - x0) / d) * gy + Math.floor((Y[i] - y0) / d);
        start[cellOf[i] + 1]++;
      }
      for (i = 0; i < gx * gy; i++) start[i + 1] += start[i];
      var fill = start.slice(0, gx * gy);
      for (i = 0; i < n; i++) order[fill[cellOf[i]]++] = i;
      DX.fill(0); DY.fill(0);
      var crowded = 0;
      for (i = 0; i < n; i++) {
        var cx = Math.floor(cellOf[i] / gy), cy = cellOf[i] % gy;
        for (var ax = Math.max(0, cx - 1); ax <= Math.min(gx - 1, cx + 1); ax++) {
          for (var ay = Math.max(0, cy - 1); ay <= Math.min(gy - 1, cy + 1); ay++) {
            var c = ax * gy + ay;
            for (var k = start[c]; k < start[c + 1]; k++) {
              j = order[k];
              if (j <= i) continue;
              var dx = X[j] - X[i], dy = Y[j] - Y[i], q = dx * dx + dy * dy;
              if (q >= d2) continue;
              var dist = Math.sqrt(q);
              if (dist < d * 1e-6) {  // one place: apart along a direction fixed by the pair
                var angle = (i * 7 + j * 13) % 360 * Math.PI / 180;
                dx = Math.cos(angle) * d * 1e-3; dy = Math.sin(angle) * d * 1e-3; dist = d * 1e-3;
              }
              var push = (d - dist) / dist * 0.25;
              DX[i] -= dx * push; DY[i] -= dy * push; DX[j] += dx * push; DY[j] += dy * push;
              crowded++;
            }
          }
        }
      }
      if (!crowded) break;
      for (i = 0; i < n; i++) {  // at most half the spacing a round: dense clusters open up, not burst
        var m = Math.hypot(DX[i], DY[i]), f = m > d / 2 ? d / 2 / m : 1;
        X[i] += DX[i] * f; Y[i] += DY[i] * f;
      }
    }
    for (i = 0; i < n; i++) { list[i].x = X[i]; list[i].y = Y[i]; }
  }
  // A map's axes mean nothing (t-SNE keeps neighbourhoods, not directions): a tall map
  // in a wide view (or the other way round) is turned a quarter, to fill it.
  function turn(x, y) { return [1 - y, x]; }
  function unturn(x, y) { return turned ? [y, 1 - x] : [x, y]; }
  function turnFits(list) {
    var w = canvas.clientWidth, h = canvas.clientHeight;
    if (!w || !h || list.length < 2) return false;
    var x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    list.forEach(function (p) { x0 = Math.min(x0, p.x); x1 = Math.max(x1, p.x); y0 = Math.min(y0, p.y); y1 = Math.max(y1, p.y); });
    var bw = Math.max(x1 - x0, 1e-9), bh = Math.max(y1 - y0, 1e-9);
    var fill = Math.min(w / bw, h / bh), turnedFill = Math.min(w / bh, h / bw);
    return turnedFill > fill * 1.15;
  }

  /* ---------- WebGL 2 renderer: textured quads, one draw call per run of cells ---------- */
  // With categories to tell apart (RINGED), each quad carries its category and the
  // fragment shader draws its outline; without, the lean shader: a software renderer
  // pays for every varying of every pixel (bench/map.py).
  var RINGED = CATS.length > 1;
  var VS = '#version 300 es\n' +
    (RINGED ? '#define RINGED\n' : '') +
    'precision highp float;\n' +
    'layout(location=0) in vec2 corner;\n' +
    'layout(location=1) in vec4 rect;\n' +   // centre x, y and size w, h in map units
    'layout(location=2) in vec4 uv;\n' +     // left, top, width, height in atlas pixels
    'uniform vec2 view; uniform float scale; uniform float grow; uniform vec2 screen; uniform vec2 tex; uniform float pad;\n' +
    'out vec2 st;\n' +
    '#ifdef RINGED\n' +
    'layout(location=3) in float cat;\n' +   // category: the colour of its outline (-1: none)
    'out vec2 local; out vec2 size; flat out int kind;\n' +
    '#endif\n' +
    'void main() {\n' +
    '  vec2 sz = rect.zw * grow + 2.0 * pad;\n' +
    '  vec2 p = (rect.xy - view) * scale + (corner - 0.5) * sz;\n' +
    '  gl_Position = vec4(p.x / screen.x, -p.y / screen.y, 0.0, 1.0);\n' +
    '  st = (uv.xy + corner * uv.zw) / tex;\n' +
    '#ifdef RINGED\n' +
    '  size = sz; local = corner * sz; kind = int(cat);\n' +
    '#endif\n' +
    '}\n';
  var FS = '#version 300 es\n' +
    (RINGED ? '#define RINGED\n' : '') +
    'precision mediump float;\n' +
    'in vec2 st; uniform sampler2D img; uniform vec4 color; uniform bool solid;\n' +
    'out vec4 outColor;\n' +
    '#ifdef RINGED\n' +
    'in vec2 local; in vec2 size; flat in int kind; uniform float ring; uniform vec4 cats[8];\n' +
    '#endif\n' +
    'void main() {\n' +
    '#ifdef RINGED\n' +
    '  vec2 edge = min(local, size - local);\n' +
    '  if (ring > 0.0 && kind >= 0 && min(edge.x, edge.y) < ring) { outColor = cats[kind]; return; }\n' +
    '#endif\n' +
    '  outColor = solid ? color : texture(img, st);\n' +
    '}\n';

  // `geometry`: 'instanced' (one instance per thumbnail), 'expanded' (six vertices per
  // thumbnail) or '' to choose: instancing is the fast way on a GPU, but software WebGL
  // (SwiftShader, llvmpipe) pays per instance: 10-15 times slower there (bench/map.py).
  function makeGL(geometry) {
    var gl = null;
    try {
      gl = canvas.getContext('webgl2', { alpha: true, antialias: false, depth: false, stencil: false,
                                         premultipliedAlpha: true, preserveDrawingBuffer: false });
    } catch (e) { gl = null; }
    if (!gl) return null;
    function shader(type, src) {
      var s = gl.createShader(type);
      gl.shaderSource(s, src); gl.compileShader(s);
      if (!gl.getShaderParameter(s, gl.COMPILE_STATUS) && !gl.isContextLost()) throw new Error(gl.getShaderInfoLog(s));
      return s;
    }
    var prog = gl.createProgram();
    gl.attachShader(prog, shader(gl.VERTEX_SHADER, VS));
    gl.attachShader(prog, shader(gl.FRAGMENT_SHADER, FS));
    gl.linkProgram(prog);
    if (!gl.getProgramParameter(prog, gl.LINK_STATUS) && !gl.isContextLost()) throw new Error(gl.getProgramInfoLog(prog));
    var u = {};
    ['view', 'scale', 'grow', 'screen', 'tex', 'pad', 'img', 'color', 'solid', 'ring', 'cats'].forEach(function (n) {
      u[n] = gl.getUniformLocation(prog, n);
    });
    var info = gl.getExtension('WEBGL_debug_renderer_info');
    var software = /swiftshader|llvmpipe|software|softpipe/i.test(
      String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER)));
    if (!geometry) geometry = software ? 'expanded' : 'instanced';
    var instanced = geometry === 'instanced';
    var STRIDE = (instanced ? 8 : 10) + (RINGED ? 1 : 0), PER = instanced ? 1 : 6;  // floats per vertex, vertices per quad
    var CORNERS = [0, 0, 1, 0, 0, 1, 0, 1, 1, 0, 1, 1];
    var corners = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, corners);
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([0, 0, 1, 0, 0, 1, 1, 1]), gl.STATIC_DRAW);

    function attribute(loc, size, offset, divisor) {
      gl.enableVertexAttribArray(loc);
      gl.vertexAttribPointer(loc, size, gl.FLOAT, false, STRIDE * 4, offset * 4);
      gl.vertexAttribDivisor(loc, divisor);
    }
    function vao(data, usage) {
      var v = gl.createVertexArray(), b = gl.createBuffer();
      gl.bindVertexArray(v);
      if (instanced) {
        gl.bindBuffer(gl.ARRAY_BUFFER, corners);
        gl.enableVertexAttribArray(0);
        gl.vertexAttribPointer(0, 2, gl.FLOAT, false, 0, 0);
      }
      gl.bindBuffer(gl.ARRAY_BUFFER, b);
      gl.bufferData(gl.ARRAY_BUFFER, data, usage);
      if (!instanced) attribute(0, 2, 0, 0);
      attribute(1, 4, instanced ? 0 : 2, instanced ? 1 : 0);
      attribute(2, 4, instanced ? 4 : 6, instanced ? 1 : 0);
      if (RINGED) attribute(3, 1, instanced ? 8 : 10, instanced ? 1 : 0);
      gl.bindVertexArray(null);
      return { vao: v, buf: b };
    }
    // Quad n of d: centre and size in map units, then the uv rectangle in atlas pixels.
    function put(d, n, p, uv) {
      for (var k = 0; k < PER; k++) {
        var o = (n * PER + k) * STRIDE;
        if (!instanced) { d[o] = CORNERS[2 * k]; d[o + 1] = CORNERS[2 * k + 1]; o += 2; }
        d[o] = p.x; d[o + 1] = p.y; d[o + 2] = p.w; d[o + 3] = p.h;
        d[o + 4] = uv[0]; d[o + 5] = uv[1]; d[o + 6] = uv[2]; d[o + 7] = uv[3];
        if (RINGED) d[o + 8] = p.cat;
      }
    }
    var one = new Float32Array(PER * STRIDE), mark = vao(one, gl.DYNAMIC_DRAW);

    // The quads of an atlas: one per cell it holds, in cell order.
    function ensure(a) {
      if (a.gl) return;
      var L = levels[a.level], d = new Float32Array((a.hi - a.lo) * PER * STRIDE);
      for (var i = a.lo; i < a.hi; i++) put(d, i - a.lo, pts[i], uvOf(pts[i], L));
      a.gl = vao(d, gl.STATIC_DRAW);
    }
    // Cells [s, e) of atlas a. Without a base-instance draw call in WebGL 2, an
    // instanced range starts where the attribute pointers are moved to.
    function drawRange(a, s, e) {
      gl.bindVertexArray(a.gl.vao);
      var skip = s - a.lo;
      if (!instanced) return gl.drawArrays(gl.TRIANGLES, 6 * skip, 6 * (e - s));
      if (skip || a.gl.skip) {
        gl.bindBuffer(gl.ARRAY_BUFFER, a.gl.buf);
        attribute(1, 4, skip * STRIDE, 1);
        attribute(2, 4, skip * STRIDE + 4, 1);
        if (RINGED) attribute(3, 1, skip * STRIDE + 8, 1);
        a.gl.skip = skip;
      }
      gl.drawArraysInstanced(gl.TRIANGLE_STRIP, 0, 4, e - s);
    }

    function uniforms(k) {
      gl.uniform2f(u.view, view.x, view.y);
      gl.uniform1f(u.scale, view.s);
      gl.uniform1f(u.grow, k);
      gl.uniform2f(u.screen, W / 2, H / 2);
      gl.uniform4fv(u.cats, colors.gl.cats);
    }
    function texture(a) {
      gl.bindTexture(gl.TEXTURE_2D, a.tex);
      gl.uniform2f(u.tex, a.img.naturalWidth, a.img.naturalHeight);
      gl.uniform1i(u.solid, 0);
    }

    return {
      name: 'webgl',
      geometry: geometry,
      resize: function () {
        canvas.width = Math.max(1, Math.round(W * dpr));
        canvas.height = Math.max(1, Math.round(H * dpr));
      },
      upload: function (a) {
        var t = gl.createTexture();
        gl.bindTexture(gl.TEXTURE_2D, t);
        gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
        gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGB8, gl.RGB, gl.UNSIGNED_BYTE, a.img);
        // The base level is drawn far smaller than its cells: mipmaps keep it calm. A
        // software renderer takes twice as long to draw with them (bench/map.py).
        var mip = a.level === 0 && !software;
        if (mip) gl.generateMipmap(gl.TEXTURE_2D);
        gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, mip ? gl.LINEAR_MIPMAP_LINEAR : gl.LINEAR);
        gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.LINEAR);
        gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
        gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
        a.tex = t;
      },
      drop: function (a) {
        if (a.tex) gl.deleteTexture(a.tex);
        if (a.gl) { gl.deleteBuffer(a.gl.buf); gl.deleteVertexArray(a.gl.vao); }
        a.tex = null; a.gl = null;
      },
      frame: function (segs) {
        var k = thumbScale();
        gl.viewport(0, 0, canvas.width, canvas.height);
        gl.clearColor(0, 0, 0, 0);
        gl.clear(gl.COLOR_BUFFER_BIT);
        gl.useProgram(prog);
        uniforms(k);
        gl.uniform1f(u.pad, 0);
        gl.uniform1f(u.ring, ring);
        gl.uniform1i(u.img, 0);
        gl.activeTexture(gl.TEXTURE0);
        segs.forEach(function (g) {
          ensure(g.a);
          if (g.a.state === READY) texture(g.a);
          else { gl.uniform1i(u.solid, 1); gl.uniform4fv(u.color, colors.gl.ph); }
          drawRange(g.a, g.s, g.e);
        });
        gl.bindVertexArray(null);
      },
      // A ring around point i (mode 1 hover, 2 selected; 0 none), then the point on top,
      // from atlas a or from an item thumbnail (uv: the whole image).
      mark: function (i, mode, a, uv) {
        var p = pts[i], g = mode * 2;
        put(one, 0, p, uv || (a ? uvOf(p, levels[a.level]) : [0, 0, 0, 0]));
        gl.bindBuffer(gl.ARRAY_BUFFER, mark.buf);
        gl.bufferSubData(gl.ARRAY_BUFFER, 0, one);
        gl.bindVertexArray(mark.vao);
        gl.uniform1i(u.solid, 1);
        var passes = mode ? [[colors.gl.halo, g + 2], [colors.gl.accent, g], [null, 0]] : [[null, 0]];
        passes.forEach(function (c) {
          gl.uniform1f(u.ring, c[0] ? 0 : ring);
          gl.uniform1f(u.pad, c[1]);
          if (c[0]) gl.uniform4fv(u.color, c[0]);
          else if (a) texture(a);
          else gl.uniform4fv(u.color, colors.gl.ph);
          if (instanced) gl.drawArraysInstanced(gl.TRIANGLE_STRIP, 0, 4, 1); else gl.drawArrays(gl.TRIANGLES, 0, 6);
        });
        gl.bindVertexArray(null);
      }
    };
  }

  /* ---------- Canvas 2D renderer: the same atlases, drawImage per thumbnail ---------- */
  function make2D() {
    var ctx = canvas.getContext('2d');
    if (!ctx) return null;
    function one(p, r, a, uv) {
      if (a) {
        uv = uv || uvOf(p, levels[a.level]);
        ctx.drawImage(a.img, uv[0], uv[1], uv[2], uv[3], r.x, r.y, r.w, r.h);
      } else {
        ctx.fillStyle = colors.ph;
        ctx.fillRect(r.x, r.y, r.w, r.h);
      }
      if (ring > 0 && p.cat >= 0) {
        ctx.strokeStyle = colors.cats[p.cat];
        ctx.lineWidth = Math.min(ring, r.w / 2, r.h / 2);
        var h = ctx.lineWidth / 2;
        ctx.strokeRect(r.x + h, r.y + h, r.w - 2 * h, r.h - 2 * h);
      }
    }
    return {
      name: '2d',
      resize: function () {
        canvas.width = Math.max(1, Math.round(W * dpr));
        canvas.height = Math.max(1, Math.round(H * dpr));
      },
      upload: function () {},
      drop: function () {},
      frame: function (segs) {
        ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
        ctx.clearRect(0, 0, W, H);
        ctx.imageSmoothingQuality = 'medium';
        segs.forEach(function (g) {
          var a = g.a.state === READY ? g.a : null;
          for (var i = g.s; i < g.e; i++) {
            var r = rect(pts[i]);
            if (visible(r)) one(pts[i], r, a);
          }
        });
      },
      mark: function (i, mode, a, uv) {
        var r = rect(pts[i]), g = mode * 2;
        if (mode) [[colors.halo, g + 2], [colors.accent, g]].forEach(function (c) {
          ctx.fillStyle = c[0];
          ctx.fillRect(r.x - c[1], r.y - c[1], r.w + 2 * c[1], r.h + 2 * c[1]);
        });
        one(pts[i], r, a, uv);
      }
    };
  }

  /* ---------- renderer choice; a lost WebGL context is rebuilt ---------- */
  function forget() {
    levels.forEach(function (L) { L.atlases.forEach(function (a) {
      a.tex = null; a.gl = null;
      if (a.state === READY) a.state = a.img ? READY : NONE;
    }); });
    Object.keys(big).forEach(function (k) { big[k].tex = null; });
  }
  // Chosen before any listener is attached: a canvas that got a WebGL context but
  // could not use it is swapped for a fresh one, since it can never give a 2D context.
  // ?renderer=2d|instanced|expanded overrides the choice (to compare, or to work round a driver).
  var forced = new URLSearchParams(window.location.search).get('renderer') || '';
  function start() {
    var gl = null;
    try { gl = forced === '2d' ? null : makeGL(forced === 'expanded' || forced === 'instanced' ? forced : ''); }
    catch (e) { gl = null; }
    if (!gl && canvas.getContext('2d') === null) {
      var fresh = canvas.cloneNode(false);
      canvas.parentNode.replaceChild(fresh, canvas);
      canvas = fresh;
    }
    R = gl || make2D();
    canvas.setAttribute('data-renderer', R ? R.name : 'none');
    if (R && R.geometry) canvas.setAttribute('data-geometry', R.geometry);
  }
  start();
  var R0geometry = R && R.geometry || '';
  canvas.addEventListener('webglcontextlost', function (e) { e.preventDefault(); R = null; });
  canvas.addEventListener('webglcontextrestored', function () {
    forget();
    try { R = makeGL(R0geometry); } catch (e) { R = null; }
    if (!R) return fail(TXT.error);
    R.resize();
    levels.forEach(function (L) { L.atlases.forEach(function (a) { if (a.state === READY) R.upload(a); }); });
    Object.keys(big).forEach(function (k) { if (big[k].state === READY) R.upload(big[k]); });
    request();
  });

  /* ---------- loading atlases ---------- */
  function load(a) {
    if (!a.src) { a.state = FAILED; return; }
    a.state = LOADING;
    if (a.level) inflight++;
    loadImage(root + a.src, function (img) {
      if (a.level) inflight--;
      if (!img) { a.state = FAILED; request(); return; }
      a.img = img;
      a.bytes = img.naturalWidth * img.naturalHeight * 4;
      a.state = READY;
      // Without a renderer (a lost WebGL context) the upload waits for the restored one.
      if (R) try { R.upload(a); } catch (e) { a.state = FAILED; }
      request();
    });
  }
  // Calls back with the loaded image, or null. decode() keeps the decoding off the frame
  // that first draws the image; it is not waited for longer than DECODE_WAIT ms, as a
  // browser may hold it back (a busy or hidden page) while the image itself has loaded.
  function loadImage(src, done) {
    var img = new Image(), called = false;
    function once(ok) {
      if (called) return;
      called = true;
      done(ok && img.naturalWidth ? img : null);
    }
    img.decoding = 'async';
    img.onerror = function () { once(false); };
    img.onload = function () {
      setTimeout(function () { once(true); }, DECODE_WAIT);
      if (img.decode) img.decode().then(function () { once(true); }, function () { once(true); });
      else once(true);
    };
    img.src = src;
  }

  // The level whose cells are closest above the size thumbnails are drawn at.
  function wantedLevel() {
    var px = base * thumbScale() * dpr;
    for (var l = 0; l < levels.length; l++) if (levels[l].cell * 1.25 >= px) return l;
    return levels.length - 1;
  }

  // What to draw: each cell once, from the sharpest loaded atlas up to one level
  // above the wanted one, as [{a: atlas, s: first cell, e: cell after the last}] in
  // cell order. An atlas of level l + 1 holds a part of the cells of one atlas of
  // level l, so the levels nest; an atlas whose points are all out of view is skipped
  // with everything inside it. Starts the loads the view needs, nearest first.
  function plan() {
    var box = viewBox(), want = wantedLevel(), upto = Math.min(want + 1, levels.length - 1);
    var segs = [], queue = [], top = levels.length - 1;
    levels[0].atlases.forEach(function (a) { if (a.state === NONE) load(a); });
    function push(a, lo, hi) {
      var g = segs[segs.length - 1];
      if (g && g.a === a && g.e === lo) g.e = hi; else segs.push({ a: a, s: lo, e: hi });
      a.used = frameNo;
    }
    function cover(l, lo, hi, fallback) {
      var L = levels[l];
      if (lo >= hi) return;
      for (var k = Math.floor(pts[lo].cell / L.capacity); k < L.atlases.length && L.atlases[k].lo < hi; k++) {
        var a = L.atlases[k];
        if (!meets(a.box, box)) continue;
        if (l === want && a.state === NONE) queue.push(a);
        var use = l === 0 || (a.state === READY && l <= upto) ? a : fallback;
        var s = Math.max(lo, a.lo), e = Math.min(hi, a.hi);
        if (l < top) cover(l + 1, s, e, use); else push(use, s, e);
      }
    }
    if (levels.length) cover(0, 0, pts.length, null);
    // Sharper atlases wait until the view rests: a zoom passes through levels whose
    // atlases it would only load to throw away, and each upload stalls a frame.
    var resting = performance.now() - lastMove;
    if (queue.length && resting < SETTLE) {
      if (!settleTimer) settleTimer = setTimeout(function () { settleTimer = 0; request(); }, SETTLE - resting + 10);
      queue = [];
    }
    queue.sort(function (a, b) { return dist(a) - dist(b); });
    for (var i = 0; i < queue.length && inflight < MAXLOADS; i++) load(queue[i]);
    evict();
    return { segs: segs, upto: upto };
  }
  function dist(a) {
    var cx = (a.box.x0 + a.box.x1) / 2 - view.x, cy = (a.box.y0 + a.box.y1) / 2 - view.y;
    return cx * cx + cy * cy;
  }
  // Drop the sharper atlases used longest ago while they hold more than BUDGET bytes.
  function evict() {
    var held = [], total = 0;
    for (var l = 1; l < levels.length; l++) levels[l].atlases.forEach(function (a) {
      if (a.state === READY) { held.push(a); total += a.bytes; }
    });
    if (total <= BUDGET) return;
    held.sort(function (a, b) { return a.used - b.used; });
    for (var i = 0; i < held.length && total > BUDGET; i++) {
      var a = held[i];
      if (a.used === frameNo) break;  // in use now; everything after it too
      R.drop(a);
      a.img = null; a.state = NONE; total -= a.bytes;
    }
  }

  /* ---------- drawing, only on demand ---------- */
  function request() { if (!raf) raf = requestAnimationFrame(draw); }

  function markBest(i, mode, upto, size) {
    var e = size && bigReady(i, size);
    if (e) R.mark(i, mode, e, [0, 0, e.img.naturalWidth, e.img.naturalHeight]);
    else R.mark(i, mode, bestFor(i, upto));
  }

  /* ---------- deep zoom: the item thumbnails (240 and 480 px) for what is in view ---------- */
  // Past the sharpest atlas, a point in view is drawn from the thumbnail its item page
  // uses, never from an atlas cell drawn 2-4 times its size. 0: the atlases suffice.
  function deepSize() {
    if (!MEDIA.length || !levels.length) return 0;
    var px = base * thumbScale() * dpr;
    if (px <= levels[levels.length - 1].cell * 1.1) return 0;
    for (var k = 0; k < MEDIA.length; k++) if (MEDIA[k] >= px * 0.9) return MEDIA[k];
    return MEDIA[MEDIA.length - 1];
  }
  function bigReady(i, size) {
    var e = big[i + ':' + size];
    if (e && e.state === READY) return e;
    for (var k = MEDIA.length - 1; k >= 0; k--) {  // another size, while this one loads
      e = big[i + ':' + MEDIA[k]];
      if (e && e.state === READY) return e;
    }
    return null;
  }
  function deep(segs, size) {
    var resting = performance.now() - lastMove >= SETTLE, want = [], shown = 0;
    deepDrawn = 0;
    segs.forEach(function (g) {
      for (var i = g.s; i < g.e; i++) {
        var r = rect(pts[i]);
        if (!visible(r)) continue;
        shown++;
        var e = bigReady(i, size);
        if (e) { e.used = frameNo; deepDrawn++; R.mark(i, 0, e, [0, 0, e.img.naturalWidth, e.img.naturalHeight]); }
        if (pts[i].thumb && wanted(big[i + ':' + size])) want.push(i);
      }
    });
    if (!want.length || shown > BIGMAX / 2) return;  // too many in view to be worth it
    if (!resting) {
      if (!settleTimer) settleTimer = setTimeout(function () { settleTimer = 0; request(); }, SETTLE + 10);
      return;
    }
    want.sort(function (a, b) { return Math.hypot(pts[a].x - view.x, pts[a].y - view.y) - Math.hypot(pts[b].x - view.x, pts[b].y - view.y); });
    for (var k = 0; k < want.length && bigLoads < BIGLOADS; k++) loadBig(want[k], size);
    dropBig();
  }
  function wanted(e) {
    if (!e) return true;
    if (e.state !== FAILED || e.tries > 2) return false;  // loading, ready, or given up
    if (performance.now() >= e.retryAt) return true;
    if (!settleTimer) settleTimer = setTimeout(function () { settleTimer = 0; request(); }, e.retryAt - performance.now() + 10);
    return false;
  }
  function loadBig(i, size) {
    var key = i + ':' + size, e = big[key];
    if (!e) { e = big[key] = { level: 1, tries: 0 }; bigCount++; }
    e.state = LOADING; e.used = frameNo; bigLoads++;
    loadImage(root + pts[i].thumb.replace(/^media\/\d+\//, 'media/' + size + '/'), function (img) {
      bigLoads--;
      if (big[key] !== e) return;
      if (img) {
        e.img = img; e.state = READY;
        if (R) try { R.upload(e); } catch (x) { img = null; }
      }
      // A thumbnail that failed (a dropped connection, a busy server) is asked for again
      // after BIGRETRY ms, at most twice, rather than leaving its point blurred for good.
      if (!img) { e.state = FAILED; e.retryAt = performance.now() + BIGRETRY; e.tries++; }
      request();
    });
  }
  // Keep the BIGMAX thumbnails used last.
  function dropBig() {
    if (bigCount <= BIGMAX) return;
    var held = Object.keys(big).filter(function (k) { return big[k].state !== LOADING; });
    held.sort(function (a, b) { return big[a].used - big[b].used; });
    for (var k = 0; k < held.length && bigCount > BIGMAX; k++) {
      var e = big[held[k]];
      if (e.used === frameNo) break;
      if (R && e.tex) R.drop(e);
      delete big[held[k]]; bigCount--;
    }
  }

  function bestFor(i, upto) {
    for (var l = upto; l >= 0; l--) {
      var a = atlasOf(pts[i], levels[l]);
      if (a && a.state === READY) return a;
    }
    return null;
  }

  function draw(now) {
    raf = 0;
    if (!R) return;
    var t0 = performance.now();
    frameNo++;
    if (anim) {
      var t = clamp(((now || t0) - anim.t0) / 300, 0, 1);
      var e = t < 0.5 ? 2 * t * t : 1 - Math.pow(2 - 2 * t, 2) / 2, a = anim.from, b = anim.to;
      view = { x: a.x + (b.x - a.x) * e, y: a.y + (b.y - a.y) * e, s: a.s * Math.pow(b.s / a.s, e) };
      lastMove = t0;
      if (t >= 1) { anim = null; saveSoon(); }
    }
    if (!pts.length) { R.frame([], 0); placeTip(); return; }
    // The category outline: thin on small thumbnails, all colour on the smallest.
    if (ring) ring = clamp(base * thumbScale() * 0.03, 1.5, 2.5);
    var p = plan(), size = deepSize();
    deepDrawn = 0;
    R.frame(p.segs);
    if (size) deep(p.segs, size);
    similar.forEach(function (i) { if (i !== focus && i !== hover) markBest(i, 1, p.upto, size); });
    if (hover >= 0 && hover !== focus) markBest(hover, 1, p.upto, size);
    if (focus >= 0) markBest(focus, 2, p.upto, size);
    placeTip();
    drawMs = performance.now() - t0;
    if (!firstFrame && levels.length && levels[0].atlases.every(function (x) { return x.state >= READY; })) {
      firstFrame = true;
      if (performance.mark) performance.mark('map-first-frame');
      canvas.setAttribute('data-state', 'ready');
    }
    if (anim) request();
  }

  function placeTip() {
    if (!tip) return;
    var i = hover >= 0 ? hover : showFocusTip ? focus : -1;
    var r = i >= 0 && rect(pts[i]);
    if (!r || !visible(r)) { tip.hidden = true; tipFor = -1; return; }
    if (tipFor !== i) { tip.textContent = pts[i].title; tipFor = i; }
    tip.hidden = false;
    var tw = tip.offsetWidth, th = tip.offsetHeight;
    var x = clamp(r.cx - tw / 2, 4, Math.max(4, W - tw - 4)), y = r.y - th - 8;
    if (y < 4) y = Math.min(r.y + r.h + 8, H - th - 4);
    tip.style.transform = 'translate(' + Math.round(x) + 'px,' + Math.round(y) + 'px)';
  }

  /* ---------- view changes ---------- */
  function changed() {
    moved = true;
    lastMove = performance.now();
    view.s = clamp(view.s, minS, maxS);
    if (bounds) {
      view.x = clamp(view.x, bounds.x0, bounds.x1);
      view.y = clamp(view.y, bounds.y0, bounds.y1);
    }
    saveSoon();
    request();
  }
  function setView(v) { anim = null; view = { x: v.x, y: v.y, s: v.s }; changed(); }
  function animateTo(x, y, s) {
    var to = { x: x, y: y, s: clamp(s, minS, maxS) };
    if (reduceMotion) return setView(to);
    anim = { from: { x: view.x, y: view.y, s: view.s }, to: to, t0: performance.now() };
    request();
  }
  // Scale to s keeping world (wx, wy) at screen (sx, sy).
  function zoomTo(s, sx, sy, wx, wy) {
    anim = null;
    view.s = s = clamp(s, minS, maxS);
    view.x = wx - (sx - W / 2) / s;
    view.y = wy - (sy - H / 2) / s;
    changed();
  }
  function zoomAt(f, sx, sy) {
    zoomTo(view.s * f, sx, sy, view.x + (sx - W / 2) / view.s, view.y + (sy - H / 2) / view.s);
  }
  // Keyboard and buttons zoom around the selected item when it is in view.
  function zoomKey(f) {
    var r = focus >= 0 && rect(pts[focus]);
    if (r && visible(r)) zoomAt(f, r.cx, r.y + r.h / 2); else zoomAt(f, W / 2, H / 2);
  }
  function pan(dx, dy) {
    anim = null;
    view.x -= dx / view.s;
    view.y -= dy / view.s;
    changed();
  }

  function setFocus(i, quiet) {
    var n = pts.length;
    focus = (i + n) % n;
    showFocusTip = moved = true;
    if (!quiet) {  // bring into view, zooming in if the thumb is tiny
      var p = pts[focus], r = rect(p), m = Math.min(W, H) * 0.15, s = view.s;
      if (base * s < 48) s = Math.min(120, Math.min(W, H) / 2.5) / base;
      if (s !== view.s || r.x < m || r.y < m || r.x + r.w > W - m || r.y + r.h > H - m) animateTo(p.x, p.y, s);
    }
    announce(pts[focus].title + ' (' + fmt(TXT.position, { index: focus + 1, count: n }) + ')');
    if (panelFor >= 0 && panelFor !== focus) openPanel(focus, true);
    saveSoon();
    request();
  }
  function unfocus() { focus = -1; showFocusTip = false; similar = []; saveSoon(); request(); }
  // Select point i and open its panel (a click, a tap, Enter).
  function choose(i, keepFocus) {
    if (i !== focus) setFocus(i, true);
    openPanel(i, keepFocus);
    reveal(i, false);
  }
  // The item nearest the centre of the view: where keyboard selection starts.
  function nearestCentre() {
    var bestI = 0, bestD = Infinity;
    for (var i = 0; i < pts.length; i++) {
      var dx = pts[i].x - view.x, dy = pts[i].y - view.y, d = dx * dx + dy * dy;
      if (d < bestD) { bestD = d; bestI = i; }
    }
    return bestI;
  }
  // The nearest item from the selected one in direction (dx, dy): what the mouse
  // reaches by pointing, the keyboard reaches with Shift + arrow keys.
  function step(dx, dy) {
    if (focus < 0) return setFocus(nearestCentre());
    var p = pts[focus], bestI = -1, bestD = Infinity;
    for (var i = 0; i < pts.length; i++) {
      if (i === focus) continue;
      var ex = pts[i].x - p.x, ey = pts[i].y - p.y, along = ex * dx + ey * dy, across = Math.abs(ex * dy - ey * dx);
      if (along <= 0 || across > along * 2) continue;  // within about 63 degrees of the direction
      var d = along + 2 * across;
      if (d < bestD) { bestD = d; bestI = i; }
    }
    if (bestI >= 0) setFocus(bestI);
  }
  /* ---------- the view in the address: #x=..&y=..&z=..&sel=slug ---------- */
  // x, y: the map point at the centre, as the map document lays it out (unturned);
  // z: the zoom, 1 when the whole map fits. Written as the view changes, so the
  // address can be shared and Back from an item page returns to this very view.
  var saveTimer = 0, written = window.location.hash;  // the address as the map last wrote or took it
  // Once the view rests: history.replaceState in every frame of a zoom would cost frames.
  function saveSoon() { if (!fit) return; clearTimeout(saveTimer); saveTimer = setTimeout(remember, 300); }
  function remember() {
    clearTimeout(saveTimer);
    saveTimer = 0;
    // The address changed since (typed, followed, Back): its hashchange takes the view
    // from it, and writing the view it replaces would undo it.
    if (!fit || window.location.hash !== written) return;
    var c = unturn(view.x, view.y), h = new URLSearchParams();
    h.set('x', c[0].toFixed(5)); h.set('y', c[1].toFixed(5)); h.set('z', (view.s / fit.s).toFixed(4));
    if (focus >= 0) h.set('sel', pts[focus].slug);
    if (panelFor >= 0) h.set('panel', '1');
    try {
      // The state holds the view as the address does (unturned, zoom relative to the
      // fitted map): a reload may turn or fit the map otherwise (another canvas size).
      history.replaceState({ view: { x: c[0], y: c[1], z: view.s / fit.s }, focus: focus >= 0 ? pts[focus].slug : null,
                             panel: panelFor >= 0 }, '', '#' + h.toString());
      written = window.location.hash;
    } catch (e) { /* ignore */ }
  }
  function fromHash() {
    var h = new URLSearchParams(window.location.hash.slice(1));
    var x = parseFloat(h.get('x')), y = parseFloat(h.get('y')), z = parseFloat(h.get('z'));
    var v = addressView(x, y, z);
    return v && { view: v, focus: h.get('sel'), panel: h.get('panel') === '1' };
  }
  // The view of an address's x, y (unturned) and z (relative to the fitted map); null
  // where they are not numbers.
  function addressView(x, y, z) {
    if (!isFinite(x) || !isFinite(y) || !(z > 0) || !fit) return null;
    var c = turned ? turn(x, y) : [x, y];
    return { x: c[0], y: c[1], s: z * fit.s };
  }
  function open(i, newTab) {
    var u = root + pts[i].url;
    if (newTab) { window.open(u, '_blank', 'noopener'); return; }
    remember();
    window.location.href = u;
  }

  /* ---------- the panel: the selected item, its metadata, its nearest neighbours ---------- */
  var panelFor = -1, panelToken = 0, infos = {}, bySlug = {}, STEPS = 6;
  function part(name) { return panel ? panel.querySelector('[data-panel="' + name + '"]') : null; }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function media(p, size) { return p.thumb.replace(/^media\/\d+\//, 'media/' + size + '/'); }
  // The part of the canvas the panel leaves free, in canvas px.
  function clearArea() {
    var a = { x0: 0, y0: 0, x1: W, y1: H };
    if (!panel || panel.hidden) return a;
    var b = panel.getBoundingClientRect(), c = canvas.getBoundingClientRect(), left = b.left - c.left, top = b.top - c.top;
    if (b.width < W * 0.7) { if (left > W / 2) a.x1 = left; else a.x0 = left + b.width; }
    else if (top > H / 4) a.y1 = top;
    return a;
  }
  // Bring point i into the free part of the view; zoom in first if its thumbnail is tiny.
  function reveal(i, zoom) {
    var p = pts[i], a = clearArea(), s = view.s, m = Math.max(12, Math.min(a.x1 - a.x0, a.y1 - a.y0) / 8);
    if (zoom && base * s < 48) s = Math.min(120, Math.min(a.x1 - a.x0, a.y1 - a.y0) / 2.5) / base;
    var k = thumbScale() * s / view.s, w = p.w * k / 2, h = p.h * k / 2;
    var cx = (p.x - view.x) * s + W / 2, cy = (p.y - view.y) * s + H / 2;
    if (s === view.s && cx - w >= a.x0 + m && cx + w <= a.x1 - m && cy - h >= a.y0 + m && cy + h <= a.y1 - m) return;
    animateTo(p.x - ((a.x0 + a.x1) / 2 - W / 2) / s, p.y - ((a.y0 + a.y1) / 2 - H / 2) / s, s);
  }
  // The item's neighbour list (its JSON) and metadata (the rows of its page), once each.
  function info(p) {
    if (infos[p.slug]) return infos[p.slug];
    function get(u, how) {
      return fetch(new URL(root + u, document.baseURI).href).then(function (r) {
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r[how]();
      });
    }
    // Each neighbour with the words of its band (the category's calibrated bands, as
    // the item page words it); none below the last band.
    var neighbours = get('api/v1/neighbors/' + p.url.replace(/\/index\.html$/, '') + '.json', 'json')
      .then(function (d) {
        var words = {};
        (d.bands || []).forEach(function (b) { words[b.name] = b.label; });
        return (Array.isArray(d.neighbors) ? d.neighbors : []).map(function (nb) {
          nb.words = nb.band ? words[nb.band] || '' : '';
          return nb;
        });
      });
    var rows = get(p.url, 'text').then(function (html) {
      var doc = new DOMParser().parseFromString(html, 'text/html');
      return Array.prototype.map.call(doc.querySelectorAll('dl.meta dt'), function (dt) {
        var dd = dt.nextElementSibling;
        return [dt.textContent.trim(), dd ? dd.textContent.trim() : ''];
      });
    }, function () { return []; });
    infos[p.slug] = Promise.all([neighbours, rows]).then(function (r) { return { neighbors: r[0], rows: r[1] }; });
    infos[p.slug].catch(function () { delete infos[p.slug]; });
    return infos[p.slug];
  }
  function openPanel(i, keepFocus) {
    if (!panel) return;
    var p = pts[i], token = ++panelToken, img = part('image'), title = part('title');
    panelFor = i;
    similar = [];
    title.textContent = p.title;
    if (img) {
      if (p.thumb && MEDIA.length) {
        img.src = root + media(p, MEDIA[0]);
        img.srcset = MEDIA.map(function (m) { return root + media(p, m) + ' ' + m + 'w'; }).join(', ');
        img.width = p.a >= 1 ? 240 : Math.round(240 * p.a);
        img.height = p.a >= 1 ? Math.round(240 / p.a) : 240;
        img.hidden = false;
      } else img.hidden = true;
    }
    var cat = part('category'), c = catIndex(p.category);
    if (cat) {
      cat.textContent = c >= 0 ? CATS[c].label : '';
      cat.style.setProperty('--swatch', c >= 0 && CATS.length > 1 ? colors.cats[c % 8] : 'transparent');
    }
    part('open').href = root + p.url;
    part('meta').textContent = '';
    part('list').textContent = '';
    part('similar').disabled = true;
    part('status').textContent = TXT.panel_loading || '';
    part('status').hidden = false;
    panel.hidden = false;
    frame.classList.add('has-panel');
    resize();  // on a phone the panel takes room from the map
    // preventScroll: focus would scroll the frame (overflow: hidden) and the canvas with it.
    if (!keepFocus) title.focus({ preventScroll: true });
    info(p).then(function (d) {
      if (token !== panelToken) return;
      fillPanel(p, d);
    }, function () {
      if (token !== panelToken) return;
      part('status').textContent = TXT.panel_error || '';
    });
    saveSoon();
    request();
  }
  function fillPanel(p, d) {
    var dl = part('meta'), list = part('list'), on = 0;
    d.rows.forEach(function (r) {
      var row = el('div', 'meta__row');
      row.appendChild(el('dt', '', r[0]));
      row.appendChild(el('dd', '', r[1]));
      dl.appendChild(row);
    });
    d.neighbors.slice(0, STEPS).forEach(function (nb) {
      var j = bySlug[nb.slug], li = el('li'), b;
      if (j >= 0) { b = el('button', 'map-step'); b.type = 'button'; b.setAttribute('data-index', j); on++; }
      else { b = el('a', 'map-step'); b.href = root + nb.url; }
      var im = el('img');
      im.src = root + nb.thumbnail; im.alt = ''; im.width = 48; im.height = 48; im.loading = 'lazy'; im.decoding = 'async';
      b.appendChild(im);
      var words = el('span', 'map-step__text');
      words.appendChild(el('span', 'map-step__title', nb.title));
      words.appendChild(el('span', 'map-step__sim', (nb.words ? nb.words + ' · ' : '') +
                           fmt(TXT.panel_similarity, { percent: Math.max(0, Math.round(nb.similarity * 100)) })));
      b.appendChild(words);
      li.appendChild(b);
      list.appendChild(li);
    });
    var status = part('status');
    status.textContent = d.neighbors.length ? '' : (TXT.panel_none || '');
    status.hidden = !!d.neighbors.length;
    part('similar').disabled = !d.neighbors.some(function (nb) { return bySlug[nb.slug] >= 0; });
    panel.setAttribute('data-loaded', p.slug);
  }
  function closePanel(refocus) {
    if (!panel || panelFor < 0) return;
    panelFor = -1;
    panelToken++;
    similar = [];
    panel.hidden = true;
    panel.removeAttribute('data-loaded');
    frame.classList.remove('has-panel');
    resize();
    if (refocus) canvas.focus({ preventScroll: true });
    saveSoon();
    request();
  }
  // Mark the item's neighbours on the map and show them all, beside the panel.
  function showSimilar() {
    var i = panelFor;
    if (i < 0) return;
    info(pts[i]).then(function (d) {
      if (panelFor !== i) return;
      similar = d.neighbors.map(function (nb) { return bySlug[nb.slug]; }).filter(function (j) { return j >= 0; });
      var box = { x0: pts[i].x, y0: pts[i].y, x1: pts[i].x, y1: pts[i].y };
      similar.forEach(function (j) {
        box.x0 = Math.min(box.x0, pts[j].x); box.x1 = Math.max(box.x1, pts[j].x);
        box.y0 = Math.min(box.y0, pts[j].y); box.y1 = Math.max(box.y1, pts[j].y);
      });
      var a = clearArea(), m = 40 + base * fit.s;
      var s = Math.min((a.x1 - a.x0 - 2 * m) / Math.max(box.x1 - box.x0, base), (a.y1 - a.y0 - 2 * m) / Math.max(box.y1 - box.y0, base));
      s = clamp(s, minS, Math.max(view.s, fit.s * 2));
      animateTo((box.x0 + box.x1) / 2 - ((a.x0 + a.x1) / 2 - W / 2) / s, (box.y0 + box.y1) / 2 - ((a.y0 + a.y1) / 2 - H / 2) / s, s);
      announce(fmt(TXT.similar_shown, { count: similar.length, title: pts[i].title }));
      request();
    });
  }
  if (panel) {
    panel.addEventListener('click', function (e) {
      var t = e.target.closest && e.target.closest('button');
      if (!t || !panel.contains(t)) return;
      if (t.getAttribute('data-panel') === 'close') closePanel(true);
      else if (t.getAttribute('data-panel') === 'similar') showSimilar();
      else if (t.hasAttribute('data-index')) {
        var j = +t.getAttribute('data-index');
        setFocus(j, true);
        openPanel(j, false);
        reveal(j, true);
      }
    });
    // Back from the item returns to this very view: written now, not after the pause.
    part('open').addEventListener('click', remember);
    panel.addEventListener('keydown', function (e) {
      if (e.key !== 'Escape') return;
      e.preventDefault();
      closePanel(true);
    });
  }

  /* ---------- pointer input: mouse, touch and pen ---------- */
  var ptrs = {}, nptr = 0, gesture = null;
  function pos(e) {
    var b = canvas.getBoundingClientRect();
    return { x: e.clientX - b.left, y: e.clientY - b.top };
  }
  function pinchState() {
    var k = Object.keys(ptrs), a = ptrs[k[0]], b = ptrs[k[1]];
    return { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2, d: Math.max(1, Math.hypot(a.x - b.x, a.y - b.y)) };
  }
  function setCursor() {
    canvas.style.cursor = gesture && gesture.moved ? 'grabbing' : hover >= 0 ? 'pointer' : 'grab';
  }

  canvas.addEventListener('pointerdown', function (e) {
    if (!pts.length || (e.pointerType === 'mouse' && e.button !== 0)) return;
    // No mouse events made up from a touch: their mousedown would take the focus
    // from the panel a tap opens.
    if (e.pointerType !== 'mouse') e.preventDefault();
    var q = pos(e);
    try { canvas.setPointerCapture(e.pointerId); } catch (err) { /* ignore */ }
    if (!ptrs[e.pointerId]) nptr++;
    ptrs[e.pointerId] = q;
    anim = null;
    if (nptr === 1) {
      gesture = { x0: q.x, y0: q.y, lx: q.x, ly: q.y, moved: false, type: e.pointerType };
    } else if (nptr === 2 && gesture) {
      var st = pinchState();
      gesture.moved = true;
      gesture.pinch = { d0: st.d, s0: view.s, wx: view.x + (st.x - W / 2) / view.s, wy: view.y + (st.y - H / 2) / view.s };
    }
  });

  canvas.addEventListener('pointermove', function (e) {
    var q = pos(e), g = gesture;
    if (!ptrs[e.pointerId]) {
      if (e.pointerType !== 'mouse' || !pts.length) return;
      var h = hit(q.x, q.y);
      if (h !== hover) { hover = h; setCursor(); request(); }
      return;
    }
    ptrs[e.pointerId] = q;
    if (!g) return;
    if (g.pinch && nptr >= 2) {
      var st = pinchState(), p = g.pinch;
      return zoomTo(p.s0 * st.d / p.d0, st.x, st.y, p.wx, p.wy);
    }
    if (!g.moved && Math.hypot(q.x - g.x0, q.y - g.y0) > (g.type === 'mouse' ? 4 : 10)) {
      g.moved = true;
      hover = -1;
      setCursor();
    }
    if (g.moved) pan(q.x - g.lx, q.y - g.ly);
    g.lx = q.x; g.ly = q.y;
  });

  function endPointer(e, cancelled) {
    if (!ptrs[e.pointerId]) return;
    delete ptrs[e.pointerId];
    var g = gesture, k;
    if (--nptr > 0) {  // pinch -> one-finger drag
      if (g) { g.pinch = null; for (k in ptrs) { g.lx = ptrs[k].x; g.ly = ptrs[k].y; } }
      return;
    }
    gesture = null;
    setCursor();
    if (cancelled || !g || g.moved) return;
    var q = pos(e), i = hit(q.x, q.y);
    if (i < 0) { closePanel(false); unfocus(); }
    else if (g.type === 'mouse' && (e.ctrlKey || e.metaKey || e.shiftKey)) open(i, true);
    else if (g.type !== 'mouse' && i === focus && panelFor === i) open(i);  // touch: a 2nd tap opens
    else choose(i);
  }
  canvas.addEventListener('pointerup', function (e) { endPointer(e, false); });
  canvas.addEventListener('pointercancel', function (e) { endPointer(e, true); });
  canvas.addEventListener('pointerleave', function (e) {
    if (e.pointerType === 'mouse' && hover >= 0 && !ptrs[e.pointerId]) { hover = -1; setCursor(); request(); }
  });

  canvas.addEventListener('wheel', function (e) {
    if (!pts.length) return;
    e.preventDefault();
    var d = e.deltaY * (e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? H : 1), q = pos(e);
    zoomAt(Math.exp(-clamp(d, -300, 300) * (e.ctrlKey ? 0.01 : 0.0025)), q.x, q.y);
  }, { passive: false });

  /* ---------- keyboard: everything the pointer does ---------- */
  var ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
  canvas.addEventListener('keydown', function (e) {
    if (!pts.length || e.altKey || e.ctrlKey || e.metaKey) return;
    var k = e.key, last = pts.length - 1, dir = ARROWS[k];
    if (dir) {
      if (e.shiftKey) step(dir[0], dir[1]);
      else pan(-dir[0] * W * 0.15, -dir[1] * H * 0.15);
      e.preventDefault();
      return;
    }
    switch (k) {
      case '+': case '=': zoomKey(1.5); break;
      case '-': case '_': zoomKey(1 / 1.5); break;
      case '0': if (fit) animateTo(fit.x, fit.y, fit.s); moved = false; break;
      case 'n': case 'N': setFocus(focus < 0 ? nearestCentre() : focus + 1); break;
      case 'p': case 'P': setFocus(focus < 0 ? nearestCentre() : focus - 1); break;
      case 'Home': setFocus(0); break;
      case 'End': setFocus(last); break;
      case 'Enter': case ' ':
        if (focus < 0) return;
        if (k === 'Enter' && e.shiftKey) open(focus, true); else choose(focus);
        break;
      case 'Escape':
        if (panelFor >= 0) { closePanel(false); break; }
        if (focus < 0 && !showFocusTip) return;
        unfocus();
        break;
      default: return;
    }
    e.preventDefault();
  });
  canvas.addEventListener('focus', function () { if (focus >= 0) { showFocusTip = true; request(); } });
  canvas.addEventListener('blur', function () { showFocusTip = false; request(); });

  if (zoomBox) zoomBox.addEventListener('click', function (e) {
    var b = e.target.closest && e.target.closest('button[data-zoom]');
    if (!b || !pts.length) return;
    var z = b.getAttribute('data-zoom');
    if (z === 'reset') { if (fit) animateTo(fit.x, fit.y, fit.s); moved = false; }
    else zoomKey(z === 'in' ? 1.5 : 1 / 1.5);
  });

  /* ---------- size, devicePixelRatio, colours ---------- */
  function resize() {
    var w = canvas.clientWidth, h = canvas.clientHeight, r = Math.min(2, window.devicePixelRatio || 1);
    if (w === W && h === H && r === dpr) return;
    W = w; H = h; dpr = r;
    if (R) R.resize();
    readColors();
    if (pts.length) {
      var keep = moved;
      computeFit();
      if (!keep && fit) setView(fit); else changed();
      moved = keep;
    }
    request();
  }
  if (window.ResizeObserver) new ResizeObserver(resize).observe(canvas);
  window.addEventListener('resize', resize);
  if (window.matchMedia) {
    var mq = matchMedia('(prefers-color-scheme: dark)');
    if (mq.addEventListener) mq.addEventListener('change', function () { readColors(); request(); });
  }

  /* ---------- data ---------- */
  function init(data) {
    if (!data || !Array.isArray(data.points)) throw new Error('bad map data');
    var atlas = data.atlas && Array.isArray(data.atlas.levels) ? data.atlas : { padding: 1, levels: [] };
    pad = +atlas.padding || 0;
    pts = [];
    data.points.forEach(function (d) {
      if (!d || !isFinite(d.x) || !isFinite(d.y) || typeof d.url !== 'string') return;
      var iw = d.width > 0 ? +d.width : 1, ih = d.height > 0 ? +d.height : 1;
      pts.push({
        slug: String(d.slug || ''), id: String(d.id || ''), title: String(d.title || d.slug || d.id || ''),
        x: +d.x, y: +d.y, iw: iw, ih: ih, a: iw / ih, url: d.url, cell: d.cell >= 0 ? +d.cell : -1,
        category: String(d.category || ''), cat: CATS.length > 1 ? catIndex(d.category) % 8 : -1, thumb: typeof d.thumb === 'string' ? d.thumb : ''
      });
    });
    ring = pts.some(function (p) { return p.cat >= 0; }) ? 1 : 0;
    if (!pts.length) return fail(TXT.empty);
    // Cell order is a walk along the map (a Hilbert curve): drawing and N / P follow it.
    pts.sort(function (a, b) { return a.cell - b.cell; });
    bySlug = Object.create(null);
    pts.forEach(function (p, i) { bySlug[p.slug] = i; });
    base = clamp(0.8 / Math.sqrt(pts.length), 0.006, 0.2);
    pts.forEach(function (p) {
      p.w = p.a >= 1 ? base : base * p.a;
      p.h = p.a >= 1 ? base / p.a : base;
    });
    if (pts.length <= SPREADMAX) spread(pts, 0.7 * base, 12);
    turned = turnFits(pts);
    if (turned) pts.forEach(function (p) { var t = turn(p.x, p.y); p.x = t[0]; p.y = t[1]; });
    // Each point is drawn from its cell in each level; cells rise along pts, with gaps
    // where points were removed since the atlases were packed (their cells are not shown).
    var placed = atlas.levels.length && pts.every(function (p, i) { return p.cell >= 0 && (i === 0 || p.cell > pts[i - 1].cell); });
    if (!placed) {  // a document without atlases: grey placeholders, still fully usable
      pts.forEach(function (p, i) { p.cell = i; });
      atlas = { levels: [{ cell: 1, columns: 1, capacity: pts.length, images: [null] }] };
    }
    levels = atlas.levels.map(function (L, l) {
      return { cell: +L.cell, columns: +L.columns, capacity: +L.capacity,
               atlases: L.images.map(function (src, i) {
                 // The points drawn from this atlas: pts[lo..hi), those of its cells.
                 var lo = firstAtCell(i * L.capacity), hi = firstAtCell((i + 1) * L.capacity);
                 var box = { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
                 for (var j = lo; j < hi; j++) {
                   box.x0 = Math.min(box.x0, pts[j].x); box.x1 = Math.max(box.x1, pts[j].x);
                   box.y0 = Math.min(box.y0, pts[j].y); box.y1 = Math.max(box.y1, pts[j].y);
                 }
                 return { src: src, level: l, lo: lo, hi: hi, box: box, state: NONE, used: 0 };
               }) };
    });
    setStatus('');
    W = H = 0;
    resize();
    if (zoomBox) zoomBox.hidden = false;
    // The view in the address (#x=..), or the one Back returns to; else
    // ?focus=<slug> centres, zooms to and highlights one point, with a link back to it.
    var from = new URLSearchParams(window.location.search).get('focus'), want = from;
    var kept = history.state && history.state.view, back = kept && addressView(kept.x, kept.y, kept.z);
    var state = !!back;
    var saved = state ? { view: back, focus: history.state.focus, panel: history.state.panel } : fromHash();
    if (saved) want = saved.focus || null;
    for (var i = 0; want && i < pts.length; i++) {
      var p = pts[i];
      if (p.slug !== want && p.id !== want) continue;
      focus = i;
      showFocusTip = true;
      // The panel first: on a phone it takes room from the map, and the zoom is
      // relative to the map that fits the rest.
      if (saved && saved.panel) { openPanel(i, true); if (!state) saved = fromHash() || saved; }
      if (!saved) setView({ x: p.x, y: p.y, s: Math.min(160, Math.min(W, H) / 3) / base });
      announce(p.title);
      break;
    }
    if (saved) setView(saved.view);
    for (i = 0; from && backLink && i < pts.length; i++) {
      if (pts[i].slug !== from && pts[i].id !== from) continue;
      backLink.href = root + pts[i].url;
      backLink.textContent = fmt(TXT.back, { title: pts[i].title });
      backLink.hidden = false;
      break;
    }
    request();
  }
  window.addEventListener('hashchange', function () {
    written = window.location.hash;
    var h = fromHash();
    if (!h) return;
    setView(h.view);
    var i = h.focus && h.focus in bySlug ? bySlug[h.focus] : -1;
    if (i >= 0) { focus = i; showFocusTip = true; if (h.panel) openPanel(i, true); }
  });

  // The map and its controls fit the first screen: the frame takes the height that
  // is left below the heading (a phone's whole first screen is not more).
  function fitFrame() {
    var top = frame.getBoundingClientRect().top + (window.scrollY || 0), room = Math.floor(window.innerHeight - top - 12);
    frame.style.height = room >= 288 ? Math.min(room, 1024) + 'px' : '';
  }
  fitFrame();
  window.addEventListener('resize', fitFrame);

  // A small read-only window onto the map, for other scripts on the page and for tests.
  window.archiveSimMap = {
    renderer: function () { return R ? R.name : 'none'; },
    locate: function (slug) {
      for (var i = 0; i < pts.length; i++) {
        if (pts[i].slug !== slug && pts[i].id !== slug) continue;
        var r = rect(pts[i]), b = canvas.getBoundingClientRect();
        return { x: b.left + r.cx, y: b.top + r.y + r.h / 2, width: r.w, height: r.h, visible: visible(r) };
      }
      return null;
    },
    at: function (clientX, clientY) {  // the slug of the thumbnail drawn on top at a point of the page
      var b = canvas.getBoundingClientRect(), i = hit(clientX - b.left, clientY - b.top);
      return i >= 0 ? pts[i].slug : null;
    },
    selected: function () { return focus >= 0 ? pts[focus].slug : null; },
    // Where the map lays out a point, in map units, as the address gives the view (unturned).
    position: function (slug) {
      var i = bySlug[slug];
      if (!(i >= 0)) return null;
      var c = unturn(pts[i].x, pts[i].y);
      return { x: c[0], y: c[1], size: base };
    },
    view: function () { return { x: view.x, y: view.y, scale: view.s, fit: fit ? fit.s : null }; },
    zoomBy: function (f) { if (pts.length) zoomAt(f, W / 2, H / 2); },
    stats: function () {
      return { points: pts.length, geometry: R && R.geometry || '', frames: frameNo, drawMs: drawMs, level: levels.length ? wantedLevel() : -1,
               deep: deepDrawn, turned: turned, renderer: R ? R.name : 'none',
               thumbs: Object.keys(big).map(function (k) { return big[k].state; }),
               loaded: levels.map(function (L) {
                 return L.atlases.filter(function (a) { return a.state === READY; }).length;
               }) };
    }
  };

  var src = canvas.getAttribute('data-src');
  canvas.setAttribute('data-state', 'loading');
  setStatus(TXT.loading);
  resize();
  if (!R || !src || !window.fetch) return fail(TXT.error);
  // data-src is site-relative; data-root leads to the site root.
  fetch(new URL(root + src, document.baseURI).href)
    .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
    .then(init)
    .catch(function () { fail(TXT.error); });
})();
