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
  var reduceMotion = window.matchMedia && matchMedia('(prefers-reduced-motion: reduce)').matches;

  var MINPX = 4;          // CSS px: the smallest a thumbnail is drawn
  var MAXLOADS = 4;       // sharper atlases loading at once
  var SETTLE = 150;       // ms the view rests before sharper atlases load
  var BUDGET = 160e6;     // bytes of sharper atlases kept (base level not counted)
  var NONE = 0, LOADING = 1, READY = 2, FAILED = 3;

  var pts = [], levels = [], pad = 1, base = 0.05;
  var view = { x: 0.5, y: 0.5, s: 1 };  // world point at canvas centre, CSS px per world unit
  var fit = null, bounds = null, minS = 1, maxS = 1;
  var W = 0, H = 0, dpr = 1;
  var hover = -1, focus = -1, showFocusTip = false, moved = false;
  var raf = 0, anim = null, inflight = 0, lastMove = 0, settleTimer = 0, tipFor = -1, frameNo = 0, firstFrame = false;
  var R = null, drawMs = 0;
  var colors = { ph: '#b4b1a8', accent: '#0b57d0', halo: '#fff' };

  function clamp(v, a, b) { return v < a ? a : v > b ? b : v; }
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
                  halo: rgba(colors.halo, [1, 1, 1, 1]) };
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
    var margin = Math.min(32, W / 10);
    var s = Math.max(1, Math.min((W - 2 * margin) / Math.max(b.x1 - b.x0, base),
                                 (H - 2 * margin) / Math.max(b.y1 - b.y0, base)));
    bounds = b;
    fit = { x: (b.x0 + b.x1) / 2, y: (b.y0 + b.y1) / 2, s: s };
    minS = s / 2;
    // Zoom in until a thumbnail is drawn at twice the size of its sharpest atlas cell.
    var top = levels.length ? levels[levels.length - 1].cell : 128;
    maxS = Math.max(s * 4, 2 * top / base);
  }

  /* ---------- WebGL 2 renderer: textured quads, one draw call per run of cells ---------- */
  var VS = '#version 300 es\n' +
    'precision highp float;\n' +
    'layout(location=0) in vec2 corner;\n' +
    'layout(location=1) in vec4 rect;\n' +   // centre x, y and size w, h in map units
    'layout(location=2) in vec4 uv;\n' +     // left, top, width, height in atlas pixels
    'uniform vec2 view; uniform float scale; uniform float grow; uniform vec2 screen; uniform vec2 tex; uniform float pad;\n' +
    'out vec2 st;\n' +
    'void main() {\n' +
    '  vec2 p = (rect.xy - view) * scale + (corner - 0.5) * (rect.zw * grow + 2.0 * pad);\n' +
    '  gl_Position = vec4(p.x / screen.x, -p.y / screen.y, 0.0, 1.0);\n' +
    '  st = (uv.xy + corner * uv.zw) / tex;\n' +
    '}\n';
  var FS = '#version 300 es\n' +
    'precision mediump float;\n' +
    'in vec2 st; uniform sampler2D img; uniform vec4 color; uniform bool solid;\n' +
    'out vec4 outColor;\n' +
    'void main() { outColor = solid ? color : texture(img, st); }\n';

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
    ['view', 'scale', 'grow', 'screen', 'tex', 'pad', 'img', 'color', 'solid'].forEach(function (n) {
      u[n] = gl.getUniformLocation(prog, n);
    });
    var info = gl.getExtension('WEBGL_debug_renderer_info');
    var software = /swiftshader|llvmpipe|software|softpipe/i.test(
      String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER)));
    if (!geometry) geometry = software ? 'expanded' : 'instanced';
    var instanced = geometry === 'instanced';
    var STRIDE = instanced ? 8 : 10, PER = instanced ? 1 : 6;  // floats per vertex, vertices per quad
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
        a.gl.skip = skip;
      }
      gl.drawArraysInstanced(gl.TRIANGLE_STRIP, 0, 4, e - s);
    }

    function uniforms(k) {
      gl.uniform2f(u.view, view.x, view.y);
      gl.uniform1f(u.scale, view.s);
      gl.uniform1f(u.grow, k);
      gl.uniform2f(u.screen, W / 2, H / 2);
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
      // A ring around point i (mode 1 hover, 2 selected), then the point on top.
      mark: function (i, mode, a) {
        var p = pts[i], g = mode * 2;
        put(one, 0, p, a ? uvOf(p, levels[a.level]) : [0, 0, 0, 0]);
        gl.bindBuffer(gl.ARRAY_BUFFER, mark.buf);
        gl.bufferSubData(gl.ARRAY_BUFFER, 0, one);
        gl.bindVertexArray(mark.vao);
        gl.uniform1i(u.solid, 1);
        [[colors.gl.halo, g + 2], [colors.gl.accent, g], [null, 0]].forEach(function (c) {
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
    function one(p, r, a) {
      if (a) {
        var uv = uvOf(p, levels[a.level]);
        ctx.drawImage(a.img, uv[0], uv[1], uv[2], uv[3], r.x, r.y, r.w, r.h);
      } else {
        ctx.fillStyle = colors.ph;
        ctx.fillRect(r.x, r.y, r.w, r.h);
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
      mark: function (i, mode, a) {
        var r = rect(pts[i]), g = mode * 2;
        [[colors.halo, g + 2], [colors.accent, g]].forEach(function (c) {
          ctx.fillStyle = c[0];
          ctx.fillRect(r.x - c[1], r.y - c[1], r.w + 2 * c[1], r.h + 2 * c[1]);
        });
        one(pts[i], r, a);
      }
    };
  }

  /* ---------- renderer choice; a lost WebGL context is rebuilt ---------- */
  function forget() {
    levels.forEach(function (L) { L.atlases.forEach(function (a) {
      a.tex = null; a.gl = null;
      if (a.state === READY) a.state = a.img ? READY : NONE;
    }); });
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
    request();
  });

  /* ---------- loading atlases ---------- */
  function load(a) {
    if (!a.src) { a.state = FAILED; return; }
    var img = new Image();
    a.state = LOADING;
    if (a.level) inflight++;
    img.decoding = 'async';
    img.onerror = function () { done(false); };
    img.onload = function () {
      // decode() keeps the decoding off the frame that first draws the atlas.
      (img.decode ? img.decode() : Promise.resolve()).then(function () { done(true); }, function () { done(true); });
    };
    function done(ok) {
      if (a.level) inflight--;
      if (!ok || !img.naturalWidth) { a.state = FAILED; request(); return; }
      a.img = img;
      a.bytes = img.naturalWidth * img.naturalHeight * 4;
      a.state = READY;
      // Without a renderer (a lost WebGL context) the upload waits for the restored one.
      if (R) try { R.upload(a); } catch (e) { a.state = FAILED; }
      request();
    }
    img.src = root + a.src;
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
      for (var k = Math.floor(lo / L.capacity); k * L.capacity < hi && k < L.atlases.length; k++) {
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
      if (t >= 1) anim = null;
    }
    if (!pts.length) { R.frame([], 0); placeTip(); return; }
    var p = plan();
    R.frame(p.segs);
    if (hover >= 0 && hover !== focus) R.mark(hover, 1, bestFor(hover, p.upto));
    if (focus >= 0) R.mark(focus, 2, bestFor(focus, p.upto));
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
    request();
  }
  function unfocus() { focus = -1; showFocusTip = false; request(); }
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
  function remember() {
    // Back from an item page returns to this very view.
    try { history.replaceState({ view: view, focus: focus >= 0 ? pts[focus].slug : null }, ''); } catch (e) { /* ignore */ }
  }
  function open(i, newTab) {
    var u = root + pts[i].url;
    if (newTab) { window.open(u, '_blank', 'noopener'); return; }
    remember();
    window.location.href = u;
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
    if (g.type === 'mouse') { if (i >= 0) open(i, e.ctrlKey || e.metaKey || e.shiftKey); }
    else if (i < 0) unfocus();
    else if (i === focus) open(i);  // touch: tap selects, 2nd tap opens
    else setFocus(i, true);
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
        open(focus, k === 'Enter' && e.shiftKey);
        break;
      case 'Escape':
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
        x: +d.x, y: +d.y, iw: iw, ih: ih, a: iw / ih, url: d.url, cell: d.cell >= 0 ? +d.cell : -1
      });
    });
    if (!pts.length) return fail(TXT.empty);
    // Cell order is a walk along the map (a Hilbert curve): drawing and N / P follow it.
    pts.sort(function (a, b) { return a.cell - b.cell; });
    base = clamp(0.8 / Math.sqrt(pts.length), 0.006, 0.2);
    pts.forEach(function (p) {
      p.w = p.a >= 1 ? base : base * p.a;
      p.h = p.a >= 1 ? base / p.a : base;
    });
    // Cells number the points 0..n-1: point i is drawn from cell i of each level.
    var placed = atlas.levels.length && pts.every(function (p, i) { return p.cell === i; });
    if (!placed) {  // a document without atlases: grey placeholders, still fully usable
      pts.forEach(function (p, i) { p.cell = i; });
      atlas = { levels: [{ cell: 1, columns: 1, capacity: pts.length, images: [null] }] };
    }
    levels = atlas.levels.map(function (L, l) {
      return { cell: +L.cell, columns: +L.columns, capacity: +L.capacity,
               atlases: L.images.map(function (src, i) {
                 var lo = i * L.capacity, hi = Math.min(pts.length, lo + L.capacity);
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
    // ?focus=<slug> centres, zooms to and highlights one point; Back restores the view.
    var want = new URLSearchParams(window.location.search).get('focus');
    var saved = history.state && history.state.view;
    if (saved && isFinite(saved.x) && isFinite(saved.s)) {
      setView(saved);
      want = history.state.focus || null;
    }
    for (var i = 0; want && i < pts.length; i++) {
      var p = pts[i];
      if (p.slug !== want && p.id !== want) continue;
      focus = i;
      showFocusTip = true;
      if (!saved) setView({ x: p.x, y: p.y, s: Math.min(160, Math.min(W, H) / 3) / base });
      announce(p.title);
      break;
    }
    request();
  }

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
    view: function () { return { x: view.x, y: view.y, scale: view.s, fit: fit ? fit.s : null }; },
    zoomBy: function (f) { if (pts.length) zoomAt(f, W / 2, H / 2); },
    stats: function () {
      return { points: pts.length, geometry: R && R.geometry || '', frames: frameNo, drawMs: drawMs, level: levels.length ? wantedLevel() : -1,
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
