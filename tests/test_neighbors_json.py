"""The neighbour JSON a frontend fetches is the documented document, byte for byte,
whatever the titles hold: the render puts it together from text pieces kept per
item (``SiteModel.neighbors_json``), not by encoding each list whole."""

from __future__ import annotations

import json

from archive_sim.calibration import Calibration
from archive_sim.state_store import CatalogItem, Neighbor
from archive_sim.site.i18n import labels
from archive_sim.site.model import SiteModel, dumps

TITLES = {
    "a": 'Quote " and backslash \\ in a title',
    "b": "Åsa på ön, 1901 – ”vykort”",
    "c": "Tab\tand newline\nand bell \x07",
    "d": "Emoji 🌲 and </script>",
}


def item(item_id: str, category: str = "photos") -> CatalogItem:
    return CatalogItem(item_id, category, f"slug-{item_id}", TITLES.get(item_id, item_id), f"/x/{item_id}.jpg",
                       {}, None, f"{ord(item_id):064x}", 640, 480)


def test_neighbor_json_is_the_document_byte_for_byte() -> None:
    items = [item("a"), item("b"), item("c"), item("d", "prints")]
    neighbors = {
        "a": [Neighbor("b", 0.1 + 0.2, False, True), Neighbor("gone", 0.9, False), Neighbor("d", 1.0, True, True)],
        "b": [Neighbor("a", 1e-05, False), Neighbor("c", 0.75, False, False)],
        "c": [Neighbor("b", 1, False)],  # an int, as a hand-made list may hold
        "d": [Neighbor("a", 0.123456789012345678, False), Neighbor("b", 0.5, False)],
    }
    # "photos" is calibrated, "prints" is not (no bands, every neighbour's band null).
    calibration = Calibration(1000, {50.0: 0.2, 90.0: 0.3, 95.0: 0.4, 99.0: 0.6, 99.5: 0.7, 99.9: 0.8})
    model = SiteModel(items, neighbors, "efficientnet-lite0@224", calibrations={"photos": calibration})
    t = labels("en")
    for it in items * 2:  # the second time from the kept pieces
        text = model.neighbors_json(it, t)
        assert text == dumps(model.neighbors_document(it, t))
        document = json.loads(text)
        assert [n["id"] for n in document["neighbors"]] == [n.id for n in neighbors[it.id] if n.id != "gone"]
    document = json.loads(model.neighbors_json(items[0], t))
    listed = document["neighbors"]
    assert listed[0]["title"] == TITLES["b"] and listed[0]["similarity"] == 0.1 + 0.2
    assert (listed[1]["duplicate"], listed[1]["copy"]) == (True, True)
    assert [(b["name"], b["label"], b["min_similarity"]) for b in document["bands"]] == [
        ("very_similar", "Very similar", 0.8), ("similar", "Similar", 0.6), ("somewhat_similar", "Somewhat similar", 0.4)]
    assert [n["band"] for n in listed] == [None, "very_similar"]
    assert [n["band"] for n in json.loads(model.neighbors_json(items[1], t))["neighbors"]] == [None, "similar"]
    prints = json.loads(model.neighbors_json(items[3], t))
    assert prints["bands"] == [] and [n["band"] for n in prints["neighbors"]] == [None, None]
