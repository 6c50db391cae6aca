// The search page: Pagefind's UI over the indexes of each category, with thumbnails and the
// category filter. The indexes' addresses are relative to the site's root; this page
// prefixes the way to it, so the site works from any folder of any host. Words sent by the header's box (?q=) are
// searched at once, and the address follows the words, so a search can be shared.
(function () {
  "use strict";
  var box = document.getElementById("search");
  if (!box || typeof PagefindUI === "undefined") return;
  var root = box.getAttribute("data-root") || "";
  function fromRoot(path) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(path)) return path;  // made a full address already
    return new URL(root + path.replace(/^\/+/, ""), window.location.href).href;
  }
  // One index per category, each labelled with its category: the category filter.
  var filter = box.getAttribute("data-filter");
  var bundles = JSON.parse(box.getAttribute("data-bundles") || "[]").map(function (b) {
    var labels = {};
    labels[filter] = b.label;
    return {bundlePath: fromRoot(b.path), mergeFilter: labels};
  });
  if (!bundles.length) return;
  // The first index is loaded through the site's search module (the folder in
  // data-module): Pagefind's own, leaving out records of items no longer in the site.
  var module = box.getAttribute("data-module");
  var ui = new PagefindUI({
    element: "#search",
    bundlePath: module ? fromRoot(module) : bundles[0].bundlePath,
    mergeFilter: bundles[0].mergeFilter,
    mergeIndex: bundles.slice(1),
    showImages: true,
    showSubResults: false,
    resetStyles: false,
    autofocus: true,
    processResult: function (result) {
      // Pagefind gives "/photographs/x/index.html#/media/240/….jpg": the item page's and
      // its thumbnail's paths from the site's root (the thumbnail rides in the url, where
      // Pagefind does not index it as words), made full addresses here.
      var at = result.url.indexOf("#");
      var image = at < 0 ? "" : result.url.slice(at + 1);
      result.url = fromRoot(at < 0 ? result.url : result.url.slice(0, at));
      result.meta = result.meta || {};
      if (image) result.meta.image = fromRoot(image);
      return result;
    }
  });
  var query = new URLSearchParams(window.location.search).get("q");
  if (query) ui.triggerSearch(query);
  var input = box.querySelector("input[type=text], input[type=search]");
  if (input) {
    input.setAttribute("aria-label", box.getAttribute("data-label") || input.getAttribute("aria-label") || "");
    input.addEventListener("input", function () {
      var url = new URL(window.location.href);
      if (input.value) url.searchParams.set("q", input.value); else url.searchParams.delete("q");
      window.history.replaceState(null, "", url);
    });
  }
})();
