/* archive-sim similarity map. Vanilla Canvas 2D. */
(function () {
  'use strict';
  var canvas = document.querySelector('canvas[data-src]');
  if (!canvas || !canvas.getContext) return;
  var ctx = canvas.getContext('2d');
  var root = canvas.getAttribute('data-root') || '';
  var $ = function (id) { return document.getElementById(id); };
  var tip = $('map-tooltip'), live = $('map-live'), statusEl = $('map-status');
  var zoomBox = canvas.parentNode.querySelector('.map-zoom');
  var TXT = /^sv/i.test(document.documentElement.lang) ? {
    loading: 'Laddar kartan…', of: 'av',
    error: 'Kartan kunde inte laddas. Försök igen senare.',
    empty: 'Kartan har inga bilder.'
  } : {
    loading: 'Loading the map…', of: 'of',
    error: 'The map could not be loaded. Please try again later.',
    empty: 'This map has no images.'
  };
  var reduceMotion = window.matchMedia && matchMedia('(prefers-reduced-motion: reduce)').matches;

  // CSS px: smallest drawn thumb, size at which a thumb loads; parallel loads.
  var MINPX = 4, LOADPX = 14, MAXLOADS = 8;
  var pts = [], base = 0.05;  // thumb long side, world units (map is 0..1)
  var view = { x: 0.5, y: 0.5, s: 1 };  // world point at canvas centre, px per unit
  var fit = null, bounds = null, minS = 1, maxS = 1;
  var W = 0, H = 0, dpr = 1;
  var hover = -1, focus = -1, showFocusTip = false, moved = false;
  var raf = 0, anim = null, inflight = 0, tipFor = -1;
  var colors = { ph: '#b4b1a8', accent: '#0b57d0', halo: '#fff' };

  function clamp(v, a, b) { return v < a ? a : v > b ? b : v; }
  function setStatus(msg) { if (statusEl) { statusEl.textContent = msg; statusEl.hidden = !msg; } }
  function announce(msg) { if (live) live.textContent = msg; }
  function fail(msg) { pts = []; setStatus(msg); announce(msg); request(); }
  function readColors() {
    var cs = getComputedStyle(canvas);
    [['ph', '--map-ph'], ['accent', '--focus'], ['halo', '--map-halo']].forEach(function (c) {
      colors[c[0]] = cs.getPropertyValue(c[1]).trim() || colors[c[0]];
    });
  }

  /* geometry */
  function rect(p) {
    var k = Math.max(view.s, MINPX / base), w = p.w * k, h = p.h * k;
    var cx = (p.x - view.x) * view.s + W / 2, cy = (p.y - view.y) * view.s + H / 2;
    return { x: cx - w / 2, y: cy - h / 2, w: w, h: h, cx: cx };
  }
  function inside(r, x, y) { return x >= r.x && x <= r.x + r.w && y >= r.y && y <= r.y + r.h; }
  function visible(r) { return r.x < W && r.y < H && r.x + r.w > 0 && r.y + r.h > 0; }
  function hit(x, y) {
    if (focus >= 0 && inside(rect(pts[focus]), x, y)) return focus;
    if (hover >= 0 && inside(rect(pts[hover]), x, y)) return hover;
    for (var i = pts.length - 1; i >= 0; i--) if (inside(rect(pts[i]), x, y)) return i;
    return -1;
  }

  function computeFit() {
    if (!pts.length || !W || !H) return;
    var b = { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
    pts.forEach(function (p) {
      b.x0 = Math.min(b.x0, p.x - p.w / 2); b.x1 = Math.max(b.x1, p.x + p.w / 2);
      b.y0 = Math.min(b.y0, p.y - p.h / 2); b.y1 = Math.max(b.y1, p.y + p.h / 2);
    });
    var pad = Math.min(32, W / 10);
    var s = Math.max(1, Math.min((W - 2 * pad) / Math.max(b.x1 - b.x0, base), (H - 2 * pad) / Math.max(b.y1 - b.y0, base)));
    bounds = b;
    fit = { x: (b.x0 + b.x1) / 2, y: (b.y0 + b.y1) / 2, s: s };
    minS = s / 2;
    maxS = Math.max(s * 4, 720 / base);
  }

  /* rendering, only on demand */
  function request() { if (!raf) raf = requestAnimationFrame(draw); }

  function drawPoint(p, mode, wanted) {
    var r = rect(p);
    if (!visible(r)) return;
    if (p.ok) {
      ctx.drawImage(p.img, r.x, r.y, r.w, r.h);
    } else {
      ctx.fillStyle = colors.ph;
      ctx.fillRect(r.x, r.y, r.w, r.h);
      if (!p.img && p.thumb && Math.max(r.w, r.h) >= LOADPX) wanted[mode ? 'unshift' : 'push'](p);
    }
    if (mode) {  // 1 hover, 2 selected: halo + accent ring
      var g = mode * 2;
      [[colors.halo, g + 2], [colors.accent, g]].forEach(function (c) {
        ctx.strokeStyle = c[0];
        ctx.lineWidth = c[1];
        ctx.strokeRect(r.x - g, r.y - g, r.w + 2 * g, r.h + 2 * g);
      });
    }
  }

  function draw(now) {
    raf = 0;
    if (anim) {
      var t = clamp(((now || performance.now()) - anim.t0) / 300, 0, 1);
      var e = t < 0.5 ? 2 * t * t : 1 - Math.pow(2 - 2 * t, 2) / 2, a = anim.from, b = anim.to;
      view = { x: a.x + (b.x - a.x) * e, y: a.y + (b.y - a.y) * e, s: a.s * Math.pow(b.s / a.s, e) };
      if (t >= 1) anim = null;
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    var wanted = [];
    for (var i = 0; i < pts.length; i++) if (i !== hover && i !== focus) drawPoint(pts[i], 0, wanted);
    if (hover >= 0 && hover !== focus) drawPoint(pts[hover], 1, wanted);
    if (focus >= 0) drawPoint(pts[focus], 2, wanted);
    for (i = 0; i < wanted.length && inflight < MAXLOADS; i++) load(wanted[i]);
    placeTip();
    if (anim) request();
  }

  function load(p) {
    var img = p.img = new Image();
    inflight++;
    img.decoding = 'async';
    img.onload = function () { inflight--; p.ok = img.naturalWidth > 0; request(); };
    img.onerror = function () { inflight--; request(); };
    img.src = root + p.thumb;
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

  /* view changes */
  function changed() {
    moved = true;
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
    announce(pts[focus].title + ' (' + (focus + 1) + ' ' + TXT.of + ' ' + n + ')');
    request();
  }
  function unfocus() { focus = -1; showFocusTip = false; request(); }
  function open(i, newTab) {
    var u = root + pts[i].url;
    if (newTab) window.open(u, '_blank', 'noopener');
    else window.location.href = u;
  }

  /* pointer input: mouse, touch and pen */
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

  /* keyboard */
  canvas.addEventListener('keydown', function (e) {
    if (!pts.length || e.altKey || e.ctrlKey || e.metaKey) return;
    var k = e.key, st = e.shiftKey ? 0.5 : 0.15, last = pts.length - 1;
    switch (k) {
      case 'ArrowLeft': pan(W * st, 0); break;
      case 'ArrowRight': pan(-W * st, 0); break;
      case 'ArrowUp': pan(0, H * st); break;
      case 'ArrowDown': pan(0, -H * st); break;
      case '+': case '=': zoomAt(1.5, W / 2, H / 2); break;
      case '-': case '_': zoomAt(1 / 1.5, W / 2, H / 2); break;
      case '0': if (fit) animateTo(fit.x, fit.y, fit.s); moved = false; break;
      case 'n': setFocus(focus < 0 ? 0 : focus + 1); break;
      case 'p': setFocus(focus < 0 ? last : focus - 1); break;
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
    if (b && pts.length) zoomAt(b.getAttribute('data-zoom') === 'in' ? 1.5 : 1 / 1.5, W / 2, H / 2);
  });

  /* size, devicePixelRatio */
  function resize() {
    var w = canvas.clientWidth, h = canvas.clientHeight, r = window.devicePixelRatio || 1;
    if (w === W && h === H && r === dpr) return;
    W = w; H = h; dpr = r;
    canvas.width = Math.max(1, Math.round(w * r));
    canvas.height = Math.max(1, Math.round(h * r));
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

  /* data */
  function init(data) {
    if (!data || !Array.isArray(data.points)) throw new Error('bad map data');
    pts = [];
    data.points.forEach(function (d) {
      if (!d || !isFinite(d.x) || !isFinite(d.y) || typeof d.url !== 'string') return;
      pts.push({
        slug: String(d.slug || ''), id: String(d.id || ''), title: String(d.title || d.slug || d.id || ''),
        x: +d.x, y: +d.y, a: d.width > 0 && d.height > 0 ? d.width / d.height : 1,
        url: d.url, thumb: typeof d.thumb === 'string' ? d.thumb : '', img: null, ok: false
      });
    });
    if (!pts.length) return fail(TXT.empty);
    base = clamp(0.8 / Math.sqrt(pts.length), 0.006, 0.2);
    pts.forEach(function (p) {
      p.w = p.a >= 1 ? base : base * p.a;
      p.h = p.a >= 1 ? base / p.a : base;
    });
    setStatus('');
    W = H = 0;
    resize();
    if (zoomBox) zoomBox.hidden = false;
    // ?focus=<slug> centres, zooms to and highlights one point.
    var want = new URLSearchParams(window.location.search).get('focus');
    for (var i = 0; want && i < pts.length; i++) {
      var p = pts[i];
      if (p.slug !== want && p.id !== want) continue;
      focus = i;
      showFocusTip = true;
      setView({ x: p.x, y: p.y, s: Math.min(160, Math.min(W, H) / 3) / base });
      announce(p.title);
      break;
    }
  }

  var src = canvas.getAttribute('data-src');
  setStatus(TXT.loading);
  resize();
  if (!src || !window.fetch) return fail(TXT.error);
  // data-src is site-relative; data-root leads to the site root.
  fetch(new URL(root + src, document.baseURI).href)
    .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
    .then(init)
    .catch(function () { fail(TXT.error); });
})();
