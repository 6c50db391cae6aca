// The search page: Pagefind's UI, with thumbnails and the category filter. The index's
// addresses are site-relative; this page prefixes the way to the site root, so the
// site works from any folder of any host. Words sent by the header's box (?q=) are
// searched at once, and the address follows the words, so a search can be shared.
(function () {
  "use strict";
  var box = document.getElementById("search");
  if (!box || typeof PagefindUI === "undefined") return;
  var root = box.getAttribute("data-root") || "";
  var ui = new PagefindUI({
    element: "#search",
    showImages: true,
    showSubResults: false,
    resetStyles: false,
    autofocus: true,
    processResult: function (result) {
      result.url = root + result.url;
      if (result.meta && result.meta.image) result.meta.image = root + result.meta.image;
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
