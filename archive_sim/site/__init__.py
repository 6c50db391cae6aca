"""The static site: pages, JSON, media and maps, made from the state store and published.

How one item page is made:

1. ``workers.render_site`` loads the site model (``model.SiteModel``: every item,
   indexed) and hands out tasks; a task of item pages loads those items' neighbour
   lists and the live site's manifest rows of their paths.
2. ``pages.SiteWriter.write_item`` makes the page's key: a hash of what the page is
   made from (``SiteModel.item_inputs``: the item, its neighbour entries and the
   items they name, its category's calibration, its reuse group), of the templates
   ``item.html`` uses (``templates.Fingerprints``), of what every page sees and of
   the code.
3. ``output_tree.OutputTree.put`` links the live file into the staging folder when
   its key is unchanged, and nothing more is done.
4. Else the model gives the page's context (``SiteModel.item_context``: plain dicts
   and lists, documented in docs/themes.md), the page head is added, Jinja renders
   it and the tree writes it (or links the live file when the bytes came out the same).
5. After every task ``output_tree`` prunes, seals and swaps the staging folder in.
"""
