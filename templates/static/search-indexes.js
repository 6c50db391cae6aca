// The site's search indexes, searched as one index would be.
//
// archive-sim puts a collection's records in several Pagefind indexes (one or more a
// category) and Pagefind's UI merges them. The site's search module
// (pagefind/pagefind.js) is Pagefind's own, with what searchIndexes makes in place of
// its options, mergeIndex, filters and searches:
// - records of items gone or changed since their index was made are left out;
// - a search of several words finds what it would find in one index. Pagefind leaves
//   out a word that an index does not hold and searches that index for the others, so
//   each index would answer for the words it holds ("Cliff mushrooms": the photograph
//   of the Cliff House and the plate of mushrooms, from two indexes). In one index,
//   every word that the index holds is required. So each word is looked up first, and
//   the search keeps to the indexes that hold every word that some index holds.
// Each index is told apart by a filter of its own (INDEX), which the page never shows.

const INDEX = "archive-sim index";
const NOWHERE = "none";  // a value of INDEX that no index has

function words(term) {
  // A quoted phrase is searched as it is: Pagefind requires each of its words.
  if (typeof term !== "string" || term.indexOf('"') >= 0) return [];
  return term.split(/\s+/).filter(function (word) { return /[\p{L}\p{N}]/u.test(word); });
}

function unlisted(filters) {
  if (filters) delete filters[INDEX];
  return filters;
}

function tagged(options, value) {
  const own = Object.assign({}, options);
  own.mergeFilter = Object.assign({}, own.mergeFilter);
  own.mergeFilter[INDEX] = value;
  return own;
}

export function searchIndexes(pagefind, hidden) {
  let merged = 0;
  let latest = 0;

  function shown(found) {
    if (!found) return found;
    if (found.results && hidden.size) {
      found.results = found.results.filter(function (r) { return !hidden.has(r.id); });
    }
    unlisted(found.filters);
    unlisted(found.totalFilters);
    return found;
  }

  async function narrowed(term, options) {
    const asked = words(term);
    // One index (no other merged) already requires every word it holds.
    if (asked.length < 2 || merged === 0) return pagefind.search(term, options);
    // For each word the site holds: how many records of each index hold it. Searched
    // with a filter that no record passes, Pagefind still counts them (totalFilters)
    // but ranks none: at 100,000 records, 0.7 s for a word every record holds, not 5.5 s.
    const held = (await Promise.all(asked.map(function (word) {
      return pagefind.search(word, {filters: {[INDEX]: NOWHERE}});
    }))).map(function (found) { return (found && found.totalFilters && found.totalFilters[INDEX]) || {}; })
      .filter(function (counts) { return Object.keys(counts).some(function (k) { return counts[k] > 0; }); });
    if (held.length < 2) return pagefind.search(term, options);  // each index does as one index would
    const indexes = Object.keys(held[0]).filter(function (k) {
      return held.every(function (counts) { return counts[k] > 0; });
    });
    // No index holds every word: nothing is found, as in one index.
    const within = {[INDEX]: indexes.length ? {any: indexes} : NOWHERE};
    return pagefind.search(term, Object.assign({}, options, {
      filters: Object.assign({}, options && options.filters, within)
    }));
  }

  async function search(term, options) {
    return shown(await narrowed(term, options));
  }

  return {
    options: function (options) { return pagefind.options(tagged(options, "0")); },
    mergeIndex: function (path, options) {
      merged += 1;
      return pagefind.mergeIndex(path, tagged(options, String(merged)));
    },
    filters: async function () { return unlisted(await pagefind.filters()); },
    search: search,
    debouncedSearch: async function (term, options, ms) {
      const mine = ++latest;
      await new Promise(function (resolve) { setTimeout(resolve, ms === undefined ? 300 : ms); });
      if (mine !== latest) return null;  // a later search came: this one is not wanted
      const found = await search(term, options);
      return mine === latest ? found : null;
    }
  };
}
