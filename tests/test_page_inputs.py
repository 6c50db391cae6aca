"""An item page is made again whenever what it shows changes: its key is made from
its inputs (``SiteModel.item_inputs``) without making the page, so every change to
the site model that changes an item's page context or neighbour document must change
those inputs too. Each case below changes one thing a page can show."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from archive_sim.calibration import Calibration
from archive_sim.site.i18n import labels
from archive_sim.site.model import SiteModel
from archive_sim.state_store import CatalogItem, Neighbor

CALIBRATION = Calibration(1000, {50.0: 0.2, 90.0: 0.3, 95.0: 0.4, 99.0: 0.6, 99.5: 0.7, 99.9: 0.8})


def item(item_id: str, category: str = "photos", **changes: object) -> CatalogItem:
    it = CatalogItem(item_id, category, f"slug-{item_id}", f"Title {item_id}", f"/x/{item_id}.jpg",
                     {"creator": "Ivar Arosenius", "date": "1906"}, None, f"{ord(item_id):064x}", 640, 480)
    return it._replace(**changes)


def base() -> dict:
    items = [item("a"), item("b"), item("c"), item("d", "prints")]
    neighbors = {"a": [Neighbor("b", 0.75, False), Neighbor("c", 0.35, False), Neighbor("d", 0.5, False)],
                 "b": [Neighbor("a", 0.75, False)], "c": [Neighbor("a", 0.35, False)], "d": [Neighbor("a", 0.5, False)]}
    return {"items": items, "neighbors": neighbors, "model_id": "efficientnet-lite0@224",
            "category_labels": {}, "reuse_groups": [], "calibrations": {"photos": CALIBRATION}}


def model_of(parts: dict) -> SiteModel:
    return SiteModel(parts["items"], parts["neighbors"], parts["model_id"], category_labels=parts["category_labels"],
                     reuse_groups=parts["reuse_groups"], calibrations=parts["calibrations"])


def replace_item(item_id: str, **changes: object) -> Callable[[dict], None]:
    def change(parts: dict) -> None:
        parts["items"] = [it._replace(**changes) if it.id == item_id else it for it in parts["items"]]
    return change


def set_part(name: str, value: object) -> Callable[[dict], None]:
    def change(parts: dict) -> None:
        parts[name] = value
    return change


def set_neighbors(item_id: str, listed: list[Neighbor]) -> Callable[[dict], None]:
    def change(parts: dict) -> None:
        parts["neighbors"] = {**parts["neighbors"], item_id: listed}
    return change


CHANGES = {
    "its own title": replace_item("a", title="A new title"),
    "its metadata": replace_item("a", metadata={"creator": "Ivar Arosenius", "date": "1907"}),
    "its link": replace_item("a", link="https://archive.example/a"),
    "its image": replace_item("a", content_hash="f" * 64, width=800),
    "a neighbour's title": replace_item("b", title="B renamed"),
    "a neighbour's image": replace_item("c", content_hash="e" * 64, height=100),
    "a neighbour's slug": replace_item("b", slug="another-slug"),
    "its category label": set_part("category_labels", {"photos": "Fotografier"}),
    "a neighbour leaving the site": set_part("items", [item("a"), item("b"), item("d", "prints")]),
    "a similarity": set_neighbors("a", [Neighbor("b", 0.95, False), Neighbor("c", 0.35, False),
                                        Neighbor("d", 0.5, False)]),
    "a copy flag": set_neighbors("a", [Neighbor("b", 0.75, False, True), Neighbor("c", 0.35, False),
                                       Neighbor("d", 0.5, False)]),
    "the order": set_neighbors("a", [Neighbor("c", 0.35, False), Neighbor("b", 0.75, False),
                                     Neighbor("d", 0.5, False)]),
    "the calibration": set_part("calibrations", {"photos": Calibration(1000, {**CALIBRATION.quantiles, 99.0: 0.74})}),
    "a reuse group": set_part("reuse_groups", [["a", "b"]]),
    "the model": set_part("model_id", "another@224"),
}


@pytest.mark.parametrize("what", list(CHANGES))
def test_a_change_to_what_a_page_shows_changes_its_inputs(what: str) -> None:
    t = labels("en")
    before = model_of(base())
    parts = base()
    CHANGES[what](parts)
    after = model_of(parts)
    a_before, a_after = before.by_id["a"], after.by_id["a"]
    shown_before = (before.item_context(a_before, t), before.neighbors_json(a_before, t))
    shown_after = (after.item_context(a_after, t), after.neighbors_json(a_after, t))
    assert shown_before != shown_after, f"{what} should change what item a's page shows"
    assert before.item_inputs(a_before) != after.item_inputs(a_after)


def test_the_same_model_gives_the_same_inputs_and_an_unrelated_change_none() -> None:
    parts = base()
    model = model_of(parts)
    parts["items"] = [it._replace(title="D renamed") if it.id == "d" else it for it in parts["items"]]
    parts["neighbors"] = {**parts["neighbors"], "a": parts["neighbors"]["a"][:2]}
    other = model_of(parts)
    # b lists only a, which did not change: b's page is kept.
    assert model.item_inputs(model.by_id["b"]) == model_of(base()).item_inputs(model_of(base()).by_id["b"])
    assert model.item_inputs(model.by_id["b"]) == other.item_inputs(other.by_id["b"])


CATEGORY_PAGE_CHANGES = {
    "an item's title": (replace_item("b", title="A new title"), True),
    "an item's picture": (replace_item("b", content_hash=f"{99:064x}", width=300), True),
    "the category's label": (set_part("category_labels", {"photos": "Fotografier"}), True),
    "an item added to the category": (lambda parts: parts["items"].append(item("e")), True),
    "an item of another category": (replace_item("d", title="A new title"), False),
    "a neighbour list": (set_neighbors("a", []), False),
}


@pytest.mark.parametrize("change", list(CATEGORY_PAGE_CHANGES))
def test_a_category_page_is_keyed_by_what_it_lists(change: str) -> None:
    """A category page (and so a reuse page, keyed the same way) is made again exactly
    when its context changes, without making the context to find out."""
    before = base()
    after = base()
    apply, changes = CATEGORY_PAGE_CHANGES[change]
    apply(after)

    def page(parts: dict):
        model = model_of(parts)
        listing = model.pages_of(model.category_by_name["photos"], 50)[0]
        return model.category_page_inputs(listing), model.category_page_context(listing)

    (inputs_before, context_before), (inputs_after, context_after) = page(before), page(after)
    assert (inputs_before != inputs_after) == changes
    assert (context_before != context_after) == changes


@pytest.mark.parametrize("change", ["its title", "its picture", "the bands"])
def test_find_by_images_cards_of_a_category_are_keyed_by_their_items_and_bands(change: str) -> None:
    from archive_sim.site.find import cards_document

    apply = {"its title": replace_item("b", title="A new title"),
             "its picture": replace_item("b", content_hash=f"{99:064x}", width=300),
             "the bands": set_part("calibrations", {"photos": Calibration(1000, {**CALIBRATION.quantiles, 99.9: 0.85})})}
    before, after = base(), base()
    apply[change](after)

    def cards(parts: dict) -> tuple[bytes, dict]:
        model = model_of(parts)
        members = [it for it in model.items if it.category == "photos"]
        return (model.category_cards_inputs("photos", members),
                cards_document(model, "photos", members, "map/photos/index.html", labels("sv")))

    (inputs_before, document_before), (inputs_after, document_after) = cards(before), cards(after)
    assert inputs_before != inputs_after and document_before != document_after
    unrelated = base()
    replace_item("d", title="A new title")(unrelated)
    assert cards(unrelated)[0] == inputs_before


MAP_CHANGES = {
    "an item's title": (replace_item("b", title="A new title"), True),
    "an item's picture": (replace_item("b", content_hash=f"{99:064x}", width=300), True),
    "an item's slug": (replace_item("c", slug="another-slug"), True),
    "an item not on the map": (replace_item("d", title="A new title"), False),
    "a neighbour list": (set_neighbors("a", []), False),
    "the model": (set_part("model_id", "another@224"), True),
}


@pytest.mark.parametrize("change", list(MAP_CHANGES))
def test_a_map_document_is_keyed_by_its_points_items_and_atlases(change: str) -> None:
    """A map's JSON is made again exactly when it changes: its key is made from its
    inputs, without encoding 100,000 points to find out."""
    from archive_sim.site.atlas import AtlasSet, Level

    positions = {"a": (0.1, 0.2), "b": (0.5, -0.25), "c": (-0.75, 0.5)}
    atlases = AtlasSet({"a": 0, "b": 1, "c": 2}, [Level(128, 8, 64, ("media/atlas/x.jpg",))])
    before, after = base(), base()
    apply, changes = MAP_CHANGES[change]
    apply(after)

    def document(parts: dict, points: dict = positions, drawn: AtlasSet = atlases) -> tuple[bytes, dict]:
        model = model_of(parts)
        return model.map_document_inputs("photos", points, drawn), model.map_document("photos", points, drawn)

    (inputs_before, document_before), (inputs_after, document_after) = document(before), document(after)
    assert (inputs_before != inputs_after) == changes
    assert (document_before != document_after) == changes
    # A point moved, or drawn in another cell: both the document and its inputs change.
    for points, drawn in (({**positions, "b": (0.5, -0.2)}, atlases),
                          (positions, AtlasSet({"a": 0, "b": 2, "c": 1}, atlases.levels))):
        inputs, changed = document(base(), points, drawn)
        assert inputs != inputs_before and changed != document_before
