/* Find by image: the page (find.html). It starts the Web Worker (find-worker.js), which
 * loads the model and searches; this script only takes the visitor's file (chosen,
 * dropped or photographed), shows it, and lists the matches like an item page's
 * "Similar" grid, with the cards of find/<category>.cards.json. The picture is handed
 * to the worker in this browser and sent nowhere.
 */
(function () {
  "use strict";

  var form = document.getElementById("find-form");
  if (!form) return;
  var root = form.getAttribute("data-root") || "";
  var TXT = JSON.parse(form.getAttribute("data-text"));
  var RESULTS = parseInt(form.getAttribute("data-results"), 10) || 12;
  var inputs = [document.getElementById("find-file"), document.getElementById("find-camera")];
  var drop = document.getElementById("find-drop");
  var status = document.getElementById("find-status");
  var query = document.getElementById("find-query");
  var queryImage = document.getElementById("find-query-image");
  var results = document.getElementById("find-results");
  var list = document.getElementById("find-list");
  var worker = null, manifest = null, ready = false, busy = false, queryUrl = null;
  var cards = {};  // category name -> Promise of its cards document

  function fmt(text, values) {
    return text.replace(/\{(\w+)\}/g, function (m, key) { return key in values ? values[key] : m; });
  }

  function say(text, isError) {
    status.textContent = text;
    status.classList.toggle("is-error", !!isError);
  }

  function fail(code, message, name) {
    if (code === "no-wasm") say(TXT.no_wasm, true);
    else if (code === "not-image") say(fmt(TXT.not_image, { name: name || "?" }), true);
    else say(fmt(TXT.error, { message: message }), true);
  }

  function cardsOf(category) {
    if (!cards[category.name]) {
      cards[category.name] = fetch(root + category.cards).then(function (r) {
        if (!r.ok) throw new Error(category.cards + ": HTTP " + r.status);
        return r.json();
      }).then(function (doc) {
        var byId = {};
        doc.items.forEach(function (it) { byId[it.id] = it; });
        return { category: doc.category, byId: byId };
      });
    }
    return cards[category.name];
  }

  // The words item pages use: the same picture, else the first of the category's
  // calibrated bands (highest first) the similarity exceeds; none below the last.
  function band(match, category) {
    if (match.copy) return { name: "same_picture", label: TXT.same_picture };
    var bands = category.bands || [];
    for (var i = 0; i < bands.length; i++) {
      if (match.similarity > bands[i].min_similarity) return bands[i];
    }
    return null;
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    if (text != null) node.textContent = text;
    return node;
  }

  function card(match, item, category) {
    var percent = Math.max(0, Math.round(match.similarity * 100));
    var found = band(match, category);
    var li = el("li", { "data-id": match.id, "data-copy": match.copy ? "true" : "false" });
    var box = el("div", { "class": "card" });
    var link = el("a", { "class": "card__link", href: root + item.url });
    var media = el("span", { "class": "card__media" });
    media.appendChild(el("img", { src: root + item.thumbnail.src, width: item.thumbnail.width,
                                   height: item.thumbnail.height, alt: "", decoding: "async" }));
    link.appendChild(media);
    link.appendChild(el("span", { "class": "card__title" }, item.title));
    box.appendChild(link);
    var extra = el("div", { "class": "card__extra" });
    // The class item pages give the same words (sim--band-very, sim--same-picture, ...).
    var CLASS = { very_similar: "band-very", similar: "band-similar", somewhat_similar: "band-some",
                  same_picture: "same-picture" };
    var sim = el("span", { "class": "sim" + (found ? " sim--" + CLASS[found.name] : "") });
    var words = el("span", { "class": "sim__text" });
    if (found && found.name === "same_picture") {
      sim.appendChild(el("span", { "class": "badge" }, found.label));
    } else if (found) {
      words.appendChild(el("strong", {}, found.label));
      words.appendChild(document.createTextNode(" · "));
    }
    words.appendChild(document.createTextNode(TXT.similarity + " " + percent + (TXT.language === "sv" ? "\u00a0" : "") + "%"));
    sim.appendChild(words);
    var meter = el("meter", { "class": "sim__bar", min: 0, max: 100, low: 50, high: 70, optimum: 100,
                              value: percent, "aria-hidden": "true" }, percent + "%");
    sim.appendChild(meter);
    extra.appendChild(sim);
    extra.appendChild(el("span", { "class": "find__category" }, TXT.category + ": " + category.label));
    extra.appendChild(el("a", { "class": "find__map", href: root + category.map_url + "?focus=" + encodeURIComponent(item.slug) },
                         TXT.show_on_map));
    box.appendChild(extra);
    li.appendChild(box);
    return li;
  }

  function show(matches, seconds) {
    var byName = {};
    manifest.categories.forEach(function (c) { byName[c.name] = c; });
    var wanted = [];
    matches.forEach(function (m) { if (wanted.indexOf(m.category) < 0) wanted.push(m.category); });
    return Promise.all(wanted.map(function (name) { return cardsOf(byName[name]); })).then(function (docs) {
      var found = {};
      wanted.forEach(function (name, i) { found[name] = docs[i]; });
      list.textContent = "";
      var shown = 0;
      matches.forEach(function (m) {
        var doc = found[m.category], item = doc && doc.byId[m.id];
        if (!item) return;  // an item the site no longer has
        list.appendChild(card(m, item, doc.category));
        shown++;
      });
      results.hidden = false;
      say(shown ? fmt(TXT.done, { count: shown, seconds: seconds.toFixed(1) }) : TXT.none);
      form.setAttribute("data-state", "results");
    });
  }

  function search(file) {
    if (!ready || busy || !file) return;
    busy = true;
    form.setAttribute("data-state", "working");
    say(TXT.working);
    results.hidden = true;
    if (queryUrl) URL.revokeObjectURL(queryUrl);
    queryUrl = URL.createObjectURL(file);
    queryImage.onerror = function () { query.hidden = true; };
    queryImage.src = queryUrl;
    query.hidden = false;
    worker.onmessage = function (event) {
      var m = event.data;
      busy = false;
      if (m.type === "results") {
        show(m.matches, m.seconds).catch(function (error) {
          fail("failed", String(error.message || error));
          form.setAttribute("data-state", "error");
        });
      } else {
        if (m.code === "not-image") query.hidden = true;
        fail(m.code, m.message, file.name);
        form.setAttribute("data-state", "error");
      }
    };
    worker.postMessage({ type: "find", file: file, k: RESULTS });
  }

  function start() {
    if (typeof WebAssembly !== "object" || typeof Worker !== "function") {
      fail("no-wasm");
      form.setAttribute("data-state", "unsupported");
      return;
    }
    var base = new URL(root || "./", location.href).href;
    fetch(new URL(form.getAttribute("data-manifest"), base)).then(function (r) {
      if (!r.ok) throw new Error("find/model.json: HTTP " + r.status);
      return r.json();
    }).then(function (doc) {
      manifest = doc;
      worker = new Worker(new URL(form.getAttribute("data-worker"), base));
      worker.onmessage = function (event) {
        var m = event.data;
        if (m.type === "ready") {
          ready = true;
          inputs.forEach(function (input) { input.disabled = false; });
          say(TXT.ready);
          form.setAttribute("data-state", "ready");
        } else {
          fail(m.code, m.message);
          form.setAttribute("data-state", m.code === "no-wasm" ? "unsupported" : "error");
        }
      };
      worker.onerror = function (event) {
        fail("failed", event.message || "worker");
        form.setAttribute("data-state", "error");
      };
      worker.postMessage({ type: "load", base: base });
    }).catch(function (error) {
      fail("failed", String(error.message || error));
      form.setAttribute("data-state", "error");
    });
  }

  inputs.forEach(function (input) {
    input.addEventListener("change", function () {
      if (input.files && input.files[0]) search(input.files[0]);
    });
  });
  ["dragenter", "dragover"].forEach(function (type) {
    form.addEventListener(type, function (event) {
      event.preventDefault();
      drop.classList.add("is-over");
    });
  });
  ["dragleave", "drop"].forEach(function (type) {
    form.addEventListener(type, function () { drop.classList.remove("is-over"); });
  });
  form.addEventListener("drop", function (event) {
    event.preventDefault();
    var files = event.dataTransfer && event.dataTransfer.files;
    if (files && files[0]) search(files[0]);
  });
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  start();
})();
